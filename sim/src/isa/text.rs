//! The disassembly text of an [`Inst`], in the syntax of LLVM 19's AMDGPU instruction printer
//! (llvm/lib/Target/AMDGPU/MCTargetDesc/AMDGPUInstPrinter.cpp): the mnemonic, the operands in
//! the order of the opcode's shape, then the modifiers. Branch targets print as the raw
//! unsigned simm16 (as `llvm-objdump` does before its `<symbol+offset>` comment).

use super::decode::{Dpp, Family, Inst};
use super::Target;
use std::fmt::Write;

/// The text of `inst` for `target`, without address or encoding columns.
pub fn format(target: Target, inst: &Inst) -> String {
    let dpp = inst.dpp();
    let mut s = match dpp {
        Some(_) => format!("{}_dpp", inst.op.name.strip_suffix("_e32").unwrap_or(inst.op.name)),
        None => String::from(inst.op.name),
    };
    match inst.family {
        Family::Sopp => sopp(target, inst, &mut s),
        Family::Vopd => {
            let ops = operands(target, inst, inst.op.shape, Half::X);
            push_ops(&mut s, &ops);
            // The decoder sets the Y half of every VOPD instruction.
            if let Some(y) = inst.op_y {
                s.push_str(" :: ");
                s.push_str(y.name);
                let ops = operands(target, inst, y.shape, Half::Y);
                push_ops(&mut s, &ops);
            }
        }
        _ => {
            let ops = operands(target, inst, inst.op.shape, Half::X);
            push_ops(&mut s, &ops);
            modifiers(target, inst, &mut s);
            if let Some(d) = dpp {
                dpp_modifiers(d, &mut s);
            }
        }
    }
    s
}

