//! KFD compute queues: CREATE / DESTROY_QUEUE (`kfd_chardev.c`, `kfd_queue.c`) and the
//! doorbell page whose 64-bit stores make the engine consume a queue's ring.

use super::*;
use pm4rt_core::HostMapping;

/// The doorbell page: 64-bit stores at a queue's doorbell make the engine consume its ring.
#[derive(Debug)]
struct Doorbell {
    /// The page's bytes, counted in the device's live doorbell mappings.
    page: HostMapping,
    queues: Arc<Mutex<HashMap<usize, QueueRing>>>,
    engine: Arc<Engine>,
    retire: bool,
}

impl Mapping for Doorbell {
    fn addr(&self) -> u64 {
        self.page.addr()
    }
    fn len(&self) -> usize {
        self.page.len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        self.page.read(offset, out)
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        self.page.write(offset, data)
    }
    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        self.page.load_u64(offset)
    }
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        if offset & 7 != 0 {
            return Err(Errno::EFAULT);
        }
        self.page.store_u64(offset, value)?;
        let q = self.queues.lock().unwrap_or_else(|e| e.into_inner()).get(&offset).copied();
        if let (Some(q), true) = (q, self.retire) {
            if let Some(wptr) =
                crate::emu::doorbell::cp_wptr(self.engine.memory(), value, q.wptr_va)
            {
                // A halted engine ignores the doorbell, like a hung CP.
                let _ = self.engine.submit(Work::Ring(RingWork {
                    ring_va: q.ring_va,
                    ring_dwords: q.ring_dwords,
                    rptr_va: q.rptr_va,
                    wptr,
                }));
            }
        }
        Ok(())
    }
}

impl State {
    /// mmap of `/dev/kfd`: only the doorbell page of this process's GPU.
    pub(crate) fn kfd_mmap(
        &mut self,
        fd: Fd,
        offset: u64,
        len: usize,
    ) -> Result<Box<dyn Mapping>, Errno> {
        let retire = self.preset.kfd_queues_retire;
        let engine = Arc::clone(&self.engine);
        let live = Arc::clone(&self.kfd.live_doorbells);
        let p = self.kfd.procs.get(&fd.0).ok_or(Errno::EBADF)?;
        // kfd_mmap: the type bits pick the handler; kfd_doorbell_mmap wants exactly the
        // doorbell process page size of that GPU.
        if offset & k::KFD_MMAP_TYPE_MASK != k::KFD_MMAP_TYPE_DOORBELL
            || k::mmap_gpu_id(offset) != EMU_GPU_ID
            || len != k::KFD_DOORBELL_MAP_SIZE
            || offset & (k::KFD_DOORBELL_MAP_SIZE as u64 - 1) != 0
        {
            return Err(self.fail(Errno::EINVAL, format!("kfd mmap: offset {offset:#x} len {len}")));
        }
        let queues = Arc::clone(&p.doorbells);
        Ok(Box::new(Doorbell {
            page: HostMapping::new(k::KFD_DOORBELL_MAP_SIZE, 0x7E00_0000_0000).counted(live),
            queues,
            engine,
            retire,
        }))
    }
}

