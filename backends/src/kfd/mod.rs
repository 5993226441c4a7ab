//! The KFD tier: a [`Submitter`] over a `/dev/kfd` PM4 compute queue whose doorbell really
//! retires work.
//!
//! [`KfdSubmitter`] drives one PM4 (non-AQL) compute queue of one GPU through any [`Driver`]
//! (the Linux syscalls, the emulated device, or a test mock). Facts: the kernel's
//! `kfd_ioctl.h`, `kfd_chardev.c`, `kfd_queue.c`, `kfd_events.c`, libhsakmt and tinygrad's
//! `ops_amd.py`.
//!
//! ## Life
//!
//! [`KfdSubmitter::open`], in this order (each failure is [`Error::Io`] naming its step, after
//! releasing everything acquired before it):
//!
//! 1. open `/dev/kfd`; `GET_VERSION` (major must be >= 1);
//! 2. the topology node (by render minor or `gpu_id`, see [`topology`]) and the queue sizes the
//!    kernel will check (see [`cwsr`]);
//! 3. open the render node; `ACQUIRE_VM`; on KFD 1.14 or newer `RUNTIME_ENABLE` with
//!    `mode_mask` 0 and `r_debug` 0, as tinygrad's `KFDIface.__init__` does right after
//!    `ACQUIRE_VM` (the ioctl arrived with KFD 1.13, "Add debugger API"; mode 0 takes
//!    `kfd_chardev.c: kfd_ioctl_runtime_enable`'s `runtime_disable` path);
//!    `GET_PROCESS_APERTURES_NEW` twice (count, array);
//! 4. reserve a CPU VA window inside the GPU's GPUVM aperture ([`Driver::reserve_va`]): every BO
//!    lives at the same CPU and GPU address inside it;
//! 5. the queue BOs, each `ALLOC_MEMORY_OF_GPU` at its VA, a fixed mmap of the render node at
//!    the returned offset when the CPU needs it, and `MAP_MEMORY_TO_GPU`: the signal event page
//!    (32 KiB GTT), the fence (4 KiB GTT), the ring ([`KfdConfig::ring_bytes`], GTT), the write
//!    and read pointers (one 4 KiB GTT page each: the kernel wants each to start a one-page
//!    mapping), the EOP buffer (topology size, VRAM) and the CWSR area (exactly
//!    `ALIGN((cwsr + debug) * num_xcc, 4096)`, VRAM);
//! 6. `CREATE_EVENT` SIGNAL (auto-reset; the event page's ALLOC handle goes in
//!    `event_page_offset` on this first call, as libhsakmt does on dGPUs), then HW_EXCEPTION and
//!    MEMORY;
//! 7. `CREATE_QUEUE` (type COMPUTE = PM4) and an 8 KiB mmap of `/dev/kfd` at
//!    `doorbell_offset & !0x1FFF`; the doorbell is at `doorbell_offset & 0x1FFF` in it.
//!
//! ## Submit (no system call)
//!
//! Each `submit_ib` appends 28 dwords to the ring: ACQUIRE_MEM (write back and invalidate the
//! caches, as the cs tier's `EMIT_MEM_SYNC`), INDIRECT_BUFFER to the caller's IB, RELEASE_MEM
//! writing the 64-bit fence sequence number to the fence BO (no interrupt), then RELEASE_MEM
//! writing the event id to the signal event's slot with INT_SEL 2 and INT_CTXID = event id.
//! The slot write is what makes the interrupt count: `kfd_signal_event_interrupt` only wakes
//! an event whose slot is no longer `UNSIGNALED_EVENT_SLOT` (-1), so an interrupt raised by
//! the fence write alone would be dropped. Packets may wrap around the ring end (the CP and the simulator
//! handle a packet split by the wrap). The writer never overruns the read pointer: when the
//! ring lacks space it polls the read pointer for at most [`KfdConfig::space_timeout`]. Then a
//! release-ordered 64-bit store of the new write pointer (dwords, growing) to the wptr page and
//! the same value to the doorbell.
//!
//! ## Wait
//!
//! `wait_fence` reads the fence BO first (no system call when it already retired), spins for
//! at most [`KfdConfig::poll`], then blocks in `WAIT_EVENTS` (any of signal, memory
//! exception, hardware exception) for the remaining time, re-checking the fence after each
//! wake. A signalled MEMORY event is [`Error::Fault`] with the faulting VA, a HW_EXCEPTION
//! event [`Error::DeviceLost`]; both are sticky. A fence that does not retire in time is
//! [`Error::Timeout`]; [`KfdSubmitter::smoke`] turns that into the "queue created but the
//! fence did not retire" diagnosis measured on an R9700 with Linux 6.17.
//!
//! ## BOs and VAs
//!
//! KFD binds a BO's GPU VA when it is allocated, so `alloc_bo` picks the VA (first fit in the
//! window) and `map_va` only accepts that VA (or `None`) and issues `MAP_MEMORY_TO_GPU`.
//!
//! ## Drop
//!
//! munmap the doorbell, `DESTROY_QUEUE`, `DESTROY_EVENT` (reverse), every BO in reverse
//! creation order (`UNMAP_MEMORY_FROM_GPU` if mapped, munmap, `FREE_MEMORY_OF_GPU`), release
//! the VA window, close the render node and `/dev/kfd`. Errors are ignored; drop never panics.
//!
//! ## Files
//!
//! [`config`] (how to open), `open` (bring-up and the `Resources` released in reverse order),
//! `bo` (the BO record and allocation flags), `events` (what an exception event means),
//! `ioctls` (typed KFD ioctls and the step names), [`topology`] and [`cwsr`] (what the kernel
//! checks the queue against), and this file (the [`Submitter`] implementation over the shared
//! ring queue of `crate::common::ring_queue`).

