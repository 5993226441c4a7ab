//! The amdgpu ioctl handlers. Each check names the kernel function whose errno it reproduces
//! (drivers/gpu/drm/amd/amdgpu/*.c, drivers/gpu/drm/drm_*.c, upstream Linux 6.x).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::abi::drm::*;
use pm4rt_core::abi::ioctl::{decode_arg_zext, decode_array, write_arg};
use pm4rt_core::driver::Fd;
use pm4rt_core::{Errno, Error};

use super::gem::GemObject;
use super::preset::{GMC_HOLE_END, GMC_HOLE_MASK, GMC_HOLE_START};
use super::state::{lowest_free, Ctx, DrmFile, Entity, FenceState, State, VaMap};
use super::user::UserMem;
use super::EmulatedDevice;
use crate::engine::Work;
use crate::memory::{Perms, PAGE_SIZE};

// Constants of include/uapi/drm/amdgpu_drm.h not (yet) in pm4rt_core::abi::drm.
/// `AMDGPU_GEM_DOMAIN_MASK` (CPU | GTT | VRAM | GDS | GWS | OA | DOORBELL).
const GEM_DOMAIN_MASK: u64 = 0x7F;
/// `AMDGPU_GEM_CREATE_VRAM_WIPE_ON_RELEASE`.
const GEM_CREATE_VRAM_WIPE_ON_RELEASE: u64 = 1 << 9;
/// `AMDGPU_GEM_CREATE_ENCRYPTED`.
const GEM_CREATE_ENCRYPTED: u64 = 1 << 10;
/// `AMDGPU_GEM_CREATE_DISCARDABLE`.
const GEM_CREATE_DISCARDABLE: u64 = 1 << 12;
/// `AMDGPU_GEM_CREATE_EXT_COHERENT`.
const GEM_CREATE_EXT_COHERENT: u64 = 1 << 15;
/// `AMDGPU_GEM_CREATE_GFX12_DCC`.
const GEM_CREATE_GFX12_DCC: u64 = 1 << 16;
/// `AMDGPU_GEM_CREATE_SETTABLE_MASK` (amdgpu_gem.h): note VRAM_CONTIGUOUS is not settable.
const GEM_CREATE_SETTABLE_MASK: u64 = AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED
    | AMDGPU_GEM_CREATE_NO_CPU_ACCESS
    | AMDGPU_GEM_CREATE_CPU_GTT_USWC
    | AMDGPU_GEM_CREATE_VRAM_CLEARED
    | AMDGPU_GEM_CREATE_VM_ALWAYS_VALID
    | AMDGPU_GEM_CREATE_EXPLICIT_SYNC
    | GEM_CREATE_VRAM_WIPE_ON_RELEASE
    | GEM_CREATE_ENCRYPTED
    | GEM_CREATE_GFX12_DCC
    | GEM_CREATE_DISCARDABLE
    | AMDGPU_GEM_CREATE_COHERENT
    | AMDGPU_GEM_CREATE_UNCACHED
    | GEM_CREATE_EXT_COHERENT;
/// `AMDGPU_VM_PAGE_NOALLOC`.
const VM_PAGE_NOALLOC: u32 = 1 << 9;
/// `AMDGPU_HW_IP_NUM`.
const HW_IP_NUM: u32 = 10;
/// `AMDGPU_HW_IP_INSTANCE_MAX_COUNT`.
const HW_IP_INSTANCE_MAX_COUNT: u32 = 1;
/// CS chunk ids accepted without action by amdgpu_cs_pass1 (SCHEDULED_DEPENDENCIES,
/// SYNCOBJ_TIMELINE_WAIT, SYNCOBJ_TIMELINE_SIGNAL, CP_GFX_SHADOW).
const CHUNK_ID_OTHER_KNOWN: [u32; 4] = [0x07, 0x08, 0x09, 0x0A];
/// `amdgpu_ring_max_ibs` for GFX and COMPUTE.
const MAX_IBS: u32 = 192;
/// `amdgpu_sched_jobs` default: fences older than this many are treated as signalled
/// (amdgpu_ctx_get_fence returns NULL).
const SCHED_JOBS: u64 = 32;
/// `AMDGPU_BO_LIST_MAX_ENTRIES` (amdgpu_bo_list.c, a fix marked for stable kernels): a longer
/// BO list is `EINVAL`.
const BO_LIST_MAX_ENTRIES: u32 = 128 * 1024;
/// Largest BO the emulator backs with host memory (a guard for the host, not a kernel rule).
const MAX_BO_SIZE: u64 = 1 << 32;

