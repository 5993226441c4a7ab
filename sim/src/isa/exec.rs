//! Executing a decoded [`Program`] on one [`Wave`]: scalar ALU, vector ALU, scalar and global
//! memory through [`GpuMemory`], and program control.
//!
//! Semantics follow AMD's "RDNA3 Instruction Set Architecture" / "RDNA4 Instruction Set
//! Architecture" reference guides (per-opcode descriptions in their SOP*, VOP*, SMEM and
//! FLAT chapters). Each vector instruction runs over the lanes enabled in EXEC; comparisons
//! write 0 for disabled lanes and carries likewise. An instruction, or a modifier (VOP3
//! abs/neg/clamp/omod/op_sel), this interpreter does not implement is
//! [`ExecError::Unimplemented`] naming the mnemonic and its VA: never a wrong result.
//!
//! Coverage: the instructions of pm4rt's nine kernels on both targets (scalar integer and
//! f32 ALU, SMEM loads, integer and f32 VALU incl. VOPD and `v_fma_mix_f32`, compares and
//! `v_cmpx`, LDS loads/stores and `ds_swizzle_b32` bit-mask mode, barriers, global
//! loads/stores and `global_atomic_max_u64`), plus neighbours of the same kind.
//!
//! Floating point: f32 arithmetic is Rust's IEEE-754 binary32 (round to nearest even,
//! denormals kept, fused `mul_add` for the FMA forms); the RSRC1 float mode is not read.
//! `v_rcp_f32` and `v_sqrt_f32` / `v_s_sqrt_f32` are correctly rounded, i.e. within the 1 ULP
//! the ISA guides state, so they may differ from a GPU in the last bit. The division helpers
//! are implemented for operands whose exponents keep `v_div_scale_f32` from scaling (see
//! `div_scale_is_identity`); other operands are reported as unimplemented.

use super::decode::{Family, Inst};
use super::program::Program;
use super::wave::{Wave, LANES, VCC_LO};
use crate::memory::GpuMemory;
use thiserror::Error;

/// Why a wave stopped abnormally.
#[derive(Debug, Error)]
pub enum ExecError {
    /// The interpreter does not implement this instruction (or this form of it).
    #[error("{mnemonic} at VA {va:#x} is not implemented by the ISA interpreter")]
    Unimplemented {
        /// LLVM mnemonic.
        mnemonic: &'static str,
        /// GPU VA of the instruction.
        va: u64,
    },
    /// A branch whose target is not an instruction of the kernel.
    #[error("branch at VA {va:#x} targets {target:#x}, which is not an instruction of the kernel")]
    BadBranch {
        /// VA of the branch.
        va: u64,
        /// VA it jumps to.
        target: u64,
    },
    /// The wave ran off the end of the code without `s_endpgm`.
    #[error("the wave ran past the end of the kernel's code at VA {va:#x}")]
    RanOffEnd {
        /// VA after the last instruction.
        va: u64,
    },
    /// An LDS access outside the workgroup's allocation.
    #[error("LDS access at byte {addr:#x} by the instruction at VA {va:#x} is outside the {size}-byte allocation")]
    LdsOutOfRange {
        /// VA of the instruction.
        va: u64,
        /// LDS byte address.
        addr: u32,
        /// LDS bytes allocated to the workgroup.
        size: usize,
    },
    /// The wave did not end within the step budget (a kernel that never ends).
    #[error("the wave did not end within {0} instructions")]
    StepLimit(u64),
    /// A memory access failed (page fault: `Error::Fault` with the VA).
    #[error(transparent)]
    Memory(#[from] pm4rt_core::Error),
}

type Result<T> = std::result::Result<T, ExecError>;

/// Why [`run_wave`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The wave executed `s_endpgm`.
    Ended,
    /// The wave reached a workgroup barrier (`s_barrier` on gfx11, `s_barrier_wait` on
    /// gfx12) and waits for the other waves of its workgroup; its pc is past the barrier.
    Barrier,
}

/// Run `wave` from its current pc until `s_endpgm` or a barrier, spending at most `*budget`
/// instructions (decremented). `lds` is the workgroup's LDS; `code_va` is the GPU VA of the
/// program's first byte (for error messages).
pub fn run_wave(
    program: &Program,
    wave: &mut Wave,
    mem: &GpuMemory,
    lds: &mut [u8],
    code_va: u64,
    budget: &mut u64,
) -> Result<Stop> {
    loop {
        if let Some(stop) = step_wave(program, wave, mem, lds, code_va, budget)? {
            return Ok(stop);
        }
    }
}