mod bo;
pub mod config;
pub mod cwsr;
mod events;
mod ioctls;
mod open;
pub mod topology;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pm4rt_core::abi::kfd::{
    CreateEventArgs, GetVersionArgs, KfdEventData, ProcessDeviceApertures, KFD_IOC_WAIT_RESULT_FAIL,
};
use pm4rt_core::pm4::{sel, Builder, FenceInterrupt};
use pm4rt_core::{
    BoDesc, BoHandle, Counters, Driver, Errno, Error, Fence, GfxTarget, Mapping, Result, Submitter,
    SubmitterInfo, Tier,
};

pub use config::{
    KfdConfig, DEFAULT_KFD_PATH, DEFAULT_RING_BYTES, MIN_KFD_MAJOR, MIN_RING_BYTES,
    RUNTIME_ENABLE_SINCE, SUBMIT_DWORDS,
};
pub use ioctls::{
    STEP_ACQUIRE_VM, STEP_ALLOC, STEP_APERTURES, STEP_CPU_ACCESS, STEP_CREATE_EVENT,
    STEP_CREATE_QUEUE, STEP_DESTROY_EVENT, STEP_DESTROY_QUEUE, STEP_FREE, STEP_GET_VERSION,
    STEP_MAP, STEP_MMAP, STEP_MMAP_DOORBELL, STEP_OPEN_KFD, STEP_OPEN_RENDER, STEP_RESERVE_VA,
    STEP_RUNTIME_ENABLE, STEP_UNMAP, STEP_WAIT_EVENTS,
};
pub use pm4rt_core::{DEFAULT_RENDER_NODE, PAGE_SIZE};
pub use topology::{NodeSelector, TopologyNode, DEFAULT_TOPOLOGY_ROOT, STEP_TOPOLOGY};

use crate::common::health::QueueHealth;
use crate::common::ib;
use crate::common::ring_queue::{QueueMemory, RingQueue, RingSpace};
use crate::common::va::VaAllocator;
use bo::Bo;
use open::{Resources, Q_FENCE, Q_RING, Q_RPTR, Q_WPTR};