fn decode<T: bytemuck::Pod>(kdata: &[u8]) -> T {
    decode_arg_zext(kdata)
}

fn answer<T: bytemuck::Pod>(kdata: &mut [u8], v: &T) -> Result<(), Errno> {
    write_arg(kdata, v).map_err(|_| Errno::EFAULT)
}

fn lookup(file: &DrmFile, handle: u32) -> Option<Arc<GemObject>> {
    file.handles.get(&handle).cloned()
}

// ---------------------------------------------------------------------------------------------
// GEM
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// GEM_VA
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// CTX
// ---------------------------------------------------------------------------------------------

/// `amdgpu_ctx_ioctl`.
pub(crate) fn ctx(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: CtxIn = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    s.sync_engine()?;
    // amdgpu_ctx_ioctl: garbage priorities become NORMAL (amdgpu_ctx_priority_is_valid).
    // VERY_LOW -1023, LOW, NORMAL, HIGH, VERY_HIGH 1023.
    let valid_prio = matches!(a.priority, -1023 | -512 | 0 | 512 | 1023);
    let priority = if valid_prio { a.priority } else { AMDGPU_CTX_PRIORITY_NORMAL };
    if !matches!(
        a.op,
        AMDGPU_CTX_OP_ALLOC_CTX
            | AMDGPU_CTX_OP_FREE_CTX
            | AMDGPU_CTX_OP_QUERY_STATE
            | AMDGPU_CTX_OP_QUERY_STATE2
    ) {
        return Err(s.fail(Errno::EINVAL, format!("amdgpu_ctx_ioctl: op {}", a.op)));
    }
    if a.flags != 0 {
        return Err(s.fail(Errno::EINVAL, "amdgpu_ctx_ioctl: flags must be 0"));
    }
    let (reset, generation) = (s.gpu_reset_counter, s.vram_lost_counter);
    match a.op {
        AMDGPU_CTX_OP_ALLOC_CTX => {
            // amdgpu_ctx_priority_permit: above NORMAL needs CAP_SYS_NICE or DRM master.
            if priority > AMDGPU_CTX_PRIORITY_NORMAL && !s.preset.cap_sys_nice {
                return Err(s.fail(
                    Errno::EACCES,
                    "amdgpu_ctx_priority_permit: high priority without CAP_SYS_NICE",
                ));
            }
            let file = s.file(fd)?;
            let id = lowest_free(&file.ctxs)?;
            file.ctxs.insert(
                id,
                Ctx {
                    reset_counter: reset,
                    reset_counter_query: reset,
                    generation,
                    guilty: false,
                    entities: HashMap::new(),
                },
            );
            answer(kdata, &CtxOutAlloc { ctx_id: id, pad: 0 })
        }
        AMDGPU_CTX_OP_FREE_CTX => {
            if s.file(fd)?.ctxs.remove(&a.ctx_id).is_none() {
                return Err(
                    s.fail(Errno::EINVAL, format!("amdgpu_ctx_free: no context {}", a.ctx_id))
                );
            }
            kdata.fill(0);
            Ok(())
        }
        op => {
            let Some(c) = s.file(fd)?.ctxs.get_mut(&a.ctx_id) else {
                return Err(
                    s.fail(Errno::EINVAL, format!("amdgpu_ctx_query: no context {}", a.ctx_id))
                );
            };
            let out = if op == AMDGPU_CTX_OP_QUERY_STATE {
                // amdgpu_ctx_query: UNKNOWN_RESET once per reset since the last query.
                let status = if c.reset_counter_query == reset {
                    AMDGPU_CTX_NO_RESET
                } else {
                    AMDGPU_CTX_UNKNOWN_RESET
                };
                c.reset_counter_query = reset;
                CtxOutState { flags: 0, hangs: 0, reset_status: status }
            } else {
                // amdgpu_ctx_query2.
                let mut flags = 0;
                if c.reset_counter != reset {
                    flags |= AMDGPU_CTX_QUERY2_FLAGS_RESET;
                }
                if c.generation != generation {
                    flags |= AMDGPU_CTX_QUERY2_FLAGS_VRAMLOST;
                }
                if c.guilty {
                    flags |= AMDGPU_CTX_QUERY2_FLAGS_GUILTY;
                }
                CtxOutState { flags, hangs: 0, reset_status: 0 }
            };
            answer(kdata, &out)
        }
    }
}

