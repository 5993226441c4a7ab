//! The amdgpu command-submission tier: a [`Submitter`] over `DRM_IOCTL_AMDGPU_CS`.
//!
//! [`CsSubmitter`] drives one compute ring of one amdgpu context on a render node, through any
//! [`Driver`] (the Linux syscalls, the emulated device, or a test mock).
//!
//! ## Life
//!
//! - [`CsSubmitter::open`]: `open` the node, `INFO HW_IP_INFO(COMPUTE)` (a ring must be
//!   available; the GC IP version it reports picks the [`GfxTarget`]), `INFO DEV_INFO` (the
//!   usable VA range `[virtual_address_offset, virtual_address_max)`), `CTX ALLOC`. A failing
//!   step returns [`Error::Io`] naming it, after releasing whatever was already acquired.
//! - `alloc_bo`: `GEM_CREATE`, then for CPU-accessible BOs `GEM_MMAP` and an mmap of the
//!   render node, done eagerly so `read_bo` / `write_bo` never issue a syscall.
//! - `map_va` / `unmap_va`: `GEM_VA MAP` / `UNMAP` at a VA from a first-fit allocator over the
//!   device's VA range (or the caller's VA, after checking alignment, range and overlap).
//! - `submit_ib`: exactly one `CS` ioctl with two chunks: the IB (`ip_type` COMPUTE, flag
//!   `AMDGPU_IB_FLAG_EMIT_MEM_SYNC`, which makes the kernel emit the ring's cache
//!   flush/invalidate packet before the IB; gfx11 and gfx12 compute rings implement it) and an
//!   inline `BO_HANDLES` list of every currently mapped BO (so each mapped BO is resident for
//!   the job). The list is rebuilt only when the set of mappings changes; no BO list object
//!   is created, so residency costs no extra ioctl. All chunk memory is copied by the kernel
//!   during the ioctl, so one scratch set serves every submission and any number may be in
//!   flight.
//! - `wait_fence`: nothing for a fence already known retired, else exactly one `WAIT_CS` with
//!   an absolute CLOCK_MONOTONIC deadline (see [`clock`]). `ECANCELED` / `ETIME` (context
//!   reset, VRAM lost, job timed out) are followed by `CTX QUERY_STATE2` and reported as
//!   [`Error::DeviceLost`]; later submissions then fail the same way without an ioctl.
//! - `free_bo`: `GEM_VA UNMAP` if mapped, munmap, `GEM_CLOSE`.
//! - Drop: optionally one bounded `WAIT_CS` for the newest submission
//!   ([`CsConfig::drain_on_drop`], off by default as the [`Submitter`] contract says drop
//!   waits for nothing), then per BO in reverse creation order `GEM_VA UNMAP`, munmap,
//!   `GEM_CLOSE`, then `CTX FREE` and `close`. Errors are ignored; drop never panics.
//!   (The kernel keeps BOs referenced by queued jobs alive itself.)
//!
//! Costs: `submit_ib` = 1 ioctl, `wait_fence` = 0 or 1 ioctl (plus one `QUERY_STATE2` on
//! device loss), `alloc_bo` = 1 (+1 `GEM_MMAP` with CPU access), `map_va` / `unmap_va` = 1,
//! `free_bo` = 1 (+1 if mapped). Every ioctl is counted in [`Counters::ioctls`].
//!
//! ## Files
//!
//! [`config`] (how to open), `open` (bring-up and the `Resources` released in reverse order),
//! `ioctls` (`CTX`, `CS`, `WAIT_CS` and the step names), `fences` (pm4rt sequence numbers
//! versus kernel fence handles), `loss` (recognising a lost context), [`clock`] (the
//! `WAIT_CS` deadline), and this file (the [`Submitter`] implementation).

pub mod clock;
pub mod config;
mod fences;
mod ioctls;
mod loss;
mod open;

use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::abi::drm::{
    CsChunkIb, InfoDevice, InfoHwIp, WaitCsIn, AMDGPU_HW_IP_COMPUTE, AMDGPU_IB_FLAG_EMIT_MEM_SYNC,
};
use pm4rt_core::{
    BoDesc, BoHandle, Counters, Driver, Errno, Error, Fence, GfxTarget, Result, Submitter,
    SubmitterInfo, Tier,
};

pub use crate::drm::target::gfx_from_ip_discovery_version;
pub use clock::MonotonicClock;
pub use config::CsConfig;
pub use ioctls::{
    STEP_BO_ACCESS, STEP_CLOSE, STEP_CS, STEP_CTX_ALLOC, STEP_CTX_FREE, STEP_CTX_QUERY,
    STEP_GEM_CLOSE, STEP_GEM_CREATE, STEP_GEM_MMAP, STEP_INFO_DEV, STEP_INFO_HW_IP, STEP_MMAP,
    STEP_OPEN, STEP_VA_MAP, STEP_VA_UNMAP, STEP_WAIT_CS,
};
pub use pm4rt_core::{DEFAULT_RENDER_NODE, PAGE_SIZE};

