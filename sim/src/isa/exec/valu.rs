//! VOP1/VOP2/VOP3 (compares are handed to `vopc`): per-lane integer and
//! f32 vector ALU, carries, the division helpers and bitfield extracts.

use super::half::{f16_from_f64, f16_to_f64};
use super::vopc::CompareDst;
use super::{f, ExecError, Result, Step, VSrc};
use crate::isa::decode::{Dpp, Family};
use crate::isa::wave::{Wave, LANES, VCC_LO};

impl Step<'_> {
    pub(super) fn valu(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let fam = inst.family;
        let name = inst
            .op
            .name
            .strip_suffix("_e32")
            .or_else(|| inst.op.name.strip_suffix("_e64"))
            .unwrap_or(inst.op.name);
        // VOP3 input modifiers: abs [10:8] (not in VOP3B, whose [14:8] is the carry-out SGPR)
        // and neg [63:61], applied to f32 operands only; op_sel, clamp and omod are not
        // implemented.
        let float_op = name.contains("_f32") || name.contains("_f16");
        let (abs, neg) = if fam == Family::Vop3 {
            let vop3b = inst.op.shape.contains('e');
            let abs = if vop3b { 0 } else { inst.bits(10, 8) };
            let op_sel = if vop3b { 0 } else { inst.bits(14, 11) };
            let neg = inst.bits(63, 61);
            if op_sel != 0
                || inst.bits(15, 15) != 0
                || inst.bits(60, 59) != 0
                || ((abs | neg) != 0 && (!float_op || F32_MODS_REFUSED.contains(&name)))
            {
                return Err(self.unimplemented());
            }
            (abs, neg)
        } else {
            (0, 0)
        };
        // Sign bit of the operand: bit 15 for f16 operations (except conversions from f32).
        let sign_bit: u32 =
            if name.contains("_f16") && !name.ends_with("_f32") { 0x8000 } else { 0x8000_0000 };
        let m = |i: u32, x: u32| {
            let x = if abs >> i & 1 == 1 { x & !sign_bit } else { x };
            if neg >> i & 1 == 1 {
                x ^ sign_bit
            } else {
                x
            }
        };
        let (wa, wb, wc) = (self.width('a'), self.width('b'), self.width('c'));
        let (src0, src1, src2) = match fam {
            Family::Vop1 => (inst.bits(8, 0), 0, 0),
            Family::Vop2 | Family::Vopc => (inst.bits(8, 0), inst.bits(16, 9) + 256, 0),
            _ => (inst.bits(40, 32), inst.bits(49, 41), inst.bits(58, 50)),
        };
        let dpp = inst.dpp();
        let a = match dpp {
            // The DPP dword holds the real src0 VGPR in [7:0] (bits 39:32 of the instruction).
            Some(_) => VSrc::Vgpr(inst.bits(39, 32) as usize),
            None => self.vsrc(w, src0, wa)?,
        };
        let b = self.vsrc(w, src1, wb)?;
        let c = self.vsrc(w, src2, wc)?;
        let dst = match fam {
            Family::Vop1 | Family::Vop2 => inst.bits(24, 17),
            _ => inst.bits(7, 0),
        };
        let exec = w.exec();
        // Compares: v_cmp writes a mask (VCC for VOPC, the SGPR destination for VOP3),
        // v_cmpx writes EXEC.
        if let Some(rest) = name.strip_prefix("v_cmpx_").or_else(|| name.strip_prefix("v_cmp_")) {
            let to = if name.starts_with("v_cmpx_") {
                CompareDst::Exec
            } else if fam == Family::Vopc {
                CompareDst::Sgpr(VCC_LO)
            } else {
                CompareDst::Sgpr(dst)
            };
            return self.vcmp(w, rest, [a, b], wa == 2, m, to);
        }
        if name == "v_s_sqrt_f32" {
            // gfx12 scalar transcendental in VOP3: SGPR in, SGPR out (correctly rounded).
            let x = m(0, self.scalar_src(w, src0, 1)? as u32);
            w.set_s(dst, f32::from_bits(x).sqrt().to_bits());
            return Ok(());
        }
        if name == "v_readfirstlane_b32" {
            let lane = if exec == 0 { 0 } else { exec.trailing_zeros() as usize };
            w.set_s(dst, Self::lane32(w, a, lane));
            return Ok(());
        }
        if name == "v_readlane_b32" {
            let lane = (self.scalar_src(w, src1, 1)? as usize) % LANES;
            w.set_s(dst, Self::lane32(w, a, lane));
            return Ok(());
        }
        let carry_in = match (fam, name) {
            (Family::Vop2, "v_add_co_ci_u32" | "v_cndmask_b32") => w.vcc(),
            (Family::Vop3, "v_add_co_ci_u32" | "v_cndmask_b32") => {
                self.scalar_src(w, src2, 1)? as u32
            }
            _ => 0,
        };
        let op = Op::of(name).ok_or_else(|| self.unimplemented())?;
        let wide_dst = self.width('d') == 2;
        // All 32 lanes are computed from gathered operand arrays, one loop per operation (so
        // the compiler can vectorise it); only the active lanes are written back.
        let gather = |s: VSrc, i: u32| -> [u32; LANES] {
            let mut out = match s {
                VSrc::Vgpr(r) => w.vgpr.get(r).copied().unwrap_or([0; LANES]),
                VSrc::Scalar(x) => [x as u32; LANES],
            };
            if (abs | neg) >> i & 1 == 1 {
                out.iter_mut().for_each(|v| *v = m(i, *v));
            }
            out
        };
        let high = |s: VSrc| -> [u32; LANES] {
            match s {
                VSrc::Vgpr(r) => w.vgpr.get(r + 1).copied().unwrap_or([0; LANES]),
                VSrc::Scalar(x) => [(x >> 32) as u32; LANES],
            }
        };
        let (mut xs, ys, zs) = (gather(a, 0), gather(b, 1), gather(c, 2));
        let mut exec = exec;
        if let Some(d) = dpp {
            let (src, written) = self.dpp_lanes(d, &xs, exec, wa)?;
            xs = src;
            exec &= written;
        }
        // Operations that may stop on an active lane are checked before anything is written.
        for lane in (0..LANES).filter(|l| exec >> l & 1 == 1) {
            match op {
                Op::DivScaleF32 if !div_scale_is_identity(ys[lane], zs[lane]) => {
                    return Err(ExecError::Unimplemented {
                        mnemonic: "v_div_scale_f32 (operands outside the unscaled range)",
                        va: self.va,
                    });
                }
                Op::DivFmasF32 if w.vcc() >> lane & 1 == 1 => {
                    return Err(ExecError::Unimplemented {
                        mnemonic: "v_div_fmas_f32 (scaled, VCC set)",
                        va: self.va,
                    });
                }
                _ => {}
            }
        }
        // 16-bit results replace the low half of the destination and keep its high half.
        let old = w.vgpr.get(dst as usize).copied().unwrap_or([0; LANES]);
        let mut rs = [0u64; LANES];
        let mut carries = [false; LANES];
        macro_rules! each {
            (|$x:ident, $y:ident, $z:ident, $l:ident| $e:expr) => {
                for $l in 0..LANES {
                    #[allow(unused_variables)]
                    let ($x, $y, $z) = (xs[$l], ys[$l], zs[$l]);
                    rs[$l] = $e;
                }
            };
        }
        let fma = |x: u32, y: u32, z: u32| {
            u64::from(f32::from_bits(x).mul_add(f32::from_bits(y), f32::from_bits(z)).to_bits())
        };
        match op {
            Op::MovB32 => each!(|x, y, z, l| u64::from(x)),
            Op::NotB32 => each!(|x, y, z, l| u64::from(!x)),
            Op::OrB32 => each!(|x, y, z, l| u64::from(x | y)),
            Op::AndB32 => each!(|x, y, z, l| u64::from(x & y)),
            Op::XorB32 => each!(|x, y, z, l| u64::from(x ^ y)),
            Op::AddNcU32 => each!(|x, y, z, l| u64::from(x.wrapping_add(y))),
            Op::LshlrevB32 => each!(|x, y, z, l| u64::from(y << (x & 31))),
            Op::LshrrevB32 => each!(|x, y, z, l| u64::from(y >> (x & 31))),
            Op::AshrrevI32 => each!(|x, y, z, l| u64::from(((y as i32) >> (x & 31)) as u32)),
            Op::LshlrevB64 => {
                let yh = high(b);
                each!(|x, y, z, l| (u64::from(y) | u64::from(yh[l]) << 32) << (x & 63))
            }
            Op::CndmaskB32 => {
                each!(|x, y, z, l| u64::from(if carry_in >> l & 1 == 1 { y } else { x }))
            }
            Op::AddCoU32 | Op::AddCoCiU32 => {
                let ci = if matches!(op, Op::AddCoCiU32) { carry_in } else { 0 };
                each!(|x, y, z, l| u64::from(x) + u64::from(y) + u64::from(ci >> l & 1));
                for (c, r) in carries.iter_mut().zip(rs.iter_mut()) {
                    *c = *r >> 32 != 0;
                    *r &= 0xffff_ffff;
                }
            }
            Op::AddF32 => each!(|x, y, z, l| u64::from(f(x, y, |p, q| p + q))),
            Op::MulF32 => each!(|x, y, z, l| u64::from(f(x, y, |p, q| p * q))),
            Op::FmacF32 => {
                let acc = w.vgpr.get(dst as usize).copied().unwrap_or([0; LANES]);
                each!(|x, y, z, l| fma(x, y, acc[l]))
            }
            Op::FmaF32 | Op::DivFmasF32 => each!(|x, y, z, l| fma(x, y, z)),
            // Correctly rounded: within the 1 ULP the ISA documents for V_RCP_F32 and
            // V_SQRT_F32 (hardware results may differ from these in the last bit).
            Op::RcpF32 => each!(|x, y, z, l| u64::from((1.0 / f32::from_bits(x)).to_bits())),
            Op::SqrtF32 => each!(|x, y, z, l| u64::from(f32::from_bits(x).sqrt().to_bits())),
            Op::DivScaleF32 => each!(|x, y, z, l| u64::from(x)),
            Op::DivFixupF32 => each!(|x, y, z, l| u64::from(div_fixup(x, y, z))),
            Op::CvtF32I32 => each!(|x, y, z, l| u64::from((x as i32 as f32).to_bits())),
            Op::CvtF32U32 => each!(|x, y, z, l| u64::from((x as f32).to_bits())),
            Op::LshrrevB16 => each!(|x, y, z, l| u64::from((y & 0xffff) >> (x & 15))),
            Op::MbcntLoU32B32 => {
                each!(|x, y, z, l| u64::from((x & ((1u32 << l) - 1)).count_ones().wrapping_add(y)))
            }
            Op::MadU64U32 | Op::MadCoU64U32 => {
                let zh = high(c);
                for l in 0..LANES {
                    let z = u64::from(zs[l]) | u64::from(zh[l]) << 32;
                    let p = u128::from(xs[l]) * u128::from(ys[l]) + u128::from(z);
                    carries[l] = p >> 64 != 0;
                    rs[l] = p as u64;
                }
            }
            Op::SubF32 => each!(|x, y, z, l| u64::from(f(x, y, |p, q| p - q))),
            Op::SubrevNcU32 => each!(|x, y, z, l| u64::from(y.wrapping_sub(x))),
            Op::CvtF32Ubyte0 => each!(|x, y, z, l| u64::from(((x & 0xff) as f32).to_bits())),
            Op::CvtF32F16 => each!(|x, y, z, l| u64::from(f16_to_f32_bits(x as u16))),
            Op::AndOrB32 => each!(|x, y, z, l| u64::from((x & y) | z)),
            Op::PermB32 => each!(|x, y, z, l| u64::from(perm_b32(x, y, z))),
            Op::MulU32U24 => {
                each!(|x, y, z, l| u64::from((x & 0xff_ffff).wrapping_mul(y & 0xff_ffff)))
            }
            Op::MulHiU32U24 => {
                each!(|x, y, z, l| (u64::from(x & 0xff_ffff) * u64::from(y & 0xff_ffff)) >> 32)
            }
            Op::BfeU32 => each!(|x, y, z, l| u64::from(bfe_u32(x, y, z))),
            Op::LshrrevB64 => {
                let yh = high(b);
                each!(|x, y, z, l| (u64::from(y) | u64::from(yh[l]) << 32) >> (x & 63))
            }
            Op::SubNcU32 => each!(|x, y, z, l| u64::from(x.wrapping_sub(y))),
            Op::LshlOrB32 => each!(|x, y, z, l| u64::from((x << (y & 31)) | z)),
            Op::XadU32 => each!(|x, y, z, l| u64::from((x ^ y).wrapping_add(z))),
            Op::Or3B32 => each!(|x, y, z, l| u64::from(x | y | z)),
            Op::MulLoU32 => each!(|x, y, z, l| u64::from(x.wrapping_mul(y))),
            Op::MulHiU32 => each!(|x, y, z, l| (u64::from(x) * u64::from(y)) >> 32),
            Op::MulHiI32 => each!(|x, y, z, l| u64::from(
                ((i64::from(x as i32) * i64::from(y as i32)) >> 32) as u32
            )),
            Op::MaxI32 => each!(|x, y, z, l| u64::from((x as i32).max(y as i32) as u32)),
            Op::MinI32 => each!(|x, y, z, l| u64::from((x as i32).min(y as i32) as u32)),
            Op::MaxU32 => each!(|x, y, z, l| u64::from(x.max(y))),
            Op::MinU32 => each!(|x, y, z, l| u64::from(x.min(y))),
            Op::BcntU32B32 => each!(|x, y, z, l| u64::from(x.count_ones().wrapping_add(y))),
            Op::ClzI32U32 => {
                each!(|x, y, z, l| u64::from(if x == 0 { u32::MAX } else { x.leading_zeros() }))
            }
            Op::RcpIflagF32 => each!(|x, y, z, l| u64::from((1.0 / f32::from_bits(x)).to_bits())),
            Op::CvtU32F32 => each!(|x, y, z, l| u64::from(f32::from_bits(x) as u32)),
            Op::CvtI32F32 => each!(|x, y, z, l| u64::from(f32::from_bits(x) as i32 as u32)),
            Op::SubNcU16 => each!(|x, y, z, l| u64::from(lo16(old[l], x.wrapping_sub(y)))),
            Op::AddNcU16 => each!(|x, y, z, l| u64::from(lo16(old[l], x.wrapping_add(y)))),
            Op::MulLoU16 => each!(|x, y, z, l| u64::from(lo16(old[l], x.wrapping_mul(y)))),
            Op::AddF16 => each!(|x, y, z, l| u64::from(lo16(old[l], h2(x, y, |p, q| p + q)))),
            Op::SubF16 => each!(|x, y, z, l| u64::from(lo16(old[l], h2(x, y, |p, q| p - q)))),
            Op::MulF16 => each!(|x, y, z, l| u64::from(lo16(old[l], h2(x, y, |p, q| p * q)))),
            Op::CvtF16F32 => each!(|x, y, z, l| u64::from(lo16(
                old[l],
                u32::from(f16_from_f64(f64::from(f32::from_bits(x))))
            ))),
            Op::BfeI32 => each!(|x, y, z, l| u64::from(bfe_i32(x, y, z))),
        }
        let mut carry_out = 0u32;
        for (l, &c) in carries.iter().enumerate() {
            carry_out |= u32::from(c && exec >> l & 1 == 1) << l;
        }
        for (half, reg) in [(0u32, dst), (32, dst + 1)] {
            if half == 32 && !wide_dst {
                break;
            }
            if let Some(r) = w.vgpr.get_mut(reg as usize) {
                for (l, v) in r.iter_mut().enumerate() {
                    if exec >> l & 1 == 1 {
                        *v = (rs[l] >> half) as u32;
                    }
                }
            }
        }
        match (fam, name) {
            (Family::Vop2, "v_add_co_ci_u32") => w.set_s(VCC_LO, carry_out),
            // VOP3B: the carry-out (for v_div_scale_f32: the "scaled" flag, 0 here) goes to
            // the SGPR in [14:8].
            (
                Family::Vop3,
                "v_add_co_u32" | "v_add_co_ci_u32" | "v_mad_u64_u32" | "v_mad_co_u64_u32"
                | "v_div_scale_f32",
            ) => w.set_s(inst.bits(14, 8), carry_out),
            _ => {}
        }
        Ok(())
    }
}

