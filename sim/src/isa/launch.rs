//! Running a whole `DISPATCH_DIRECT` with the interpreter, from the registers and memory the
//! engine saw, and the execution mode switch `PM4RT_SIM_EXEC`.
//!
//! The grid is `dim` workgroups of `COMPUTE_NUM_THREAD_X/Y/Z` work-items, cut into wave32s
//! in X-fastest order (partial last wave masked by EXEC). Each wave starts with
//! `RSRC2.USER_SGPR` (bits [5:1]) user SGPRs from `COMPUTE_USER_DATA_*`, the workgroup ids
//! where the target puts them and the packed work-item ids in v0 ([`Wave::launch`]). Each
//! workgroup gets `RSRC2.LDS_SIZE` (bits [23:15]) granules of 512 bytes of zeroed LDS
//! (`pm4rt_core::code_object::LDS_GRANULE_BYTES`). Workgroups run one after the other.

use super::exec::{run_workgroup, ExecError};
use super::program::Program;
use super::wave::{Wave, WaveLaunch, LANES};
use super::Target;
use crate::engine::DispatchContext;
use pm4rt_core::code_object::LDS_GRANULE_BYTES;
use pm4rt_core::pm4::regs;
use pm4rt_core::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};

/// Instructions one workgroup may execute before the dispatch is stopped as hung.
pub const WORKGROUP_STEP_LIMIT: u64 = 1 << 32;

/// [`ExecMode::set_process_mode`]'s choice: 0 none, 1 native, 2 isa, 3 both.
static PROCESS_MODE: AtomicU8 = AtomicU8::new(0);

/// Which executor runs a dispatch (`PM4RT_SIM_EXEC`). Code that is not one of pm4rt's own
/// kernels always runs on the ISA interpreter; the mode chooses for pm4rt's kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExecMode {
    /// pm4rt's kernels on their Rust re-implementations (`crate::kernels`): fast (default).
    #[default]
    Native,
    /// Every kernel on the ISA interpreter.
    Isa,
    /// pm4rt's kernels on both executors, from the same inputs; the dispatch fails naming the
    /// kernel and the first differing element when they disagree beyond the kernel's bound.
    Both,
}

impl ExecMode {
    /// The names [`ExecMode::parse`] accepts, in declaration order.
    pub const NAMES: [&'static str; 3] = ["native", "isa", "both"];

    /// The mode of this process: the one given to [`ExecMode::set_process_mode`] (a command
    /// line's `--sim-exec`), else [`ExecMode::from_env`].
    ///
    /// Errors: as [`ExecMode::from_env`].
    pub fn current() -> Result<ExecMode> {
        match PROCESS_MODE.load(Ordering::Relaxed) {
            1 => Ok(ExecMode::Native),
            2 => Ok(ExecMode::Isa),
            3 => Ok(ExecMode::Both),
            _ => ExecMode::from_env(),
        }
    }

    /// Make `mode` the mode of every registry of this process that was not given one with
    /// `KernelRegistry::with_exec_mode`, over `PM4RT_SIM_EXEC` (`None`: the variable again).
    pub fn set_process_mode(mode: Option<ExecMode>) {
        let v = match mode {
            None => 0,
            Some(ExecMode::Native) => 1,
            Some(ExecMode::Isa) => 2,
            Some(ExecMode::Both) => 3,
        };
        PROCESS_MODE.store(v, Ordering::Relaxed);
    }

    /// The mode named by `PM4RT_SIM_EXEC` (`native`, `isa` or `both`; unset = native).
    ///
    /// Errors: [`Error::InvalidArgument`] naming any other value.
    pub fn from_env() -> Result<ExecMode> {
        match std::env::var("PM4RT_SIM_EXEC") {
            Err(_) => Ok(ExecMode::Native),
            Ok(v) => ExecMode::parse(&v),
        }
    }

    /// The mode called `name`.
    ///
    /// Errors: [`Error::InvalidArgument`] for an unknown name.
    pub fn parse(name: &str) -> Result<ExecMode> {
        match name {
            "native" => Ok(ExecMode::Native),
            "isa" => Ok(ExecMode::Isa),
            "both" => Ok(ExecMode::Both),
            other => Err(Error::InvalidArgument(format!(
                "PM4RT_SIM_EXEC={other:?}: expected \"native\", \"isa\" or \"both\""
            ))),
        }
    }

    /// The name [`ExecMode::parse`] takes for this mode.
    pub fn name(self) -> &'static str {
        match self {
            ExecMode::Native => "native",
            ExecMode::Isa => "isa",
            ExecMode::Both => "both",
        }
    }
}

/// Run the dispatch of `ctx` with `program` (the code at `ctx.pgm_va()`), naming `kernel` in
/// errors.
///
/// Errors: [`Error::Fault`] for an access outside every mapping; [`Error::Dispatch`] naming
/// the kernel for anything else the interpreter stops on (unimplemented instruction with its
/// VA, LDS out of range, a workgroup exceeding [`WORKGROUP_STEP_LIMIT`]).
pub fn run_dispatch(
    ctx: &DispatchContext<'_>,
    target: Target,
    program: &Program,
    kernel: &str,
) -> Result<()> {
    let pgm_va = ctx.pgm_va();
    let rsrc2 = ctx.regs.sh(regs::COMPUTE_PGM_RSRC2);
    let user: Vec<u32> = (0..(rsrc2 >> 1) & 0x1f).map(|i| ctx.user_data(i as u16)).collect();
    let lds_bytes = (((rsrc2 >> 15) & 0x1ff) * LDS_GRANULE_BYTES) as usize;
    let size = ctx.num_threads();
    let items = size[0].saturating_mul(size[1]).saturating_mul(size[2]);
    let [gx, gy, gz] = ctx.dim;
    for z in 0..gz {
        for y in 0..gy {
            for x in 0..gx {
                let mut waves: Vec<Wave> = (0..items)
                    .step_by(LANES)
                    .map(|first| {
                        Wave::launch(&WaveLaunch {
                            target,
                            user_sgprs: &user,
                            rsrc2,
                            workgroup: [x, y, z],
                            first_item: first,
                            workgroup_size: size,
                        })
                    })
                    .collect();
                let mut lds = vec![0u8; lds_bytes];
                run_workgroup(
                    program,
                    &mut waves,
                    ctx.memory,
                    &mut lds,
                    pgm_va,
                    WORKGROUP_STEP_LIMIT,
                )
                .map_err(|e| match e {
                    ExecError::Memory(err) => err,
                    other => Error::Dispatch {
                        pgm_va,
                        reason: format!("{kernel} (ISA interpreter): {other}"),
                    },
                })?;
            }
        }
    }
    Ok(())
}