/// `amdgpu_ctx_get_entity`: the entity key, or `EINVAL`.
fn entity_key(s: &mut State, ip_type: u32, instance: u32, ring: u32) -> Result<(u32, u32), Errno> {
    if ip_type >= HW_IP_NUM {
        return Err(
            s.fail(Errno::EINVAL, format!("amdgpu_ctx_get_entity: unknown HW IP type {ip_type}"))
        );
    }
    if instance != 0 {
        return Err(s.fail(
            Errno::EINVAL,
            format!("amdgpu_ctx_get_entity: invalid ip instance {instance}"),
        ));
    }
    // amdgpu_ctx_num_entities: GFX 1, COMPUTE 4; amdgpu_cs_job_idx: an IP without a run
    // queue (none on this machine) is -EINVAL.
    let rings = match ip_type {
        AMDGPU_HW_IP_GFX => 1,
        AMDGPU_HW_IP_COMPUTE => s.preset.compute_rings.min(4),
        _ => 0,
    };
    if ring >= rings {
        return Err(
            s.fail(Errno::EINVAL, format!("amdgpu_ctx_get_entity: invalid ring {ip_type} {ring}"))
        );
    }
    Ok((ip_type, ring))
}

// ---------------------------------------------------------------------------------------------
// BO_LIST
// ---------------------------------------------------------------------------------------------

/// `amdgpu_bo_create_list_entry_array` + `amdgpu_bo_list_create`: the BOs of a list.
fn read_bo_list(
    s: &mut State,
    fd: Fd,
    a: &BoListIn,
    user: &UserMem<'_, '_>,
) -> Result<Vec<Arc<GemObject>>, Errno> {
    if a.bo_number > BO_LIST_MAX_ENTRIES {
        return Err(s.fail(
            Errno::EINVAL,
            format!(
                "amdgpu_bo_create_list_entry_array: bo_number {} > AMDGPU_BO_LIST_MAX_ENTRIES",
                a.bo_number
            ),
        ));
    }
    let entry = std::mem::size_of::<BoListEntry>();
    let n = a.bo_number as usize;
    let mut entries = Vec::with_capacity(n.min(4096));
    if a.bo_info_size as usize == entry {
        let bytes = user
            .read(a.bo_info_ptr, n.checked_mul(entry).ok_or(Errno::EFAULT)?)
            .map_err(|e| s.fail(e, "amdgpu_bo_create_list_entry_array: bo_info_ptr unreadable"))?;
        entries = decode_array::<BoListEntry>(&bytes, n).map_err(|_| Errno::EFAULT)?;
    } else {
        // Other entry sizes: copy min(bo_info_size, 8) bytes of each, zero-extended.
        let take = (a.bo_info_size as usize).min(entry);
        for i in 0..n {
            let at = a
                .bo_info_ptr
                .checked_add(i as u64 * u64::from(a.bo_info_size))
                .ok_or(Errno::EFAULT)?;
            let b = user
                .read(at, take)
                .map_err(|e| s.fail(e, "amdgpu_bo_create_list_entry_array: entry unreadable"))?;
            entries.push(decode_arg_zext::<BoListEntry>(&b));
        }
    }
    let mut bos = Vec::with_capacity(entries.len());
    for e in entries {
        let Some(g) = lookup(s.file(fd)?, e.bo_handle) else {
            return Err(
                s.fail(Errno::ENOENT, format!("amdgpu_bo_list_create: no handle {}", e.bo_handle))
            );
        };
        bos.push(g);
    }
    Ok(bos)
}

