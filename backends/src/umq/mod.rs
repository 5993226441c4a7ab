//! The amdgpu user-mode-queue tier: a [`Submitter`] over `DRM_IOCTL_AMDGPU_USERQ`.
//!
//! [`UmqSubmitter`] owns one COMPUTE user queue on a render node, through any [`Driver`].
//! Submitting costs no system call: the packets go into a ring in GPU-visible memory, the
//! write pointer is stored, and a doorbell page mapped into the process is written.
//!
//! ## Life
//!
//! - [`UmqSubmitter::open`]: `open` the node, then the capability probe ([`probe`], by
//!   feature, from what Linux 6.17 reports: `amdgpu.user_queue`, DEV_INFO `userq_ip_mask`,
//!   HW_IP_INFO(COMPUTE) `userq_num_slots`; UQ_FW_AREAS(COMPUTE) is optional, 6.17 answers it
//!   `EINVAL`). Any failing check ends here with [`Error::Unsupported`] naming every failure;
//!   `USERQ CREATE` is then never issued. Otherwise, as Mesa's winsys (`amdgpu_userq.c`
//!   `amdgpu_userq_init`) does: a timeline syncobj for the VM's page-table updates
//!   (`SYNCOBJ_CREATE`), a 4 KiB DOORBELL-domain BO (mmapped), the ring (GTT, a power of
//!   two of at least 4 KiB, 64 KiB by default, mapped for CPU and GPU), 4 KiB write- and
//!   read-pointer BOs
//!   (GTT, CPU + GPU), the EOP BO ([`UmqProbe::eop_layout`]: the kernel's size and alignment
//!   when reported, else Mesa's one page aligned 256; VRAM), a 4 KiB fence BO (GTT,
//!   uncached). Every `GEM_VA` MAP signals the next point of the syncobj
//!   (`vm_timeline_syncobj_out` / `vm_timeline_point`); ring, wptr and rptr are mapped
//!   readable, writeable, executable and `AMDGPU_VM_MTYPE_UC` (Mesa: `RADEON_FLAG_GL2_BYPASS`,
//!   which amdgpu_bo.c maps UC), the EOP and fence readable, writeable, executable. Then one
//!   bounded `SYNCOBJ_TIMELINE_WAIT` for the last point ([`UmqConfig::vm_update_timeout`]:
//!   the page tables are written before the CP reads them) and `USERQ CREATE` (COMPUTE,
//!   doorbell handle and index in 8-byte units, ring VA and size, rptr / wptr VAs, the 8-byte
//!   compute MQD `{eop_va}` in a `user` buffer). A failure releases everything acquired, in
//!   reverse order, and reports [`Error::Io`] naming the step.
//! - `alloc_bo` / `free_bo` / `unmap_va` / `read_bo` / `write_bo`: as the cs tier
//!   (`GEM_CREATE` + `GEM_MMAP` + mmap, `GEM_VA`), sharing its code (the crate's private
//!   `drm` module). `map_va` also signals a timeline point and waits for it before returning
//!   (nothing orders a user queue's doorbell with a page-table update; the cs and kfd paths
//!   are synchronised by the kernel); a failed wait unmaps again.
//! - `submit_ib`: an optional full `ACQUIRE_MEM` (cache write-back + invalidate, what the cs
//!   tier gets from `AMDGPU_IB_FLAG_EMIT_MEM_SYNC`), `INDIRECT_BUFFER`, and an end-of-pipe
//!   `RELEASE_MEM` writing the fence's sequence number to the fence BO. They are copied into
//!   the ring (wrapping at its end) once enough earlier submissions' fences have retired: a
//!   submission's ring dwords are free once its fence has (Mesa bounds its ring by its fence
//!   ring the same way); the CP's read-pointer report, a 32-bit offset wrapped at the ring
//!   size, is never used (see `ring`). The wait is bounded ([`UmqConfig::space_timeout`],
//!   [`Error::Timeout`] naming the oldest unretired fence). Then the 64-bit write pointer, in
//!   dwords, is stored to the wptr BO with release ordering and the same value is written to
//!   the doorbell: a queue the scheduler re-maps reads the wptr BO, a running one the
//!   doorbell, so both must hold it. No ioctl.
//! - `wait_fence`: polls the fence BO (acquire loads; spin, then yield, then short sleeps)
//!   until it reaches the sequence number or the timeout passes ([`Error::Timeout`]). No
//!   ioctl. `USERQ_WAIT` is not used: it does not block the CPU; it hands a *queue* the
//!   fence addresses / values to wait for on the GPU (syncobj and BO fences). A blocking CPU
//!   wait through the kernel would need a `USERQ_SIGNAL` + syncobj per submission, i.e.
//!   syscalls on the submit path, which this tier exists to avoid.
//! - Drop: `USERQ FREE` first (the queue stops reading its ring before its memory goes;
//!   the kernel waits for the queue's last fence), then the caller's BOs in reverse creation
//!   order, then the queue's BOs in reverse creation order (fence, EOP, rptr, wptr, ring,
//!   doorbell), `SYNCOBJ_DESTROY`, then `close`. Errors are ignored; drop never panics.
//!
//! Costs: `submit_ib` = 0 ioctls, `wait_fence` = 0, `alloc_bo` = 1 (+1 `GEM_MMAP` with CPU
//! access), `map_va` = 2 (`GEM_VA` + `SYNCOBJ_TIMELINE_WAIT`), `unmap_va` = 1, `free_bo` = 1
//! (+1 if mapped); open = 3 INFO + 1 SYNCOBJ_CREATE + 6 GEM_CREATE + 5 GEM_MMAP + 5 GEM_VA +
//! 1 SYNCOBJ_TIMELINE_WAIT + 1 USERQ. Every ioctl is counted in [`Counters::ioctls`].