use crate::common::health::QueueHealth;
use crate::common::ib;
use crate::drm::bo;
use fences::{FenceState, FenceTracker};
use ioctls::CsScratch;
use open::Resources;

/// The amdgpu CS tier. See the [module docs](self).
pub struct CsSubmitter {
    res: Resources,
    config: CsConfig,
    gfx: GfxTarget,
    hw_ip: InfoHwIp,
    dev_info: InfoDevice,
    scratch: CsScratch,
    /// The resident set in `scratch` is stale (a mapping changed).
    residency_dirty: bool,
    fences: FenceTracker,
    health: QueueHealth,
}

impl std::fmt::Debug for CsSubmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsSubmitter")
            .field("path", &self.config.path)
            .field("ctx_id", &self.res.ctx_id)
            .field("gfx", &self.gfx)
            .field("bos", &self.res.bos.len())
            .field("pending", &self.fences.pending())
            .field("health", &self.health)
            .finish()
    }
}

impl CsSubmitter {
    /// Open the render node of `config` through `driver` and allocate a context.
    ///
    /// Errors: [`Error::Io`] naming the failing step ([`STEP_OPEN`], [`STEP_INFO_HW_IP`],
    /// [`STEP_INFO_DEV`], [`STEP_CTX_ALLOC`]); [`Error::Unsupported`] when no compute ring is
    /// available (or not `config.ring`), the VA range is empty, or the GPU target is unknown.
    /// Everything acquired before the failure is released.
    pub fn open(driver: Arc<dyn Driver>, config: CsConfig) -> Result<CsSubmitter> {
        let o = open::open(driver, &config)?;
        Ok(CsSubmitter {
            res: o.res,
            config,
            gfx: o.gfx,
            hw_ip: o.hw_ip,
            dev_info: o.dev_info,
            scratch: CsScratch::default(),
            residency_dirty: true,
            fences: FenceTracker::default(),
            health: QueueHealth::default(),
        })
    }

    /// The amdgpu context id.
    pub fn ctx_id(&self) -> u32 {
        self.res.ctx_id
    }

    /// What `INFO HW_IP_INFO(COMPUTE)` reported (IB start / size alignment, rings, version).
    pub fn hw_ip_info(&self) -> &InfoHwIp {
        &self.hw_ip
    }

    /// What `INFO DEV_INFO` reported.
    pub fn device_info(&self) -> &InfoDevice {
        &self.dev_info
    }

    /// Submissions not yet observed retired.
    pub fn pending(&self) -> usize {
        self.fences.pending()
    }

    /// The GEM handle behind `bo` (for tests and diagnostics).
    ///
    /// Errors: [`Error::UnknownBo`].
    pub fn gem_handle(&self, bo: BoHandle) -> Result<u32> {
        self.res.bos.get(bo).map(|b| b.gem)
    }

    /// Record that the context is gone after `step` failed with `errno`; asks the kernel why
    /// (one `CTX QUERY_STATE2`, skipped when the device itself is gone).
    fn lose(&mut self, step: &'static str, errno: Errno) -> Error {
        let mut reason = format!("{step} failed with {errno}");
        if errno == Errno::ENODEV {
            reason.push_str(": the device was removed");
        } else {
            match self.res.dev.ctx_query_state2(self.res.ctx_id) {
                Ok(st) => {
                    reason.push_str(": ");
                    reason.push_str(&loss::describe_state(&st));
                }
                Err(e) => reason.push_str(&format!(": and {e}")),
            }
        }
        self.health.fail(Error::DeviceLost { reason })
    }

    /// The `WAIT_CS` input for kernel fence `handle` with a deadline `timeout` from now.
    fn wait_input(&self, handle: u64, timeout: Duration) -> WaitCsIn {
        WaitCsIn {
            handle,
            timeout: clock::absolute_deadline_ns((self.config.clock)(), timeout),
            ip_type: AMDGPU_HW_IP_COMPUTE,
            ip_instance: 0,
            ring: self.config.ring,
            ctx_id: self.res.ctx_id,
        }
    }
}

impl Submitter for CsSubmitter {
    fn info(&self) -> SubmitterInfo {
        SubmitterInfo {
            tier: Tier::Cs,
            gfx: self.gfx,
            va_range: self.res.va.range(),
            emulated: self.config.emulated,
            device: format!(
                "{} (amdgpu CS, PCI device {:#06x}, ctx {})",
                self.config.path, self.dev_info.device_id, self.res.ctx_id
            ),
            counters: Counters {
                ioctls: self.res.dev.ioctls(),
                submissions: self.fences.last_seq(),
                retired: self.fences.retired_seq(),
            },
        }
    }