/// `amdgpu_bo_list_ioctl`.
pub(crate) fn bo_list(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: BoListIn = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    let handle = match a.operation {
        AMDGPU_BO_LIST_OP_CREATE => {
            let bos = read_bo_list(&mut s, fd, &a, user)?;
            let file = s.file(fd)?;
            let h = lowest_free(&file.bo_lists)?;
            file.bo_lists.insert(h, bos);
            h
        }
        AMDGPU_BO_LIST_OP_DESTROY => {
            // amdgpu_bo_list_destroy is void: an unknown handle is silently ignored.
            s.file(fd)?.bo_lists.remove(&a.list_handle);
            0
        }
        AMDGPU_BO_LIST_OP_UPDATE => {
            let bos = read_bo_list(&mut s, fd, &a, user)?;
            let file = s.file(fd)?;
            let Some(l) = file.bo_lists.get_mut(&a.list_handle) else {
                return Err(s.fail(
                    Errno::ENOENT,
                    format!("amdgpu_bo_list_get: no list {}", a.list_handle),
                ));
            };
            *l = bos;
            a.list_handle
        }
        op => return Err(s.fail(Errno::EINVAL, format!("amdgpu_bo_list_ioctl: operation {op}"))),
    };
    answer(kdata, &BoListOut { list_handle: handle, pad: 0 })
}

// ---------------------------------------------------------------------------------------------
// INFO
// ---------------------------------------------------------------------------------------------

/// `amdgpu_info_ioctl` (HW_IP_INFO, DEV_INFO).
pub(crate) fn info(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: Info = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    if a.return_size == 0 || a.return_pointer == 0 {
        return Err(s.fail(Errno::EINVAL, "amdgpu_info_ioctl: return_size or return_pointer is 0"));
    }
    let p = &s.preset;
    let bytes: Vec<u8> = match a.query {
        AMDGPU_INFO_HW_IP_INFO => {
            let q = a.query_hw_ip();
            if q.ip_instance >= HW_IP_INSTANCE_MAX_COUNT {
                return Err(s.fail(Errno::EINVAL, "amdgpu_hw_ip_info: ip_instance"));
            }
            let rings = match q.ip_type {
                AMDGPU_HW_IP_GFX => 1,
                AMDGPU_HW_IP_COMPUTE => (1u32 << p.compute_rings.min(31)) - 1,
                t => return Err(s.fail(Errno::EINVAL, format!("HW_IP_INFO type {t} not emulated"))),
            };
            let ip = InfoHwIp {
                hw_ip_version_major: u32::from(p.gc_version.0),
                hw_ip_version_minor: u32::from(p.gc_version.1),
                capabilities_flags: 0,
                ib_start_alignment: p.ib_alignment,
                ib_size_alignment: p.ib_alignment,
                available_rings: rings,
                ip_discovery_version: p.gc_ip_discovery_version(),
                userq_num_slots: if q.ip_type == AMDGPU_HW_IP_COMPUTE {
                    p.userq_compute_slots
                } else {
                    0
                },
                pad: 0,
            };
            bytemuck::bytes_of(&ip).to_vec()
        }
        AMDGPU_INFO_DEV_INFO => {
            let mut d = InfoDevice {
                device_id: p.device_id,
                pci_rev: p.pci_rev,
                family: p.family,
                cu_active_number: p.cu_count,
                wave_front_size: p.wave_front_size,
                virtual_address_offset: p.va_start(),
                virtual_address_max: p.va_max(),
                virtual_address_alignment: PAGE_SIZE as u32,
                gart_page_size: PAGE_SIZE as u32,
                userq_ip_mask: p.userq_ip_mask,
                ..InfoDevice::default()
            };
            if p.va_limit() > GMC_HOLE_START {
                // amdgpu_info_ioctl: the high range mirrors the low one above the hole.
                d.high_va_offset = GMC_HOLE_END;
                d.high_va_max = GMC_HOLE_END | p.va_limit();
            }
            bytemuck::bytes_of(&d).to_vec()
        }
        AMDGPU_INFO_UQ_FW_AREAS => match super::userq::uq_fw_areas(p, a.query_hw_ip()) {
            Ok(b) => b,
            Err(e) => return Err(s.fail(e, "amdgpu_info_ioctl: UQ_FW_AREAS for this IP")),
        },
        q => {
            return Err(s.fail(Errno::EINVAL, format!("amdgpu_info_ioctl: invalid request {q:#x}")))
        }
    };
    // copy_to_user(out, &x, min(size, sizeof(x))).
    let n = (a.return_size as usize).min(bytes.len());
    user.write(a.return_pointer, &bytes[..n])
        .map_err(|e| s.fail(e, "amdgpu_info_ioctl: return_pointer not writable"))
}