mod dev;
pub mod probe;
mod ring;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pm4rt_core::abi::drm::{
    AMDGPU_GEM_CREATE_NO_CPU_ACCESS, AMDGPU_GEM_CREATE_UNCACHED, AMDGPU_GEM_DOMAIN_DOORBELL,
    AMDGPU_GEM_DOMAIN_GTT, AMDGPU_GEM_DOMAIN_VRAM, AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_MASK,
    AMDGPU_VM_MTYPE_UC,
};
use pm4rt_core::pm4::{Builder, FenceInterrupt};
use pm4rt_core::{
    BoDesc, BoHandle, Counters, Domain, Driver, Error, Fence, GfxTarget, Mapping, Result,
    Submitter, SubmitterInfo, Tier,
};

use crate::bo_access;
use crate::cs::{DEFAULT_RENDER_NODE, PAGE_SIZE};
use crate::drm::bo::{self, Bo, BoSpec};
use crate::drm::dev::Dev;
use crate::va::VaAllocator;
use dev::CreateCompute;

pub use crate::drm::syncobj::{STEP_SYNCOBJ_CREATE, STEP_SYNCOBJ_DESTROY, STEP_VM_WAIT};
pub use dev::{
    STEP_BO_ACCESS, STEP_CLOSE, STEP_GEM_CLOSE, STEP_GEM_CREATE, STEP_GEM_MMAP, STEP_INFO_DEV,
    STEP_INFO_HW_IP, STEP_INFO_UQ_FW_AREAS, STEP_MMAP, STEP_OPEN, STEP_QUEUE_ACCESS,
    STEP_READ_PARAM, STEP_USERQ_CREATE, STEP_USERQ_FREE, STEP_VA_MAP, STEP_VA_UNMAP,
};
pub use probe::{
    EopLayout, ProbeFailure, UmqProbe, MESA_EOP_ALIGNMENT, MESA_EOP_SIZE, USER_QUEUE_PARAM,
};

/// Default ring size: 64 KiB, Mesa's `AMDGPU_USERQ_RING_SIZE` (0x10000).
pub const DEFAULT_RING_BYTES: u64 = 0x10000;
/// Smallest ring the kernel accepts (`queue_size < AMDGPU_GPU_PAGE_SIZE` is `EINVAL`).
pub const MIN_RING_BYTES: u64 = 4096;
/// Default doorbell index inside the doorbell BO, in 8-byte units: Mesa's
/// `AMDGPU_USERQ_DOORBELL_INDEX` (4; "any number will work").
pub const DEFAULT_DOORBELL_INDEX: u32 = 4;
/// Size of the DOORBELL-domain BO (one page, as Mesa allocates).
pub const DOORBELL_BO_SIZE: u64 = 4096;
/// Size of the write- and read-pointer BOs (one page; the kernel requires the wptr BO to be at
/// most one page and validates one page at each VA).
pub const POINTER_BO_SIZE: u64 = 4096;
/// Size of the fence BO.
pub const FENCE_BO_SIZE: u64 = 4096;
/// Dwords one submission occupies in the ring at most (ACQUIRE_MEM 8 + INDIRECT_BUFFER 4 +
/// RELEASE_MEM 8).
pub const MAX_SUBMIT_DWORDS: usize = 20;

