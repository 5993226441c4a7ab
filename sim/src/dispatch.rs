//! Running pm4rt's kernels on the simulator: the [`KernelRegistry`] [`DispatchHook`].
//!
//! A `DISPATCH_DIRECT` is executed the way the GPU would see it, from simulated memory and the
//! queue's registers only:
//!
//! 1. **Identify the code.** `COMPUTE_PGM_LO/HI` give the entry VA; the bytes there are
//!    compared exactly with the machine code of every kernel of the pm4rt-kernels code object
//!    for the engine's target ([`CodeObject::code_bytes`], `code_size` bytes each). Code that
//!    matches none of them runs on the ISA interpreter in every mode, from the launch
//!    registers alone (wave32 only; see `KernelRegistry::run_unknown`); nothing mapped at the
//!    entry VA is [`Error::Dispatch`] with a reason starting `"unknown code"`.
//! 2. **Check the launch registers** against the kernel descriptor, as
//!    [`pm4rt_core::launch::emit_dispatch`] writes them: `COMPUTE_PGM_RSRC1` (PRIV, bit 20, may
//!    be added: the launcher sets it on gfx11 KFD queues), `RSRC2` (with the
//!    LDS size the launcher fills, [`KernelDescriptor::dispatch_rsrc2`]), `RSRC3`,
//!    `COMPUTE_START_X/Y/Z` = 0, `COMPUTE_NUM_THREAD_X/Y/Z` = the kernel's
//!    `reqd_work_group_size` (256, 1, 1), and the initiator's COMPUTE_SHADER_EN bit and wave32
//!    bit (CS_W32_EN) matching the descriptor. A mismatch is [`Error::Dispatch`] naming the
//!    register, the value found and the value expected.
//! 3. **Read the kernel arguments** from the kernarg segment at `COMPUTE_USER_DATA_0/1`, at the
//!    offsets the code object's metadata gives (checked against the declared signature of
//!    [`KernelId::signature`] when the registry is built).
//! 4. **Honour the grid** (`dim_x` workgroups of 256 lanes): the DMMV kernels compute rows
//!    `< min(rows, dim_x * 8)`, `argmax_f32` / `copy_u32` elements `< min(n, dim_x * 256)`,
//!    `rms_norm_f32` the whole vector when at least one workgroup runs. A zero dimension runs
//!    nothing. Extra Y/Z workgroups repeat the same (idempotent) work, so they change nothing.
//! 5. **Run the Rust implementation** ([`crate::kernels`]) with the weights borrowed in place
//!    from simulated memory ([`GpuMemory::with_slice`]); the small inputs (vectors) are copied,
//!    so an input may share a BO with the output. Outputs are written back; the packed argmax
//!    outputs are merged with the 64-bit word already there by `max`, as the GPU's atomic max
//!    does (the caller zeroes it first).
//!
//! The executor of pm4rt's kernels is the [`ExecMode`] given to
//! [`KernelRegistry::with_exec_mode`], else [`ExecMode::current`] (the process's
//! `--sim-exec`, else `PM4RT_SIM_EXEC`) read at each dispatch: `native`
//! (default) runs step 5; `isa` runs the kernel's machine code on the ISA interpreter
//! ([`crate::isa::run_dispatch`]) instead; `both` runs the two from the same inputs (the
//! output bytes are saved and restored between them), keeps the native outputs, and fails the
//! dispatch with [`Error::Dispatch`] naming the kernel and the first differing element when
//! they disagree beyond the kernel's bound (`agree`).
//!
//! Any access outside a mapping — kernarg segment or buffer — is [`Error::Fault`] at the first
//! unmapped byte. Arguments are taken exactly as the GPU kernel takes them, never refused where
//! the kernel would silently go on: the quantized DMMV kernels use `cols / 32` whole blocks
//! (`nb = cols / 32u` in `kernels/src/dmmv.cl`), so a tail of `cols % 32` columns is ignored,
//! for the weight row stride and for `x` alike. Refusing such shapes is the job of
//! `pm4rt::session::Session`, before anything is submitted. Only what the GPU could not do
//! either is [`Error::Dispatch`] naming the kernel and the argument (a matrix whose size
//! overflows the address space, a misaligned 64-bit atomic).
//!
//! Every dispatch the ISA interpreter runs is counted ([`ExecStats`]: instructions per family,
//! active lanes, vector memory traffic): [`KernelRegistry::last_stats`] and
//! [`KernelRegistry::total_stats`].
//!
//! The registry also reports each dispatch's [`Footprint`] (the ranges it reads and writes,
//! from the same arguments), which the engine's strict ordering uses to model stale caches.

use std::sync::{Arc, Mutex, OnceLock};