/// The KFD PM4-queue tier. See the [module docs](self).
pub struct KfdSubmitter {
    res: Resources,
    config: KfdConfig,
    node: TopologyNode,
    gfx: GfxTarget,
    version: GetVersionArgs,
    aperture: ProcessDeviceApertures,
    /// The allocator over the reserved VA window.
    va: VaAllocator,
    render_path: String,
    queue_id: u32,
    doorbell_in_page: usize,
    signal: CreateEventArgs,
    hw_event: u32,
    mem_event: u32,
    slot_va: u64,
    queue: RingQueue,
    health: QueueHealth,
}

impl std::fmt::Debug for KfdSubmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KfdSubmitter")
            .field("gpu_id", &self.node.gpu_id)
            .field("gfx", &self.gfx)
            .field("queue_id", &self.queue_id)
            .field("queue", &self.queue)
            .field("health", &self.health)
            .finish()
    }
}

/// The queue memory lent to the ring queue: the CPU mappings of the queue's own BOs and the
/// doorbell page.
fn queue_memory<'a>(
    queue_bos: &'a [Bo],
    doorbell: Option<&'a dyn Mapping>,
    doorbell_offset: usize,
) -> Result<QueueMemory<'a>> {
    let missing = || Error::io(STEP_CPU_ACCESS, Errno::EFAULT);
    let map =
        |i: usize| -> Result<&'a dyn Mapping> { queue_bos[i].cpu.as_deref().ok_or_else(missing) };
    Ok(QueueMemory {
        ring: map(Q_RING)?,
        wptr: map(Q_WPTR)?,
        rptr: map(Q_RPTR)?,
        fence: map(Q_FENCE)?,
        doorbell: doorbell.ok_or_else(missing)?,
        doorbell_offset,
    })
}

impl KfdSubmitter {
    /// Open `/dev/kfd` and the render node through `driver` and create the PM4 queue.
    ///
    /// Errors: [`Error::Io`] naming the failing step (the `STEP_*` constants);
    /// [`Error::Unsupported`] for a KFD major below [`MIN_KFD_MAJOR`], no matching topology
    /// node, an unsupported GPU target, no aperture for the GPU or a VA window outside it;
    /// [`Error::InvalidArgument`] for a bad [`KfdConfig`]. Everything acquired before the
    /// failure is released.
    pub fn open(driver: Arc<dyn Driver>, config: KfdConfig) -> Result<KfdSubmitter> {
        let o = open::open(driver, &config)?;
        let queue = RingQueue::new(
            config.ring_bytes / 4,
            RingSpace::CpReadPointer,
            config.space_timeout,
            STEP_CPU_ACCESS,
        );
        Ok(KfdSubmitter {
            res: o.res,
            config,
            node: o.node,
            gfx: o.gfx,
            version: o.version,
            aperture: o.aperture,
            va: o.window,
            render_path: o.render_path,
            queue_id: o.queue_id,
            doorbell_in_page: o.doorbell_in_page,
            signal: o.signal,
            hw_event: o.hw_event,
            mem_event: o.mem_event,
            slot_va: o.slot_va,
            queue,
            health: QueueHealth::default(),
        })
    }

    /// The topology node in use (gpu_id, target, the queue sizes passed to the kernel).
    pub fn node(&self) -> &TopologyNode {
        &self.node
    }

    /// What `GET_VERSION` reported.
    pub fn kfd_version(&self) -> GetVersionArgs {
        self.version
    }

    /// The GPU's process apertures (GPUVM base / limit).
    pub fn aperture(&self) -> ProcessDeviceApertures {
        self.aperture
    }

    /// The KFD queue id.
    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// The signal event id (also the INT_CTXID of every fence interrupt).
    pub fn signal_event_id(&self) -> u32 {
        self.signal.event_id
    }

    /// The write pointer (dwords written to the ring so far).
    pub fn wptr(&self) -> u64 {
        self.queue.wptr()
    }

    /// The ring size in dwords.
    pub fn ring_dwords(&self) -> u64 {
        self.queue.ring_dwords()
    }