/// Execute one instruction of `wave` (nothing if it has ended): `Some` when the wave has
/// ended or has just reached a barrier.
fn step_wave(
    program: &Program,
    wave: &mut Wave,
    mem: &GpuMemory,
    lds: &mut [u8],
    code_va: u64,
    budget: &mut u64,
) -> Result<Option<Stop>> {
    if wave.ended {
        return Ok(Some(Stop::Ended));
    }
    if *budget == 0 {
        return Err(ExecError::StepLimit(0));
    }
    *budget -= 1;
    let Some(inst) = program.insts().get(wave.pc) else {
        let end = program.insts().last().map_or(0, |i| i.offset + i.size());
        return Err(ExecError::RanOffEnd { va: code_va + end as u64 });
    };
    let mut cx = Step {
        program,
        inst,
        mem,
        lds,
        va: code_va + inst.offset as u64,
        next: wave.pc + 1,
        barrier: false,
    };
    cx.execute(wave)?;
    let barrier = cx.barrier;
    wave.pc = cx.next;
    Ok(if barrier {
        Some(Stop::Barrier)
    } else if wave.ended {
        Some(Stop::Ended)
    } else {
        None
    })
}

/// Run the waves of one workgroup to completion. The waves advance round-robin, one
/// instruction each per round, as concurrent waves on a GPU would interleave (so a wave's
/// store is not seen by a sibling's load issued at the same point of the program); a wave
/// at a barrier waits until every wave that has not ended is at it (waves that ended do not
/// hold a barrier). `max_steps` bounds the instructions of the whole workgroup: a kernel
/// that never ends is [`ExecError::StepLimit`].
pub fn run_workgroup(
    program: &Program,
    waves: &mut [Wave],
    mem: &GpuMemory,
    lds: &mut [u8],
    code_va: u64,
    max_steps: u64,
) -> Result<()> {
    let mut budget = max_steps;
    let mut waiting = vec![false; waves.len()];
    loop {
        let mut running = 0;
        for (w, wait) in waves.iter_mut().zip(waiting.iter_mut()) {
            if *wait || w.ended {
                continue;
            }
            running += 1;
            let stop =
                step_wave(program, w, mem, lds, code_va, &mut budget).map_err(|e| match e {
                    ExecError::StepLimit(_) => ExecError::StepLimit(max_steps),
                    e => e,
                })?;
            if stop == Some(Stop::Barrier) {
                *wait = true;
            }
        }
        if running == 0 {
            if !waiting.iter().any(|&x| x) {
                return Ok(());
            }
            // Every live wave is at the barrier: release it.
            waiting.iter_mut().for_each(|x| *x = false);
        }
    }
}

struct Step<'a> {
    program: &'a Program,
    inst: &'a Inst,
    mem: &'a GpuMemory,
    lds: &'a mut [u8],
    va: u64,
    next: usize,
    barrier: bool,
}

/// A vector source: a VGPR or one value for all lanes.
#[derive(Clone, Copy)]
enum VSrc {
    Vgpr(usize),
    Scalar(u64),
}