use pm4rt_core::code_object::{
    CodeObject, CodeObjectError, DeclaredArg, DeclaredKind, Kernel, KernelDescriptor,
};
use pm4rt_core::launch::{INITIATOR_CS_W32_EN, RSRC1_PRIV};
use pm4rt_core::pm4::regs;
use pm4rt_core::{Error, GfxTarget, Result};
use pm4rt_kernels::{
    ArgKind, KernelId, KernelKind, Target, DMMV_ROWS_PER_WORKGROUP, WORKGROUP_SIZE,
};

use crate::engine::{DispatchContext, DispatchHook, Footprint};
use crate::isa::{self, ExecMode, ExecStats, ProgramCache, Target as IsaTarget};
use crate::kernels::{self, WeightType};

mod agree;
use crate::memory::GpuMemory;

/// DISPATCH_INITIATOR.COMPUTE_SHADER_EN (bit 0), as in [`pm4rt_core::launch::INITIATOR_BASE`].
const INITIATOR_COMPUTE_SHADER_EN: u32 = 1;

/// Why a [`KernelRegistry`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The code object failed to load, lacks a kernel, or a kernel's kernarg layout differs
    /// from its declared signature.
    #[error(transparent)]
    CodeObject(#[from] CodeObjectError),
    /// A kernel has no code bytes (code_size 0 or outside the image): it could not be told
    /// apart from anything.
    #[error("kernel {kernel}: no code bytes to identify it by")]
    EmptyCode {
        /// The kernel name.
        kernel: &'static str,
    },
}

/// The pm4rt-kernels target of a GPU generation.
pub fn kernels_target(gfx: GfxTarget) -> Target {
    match gfx {
        GfxTarget::Gfx1100 => Target::Gfx1100,
        GfxTarget::Gfx1201 => Target::Gfx1201,
    }
}

/// The declared signature of `id` in the form [`Kernel::check_signature`] takes.
pub fn declared_args(id: KernelId) -> Vec<DeclaredArg<'static>> {
    id.signature()
        .iter()
        .map(|a| DeclaredArg {
            name: a.name,
            kind: match a.kind {
                ArgKind::Ptr => DeclaredKind::Pointer,
                ArgKind::U32 | ArgKind::F32 => DeclaredKind::Value,
            },
            offset: a.offset,
            size: a.size,
        })
        .collect()
}

/// One kernel the registry can run.
#[derive(Debug, Clone)]
pub struct RegisteredKernel {
    /// Which kernel of the library.
    pub id: KernelId,
    /// Its descriptor, metadata and arguments from the code object.
    pub kernel: Kernel,
    /// Its machine code, compared with the bytes at `COMPUTE_PGM` to identify it.
    pub code: Vec<u8>,
}

impl RegisteredKernel {
    /// The metadata offset of the argument called `name` (always present: the registry
    /// checked the metadata against the declared signature).
    fn offset(&self, name: &str) -> usize {
        self.kernel
            .args
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .map_or(usize::MAX, |a| a.offset as usize)
    }
}

/// The kernels of one code object, identified by their code bytes; a [`DispatchHook`] that
/// runs them (see the module documentation).
#[derive(Debug, Clone)]
pub struct KernelRegistry {
    gfx: GfxTarget,
    kernels: Vec<RegisteredKernel>,
    /// Executor of the kernels; `None`: `PM4RT_SIM_EXEC` at each dispatch.
    mode: Option<ExecMode>,
    /// Decoded machine code for the ISA interpreter, shared by clones.
    programs: Arc<ProgramCache>,
    /// Applied to the native outputs in [`ExecMode::Both`] before they are compared.
    perturb_native: Option<fn(KernelId, &mut [u8])>,
    /// What the interpreter executed, shared by clones.
    stats: Arc<Mutex<StatsLog>>,
    /// Instructions one workgroup may execute on the interpreter.
    step_limit: u64,
}

/// The interpreter's counters: the last dispatch's and the sum since the last reset.
#[derive(Debug, Default)]
struct StatsLog {
    last: Option<DispatchStats>,
    total: ExecStats,
}

/// What the ISA interpreter executed for one dispatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchStats {
    /// The kernel's name, or `unknown code at <VA>` for code that is none of pm4rt's kernels.
    pub kernel: String,
    /// The counters.
    pub stats: ExecStats,
}

impl KernelRegistry {
    /// The registry of the pm4rt-kernels code object for `gfx`.
    ///
    /// Errors: [`RegistryError`] when the committed code object does not load for `gfx`,
    /// lacks a kernel of [`KernelId::ALL`], or a kernel's arguments differ from its declared
    /// signature.
    pub fn new(gfx: GfxTarget) -> std::result::Result<KernelRegistry, RegistryError> {
        let co = CodeObject::load(pm4rt_kernels::code_object(kernels_target(gfx)), gfx)?;
        Self::from_code_object(&co)
    }

