//! [`SimSubmitter`]: the `sim` tier, a [`Submitter`] over the in-process [`Engine`].
//!
//! BOs are host buffers in a [`GpuMemory`]; submissions go to the engine's queue thread and
//! fences are its sequence numbers. Fault semantics are the engine's (sticky): the submission
//! that faulted and every later one report the error from [`Submitter::wait_fence`], and
//! [`Submitter::submit_ib`] then fails with [`Error::DeviceLost`].

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::{
    BoDesc, BoHandle, Counters, Error, Fence, Result, Submitter, SubmitterInfo, Tier,
};

use crate::dispatch::KernelRegistry;
use crate::engine::{DispatchHook, Engine, EngineConfig, InterruptHook, Work};
use crate::isa::ExecMode;
use crate::memory::{GpuMemory, Perms};

/// The GPU VA range the simulator hands out and accepts: `[4 GiB, 128 TiB)`. A tier choice
/// (it keeps VA 0 and the low 4 GiB unmapped so small bogus addresses fault).
pub const SIM_VA_RANGE: Range<u64> = 0x1_0000_0000..0x8000_0000_0000;

/// Options for [`SimSubmitter::with_config`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimConfig {
    /// The queue engine's settings (WAIT_REG_MEM deadline, IB depth, gfx target).
    pub engine: EngineConfig,
    /// Which executor runs pm4rt's kernels; `None` (default): `PM4RT_SIM_EXEC` at each
    /// dispatch (see [`crate::dispatch`]).
    pub exec: Option<ExecMode>,
}

/// The simulator tier. See the module documentation.
pub struct SimSubmitter {
    // Field order matters for Drop: the engine (and its thread) goes first.
    engine: Engine,
    mem: Arc<GpuMemory>,
    bos: HashMap<BoHandle, BoDesc>,
    /// Allocation order, for reverse-order release on drop.
    order: Vec<BoHandle>,
    next_bo: u32,
    submissions: u64,
}

impl std::fmt::Debug for SimSubmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSubmitter")
            .field("engine", &self.engine)
            .field("bos", &self.bos.len())
            .finish_non_exhaustive()
    }
}

impl SimSubmitter {
    /// A simulator with the default configuration (gfx1201, 2 s WAIT_REG_MEM deadline, IB
    /// depth 4) that runs pm4rt's kernels (see [`SimSubmitter::with_config`]).
    ///
    /// Errors: [`Error::Io`] when the queue thread cannot be started.
    pub fn new() -> Result<SimSubmitter> {
        Self::with_config(SimConfig::default())
    }

    /// A simulator with `config`. It runs pm4rt's kernels: the shared
    /// [`KernelRegistry`] for the configured target is installed as the dispatch hook
    /// (remove it with `set_dispatch_hook(None)` to run without kernels, or install another).
    ///
    /// Errors: [`Error::Io`] when the queue thread cannot be started;
    /// [`Error::Unsupported`] when the kernel library for the target does not load.
    pub fn with_config(config: SimConfig) -> Result<SimSubmitter> {
        let gfx = config.engine.gfx;
        let registry = KernelRegistry::shared_with_mode(gfx, config.exec)
            .map_err(|e| Error::Unsupported(format!("pm4rt kernel library for {gfx}: {e}")))?;
        let mem = Arc::new(GpuMemory::new());
        let engine = Engine::new(Arc::clone(&mem), config.engine)?;
        engine.set_dispatch_hook(Some(registry));
        Ok(SimSubmitter {
            engine,
            mem,
            bos: HashMap::new(),
            order: Vec::new(),
            next_bo: 1,
            submissions: 0,
        })
    }

    /// The GPU memory (for tests and tools: read any VA directly).
    pub fn memory(&self) -> &Arc<GpuMemory> {
        &self.mem
    }

    /// The queue engine (counters, registers, hooks).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Install the hook that runs `DISPATCH_DIRECT` kernels (see [`Engine::set_dispatch_hook`]).
    pub fn set_dispatch_hook(&self, hook: Option<Arc<dyn DispatchHook>>) {
        self.engine.set_dispatch_hook(hook)
    }

    /// Install the observer of `RELEASE_MEM` interrupts.
    pub fn set_interrupt_hook(&self, hook: Option<Arc<dyn InterruptHook>>) {
        self.engine.set_interrupt_hook(hook)
    }

