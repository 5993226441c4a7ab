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

pub mod clock;
mod dev;
mod fences;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::abi::drm::{
    CsChunkIb, CtxOutState, InfoDevice, InfoHwIp, InfoQueryHwIp, WaitCsIn,
    AMDGPU_CTX_PRIORITY_NORMAL, AMDGPU_CTX_QUERY2_FLAGS_GUILTY, AMDGPU_CTX_QUERY2_FLAGS_RESET,
    AMDGPU_CTX_QUERY2_FLAGS_VRAMLOST, AMDGPU_HW_IP_COMPUTE, AMDGPU_IB_FLAG_EMIT_MEM_SYNC,
    AMDGPU_INFO_DEV_INFO, AMDGPU_INFO_HW_IP_INFO,
};
use pm4rt_core::error::errno_name;
use pm4rt_core::{
    BoDesc, BoHandle, Counters, Domain, Driver, Errno, Error, Fence, GfxTarget, Result, Submitter,
    SubmitterInfo, Tier,
};

pub use clock::MonotonicClock;
pub use dev::{
    STEP_BO_ACCESS, STEP_CLOSE, STEP_CS, STEP_CTX_ALLOC, STEP_CTX_FREE, STEP_CTX_QUERY,
    STEP_GEM_CLOSE, STEP_GEM_CREATE, STEP_GEM_MMAP, STEP_INFO_DEV, STEP_INFO_HW_IP, STEP_MMAP,
    STEP_OPEN, STEP_VA_MAP, STEP_VA_UNMAP, STEP_WAIT_CS,
};

use crate::bo_access;
use crate::drm;
use crate::drm::bo::{self, Bo};
use crate::drm::dev::Dev;
use crate::va::VaAllocator;
use dev::CsScratch;
use fences::{FenceState, FenceTracker};

/// The render node opened by default.
pub const DEFAULT_RENDER_NODE: &str = "/dev/dri/renderD128";

/// BO sizes, VAs and physical alignment are multiples of this (the CPU and GPU page size).
pub const PAGE_SIZE: u64 = 4096;

/// How to open a [`CsSubmitter`].
#[derive(Debug, Clone)]
pub struct CsConfig {
    /// The render node, e.g. [`DEFAULT_RENDER_NODE`].
    pub path: String,
    /// The GPU target, used only when the kernel does not report the GC IP version (kernels
    /// without `ip_discovery_version`). When both are known they must agree.
    pub gfx: Option<GfxTarget>,
    /// Put every BO in this domain regardless of [`BoDesc::domain`] (e.g. `Some(Domain::Gtt)`
    /// on a machine with little CPU-visible VRAM). `None` honours the descriptor.
    pub force_domain: Option<Domain>,
    /// Context priority (`AMDGPU_CTX_PRIORITY_*`; above NORMAL needs CAP_SYS_NICE).
    pub priority: i32,
    /// Compute ring index (must be set in HW_IP_INFO's `available_rings`).
    pub ring: u32,
    /// Set `AMDGPU_IB_FLAG_EMIT_MEM_SYNC` on every IB (cache flush/invalidate before it).
    pub mem_sync: bool,
    /// On drop, wait at most this long for the newest submission before releasing
    /// (`None`: do not wait, as the [`Submitter`] contract describes).
    pub drain_on_drop: Option<Duration>,
    /// Report the device as emulated in [`SubmitterInfo::emulated`].
    pub emulated: bool,
    /// The CLOCK_MONOTONIC source used for `WAIT_CS` deadlines.
    pub clock: MonotonicClock,
}

impl Default for CsConfig {
    fn default() -> Self {
        CsConfig {
            path: DEFAULT_RENDER_NODE.to_string(),
            gfx: None,
            force_domain: None,
            priority: AMDGPU_CTX_PRIORITY_NORMAL,
            ring: 0,
            mem_sync: true,
            drain_on_drop: None,
            emulated: false,
            clock: clock::monotonic_now_ns,
        }
    }
}