    fn alloc_bo(&mut self, desc: &BoDesc) -> Result<BoHandle> {
        let size = bo::rounded_size(desc)?;
        let domain = self.config.force_domain.unwrap_or(desc.domain);
        let dev = &mut self.res.dev;
        self.res.bos.insert_with(|| dev.create_bo(bo::spec_for(desc, size, domain)))
    }

    /// Frees the BO even when a step fails on the way (`GEM_CLOSE` of the last handle also
    /// drops the kernel's VA mapping); the error reports the first failing step.
    fn free_bo(&mut self, bo: BoHandle) -> Result<()> {
        let b = self.res.bos.remove(bo)?;
        self.residency_dirty |= b.va.is_some();
        self.res.dev.release_bo(&mut self.res.va, b)
    }

    fn map_va(&mut self, bo: BoHandle, va: Option<u64>) -> Result<u64> {
        let b = self.res.bos.get(bo)?;
        let at = bo::reserve_va(&mut self.res.va, bo, b, va)?;
        if let Err(e) = self.res.dev.va_map(b.gem, at, b.size, b.vm_flags) {
            self.res.va.free(at);
            return Err(e);
        }
        self.res.bos.update(bo, |b| b.va = Some(at))?;
        self.residency_dirty = true;
        Ok(at)
    }

    fn unmap_va(&mut self, bo: BoHandle) -> Result<()> {
        let b = self.res.bos.get(bo)?;
        self.res.dev.unmap_bo(&mut self.res.va, bo, b)?;
        self.res.bos.update(bo, |b| b.va = None)?;
        self.residency_dirty = true;
        Ok(())
    }

    fn write_bo(&mut self, bo: BoHandle, offset: u64, data: &[u8]) -> Result<()> {
        self.res.bos.write(bo, offset, data, STEP_BO_ACCESS)
    }

    fn read_bo(&self, bo: BoHandle, offset: u64, out: &mut [u8]) -> Result<()> {
        self.res.bos.read(bo, offset, out, STEP_BO_ACCESS)
    }

    fn submit_ib(&mut self, ib_va: u64, dwords: u32) -> Result<Fence> {
        let bytes = ib::check(&self.res.bos, ib_va, dwords)?;
        self.health.check_submit()?;
        // At most MAX_IB_DWORDS * 4 bytes: always fits the chunk's 32-bit size.
        let ib_bytes = u32::try_from(bytes).map_err(|_| {
            Error::InvalidArgument(format!("IB of {dwords} dwords exceeds the 4 GiB CS limit"))
        })?;
        if self.residency_dirty {
            self.scratch.set_entries(self.res.bos.mapped().map(|b| b.gem));
            self.residency_dirty = false;
        }
        let ib = CsChunkIb {
            pad: 0,
            flags: if self.config.mem_sync { AMDGPU_IB_FLAG_EMIT_MEM_SYNC } else { 0 },
            va_start: ib_va,
            ib_bytes,
            ip_type: AMDGPU_HW_IP_COMPUTE,
            ip_instance: 0,
            ring: self.config.ring,
        };
        match self.res.dev.cs_submit(&mut self.scratch, self.res.ctx_id, ib) {
            Ok(handle) => Ok(Fence { seq: self.fences.issue(handle) }),
            Err(Error::Io { step, errno }) if loss::is_loss(errno) => Err(self.lose(step, errno)),
            Err(e) => Err(e),
        }
    }

    fn wait_fence(&mut self, fence: Fence, timeout: Duration) -> Result<()> {
        let handle = match self.fences.state(fence.seq) {
            FenceState::Unknown => return Err(Error::UnknownFence(fence)),
            FenceState::Retired => return Ok(()),
            FenceState::Pending(h) => h,
        };
        self.health.check_wait()?;
        match self.res.dev.wait_cs(self.wait_input(handle, timeout)) {
            Ok(true) => {
                self.fences.retire_upto(fence.seq);
                Ok(())
            }
            Ok(false) => Err(Error::Timeout { fence, waited: timeout }),
            Err(Error::Io { step, errno }) if loss::is_loss(errno) => Err(self.lose(step, errno)),
            Err(e) => Err(e),
        }
    }
}

/// Drop: the optional bounded drain ([`CsConfig::drain_on_drop`]); the release itself is
/// `Resources`' (the BOs newest first, `CTX FREE`, `close`).
impl Drop for CsSubmitter {
    fn drop(&mut self) {
        if let (Some(limit), None, Some((seq, handle))) =
            (self.config.drain_on_drop, self.health.failure(), self.fences.newest_pending())
        {
            if let Ok(true) = self.res.dev.wait_cs(self.wait_input(handle, limit)) {
                self.fences.retire_upto(seq);
            }
        }
    }
}