impl Step<'_> {
    /// src0 after the DPP lane selection `d` (SIDefines.h `DppCtrl`; AMD RDNA3/RDNA4 ISA,
    /// "DPP"), and the mask of lanes that are written: DPP16 writes only the rows of
    /// row_mask and the banks (4-lane groups of a row) of bank_mask; a lane whose source is
    /// outside its row (row_shl/shr) reads 0 with bound_ctrl, else it is not written. A read of
    /// an inactive source lane without fetch-inactive, DPP modifiers (neg/abs) and 64-bit
    /// operands are reported as unimplemented.
    fn dpp_lanes(
        &self,
        d: Dpp,
        xs: &[u32; LANES],
        exec: u32,
        width: u32,
    ) -> Result<([u32; LANES], u32)> {
        let unsupported =
            |what: &'static str| ExecError::Unimplemented { mnemonic: what, va: self.va };
        if width != 1 {
            return Err(unsupported("DPP with a 64-bit operand"));
        }
        let mut out = [0u32; LANES];
        let mut written = 0u32;
        for (lane, o) in out.iter_mut().enumerate() {
            let (from, fi, zero_if_invalid) = match d {
                Dpp::Dpp8 { sel, fi } => {
                    (Some((lane & !7) | (sel >> (3 * (lane & 7)) & 7) as usize), fi, false)
                }
                Dpp::Dpp16 { ctrl, fi, bound_ctrl, row_mask, bank_mask } => {
                    if self.inst.bits(55, 52) != 0 {
                        return Err(unsupported("DPP16 with neg/abs modifiers"));
                    }
                    let (row, idx) = (lane & !15, lane & 15);
                    if row_mask >> (lane / 16) & 1 == 0 || bank_mask >> (idx / 4) & 1 == 0 {
                        continue;
                    }
                    let c = ctrl as usize;
                    let src = match ctrl {
                        0x00..=0xff => Some((lane & !3) | (c >> (2 * (lane & 3)) & 3)),
                        0x101..=0x10f => (idx + (c & 15) < 16).then(|| lane + (c & 15)),
                        0x111..=0x11f => idx.checked_sub(c & 15).map(|i| row + i),
                        0x121..=0x12f => Some(row + (idx + 16 - (c & 15)) % 16),
                        0x140 => Some(row + 15 - idx),
                        0x141 => Some((lane & !7) + 7 - (lane & 7)),
                        0x150..=0x15f => Some(row + (c & 15)),
                        0x160..=0x16f => Some(row + (idx ^ (c & 15))),
                        _ => return Err(unsupported("DPP16 dpp_ctrl")),
                    };
                    (src, fi, bound_ctrl)
                }
            };
            match from {
                Some(f) if exec >> f & 1 == 1 || fi => {
                    *o = xs[f];
                    written |= 1 << lane;
                }
                Some(_) if exec >> lane & 1 == 1 => {
                    return Err(unsupported("DPP read of an inactive lane"));
                }
                Some(_) => {}
                None if zero_if_invalid => written |= 1 << lane,
                None => {}
            }
        }
        Ok((out, written))
    }
}