    fn desc(&self, bo: BoHandle) -> Result<&BoDesc> {
        self.bos.get(&bo).ok_or(Error::UnknownBo(bo))
    }

    fn cpu_check(&self, bo: BoHandle) -> Result<()> {
        if !self.desc(bo)?.cpu_access {
            return Err(Error::Unsupported(format!("{bo} was allocated without CPU access")));
        }
        Ok(())
    }
}

impl Submitter for SimSubmitter {
    fn info(&self) -> SubmitterInfo {
        SubmitterInfo {
            tier: Tier::Sim,
            gfx: self.engine.config().gfx,
            va_range: SIM_VA_RANGE,
            emulated: false,
            device: format!("pm4rt software GPU ({})", self.engine.config().gfx),
            counters: Counters {
                ioctls: 0,
                submissions: self.submissions,
                retired: self.engine.completed(),
            },
        }
    }

    fn alloc_bo(&mut self, desc: &BoDesc) -> Result<BoHandle> {
        if desc.size == 0 {
            return Err(Error::InvalidArgument("BO size 0".into()));
        }
        let id = BoHandle(self.next_bo);
        let next =
            self.next_bo.checked_add(1).ok_or(Error::io("alloc_bo", pm4rt_core::Errno::ENOMEM))?;
        self.mem.create_bo(id, desc.size)?;
        self.next_bo = next;
        self.bos.insert(id, *desc);
        self.order.push(id);
        Ok(id)
    }

    fn free_bo(&mut self, bo: BoHandle) -> Result<()> {
        self.desc(bo)?;
        self.mem.destroy_bo(bo)?;
        self.bos.remove(&bo);
        self.order.retain(|b| *b != bo);
        Ok(())
    }

    fn map_va(&mut self, bo: BoHandle, va: Option<u64>) -> Result<u64> {
        self.desc(bo)?;
        let size = self.mem.bo_size(bo)?;
        if self.mem.bo_va(bo)?.is_some() {
            return Err(Error::BadVa { bo, va: va.unwrap_or(0), reason: "BO already mapped" });
        }
        let va = match va {
            Some(va) => {
                let end = va.checked_add(size);
                if va < SIM_VA_RANGE.start || !matches!(end, Some(e) if e <= SIM_VA_RANGE.end) {
                    return Err(Error::BadVa { bo, va, reason: "outside the VA range" });
                }
                va
            }
            None => self.mem.find_free(SIM_VA_RANGE, size).ok_or(Error::BadVa {
                bo,
                va: 0,
                reason: "no free VA range large enough",
            })?,
        };
        // Stricter than the hardware tiers (which map every BO executable, as the reference
        // clients do): code runs only from BOs allocated with `executable`.
        let perms = if self.desc(bo)?.executable { Perms::ALL } else { Perms::READ_WRITE };
        self.mem.map(bo, va, perms)?;
        Ok(va)
    }

    fn unmap_va(&mut self, bo: BoHandle) -> Result<()> {
        self.desc(bo)?;
        self.mem.unmap(bo).map(|_| ())
    }

    fn write_bo(&mut self, bo: BoHandle, offset: u64, data: &[u8]) -> Result<()> {
        self.cpu_check(bo)?;
        self.mem.write_bo(bo, offset, data)
    }

    fn read_bo(&self, bo: BoHandle, offset: u64, out: &mut [u8]) -> Result<()> {
        self.cpu_check(bo)?;
        self.mem.read_bo(bo, offset, out)
    }

    fn submit_ib(&mut self, ib_va: u64, dwords: u32) -> Result<Fence> {
        pm4rt_core::check_ib_size(dwords)?;
        let seq = self.engine.submit(Work::Ib { va: ib_va, dwords })?;
        self.submissions += 1;
        Ok(Fence { seq })
    }

    fn wait_fence(&mut self, fence: Fence, timeout: Duration) -> Result<()> {
        self.engine.wait(fence.seq, timeout)
    }
}

impl Drop for SimSubmitter {
    fn drop(&mut self) {
        // Stop and join the queue thread first (queued work is discarded), then release the
        // BOs in reverse order of creation.
        self.engine.shutdown();
        for bo in self.order.drain(..).rev() {
            let _ = self.mem.destroy_bo(bo);
        }
    }
}