impl CsConfig {
    /// The default configuration for the render node at `path`.
    pub fn with_path(path: impl Into<String>) -> Self {
        CsConfig { path: path.into(), ..CsConfig::default() }
    }
}

/// The [`GfxTarget`] for a GC IP version as HW_IP_INFO reports it (`ip_discovery_version`:
/// bits 23:16 major, 15:8 minor, 7:0 revision). The kernel fills it for COMPUTE from the GC
/// IP (`amdgpu_hw_ip_info`: COMPUTE maps to `AMD_IP_BLOCK_TYPE_GFX`,
/// `IP_VERSION_MAJ_MIN_REV(GC_HWIP)`), and KFD derives `gfx_target_version` from the same GC
/// version (`kfd_device.c`: `IP_VERSION(12, 0, 1)` -> 120001), so the KFD mapping applies.
/// `None` for 0 (not reported) or an unsupported target.
pub fn gfx_from_ip_discovery_version(v: u32) -> Option<GfxTarget> {
    let (major, minor, rev) = ((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF);
    if v == 0 {
        return None;
    }
    GfxTarget::from_kfd_target_version(major * 10000 + minor * 100 + rev)
}

/// The amdgpu CS tier. See the [module docs](self).
pub struct CsSubmitter {
    dev: Dev,
    config: CsConfig,
    ctx_id: u32,
    gfx: GfxTarget,
    hw_ip: InfoHwIp,
    dev_info: InfoDevice,
    va: VaAllocator,
    /// BOs by pm4rt handle (ids increase with creation order).
    bos: BTreeMap<u32, Bo>,
    next_bo: u32,
    /// Mapped ranges: start VA -> (end VA, pm4rt handle).
    by_va: BTreeMap<u64, (u64, u32)>,
    scratch: CsScratch,
    residency_dirty: bool,
    fences: FenceTracker,
    submissions: u64,
    retired: u64,
    lost: Option<String>,
}

impl std::fmt::Debug for CsSubmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsSubmitter")
            .field("path", &self.config.path)
            .field("ctx_id", &self.ctx_id)
            .field("gfx", &self.gfx)
            .field("bos", &self.bos.len())
            .field("pending", &self.fences.pending())
            .field("lost", &self.lost)
            .finish()
    }
}

fn describe_state(st: &CtxOutState) -> String {
    let mut parts = Vec::new();
    if st.flags & AMDGPU_CTX_QUERY2_FLAGS_RESET != 0 {
        parts.push("GPU reset");
    }
    if st.flags & AMDGPU_CTX_QUERY2_FLAGS_VRAMLOST != 0 {
        parts.push("VRAM lost");
    }
    if st.flags & AMDGPU_CTX_QUERY2_FLAGS_GUILTY != 0 {
        parts.push("this context is guilty");
    }
    let what = if parts.is_empty() { "no reset flag set".to_string() } else { parts.join(", ") };
    format!("{what} (QUERY_STATE2 flags {:#x}, hangs {})", st.flags, st.hangs)
}