/// The per-lane VALU operations, resolved from the mnemonic once per instruction.
#[derive(Clone, Copy)]
enum Op {
    MovB32,
    NotB32,
    OrB32,
    AndB32,
    XorB32,
    AddNcU32,
    LshlrevB32,
    LshrrevB32,
    AshrrevI32,
    LshlrevB64,
    CndmaskB32,
    AddCoU32,
    AddCoCiU32,
    AddF32,
    MulF32,
    FmacF32,
    FmaF32,
    RcpF32,
    SqrtF32,
    DivScaleF32,
    DivFmasF32,
    DivFixupF32,
    CvtF32I32,
    CvtF32U32,
    LshrrevB16,
    MbcntLoU32B32,
    MadU64U32,
    MadCoU64U32,
    SubF32,
    SubrevNcU32,
    CvtF32Ubyte0,
    CvtF32F16,
    AndOrB32,
    PermB32,
    MulU32U24,
    MulHiU32U24,
    BfeU32,
    BfeI32,
    LshrrevB64,
    SubNcU32,
    LshlOrB32,
    XadU32,
    Or3B32,
    MulLoU32,
    MulHiU32,
    MulHiI32,
    MaxI32,
    MinI32,
    MaxU32,
    MinU32,
    BcntU32B32,
    ClzI32U32,
    RcpIflagF32,
    CvtU32F32,
    CvtI32F32,
    SubNcU16,
    AddNcU16,
    MulLoU16,
    AddF16,
    SubF16,
    MulF16,
    CvtF16F32,
}