    /// The registry of every [`KernelId`] in `co` (which must hold all of them).
    ///
    /// Errors: as [`KernelRegistry::new`].
    pub fn from_code_object(co: &CodeObject) -> std::result::Result<KernelRegistry, RegistryError> {
        let mut kernels = Vec::with_capacity(KernelId::ALL.len());
        for id in KernelId::ALL {
            let kernel = co.kernel(id.name())?;
            kernel.check_signature(&declared_args(id))?;
            let code = co.code_bytes(kernel).to_vec();
            if code.is_empty() {
                return Err(RegistryError::EmptyCode { kernel: id.name() });
            }
            kernels.push(RegisteredKernel { id, kernel: kernel.clone(), code });
        }
        Ok(KernelRegistry {
            gfx: co.target(),
            kernels,
            mode: None,
            programs: Arc::new(ProgramCache::new()),
            perturb_native: None,
            stats: Arc::default(),
            step_limit: isa::WORKGROUP_STEP_LIMIT,
        })
    }

    /// This registry running its kernels with `mode` whatever `PM4RT_SIM_EXEC` says.
    pub fn with_exec_mode(mut self, mode: ExecMode) -> KernelRegistry {
        self.mode = Some(mode);
        self
    }

    /// This registry stopping any workgroup the interpreter runs after `steps` instructions
    /// (default [`isa::WORKGROUP_STEP_LIMIT`]) with [`Error::Dispatch`]: a tighter bound on
    /// code that may never end, e.g. generated input.
    pub fn with_step_limit(mut self, steps: u64) -> KernelRegistry {
        self.step_limit = steps;
        self
    }

    /// This registry with `perturb` applied, in [`ExecMode::Both`], to each output range
    /// (the bytes of one [`Footprint`] write range) of the native executor before it is
    /// compared with the interpreter's: a way to check that a wrong executor is caught.
    pub fn with_native_perturbation(mut self, perturb: fn(KernelId, &mut [u8])) -> KernelRegistry {
        self.perturb_native = Some(perturb);
        self
    }

    /// Run `k` with the ISA interpreter (its machine code decoded once and cached).
    fn run_isa(&self, ctx: &DispatchContext<'_>, k: &RegisteredKernel) -> Result<()> {
        let target = self.isa_target();
        let program = self.programs.get(target, &k.code).map_err(|e| Error::Dispatch {
            pgm_va: ctx.pgm_va(),
            reason: format!("{} (ISA interpreter): {e}", k.id),
        })?;
        let stats = isa::run_dispatch(ctx, target, &program, k.id.name(), self.step_limit)?;
        self.record(k.id.name(), stats);
        Ok(())
    }

    /// The counters of the last dispatch the ISA interpreter ran for this registry (or a
    /// clone), if any since the last [`KernelRegistry::reset_stats`].
    pub fn last_stats(&self) -> Option<DispatchStats> {
        self.stats_log().last.clone()
    }

    /// The counters of every dispatch the ISA interpreter ran since the last reset.
    pub fn total_stats(&self) -> ExecStats {
        self.stats_log().total.clone()
    }

    /// Forget the counters.
    pub fn reset_stats(&self) {
        *self.stats_log() = StatsLog::default();
    }

    fn record(&self, kernel: &str, stats: ExecStats) {
        let mut log = self.stats_log();
        log.total.merge(&stats);
        log.last = Some(DispatchStats { kernel: kernel.to_string(), stats });
    }

    fn stats_log(&self) -> std::sync::MutexGuard<'_, StatsLog> {
        // Poisoned only if a thread panicked while adding counters: they are still usable.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A registry for `gfx` built once per process and shared (what [`crate::SimSubmitter`]
    /// installs).
    ///
    /// Errors: as [`KernelRegistry::new`] (the failure is remembered).
    pub fn shared(gfx: GfxTarget) -> std::result::Result<Arc<KernelRegistry>, RegistryError> {
        static GFX1100: OnceLock<std::result::Result<Arc<KernelRegistry>, RegistryError>> =
            OnceLock::new();
        static GFX1201: OnceLock<std::result::Result<Arc<KernelRegistry>, RegistryError>> =
            OnceLock::new();
        let cell = match gfx {
            GfxTarget::Gfx1100 => &GFX1100,
            GfxTarget::Gfx1201 => &GFX1201,
        };
        cell.get_or_init(|| KernelRegistry::new(gfx).map(Arc::new)).clone()
    }

    /// The [shared](KernelRegistry::shared) registry for `gfx`, running its kernels with
    /// `mode` (`None`: `PM4RT_SIM_EXEC` at each dispatch). The decoded programs stay shared.
    ///
    /// Errors: as [`KernelRegistry::new`].
    pub fn shared_with_mode(
        gfx: GfxTarget,
        mode: Option<ExecMode>,
    ) -> std::result::Result<Arc<KernelRegistry>, RegistryError> {
        let shared = Self::shared(gfx)?;
        Ok(match mode {
            None => shared,
            Some(mode) => Arc::new((*shared).clone().with_exec_mode(mode)),
        })
    }

