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
//!    (32 KiB GTT), the fence (4 KiB GTT), the ring ([`KfdConfig::ring_size`], GTT), the write
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
//! ring lacks space it polls the read pointer for at most [`KfdConfig::ring_wait`]. Then a
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

pub mod cwsr;
mod dev;
pub mod ring;
pub mod topology;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pm4rt_core::abi::kfd::{
    doorbell_mmap_offset, doorbell_offset_in_page, CreateEventArgs, CreateQueueArgs,
    GetVersionArgs, KfdEventData, ProcessDeviceApertures, RuntimeEnableArgs, KFD_DOORBELL_MAP_SIZE,
    KFD_EVENT_PAGE_SIZE, KFD_IOC_ALLOC_MEM_FLAGS_COHERENT, KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE,
    KFD_IOC_ALLOC_MEM_FLAGS_GTT, KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE,
    KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC, KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED, KFD_IOC_ALLOC_MEM_FLAGS_VRAM,
    KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE, KFD_IOC_EVENT_HW_EXCEPTION, KFD_IOC_EVENT_MEMORY,
    KFD_IOC_EVENT_SIGNAL, KFD_IOC_QUEUE_TYPE_COMPUTE, KFD_IOC_WAIT_RESULT_FAIL,
    KFD_MAX_QUEUE_PERCENTAGE, KFD_MAX_QUEUE_PRIORITY, KFD_SIGNAL_EVENT_LIMIT,
};
use pm4rt_core::pm4::{sel, Builder};
use pm4rt_core::{
    BoDesc, BoHandle, Counters, Domain, Driver, Errno, Error, Fd, Fence, GfxTarget, MapAt, Mapping,
    Result, Submitter, SubmitterInfo, Tier,
};

pub use dev::{
    STEP_ACQUIRE_VM, STEP_ALLOC, STEP_APERTURES, STEP_CPU_ACCESS, STEP_CREATE_EVENT,
    STEP_CREATE_QUEUE, STEP_DESTROY_EVENT, STEP_DESTROY_QUEUE, STEP_FREE, STEP_GET_VERSION,
    STEP_MAP, STEP_MMAP, STEP_MMAP_DOORBELL, STEP_OPEN_KFD, STEP_OPEN_RENDER, STEP_RESERVE_VA,
    STEP_RUNTIME_ENABLE, STEP_UNMAP, STEP_WAIT_EVENTS,
};
pub use topology::{NodeSelector, TopologyNode, DEFAULT_TOPOLOGY_ROOT, STEP_TOPOLOGY};

use crate::va::VaAllocator;
use dev::Kfd;

/// The KFD device node.
pub const DEFAULT_KFD_PATH: &str = "/dev/kfd";
/// The render node used when neither a path nor a `gpu_id` is configured.
pub const DEFAULT_RENDER_NODE: &str = "/dev/dri/renderD128";
/// BO sizes and VAs are multiples of this.
pub const PAGE_SIZE: u64 = 4096;
/// Default ring size in bytes (a power of two).
pub const DEFAULT_RING_SIZE: u32 = 64 * 1024;
/// Smallest ring KFD accepts without rounding (`KFD_MIN_QUEUE_RING_SIZE`, bytes).
pub const MIN_RING_SIZE: u32 = 1024;
/// Ring dwords one submission takes: ACQUIRE_MEM 8 + INDIRECT_BUFFER 4 + 2 x RELEASE_MEM 8.
pub const SUBMIT_DWORDS: usize = 28;
/// Minimum KFD major version.
pub const MIN_KFD_MAJOR: u32 = 1;
/// The first KFD version (major, minor) at which `open` calls `RUNTIME_ENABLE`: tinygrad's
/// `KFDIface.__init__` calls it when `kfd_ver >= (1, 14)`.
pub const RUNTIME_ENABLE_SINCE: (u32, u32) = (1, 14);

