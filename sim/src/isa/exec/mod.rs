//! Executing a decoded [`Program`] on one [`Wave`]: scalar ALU, vector ALU, scalar and global
//! memory through [`GpuMemory`], and program control.
//!
//! Layout: this file holds the wave/workgroup stepping, the operand helpers and the dispatch
//! on [`Family`]; each instruction family has its own file (`sopp`, `salu`, `smem`, `valu`,
//! `vopc`, `vop3p`, `vopd`, `ds`, `global`).
//!
//! Semantics follow AMD's "RDNA3 Instruction Set Architecture" / "RDNA4 Instruction Set
//! Architecture" reference guides (per-opcode descriptions in their SOP*, VOP*, SMEM and
//! FLAT chapters). Each vector instruction runs over the lanes enabled in EXEC; comparisons
//! write 0 for disabled lanes and carries likewise. An instruction, or a modifier (VOP3
//! abs/neg/clamp/omod/op_sel), this interpreter does not implement is
//! [`ExecError::Unimplemented`] naming the mnemonic and its VA: never a wrong result.
//!
//! Coverage: the instructions of pm4rt's 25 kernels on both targets (scalar integer and
//! f32 ALU, SMEM loads, integer and f32 VALU incl. VOPD, `v_fma_mix_f32` and
//! `v_pk_lshrrev_b16`, f16 / byte to f32 conversions, byte permutes, 24-bit multiplies,
//! compares and `v_cmpx`, LDS loads/stores and `ds_swizzle_b32` bit-mask mode, barriers,
//! global loads/stores incl. the 16-bit `d16` half loads, and `global_atomic_max_u64`), plus
//! neighbours of the same kind.
//!
//! Floating point: f32 arithmetic is Rust's IEEE-754 binary32 (round to nearest even,
//! denormals kept, fused `mul_add` for the FMA forms); the RSRC1 float mode is not read.
//! `v_rcp_f32` and `v_sqrt_f32` / `v_s_sqrt_f32` are correctly rounded, i.e. within the 1 ULP
//! the ISA guides state, so they may differ from a GPU in the last bit. The division helpers
//! are implemented for operands whose exponents keep `v_div_scale_f32` from scaling (see
//! `div_scale_is_identity`); other operands are reported as unimplemented.

mod atomic;
mod ds;
mod global;
mod half;
mod salu;
mod smem;
mod sopp;
mod valu;
mod vop3p;
mod vopc;
mod vopd;

use super::decode::{Family, Inst};
use super::program::Program;
use super::stats::ExecStats;
use super::wave::Wave;
use crate::memory::GpuMemory;
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

/// Rounds of a workgroup (one instruction per live wave each) between two looks at the
/// cancel flag of [`run_workgroup_counted`].
const CANCEL_POLL_ROUNDS: u32 = 4096;

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
    /// The wave reached bytes that do not decode as an instruction of the target.
    #[error("the bytes at VA {va:#x} do not decode: {reason}")]
    Undecodable {
        /// VA of the bytes.
        va: u64,
        /// The decoder's error (raw dwords and offset).
        reason: String,
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
    /// The queue was stopped (engine shut down) while the workgroup ran.
    #[error("the queue was stopped while the kernel ran")]
    Cancelled,
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
    let mut stats = ExecStats::default();
    loop {
        if let Some(stop) = step_wave(program, wave, mem, lds, code_va, budget, &mut stats)? {
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
    stats: &mut ExecStats,
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
        return Err(match program.tail() {
            Some(e) => ExecError::Undecodable { va: code_va + end as u64, reason: e.to_string() },
            None => ExecError::RanOffEnd { va: code_va + end as u64 },
        });
    };
    stats.issue(inst.family, wave.exec());
    let mut cx = Step {
        program,
        inst,
        mem,
        lds,
        stats,
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
    let mut stats = ExecStats::default();
    let bounds = Bounds { max_steps, cancel: None };
    run_workgroup_counted(program, waves, mem, lds, code_va, bounds, &mut stats)
}

/// How long a workgroup may run: at most `max_steps` instructions in all
/// ([`ExecError::StepLimit`]), and until `cancel` is set ([`ExecError::Cancelled`]).
#[derive(Clone, Copy, Debug)]
pub struct Bounds<'a> {
    /// Instructions the whole workgroup may execute.
    pub max_steps: u64,
    /// The queue's stop flag, polled every few thousand rounds.
    pub cancel: Option<&'a AtomicBool>,
}

/// [`run_workgroup`], adding what ran to `stats` ([`ExecStats`]; the waves and the workgroup
/// included), within `bounds`.
pub fn run_workgroup_counted(
    program: &Program,
    waves: &mut [Wave],
    mem: &GpuMemory,
    lds: &mut [u8],
    code_va: u64,
    bounds: Bounds<'_>,
    stats: &mut ExecStats,
) -> Result<()> {
    let Bounds { max_steps, cancel } = bounds;
    stats.workgroups += 1;
    stats.waves += waves.len() as u64;
    let mut budget = max_steps;
    let mut waiting = vec![false; waves.len()];
    let mut rounds: u32 = 0;
    loop {
        rounds = rounds.wrapping_add(1);
        if rounds.is_multiple_of(CANCEL_POLL_ROUNDS)
            && cancel.is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(ExecError::Cancelled);
        }
        let mut running = 0;
        for (w, wait) in waves.iter_mut().zip(waiting.iter_mut()) {
            if *wait || w.ended {
                continue;
            }
            running += 1;
            let stop = step_wave(program, w, mem, lds, code_va, &mut budget, stats).map_err(
                |e| match e {
                    ExecError::StepLimit(_) => ExecError::StepLimit(max_steps),
                    e => e,
                },
            )?;
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
    stats: &'a mut ExecStats,
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
        let w = &self.inst.widths;
        u32::from(match role {
            'd' => w[0],
            'a' => w[1],
            'b' => w[2],
            'c' => w[3],
            other => super::decode::shape_width(self.inst.op.shape, other),
        })
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
}

/// An f32 binary operation on raw bits (IEEE, round to nearest even, denormals kept).
fn f(x: u32, y: u32, op: impl Fn(f32, f32) -> f32) -> u32 {
    op(f32::from_bits(x), f32::from_bits(y)).to_bits()
}

fn sign_extend(v: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((v << shift) as i32) >> shift
}