    /// The target the kernels were compiled for.
    pub fn gfx(&self) -> GfxTarget {
        self.gfx
    }

    /// Every registered kernel, in [`KernelId::ALL`] order.
    pub fn kernels(&self) -> &[RegisteredKernel] {
        &self.kernels
    }

    /// The registered kernel `id`.
    pub fn get(&self, id: KernelId) -> Option<&RegisteredKernel> {
        self.kernels.iter().find(|k| k.id == id)
    }

    /// Identify the kernel whose code sits at `pgm_va` by comparing the bytes there with each
    /// kernel's code.
    ///
    /// Errors: [`Error::Fault`] at `pgm_va` when its page is mapped without execute
    /// permission; [`Error::Dispatch`] (`"unknown code ..."`) when no kernel's code matches,
    /// including when the code VA is not mapped.
    pub fn identify(&self, mem: &GpuMemory, pgm_va: u64) -> Result<&RegisteredKernel> {
        self.find(mem, pgm_va)?.ok_or_else(|| Error::Dispatch {
            pgm_va,
            reason: format!(
                "unknown code: no kernel registered for the bytes at {pgm_va:#x} (none of the \
                 {} {} kernels matches)",
                self.kernels.len(),
                self.gfx
            ),
        })
    }

    /// The registered kernel whose code sits at `pgm_va`, or `None` for other (mapped,
    /// executable) code.
    ///
    /// Errors: [`Error::Fault`] at `pgm_va` when its page is mapped without execute
    /// permission; [`Error::Dispatch`] (`"unknown code ... (not mapped)"`) when nothing is
    /// mapped there.
    fn find(&self, mem: &GpuMemory, pgm_va: u64) -> Result<Option<&RegisteredKernel>> {
        match mem.perms_at(pgm_va) {
            Some(p) if !p.execute => {
                // Mapped but not executable: the instruction fetch is a GPU page fault.
                return Err(Error::Fault { va: pgm_va });
            }
            None => {
                return Err(Error::Dispatch {
                    pgm_va,
                    reason: format!(
                        "unknown code: no kernel registered for code at {pgm_va:#x} (not mapped)"
                    ),
                })
            }
            Some(_) => {}
        }
        for k in &self.kernels {
            match mem.with_code(pgm_va, k.code.len(), |b| b == k.code.as_slice()) {
                Ok(true) => return Ok(Some(k)),
                Ok(false) | Err(Error::Fault { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

impl DispatchHook for KernelRegistry {
    fn dispatch(&self, ctx: &mut DispatchContext<'_>) -> Result<()> {
        let mode = match self.mode {
            Some(m) => m,
            None => ExecMode::current()?,
        };
        let Some(k) = self.find(ctx.memory, ctx.pgm_va())? else {
            return self.run_unknown(ctx);
        };
        match self.prepare(ctx, k)? {
            Some(kernarg) => {
                let args = Args { k, bytes: &kernarg };
                match mode {
                    ExecMode::Native => Run::new(ctx, k).kernel(&args),
                    ExecMode::Isa => self.run_isa(ctx, k),
                    ExecMode::Both => self.run_both(ctx, k, &args),
                }
            }
            None => Ok(()),
        }
    }

    fn footprint(&self, ctx: &DispatchContext<'_>) -> Result<Option<Footprint>> {
        let Some(k) = self.find(ctx.memory, ctx.pgm_va())? else {
            // Interpreted code: what it touches is not known before it runs.
            return Ok(None);
        };
        Ok(Some(match self.prepare(ctx, k)? {
            Some(kernarg) => Run::new(ctx, k).footprint(&Args { k, bytes: &kernarg })?,
            None => Footprint::default(),
        }))
    }
}

impl KernelRegistry {
    /// Check the launch registers and read the kernarg segment of `k`; `None` for a grid
    /// with a zero dimension (nothing runs).
    fn prepare(&self, ctx: &DispatchContext<'_>, k: &RegisteredKernel) -> Result<Option<Vec<u8>>> {
        let pgm_va = ctx.pgm_va();
        check_launch(k, ctx)
            .map_err(|reason| Error::Dispatch { pgm_va, reason: format!("{}: {reason}", k.id) })?;
        if ctx.dim.contains(&0) {
            return Ok(None);
        }
        let kernarg_va = u64::from(ctx.user_data(0)) | (u64::from(ctx.user_data(1)) << 32);
        let mut kernarg = vec![0u8; k.kernel.descriptor.kernarg_size as usize];
        ctx.memory.read(kernarg_va, &mut kernarg)?;
        Ok(Some(kernarg))
    }

    /// Run `k` on the native executor and on the ISA interpreter from the same inputs and
    /// compare their outputs ([`agree`]); the native outputs are kept.
    ///
    /// The bytes the dispatch writes (its [`Footprint`]) are saved first and restored between
    /// the two runs, so the interpreter sees the inputs the native run saw even when an input
    /// shares memory with an output. Errors: either executor's error; [`Error::Dispatch`]
    /// naming the kernel and the first differing element on disagreement.
    fn run_both(
        &self,
        ctx: &DispatchContext<'_>,
        k: &RegisteredKernel,
        args: &Args<'_>,
    ) -> Result<()> {
        let run = Run::new(ctx, k);
        let writes = run.footprint(args)?.writes;
        let Ok(before) = agree::save(ctx.memory, &writes) else {
            // An output is not mapped: the native run reports the fault where it meets it.
            return run.kernel(args);
        };
        run.kernel(args)?;
        let mut native = agree::save(ctx.memory, &writes)?;
        if let Some(perturb) = self.perturb_native {
            native.iter_mut().for_each(|bytes| perturb(k.id, bytes));
        }
        agree::restore(ctx.memory, &writes, &before)?;
        self.run_isa(ctx, k)?;
        let isa = agree::save(ctx.memory, &writes)?;
        agree::restore(ctx.memory, &writes, &native)?;
        let check = agree::Check { run: &run, args };
        check.outputs(&native, &isa).map_err(|d| run.fail(d))
    }

    /// Run code that is none of the registry's kernels on the ISA interpreter, from the
    /// launch registers alone (no kernel descriptor is known): the bytes from `COMPUTE_PGM`
    /// to the end of their mapping (at most [`UNKNOWN_CODE_WINDOW`]) are decoded once
    /// ([`isa::Program::decode_prefix`]) and cached.
    ///
    /// Errors: [`Error::Dispatch`] naming the code VA when the code does not decode, the
    /// dispatch asks for wave64 (not implemented), or the interpreter stops; [`Error::Fault`]
    /// for an access outside every mapping.
    fn run_unknown(&self, ctx: &DispatchContext<'_>) -> Result<()> {
        let pgm_va = ctx.pgm_va();
        let fail = |why: String| Error::Dispatch {
            pgm_va,
            reason: format!("unknown code at {pgm_va:#x} (ISA interpreter): {why}"),
        };
        if ctx.initiator & INITIATOR_COMPUTE_SHADER_EN == 0 {
            return Err(fail(format!(
                "DISPATCH_INITIATOR {:#x} lacks COMPUTE_SHADER_EN (bit 0)",
                ctx.initiator
            )));
        }
        if ctx.initiator & INITIATOR_CS_W32_EN == 0 {
            return Err(fail("wave64 dispatches (CS_W32_EN clear) are not implemented".into()));
        }
        // The workgroup shape comes from the launch registers alone: refused before the code
        // is read or decoded.
        let name = format!("unknown code at {pgm_va:#x}");
        isa::check_workgroup(ctx, &name)?;
        let code = read_code_window(ctx.memory, pgm_va)?;
        let program =
            self.programs.get_prefix(self.isa_target(), &code).map_err(|e| fail(e.to_string()))?;
        if ctx.dim.contains(&0) {
            return Ok(());
        }
        let stats = isa::run_dispatch(ctx, self.isa_target(), &program, &name, self.step_limit)?;
        self.record(&name, stats);
        Ok(())
    }

    fn isa_target(&self) -> IsaTarget {
        match self.gfx {
            GfxTarget::Gfx1100 => IsaTarget::Gfx11,
            GfxTarget::Gfx1201 => IsaTarget::Gfx12,
        }
    }
}

/// Most bytes of unknown code read from its entry point (1 MiB: far more than any compute
/// kernel; the decoder stops at the first `s_code_end` anyway).
pub const UNKNOWN_CODE_WINDOW: usize = 1 << 20;

/// The executable bytes from `va` to the end of their mapping, at most
/// [`UNKNOWN_CODE_WINDOW`], read page by page.
///
/// Errors: the fault of the first page when `va` itself is not executable.
fn read_code_window(mem: &GpuMemory, va: u64) -> Result<Vec<u8>> {
    const PAGE: u64 = 4096;
    let mut code = Vec::new();
    let mut at = va;
    while code.len() < UNKNOWN_CODE_WINDOW {
        let len = ((PAGE - at % PAGE) as usize).min(UNKNOWN_CODE_WINDOW - code.len());
        match mem.with_code(at, len, |b| code.extend_from_slice(b)) {
            Ok(()) => {}
            Err(e) if code.is_empty() => return Err(e),
            Err(_) => break,
        }
        match at.checked_add(len as u64) {
            Some(next) => at = next,
            None => break,
        }
    }
    code.truncate(code.len() - code.len() % 4);
    Ok(code)
}

/// Compare the launch registers with what the descriptor requires; the reason on mismatch.
fn check_launch(
    k: &RegisteredKernel,
    ctx: &DispatchContext<'_>,
) -> std::result::Result<(), String> {
    let d: &KernelDescriptor = &k.kernel.descriptor;
    let sh = |r: u16| ctx.regs.sh(r);
    // RSRC1 may carry PRIV on top of the descriptor's value: the launcher sets it on gfx11 KFD
    // queues for CWSR (pm4rt_core::launch::rsrc1_for); the wave is the same otherwise.
    let rsrc1 = sh(regs::COMPUTE_PGM_RSRC1);
    if rsrc1 & !RSRC1_PRIV != d.compute_pgm_rsrc1 & !RSRC1_PRIV
        || (rsrc1 & RSRC1_PRIV == 0 && d.compute_pgm_rsrc1 & RSRC1_PRIV != 0)
    {
        return Err(format!(
            "COMPUTE_PGM_RSRC1 is {rsrc1:#x}, the kernel descriptor needs {:#x} (PRIV may be \
             added)",
            d.compute_pgm_rsrc1
        ));
    }
    let expect = [
        ("COMPUTE_PGM_RSRC2", regs::COMPUTE_PGM_RSRC2, d.dispatch_rsrc2()),
        ("COMPUTE_PGM_RSRC3", regs::COMPUTE_PGM_RSRC3, d.compute_pgm_rsrc3),
        ("COMPUTE_START_X", regs::COMPUTE_START_X, 0),
        ("COMPUTE_START_Y", regs::COMPUTE_START_Y, 0),
        ("COMPUTE_START_Z", regs::COMPUTE_START_Z, 0),
    ];
    for (name, reg, want) in expect {
        let got = sh(reg);
        if got != want {
            return Err(format!("{name} is {got:#x}, the kernel descriptor needs {want:#x}"));
        }
    }
    let wg = k.kernel.metadata.reqd_workgroup_size.unwrap_or([WORKGROUP_SIZE, 1, 1]);
    let threads = ctx.num_threads();
    if threads != wg {
        return Err(format!(
            "COMPUTE_NUM_THREAD_X/Y/Z are {threads:?}, the kernel's workgroup is {wg:?}"
        ));
    }
    if ctx.initiator & INITIATOR_COMPUTE_SHADER_EN == 0 {
        return Err(format!(
            "DISPATCH_INITIATOR {:#x} lacks COMPUTE_SHADER_EN (bit 0)",
            ctx.initiator
        ));
    }
    let w32 = ctx.initiator & INITIATOR_CS_W32_EN != 0;
    if w32 != d.is_wave32() {
        return Err(format!(
            "DISPATCH_INITIATOR {:#x} has CS_W32_EN {} but the kernel is wave{}",
            ctx.initiator,
            u32::from(w32),
            if d.is_wave32() { 32 } else { 64 }
        ));
    }
    if !d.wants_kernarg_ptr() {
        return Err("the descriptor does not ask for the kernarg pointer".into());
    }
    Ok(())
}

/// The kernarg segment of one dispatch, decoded at the metadata offsets.
struct Args<'a> {
    k: &'a RegisteredKernel,
    bytes: &'a [u8],
}

impl Args<'_> {
    fn field<const N: usize>(&self, name: &str) -> [u8; N] {
        let at = self.k.offset(name);
        let mut out = [0u8; N];
        if let Some(b) = at.checked_add(N).and_then(|end| self.bytes.get(at..end)) {
            out.copy_from_slice(b);
        }
        out
    }

    fn ptr(&self, name: &str) -> u64 {
        u64::from_le_bytes(self.field(name))
    }

    fn u32(&self, name: &str) -> u32 {
        u32::from_le_bytes(self.field(name))
    }

    fn f32(&self, name: &str) -> f32 {
        f32::from_le_bytes(self.field(name))
    }
}

/// One dispatch being executed.
struct Run<'a> {
    mem: &'a GpuMemory,
    pgm_va: u64,
    id: KernelId,
    /// Workgroups in X.
    groups: u64,
}

impl<'a> Run<'a> {
    fn new(ctx: &DispatchContext<'a>, k: &RegisteredKernel) -> Run<'a> {
        Run { mem: ctx.memory, pgm_va: ctx.pgm_va(), id: k.id, groups: u64::from(ctx.dim[0]) }
    }
}

/// What a DMMV dispatch works on, as the kernel sees its arguments.
struct DmmvShape {
    ty: WeightType,
    /// Rows computed: `min(rows, groups * 8)`.
    rows: usize,
    /// Columns used: `cols` rounded down to whole blocks.
    cols: usize,
}

impl Run<'_> {
    fn fail(&self, reason: impl std::fmt::Display) -> Error {
        Error::Dispatch { pgm_va: self.pgm_va, reason: format!("{}: {reason}", self.id) }
    }

    /// Rows a DMMV grid computes: `min(rows, dim_x * 8)`.
    fn dmmv_rows(&self, rows: u32) -> usize {
        (u64::from(rows)).min(self.groups * u64::from(DMMV_ROWS_PER_WORKGROUP)) as usize
    }

    /// Elements a one-per-lane grid covers: `min(n, dim_x * 256)`.
    fn lanes(&self, n: u32) -> usize {
        (u64::from(n)).min(self.groups * u64::from(WORKGROUP_SIZE)) as usize
    }

    fn dmmv_shape(&self, a: &Args<'_>) -> DmmvShape {
        let ty = weight_type(self.id);
        let block = ty.block_values();
        let cols = a.u32("cols") as usize;
        DmmvShape { ty, rows: self.dmmv_rows(a.u32("rows")), cols: cols - cols % block }
    }

    fn kernel(&self, a: &Args<'_>) -> Result<()> {
        match self.id.kind() {
            KernelKind::Dmmv { .. } => {
                self.dmmv(&self.dmmv_shape(a), a.ptr("w"), a.ptr("x"), a.ptr("y"))
            }
            KernelKind::DmmvArgmax { .. } => {
                self.dmmv_argmax(&self.dmmv_shape(a), a.ptr("w"), a.ptr("x"), a.ptr("out"))
            }
            KernelKind::ArgmaxF32 => self.argmax(a.ptr("x"), self.lanes(a.u32("n")), a.ptr("out")),
            KernelKind::RmsNormF32 => self.rms_norm(
                a.ptr("x"),
                a.ptr("weight"),
                a.ptr("y"),
                a.u32("n") as usize,
                a.f32("eps"),
            ),
            KernelKind::CopyU32 => self.copy(a.ptr("src"), a.ptr("dst"), self.lanes(a.u32("n"))),
        }
    }

    /// The ranges [`Run::kernel`] reads and writes with the same arguments.
    fn footprint(&self, a: &Args<'_>) -> Result<Footprint> {
        let range = |va: u64, bytes: usize| va..va.saturating_add(bytes as u64);
        let f32s = |va: u64, n: usize| self.bytes("vector", n, 4).map(|b| range(va, b));
        Ok(match self.id.kind() {
            KernelKind::Dmmv { .. } => {
                let s = self.dmmv_shape(a);
                Footprint {
                    reads: vec![
                        range(a.ptr("w"), self.weight_bytes(&s)?),
                        f32s(a.ptr("x"), s.cols)?,
                    ],
                    writes: vec![f32s(a.ptr("y"), s.rows)?],
                }
            }
            KernelKind::DmmvArgmax { .. } => {
                let s = self.dmmv_shape(a);
                let out = a.ptr("out");
                Footprint {
                    reads: vec![
                        range(a.ptr("w"), self.weight_bytes(&s)?),
                        f32s(a.ptr("x"), s.cols)?,
                        range(out, 8),
                    ],
                    writes: vec![range(out, 8)],
                }
            }
            KernelKind::ArgmaxF32 => {
                let out = a.ptr("out");
                Footprint {
                    reads: vec![f32s(a.ptr("x"), self.lanes(a.u32("n")))?, range(out, 8)],
                    writes: vec![range(out, 8)],
                }
            }
            KernelKind::RmsNormF32 => {
                let n = a.u32("n") as usize;
                Footprint {
                    reads: vec![f32s(a.ptr("x"), n)?, f32s(a.ptr("weight"), n)?],
                    writes: vec![f32s(a.ptr("y"), n)?],
                }
            }
            KernelKind::CopyU32 => {
                let n = self.lanes(a.u32("n"));
                Footprint {
                    reads: vec![f32s(a.ptr("src"), n)?],
                    writes: vec![f32s(a.ptr("dst"), n)?],
                }
            }
        })
    }

    fn bytes(&self, what: &str, count: usize, unit: usize) -> Result<usize> {
        count
            .checked_mul(unit)
            .ok_or_else(|| self.fail(format!("{what}: {count} elements overflow")))
    }

    /// Copy `n` f32 values from `va` (the mapping is checked before anything is allocated).
    fn read_f32s(&self, va: u64, n: usize) -> Result<Vec<f32>> {
        let len = self.bytes("read", n, 4)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        self.mem.with_slice(va, len, |b| {
            b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        })
    }

    fn write_f32s(&self, va: u64, v: &[f32]) -> Result<()> {
        if v.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        self.mem.write(va, &bytes)
    }

    /// Fail with a fault now if `[va, va + len)` is not mapped (before allocating for it).
    fn probe(&self, va: u64, len: usize) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.mem.with_slice(va, len, |_| ())
    }

    /// Run `f` on the `len` bytes at `va` borrowed in place (an empty slice for `len == 0`).
    fn borrow<R>(&self, va: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        if len == 0 {
            return Ok(f(&[]));
        }
        self.mem.with_slice(va, len, f)
    }

    fn weight_bytes(&self, s: &DmmvShape) -> Result<usize> {
        let (rows, cols) = (s.rows, s.cols);
        let row = s.ty.row_bytes(cols).map_err(|e| self.fail(e))?;
        rows.checked_mul(row).ok_or_else(|| self.fail(format!("{rows} x {cols} overflows")))
    }

    /// The GPU's 64-bit atomic max at `out`.
    fn atomic_max(&self, out: u64, v: u64) -> Result<()> {
        if !out.is_multiple_of(8) {
            return Err(self.fail(format!("64-bit atomic max at misaligned VA {out:#x}")));
        }
        let old = self.mem.read_u64(out)?;
        if v > old {
            self.mem.write_u64(out, v)?;
        }
        Ok(())
    }

    fn dmmv(&self, s: &DmmvShape, w: u64, x: u64, y: u64) -> Result<()> {
        let (ty, rows, cols) = (s.ty, s.rows, s.cols);
        if rows == 0 {
            return Ok(());
        }
        let w_len = self.weight_bytes(s)?;
        self.probe(y, self.bytes("y", rows, 4)?)?;
        let xv = self.read_f32s(x, cols)?;
        let mut out = vec![0f32; rows];
        self.borrow(w, w_len, |wb| kernels::dmmv(ty, wb, &xv, &mut out, rows, cols))?
            .map_err(|e| self.fail(e))?;
        self.write_f32s(y, &out)
    }

    fn dmmv_argmax(&self, s: &DmmvShape, w: u64, x: u64, out: u64) -> Result<()> {
        let (ty, rows, cols) = (s.ty, s.rows, s.cols);
        if rows == 0 {
            return Ok(());
        }
        let w_len = self.weight_bytes(s)?;
        let xv = self.read_f32s(x, cols)?;
        let packed = self
            .borrow(w, w_len, |wb| kernels::dmmv_argmax(ty, wb, &xv, rows, cols))?
            .map_err(|e| self.fail(e))?;
        self.atomic_max(out, packed)
    }

    fn argmax(&self, x: u64, n: usize, out: u64) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let xv = self.read_f32s(x, n)?;
        let packed = kernels::argmax_f32(&xv, n).map_err(|e| self.fail(e))?;
        self.atomic_max(out, packed)
    }

    fn rms_norm(&self, x: u64, weight: u64, y: u64, n: usize, eps: f32) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let xv = self.read_f32s(x, n)?;
        let wv = self.read_f32s(weight, n)?;
        let mut out = vec![0f32; n];
        kernels::rms_norm_f32(&xv, &wv, &mut out, n, eps).map_err(|e| self.fail(e))?;
        self.write_f32s(y, &out)
    }