/// How to open a [`UmqSubmitter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UmqConfig {
    /// The render node, e.g. [`DEFAULT_RENDER_NODE`].
    pub path: String,
    /// Where the `user_queue` module parameter is read ([`USER_QUEUE_PARAM`]).
    pub user_queue_param: String,
    /// The GPU target, used only when the kernel does not report the GC IP version; when both
    /// are known they must agree.
    pub gfx: Option<GfxTarget>,
    /// Put every caller BO in this domain regardless of [`BoDesc::domain`].
    pub force_domain: Option<Domain>,
    /// Ring size in bytes: a power of two >= [`MIN_RING_BYTES`].
    pub ring_bytes: u64,
    /// Doorbell index inside the doorbell BO (8-byte units; `index * 8 + 8 <= 4096`).
    pub doorbell_index: u32,
    /// Queue priority (`AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_*`, 0..=3; 0 normal-low,
    /// 3 high needs CAP_SYS_NICE).
    pub priority: u32,
    /// Put a full ACQUIRE_MEM (cache write-back + invalidate) before every IB.
    pub mem_sync: bool,
    /// Longest `submit_ib` waits for ring space before failing with [`Error::Timeout`].
    pub space_timeout: Duration,
    /// Longest a `GEM_VA` map waits for its page-table update (`SYNCOBJ_TIMELINE_WAIT`)
    /// before failing with [`Error::Io`] ([`STEP_VM_WAIT`], `ETIME`).
    pub vm_update_timeout: Duration,
    /// Report the device as emulated in [`SubmitterInfo::emulated`].
    pub emulated: bool,
}

impl Default for UmqConfig {
    fn default() -> Self {
        UmqConfig {
            path: DEFAULT_RENDER_NODE.to_string(),
            user_queue_param: USER_QUEUE_PARAM.to_string(),
            gfx: None,
            force_domain: None,
            ring_bytes: DEFAULT_RING_BYTES,
            doorbell_index: DEFAULT_DOORBELL_INDEX,
            priority: 0,
            mem_sync: true,
            space_timeout: Duration::from_secs(2),
            vm_update_timeout: Duration::from_secs(2),
            emulated: false,
        }
    }
}

impl UmqConfig {
    /// The default configuration for the render node at `path`.
    pub fn with_path(path: impl Into<String>) -> Self {
        UmqConfig { path: path.into(), ..UmqConfig::default() }
    }

    fn check(&self) -> Result<()> {
        if self.ring_bytes < MIN_RING_BYTES
            || !self.ring_bytes.is_power_of_two()
            || self.ring_bytes / 4 > u64::from(u32::MAX)
        {
            return Err(Error::InvalidArgument(format!(
                "ring size {:#x} must be a power of two >= {MIN_RING_BYTES:#x}",
                self.ring_bytes
            )));
        }
        if u64::from(self.doorbell_index) * 8 + 8 > DOORBELL_BO_SIZE {
            return Err(Error::InvalidArgument(format!(
                "doorbell index {} does not fit the {DOORBELL_BO_SIZE}-byte doorbell BO",
                self.doorbell_index
            )));
        }
        if self.priority & !AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_MASK != 0 {
            return Err(Error::InvalidArgument(format!(
                "queue priority {} is not in 0..=3",
                self.priority
            )));
        }
        Ok(())
    }
}

/// The render node, the GPU VA allocator and the timeline syncobj of the VM's page-table
/// updates: everything BO creation needs.
struct Node {
    dev: Dev,
    va: VaAllocator,
    /// `vm_timeline_syncobj_out` of every GEM_VA MAP (0 until created).
    vm_sync: u32,
    /// Last timeline point used (points 1, 2, 3, ...).
    vm_point: u64,
}