impl CsSubmitter {
    /// Open the render node of `config` through `driver` and allocate a context.
    ///
    /// Errors: [`Error::Io`] naming the failing step ([`STEP_OPEN`], [`STEP_INFO_HW_IP`],
    /// [`STEP_INFO_DEV`], [`STEP_CTX_ALLOC`]); [`Error::Unsupported`] when no compute ring is
    /// available (or not `config.ring`), the VA range is empty, or the GPU target is unknown.
    /// Everything acquired before the failure is released.
    pub fn open(driver: Arc<dyn Driver>, config: CsConfig) -> Result<CsSubmitter> {
        let mut dev = Dev::open(driver, &config.path)?;
        match Self::bring_up(&mut dev, &config) {
            Ok((hw_ip, dev_info, gfx, va, ctx_id)) => Ok(CsSubmitter {
                dev,
                config,
                ctx_id,
                gfx,
                hw_ip,
                dev_info,
                va,
                bos: BTreeMap::new(),
                next_bo: 1,
                by_va: BTreeMap::new(),
                scratch: CsScratch::default(),
                residency_dirty: true,
                fences: FenceTracker::default(),
                submissions: 0,
                retired: 0,
                lost: None,
            }),
            Err(e) => {
                let _ = dev.close();
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn bring_up(
        dev: &mut Dev,
        config: &CsConfig,
    ) -> Result<(InfoHwIp, InfoDevice, GfxTarget, VaAllocator, u32)> {
        let compute = InfoQueryHwIp { ip_type: AMDGPU_HW_IP_COMPUTE, ip_instance: 0 };
        let hw_ip: InfoHwIp = dev.info(STEP_INFO_HW_IP, AMDGPU_INFO_HW_IP_INFO, compute)?;
        if hw_ip.available_rings == 0 {
            return Err(Error::Unsupported(format!(
                "{}: no compute ring available (HW_IP_INFO COMPUTE available_rings = 0)",
                config.path
            )));
        }
        if config.ring >= 32 || hw_ip.available_rings & (1 << config.ring) == 0 {
            return Err(Error::Unsupported(format!(
                "{}: compute ring {} not available (available_rings {:#x})",
                config.path, config.ring, hw_ip.available_rings
            )));
        }
        let dev_info: InfoDevice = dev.info(
            STEP_INFO_DEV,
            AMDGPU_INFO_DEV_INFO,
            InfoQueryHwIp { ip_type: 0, ip_instance: 0 },
        )?;
        let va = drm::target::va_allocator(&config.path, &dev_info)?;
        let gfx = drm::target::gfx_target(
            &config.path,
            hw_ip.ip_discovery_version,
            config.gfx,
            "; set CsConfig::gfx if the kernel does not report it",
        )?;
        let ctx_id = dev.ctx_alloc(config.priority)?;
        Ok((hw_ip, dev_info, gfx, va, ctx_id))
    }

    /// The amdgpu context id.
    pub fn ctx_id(&self) -> u32 {
        self.ctx_id
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
        self.bo(bo).map(|b| b.gem)
    }

    fn bo(&self, bo: BoHandle) -> Result<&Bo> {
        self.bos.get(&bo.0).ok_or(Error::UnknownBo(bo))
    }

    fn counters(&self) -> Counters {
        Counters { ioctls: self.dev.ioctls(), submissions: self.submissions, retired: self.retired }
    }

    /// Record that the context is gone after `step` failed with `errno`; asks the kernel why
    /// (one `CTX QUERY_STATE2`, skipped when the device itself is gone).
    fn lose(&mut self, step: &'static str, errno: i32) -> Error {
        let mut reason = format!("{step} failed with {} ({errno})", errno_name(errno));
        if errno == Errno::ENODEV.0 {
            reason.push_str(": the device was removed");
        } else {
            match self.dev.ctx_query_state2(self.ctx_id) {
                Ok(st) => {
                    reason.push_str(": ");
                    reason.push_str(&describe_state(&st));
                }
                Err(e) => reason.push_str(&format!(": and {e}")),
            }
        }
        self.lost = Some(reason.clone());
        Error::DeviceLost { reason }
    }

    fn is_loss(errno: i32) -> bool {
        errno == Errno::ECANCELED.0 || errno == Errno::ETIME.0 || errno == Errno::ENODEV.0
    }

    fn unmap_inner(&mut self, id: u32) -> Result<()> {
        let Some(bo) = self.bos.get(&id) else { return Err(Error::UnknownBo(BoHandle(id))) };
        let Some(va) = bo.va else {
            return Err(Error::BadVa { bo: BoHandle(id), va: 0, reason: "not mapped" });
        };
        let (gem, size, flags) = (bo.gem, bo.size, bo.vm_flags);
        let r = self.dev.va_unmap(gem, va, size, flags);
        if r.is_ok() {
            self.forget_va(id, va);
        }
        r
    }

    fn forget_va(&mut self, id: u32, va: u64) {
        self.va.free(va);
        self.by_va.remove(&va);
        if let Some(bo) = self.bos.get_mut(&id) {
            bo.va = None;
        }
        self.residency_dirty = true;
    }

    /// The mapping containing `[va, va + len)`, if one does.
    fn mapped_containing(&self, va: u64, len: u64) -> bool {
        let Some(end) = va.checked_add(len) else { return false };
        self.by_va.range(..=va).next_back().is_some_and(|(_, &(e, _))| end <= e)
    }
}

impl Submitter for CsSubmitter {
    fn info(&self) -> SubmitterInfo {
        SubmitterInfo {
            tier: Tier::Cs,
            gfx: self.gfx,
            va_range: self.va.range(),
            emulated: self.config.emulated,
            device: format!(
                "{} (amdgpu CS, PCI device {:#06x}, ctx {})",
                self.config.path, self.dev_info.device_id, self.ctx_id
            ),
            counters: self.counters(),
        }
    }

    fn alloc_bo(&mut self, desc: &BoDesc) -> Result<BoHandle> {
        let size = bo::rounded_size(desc)?;
        let id = self.next_bo;
        let next = id
            .checked_add(1)
            .ok_or_else(|| Error::Unsupported("BO handle space exhausted".into()))?;
        let domain = self.config.force_domain.unwrap_or(desc.domain);
        let new = self.dev.create_bo(bo::spec_for(desc, size, domain))?;
        self.bos.insert(id, new);
        self.next_bo = next;
        Ok(BoHandle(id))
    }

    /// Frees the BO even when a step fails on the way (`GEM_CLOSE` of the last handle also
    /// drops the kernel's VA mapping); the error reports the first failing step.
    fn free_bo(&mut self, bo: BoHandle) -> Result<()> {
        if !self.bos.contains_key(&bo.0) {
            return Err(Error::UnknownBo(bo));
        }
        let mut first_err = None;
        if let Some(va) = self.bos.get(&bo.0).and_then(|b| b.va) {
            if let Err(e) = self.unmap_inner(bo.0) {
                first_err = Some(e);
                self.forget_va(bo.0, va);
            }
        }
        let Some(b) = self.bos.remove(&bo.0) else { return Err(Error::UnknownBo(bo)) };
        drop(b.cpu); // munmap
        if let Err(e) = self.dev.gem_close(b.gem) {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    fn map_va(&mut self, bo: BoHandle, va: Option<u64>) -> Result<u64> {
        let b = self.bo(bo)?;
        if b.va.is_some() {
            return Err(Error::BadVa { bo, va: va.unwrap_or(0), reason: "BO is already mapped" });
        }
        let (gem, size, flags) = (b.gem, b.size, b.vm_flags);
        let at = self.va.alloc(size, va).map_err(|r| Error::BadVa {
            bo,
            va: va.unwrap_or(0),
            reason: r.reason(),
        })?;
        if let Err(e) = self.dev.va_map(gem, at, size, flags) {
            self.va.free(at);
            return Err(e);
        }
        self.by_va.insert(at, (at + size, bo.0));
        if let Some(b) = self.bos.get_mut(&bo.0) {
            b.va = Some(at);
        }
        self.residency_dirty = true;
        Ok(at)
    }

    fn unmap_va(&mut self, bo: BoHandle) -> Result<()> {
        self.unmap_inner(bo.0)
    }

    fn write_bo(&mut self, bo: BoHandle, offset: u64, data: &[u8]) -> Result<()> {
        let b = self.bo(bo)?;
        bo_access::write(bo, b.cpu.as_deref(), b.size, offset, data, STEP_BO_ACCESS)
    }

    fn read_bo(&self, bo: BoHandle, offset: u64, out: &mut [u8]) -> Result<()> {
        let b = self.bo(bo)?;
        bo_access::read(bo, b.cpu.as_deref(), b.size, offset, out, STEP_BO_ACCESS)
    }

    fn submit_ib(&mut self, ib_va: u64, dwords: u32) -> Result<Fence> {
        if let Some(reason) = &self.lost {
            return Err(Error::DeviceLost { reason: reason.clone() });
        }
        if dwords == 0 {
            return Err(Error::InvalidArgument("empty IB (0 dwords)".into()));
        }
        pm4rt_core::check_ib_size(dwords)?;
        if !ib_va.is_multiple_of(4) {
            return Err(Error::InvalidArgument(format!("IB VA {ib_va:#x} is not 4-byte aligned")));
        }
        let bytes = u64::from(dwords) * 4;
        let ib_bytes = u32::try_from(bytes).map_err(|_| {
            Error::InvalidArgument(format!("IB of {dwords} dwords exceeds the 4 GiB CS limit"))
        })?;
        if !self.mapped_containing(ib_va, bytes) {
            return Err(Error::InvalidArgument(format!(
                "IB {ib_va:#x}..{:#x} is not inside one mapped BO",
                ib_va + bytes
            )));
        }
        if self.residency_dirty {
            let bos = &self.bos;
            self.scratch.set_entries(
                self.by_va.values().filter_map(|&(_, id)| bos.get(&id).map(|b| b.gem)),
            );
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
        match self.dev.cs_submit(&mut self.scratch, self.ctx_id, ib) {
            Ok(handle) => {
                self.submissions += 1;
                Ok(Fence { seq: self.fences.issue(handle) })
            }
            Err(Error::Io { step, errno }) if Self::is_loss(errno) => Err(self.lose(step, errno)),
            Err(e) => Err(e),
        }
    }

    fn wait_fence(&mut self, fence: Fence, timeout: Duration) -> Result<()> {
        let handle = match self.fences.state(fence.seq) {
            FenceState::Unknown => return Err(Error::UnknownFence(fence)),
            FenceState::Retired => return Ok(()),
            FenceState::Pending(h) => h,
        };
        if let Some(reason) = &self.lost {
            return Err(Error::DeviceLost { reason: reason.clone() });
        }
        let deadline = clock::absolute_deadline_ns((self.config.clock)(), timeout);
        let input = WaitCsIn {
            handle,
            timeout: deadline,
            ip_type: AMDGPU_HW_IP_COMPUTE,
            ip_instance: 0,
            ring: self.config.ring,
            ctx_id: self.ctx_id,
        };
        match self.dev.wait_cs(input) {
            Ok(true) => {
                self.retired += self.fences.retire_upto(fence.seq);
                Ok(())
            }
            Ok(false) => Err(Error::Timeout { fence, waited: timeout }),
            Err(Error::Io { step, errno }) if Self::is_loss(errno) => Err(self.lose(step, errno)),
            Err(e) => Err(e),
        }
    }
}

impl Drop for CsSubmitter {
    fn drop(&mut self) {
        if let (Some(limit), None, Some((seq, handle))) =
            (self.config.drain_on_drop, &self.lost, self.fences.newest_pending())
        {
            let input = WaitCsIn {
                handle,
                timeout: clock::absolute_deadline_ns((self.config.clock)(), limit),
                ip_type: AMDGPU_HW_IP_COMPUTE,
                ip_instance: 0,
                ring: self.config.ring,
                ctx_id: self.ctx_id,
            };
            if let Ok(true) = self.dev.wait_cs(input) {
                self.retired += self.fences.retire_upto(seq);
            }
        }
        let bos = std::mem::take(&mut self.bos);
        for (_, bo) in bos.into_iter().rev() {
            if let Some(va) = bo.va {
                let _ = self.dev.va_unmap(bo.gem, va, bo.size, bo.vm_flags);
            }
            drop(bo.cpu);
            let _ = self.dev.gem_close(bo.gem);
        }
        self.by_va.clear();
        let _ = self.dev.ctx_free(self.ctx_id);
        let _ = self.dev.close();
    }
}
