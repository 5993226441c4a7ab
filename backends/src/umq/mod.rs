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
//!   are synchronised by the kernel; see `vm`); a failed wait unmaps again.
//! - `submit_ib`: an optional full `ACQUIRE_MEM` (cache write-back + invalidate, what the cs
//!   tier gets from `AMDGPU_IB_FLAG_EMIT_MEM_SYNC`), `INDIRECT_BUFFER`, and an end-of-pipe
//!   `RELEASE_MEM` writing the fence's sequence number to the fence BO. They are copied into
//!   the ring (wrapping at its end) once enough earlier submissions' fences have retired: a
//!   submission's ring dwords are free once its fence has (Mesa bounds its ring by its fence
//!   ring the same way); the CP's read-pointer report, a 32-bit offset wrapped at the ring
//!   size, is never used (see `crate::common::ring_space`). The wait is bounded ([`UmqConfig::space_timeout`],
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
//!
//! ## Files
//!
//! [`config`] (how to open), `open` (bring-up and the `Resources` released in reverse order),
//! [`probe`] (the capability checks), `vm` (GEM_VA with VM-timeline waits), `ioctls` (the
//! `USERQ` ioctl and the step names), and this file (the [`Submitter`] implementation over the
//! shared ring queue of `crate::common::ring_queue`).

pub mod config;
mod ioctls;
mod open;
pub mod probe;
mod vm;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pm4rt_core::pm4::{Builder, FenceInterrupt};
use pm4rt_core::{
    BoDesc, BoHandle, Counters, Driver, Error, Fence, GfxTarget, Mapping, Result, Submitter,
    SubmitterInfo, Tier,
};

use crate::common::ib;
use crate::common::ring_queue::{QueueMemory, RingQueue, RingSpace};
use crate::common::ring_space::InFlight;
use crate::drm::bo::{self, Bo};
use open::{Resources, Q_DOORBELL, Q_EOP, Q_FENCE, Q_RING, Q_RPTR, Q_WPTR};

pub use crate::drm::syncobj::{STEP_SYNCOBJ_CREATE, STEP_SYNCOBJ_DESTROY, STEP_VM_WAIT};
pub use config::{
    UmqConfig, DEFAULT_DOORBELL_INDEX, DEFAULT_RING_BYTES, DOORBELL_BO_SIZE, FENCE_BO_SIZE,
    MAX_SUBMIT_DWORDS, MIN_RING_BYTES, POINTER_BO_SIZE,
};
pub use ioctls::{
    STEP_BO_ACCESS, STEP_CLOSE, STEP_GEM_CLOSE, STEP_GEM_CREATE, STEP_GEM_MMAP, STEP_INFO_DEV,
    STEP_INFO_HW_IP, STEP_INFO_UQ_FW_AREAS, STEP_MMAP, STEP_OPEN, STEP_QUEUE_ACCESS,
    STEP_READ_PARAM, STEP_USERQ_CREATE, STEP_USERQ_FREE, STEP_VA_MAP, STEP_VA_UNMAP,
};
pub use probe::{
    EopLayout, ProbeFailure, UmqProbe, MESA_EOP_ALIGNMENT, MESA_EOP_SIZE, USER_QUEUE_PARAM,
};

/// The amdgpu user-queue tier. See the [module docs](self).
pub struct UmqSubmitter {
    res: Resources,
    config: UmqConfig,
    probe: UmqProbe,
    gfx: GfxTarget,
    device_id: u32,
    queue_id: u32,
    fence_va: u64,
    queue: RingQueue,
}

impl std::fmt::Debug for UmqSubmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UmqSubmitter")
            .field("path", &self.config.path)
            .field("queue_id", &self.queue_id)
            .field("gfx", &self.gfx)
            .field("queue", &self.queue)
            .field("bos", &self.res.bos.len())
            .finish()
    }
}

/// The queue memory lent to the ring queue: the CPU mappings of the queue's own BOs.
fn queue_memory<'a>(queue_bos: &'a [Bo], config: &UmqConfig) -> Result<QueueMemory<'a>> {
    let map = |i: usize| -> Result<&'a dyn Mapping> {
        queue_bos[i]
            .cpu
            .as_deref()
            .ok_or_else(|| Error::Unsupported("queue BO without a CPU mapping".into()))
    };
    Ok(QueueMemory {
        ring: map(Q_RING)?,
        wptr: map(Q_WPTR)?,
        rptr: map(Q_RPTR)?,
        fence: map(Q_FENCE)?,
        doorbell: map(Q_DOORBELL)?,
        doorbell_offset: config.doorbell_index as usize * 8,
    })
}

impl UmqSubmitter {
    /// Run the capability probe on the render node of `config` (open, 3 INFO queries, close).
    ///
    /// Errors: [`Error::Io`] with [`STEP_OPEN`] when the node cannot be opened; every other
    /// failure is reported inside the returned [`UmqProbe`].
    pub fn probe(driver: Arc<dyn Driver>, config: &UmqConfig) -> Result<UmqProbe> {
        open::probe_only(driver, config)
    }