/// Mnemonics containing `_f32` whose sources are not f32, so the VOP3 abs/neg bits (which
/// this interpreter applies to bit 31) would be wrong: refused when set.
const F32_MODS_REFUSED: [&str; 2] = ["v_cvt_f32_f16", "v_cvt_f32_ubyte0"];

impl Op {
    fn of(name: &str) -> Option<Op> {
        Some(match name {
            "v_mov_b32" => Op::MovB32,
            "v_not_b32" => Op::NotB32,
            "v_or_b32" => Op::OrB32,
            "v_and_b32" => Op::AndB32,
            "v_xor_b32" => Op::XorB32,
            "v_add_nc_u32" => Op::AddNcU32,
            "v_lshlrev_b32" => Op::LshlrevB32,
            "v_lshrrev_b32" => Op::LshrrevB32,
            "v_ashrrev_i32" => Op::AshrrevI32,
            "v_lshlrev_b64" => Op::LshlrevB64,
            "v_cndmask_b32" => Op::CndmaskB32,
            "v_add_co_u32" => Op::AddCoU32,
            "v_add_co_ci_u32" => Op::AddCoCiU32,
            "v_add_f32" => Op::AddF32,
            "v_mul_f32" => Op::MulF32,
            "v_fmac_f32" => Op::FmacF32,
            "v_fma_f32" => Op::FmaF32,
            "v_rcp_f32" => Op::RcpF32,
            "v_sqrt_f32" => Op::SqrtF32,
            "v_div_scale_f32" => Op::DivScaleF32,
            "v_div_fmas_f32" => Op::DivFmasF32,
            "v_div_fixup_f32" => Op::DivFixupF32,
            "v_cvt_f32_i32" => Op::CvtF32I32,
            "v_cvt_f32_u32" => Op::CvtF32U32,
            "v_lshrrev_b16" => Op::LshrrevB16,
            "v_mbcnt_lo_u32_b32" => Op::MbcntLoU32B32,
            "v_mad_u64_u32" => Op::MadU64U32,
            "v_mad_co_u64_u32" => Op::MadCoU64U32,
            "v_sub_f32" => Op::SubF32,
            "v_subrev_nc_u32" => Op::SubrevNcU32,
            "v_cvt_f32_ubyte0" => Op::CvtF32Ubyte0,
            "v_cvt_f32_f16" => Op::CvtF32F16,
            "v_and_or_b32" => Op::AndOrB32,
            "v_perm_b32" => Op::PermB32,
            "v_mul_u32_u24" => Op::MulU32U24,
            "v_mul_hi_u32_u24" => Op::MulHiU32U24,
            "v_bfe_u32" => Op::BfeU32,
            "v_bfe_i32" => Op::BfeI32,
            "v_lshrrev_b64" => Op::LshrrevB64,
            "v_sub_nc_u32" => Op::SubNcU32,
            "v_lshl_or_b32" => Op::LshlOrB32,
            "v_xad_u32" => Op::XadU32,
            "v_or3_b32" => Op::Or3B32,
            "v_mul_lo_u32" => Op::MulLoU32,
            "v_mul_hi_u32" => Op::MulHiU32,
            "v_mul_hi_i32" => Op::MulHiI32,
            "v_max_i32" => Op::MaxI32,
            "v_min_i32" => Op::MinI32,
            "v_max_u32" => Op::MaxU32,
            "v_min_u32" => Op::MinU32,
            "v_bcnt_u32_b32" => Op::BcntU32B32,
            "v_clz_i32_u32" => Op::ClzI32U32,
            "v_rcp_iflag_f32" => Op::RcpIflagF32,
            "v_cvt_u32_f32" => Op::CvtU32F32,
            "v_cvt_i32_f32" => Op::CvtI32F32,
            "v_sub_nc_u16" => Op::SubNcU16,
            "v_add_nc_u16" => Op::AddNcU16,
            "v_mul_lo_u16" => Op::MulLoU16,
            "v_add_f16" => Op::AddF16,
            "v_sub_f16" => Op::SubF16,
            "v_mul_f16" => Op::MulF16,
            "v_cvt_f16_f32" => Op::CvtF16F32,
            _ => return None,
        })
    }
}