/// `AMDGPUInstPrinter::printDPPCtrl`, `printDPP8`, `printRowMask`, `printBankMask`,
/// `printDppBoundCtrl`, `printDppFI` (the gfx10+ controls).
fn dpp_modifiers(dpp: Dpp, s: &mut String) {
    match dpp {
        Dpp::Dpp8 { sel, fi } => {
            let lanes: Vec<String> = (0..8).map(|i| format!("{}", sel >> (3 * i) & 7)).collect();
            let _ = write!(s, " dpp8:[{}]", lanes.join(","));
            if fi {
                s.push_str(" fi:1");
            }
        }
        Dpp::Dpp16 { ctrl, fi, bound_ctrl, row_mask, bank_mask } => {
            let c = match ctrl {
                0x00..=0xff => {
                    let q: Vec<String> =
                        (0..4).map(|i| format!("{}", ctrl >> (2 * i) & 3)).collect();
                    format!("quad_perm:[{}]", q.join(","))
                }
                0x101..=0x10f => format!("row_shl:{}", ctrl & 0xf),
                0x111..=0x11f => format!("row_shr:{}", ctrl & 0xf),
                0x121..=0x12f => format!("row_ror:{}", ctrl & 0xf),
                0x140 => "row_mirror".into(),
                0x141 => "row_half_mirror".into(),
                0x150..=0x15f => format!("row_share:{}", ctrl & 0xf),
                0x160..=0x16f => format!("row_xmask:{}", ctrl & 0xf),
                _ => format!("/* invalid dpp_ctrl {ctrl:#x} */"),
            };
            let _ = write!(s, " {c} row_mask:0x{row_mask:x} bank_mask:0x{bank_mask:x}");
            if bound_ctrl {
                s.push_str(" bound_ctrl:1");
            }
            if fi {
                s.push_str(" fi:1");
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Half {
    X,
    Y,
}

fn push_ops(s: &mut String, ops: &[String]) {
    if !ops.is_empty() {
        s.push(' ');
        s.push_str(&ops.join(", "));
    }
}

/// Register or constant name of a 9-bit source operand value (SIDefines.h `EncValues`).
fn src_name(v: u32, width: u32, literal: Option<u32>) -> String {
    let range = |p: &str, n: u32| {
        if width == 1 {
            format!("{p}{n}")
        } else {
            format!("{p}[{n}:{}]", n + width - 1)
        }
    };
    match v {
        0..=105 => range("s", v),
        106 => {
            if width == 1 {
                "vcc_lo".into()
            } else {
                "vcc".into()
            }
        }
        107 => "vcc_hi".into(),
        108..=123 => range("ttmp", v - 108),
        124 => "null".into(),
        125 => "m0".into(),
        126 => {
            if width == 1 {
                "exec_lo".into()
            } else {
                "exec".into()
            }
        }
        127 => "exec_hi".into(),
        128..=192 => (v - 128).to_string(),
        193..=208 => format!("-{}", v - 192),
        240 => "0.5".into(),
        241 => "-0.5".into(),
        242 => "1.0".into(),
        243 => "-1.0".into(),
        244 => "2.0".into(),
        245 => "-2.0".into(),
        246 => "4.0".into(),
        247 => "-4.0".into(),
        248 => {
            if width == 2 {
                "0.15915494309189532".into()
            } else {
                "0.15915494".into()
            }
        }
        251 => "src_vccz".into(),
        252 => "src_execz".into(),
        253 => "src_scc".into(),
        255 => {
            let l = literal.unwrap_or(0);
            format!("0x{l:x}")
        }
        256..=511 => range("v", v - 256),
        _ => format!("{v}"),
    }
}

fn vgpr(n: u32, width: u32) -> String {
    if width == 1 {
        format!("v{n}")
    } else {
        format!("v[{n}:{}]", n + width - 1)
    }
}

/// Whether the VOP3 destination of `name` is a scalar register.
fn scalar_vop3_dst(name: &str) -> bool {
    (name.starts_with("v_cmp_") && !name.starts_with("v_cmpx_"))
        || name.starts_with("v_readlane")
        || name.starts_with("v_readfirstlane")
        || name.starts_with("v_s_")
}

fn operands(target: Target, inst: &Inst, shape: &str, half: Half) -> Vec<String> {
    let b = |hi, lo| inst.bits(hi, lo);
    let lit = inst.literal;
    let mut out = Vec::new();
    let fam = inst.family;
    let vop3_neg = if fam == Family::Vop3 { b(63, 61) } else { 0 };
    let vop3_abs = if fam == Family::Vop3 && !shape.contains('e') { b(10, 8) } else { 0 };
    for tok in shape.split(' ').filter(|t| !t.is_empty()) {
        let (role, rest) = tok.split_at(1);
        let width: u32 = rest.parse().unwrap_or(1);
        let text = match (fam, role) {
            (_, "=") => rest.to_string(),
            (_, "l") => format!("0x{:x}", lit.unwrap_or(0)),
            (Family::Sop1 | Family::Sop2 | Family::Sopk, "d") => src_name(b(22, 16), width, lit),
            (Family::Sop1 | Family::Sop2 | Family::Sopc, "a") => src_name(b(7, 0), width, lit),
            (Family::Sop2 | Family::Sopc, "b") => src_name(b(15, 8), width, lit),
            (Family::Sopk, "k") => format!("0x{:x}", b(15, 0)),
            (Family::Smem, "d") => src_name(b(12, 6), width, lit),
            (Family::Smem, "a") => src_name(b(5, 0) * 2, width, lit),
            (Family::Smem, "k") => smem_offset(target, inst),
            (Family::Vop1, "d") if scalar_vop3_dst(inst.op.name) => src_name(b(24, 17), width, lit),
            (Family::Vop1 | Family::Vop2, "d") => vgpr(b(24, 17), width),
            (Family::Vop1 | Family::Vop2 | Family::Vopc, "a") if inst.dpp().is_some() => {
                vgpr(b(39, 32), width)
            }
            (Family::Vop1 | Family::Vop2 | Family::Vopc, "a") => src_name(b(8, 0), width, lit),
            (Family::Vop2 | Family::Vopc, "b") => vgpr(b(16, 9), width),
            (Family::Vop3 | Family::Vop3p, "d") => {
                if fam == Family::Vop3 && scalar_vop3_dst(inst.op.name) {
                    src_name(b(7, 0), width, lit)
                } else {
                    vgpr(b(7, 0), width)
                }
            }
            (Family::Vop3, "e") => src_name(b(14, 8), width, lit),
            (Family::Vop3 | Family::Vop3p, "a" | "b" | "c") => {
                let i = match role {
                    "a" => 0,
                    "b" => 1,
                    _ => 2,
                };
                let v = b(40 + 9 * i, 32 + 9 * i);
                let mut t = src_name(v, width, lit);
                if fam == Family::Vop3 && vop3_abs >> i & 1 == 1 {
                    t = format!("|{t}|");
                }
                if fam == Family::Vop3 && vop3_neg >> i & 1 == 1 {
                    t = format!("-{t}");
                }
                t
            }
            (Family::Vopd, "d") => match half {
                Half::X => vgpr(b(63, 56), 1),
                Half::Y => vgpr(b(55, 49) << 1 | (!b(56, 56) & 1), 1),
            },
            (Family::Vopd, "a") => match half {
                Half::X => src_name(b(8, 0), 1, lit),
                Half::Y => src_name(b(40, 32), 1, lit),
            },
            (Family::Vopd, "b") => match half {
                Half::X => vgpr(b(16, 9), 1),
                Half::Y => vgpr(b(48, 41), 1),
            },
            (Family::Ds, "d") => vgpr(b(63, 56), width),
            (Family::Ds, "a") => vgpr(b(39, 32), width),
            (Family::Ds, "b") => vgpr(b(47, 40), width),
            (Family::Ds, "c") => vgpr(b(55, 48), width),
            (Family::Flat | Family::Global | Family::Scratch, _) => {
                flat_operand(target, inst, role, width)
            }
            _ => format!("<{tok}?>"),
        };
        out.push(text);
    }
    if matches!(fam, Family::Flat | Family::Global) && atomic_returns(target, inst) {
        // Returning atomics print the destination first; it is as wide as the data, half of
        // it for compare-and-swap (data and compare value).
        let data = shape_width(shape, 'b');
        let width = if inst.op.name.contains("cmpswap") { data / 2 } else { data };
        out.insert(0, flat_operand(target, inst, "d", width.max(1)));
    }
    out
}

/// Whether a FLAT/GLOBAL atomic returns the old value: gfx11 GLC (bit 14), gfx12 TH bit 0
/// (`TH_ATOMIC_RETURN`).
pub fn atomic_returns(target: Target, inst: &Inst) -> bool {
    inst.op.name.contains("_atomic_")
        && match target {
            Target::Gfx11 => inst.bits(14, 14) == 1,
            Target::Gfx12 => inst.bits(52, 52) == 1,
        }
}

fn shape_width(shape: &str, role: char) -> u32 {
    shape.split(' ').find_map(|t| t.strip_prefix(role)).map_or(1, |w| w.parse().unwrap_or(1))
}

fn flat_saddr(target: Target, inst: &Inst) -> u32 {
    match target {
        Target::Gfx11 => inst.bits(54, 48),
        Target::Gfx12 => inst.bits(6, 0),
    }
}

fn flat_operand(target: Target, inst: &Inst, role: &str, width: u32) -> String {
    let b = |hi, lo| inst.bits(hi, lo);
    let saddr = flat_saddr(target, inst);
    match (target, role) {
        (_, "s") => {
            if saddr == 124 {
                "off".into()
            } else {
                src_name(saddr, 2, None)
            }
        }
        (Target::Gfx11, "d") => vgpr(b(63, 56), width),
        (Target::Gfx11, "a") => vgpr(b(39, 32), if saddr == 124 { width } else { 1 }),
        (Target::Gfx11, "b") => vgpr(b(47, 40), width),
        (Target::Gfx12, "d") => vgpr(b(39, 32), width),
        (Target::Gfx12, "a") => vgpr(b(71, 64), if saddr == 124 { width } else { 1 }),
        (Target::Gfx12, "b") => vgpr(b(62, 55), width),
        _ => format!("<{role}?>"),
    }
}

fn smem_offset(target: Target, inst: &Inst) -> String {
    let soffset = inst.bits(63, 57);
    let (offset, gfx11) = match target {
        Target::Gfx11 => (sign_extend(inst.bits(52, 32), 21), true),
        Target::Gfx12 => (sign_extend(inst.bits(55, 32), 24), false),
    };
    if soffset == 124 {
        if gfx11 && offset == 0 {
            "null".into()
        } else {
            format!("0x{offset:x}")
        }
    } else {
        let s = src_name(soffset, 1, None);
        if offset == 0 {
            s
        } else {
            format!("{s} offset:0x{offset:x}")
        }
    }
}

fn sign_extend(v: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((v << shift) as i32) >> shift
}

fn modifiers(target: Target, inst: &Inst, s: &mut String) {
    let b = |hi, lo| inst.bits(hi, lo);
    match inst.family {
        Family::Vop3 => {
            let vop3b = inst.op.shape.contains('e');
            if !vop3b {
                let op_sel = b(14, 11);
                if op_sel != 0 {
                    let n = inst.op.shape.matches(['a', 'b', 'c']).count();
                    let mut bits: Vec<String> =
                        (0..n).map(|i| (op_sel >> i & 1).to_string()).collect();
                    bits.push((op_sel >> 3 & 1).to_string());
                    let _ = write!(s, " op_sel:[{}]", bits.join(","));
                }
            }
            if b(15, 15) == 1 {
                s.push_str(" clamp");
            }
            match b(60, 59) {
                1 => s.push_str(" mul:2"),
                2 => s.push_str(" mul:4"),
                3 => s.push_str(" div:2"),
                _ => {}
            }
        }
        Family::Vop3p => {
            let n = inst.op.shape.matches(['a', 'b', 'c']).count() as u32;
            let op_sel = b(13, 11);
            let op_sel_hi = b(60, 59) | b(14, 14) << 2;
            let neg = b(63, 61);
            let neg_hi = b(10, 8);
            let mix = inst.op.name.contains("_mix_");
            let list =
                |v: u32| (0..n).map(|i| (v >> i & 1).to_string()).collect::<Vec<_>>().join(",");
            let all = (1u32 << n) - 1;
            if op_sel & all != 0 {
                let _ = write!(s, " op_sel:[{}]", list(op_sel));
            }
            let default_hi = if mix { 0 } else { all };
            if op_sel_hi & all != default_hi {
                let _ = write!(s, " op_sel_hi:[{}]", list(op_sel_hi));
            }
            if neg & all != 0 {
                let _ = write!(s, " neg_lo:[{}]", list(neg));
            }
            if neg_hi & all != 0 {
                let _ = write!(s, " neg_hi:[{}]", list(neg_hi));
            }
            if b(15, 15) == 1 {
                s.push_str(" clamp");
            }
        }
        Family::Ds => {
            let (o0, o1) = (b(7, 0), b(15, 8));
            if inst.op.name.starts_with("ds_swizzle") {
                let _ = write!(s, " offset:{}", swizzle(o1 << 8 | o0));
            } else if inst.op.name.contains("2addr") {
                if o0 != 0 {
                    let _ = write!(s, " offset0:{o0}");
                }
                if o1 != 0 {
                    let _ = write!(s, " offset1:{o1}");
                }
            } else if o1 << 8 | o0 != 0 {
                let _ = write!(s, " offset:{}", o1 << 8 | o0);
            }
            if target == Target::Gfx11 && b(17, 17) == 1 {
                s.push_str(" gds");
            }
        }
        Family::Flat | Family::Global | Family::Scratch => match target {
            Target::Gfx11 => {
                let off = sign_extend(b(12, 0), 13);
                if off != 0 {
                    let _ = write!(s, " offset:{off}");
                }
                if b(14, 14) == 1 {
                    s.push_str(" glc");
                }
                if b(15, 15) == 1 {
                    s.push_str(" slc");
                }
                if b(13, 13) == 1 {
                    s.push_str(" dlc");
                }
            }
            Target::Gfx12 => {
                let off = sign_extend(b(95, 72), 24);
                if off != 0 {
                    let _ = write!(s, " offset:{off}");
                }
                let th = b(54, 52);
                if th == 1 && inst.op.name.contains("_atomic_") {
                    s.push_str(" th:TH_ATOMIC_RETURN");
                } else if th != 0 {
                    let _ = write!(s, " th:{th}");
                }
                match b(51, 50) {
                    1 => s.push_str(" scope:SCOPE_SE"),
                    2 => s.push_str(" scope:SCOPE_DEV"),
                    3 => s.push_str(" scope:SCOPE_SYS"),
                    _ => {}
                }
            }
        },
        Family::Smem if target == Target::Gfx11 => {
            if b(14, 14) == 1 {
                s.push_str(" glc");
            }
            if b(13, 13) == 1 {
                s.push_str(" dlc");
            }
        }
        _ => {}
    }
}

/// `AMDGPUInstPrinter::printSwizzle`: the bit-mask mode (offset bit 15 clear) with
/// and-mask 0x1f and or-mask 0 is `SWAP,xor` for a power-of-two xor-mask and `REVERSE,xor+1`
/// when xor + 1 is a power of two; with xor-mask 0, an or-mask below the group size
/// 0x20 - and-mask (a power of two > 1) is `BROADCAST,group,or`; anything else prints as the
/// raw offset.
fn swizzle(offset: u32) -> String {
    if offset & 0x8000 == 0 {
        let and = offset & 0x1f;
        let or = offset >> 5 & 0x1f;
        let xor = offset >> 10 & 0x1f;
        if and == 0x1f && or == 0 && xor.is_power_of_two() {
            return format!("swizzle(SWAP,{xor})");
        }
        if and == 0x1f && or == 0 && xor > 0 && (xor + 1).is_power_of_two() {
            return format!("swizzle(REVERSE,{})", xor + 1);
        }
        let group = 0x1f - and + 1;
        if group > 1 && group.is_power_of_two() && or < group && xor == 0 {
            return format!("swizzle(BROADCAST,{group},{or})");
        }
    }
    format!("0x{offset:x}")
}

fn sopp(target: Target, inst: &Inst, s: &mut String) {
    let imm = inst.bits(15, 0);
    let name = inst.op.name;
    let arg = match name {
        "s_endpgm"
        | "s_code_end"
        | "s_barrier"
        | "s_barrier_leave"
        | "s_icache_inv"
        | "s_wakeup"
        | "s_ttracedata"
        | "s_endpgm_saved"
        | "s_endpgm_ordered_ps_done"
        | "s_wait_idle" => {
            if imm == 0 {
                return;
            }
            format!("0x{imm:x}")
        }
        "s_nop" | "s_sleep" | "s_trap" | "s_setprio" | "s_setkill" => format!("{imm}"),
        n if n.starts_with("s_branch") || n.starts_with("s_cbranch") => format!("{imm}"),
        "s_delay_alu" => delay_alu(imm),
        "s_sendmsg" | "s_sendmsghalt" => sendmsg(imm),
        "s_waitcnt" if target == Target::Gfx11 => waitcnt_gfx11(imm),
        _ => format!("0x{imm:x}"),
    };
    s.push(' ');
    s.push_str(&arg);
}

/// `printSDelayALU`: instid0 [3:0], instskip [6:4], instid1 [10:7].
fn delay_alu(imm: u32) -> String {
    const ID: [&str; 12] = [
        "NO_DEP",
        "VALU_DEP_1",
        "VALU_DEP_2",
        "VALU_DEP_3",
        "VALU_DEP_4",
        "TRANS32_DEP_1",
        "TRANS32_DEP_2",
        "TRANS32_DEP_3",
        "FMA_ACCUM_CYCLE_1",
        "SALU_CYCLE_1",
        "SALU_CYCLE_2",
        "SALU_CYCLE_3",
    ];
    const SKIP: [&str; 6] = ["SAME", "NEXT", "SKIP_1", "SKIP_2", "SKIP_3", "SKIP_4"];
    let id0 = imm & 0xf;
    let skip = imm >> 4 & 7;
    let id1 = imm >> 7 & 0xf;
    let name = |i: u32, t: &[&str]| t.get(i as usize).map_or(format!("{i}"), |s| s.to_string());
    let mut parts = Vec::new();
    if id0 != 0 {
        parts.push(format!("instid0({})", name(id0, &ID)));
    }
    if skip != 0 {
        parts.push(format!("instskip({})", name(skip, &SKIP)));
    }
    if id1 != 0 {
        parts.push(format!("instid1({})", name(id1, &ID)));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join(" | ")
    }
}

/// `printSendMsg` for the messages compute code sends (SIDefines.h `SendMsg::Id`).
fn sendmsg(imm: u32) -> String {
    match imm {
        3 => "sendmsg(MSG_DEALLOC_VGPRS)".into(),
        _ => format!("0x{imm:x}"),
    }
}

/// gfx11 `s_waitcnt`: vmcnt [15:10], expcnt [2:0], lgkmcnt [9:4] (AMDGPUBaseInfo.cpp
/// `getVmcntBitShiftLo`/`getExpcntBitShift`/`getLgkmcntBitShift` for gfx11); a counter at its
/// maximum is not waited on and is not printed.
fn waitcnt_gfx11(imm: u32) -> String {
    let vm = imm >> 10 & 0x3f;
    let exp = imm & 7;
    let lgkm = imm >> 4 & 0x3f;
    let mut parts = Vec::new();
    if vm != 0x3f {
        parts.push(format!("vmcnt({vm})"));
    }
    if exp != 7 {
        parts.push(format!("expcnt({exp})"));
    }
    if lgkm != 0x3f {
        parts.push(format!("lgkmcnt({lgkm})"));
    }
    if parts.is_empty() {
        "0xffff".into()
    } else {
        parts.join(" ")
    }
}
