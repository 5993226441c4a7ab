//! GEM objects of a render file: GEM_CREATE, GEM_MMAP and GEM_CLOSE (`amdgpu_gem.c`,
//! `drm_gem.c`).

use super::*;

/// `amdgpu_gem_create_ioctl`.
pub(crate) fn gem_create(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: GemCreateIn = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    let mut flags = a.domain_flags;
    if flags & !GEM_CREATE_SETTABLE_MASK != 0 {
        return Err(s.fail(
            Errno::EINVAL,
            format!(
                "amdgpu_gem_create_ioctl: flags {flags:#x} outside AMDGPU_GEM_CREATE_SETTABLE_MASK"
            ),
        ));
    }
    if a.domains & !GEM_DOMAIN_MASK != 0 {
        return Err(s.fail(
            Errno::EINVAL,
            format!(
                "amdgpu_gem_create_ioctl: domains {:#x} outside AMDGPU_GEM_DOMAIN_MASK",
                a.domains
            ),
        ));
    }
    if flags & GEM_CREATE_ENCRYPTED != 0 && !s.preset.tmz {
        return Err(s.fail(Errno::EINVAL, "amdgpu_gem_create_ioctl: ENCRYPTED without TMZ"));
    }
    let special = AMDGPU_GEM_DOMAIN_GDS | AMDGPU_GEM_DOMAIN_GWS | AMDGPU_GEM_DOMAIN_OA;
    if a.domains & special != 0 {
        if flags & AMDGPU_GEM_CREATE_VM_ALWAYS_VALID != 0 {
            return Err(
                s.fail(Errno::EINVAL, "amdgpu_gem_create_ioctl: GDS bo cannot be per-vm-bo")
            );
        }
        flags |= AMDGPU_GEM_CREATE_NO_CPU_ACCESS;
    }
    if a.bo_size == 0 {
        // No amdgpu check; ttm_bo_init_reserved -> drm_vma_offset_add ->
        // drm_mm_insert_node_in_range refuses size 0 with -ENOSPC.
        return Err(s.fail(Errno::ENOSPC, "drm_mm_insert_node_in_range: BO size 0"));
    }
    if a.bo_size > MAX_BO_SIZE {
        // amdgpu_bo_validate_size answers -ENOMEM for sizes beyond the heap; the emulator caps
        // host memory lower.
        return Err(s.fail(
            Errno::ENOMEM,
            format!("BO of {:#x} bytes exceeds the emulator cap", a.bo_size),
        ));
    }
    let handle = lowest_free(&s.file(fd)?.handles)?;
    let gem = s.create_gem(a.bo_size, a.domains, flags)?;
    s.file(fd)?.handles.insert(handle, gem);
    answer(kdata, &GemCreateOut { handle, pad: 0 })
}

/// `amdgpu_gem_mmap_ioctl` -> `amdgpu_mode_dumb_mmap`.
pub(crate) fn gem_mmap(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: GemMmapIn = decode(kdata);
    kdata.fill(0);
    let mut s = dev.lock();
    let Some(gem) = lookup(s.file(fd)?, a.handle) else {
        return Err(s.fail(Errno::ENOENT, format!("amdgpu_mode_dumb_mmap: no handle {}", a.handle)));
    };
    if gem.flags & AMDGPU_GEM_CREATE_NO_CPU_ACCESS != 0 {
        return Err(s.fail(Errno::EPERM, "amdgpu_mode_dumb_mmap: BO is NO_CPU_ACCESS"));
    }
    answer(kdata, &GemMmapOut { addr_ptr: gem.mmap_offset })
}

/// `drm_gem_close_ioctl` -> `drm_gem_handle_delete`; `amdgpu_gem_object_close` removes the
/// BO's mappings from this file's VM.
pub(crate) fn gem_close(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: GemClose = decode(kdata);
    let mut s = dev.lock();
    let file = s.file(fd)?;
    let Some(gem) = file.handles.remove(&a.handle) else {
        return Err(s.fail(Errno::EINVAL, format!("drm_gem_handle_delete: no handle {}", a.handle)));
    };
    let before = file.vm.len();
    file.vm.retain(|_, m| !Arc::ptr_eq(&m.gem, &gem));
    file.pt.forget(&gem);
    if file.vm.len() != before {
        let _ = s.mem.unmap(gem.id);
    }
    Ok(())
}