/// Whether V_DIV_SCALE_F32 leaves its operand unscaled (result S0, VCC 0) for denominator
/// `den` and numerator `num`: both normal with biased exponents in [80, 174], so the
/// exponent difference, 1/den and num/den stay far from the overflow and denormal limits
/// where the instruction scales. Outside this range the interpreter reports the instruction
/// as unimplemented rather than guess the scaling.
fn div_scale_is_identity(den: u32, num: u32) -> bool {
    let exp = |x: u32| (x >> 23) & 0xff;
    (80..=174).contains(&exp(den)) && (80..=174).contains(&exp(num))
}

/// V_DIV_FIXUP_F32 (S0 quotient, S1 denominator, S2 numerator): NaN operands give a quiet
/// NaN, 0/0 and inf/inf the default NaN, x/0 and inf/x infinity, x/inf and 0/x zero, each
/// with the sign of the true quotient; otherwise S0 with that sign.
fn div_fixup(q: u32, den: u32, num: u32) -> u32 {
    let (fd, fn_) = (f32::from_bits(den), f32::from_bits(num));
    let sign = (den ^ num) & 0x8000_0000;
    if fd.is_nan() {
        return den | 0x0040_0000;
    }
    if fn_.is_nan() {
        return num | 0x0040_0000;
    }
    if (fd == 0.0 && fn_ == 0.0) || (fd.is_infinite() && fn_.is_infinite()) {
        return 0xffc0_0000;
    }
    if fd == 0.0 || fn_.is_infinite() {
        return sign | 0x7f80_0000;
    }
    if fd.is_infinite() || fn_ == 0.0 {
        return sign;
    }
    (q & 0x7fff_ffff) | sign
}