    fn memory(&self) -> Result<QueueMemory<'_>> {
        queue_memory(&self.res.queue_bos, self.res.doorbell.as_deref(), self.doorbell_in_page)
    }

    /// The read pointer as the CP last reported it.
    ///
    /// Errors: [`Error::Io`] ([`STEP_CPU_ACCESS`]).
    pub fn rptr(&self) -> Result<u64> {
        self.queue.rptr(self.memory()?)
    }

    /// The last fence value the GPU wrote.
    ///
    /// Errors: [`Error::Io`] ([`STEP_CPU_ACCESS`]).
    pub fn fence_value(&self) -> Result<u64> {
        self.queue.fence_value(self.memory()?)
    }

    /// The retire smoke of tier selection: submit `ib_va` (`dwords` dwords, e.g. a NOP IB) and
    /// wait at most `timeout`. Returns the round-trip time.
    ///
    /// Errors: as [`Submitter::submit_ib`] / [`Submitter::wait_fence`], except that a timeout
    /// becomes [`Error::Unsupported`] saying "KFD queue N created but the fence did not retire
    /// within T" with the ring state (the symptom measured on an R9700 with Linux 6.17).
    pub fn smoke(&mut self, ib_va: u64, dwords: u32, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let fence = self.submit_ib(ib_va, dwords)?;
        match self.wait_fence(fence, timeout) {
            Ok(()) => Ok(start.elapsed()),
            Err(Error::Timeout { waited, .. }) => Err(Error::Unsupported(format!(
                "KFD queue {} created but the fence did not retire within {waited:?} \
                 (wptr {}, rptr {}, fence value {}, expected {})",
                self.queue_id,
                self.queue.wptr(),
                self.rptr().map_or_else(|e| e.to_string(), |v| v.to_string()),
                self.fence_value().map_or_else(|e| e.to_string(), |v| v.to_string()),
                fence.seq
            ))),
            Err(e) => Err(e),
        }
    }
}

impl Submitter for KfdSubmitter {
    fn info(&self) -> SubmitterInfo {
        SubmitterInfo {
            tier: Tier::Kfd,
            gfx: self.gfx,
            va_range: self.va.range(),
            emulated: self.config.emulated,
            device: format!(
                "{} gpu_id {:#x} node {} ({}), queue {}",
                self.config.kfd_path,
                self.node.gpu_id,
                self.node.node_id,
                self.render_path,
                self.queue_id
            ),
            counters: Counters {
                ioctls: self.res.kfd.ioctls(),
                submissions: self.queue.last_seq(),
                retired: self.queue.retired_seq(),
            },
        }
    }

    /// KFD binds the VA at allocation: the tier picks it (first fit in the window); `map_va`
    /// only validates it on the GPU.
    fn alloc_bo(&mut self, desc: &BoDesc) -> Result<BoHandle> {
        if desc.size == 0 {
            return Err(Error::InvalidArgument("BO size 0".into()));
        }
        let size = desc
            .size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or_else(|| Error::InvalidArgument(format!("BO size {:#x}", desc.size)))?;
        let flags = bo::flags_for(desc, self.config.force_domain.unwrap_or(desc.domain));
        // The table is taken out while `make_bo` borrows the rest of the resources.
        let mut table = std::mem::take(&mut self.res.user_bos);
        let mut reserved = None;
        let handle = table.insert_with(|| {
            let va = self.va.alloc(size, None).map_err(|_| Error::io(STEP_ALLOC, Errno::ENOMEM))?;
            reserved = Some(va);
            self.res.make_bo(va, size, flags, desc.cpu_access, false)
        });
        self.res.user_bos = table;
        if let (Err(_), Some(va)) = (&handle, reserved) {
            self.va.free(va);
        }
        handle
    }

    fn free_bo(&mut self, handle: BoHandle) -> Result<()> {
        let b = self.res.user_bos.remove(handle)?;
        let va = b.va;
        let r = bo::release(&mut self.res.kfd, self.res.gpu_id, b);
        self.va.free(va);
        r
    }

    fn map_va(&mut self, handle: BoHandle, va: Option<u64>) -> Result<u64> {
        let b = self.res.user_bos.get(handle)?;
        let (kfd_handle, at, mapped) = (b.handle, b.va, b.gpu_mapped);
        if va.is_some_and(|v| v != at) {
            return Err(Error::BadVa {
                bo: handle,
                va: va.unwrap_or(0),
                reason: "KFD binds a BO at the VA it was allocated at (pass None or that VA)",
            });
        }
        if mapped {
            return Err(Error::BadVa { bo: handle, va: at, reason: "already mapped" });
        }
        self.res.kfd.map(kfd_handle, self.res.gpu_id)?;
        self.res.user_bos.update(handle, |b| b.gpu_mapped = true)?;
        Ok(at)
    }