impl Node {
    /// GEM_CREATE and mmap as `spec` asks, then GEM_VA at a VA aligned to `va_align` unless
    /// it is 0; undoes its own steps on failure. The mapping is not waited for: see
    /// [`Node::wait_vm`].
    fn create(&mut self, spec: BoSpec, va_align: u64) -> Result<Bo> {
        let mut bo = self.dev.create_bo(spec)?;
        if va_align != 0 {
            if let Err(e) = self.map_aligned(&mut bo, va_align) {
                drop(bo.cpu.take());
                let _ = self.dev.gem_close(bo.gem);
                return Err(e);
            }
        }
        Ok(bo)
    }

    /// GEM_VA MAP signalling the next point of the VM timeline; returns the point.
    fn va_map(&mut self, gem: u32, va: u64, size: u64, flags: u32) -> Result<u64> {
        let point = self.vm_point + 1;
        self.dev.va_map_signalling(gem, va, size, flags, self.vm_sync, point)?;
        self.vm_point = point;
        Ok(point)
    }

    /// Wait (bounded) until every page-table update so far is done: a user queue must not
    /// touch a mapping before (Mesa's `amdgpu_userq_init` waits the same way).
    fn wait_vm(&mut self, timeout: Duration) -> Result<()> {
        self.dev.syncobj_wait_point(self.vm_sync, self.vm_point, timeout)
    }

    /// Map `bo` at the lowest free VA aligned to `align`.
    fn map_aligned(&mut self, bo: &mut Bo, align: u64) -> Result<()> {
        let align = align.max(PAGE_SIZE);
        let refuse =
            |r: crate::va::VaRefusal| Error::BadVa { bo: BoHandle(0), va: 0, reason: r.reason() };
        let at = if align == PAGE_SIZE {
            self.va.alloc(bo.size, None).map_err(refuse)?
        } else {
            // Reserve enough to align inside, then keep only the aligned part.
            let span = bo.size.checked_add(align - PAGE_SIZE).ok_or(Error::BadVa {
                bo: BoHandle(0),
                va: 0,
                reason: "BO too large",
            })?;
            let start = self.va.alloc(span, None).map_err(refuse)?;
            self.va.free(start);
            let aligned = start.div_ceil(align) * align;
            self.va.alloc(bo.size, Some(aligned)).map_err(refuse)?
        };
        if let Err(e) = self.va_map(bo.gem, at, bo.size, bo.vm_flags) {
            self.va.free(at);
            return Err(e);
        }
        bo.va = Some(at);
        Ok(())
    }

    /// GEM_VA UNMAP (if mapped), munmap, GEM_CLOSE; every step runs, the first error returns.
    fn release(&mut self, mut bo: Bo) -> Result<()> {
        let mut first = None;
        if let Some(va) = bo.va.take() {
            if let Err(e) = self.dev.va_unmap(bo.gem, va, bo.size, bo.vm_flags) {
                first = Some(e);
            }
            self.va.free(va);
        }
        drop(bo.cpu.take());
        if let Err(e) = self.dev.gem_close(bo.gem) {
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }
}

/// Indices of the queue's own BOs, in creation order.
const Q_DOORBELL: usize = 0;
const Q_RING: usize = 1;
const Q_WPTR: usize = 2;
const Q_RPTR: usize = 3;
const Q_EOP: usize = 4;
const Q_FENCE: usize = 5;

/// The amdgpu user-queue tier. See the [module docs](self).
pub struct UmqSubmitter {
    node: Node,
    config: UmqConfig,
    probe: UmqProbe,
    gfx: GfxTarget,
    device_id: u32,
    queue_id: u32,
    /// The queue's BOs, indexed by the `Q_*` constants.
    qbos: Vec<Bo>,
    ring_dwords: u64,
    /// Write pointer in dwords (monotonic).
    wptr: u64,
    fence_va: u64,
    /// Caller BOs by pm4rt handle (ids increase with creation order).
    bos: BTreeMap<u32, Bo>,
    next_bo: u32,
    /// Mapped caller ranges: start VA -> (end VA, handle).
    by_va: BTreeMap<u64, (u64, u32)>,
    last_seq: u64,
    retired_seq: u64,
    /// Submissions whose ring dwords are not free yet (their fences have not retired).
    in_flight: ring::InFlight,
    submissions: u64,
}

impl std::fmt::Debug for UmqSubmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UmqSubmitter")
            .field("path", &self.config.path)
            .field("queue_id", &self.queue_id)
            .field("gfx", &self.gfx)
            .field("wptr", &self.wptr)
            .field("last_seq", &self.last_seq)
            .field("retired_seq", &self.retired_seq)
            .field("bos", &self.bos.len())
            .finish()
    }
}