    fn copy(&self, src: u64, dst: u64, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let len = self.bytes("src", n, 4)?;
        let data = self.mem.with_slice(src, len, <[u8]>::to_vec)?;
        self.mem.write(dst, &data)
    }
}

/// The weight format of a DMMV kernel (from its GGML type id); F32 for the other kernels,
/// which never read it.
fn weight_type(id: KernelId) -> WeightType {
    match id.kind() {
        KernelKind::Dmmv { ggml_type } | KernelKind::DmmvArgmax { ggml_type } => {
            WeightType::from_ggml_type(ggml_type).unwrap_or(WeightType::F32)
        }
        _ => WeightType::F32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_build_for_both_targets_with_distinct_code() {
        for gfx in [GfxTarget::Gfx1201, GfxTarget::Gfx1100] {
            let r = KernelRegistry::new(gfx).unwrap();
            assert_eq!(r.gfx(), gfx);
            assert_eq!(r.kernels().len(), KernelId::ALL.len());
            for (i, a) in r.kernels().iter().enumerate() {
                for b in &r.kernels()[i + 1..] {
                    assert_ne!(a.code, b.code, "{gfx}: {} and {} share code", a.id, b.id);
                }
            }
            // Offsets come from the metadata and equal the declared ones.
            for k in r.kernels() {
                for a in k.id.signature() {
                    assert_eq!(k.offset(a.name), a.offset as usize, "{}.{}", k.id, a.name);
                }
            }
        }
    }

    #[test]
    fn shared_is_built_once() {
        let a = KernelRegistry::shared(GfxTarget::Gfx1201).unwrap();
        let b = KernelRegistry::shared(GfxTarget::Gfx1201).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
