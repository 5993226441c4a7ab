//! Running a whole `DISPATCH_DIRECT` with the interpreter, from the registers and memory the
//! engine saw, and the execution mode switch `PM4RT_SIM_EXEC`.
//!
//! The grid is `dim` workgroups of `COMPUTE_NUM_THREAD_X/Y/Z` work-items, cut into wave32s
//! in X-fastest order (partial last wave masked by EXEC). Each wave starts with
//! `RSRC2.USER_SGPR` (bits [5:1]) user SGPRs from `COMPUTE_USER_DATA_*`, the workgroup ids
//! where the target puts them and the packed work-item ids in v0 ([`Wave::launch`]). Each
//! workgroup gets `RSRC2.LDS_SIZE` (bits [23:15]) granules of 512 bytes of zeroed LDS
//! (`pm4rt_core::code_object::LDS_GRANULE_BYTES`). Workgroups run in parallel
//! ([`run_dispatch`]).

use super::exec::{run_workgroup_counted, Bounds, ExecError};
use super::program::Program;
use super::stats::ExecStats;
use super::wave::{Wave, WaveLaunch, LANES};
use super::Target;
use crate::engine::DispatchContext;
use crate::memory::GpuMemory;
use pm4rt_core::code_object::LDS_GRANULE_BYTES;
use pm4rt_core::pm4::regs;
use pm4rt_core::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Instructions one workgroup may execute before the dispatch is stopped as hung.
pub const WORKGROUP_STEP_LIMIT: u64 = 1 << 32;

/// Most work-items in one workgroup: the upper bound of LLVM's `amdgpu-flat-work-group-size`
/// (default `1,1024`, AMDGPUUsage "Function Attributes") and of ROCr's
/// `HSA_AGENT_INFO_WORKGROUP_MAX_SIZE` on gfx11/gfx12. A dispatch whose
/// `COMPUTE_NUM_THREAD_X*Y*Z` is 0 or above this is refused before any wave is built.
pub const MAX_WORKGROUP_ITEMS: u64 = 1024;

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
/// errors; what ran, counted ([`ExecStats`]).
///
/// Workgroups run in parallel on up to [`std::thread::available_parallelism`] threads, each
/// taking the next workgroup in X-fastest order. Workgroups only interact through global
/// memory, and pm4rt's kernels only through atomics, whose results do not depend on the order;
/// the error returned is the one of the lowest-numbered failing workgroup (every lower one was
/// taken before it and runs to its end), as in a sequential run.
///
/// Errors: [`Error::Fault`] for an access outside every mapping; [`Error::Dispatch`] naming
/// the kernel for anything else the interpreter stops on (unimplemented instruction with its
/// VA, LDS out of range, a workgroup exceeding [`WORKGROUP_STEP_LIMIT`], a workgroup of 0 or
/// more than [`MAX_WORKGROUP_ITEMS`] work-items).
pub fn run_dispatch(
    ctx: &DispatchContext<'_>,
    target: Target,
    program: &Program,
    kernel: &str,
) -> Result<ExecStats> {
    let pgm_va = ctx.pgm_va();
    let size = ctx.num_threads();
    let items = size.iter().map(|&n| u64::from(n)).product::<u64>();
    if items == 0 || items > MAX_WORKGROUP_ITEMS {
        return Err(Error::Dispatch {
            pgm_va,
            reason: format!(
                "{kernel}: COMPUTE_NUM_THREAD_X/Y/Z = {size:?} make a workgroup of {items} \
                 work-items; a workgroup has 1 to {MAX_WORKGROUP_ITEMS}"
            ),
        });
    }
    let rsrc2 = ctx.regs.sh(regs::COMPUTE_PGM_RSRC2);
    let user: Vec<u32> = (0..(rsrc2 >> 1) & 0x1f).map(|i| ctx.user_data(i as u16)).collect();
    let grid = Grid {
        target,
        program,
        mem: ctx.memory,
        pgm_va,
        user: &user,
        rsrc2,
        lds_bytes: (((rsrc2 >> 15) & 0x1ff) * LDS_GRANULE_BYTES) as usize,
        size,
        dim: ctx.dim,
        cancel: ctx.cancel,
    };
    // At most 2^96 - 1 workgroups: saturate (the cancel flag ends a grid that large).
    let total = grid.dim.iter().fold(1u64, |t, &d| t.saturating_mul(u64::from(d)));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(total as usize);
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let worker = || {
        let mut stats = ExecStats::default();
        let mut first_error: Option<(u64, ExecError)> = None;
        while !failed.load(Ordering::Relaxed) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= total {
                break;
            }
            if grid.cancel.load(Ordering::Relaxed) {
                failed.store(true, Ordering::Relaxed);
                first_error = Some((index, ExecError::Cancelled));
                break;
            }
            if let Err(e) = grid.run(index, &mut stats) {
                failed.store(true, Ordering::Relaxed);
                first_error = Some((index, e));
            }
        }
        (stats, first_error)
    };
    let results: Vec<(ExecStats, Option<(u64, ExecError)>)> = if threads <= 1 {
        vec![worker()]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    };
    let mut stats = ExecStats::default();
    let mut error: Option<(u64, ExecError)> = None;
    for (s, e) in results {
        stats.merge(&s);
        if let Some((i, e)) = e {
            if error.as_ref().is_none_or(|(j, _)| i < *j) {
                error = Some((i, e));
            }
        }
    }
    match error {
        None => Ok(stats),
        Some((_, ExecError::Memory(err))) => Err(err),
        Some((_, other)) => {
            Err(Error::Dispatch { pgm_va, reason: format!("{kernel} (ISA interpreter): {other}") })
        }
    }
}

/// One dispatch's constant inputs, shared by the threads running its workgroups.
struct Grid<'a> {
    target: Target,
    program: &'a Program,
    mem: &'a GpuMemory,
    pgm_va: u64,
    user: &'a [u32],
    rsrc2: u32,
    lds_bytes: usize,
    size: [u32; 3],
    dim: [u32; 3],
    cancel: &'a AtomicBool,
}

impl Grid<'_> {
    /// Run workgroup number `index` (X fastest).
    fn run(&self, index: u64, stats: &mut ExecStats) -> std::result::Result<(), ExecError> {
        let (gx, gy) = (u64::from(self.dim[0]), u64::from(self.dim[1]));
        let id = [(index % gx) as u32, (index / gx % gy) as u32, (index / (gx * gy)) as u32];
        let items = self.size[0].saturating_mul(self.size[1]).saturating_mul(self.size[2]);
        let mut waves: Vec<Wave> = (0..items)
            .step_by(LANES)
            .map(|first| {
                Wave::launch(&WaveLaunch {
                    target: self.target,
                    user_sgprs: self.user,
                    rsrc2: self.rsrc2,
                    workgroup: id,
                    first_item: first,
                    workgroup_size: self.size,
                })
            })
            .collect();
        let mut lds = vec![0u8; self.lds_bytes];
        run_workgroup_counted(
            self.program,
            &mut waves,
            self.mem,
            &mut lds,
            self.pgm_va,
            Bounds { max_steps: WORKGROUP_STEP_LIMIT, cancel: Some(self.cancel) },
            stats,
        )
    }
}