fn round_page(size: u64) -> Option<u64> {
    size.checked_add(PAGE_SIZE - 1).map(|s| s / PAGE_SIZE * PAGE_SIZE)
}

impl UmqSubmitter {
    /// Run the capability probe on the render node of `config` (open, 3 INFO queries, close).
    ///
    /// Errors: [`Error::Io`] with [`STEP_OPEN`] when the node cannot be opened; every other
    /// failure is reported inside the returned [`UmqProbe`].
    pub fn probe(driver: Arc<dyn Driver>, config: &UmqConfig) -> Result<UmqProbe> {
        let mut dev = Dev::open(driver, &config.path)?;
        let p = probe::probe(&mut dev, &config.user_queue_param);
        let _ = dev.close();
        Ok(p)
    }

    /// Open the render node of `config`, probe it, and create the compute user queue.
    ///
    /// Errors: [`Error::InvalidArgument`] for a bad [`UmqConfig`]; [`Error::Unsupported`] when
    /// the probe fails (no `USERQ` ioctl is issued then), the VA range is empty or the GPU
    /// target is unknown; [`Error::Io`] naming the failing step ([`STEP_OPEN`],
    /// [`STEP_GEM_CREATE`], [`STEP_GEM_MMAP`], [`STEP_MMAP`], [`STEP_VA_MAP`],
    /// [`STEP_USERQ_CREATE`], ...). Everything acquired before a failure is released.
    pub fn open(driver: Arc<dyn Driver>, config: UmqConfig) -> Result<UmqSubmitter> {
        config.check()?;
        let mut dev = Dev::open(driver, &config.path)?;
        let probe = probe::probe(&mut dev, &config.user_queue_param);
        if let Some(e) = probe.error(&config.path) {
            let _ = dev.close();
            return Err(e);
        }
        let (gfx, va, device_id) = match Self::target(&probe, &config) {
            Ok(t) => t,
            Err(e) => {
                let _ = dev.close();
                return Err(e);
            }
        };
        let vm_sync = match dev.syncobj_create() {
            Ok(h) => h,
            Err(e) => {
                let _ = dev.close();
                return Err(e);
            }
        };
        let mut node = Node { dev, va, vm_sync, vm_point: 0 };
        let mut qbos = Vec::with_capacity(6);
        match Self::create_queue(&mut node, &config, &probe, &mut qbos) {
            Ok(queue_id) => {
                let fence_va = qbos[Q_FENCE].va.unwrap_or(0);
                Ok(UmqSubmitter {
                    node,
                    ring_dwords: config.ring_bytes / 4,
                    config,
                    probe,
                    gfx,
                    device_id,
                    queue_id,
                    qbos,
                    wptr: 0,
                    fence_va,
                    bos: BTreeMap::new(),
                    next_bo: 1,
                    by_va: BTreeMap::new(),
                    last_seq: 0,
                    retired_seq: 0,
                    in_flight: ring::InFlight::default(),
                    submissions: 0,
                })
            }
            Err(e) => {
                while let Some(bo) = qbos.pop() {
                    let _ = node.release(bo);
                }
                let _ = node.dev.syncobj_destroy(node.vm_sync);
                let _ = node.dev.close();
                Err(e)
            }
        }
    }

    fn target(probe: &UmqProbe, config: &UmqConfig) -> Result<(GfxTarget, VaAllocator, u32)> {
        let (Some(hw_ip), Some(dev_info)) = (probe.hw_ip, probe.dev_info) else {
            return Err(Error::Unsupported("probe returned no device information".into()));
        };
        let va = crate::drm::target::va_allocator(&config.path, &dev_info)?;
        let gfx = crate::drm::target::gfx_target(
            &config.path,
            hw_ip.ip_discovery_version,
            config.gfx,
            "",
        )?;
        Ok((gfx, va, dev_info.device_id))
    }