/// `new`'s low 16 bits over `old`'s high 16 bits.
fn lo16(old: u32, new: u32) -> u32 {
    (old & 0xffff_0000) | (new & 0xffff)
}

/// A binary16 operation on the low halves of `x` and `y`, computed exactly in f64 and rounded
/// once (see `half`).
fn h2(x: u32, y: u32, op: impl Fn(f64, f64) -> f64) -> u32 {
    u32::from(f16_from_f64(op(f16_to_f64(x as u16), f16_to_f64(y as u16))))
}

/// V_PERM_B32: byte i of the result is selected by byte i of `sel` from the 8 bytes of
/// {S0, S1} (S1 the low dword): 0..=7 that byte, 8..=11 the sign (bit 15, 31, 47, 63)
/// replicated, 12 zero, 13 and above 0xff.
fn perm_b32(s0: u32, s1: u32, sel: u32) -> u32 {
    let data = (u64::from(s0) << 32) | u64::from(s1);
    (0..4).fold(0u32, |acc, i| {
        let s = (sel >> (8 * i)) & 0xff;
        let byte = match s {
            0..=7 => (data >> (8 * s)) & 0xff,
            8..=11 => {
                if data >> (16 * (s - 8) + 15) & 1 == 1 {
                    0xff
                } else {
                    0
                }
            }
            12 => 0,
            _ => 0xff,
        };
        acc | (byte as u32) << (8 * i)
    })
}