    fn unmap_va(&mut self, handle: BoHandle) -> Result<()> {
        let b = self.res.user_bos.get(handle)?;
        let (kfd_handle, at, mapped) = (b.handle, b.va, b.gpu_mapped);
        if !mapped {
            return Err(Error::BadVa { bo: handle, va: at, reason: "not mapped" });
        }
        self.res.kfd.unmap(kfd_handle, self.res.gpu_id)?;
        self.res.user_bos.update(handle, |b| b.gpu_mapped = false)
    }

    fn write_bo(&mut self, bo: BoHandle, offset: u64, data: &[u8]) -> Result<()> {
        self.res.user_bos.write(bo, offset, data, STEP_CPU_ACCESS)
    }

    fn read_bo(&self, bo: BoHandle, offset: u64, out: &mut [u8]) -> Result<()> {
        self.res.user_bos.read(bo, offset, out, STEP_CPU_ACCESS)
    }

    fn submit_ib(&mut self, ib_va: u64, dwords: u32) -> Result<Fence> {
        ib::check(&self.res.user_bos, ib_va, dwords)?;
        self.health.check_submit()?;
        let mut buf = [0u32; SUBMIT_DWORDS];
        let mut b = Builder::new(&mut buf, self.gfx);
        let fence_va = self.res.queue_bos[Q_FENCE].va;
        let mut event = Builder::fence_packet(
            self.gfx,
            self.slot_va,
            u64::from(self.signal.event_id),
            FenceInterrupt::AfterWrite { ctxid: self.signal.event_id },
        );
        event.data_sel = sel::DATA_32;
        let encoded = b
            .acquire_mem_full()
            .and_then(|_| b.indirect_buffer(ib_va, dwords, false))
            .and_then(|_| {
                b.release_mem_fence(fence_va, self.queue.next_seq(), FenceInterrupt::None)
            })
            .and_then(|_| b.release_mem(event));
        encoded.map_err(|e| Error::InvalidArgument(format!("IB {ib_va:#x} x {dwords}: {e}")))?;
        let len = b.len();
        let mem =
            queue_memory(&self.res.queue_bos, self.res.doorbell.as_deref(), self.doorbell_in_page)?;
        self.queue.push(mem, &buf[..len])
    }

    fn wait_fence(&mut self, fence: Fence, timeout: Duration) -> Result<()> {
        self.queue.check_issued(fence)?;
        let mem =
            queue_memory(&self.res.queue_bos, self.res.doorbell.as_deref(), self.doorbell_in_page)?;
        if self.queue.is_retired(mem, fence.seq)? {
            return Ok(());
        }
        self.health.check_wait()?;
        let start = Instant::now();
        if self.queue.poll_until(mem, fence.seq, start, self.config.poll.min(timeout))? {
            return Ok(());
        }
        let events = [
            KfdEventData::for_event(self.signal.event_id),
            KfdEventData::for_event(self.mem_event),
            KfdEventData::for_event(self.hw_event),
        ];
        loop {
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Timeout { fence, waited });
            }
            let ms = events::timeout_ms(timeout - waited);
            let (result, data) = self.res.kfd.wait_events(&events, ms)?;
            if let Some(e) = events::exception(&data, self.mem_event, self.hw_event) {
                let e = self.health.fail(e);
                // Work before the fault may have retired.
                if self.queue.is_retired(mem, fence.seq)? {
                    return Ok(());
                }
                return Err(e);
            }
            if self.queue.is_retired(mem, fence.seq)? {
                return Ok(());
            }
            if result == KFD_IOC_WAIT_RESULT_FAIL {
                return Err(Error::io(STEP_WAIT_EVENTS, Errno::EIO));
            }
        }
    }
}
