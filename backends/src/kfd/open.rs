//! Bring-up and release of a KFD PM4 queue (the steps listed in the [module docs](super)),
//! and [`Resources`], which releases whatever was acquired in reverse order, after a failed
//! step of `open` and on drop alike.

use std::sync::Arc;

use pm4rt_core::abi::kfd::{
    doorbell_mmap_offset, doorbell_offset_in_page, CreateEventArgs, CreateQueueArgs,
    GetVersionArgs, ProcessDeviceApertures, RuntimeEnableArgs, KFD_DOORBELL_MAP_SIZE,
    KFD_EVENT_PAGE_SIZE, KFD_IOC_EVENT_HW_EXCEPTION, KFD_IOC_EVENT_MEMORY, KFD_IOC_EVENT_SIGNAL,
    KFD_IOC_QUEUE_TYPE_COMPUTE, KFD_SIGNAL_EVENT_LIMIT,
};
use pm4rt_core::{
    Driver, Errno, Error, Fd, GfxTarget, MapAt, Mapping, Result, DEFAULT_RENDER_NODE, PAGE_SIZE,
};

use super::bo::{self, Bo, GTT_UC, VRAM_PRIVATE};
use super::config::{KfdConfig, MIN_KFD_MAJOR, RUNTIME_ENABLE_SINCE};
use super::ioctls::{
    Kfd, STEP_MMAP, STEP_MMAP_DOORBELL, STEP_OPEN_KFD, STEP_OPEN_RENDER, STEP_RESERVE_VA,
};
use super::topology::{self, NodeSelector, TopologyNode};
use crate::common::bo_table::BoTable;
use crate::common::va::VaAllocator;

/// Indices of the queue's own BOs, in creation order.
pub(super) const Q_EVENT_PAGE: usize = 0;
pub(super) const Q_FENCE: usize = 1;
pub(super) const Q_RING: usize = 2;
pub(super) const Q_WPTR: usize = 3;
pub(super) const Q_RPTR: usize = 4;
pub(super) const Q_EOP: usize = 5;
pub(super) const Q_CWSR: usize = 6;

/// Every kernel object held, released in reverse by `Drop`: munmap the doorbell,
/// `DESTROY_QUEUE`, `DESTROY_EVENT` (newest first), the caller's BOs newest first, the queue's
/// BOs newest first (each `UNMAP_MEMORY_FROM_GPU` if mapped, munmap, `FREE_MEMORY_OF_GPU`),
/// release the VA window, close the render node, and last `/dev/kfd` (closed by its
/// descriptor). Errors are ignored; nothing here panics.
pub(super) struct Resources {
    pub(super) driver: Arc<dyn Driver>,
    pub(super) kfd: Kfd,
    pub(super) render: Option<Fd>,
    pub(super) gpu_id: u32,
    pub(super) window: Option<(u64, usize)>,
    /// Queue BOs in creation order (see the `Q_*` indices).
    pub(super) queue_bos: Vec<Bo>,
    /// Event ids in creation order.
    pub(super) events: Vec<u32>,
    pub(super) queue_id: Option<u32>,
    pub(super) doorbell: Option<Box<dyn Mapping>>,
    /// The caller's BOs.
    pub(super) user_bos: BoTable<Bo>,
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
        for b in self.user_bos.drain_newest_first() {
            let _ = bo::release(kfd, gpu_id, b);
        }
        for b in std::mem::take(&mut self.queue_bos).into_iter().rev() {
            let _ = bo::release(kfd, gpu_id, b);
        }
        if let Some((addr, len)) = self.window.take() {
            let _ = self.driver.release_va(addr, len);
        }
        if let Some(fd) = self.render.take() {
            let _ = self.driver.close(fd);
        }
    }
}