    /// Create the queue's BOs (pushed onto `qbos` as they are made) and the queue.
    fn create_queue(
        node: &mut Node,
        config: &UmqConfig,
        probe: &UmqProbe,
        qbos: &mut Vec<Bo>,
    ) -> Result<u32> {
        let eop = probe.eop_layout();
        let eop_size = round_page(u64::from(eop.size))
            .ok_or_else(|| Error::Unsupported("EOP size overflows".into()))?;
        // Page flags of the CP-read queue buffers: as every mapping (bo::VM_FLAGS).
        let rwx = bo::VM_FLAGS;
        // Ring, wptr and rptr bypass the GPU L2 so the CP and the CPU see each other's stores:
        // Mesa's amdgpu_userq.c creates them RADEON_FLAG_GL2_BYPASS, which amdgpu_create_bo
        // maps with AMDGPU_VM_MTYPE_UC.
        let uc = rwx | AMDGPU_VM_MTYPE_UC;
        let gtt = |size, flags, vm_flags| {
            let spec = BoSpec { size, domains: AMDGPU_GEM_DOMAIN_GTT, flags, cpu: true, vm_flags };
            (spec, PAGE_SIZE)
        };
        let specs = [
            // Q_DOORBELL: CPU-mapped only; the kernel pins it in the doorbell aperture.
            (
                BoSpec {
                    size: DOORBELL_BO_SIZE,
                    domains: AMDGPU_GEM_DOMAIN_DOORBELL,
                    flags: 0,
                    cpu: true,
                    vm_flags: 0,
                },
                0,
            ),
            gtt(config.ring_bytes, 0, uc), // Q_RING
            gtt(POINTER_BO_SIZE, 0, uc),   // Q_WPTR
            gtt(POINTER_BO_SIZE, 0, uc),   // Q_RPTR
            (
                // Q_EOP: GPU only, at the firmware's alignment.
                BoSpec {
                    size: eop_size,
                    domains: AMDGPU_GEM_DOMAIN_VRAM,
                    flags: AMDGPU_GEM_CREATE_NO_CPU_ACCESS,
                    cpu: false,
                    vm_flags: rwx,
                },
                u64::from(eop.alignment),
            ),
            gtt(FENCE_BO_SIZE, AMDGPU_GEM_CREATE_UNCACHED, rwx), // Q_FENCE
        ];
        for (spec, va_align) in specs {
            let bo = node.create(spec, va_align)?;
            qbos.push(bo);
        }
        // Fresh GTT BOs are zeroed by the kernel; write the pointers anyway so a reused page
        // cannot start the queue at garbage.
        for i in [Q_WPTR, Q_RPTR, Q_FENCE] {
            if let Some(m) = &qbos[i].cpu {
                m.store_u64(0, 0).map_err(|e| Error::io(STEP_QUEUE_ACCESS, e.0))?;
            }
        }
        // The queue's buffers must be mapped in the page tables before the CP reads them.
        node.wait_vm(config.vm_update_timeout)?;
        let va = |i: usize| qbos[i].va.unwrap_or(0);
        node.dev.userq_create(CreateCompute {
            doorbell_handle: qbos[Q_DOORBELL].gem,
            doorbell_offset: config.doorbell_index,
            flags: config.priority,
            queue_va: va(Q_RING),
            queue_size: config.ring_bytes,
            rptr_va: va(Q_RPTR),
            wptr_va: va(Q_WPTR),
            eop_va: va(Q_EOP),
        })
    }

    /// The probe's findings (all checks passed for an open submitter).
    pub fn probe_result(&self) -> &UmqProbe {
        &self.probe
    }

    /// The kernel's queue id.
    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// The write pointer in dwords (total dwords ever written to the ring).
    pub fn wptr(&self) -> u64 {
        self.wptr
    }

    /// Ring size in dwords.
    pub fn ring_dwords(&self) -> u64 {
        self.ring_dwords
    }

