//! KFD memory: ALLOC / FREE / MAP / UNMAP_MEMORY_(OF|TO|FROM)_GPU (`kfd_chardev.c`), each
//! allocation a GEM object of the acquired render file.

use super::*;

impl State {
    pub(super) fn drop_alloc(&mut self, a: Alloc) {
        if a.mapped {
            let _ = self.mem.unmap(a.gem.id);
        }
        if let Some(f) = self.files.get_mut(&a.render_fd) {
            f.handles.remove(&a.gem_handle);
        }
    }
}

pub(super) fn alloc(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let mut args: k::AllocMemoryOfGpuArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    let Some(render_fd) = proc_of(&mut s, fd)?.vm else {
        return Err(einval(&mut s, "ALLOC_MEMORY_OF_GPU before ACQUIRE_VM".into()));
    };
    if args.gpu_id != EMU_GPU_ID {
        return Err(einval(&mut s, format!("ALLOC: unknown gpu_id {:#x}", args.gpu_id)));
    }
    let end = args.va_addr.checked_add(args.size);
    let overlaps = proc_of(&mut s, fd)?
        .allocs
        .values()
        .any(|o| end.is_some_and(|e| args.va_addr < o.va + o.size && o.va < e));
    if args.size == 0
        || !args.va_addr.is_multiple_of(PAGE)
        || !args.size.is_multiple_of(PAGE)
        || args.va_addr < GPUVM_BASE
        || end.is_none_or(|e| e - 1 > GPUVM_LIMIT)
        || overlaps
    {
        return Err(einval(
            &mut s,
            format!(
                "ALLOC: va {:#x} size {:#x} outside the aperture, unaligned or overlapping",
                args.va_addr, args.size
            ),
        ));
    }
    let gem = s.create_gem(args.size, 0, 0)?;
    let file = s.file(Fd(render_fd))?;
    let gem_handle = lowest_free(&file.handles)?;
    file.handles.insert(gem_handle, Arc::clone(&gem));
    let p = proc_of(&mut s, fd)?;
    let handle = (u64::from(EMU_GPU_ID) << 32) | p.next_handle;
    p.next_handle += 1;
    args.handle = handle;
    args.mmap_offset = gem.mmap_offset;
    p.allocs.insert(
        handle,
        Alloc {
            gem,
            render_fd,
            gem_handle,
            va: args.va_addr,
            size: args.size,
            flags: args.flags,
            mapped: false,
        },
    );
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}

pub(super) fn free(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let args: k::FreeMemoryOfGpuArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    let p = proc_of(&mut s, fd)?;
    if p.event_page == Some(args.handle) {
        // The kernel keeps the page kmapped for the process; freeing it while events use it
        // would pull memory from under the interrupt handler.
        if !p.events.is_empty() {
            return Err(einval(&mut s, "FREE: the event page is still in use".into()));
        }
        p.event_page = None;
    }
    let Some(al) = p.allocs.remove(&args.handle) else {
        return Err(einval(&mut s, format!("FREE: unknown handle {:#x}", args.handle)));
    };
    s.drop_alloc(al);
    Ok(())
}

fn map_op(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    u: &mut UserMem,
    on: bool,
) -> Result<(), Errno> {
    let mut args: k::MapMemoryToGpuArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    // kfd_ioctl_map/unmap_memory_*_gpu: an empty device list or n_success beyond it is
    // EINVAL before the list is read.
    if args.n_devices == 0 || args.n_success > args.n_devices {
        return Err(einval(
            &mut dev.lock(),
            format!("MAP/UNMAP: n_devices {} n_success {}", args.n_devices, args.n_success),
        ));
    }
    let ids = u.read(args.device_ids_array_ptr, args.n_devices as usize * 4)?;
    let mut s = dev.lock();
    if ids.chunks(4).any(|c| c != EMU_GPU_ID.to_le_bytes()) {
        return Err(einval(
            &mut s,
            "MAP/UNMAP: device list must name only the emulated GPU".into(),
        ));
    }
    let mem = Arc::clone(&s.mem);
    let p = proc_of(&mut s, fd)?;
    let Some(al) = p.allocs.get_mut(&args.handle) else {
        return Err(einval(&mut s, format!("MAP/UNMAP: unknown handle {:#x}", args.handle)));
    };
    if on && !al.mapped {
        // amdgpu_amdkfd_gpuvm.c: get_pte_flags: always readable; writable and executable
        // as the allocation flags ask.
        let perms = Perms {
            read: true,
            write: al.flags & k::KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE != 0,
            execute: al.flags & k::KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE != 0,
        };
        mem.map(al.gem.id, al.va, perms).map_err(|_| Errno::EINVAL)?;
        al.mapped = true;
    } else if !on && al.mapped {
        let _ = mem.unmap(al.gem.id);
        al.mapped = false;
    } else if !on {
        return Err(einval(&mut s, "UNMAP: not mapped".into()));
    }
    args.n_success = args.n_devices;
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}

pub(super) fn map(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    u: &mut UserMem,
) -> Result<(), Errno> {
    map_op(dev, fd, a, u, true)
}

pub(super) fn unmap(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    u: &mut UserMem,
) -> Result<(), Errno> {
    map_op(dev, fd, a, u, false)
}