// ---------------------------------------------------------------------------------------------
// CS
// ---------------------------------------------------------------------------------------------

struct IbJob {
    key: (u32, u32),
    va: u64,
    bytes: u32,
}

/// The dwords the CP fetches for a kernel IB of `length_dw` dwords.
///
/// The kernel takes any length (`amdgpu_cs.c: amdgpu_cs_p2_ib`: `ib->length_dw =
/// chunk_ib->ib_bytes / 4`) and `gfx_v12_0.c: gfx_v12_0_ring_emit_ib_compute` (like
/// `gfx_v11_0_ring_emit_ib_compute`) writes the ring's INDIRECT_BUFFER dw3 as
/// `INDIRECT_BUFFER_VALID | ib->length_dw | (vmid << 24)`, unmasked. The CP reads IB_SIZE
/// \[19:0\] of it, so an IB of 2^20 dwords or more runs truncated to `length_dw mod 2^20`
/// (nothing at all for a multiple of 2^20); bit 20 lands in CHAIN (not modelled).
fn cp_ib_dwords(length_dw: u32) -> u32 {
    pm4rt_core::pm4::tables::fields::IB_SIZE.get(length_dw)
}

/// Why the CP faults on an IB of `length_dw` dwords, if it does: length bits \[27:24\] are
/// ORed into dw3's VMID field (see [`cp_ib_dwords`]), so the CP fetches the IB through another
/// VMID's page table; the emulator reports that as a VM fault of the job.
fn cp_ib_vmid_fault(length_dw: u32) -> Option<String> {
    let spill = pm4rt_core::pm4::tables::fields::IB_VMID.get(length_dw);
    (spill != 0).then(|| {
        format!(
            "IB of {length_dw} dwords: gfx_v12_0_ring_emit_ib_compute ORs length bits [27:24] \
             ({spill:#x}) into the INDIRECT_BUFFER VMID field; the CP fetches through another VM"
        )
    })
}