pub(super) fn create_queue(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let mut q: k::CreateQueueArgs = decode_arg_zext(a);
    let mut s = dev.lock();
    let gfxv = gfx_target_version(&s.preset);
    let cu = u64::from(s.preset.cu_count);
    let (ctl, cwsr, debug, eop) = node_queue_sizes(gfxv, cu);
    // set_queue_properties_from_user
    if q.gpu_id != EMU_GPU_ID {
        return Err(einval(&mut s, format!("CREATE_QUEUE: unknown gpu_id {:#x}", q.gpu_id)));
    }
    if q.queue_percentage & 0xFF > k::KFD_MAX_QUEUE_PERCENTAGE
        || q.queue_priority > k::KFD_MAX_QUEUE_PRIORITY
    {
        return Err(einval(&mut s, "CREATE_QUEUE: percentage > 100 or priority > 15".into()));
    }
    if q.ring_size != 0 && !q.ring_size.is_power_of_two() {
        return Err(einval(&mut s, "Ring size must be a power of 2 or 0".into()));
    }
    if q.queue_type != k::KFD_IOC_QUEUE_TYPE_COMPUTE {
        return Err(einval(&mut s, "CREATE_QUEUE: only PM4 compute queues are emulated".into()));
    }
    let ring_size = u64::from(q.ring_size.max(1024));
    // kfd_queue_acquire_buffers / kfd_queue_buffer_get: start of a mapping of exactly `size`.
    let p = proc_of(&mut s, fd)?;
    // In GPU pages, as the kernel compares: `size >> PAGE_SHIFT == 0` skips the size check.
    let exact = |va: u64, size: u64| {
        p.allocs
            .values()
            .any(|al| al.va == va && (size / PAGE == 0 || al.size == size / PAGE * PAGE))
    };
    let mut why = None;
    if !exact(q.write_pointer_address, PAGE) {
        why = Some("wptr is not the start of a one-page mapping");
    } else if !exact(q.read_pointer_address, PAGE) {
        why = Some("rptr is not the start of a one-page mapping");
    } else if !exact(q.ring_base_address, ring_size) {
        why = Some("ring mapping size differs from ring_size");
    } else if q.eop_buffer_address != 0 && q.eop_buffer_size != eop {
        why = Some("eop_buffer_size differs from the node's");
    } else if q.eop_buffer_address != 0 && !exact(q.eop_buffer_address, eop) {
        why = Some("EOP mapping size differs from the node's eop_buffer_size");
    } else if u64::from(q.ctl_stack_size) != ctl {
        why = Some("ctl_stack_size differs from the node's");
    } else if u64::from(q.ctx_save_restore_size) < cwsr {
        why = Some("ctx_save_restore_size is below the node's cwsr_size");
    } else if !exact(q.ctx_save_restore_address, (cwsr + debug).div_ceil(PAGE) * PAGE) {
        why = Some("CWSR mapping is not exactly ALIGN((cwsr_size + debug_memory_size) * num_xcc)");
    }
    if let Some(w) = why {
        return Err(einval(&mut s, format!("CREATE_QUEUE: {w}")));
    }
    let Some(qid) = (0..1024u32).find(|i| !p.queues.contains_key(i)) else {
        return Err(s.fail(Errno::ENOSPC, "CREATE_QUEUE: no queue slot"));
    };
    let byte = qid as usize * 8;
    // If an earlier queue's fault halted the emulator's one engine, the GPU was reset (the
    // faulting process's queues were evicted, kfd_process_vm_fault / kfd_signal_vm_fault_event):
    // the new queue starts on a working engine.
    s.sync_engine()?;
    s.engine.map_ring(q.ring_base_address);
    let p = proc_of(&mut s, fd)?;
    p.queues.insert(qid, byte);
    p.doorbells.lock().unwrap_or_else(|e| e.into_inner()).insert(
        byte,
        QueueRing {
            ring_va: q.ring_base_address,
            ring_dwords: (ring_size / 4) as u32,
            rptr_va: q.read_pointer_address,
            wptr_va: q.write_pointer_address,
        },
    );
    s.hook_engine();
    q.queue_id = qid;
    q.doorbell_offset = k::doorbell_offset_for(EMU_GPU_ID, byte as u64);
    update_arg(a, &q).map_err(|_| Errno::EFAULT)
}

pub(super) fn destroy_queue(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let args: k::DestroyQueueArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    let p = proc_of(&mut s, fd)?;
    let Some(byte) = p.queues.remove(&args.queue_id) else {
        return Err(einval(&mut s, format!("DESTROY_QUEUE: unknown queue {}", args.queue_id)));
    };
    let ring = p.doorbells.lock().unwrap_or_else(|e| e.into_inner()).remove(&byte);
    // destroy_queue_cpsch unmaps (preempts) the queue before returning; the wait happens
    // without the device lock (the engine's interrupt hook signals events).
    let (engine, cap) = (Arc::clone(&s.engine), s.preset.wait_cap);
    drop(s);
    if let Some(q) = ring {
        if let Err(e) = engine.unmap_ring(q.ring_va, cap) {
            dev.lock().last_error = Some(format!("DESTROY_QUEUE: queue unmap: {e}"));
        }
    }
    Ok(())
}