impl Step<'_> {
    fn unimplemented(&self) -> ExecError {
        ExecError::Unimplemented { mnemonic: self.inst.op.name, va: self.va }
    }

    fn execute(&mut self, w: &mut Wave) -> Result<()> {
        match self.inst.family {
            Family::Sopp => self.sopp(w),
            Family::Sop1 | Family::Sop2 | Family::Sopc | Family::Sopk => self.salu(w),
            Family::Smem => self.smem(w),
            Family::Vop1 | Family::Vop2 | Family::Vopc | Family::Vop3 => self.valu(w),
            Family::Global => self.global(w),
            Family::Ds => self.ds(w),
            Family::Vopd => self.vopd(w),
            Family::Vop3p => self.vop3p(w),
            // gfx11 buffer_gl0_inv / buffer_gl1_inv: caches are coherent here.
            Family::Mubuf => Ok(()),
            _ => Err(self.unimplemented()),
        }
    }

    /// Dwords of operand `role` in the opcode's shape (1 when absent).
    fn width(&self, role: char) -> u32 {
        self.inst
            .op
            .shape
            .split(' ')
            .find(|t| t.starts_with(role))
            .and_then(|t| t[1..].parse().ok())
            .unwrap_or(1)
    }

    /// Value of a scalar source operand (9-bit operand number `v`), `width` dwords.
    fn scalar_src(&self, w: &Wave, v: u32, width: u32) -> Result<u64> {
        Ok(match v {
            0..=127 => {
                if width == 2 {
                    w.s64(v)
                } else {
                    u64::from(w.s(v))
                }
            }
            128..=192 => u64::from(v - 128),
            193..=208 => (-(i64::from(v) - 192)) as u64,
            240..=247 => {
                let f = [0.5f64, -0.5, 1.0, -1.0, 2.0, -2.0, 4.0, -4.0][(v - 240) as usize];
                if width == 2 {
                    f.to_bits()
                } else {
                    u64::from((f as f32).to_bits())
                }
            }
            253 => u64::from(w.scc),
            255 => u64::from(self.inst.literal.unwrap_or(0)),
            _ => return Err(self.unimplemented()),
        } & if width == 2 { u64::MAX } else { u64::from(u32::MAX) })
    }

    fn vsrc(&self, w: &Wave, v: u32, width: u32) -> Result<VSrc> {
        if v >= 256 {
            Ok(VSrc::Vgpr((v - 256) as usize))
        } else {
            Ok(VSrc::Scalar(self.scalar_src(w, v, width)?))
        }
    }

    fn lane32(w: &Wave, s: VSrc, lane: usize) -> u32 {
        match s {
            VSrc::Vgpr(r) => w.vgpr.get(r).map_or(0, |x| x[lane]),
            VSrc::Scalar(x) => x as u32,
        }
    }

    fn lane64(w: &Wave, s: VSrc, lane: usize) -> u64 {
        match s {
            VSrc::Vgpr(r) => {
                let lo = w.vgpr.get(r).map_or(0, |x| x[lane]);
                let hi = w.vgpr.get(r + 1).map_or(0, |x| x[lane]);
                u64::from(lo) | u64::from(hi) << 32
            }
            VSrc::Scalar(x) => x,
        }
    }

    fn set_v(w: &mut Wave, r: u32, lane: usize, v: u32) {
        if let Some(x) = w.vgpr.get_mut(r as usize) {
            x[lane] = v;
        }
    }

    fn branch(&mut self, simm16: u32) -> Result<()> {
        let rel = i64::from(simm16 as u16 as i16) * 4;
        let target = self.inst.offset as i64 + 4 + rel;
        let index = usize::try_from(target).ok().and_then(|t| self.program.index_of(t));
        match index {
            Some(i) => {
                self.next = i;
                Ok(())
            }
            None => Err(ExecError::BadBranch {
                va: self.va,
                target: (self.va as i64 - self.inst.offset as i64 + target) as u64,
            }),
        }
    }

    fn sopp(&mut self, w: &mut Wave) -> Result<()> {
        let imm = self.inst.bits(15, 0);
        let name = self.inst.op.name;
        let take = match name {
            "s_endpgm" => {
                w.ended = true;
                return Ok(());
            }
            // Scheduling hints and waits: the interpreter completes every access at once.
            "s_nop"
            | "s_delay_alu"
            | "s_clause"
            | "s_waitcnt"
            | "s_waitcnt_depctr"
            | "s_wait_loadcnt"
            | "s_wait_storecnt"
            | "s_wait_kmcnt"
            | "s_wait_dscnt"
            | "s_wait_samplecnt"
            | "s_wait_bvhcnt"
            | "s_wait_expcnt"
            | "s_wait_alu"
            | "s_set_inst_prefetch_distance"
            | "s_sendmsg" => return Ok(()),
            // gfx11 s_barrier; gfx12 s_barrier_wait (after s_barrier_signal -1).
            "s_barrier" | "s_barrier_wait" => {
                self.barrier = true;
                return Ok(());
            }
            "s_branch" => true,
            "s_cbranch_scc0" => !w.scc,
            "s_cbranch_scc1" => w.scc,
            "s_cbranch_vccz" => w.vcc() == 0,
            "s_cbranch_vccnz" => w.vcc() != 0,
            "s_cbranch_execz" => w.exec() == 0,
            "s_cbranch_execnz" => w.exec() != 0,
            _ => return Err(self.unimplemented()),
        };
        if take {
            self.branch(imm)?;
        }
        Ok(())
    }

    fn salu(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let fam = inst.family;
        let (wa, wb, wd) = (self.width('a'), self.width('b'), self.width('d'));
        let a = match fam {
            Family::Sopk => u64::from(inst.bits(15, 0)),
            _ => self.scalar_src(w, inst.bits(7, 0), wa)?,
        };
        let b = match fam {
            Family::Sop2 | Family::Sopc => self.scalar_src(w, inst.bits(15, 8), wb)?,
            _ => 0,
        };
        let d = inst.bits(22, 16);
        let (a32, b32) = (a as u32, b as u32);
        let name = inst.op.name;
        // (result, new SCC or None to keep it)
        let (r, scc): (u64, Option<bool>) = match name {
            "s_mov_b32" | "s_mov_b64" | "s_movk_i32" => (a, None),
            // gfx12 s_barrier_signal -1: the barrier is taken at s_barrier_wait.
            "s_barrier_signal" => return Ok(()),
            "s_not_b32" => (u64::from(!a32), Some(!a32 != 0)),
            "s_and_b32" => (u64::from(a32 & b32), Some(a32 & b32 != 0)),
            "s_or_b32" => (u64::from(a32 | b32), Some(a32 | b32 != 0)),
            "s_xor_b32" => (u64::from(a32 ^ b32), Some(a32 ^ b32 != 0)),
            "s_and_not1_b32" => (u64::from(a32 & !b32), Some(a32 & !b32 != 0)),
            "s_lshl_b32" => {
                let r = a32 << (b32 & 31);
                (u64::from(r), Some(r != 0))
            }
            "s_lshr_b32" => {
                let r = a32 >> (b32 & 31);
                (u64::from(r), Some(r != 0))
            }
            "s_lshl_b64" => {
                let r = a << (b32 & 63);
                (r, Some(r != 0))
            }
            "s_add_u32" | "s_add_co_u32" => {
                let (r, c) = a32.overflowing_add(b32);
                (u64::from(r), Some(c))
            }
            "s_addc_u32" | "s_add_co_ci_u32" => {
                let s = u64::from(a32) + u64::from(b32) + u64::from(w.scc);
                (s & 0xffff_ffff, Some(s >> 32 != 0))
            }
            "s_add_i32" | "s_add_co_i32" => {
                let (r, o) = (a32 as i32).overflowing_add(b32 as i32);
                (u64::from(r as u32), Some(o))
            }
            "s_mul_i32" => (u64::from(a32.wrapping_mul(b32)), None),
            "s_add_f32" => (u64::from(f(a32, b32, |p, q| p + q)), None),
            "s_mul_f32" => (u64::from(f(a32, b32, |p, q| p * q)), None),
            "s_fmac_f32" => {
                let acc = f32::from_bits(w.s(d));
                (u64::from(f32::from_bits(a32).mul_add(f32::from_bits(b32), acc).to_bits()), None)
            }
            "s_cvt_f32_u32" => (u64::from((a32 as f32).to_bits()), None),
            "s_mul_hi_u32" => ((u64::from(a32) * u64::from(b32)) >> 32, None),
            "s_mul_u64" => (a.wrapping_mul(b), None),
            "s_add_nc_u64" => (a.wrapping_add(b), None),
            "s_cselect_b32" | "s_cselect_b64" => (if w.scc { a } else { b }, None),
            "s_and_saveexec_b32" => {
                let old = w.exec();
                let e = a32 & old;
                w.set_exec(e);
                (u64::from(old), Some(e != 0))
            }
            n if n.starts_with("s_cmp_") => {
                let c = compare(&n[6..], a, b).ok_or_else(|| self.unimplemented())?;
                w.scc = c;
                return Ok(());
            }
            _ => return Err(self.unimplemented()),
        };
        if wd == 2 {
            w.set_s64(d, r);
        } else {
            w.set_s(d, r as u32);
        }
        if let Some(s) = scc {
            w.scc = s;
        }
        Ok(())
    }

    fn smem(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        if !inst.op.name.starts_with("s_load_b") {
            return Err(self.unimplemented());
        }
        let (offset, soffset) = match self.program.target() {
            super::Target::Gfx11 => (sign_extend(inst.bits(52, 32), 21), inst.bits(63, 57)),
            super::Target::Gfx12 => (sign_extend(inst.bits(55, 32), 24), inst.bits(63, 57)),
        };
        let base = w.s64(inst.bits(5, 0) * 2);
        let addr = base.wrapping_add(offset as i64 as u64).wrapping_add(u64::from(w.s(soffset)));
        let n = self.width('d');
        let d = inst.bits(12, 6);
        for i in 0..n {
            let v = self.mem.read_u32(addr.wrapping_add(u64::from(i) * 4))?;
            w.set_s(d + i, v);
        }
        Ok(())
    }

    fn valu(&mut self, w: &mut Wave) -> Result<()> {
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
        let (abs, neg) = if fam == Family::Vop3 {
            let vop3b = inst.op.shape.contains('e');
            let abs = if vop3b { 0 } else { inst.bits(10, 8) };
            let op_sel = if vop3b { 0 } else { inst.bits(14, 11) };
            let neg = inst.bits(63, 61);
            if op_sel != 0
                || inst.bits(15, 15) != 0
                || inst.bits(60, 59) != 0
                || ((abs | neg) != 0 && !name.contains("_f32"))
            {
                return Err(self.unimplemented());
            }
            (abs, neg)
        } else {
            (0, 0)
        };
        let m = |i: u32, x: u32| {
            let x = if abs >> i & 1 == 1 { x & 0x7fff_ffff } else { x };
            if neg >> i & 1 == 1 {
                x ^ 0x8000_0000
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
        let a = self.vsrc(w, src0, wa)?;
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
            let mut mask = 0u32;
            for lane in 0..LANES {
                if exec >> lane & 1 == 1 {
                    let (x, y) = if wa == 2 {
                        (Self::lane64(w, a, lane), Self::lane64(w, b, lane))
                    } else {
                        let x = m(0, Self::lane32(w, a, lane));
                        (u64::from(x), u64::from(m(1, Self::lane32(w, b, lane))))
                    };
                    let c = compare(rest, x, y).ok_or_else(|| self.unimplemented())?;
                    mask |= u32::from(c) << lane;
                }
            }
            if name.starts_with("v_cmpx_") {
                w.set_exec(mask);
            } else if fam == Family::Vopc {
                w.set_s(VCC_LO, mask);
            } else {
                w.set_s(dst, mask);
            }
            return Ok(());
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
        let carry_in = match (fam, name) {
            (Family::Vop2, "v_add_co_ci_u32" | "v_cndmask_b32") => w.vcc(),
            (Family::Vop3, "v_add_co_ci_u32" | "v_cndmask_b32") => {
                self.scalar_src(w, src2, 1)? as u32
            }
            _ => 0,
        };
        let mut carry_out = 0u32;
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let x = m(0, Self::lane32(w, a, lane));
            let y = m(1, Self::lane32(w, b, lane));
            let z = m(2, Self::lane32(w, c, lane));
            let cin = carry_in >> lane & 1;
            let r: u64 = match name {
                "v_mov_b32" => u64::from(x),
                "v_not_b32" => u64::from(!x),
                "v_or_b32" => u64::from(x | y),
                "v_and_b32" => u64::from(x & y),
                "v_xor_b32" => u64::from(x ^ y),
                "v_add_nc_u32" => u64::from(x.wrapping_add(y)),
                "v_lshlrev_b32" => u64::from(y << (x & 31)),
                "v_lshrrev_b32" => u64::from(y >> (x & 31)),
                "v_ashrrev_i32" => u64::from(((y as i32) >> (x & 31)) as u32),
                "v_lshlrev_b64" => Self::lane64(w, b, lane) << (x & 63),
                "v_cndmask_b32" => u64::from(if cin == 1 { y } else { x }),
                "v_add_co_u32" | "v_add_co_ci_u32" => {
                    let s = u64::from(x) + u64::from(y) + u64::from(cin);
                    carry_out |= ((s >> 32) as u32 & 1) << lane;
                    s & 0xffff_ffff
                }
                "v_add_f32" => u64::from(f(x, y, |p, q| p + q)),
                "v_mul_f32" => u64::from(f(x, y, |p, q| p * q)),
                "v_fmac_f32" => {
                    let acc = f32::from_bits(w.vgpr.get(dst as usize).map_or(0, |r| r[lane]));
                    u64::from(f32::from_bits(x).mul_add(f32::from_bits(y), acc).to_bits())
                }
                "v_fma_f32" => u64::from(
                    f32::from_bits(x).mul_add(f32::from_bits(y), f32::from_bits(z)).to_bits(),
                ),
                // Correctly rounded: within the 1 ULP the ISA documents for V_RCP_F32 and
                // V_SQRT_F32 (hardware results may differ from these in the last bit).
                "v_rcp_f32" => u64::from((1.0 / f32::from_bits(x)).to_bits()),
                "v_sqrt_f32" => u64::from(f32::from_bits(x).sqrt().to_bits()),
                "v_div_scale_f32" => {
                    if !div_scale_is_identity(y, z) {
                        return Err(ExecError::Unimplemented {
                            mnemonic: "v_div_scale_f32 (operands outside the unscaled range)",
                            va: self.va,
                        });
                    }
                    u64::from(x)
                }
                "v_div_fmas_f32" => {
                    if w.vcc() >> lane & 1 == 1 {
                        return Err(ExecError::Unimplemented {
                            mnemonic: "v_div_fmas_f32 (scaled, VCC set)",
                            va: self.va,
                        });
                    }
                    u64::from(
                        f32::from_bits(x).mul_add(f32::from_bits(y), f32::from_bits(z)).to_bits(),
                    )
                }
                "v_div_fixup_f32" => u64::from(div_fixup(x, y, z)),
                "v_cvt_f32_i32" => u64::from((x as i32 as f32).to_bits()),
                "v_cvt_f32_u32" => u64::from((x as f32).to_bits()),
                "v_lshrrev_b16" => u64::from((y & 0xffff) >> (x & 15)),
                "v_mbcnt_lo_u32_b32" => u64::from((x & ((1u32 << lane) - 1)).count_ones() + y),
                "v_mad_u64_u32" | "v_mad_co_u64_u32" => {
                    let z = Self::lane64(w, c, lane);
                    let p = u128::from(x) * u128::from(y) + u128::from(z);
                    carry_out |= u32::from(p >> 64 != 0) << lane;
                    p as u64
                }
                "v_bfe_u32" => u64::from(bfe_u32(x, y, z)),
                "v_bfe_i32" => u64::from(bfe_i32(x, y, z)),
                _ => return Err(self.unimplemented()),
            };
            Self::set_v(w, dst, lane, r as u32);
            if self.width('d') == 2 {
                Self::set_v(w, dst + 1, lane, (r >> 32) as u32);
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

    /// A global address: the 64-bit VGPR pair `vaddr` when `saddr` is off (null), else the
    /// SGPR pair `saddr` plus the 32-bit VGPR `vaddr`; plus the signed immediate offset.
    fn flat_addr(&self, w: &Wave, saddr: u32, vaddr: u32, offset: i32, lane: usize) -> u64 {
        let base = if saddr == super::wave::NULL {
            Self::lane64(w, VSrc::Vgpr(vaddr as usize), lane)
        } else {
            w.s64(saddr).wrapping_add(u64::from(Self::lane32(w, VSrc::Vgpr(vaddr as usize), lane)))
        };
        base.wrapping_add(offset as i64 as u64)
    }

    fn global(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let target = self.program.target();
        let (saddr, vaddr, vdata, vdst, offset) = match target {
            super::Target::Gfx11 => (
                inst.bits(54, 48),
                inst.bits(39, 32),
                inst.bits(47, 40),
                inst.bits(63, 56),
                sign_extend(inst.bits(12, 0), 13),
            ),
            super::Target::Gfx12 => (
                inst.bits(6, 0),
                inst.bits(71, 64),
                inst.bits(62, 55),
                inst.bits(39, 32),
                sign_extend(inst.bits(95, 72), 24),
            ),
        };
        let name = inst.op.name;
        if matches!(name, "global_wb" | "global_inv" | "global_wbinv") {
            // Caches are coherent in the simulator: write-back / invalidate have no effect.
            return Ok(());
        }
        if name == "global_atomic_max_u64" {
            let exec = w.exec();
            for lane in 0..LANES {
                if exec >> lane & 1 == 0 {
                    continue;
                }
                let addr = self.flat_addr(w, saddr, vaddr, offset, lane);
                let v = Self::lane64(w, VSrc::Vgpr(vdata as usize), lane);
                let old = self.mem.read_u64(addr)?;
                self.mem.write_u64(addr, old.max(v))?;
            }
            return Ok(());
        }
        let (load, bytes) = match name {
            "global_load_b32" => (true, 4),
            "global_load_b64" => (true, 8),
            "global_load_b128" => (true, 16),
            "global_load_u16" => (true, 2),
            "global_store_b32" => (false, 4),
            "global_store_b64" => (false, 8),
            "global_store_b128" => (false, 16),
            _ => return Err(self.unimplemented()),
        };
        let exec = w.exec();
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let base = if saddr == super::wave::NULL {
                Self::lane64(w, VSrc::Vgpr(vaddr as usize), lane)
            } else {
                w.s64(saddr).wrapping_add(u64::from(Self::lane32(
                    w,
                    VSrc::Vgpr(vaddr as usize),
                    lane,
                )))
            };
            let addr = base.wrapping_add(offset as i64 as u64);
            if load {
                let mut buf = [0u8; 16];
                self.mem.read(addr, &mut buf[..bytes])?;
                for i in 0..bytes.div_ceil(4) {
                    let v = u32::from_le_bytes([
                        buf[4 * i],
                        buf[4 * i + 1],
                        buf[4 * i + 2],
                        buf[4 * i + 3],
                    ]);
                    Self::set_v(w, vdst + i as u32, lane, v);
                }
            } else {
                let mut buf = [0u8; 16];
                for i in 0..bytes / 4 {
                    let v = Self::lane32(w, VSrc::Vgpr((vdata + i as u32) as usize), lane);
                    buf[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
                }
                self.mem.write(addr, &buf[..bytes])?;
            }
        }
        Ok(())
    }
}

impl Step<'_> {
    fn lds_range(&self, addr: u32, len: usize) -> Result<std::ops::Range<usize>> {
        let start = addr as usize;
        match start.checked_add(len) {
            Some(end) if end <= self.lds.len() => Ok(start..end),
            _ => Err(ExecError::LdsOutOfRange { va: self.va, addr, size: self.lds.len() }),
        }
    }

    fn ds(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let name = inst.op.name;
        let (vdst, addr, data0) = (inst.bits(63, 56), inst.bits(39, 32), inst.bits(47, 40));
        let offset = inst.bits(15, 8) << 8 | inst.bits(7, 0);
        let exec = w.exec();
        if name == "ds_swizzle_b32" {
            // The source VGPR is in the ADDR field. Bit-mask mode (offset bit 15 clear): lane
            // `l` reads lane ((l & and) | or) ^ xor, whether that lane is active or not.
            if offset & 0x8000 != 0 {
                return Err(self.unimplemented());
            }
            let (and, or, xor) = (offset & 0x1f, offset >> 5 & 0x1f, offset >> 10 & 0x1f);
            let src = w.vgpr.get(addr as usize).copied().unwrap_or([0; LANES]);
            for lane in 0..LANES {
                if exec >> lane & 1 == 1 {
                    let from = ((lane as u32 & and) | or) ^ xor;
                    Self::set_v(w, vdst, lane, src[from as usize & (LANES - 1)]);
                }
            }
            return Ok(());
        }
        let (store, dwords) = match name {
            "ds_store_b32" => (true, 1),
            "ds_store_b64" => (true, 2),
            "ds_store_b128" => (true, 4),
            "ds_load_b32" => (false, 1),
            "ds_load_b64" => (false, 2),
            "ds_load_b128" => (false, 4),
            _ => return Err(self.unimplemented()),
        };
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let a = Self::lane32(w, VSrc::Vgpr(addr as usize), lane).wrapping_add(offset);
            let range = self.lds_range(a, dwords * 4)?;
            for i in 0..dwords {
                let at = range.start + 4 * i;
                if store {
                    let v = Self::lane32(w, VSrc::Vgpr(data0 as usize + i), lane);
                    self.lds[at..at + 4].copy_from_slice(&v.to_le_bytes());
                } else {
                    let b = &self.lds[at..at + 4];
                    let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    Self::set_v(w, vdst + i as u32, lane, v);
                }
            }
        }
        Ok(())
    }

    /// VOP3P: `v_fma_mix_f32` only. Source `i` is an f16 (low half, or high half when
    /// op_sel[i]) converted exactly to f32 when op_sel_hi[i], else an f32; neg_lo negates and
    /// neg_hi takes the absolute value (AMD RDNA3/RDNA4 ISA, V_FMA_MIX_F32).
    fn vop3p(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        if inst.op.name != "v_fma_mix_f32" || inst.bits(15, 15) != 0 {
            return Err(self.unimplemented());
        }
        let op_sel = inst.bits(13, 11);
        let op_sel_hi = inst.bits(60, 59) | inst.bits(14, 14) << 2;
        let (neg, abs) = (inst.bits(63, 61), inst.bits(10, 8));
        let dst = inst.bits(7, 0);
        let srcs = [
            self.vsrc(w, inst.bits(40, 32), 1)?,
            self.vsrc(w, inst.bits(49, 41), 1)?,
            self.vsrc(w, inst.bits(58, 50), 1)?,
        ];
        let exec = w.exec();
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let mut v = [0f32; 3];
            for (i, src) in srcs.iter().enumerate() {
                let raw = Self::lane32(w, *src, lane);
                let mut x = if op_sel_hi >> i & 1 == 1 {
                    let half = if op_sel >> i & 1 == 1 { raw >> 16 } else { raw & 0xffff };
                    crate::kernels::f16::f16_to_f32(half as u16)
                } else {
                    f32::from_bits(raw)
                };
                if abs >> i & 1 == 1 {
                    x = x.abs();
                }
                if neg >> i & 1 == 1 {
                    x = -x;
                }
                v[i] = x;
            }
            Self::set_v(w, dst, lane, v[0].mul_add(v[1], v[2]).to_bits());
        }
        Ok(())
    }

    /// VOPD: both halves read their sources before either writes.
    fn vopd(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let Some(op_y) = inst.op_y else { return Err(self.unimplemented()) };
        let vdst_x = inst.bits(63, 56);
        let vdst_y = inst.bits(55, 49) << 1 | (!vdst_x & 1);
        let halves = [
            (inst.op.name, vdst_x, inst.bits(8, 0), inst.bits(16, 9) + 256),
            (op_y.name, vdst_y, inst.bits(40, 32), inst.bits(48, 41) + 256),
        ];
        let exec = w.exec();
        let vcc = w.vcc();
        let mut out = [[0u32; LANES]; 2];
        for (h, &(name, dst, s0, s1)) in halves.iter().enumerate() {
            let a = self.vsrc(w, s0, 1)?;
            let b = self.vsrc(w, s1, 1)?;
            let k = inst.literal.unwrap_or(0);
            for lane in 0..LANES {
                if exec >> lane & 1 == 0 {
                    continue;
                }
                let x = Self::lane32(w, a, lane);
                let y = Self::lane32(w, b, lane);
                let d = w.vgpr.get(dst as usize).map_or(0, |r| r[lane]);
                let (fx, fy) = (f32::from_bits(x), f32::from_bits(y));
                out[h][lane] = match name {
                    "v_dual_mov_b32" => x,
                    "v_dual_cndmask_b32" => {
                        if vcc >> lane & 1 == 1 {
                            y
                        } else {
                            x
                        }
                    }
                    "v_dual_and_b32" => x & y,
                    "v_dual_add_nc_u32" => x.wrapping_add(y),
                    "v_dual_lshlrev_b32" => y << (x & 31),
                    "v_dual_add_f32" => f(x, y, |p, q| p + q),
                    "v_dual_mul_f32" => f(x, y, |p, q| p * q),
                    "v_dual_sub_f32" => f(x, y, |p, q| p - q),
                    "v_dual_fmac_f32" => fx.mul_add(fy, f32::from_bits(d)).to_bits(),
                    "v_dual_fmaak_f32" => fx.mul_add(fy, f32::from_bits(k)).to_bits(),
                    "v_dual_fmamk_f32" => fx.mul_add(f32::from_bits(k), fy).to_bits(),
                    _ => {
                        return Err(ExecError::Unimplemented { mnemonic: name, va: self.va });
                    }
                };
            }
        }
        for (values, &(_, dst, _, _)) in out.iter().zip(&halves) {
            for (lane, &v) in values.iter().enumerate() {
                if exec >> lane & 1 == 1 {
                    Self::set_v(w, dst, lane, v);
                }
            }
        }
        Ok(())
    }
}