/// `amdgpu_cs_ioctl`: parser_init, pass1, pass2, parser_bos, submit.
pub(crate) fn cs(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: CsIn = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    s.sync_engine()?;
    // amdgpu_cs_vm_handling: the job waits for the VM's last page-table update.
    super::syncobj::complete_updates(&mut s, fd, u64::MAX);
    // amdgpu_cs_parser_init.
    if a.num_chunks == 0 {
        return Err(s.fail(Errno::EINVAL, "amdgpu_cs_parser_init: num_chunks == 0"));
    }
    let Some(ctx) = s.file(fd)?.ctxs.get(&a.ctx_id) else {
        return Err(
            s.fail(Errno::EINVAL, format!("amdgpu_cs_parser_init: no context {}", a.ctx_id))
        );
    };
    if ctx.guilty {
        return Err(s.fail(Errno::ECANCELED, "amdgpu_cs_parser_init: context is guilty"));
    }
    let ctx_generation = ctx.generation;
    // amdgpu_cs_pass1.
    let n = a.num_chunks as usize;
    let arr = user
        .read(a.chunks, n.checked_mul(8).ok_or(Errno::EFAULT)?)
        .map_err(|e| s.fail(e, "amdgpu_cs_pass1: chunk array unreadable"))?;
    let mut ibs: Vec<IbJob> = Vec::new();
    let mut per_entity: HashMap<(u32, u32), u32> = HashMap::new();
    let mut chunk_list: Option<Vec<Arc<GemObject>>> = None;
    for ptr in arr.chunks_exact(8) {
        let ptr = u64::from_le_bytes(ptr.try_into().map_err(|_| Errno::EFAULT)?);
        let cb = user.read(ptr, 16).map_err(|e| s.fail(e, "amdgpu_cs_pass1: chunk unreadable"))?;
        let chunk: CsChunk = decode_arg_zext(&cb);
        let size = chunk.length_dw as usize * 4;
        let data = user
            .read(chunk.chunk_data, size)
            .map_err(|e| s.fail(e, "amdgpu_cs_pass1: chunk data unreadable"))?;
        match chunk.chunk_id {
            AMDGPU_CHUNK_ID_IB => {
                if size < std::mem::size_of::<CsChunkIb>() {
                    return Err(s.fail(
                        Errno::EINVAL,
                        format!("amdgpu_cs_pass1: IB chunk of {size} bytes < 32"),
                    ));
                }
                let ib: CsChunkIb = decode_arg_zext(&data);
                let key = entity_key(&mut s, ib.ip_type, ib.ip_instance, ib.ring)?;
                let count = per_entity.entry(key).or_insert(0);
                if *count >= MAX_IBS {
                    return Err(s.fail(
                        Errno::EINVAL,
                        "amdgpu_cs_p1_ib: more than amdgpu_ring_max_ibs IBs",
                    ));
                }
                *count += 1;
                ibs.push(IbJob { key, va: ib.va_start, bytes: ib.ib_bytes });
            }
            AMDGPU_CHUNK_ID_FENCE => {
                if size < std::mem::size_of::<CsChunkFence>() {
                    return Err(s.fail(Errno::EINVAL, "amdgpu_cs_pass1: FENCE chunk too small"));
                }
                let f: CsChunkFence = decode_arg_zext(&data);
                let Some(g) = lookup(s.file(fd)?, f.handle) else {
                    return Err(s.fail(Errno::EINVAL, "amdgpu_cs_p1_user_fence: no such handle"));
                };
                if g.size != PAGE_SIZE || u64::from(f.offset) + 8 > g.size {
                    return Err(s.fail(
                        Errno::EINVAL,
                        "amdgpu_cs_p1_user_fence: BO not one page or offset too large",
                    ));
                }
                return Err(s.fail(
                    Errno::EINVAL,
                    "user fence chunks are not emulated (emulator limitation)",
                ));
            }
            AMDGPU_CHUNK_ID_BO_HANDLES => {
                if size < std::mem::size_of::<BoListIn>() {
                    return Err(
                        s.fail(Errno::EINVAL, "amdgpu_cs_pass1: BO_HANDLES chunk too small")
                    );
                }
                let l: BoListIn = decode_arg_zext(&data);
                chunk_list = Some(read_bo_list(&mut s, fd, &l, user)?);
            }
            AMDGPU_CHUNK_ID_SYNCOBJ_IN if size >= 4 => {
                // amdgpu_syncobj_lookup_and_add -> drm_syncobj_find_fence: no syncobjs exist.
                return Err(s.fail(Errno::ENOENT, "drm_syncobj_find_fence: unknown syncobj"));
            }
            AMDGPU_CHUNK_ID_SYNCOBJ_OUT if size >= 4 => {
                return Err(s.fail(Errno::EINVAL, "amdgpu_cs_p2_syncobj_out: unknown syncobj"));
            }
            AMDGPU_CHUNK_ID_DEPENDENCIES
            | AMDGPU_CHUNK_ID_SYNCOBJ_IN
            | AMDGPU_CHUNK_ID_SYNCOBJ_OUT => {
                // One in-order queue: dependencies are already satisfied.
            }
            id if CHUNK_ID_OTHER_KNOWN.contains(&id) => {}
            id => {
                return Err(s.fail(Errno::EINVAL, format!("amdgpu_cs_pass1: unknown chunk id {id}")))
            }
        }
    }
    if ibs.is_empty() {
        return Err(s.fail(Errno::EINVAL, "amdgpu_cs_pass1: no IB chunk (gang_size 0)"));
    }
    if ctx_generation != s.vram_lost_counter {
        return Err(
            s.fail(Errno::ECANCELED, "amdgpu_cs_pass1: VRAM lost since the context was created")
        );
    }
    // amdgpu_cs_parser_bos.
    let resident = if a.bo_list_handle != 0 {
        if chunk_list.is_some() {
            return Err(
                s.fail(Errno::EINVAL, "amdgpu_cs_parser_bos: both bo_list_handle and BO_HANDLES")
            );
        }
        match s.file(fd)?.bo_lists.get(&a.bo_list_handle) {
            Some(l) => l.clone(),
            None => {
                return Err(s.fail(
                    Errno::ENOENT,
                    format!("amdgpu_bo_list_get: no list {}", a.bo_list_handle),
                ))
            }
        }
    } else {
        chunk_list.unwrap_or_default()
    };
    // amdgpu_cs_submit: the fence is on the gang leader's (last IB's) entity.
    let leader = ibs.last().map(|j| j.key).ok_or(Errno::EINVAL)?;
    s.jobs += 1;
    let state = if s.hang_after.is_some_and(|n| s.jobs > n) {
        FenceState::Hung
    } else if let Some(why) = non_resident(&s, fd, &ibs, &resident) {
        s.last_error = Some(format!("job faulted (emulated eviction): {why}"));
        FenceState::Error(Errno::ETIME)
    } else if let Some(why) = ibs.iter().find_map(|j| cp_ib_vmid_fault(j.bytes / 4)) {
        s.last_error = Some(format!("job faulted: {why}"));
        FenceState::Error(Errno::ETIME)
    } else {
        let engine = Arc::clone(&s.engine);
        let first = engine.submitted() + 1;
        let mut last = first - 1;
        for j in &ibs {
            let dwords = cp_ib_dwords(j.bytes / 4);
            if dwords == 0 {
                continue;
            }
            match engine.submit(Work::Ib { va: j.va, dwords }) {
                Ok(seq) => last = seq,
                Err(Error::DeviceLost { .. }) => break,
                Err(e) => {
                    s.last_error = Some(format!("job faulted: {e}"));
                    break;
                }
            }
        }
        FenceState::Engine { gen: s.engine_gen, first, last }
    };
    let guilty = matches!(state, FenceState::Error(_));
    let file = s.file(fd)?;
    let ctx = file.ctxs.get_mut(&a.ctx_id).ok_or(Errno::EINVAL)?;
    ctx.guilty |= guilty;
    let ent = ctx.entities.entry(leader).or_insert_with(Entity::default);
    let seq = ent.next_seq;
    ent.next_seq += 1;
    ent.fences.insert(seq, state);
    // WAIT_CS treats a sequence SCHED_JOBS behind the newest as signalled without looking
    // it up, so keep only that window (the kernel's fence ring is as small).
    if let Some(old) = seq.checked_sub(SCHED_JOBS) {
        ent.fences.remove(&old);
    }
    answer(kdata, &CsOut { handle: seq })
}