    /// Open the render node of `config`, probe it, and create the compute user queue.
    ///
    /// Errors: [`Error::InvalidArgument`] for a bad [`UmqConfig`]; [`Error::Unsupported`] when
    /// the probe fails (no `USERQ` ioctl is issued then), the VA range is empty or the GPU
    /// target is unknown; [`Error::Io`] naming the failing step ([`STEP_OPEN`],
    /// [`STEP_GEM_CREATE`], [`STEP_GEM_MMAP`], [`STEP_MMAP`], [`STEP_VA_MAP`],
    /// [`STEP_USERQ_CREATE`], ...). Everything acquired before a failure is released.
    pub fn open(driver: Arc<dyn Driver>, config: UmqConfig) -> Result<UmqSubmitter> {
        let o = open::open(driver, &config)?;
        let queue = RingQueue::new(
            config.ring_bytes / 4,
            RingSpace::RetiredFences(InFlight::default()),
            config.space_timeout,
            STEP_QUEUE_ACCESS,
        );
        Ok(UmqSubmitter {
            queue_id: o.res.queue_id.unwrap_or(0),
            fence_va: o.res.queue_bos[Q_FENCE].va.unwrap_or(0),
            res: o.res,
            config,
            probe: o.probe,
            gfx: o.gfx,
            device_id: o.device_id,
            queue,
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
        self.queue.wptr()
    }

    /// Ring size in dwords.
    pub fn ring_dwords(&self) -> u64 {
        self.queue.ring_dwords()
    }

    /// GPU VAs of the ring, rptr, wptr, EOP and fence BOs (for tests and diagnostics).
    pub fn queue_vas(&self) -> QueueVas {
        let va = |i: usize| self.res.queue_bos[i].va.unwrap_or(0);
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
        self.res.bos.get(bo).map(|b| b.gem)
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

impl Submitter for UmqSubmitter {
    fn info(&self) -> SubmitterInfo {
        SubmitterInfo {
            tier: Tier::Umq,
            gfx: self.gfx,
            va_range: self.res.vm.va.range(),
            emulated: self.config.emulated,
            device: format!(
                "{} (amdgpu user queue {}, PCI device {:#06x})",
                self.config.path, self.queue_id, self.device_id
            ),
            counters: Counters {
                ioctls: self.res.vm.dev.ioctls(),
                submissions: self.queue.last_seq(),
                retired: self.queue.retired_seq(),
            },
        }
    }

    fn alloc_bo(&mut self, desc: &BoDesc) -> Result<BoHandle> {
        let size = bo::rounded_size(desc)?;
        let domain = self.config.force_domain.unwrap_or(desc.domain);
        let vm = &mut self.res.vm;
        self.res.bos.insert_with(|| vm.create(bo::spec_for(desc, size, domain), 0))
    }

    /// Frees the BO even when a step fails on the way; the error reports the first failing
    /// step.
    fn free_bo(&mut self, bo: BoHandle) -> Result<()> {
        let b = self.res.bos.remove(bo)?;
        self.res.vm.release(b)
    }

    fn map_va(&mut self, bo: BoHandle, va: Option<u64>) -> Result<u64> {
        let b = self.res.bos.get(bo)?;
        let at = self.res.vm.map_waited(bo, b, va, self.config.vm_update_timeout)?;
        self.res.bos.update(bo, |b| b.va = Some(at))?;
        Ok(at)
    }

    fn unmap_va(&mut self, bo: BoHandle) -> Result<()> {
        let b = self.res.bos.get(bo)?;
        self.res.vm.dev.unmap_bo(&mut self.res.vm.va, bo, b)?;
        self.res.bos.update(bo, |b| b.va = None)
    }

    fn write_bo(&mut self, bo: BoHandle, offset: u64, data: &[u8]) -> Result<()> {
        self.res.bos.write(bo, offset, data, STEP_BO_ACCESS)
    }

    fn read_bo(&self, bo: BoHandle, offset: u64, out: &mut [u8]) -> Result<()> {
        self.res.bos.read(bo, offset, out, STEP_BO_ACCESS)
    }

    fn submit_ib(&mut self, ib_va: u64, dwords: u32) -> Result<Fence> {
        ib::check(&self.res.bos, ib_va, dwords)?;
        let mut buf = [0u32; MAX_SUBMIT_DWORDS];
        let mut b = Builder::new(&mut buf, self.gfx);
        if self.config.mem_sync {
            b.acquire_mem_full().map_err(encode_error)?;
        }
        b.indirect_buffer(ib_va, dwords, false).map_err(encode_error)?;
        b.release_mem_fence(self.fence_va, self.queue.next_seq(), FenceInterrupt::None)
            .map_err(encode_error)?;
        let n = b.len();
        let mem = queue_memory(&self.res.queue_bos, &self.config)?;
        self.queue.push(mem, &buf[..n])
    }

    fn wait_fence(&mut self, fence: Fence, timeout: Duration) -> Result<()> {
        self.queue.check_issued(fence)?;
        let start = Instant::now();
        let mem = queue_memory(&self.res.queue_bos, &self.config)?;
        if self.queue.poll_until(mem, fence.seq, start, timeout)? {
            return Ok(());
        }
        Err(Error::Timeout { fence, waited: start.elapsed() })
    }
}

/// A submission's packets failed to encode (cannot happen for a checked IB; stays typed).
fn encode_error(e: pm4rt_core::pm4::EncodeError) -> Error {
    Error::InvalidArgument(format!("cannot encode the submission: {e}"))
}