    /// GPU VAs of the ring, rptr, wptr, EOP and fence BOs (for tests and diagnostics).
    pub fn queue_vas(&self) -> QueueVas {
        let va = |i: usize| self.qbos[i].va.unwrap_or(0);
        QueueVas {
            ring: va(Q_RING),
            rptr: va(Q_RPTR),
            wptr: va(Q_WPTR),
            eop: va(Q_EOP),
            fence: va(Q_FENCE),
        }
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

    fn qmap(&self, i: usize) -> Result<&dyn Mapping> {
        self.qbos[i]
            .cpu
            .as_deref()
            .ok_or_else(|| Error::Unsupported("queue BO without a CPU mapping".into()))
    }

    fn counters(&self) -> Counters {
        Counters {
            ioctls: self.node.dev.ioctls(),
            submissions: self.submissions,
            retired: self.retired_seq,
        }
    }

    fn mapped_containing(&self, va: u64, len: u64) -> bool {
        let Some(end) = va.checked_add(len) else { return false };
        self.by_va.range(..=va).next_back().is_some_and(|(_, &(e, _))| end <= e)
    }

    /// Read the fence BO and retire every submission up to its value (fences retire in
    /// order; a value beyond the last issued is not ours).
    fn poll_fence(&mut self) -> Result<u64> {
        let v = self.qmap(Q_FENCE)?.load_u64(0).map_err(|e| Error::io(STEP_QUEUE_ACCESS, e.0))?;
        self.retired_seq = self.retired_seq.max(v.min(self.last_seq));
        self.in_flight.retire(self.retired_seq);
        Ok(v)
    }

    /// Wait (bounded by [`UmqConfig::space_timeout`]) until `n` dwords fit in the ring: the
    /// oldest submissions' fences must retire (see `ring`).
    fn wait_space(&mut self, n: u64, seq: u64) -> Result<()> {
        let start = Instant::now();
        let mut polls = 0u32;
        loop {
            if self.in_flight.fits(self.wptr, n, self.ring_dwords) {
                return Ok(());
            }
            self.poll_fence()?;
            if self.in_flight.fits(self.wptr, n, self.ring_dwords) {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= self.config.space_timeout {
                let oldest = self.in_flight.oldest().unwrap_or(seq);
                return Err(Error::Timeout { fence: Fence { seq: oldest }, waited });
            }
            backoff(&mut polls);
        }
    }
}

/// GPU VAs of a queue's own buffers, see [`UmqSubmitter::queue_vas`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueVas {
    /// The ring.
    pub ring: u64,
    /// The read pointer (written by the CP).
    pub rptr: u64,
    /// The write pointer.
    pub wptr: u64,
    /// The EOP buffer.
    pub eop: u64,
    /// The fence the RELEASE_MEM of every submission writes.
    pub fence: u64,
}

/// Poll pacing: spin briefly, then yield, then sleep 20 µs per poll.
fn backoff(polls: &mut u32) {
    *polls = polls.saturating_add(1);
    if *polls < 64 {
        std::hint::spin_loop();
    } else if *polls < 256 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(20));
    }
}