impl Resources {
    /// Allocate at `va`, CPU-map (when `cpu`, fixed at `va`) and GPU-map (when `gpu_map`) a
    /// BO of `size` bytes; undoes its own steps on failure.
    ///
    /// Errors: [`Error::Io`] naming the failing step.
    pub(super) fn make_bo(
        &mut self,
        va: u64,
        size: u64,
        flags: u32,
        cpu: bool,
        gpu_map: bool,
    ) -> Result<Bo> {
        let gpu_id = self.gpu_id;
        let (handle, offset) = self.kfd.alloc(va, size, gpu_id, flags)?;
        let mut bo = Bo { handle, va, size, cpu: None, gpu_mapped: false };
        let render = self.render.unwrap_or(Fd(-1));
        let len = usize::try_from(size).map_err(|_| Error::io(STEP_MMAP, Errno::ENOMEM));
        let r = len.and_then(|len| {
            if cpu {
                bo.cpu = Some(
                    self.driver
                        .mmap(render, offset, len, MapAt::Fixed(va))
                        .map_err(|e| Error::io(STEP_MMAP, e))?,
                );
            }
            if gpu_map {
                self.kfd.map(handle, gpu_id)?;
                bo.gpu_mapped = true;
            }
            Ok(())
        });
        match r {
            Ok(()) => Ok(bo),
            Err(e) => {
                let _ = bo::release(&mut self.kfd, gpu_id, bo);
                Err(e)
            }
        }
    }
}

/// What `open` brings up.
pub(super) struct Opened {
    pub(super) res: Resources,
    pub(super) node: TopologyNode,
    pub(super) gfx: GfxTarget,
    pub(super) version: GetVersionArgs,
    pub(super) aperture: ProcessDeviceApertures,
    /// The allocator over the reserved VA window.
    pub(super) window: VaAllocator,
    pub(super) render_path: String,
    pub(super) queue_id: u32,
    pub(super) doorbell_in_page: usize,
    pub(super) signal: CreateEventArgs,
    pub(super) hw_event: u32,
    pub(super) mem_event: u32,
    /// GPU VA of the signal event's slot in the event page.
    pub(super) slot_va: u64,
}

/// Open `/dev/kfd` and the render node through `driver` and create the PM4 queue (the steps
/// of the module docs of [`super`]); on failure everything acquired is released (by `Drop` of
/// [`Resources`]) before the error returns.
pub(super) fn open(driver: Arc<dyn Driver>, config: &KfdConfig) -> Result<Opened> {
    config.check()?;
    let kfd_fd = driver.open(&config.kfd_path).map_err(|e| Error::io(STEP_OPEN_KFD, e))?;
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
        user_bos: BoTable::default(),
    };
    let version = res.kfd.get_version()?;
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
    res.render = Some(driver.open(&render_path).map_err(|e| Error::io(STEP_OPEN_RENDER, e))?);
    let render = res.render.unwrap_or(Fd(-1));
    res.kfd.acquire_vm(render, node.gpu_id)?;
    if (version.major_version, version.minor_version) >= RUNTIME_ENABLE_SINCE {
        res.kfd.runtime_enable(RuntimeEnableArgs::default())?;
    }
    let aperture =
        res.kfd.apertures()?.into_iter().find(|a| a.gpu_id == node.gpu_id).ok_or_else(|| {
            Error::Unsupported(format!(
                "GET_PROCESS_APERTURES_NEW has no aperture for gpu_id {:#x}",
                node.gpu_id
            ))
        })?;
    let window_len = config
        .va_window
        .checked_next_multiple_of(PAGE_SIZE)
        .and_then(|l| usize::try_from(l).ok())
        .filter(|&l| l > 0)
        .ok_or_else(|| Error::InvalidArgument(format!("va_window {}", config.va_window)))?;
    let base = driver
        .reserve_va(window_len, PAGE_SIZE as usize)
        .map_err(|e| Error::io(STEP_RESERVE_VA, e))?;
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
    let ring_bytes = config.ring_bytes;
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
        let bo = res.make_bo(va, size, flags, cpu, true)?;
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
    let hw = res.kfd.create_event(CreateEventArgs {
        event_type: KFD_IOC_EVENT_HW_EXCEPTION,
        ..Default::default()
    })?;
    res.events.push(hw.event_id);
    let mem = res
        .kfd
        .create_event(CreateEventArgs { event_type: KFD_IOC_EVENT_MEMORY, ..Default::default() })?;
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
        // At most u32::MAX: KfdConfig::check.
        ring_size: ring_bytes as u32,
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
            .map_err(|e| Error::io(STEP_MMAP_DOORBELL, e))?,
    );
    Ok(Opened {
        res,
        gfx,
        version,
        aperture,
        window,
        render_path,
        queue_id: q.queue_id,
        doorbell_in_page: doorbell_offset_in_page(q.doorbell_offset),
        signal,
        hw_event: hw.event_id,
        mem_event: mem.event_id,
        slot_va,
        node,
    })
}
