//! BO lists: BO_LIST CREATE / DESTROY / UPDATE and the entry arrays a CS passes inline
//! (`amdgpu_bo_list.c`).

use super::*;

/// `amdgpu_bo_create_list_entry_array` + `amdgpu_bo_list_create`: the BOs of a list.
pub(super) fn read_bo_list(
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