/// How to open a [`KfdSubmitter`].
#[derive(Debug, Clone)]
pub struct KfdConfig {
    /// The KFD node ([`DEFAULT_KFD_PATH`]).
    pub kfd_path: String,
    /// The render node. `None`: the node of [`KfdConfig::gpu_id`] in the topology, else
    /// [`DEFAULT_RENDER_NODE`].
    pub render_path: Option<String>,
    /// Choose the GPU by KFD `gpu_id` instead of by the render node's minor.
    pub gpu_id: Option<u32>,
    /// The sysfs topology root ([`DEFAULT_TOPOLOGY_ROOT`]; tests point it at a fake tree).
    pub topology_root: String,
    /// Ring size in bytes: a power of two, at least [`MIN_RING_SIZE`] and room for one
    /// submission.
    pub ring_size: u32,
    /// Bytes of address space reserved for the queue and every BO (page multiple).
    pub va_window: u64,
    /// Put every user BO in this domain regardless of [`BoDesc::domain`].
    pub force_domain: Option<Domain>,
    /// How long `wait_fence` spins on the fence before blocking in `WAIT_EVENTS`.
    pub poll: Duration,
    /// How long `submit_ib` waits for the read pointer when the ring is full.
    pub ring_wait: Duration,
    /// `queue_priority` (0..=15).
    pub queue_priority: u32,
    /// `queue_percentage` (0..=100).
    pub queue_percentage: u32,
    /// Report the device as emulated in [`SubmitterInfo::emulated`].
    pub emulated: bool,
}

impl Default for KfdConfig {
    fn default() -> Self {
        KfdConfig {
            kfd_path: DEFAULT_KFD_PATH.to_string(),
            render_path: None,
            gpu_id: None,
            topology_root: DEFAULT_TOPOLOGY_ROOT.to_string(),
            ring_size: DEFAULT_RING_SIZE,
            va_window: 16 << 30,
            force_domain: None,
            poll: Duration::from_micros(50),
            ring_wait: Duration::from_secs(2),
            // libhsakmt's HSA_QUEUE_PRIORITY_NORMAL maps to the middle of 0..=15.
            queue_priority: 7,
            queue_percentage: KFD_MAX_QUEUE_PERCENTAGE,
            emulated: false,
        }
    }
}

/// One KFD allocation.
#[derive(Debug)]
struct Bo {
    handle: u64,
    va: u64,
    size: u64,
    cpu: Option<Box<dyn Mapping>>,
    gpu_mapped: bool,
}

/// Every kernel object held, released in reverse by `Drop` (so a failing `open` leaks nothing).
struct Resources {
    driver: Arc<dyn Driver>,
    kfd: Kfd,
    render: Option<Fd>,
    gpu_id: u32,
    window: Option<(u64, usize)>,
    /// Queue BOs in creation order (see the `Q_*` indices).
    queue_bos: Vec<Bo>,
    /// Event ids in creation order.
    events: Vec<u32>,
    queue_id: Option<u32>,
    doorbell: Option<Box<dyn Mapping>>,
    /// User BOs by pm4rt handle (ids grow with creation order).
    user_bos: BTreeMap<u32, Bo>,
}

impl Resources {
    fn kfd(&mut self) -> &mut Kfd {
        &mut self.kfd
    }

    fn release_bo(kfd: &mut Kfd, gpu_id: u32, bo: Bo) -> Result<()> {
        let mut first = Ok(());
        if bo.gpu_mapped {
            first = kfd.unmap(bo.handle, gpu_id);
        }
        drop(bo.cpu);
        let freed = kfd.free(bo.handle);
        first.and(freed)
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        drop(self.doorbell.take());
        let gpu_id = self.gpu_id;
        let kfd = &mut self.kfd;
        if let Some(q) = self.queue_id.take() {
            let _ = kfd.destroy_queue(q);
        }
        for ev in std::mem::take(&mut self.events).into_iter().rev() {
            let _ = kfd.destroy_event(ev);
        }
        for (_, bo) in std::mem::take(&mut self.user_bos).into_iter().rev() {
            let _ = Resources::release_bo(kfd, gpu_id, bo);
        }
        for bo in std::mem::take(&mut self.queue_bos).into_iter().rev() {
            let _ = Resources::release_bo(kfd, gpu_id, bo);
        }
        if let Some((addr, len)) = self.window.take() {
            let _ = self.driver.release_va(addr, len);
        }
        if let Some(fd) = self.render.take() {
            let _ = self.driver.close(fd);
        }
        let _ = self.driver.close(self.kfd.fd());
    }
}

