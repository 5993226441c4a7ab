//! The file's GPU VM: GEM_VA MAP / UNMAP / CLEAR / REPLACE (`amdgpu_gem.c:
//! amdgpu_gem_va_ioctl`, `amdgpu_vm.c`).

use super::*;

/// `amdgpu_gem_va_ioctl` (+ `amdgpu_vm_bo_map` / `amdgpu_vm_verify_parameters` /
/// `amdgpu_vm_bo_unmap`).
pub(crate) fn gem_va(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: GemVa = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    let inval = |s: &mut State, why: String| {
        Err(s.fail(Errno::EINVAL, format!("amdgpu_gem_va_ioctl: {why}")))
    };
    if a.va_address < s.preset.va_reserved_bottom {
        return inval(&mut s, format!("va {:#x} is in the reserved bottom", a.va_address));
    }
    if (GMC_HOLE_START..GMC_HOLE_END).contains(&a.va_address) {
        return inval(&mut s, format!("va {:#x} is in the VA hole", a.va_address));
    }
    let va = a.va_address & GMC_HOLE_MASK;
    let limit = s.preset.va_limit();
    match va.checked_add(a.map_size) {
        Some(end) if end <= limit => {}
        _ => {
            return inval(
                &mut s,
                format!("va {va:#x} + {:#x} is in the top reserved area", a.map_size),
            )
        }
    }
    let valid = AMDGPU_VM_DELAY_UPDATE
        | AMDGPU_VM_PAGE_READABLE
        | AMDGPU_VM_PAGE_WRITEABLE
        | AMDGPU_VM_PAGE_EXECUTABLE
        | AMDGPU_VM_MTYPE_MASK
        | VM_PAGE_NOALLOC;
    let prt = AMDGPU_VM_DELAY_UPDATE | AMDGPU_VM_PAGE_PRT;
    if a.flags & !valid != 0 && a.flags & !prt != 0 {
        return inval(&mut s, format!("invalid flags combination {:#x}", a.flags));
    }
    if !matches!(
        a.operation,
        AMDGPU_VA_OP_MAP | AMDGPU_VA_OP_UNMAP | AMDGPU_VA_OP_CLEAR | AMDGPU_VA_OP_REPLACE
    ) {
        return inval(&mut s, format!("unsupported operation {}", a.operation));
    }
    if a.operation == AMDGPU_VA_OP_CLEAR
        || a.operation == AMDGPU_VA_OP_REPLACE
        || a.flags & AMDGPU_VM_PAGE_PRT != 0
    {
        return inval(
            &mut s,
            "CLEAR / REPLACE / PRT are not emulated (emulator limitation)".into(),
        );
    }
    let Some(gem) = lookup(s.file(fd)?, a.handle) else {
        return Err(s.fail(Errno::ENOENT, format!("amdgpu_gem_va_ioctl: no handle {}", a.handle)));
    };
    // amdgpu_gem_update_timeline_node: the out syncobj must exist.
    let timeline = a.vm_timeline_syncobj_out;
    if timeline != 0 && !s.file(fd)?.syncobjs.exists(timeline) {
        return Err(s.fail(
            Errno::ENOENT,
            format!("amdgpu_gem_update_timeline_node: no syncobj {timeline}"),
        ));
    }
    if a.operation == AMDGPU_VA_OP_UNMAP {
        // amdgpu_vm_bo_unmap: the mapping of this BO starting at va, else -ENOENT.
        let file = s.file(fd)?;
        let hit = file.vm.get(&va).is_some_and(|m| Arc::ptr_eq(&m.gem, &gem));
        if !hit {
            return Err(s.fail(
                Errno::ENOENT,
                format!("amdgpu_vm_bo_unmap: BO {} not mapped at {va:#x}", a.handle),
            ));
        }
        file.vm.remove(&va);
        // Takes effect at once (stricter than the kernel); its fence is already signalled.
        let was_pending = file.pt.cancel(va, &gem);
        let fence = file.pt.last();
        if timeline != 0 {
            file.syncobjs.attach(timeline, a.vm_timeline_point, fence);
        }
        if !was_pending {
            let _ = s.mem.unmap(gem.id);
        }
        return Ok(());
    }
    // amdgpu_vm_verify_parameters.
    let page_mask = PAGE_SIZE - 1;
    if va & page_mask != 0 || a.offset_in_bo & page_mask != 0 || a.map_size & page_mask != 0 {
        return Err(s.fail(
            Errno::EINVAL,
            "amdgpu_vm_verify_parameters: va, offset or size not page aligned",
        ));
    }
    if a.map_size == 0 || a.offset_in_bo.checked_add(a.map_size).is_none() {
        return Err(s.fail(Errno::EINVAL, "amdgpu_vm_verify_parameters: size 0 or overflow"));
    }
    if a.offset_in_bo + a.map_size > gem.size {
        return Err(s.fail(
            Errno::EINVAL,
            format!(
                "amdgpu_vm_verify_parameters: offset {:#x} + size {:#x} exceeds BO size {:#x}",
                a.offset_in_bo, a.map_size, gem.size
            ),
        ));
    }
    // amdgpu_vm_bo_map: any overlap with an existing mapping is -EINVAL.
    let end = va + a.map_size;
    let overlap =
        s.file(fd)?.vm.range(..end).next_back().is_some_and(|(&start, m)| start + m.size > va);
    if overlap {
        return Err(s.fail(
            Errno::EINVAL,
            format!("amdgpu_vm_bo_map: {va:#x}-{end:#x} overlaps a mapping"),
        ));
    }
    if a.offset_in_bo != 0 || a.map_size != gem.size {
        return Err(
            s.fail(Errno::EINVAL, "partial BO mappings are not emulated (emulator limitation)")
        );
    }
    // The simulated memory maps a BO once: try it now to refuse what it cannot hold, then
    // leave the mapping invisible to the GPU until its page-table update completes
    // (syncobj.rs).
    if s.file(fd)?.pt.has_pending(&gem) {
        return Err(s.fail(
            Errno::EINVAL,
            "emulator limitation (one VM, one mapping per BO): BO already mapped",
        ));
    }
    // amdgpu_gem.c: amdgpu_gem_va_map_flags: each PTE permission bit only when its
    // AMDGPU_VM_PAGE_* flag is set.
    let perms = Perms {
        read: a.flags & AMDGPU_VM_PAGE_READABLE != 0,
        write: a.flags & AMDGPU_VM_PAGE_WRITEABLE != 0,
        execute: a.flags & AMDGPU_VM_PAGE_EXECUTABLE != 0,
    };
    if let Err(e) = s.mem.map(gem.id, va, perms) {
        return Err(s.fail(
            Errno::EINVAL,
            format!("emulator limitation (one VM, one mapping per BO): {e}"),
        ));
    }
    let _ = s.mem.unmap(gem.id);
    let file = s.file(fd)?;
    file.vm.insert(va, VaMap { handle: a.handle, gem: Arc::clone(&gem), size: a.map_size, perms });
    let fence = file.pt.queue_map(va, gem);
    if timeline != 0 {
        file.syncobjs.attach(timeline, a.vm_timeline_point, fence);
    }
    Ok(())
}