/// An f32 binary operation on raw bits (IEEE, round to nearest even, denormals kept).
fn f(x: u32, y: u32, op: impl Fn(f32, f32) -> f32) -> u32 {
    op(f32::from_bits(x), f32::from_bits(y)).to_bits()
}

/// `cond_type` (e.g. `gt_u64`, `lg_u32`, `ge_i32`) applied to `a`, `b`; None if unknown.
fn compare(cond_ty: &str, a: u64, b: u64) -> Option<bool> {
    let (cond, ty) = cond_ty.split_once('_')?;
    if ty == "f32" {
        return fcompare(cond, f32::from_bits(a as u32), f32::from_bits(b as u32));
    }
    let ord = match ty {
        "u32" | "u64" | "b32" | "b64" => a.cmp(&b),
        "i32" => (a as u32 as i32).cmp(&(b as u32 as i32)),
        "i64" => (a as i64).cmp(&(b as i64)),
        _ => return None,
    };
    use std::cmp::Ordering::*;
    Some(match cond {
        "eq" => ord == Equal,
        "lg" | "ne" => ord != Equal,
        "lt" => ord == Less,
        "le" => ord != Greater,
        "gt" => ord == Greater,
        "ge" => ord != Less,
        _ => return None,
    })
}

/// Float compares: the ordered conditions are false when either operand is NaN; the `n*`
/// forms are their negations (true on NaN); `o` / `u`: ordered / unordered; `class`: S1 is a
/// mask of the IEEE classes of S0 (llvm/lib/Target/AMDGPU/SIDefines.h
/// `SIInstrFlags::ClassFlags`: signaling NaN 1, quiet NaN 2, -inf 4, -normal 8, -denormal 16,
/// -0 32, +0 64, +denormal 128, +normal 256, +inf 512).
fn fcompare(cond: &str, a: f32, b: f32) -> Option<bool> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let ord = a.partial_cmp(&b);
    Some(match cond {
        "lt" => ord == Some(Less),
        "le" => matches!(ord, Some(Less | Equal)),
        "gt" => ord == Some(Greater),
        "ge" => matches!(ord, Some(Greater | Equal)),
        "eq" => ord == Some(Equal),
        "lg" => matches!(ord, Some(Less | Greater)),
        "o" => ord.is_some(),
        "u" => ord.is_none(),
        "nlt" => ord != Some(Less),
        "nle" => !matches!(ord, Some(Less | Equal)),
        "ngt" => ord != Some(Greater),
        "nge" => !matches!(ord, Some(Greater | Equal)),
        "neq" => ord != Some(Equal),
        "nlg" => !matches!(ord, Some(Less | Greater)),
        "class" => {
            let bits = a.to_bits();
            let neg = bits >> 31 == 1;
            let class = if a.is_nan() {
                // Quiet NaNs have the top mantissa bit set.
                if bits & 0x0040_0000 != 0 {
                    1
                } else {
                    0
                }
            } else if a.is_infinite() {
                if neg {
                    2
                } else {
                    9
                }
            } else if a == 0.0 {
                if neg {
                    5
                } else {
                    6
                }
            } else if a.is_subnormal() {
                if neg {
                    4
                } else {
                    7
                }
            } else if neg {
                3
            } else {
                8
            };
            (b.to_bits() >> class) & 1 == 1
        }
        _ => return None,
    })
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

fn sign_extend(v: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((v << shift) as i32) >> shift
}