const Q_EVENT_PAGE: usize = 0;
const Q_FENCE: usize = 1;
const Q_RING: usize = 2;
const Q_WPTR: usize = 3;
const Q_RPTR: usize = 4;
const Q_EOP: usize = 5;
const Q_CWSR: usize = 6;

/// What every allocation asks for, as tinygrad's `KFDIface.alloc` (runtime/ops_amd.py) does
/// for all of its buffers: writable and executable GPU pages (`amdgpu_amdkfd_gpuvm.c:
/// get_pte_flags` makes KFD pages readable always, writable / executable only on request), and
/// no substitution of the domain.
const ALWAYS: u32 = KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE
    | KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE
    | KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE;
const GTT_UC: u32 = KFD_IOC_ALLOC_MEM_FLAGS_GTT
    | ALWAYS
    | KFD_IOC_ALLOC_MEM_FLAGS_COHERENT
    | KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED;
const VRAM_PRIVATE: u32 = KFD_IOC_ALLOC_MEM_FLAGS_VRAM | ALWAYS;

/// The KFD PM4-queue tier. See the [module docs](self).
pub struct KfdSubmitter {
    res: Resources,
    config: KfdConfig,
    node: TopologyNode,
    gfx: GfxTarget,
    version: GetVersionArgs,
    aperture: ProcessDeviceApertures,
    window: VaAllocator,
    render_path: String,
    queue_id: u32,
    doorbell_in_page: usize,
    ring_dwords: u64,
    signal: CreateEventArgs,
    hw_event: u32,
    mem_event: u32,
    slot_va: u64,
    wptr: u64,
    next_bo: u32,
    last_issued: u64,
    retired_upto: u64,
    lost: Option<Error>,
}

impl std::fmt::Debug for KfdSubmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KfdSubmitter")
            .field("gpu_id", &self.node.gpu_id)
            .field("gfx", &self.gfx)
            .field("queue_id", &self.queue_id)
            .field("wptr", &self.wptr)
            .field("last_issued", &self.last_issued)
            .field("retired_upto", &self.retired_upto)
            .field("lost", &self.lost)
            .finish()
    }
}

fn mmap_err(step: &'static str) -> impl Fn(Errno) -> Error {
    move |e| Error::io(step, e.0)
}