impl Submitter for UmqSubmitter {
    fn info(&self) -> SubmitterInfo {
        SubmitterInfo {
            tier: Tier::Umq,
            gfx: self.gfx,
            va_range: self.node.va.range(),
            emulated: self.config.emulated,
            device: format!(
                "{} (amdgpu user queue {}, PCI device {:#06x})",
                self.config.path, self.queue_id, self.device_id
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
        let new = self.node.create(bo::spec_for(desc, size, domain), 0)?;
        self.bos.insert(id, new);
        self.next_bo = next;
        Ok(BoHandle(id))
    }

    /// Frees the BO even when a step fails on the way; the error reports the first failing
    /// step.
    fn free_bo(&mut self, bo: BoHandle) -> Result<()> {
        let b = self.bos.remove(&bo.0).ok_or(Error::UnknownBo(bo))?;
        if let Some(va) = b.va {
            self.by_va.remove(&va);
        }
        self.node.release(b)
    }

    fn map_va(&mut self, bo: BoHandle, va: Option<u64>) -> Result<u64> {
        let b = self.bo(bo)?;
        if b.va.is_some() {
            return Err(Error::BadVa { bo, va: va.unwrap_or(0), reason: "BO is already mapped" });
        }
        let (gem, size, flags) = (b.gem, b.size, b.vm_flags);
        let at = self.node.va.alloc(size, va).map_err(|r| Error::BadVa {
            bo,
            va: va.unwrap_or(0),
            reason: r.reason(),
        })?;
        if let Err(e) = self.node.va_map(gem, at, size, flags) {
            self.node.va.free(at);
            return Err(e);
        }
        // Nothing orders the queue's doorbell with the page-table update: wait for it here,
        // before the caller can hand the VA to the GPU.
        if let Err(e) = self.node.wait_vm(self.config.vm_update_timeout) {
            let _ = self.node.dev.va_unmap(gem, at, size, flags);
            self.node.va.free(at);
            return Err(e);
        }
        self.by_va.insert(at, (at + size, bo.0));
        if let Some(b) = self.bos.get_mut(&bo.0) {
            b.va = Some(at);
        }
        Ok(at)
    }

    fn unmap_va(&mut self, bo: BoHandle) -> Result<()> {
        let b = self.bo(bo)?;
        let Some(va) = b.va else {
            return Err(Error::BadVa { bo, va: 0, reason: "not mapped" });
        };
        let (gem, size, flags) = (b.gem, b.size, b.vm_flags);
        self.node.dev.va_unmap(gem, va, size, flags)?;
        self.node.va.free(va);
        self.by_va.remove(&va);
        if let Some(b) = self.bos.get_mut(&bo.0) {
            b.va = None;
        }
        Ok(())
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
        if dwords == 0 {
            return Err(Error::InvalidArgument("empty IB (0 dwords)".into()));
        }
        pm4rt_core::check_ib_size(dwords)?;
        if !ib_va.is_multiple_of(4) {
            return Err(Error::InvalidArgument(format!("IB VA {ib_va:#x} is not 4-byte aligned")));
        }
        let bytes = u64::from(dwords) * 4;
        if !self.mapped_containing(ib_va, bytes) {
            return Err(Error::InvalidArgument(format!(
                "IB {ib_va:#x}..{:#x} is not inside one mapped BO",
                ib_va + bytes
            )));
        }
        let seq = self.last_seq + 1;
        let mut buf = [0u32; MAX_SUBMIT_DWORDS];
        let n = {
            let mut b = Builder::new(&mut buf, self.gfx);
            let enc = |e: pm4rt_core::pm4::EncodeError| {
                Error::InvalidArgument(format!("cannot encode the submission: {e}"))
            };
            if self.config.mem_sync {
                b.acquire_mem_full().map_err(enc)?;
            }
            b.indirect_buffer(ib_va, dwords, false).map_err(enc)?;
            b.release_mem_fence(self.fence_va, seq, FenceInterrupt::None).map_err(enc)?;
            b.len()
        };
        let packets = &buf[..n];
        self.wait_space(n as u64, seq)?;
        let io = |e: pm4rt_core::Errno| Error::io(STEP_QUEUE_ACCESS, e.0);
        crate::ring::write_wrapped(self.qmap(Q_RING)?, self.wptr, self.ring_dwords, packets)
            .map_err(io)?;
        let wptr = self.wptr + n as u64;
        crate::ring::publish(
            self.qmap(Q_WPTR)?,
            self.qmap(Q_DOORBELL)?,
            self.config.doorbell_index as usize * 8,
            wptr,
        )
        .map_err(io)?;
        self.wptr = wptr;
        self.last_seq = seq;
        self.in_flight.push(seq, wptr);
        self.submissions += 1;
        Ok(Fence { seq })
    }

    fn wait_fence(&mut self, fence: Fence, timeout: Duration) -> Result<()> {
        if fence.seq == 0 || fence.seq > self.last_seq {
            return Err(Error::UnknownFence(fence));
        }
        if fence.seq <= self.retired_seq {
            return Ok(());
        }
        let start = Instant::now();
        let mut polls = 0u32;
        loop {
            if self.poll_fence()? >= fence.seq {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Timeout { fence, waited });
            }
            backoff(&mut polls);
        }
    }
}

impl Drop for UmqSubmitter {
    fn drop(&mut self) {
        let _ = self.node.dev.userq_free(self.queue_id);
        let bos = std::mem::take(&mut self.bos);
        for (_, bo) in bos.into_iter().rev() {
            let _ = self.node.release(bo);
        }
        self.by_va.clear();
        while let Some(bo) = self.qbos.pop() {
            let _ = self.node.release(bo);
        }
        let _ = self.node.dev.syncobj_destroy(self.node.vm_sync);
        let _ = self.node.dev.close();
    }
}