fn bfe_u32(x: u32, offset: u32, width: u32) -> u32 {
    // v_bfe_u32: (S0 >> S1[4:0]) & ((1 << S2[4:0]) - 1).
    let (o, n) = (offset & 31, width & 31);
    (x >> o) & ((1u32 << n) - 1)
}

fn bfe_i32(x: u32, offset: u32, width: u32) -> u32 {
    let (o, n) = (offset & 31, width & 31);
    if n == 0 {
        return 0;
    }
    let v = bfe_u32(x, o, n);
    let shift = 32 - n;
    (((v << shift) as i32) >> shift) as u32
}

/// V_CVT_F32_F16: the IEEE binary16 `h` (1 sign, 5 exponent bits biased by 15, 10 mantissa
/// bits) as the f32 of the same value, exact (denormals become normal f32s, infinities stay
/// infinite, NaNs become quiet NaNs with the payload shifted into the f32 mantissa).
fn f16_to_f32_bits(h: u16) -> u32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from(h >> 10) & 0x1f;
    let man = u32::from(h) & 0x3ff;
    match exp {
        0 if man == 0 => sign,
        0 => {
            // man * 2^-24: normalise so the leading one is bit 10.
            let shift = man.leading_zeros() - 21;
            let e = 127 - 15 + 1 - shift;
            sign | e << 23 | ((man << shift) & 0x3ff) << 13
        }
        0x1f if man == 0 => sign | 0x7f80_0000,
        // NaN: quieted (IEEE 754 conversion of a signalling NaN), payload kept.
        0x1f => sign | 0x7fc0_0000 | man << 13,
        _ => sign | (exp + 127 - 15) << 23 | man << 13,
    }
}