/// Allocate, CPU-map (when `cpu`) and GPU-map a BO of `size` at `va`.
fn make_bo(
    res: &mut Resources,
    va: u64,
    size: u64,
    flags: u32,
    cpu: bool,
    gpu_map: bool,
) -> Result<Bo> {
    let gpu_id = res.gpu_id;
    let (handle, offset) = res.kfd().alloc(va, size, gpu_id, flags)?;
    let mut bo = Bo { handle, va, size, cpu: None, gpu_mapped: false };
    let render = res.render.unwrap_or(Fd(-1));
    let len = usize::try_from(size).map_err(|_| Error::io(STEP_MMAP, Errno::ENOMEM.0));
    let r = len.and_then(|len| {
        if cpu {
            bo.cpu = Some(
                res.driver
                    .mmap(render, offset, len, MapAt::Fixed(va))
                    .map_err(mmap_err(STEP_MMAP))?,
            );
        }
        if gpu_map {
            res.kfd().map(handle, gpu_id)?;
            bo.gpu_mapped = true;
        }
        Ok(())
    });
    match r {
        Ok(()) => Ok(bo),
        Err(e) => {
            let _ = Resources::release_bo(res.kfd(), gpu_id, bo);
            Err(e)
        }
    }
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
        let ring_size = config.ring_size;
        if !ring_size.is_power_of_two()
            || ring_size < MIN_RING_SIZE
            || (ring_size as usize / 4) <= SUBMIT_DWORDS
        {
            return Err(Error::InvalidArgument(format!(
                "ring_size {ring_size} must be a power of two >= {MIN_RING_SIZE} bytes"
            )));
        }
        if config.queue_priority > KFD_MAX_QUEUE_PRIORITY
            || config.queue_percentage > KFD_MAX_QUEUE_PERCENTAGE
        {
            return Err(Error::InvalidArgument(format!(
                "queue_priority {} (max {KFD_MAX_QUEUE_PRIORITY}) / queue_percentage {} (max \
                 {KFD_MAX_QUEUE_PERCENTAGE})",
                config.queue_priority, config.queue_percentage
            )));
        }
        let kfd_fd = driver.open(&config.kfd_path).map_err(|e| Error::io(STEP_OPEN_KFD, e.0))?;
        let mut res = Resources {
            driver: Arc::clone(&driver),
            kfd: Kfd::new(Arc::clone(&driver), kfd_fd),
            render: None,
            gpu_id: 0,
            window: None,
            queue_bos: Vec::new(),
            events: Vec::new(),
            queue_id: None,
            doorbell: None,
            user_bos: BTreeMap::new(),
        };
        let version = res.kfd().get_version()?;
        if version.major_version < MIN_KFD_MAJOR {
            return Err(Error::Unsupported(format!(
                "KFD version {}.{} is older than {MIN_KFD_MAJOR}.x",
                version.major_version, version.minor_version
            )));
        }
        let sel = match (config.gpu_id, &config.render_path) {
            (Some(g), _) => NodeSelector::GpuId(g),
            (None, path) => {
                let path = path.as_deref().unwrap_or(DEFAULT_RENDER_NODE);
                NodeSelector::RenderMinor(topology::render_minor_of(path).ok_or_else(|| {
                    Error::InvalidArgument(format!("{path} is not a /dev/dri/renderD<N> node"))
                })?)
            }
        };
        let node = topology::find_node(driver.as_ref(), &config.topology_root, sel)?;
        let gfx = node.gfx.ok_or_else(|| {
            Error::Unsupported(format!(
                "KFD node {} (gpu_id {:#x}) has gfx_target_version {}, not a supported target \
                 (gfx1100, gfx1201)",
                node.node_id, node.gpu_id, node.gfx_target_version
            ))
        })?;
        let render_path = config
            .render_path
            .clone()
            .unwrap_or_else(|| format!("/dev/dri/renderD{}", node.drm_render_minor));
        res.gpu_id = node.gpu_id;
        res.render = Some(driver.open(&render_path).map_err(|e| Error::io(STEP_OPEN_RENDER, e.0))?);
        let render = res.render.unwrap_or(Fd(-1));
        res.kfd().acquire_vm(render, node.gpu_id)?;
        if (version.major_version, version.minor_version) >= RUNTIME_ENABLE_SINCE {
            res.kfd().runtime_enable(RuntimeEnableArgs::default())?;
        }
        let aperture =
            res.kfd().apertures()?.into_iter().find(|a| a.gpu_id == node.gpu_id).ok_or_else(
                || {
                    Error::Unsupported(format!(
                        "GET_PROCESS_APERTURES_NEW has no aperture for gpu_id {:#x}",
                        node.gpu_id
                    ))
                },
            )?;
        let window_len = config
            .va_window
            .checked_next_multiple_of(PAGE_SIZE)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| l > 0)
            .ok_or_else(|| Error::InvalidArgument(format!("va_window {}", config.va_window)))?;
        let base = driver
            .reserve_va(window_len, PAGE_SIZE as usize)
            .map_err(|e| Error::io(STEP_RESERVE_VA, e.0))?;
        res.window = Some((base, window_len));
        let end = base + window_len as u64;
        if base < aperture.gpuvm_base || end - 1 > aperture.gpuvm_limit {
            return Err(Error::Unsupported(format!(
                "reserved VA window {base:#x}..{end:#x} is outside the GPUVM aperture \
                 {:#x}..={:#x}",
                aperture.gpuvm_base, aperture.gpuvm_limit
            )));
        }
        let mut window = VaAllocator::new(base..end, PAGE_SIZE);
        let sizes = node.sizes;
        let ring_bytes = u64::from(ring_size);
        let plan: [(u64, u32, bool); 7] = [
            (KFD_EVENT_PAGE_SIZE as u64, GTT_UC, false),
            (PAGE_SIZE, GTT_UC, true),
            // A ring below one page still takes a whole page (kfd_queue_buffer_get compares
            // page counts, so a sub-page ring skips the size check).
            (ring_bytes.max(PAGE_SIZE), GTT_UC, true),
            (PAGE_SIZE, GTT_UC, true),
            (PAGE_SIZE, GTT_UC, true),
            (sizes.eop_size, VRAM_PRIVATE, false),
            (sizes.cwsr_bo_size, VRAM_PRIVATE, false),
        ];
        for (size, flags, cpu) in plan {
            let va = window.alloc(size, None).ok().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "va_window of {window_len:#x} bytes cannot hold the queue buffers"
                ))
            })?;
            let bo = make_bo(&mut res, va, size, flags, cpu, true)?;
            res.queue_bos.push(bo);
        }
        // Events: the first CREATE_EVENT hands KFD the event page (dGPU).
        let signal = res.kfd.create_event(CreateEventArgs {
            event_page_offset: res.queue_bos[Q_EVENT_PAGE].handle,
            event_type: KFD_IOC_EVENT_SIGNAL,
            auto_reset: 1,
            ..Default::default()
        })?;
        res.events.push(signal.event_id);
        let hw = res.kfd().create_event(CreateEventArgs {
            event_type: KFD_IOC_EVENT_HW_EXCEPTION,
            ..Default::default()
        })?;
        res.events.push(hw.event_id);
        let mem = res.kfd().create_event(CreateEventArgs {
            event_type: KFD_IOC_EVENT_MEMORY,
            ..Default::default()
        })?;
        res.events.push(mem.event_id);
        if signal.event_slot_index >= KFD_SIGNAL_EVENT_LIMIT {
            return Err(Error::Unsupported(format!(
                "signal event slot {} is outside the {KFD_SIGNAL_EVENT_LIMIT}-slot event page",
                signal.event_slot_index
            )));
        }
        let slot_va = res.queue_bos[Q_EVENT_PAGE].va + u64::from(signal.event_slot_index) * 8;
        let q = res.kfd.create_queue(CreateQueueArgs {
            ring_base_address: res.queue_bos[Q_RING].va,
            write_pointer_address: res.queue_bos[Q_WPTR].va,
            read_pointer_address: res.queue_bos[Q_RPTR].va,
            ring_size,
            gpu_id: node.gpu_id,
            queue_type: KFD_IOC_QUEUE_TYPE_COMPUTE,
            queue_percentage: config.queue_percentage,
            queue_priority: config.queue_priority,
            eop_buffer_address: res.queue_bos[Q_EOP].va,
            eop_buffer_size: sizes.eop_size,
            ctx_save_restore_address: res.queue_bos[Q_CWSR].va,
            ctx_save_restore_size: u32::try_from(sizes.cwsr_size)
                .map_err(|_| Error::Unsupported(format!("cwsr_size {:#x}", sizes.cwsr_size)))?,
            ctl_stack_size: u32::try_from(sizes.ctl_stack_size).map_err(|_| {
                Error::Unsupported(format!("ctl_stack_size {:#x}", sizes.ctl_stack_size))
            })?,
            ..Default::default()
        })?;
        res.queue_id = Some(q.queue_id);
        res.doorbell = Some(
            driver
                .mmap(
                    kfd_fd,
                    doorbell_mmap_offset(q.doorbell_offset),
                    KFD_DOORBELL_MAP_SIZE,
                    MapAt::Anywhere,
                )
                .map_err(mmap_err(STEP_MMAP_DOORBELL))?,
        );
        Ok(KfdSubmitter {
            res,
            config,
            gfx,
            version,
            aperture,
            window,
            render_path,
            queue_id: q.queue_id,
            doorbell_in_page: doorbell_offset_in_page(q.doorbell_offset),
            ring_dwords: ring_bytes / 4,
            signal,
            hw_event: hw.event_id,
            mem_event: mem.event_id,
            slot_va,
            wptr: 0,
            next_bo: 1,
            last_issued: 0,
            retired_upto: 0,
            lost: None,
            node,
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
        self.wptr
    }

    /// The ring size in dwords.
    pub fn ring_dwords(&self) -> u64 {
        self.ring_dwords
    }

    /// The read pointer as the CP last reported it.
    ///
    /// Errors: [`Error::Io`] ([`STEP_CPU_ACCESS`]).
    pub fn rptr(&self) -> Result<u64> {
        self.load(Q_RPTR)
    }

    /// The last fence value the GPU wrote.
    ///
    /// Errors: [`Error::Io`] ([`STEP_CPU_ACCESS`]).
    pub fn fence_value(&self) -> Result<u64> {
        self.load(Q_FENCE)
    }

    fn load(&self, idx: usize) -> Result<u64> {
        let m = self.res.queue_bos[idx]
            .cpu
            .as_ref()
            .ok_or(Error::io(STEP_CPU_ACCESS, Errno::EFAULT.0))?;
        m.load_u64(0).map_err(|e| Error::io(STEP_CPU_ACCESS, e.0))
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
                self.wptr,
                self.rptr().map_or_else(|e| e.to_string(), |v| v.to_string()),
                self.fence_value().map_or_else(|e| e.to_string(), |v| v.to_string()),
                fence.seq
            ))),
            Err(e) => Err(e),
        }
    }

    fn user_bo(&self, bo: BoHandle) -> Result<&Bo> {
        self.res.user_bos.get(&bo.0).ok_or(Error::UnknownBo(bo))
    }

    fn flags_for(&self, desc: &BoDesc) -> u32 {
        let domain = self.config.force_domain.unwrap_or(desc.domain);
        let mut flags = ALWAYS;
        flags |= match domain {
            Domain::Vram if desc.cpu_access => {
                KFD_IOC_ALLOC_MEM_FLAGS_VRAM | KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC
            }
            Domain::Vram => KFD_IOC_ALLOC_MEM_FLAGS_VRAM,
            Domain::Gtt => KFD_IOC_ALLOC_MEM_FLAGS_GTT,
        };
        if desc.uncached {
            flags |= KFD_IOC_ALLOC_MEM_FLAGS_COHERENT | KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED;
        }
        flags
    }

    fn mapped_containing(&self, va: u64, bytes: u64) -> bool {
        let Some(end) = va.checked_add(bytes) else { return false };
        self.res.user_bos.values().any(|b| b.gpu_mapped && b.va <= va && end <= b.va + b.size)
    }

    /// Refresh `retired_upto` from the fence BO; true when `seq` has retired.
    fn check_fence(&mut self, seq: u64) -> Result<bool> {
        let v = self.fence_value()?.min(self.last_issued);
        if v > self.retired_upto {
            self.retired_upto = v;
        }
        Ok(self.retired_upto >= seq)
    }

    /// Write `packet` to the ring at the write pointer, waiting (bounded) for space.
    fn ring_write(&mut self, packet: &[u32]) -> Result<()> {
        let n = self.ring_dwords;
        let len = packet.len() as u64;
        let start = Instant::now();
        loop {
            let rptr = self.rptr()?;
            if ring::free(self.wptr, rptr, n) >= len {
                break;
            }
            let waited = start.elapsed();
            if waited >= self.config.ring_wait {
                return Err(Error::Timeout { fence: Fence { seq: self.retired_upto + 1 }, waited });
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        let ring = self.res.queue_bos[Q_RING]
            .cpu
            .as_deref()
            .ok_or(Error::io(STEP_CPU_ACCESS, Errno::EFAULT.0))?;
        crate::ring::write_wrapped(ring, self.wptr, n, packet)
            .map_err(|e| Error::io(STEP_CPU_ACCESS, e.0))
    }

    /// Publish the write pointer: wptr page, then doorbell (both release-ordered 64-bit).
    fn ring_doorbell(&mut self) -> Result<()> {
        let w = self.wptr;
        let wptr_map = self.res.queue_bos[Q_WPTR]
            .cpu
            .as_deref()
            .ok_or(Error::io(STEP_CPU_ACCESS, Errno::EFAULT.0))?;
        let db = self.res.doorbell.as_deref().ok_or(Error::io(STEP_CPU_ACCESS, Errno::EFAULT.0))?;
        crate::ring::publish(wptr_map, db, self.doorbell_in_page, w)
            .map_err(|e| Error::io(STEP_CPU_ACCESS, e.0))
    }

    /// Turn signalled exception events into the sticky error.
    fn check_exceptions(&mut self, data: &[KfdEventData]) -> Option<Error> {
        for d in data {
            if d.event_id == self.mem_event {
                let m = d.memory_exception();
                if m.gpu_id != 0 {
                    return Some(Error::Fault { va: m.va });
                }
            } else if d.event_id == self.hw_event {
                let h = d.hw_exception();
                if h.gpu_id != 0 {
                    return Some(Error::DeviceLost {
                        reason: format!(
                            "KFD hardware exception on gpu_id {:#x}: reset type {}, cause {}, \
                             memory lost {}",
                            h.gpu_id, h.reset_type, h.reset_cause, h.memory_lost
                        ),
                    });
                }
            }
        }
        None
    }
}

impl Submitter for KfdSubmitter {
    fn info(&self) -> SubmitterInfo {
        SubmitterInfo {
            tier: Tier::Kfd,
            gfx: self.gfx,
            va_range: self.window.range(),
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
                submissions: self.last_issued,
                retired: self.retired_upto,
            },
        }
    }

    fn alloc_bo(&mut self, desc: &BoDesc) -> Result<BoHandle> {
        if desc.size == 0 {
            return Err(Error::InvalidArgument("BO size 0".into()));
        }
        let size = desc
            .size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or_else(|| Error::InvalidArgument(format!("BO size {:#x}", desc.size)))?;
        let id = self.next_bo;
        let next = id
            .checked_add(1)
            .ok_or_else(|| Error::Unsupported("BO handle space exhausted".into()))?;
        let flags = self.flags_for(desc);
        let va =
            self.window.alloc(size, None).map_err(|_| Error::io(STEP_ALLOC, Errno::ENOMEM.0))?;
        match make_bo(&mut self.res, va, size, flags, desc.cpu_access, false) {
            Ok(bo) => {
                self.next_bo = next;
                self.res.user_bos.insert(id, bo);
                Ok(BoHandle(id))
            }
            Err(e) => {
                self.window.free(va);
                Err(e)
            }
        }
    }

    fn free_bo(&mut self, bo: BoHandle) -> Result<()> {
        let b = self.res.user_bos.remove(&bo.0).ok_or(Error::UnknownBo(bo))?;
        let va = b.va;
        let gpu_id = self.res.gpu_id;
        let r = Resources::release_bo(self.res.kfd(), gpu_id, b);
        self.window.free(va);
        r
    }

    fn map_va(&mut self, bo: BoHandle, va: Option<u64>) -> Result<u64> {
        let b = self.user_bo(bo)?;
        let (handle, at, mapped) = (b.handle, b.va, b.gpu_mapped);
        if let Some(v) = va {
            if v != at {
                return Err(Error::BadVa {
                    bo,
                    va: v,
                    reason: "KFD binds a BO at the VA it was allocated at (pass None or that VA)",
                });
            }
        }
        if mapped {
            return Err(Error::BadVa { bo, va: at, reason: "already mapped" });
        }
        let gpu_id = self.res.gpu_id;
        self.res.kfd().map(handle, gpu_id)?;
        if let Some(b) = self.res.user_bos.get_mut(&bo.0) {
            b.gpu_mapped = true;
        }
        Ok(at)
    }

    fn unmap_va(&mut self, bo: BoHandle) -> Result<()> {
        let b = self.user_bo(bo)?;
        let (handle, at, mapped) = (b.handle, b.va, b.gpu_mapped);
        if !mapped {
            return Err(Error::BadVa { bo, va: at, reason: "not mapped" });
        }
        let gpu_id = self.res.gpu_id;
        self.res.kfd().unmap(handle, gpu_id)?;
        if let Some(b) = self.res.user_bos.get_mut(&bo.0) {
            b.gpu_mapped = false;
        }
        Ok(())
    }

    fn write_bo(&mut self, bo: BoHandle, offset: u64, data: &[u8]) -> Result<()> {
        let b = self.user_bo(bo)?;
        crate::bo_access::write(bo, b.cpu.as_deref(), b.size, offset, data, STEP_CPU_ACCESS)
    }

    fn read_bo(&self, bo: BoHandle, offset: u64, out: &mut [u8]) -> Result<()> {
        let b = self.user_bo(bo)?;
        crate::bo_access::read(bo, b.cpu.as_deref(), b.size, offset, out, STEP_CPU_ACCESS)
    }

    fn submit_ib(&mut self, ib_va: u64, dwords: u32) -> Result<Fence> {
        if dwords == 0 || !ib_va.is_multiple_of(4) {
            return Err(Error::InvalidArgument(format!(
                "IB at {ib_va:#x} of {dwords} dwords (needs > 0 dwords, 4-byte alignment)"
            )));
        }
        pm4rt_core::check_ib_size(dwords)?;
        if let Some(e) = &self.lost {
            return Err(match e {
                Error::DeviceLost { .. } => e.clone(),
                other => Error::DeviceLost { reason: format!("the queue is halted: {other}") },
            });
        }
        if !self.mapped_containing(ib_va, u64::from(dwords) * 4) {
            return Err(Error::InvalidArgument(format!(
                "IB {ib_va:#x}..{:#x} is not inside one GPU-mapped BO",
                ib_va + u64::from(dwords) * 4
            )));
        }
        let seq = self.last_issued + 1;
        let mut buf = [0u32; SUBMIT_DWORDS];
        let mut b = Builder::new(&mut buf, self.gfx);
        let fence_va = self.res.queue_bos[Q_FENCE].va;
        let mut event = Builder::fence_packet(
            self.gfx,
            self.slot_va,
            u64::from(self.signal.event_id),
            pm4rt_core::pm4::FenceInterrupt::AfterWrite { ctxid: self.signal.event_id },
        );
        event.data_sel = sel::DATA_32;
        let encoded = b
            .acquire_mem_full()
            .and_then(|_| b.indirect_buffer(ib_va, dwords, false))
            .and_then(|_| b.release_mem_fence(fence_va, seq, pm4rt_core::pm4::FenceInterrupt::None))
            .and_then(|_| b.release_mem(event));
        encoded.map_err(|e| Error::InvalidArgument(format!("IB {ib_va:#x} x {dwords}: {e}")))?;
        let len = b.len();
        self.ring_write(&buf[..len])?;
        self.wptr += len as u64;
        self.ring_doorbell()?;
        self.last_issued = seq;
        Ok(Fence { seq })
    }

    fn wait_fence(&mut self, fence: Fence, timeout: Duration) -> Result<()> {
        if fence.seq == 0 || fence.seq > self.last_issued {
            return Err(Error::UnknownFence(fence));
        }
        if fence.seq <= self.retired_upto || self.check_fence(fence.seq)? {
            return Ok(());
        }
        if let Some(e) = &self.lost {
            return Err(e.clone());
        }
        let start = Instant::now();
        let spin = self.config.poll.min(timeout);
        while start.elapsed() < spin {
            if self.check_fence(fence.seq)? {
                return Ok(());
            }
            std::hint::spin_loop();
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
            let left = timeout - waited;
            let ms = u32::try_from(left.as_micros().div_ceil(1000))
                .unwrap_or(u32::MAX - 1)
                .clamp(1, u32::MAX - 1);
            let (result, data) = self.res.kfd.wait_events(&events, ms)?;
            if let Some(e) = self.check_exceptions(&data) {
                self.lost = Some(e.clone());
                // Work before the fault may have retired.
                if self.check_fence(fence.seq)? {
                    return Ok(());
                }
                return Err(e);
            }
            if self.check_fence(fence.seq)? {
                return Ok(());
            }
            if result == KFD_IOC_WAIT_RESULT_FAIL {
                return Err(Error::io(STEP_WAIT_EVENTS, Errno::EIO.0));
            }
        }
    }
}