/// Why an IB is not fully backed by resident BOs (see the module docs), if it is not.
fn non_resident(s: &State, fd: Fd, ibs: &[IbJob], resident: &[Arc<GemObject>]) -> Option<String> {
    let file = s.files.get(&fd.0)?;
    for j in ibs {
        let len = u64::from(j.bytes / 4) * 4;
        let mut cur = j.va & GMC_HOLE_MASK;
        let end = cur.saturating_add(len);
        while cur < end {
            let hit = file.vm.range(..=cur).next_back().filter(|(st, m)| cur - **st < m.size);
            let Some((&start, m)) = hit else {
                return Some(format!("IB byte at VA {cur:#x} is not mapped"));
            };
            let ok = m.gem.flags & AMDGPU_GEM_CREATE_VM_ALWAYS_VALID != 0
                || resident.iter().any(|r| Arc::ptr_eq(r, &m.gem));
            if !ok {
                return Some(format!(
                    "IB at VA {:#x} lies in BO handle {} which is not in the submission's BO list",
                    j.va, m.handle
                ));
            }
            cur = start + m.size;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// WAIT_CS
// ---------------------------------------------------------------------------------------------

/// CLOCK_MONOTONIC in ns (`ktime_get`).
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// `amdgpu_cs_wait_ioctl` with `amdgpu_gem_timeout` (absolute CLOCK_MONOTONIC ns; a
/// negative value as i64 is infinite).
pub(crate) fn wait_cs(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: WaitCsIn = decode(kdata);
    let (timeout, fence) = {
        let mut s = dev.lock();
        s.file(fd)?;
        s.sync_engine()?;
        let cap = s.preset.wait_cap;
        let timeout = if (a.timeout as i64) < 0 {
            cap
        } else {
            Duration::from_nanos(a.timeout.saturating_sub(monotonic_ns())).min(cap)
        };
        if !s.file(fd)?.ctxs.contains_key(&a.ctx_id) {
            return Err(
                s.fail(Errno::EINVAL, format!("amdgpu_cs_wait_ioctl: no context {}", a.ctx_id))
            );
        }
        let key = entity_key(&mut s, a.ip_type, a.ip_instance, a.ring)?;
        let ctx = s.file(fd)?.ctxs.get(&a.ctx_id).ok_or(Errno::EINVAL)?;
        let (next, f) = match ctx.entities.get(&key) {
            Some(e) => (e.next_seq, e.fences.get(&a.handle).copied()),
            None => (1, None),
        };
        // amdgpu_ctx_get_fence: a future sequence is -EINVAL; one older than the ring of
        // amdgpu_sched_jobs fences (or 0) counts as signalled.
        if a.handle >= next {
            return Err(s.fail(
                Errno::EINVAL,
                format!("amdgpu_ctx_get_fence: sequence {} not issued", a.handle),
            ));
        }
        let f = if a.handle + SCHED_JOBS < next { None } else { f };
        (timeout, f.map(|f| (f, Arc::clone(&s.engine), s.engine_gen)))
    };
    let status = match fence {
        None | Some((FenceState::Done, ..)) => AMDGPU_WAIT_CS_RETIRED,
        Some((FenceState::Error(e), ..)) => return Err(e),
        Some((FenceState::Hung, ..)) => {
            std::thread::sleep(timeout);
            AMDGPU_WAIT_CS_BUSY
        }
        Some((FenceState::Engine { gen, last, .. }, engine, cur_gen)) => {
            if gen != cur_gen {
                // Resolved by a reset in the meantime: look again.
                return wait_cs_again(dev, fd, kdata, &a);
            }
            if last == 0 {
                AMDGPU_WAIT_CS_RETIRED
            } else {
                match engine.wait(last, timeout) {
                    Ok(()) => AMDGPU_WAIT_CS_RETIRED,
                    Err(Error::Timeout { .. }) => AMDGPU_WAIT_CS_BUSY,
                    Err(_) => return wait_cs_again(dev, fd, kdata, &a),
                }
            }
        }
    };
    answer(kdata, &WaitCsOut { status })
}

/// After the engine halted during a wait: apply the reset and report the fence's outcome.
fn wait_cs_again(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    a: &WaitCsIn,
) -> Result<(), Errno> {
    let mut s = dev.lock();
    s.sync_engine()?;
    let f = s
        .file(fd)?
        .ctxs
        .get(&a.ctx_id)
        .and_then(|c| c.entities.get(&(a.ip_type, a.ring)))
        .and_then(|e| e.fences.get(&a.handle).copied());
    match f {
        Some(FenceState::Error(e)) => Err(e),
        Some(FenceState::Hung) | Some(FenceState::Engine { .. }) => {
            answer(kdata, &WaitCsOut { status: AMDGPU_WAIT_CS_BUSY })
        }
        _ => answer(kdata, &WaitCsOut { status: AMDGPU_WAIT_CS_RETIRED }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dw3 = VALID | length | vmid << 24 (gfx_v12_0_ring_emit_ib_compute), IB_SIZE = [19:0],
    /// VMID = [27:24].
    #[test]
    fn the_cp_reads_20_bits_of_length_and_faults_when_it_spills_into_vmid() {
        assert_eq!(cp_ib_dwords(8), 8);
        assert_eq!(cp_ib_dwords(0xF_FFFF), 0xF_FFFF);
        assert_eq!(cp_ib_dwords(0x10_0000), 0);
        assert_eq!(cp_ib_dwords(0x10_0005), 5);
        assert_eq!(cp_ib_dwords(0x30_0007), 7);
        assert!(cp_ib_vmid_fault(0xFF_FFFF).is_none());
        assert!(cp_ib_vmid_fault(0x100_0000).is_some());
        assert!(cp_ib_vmid_fault(0x300_0010).unwrap().contains("0x3"));
    }
}
