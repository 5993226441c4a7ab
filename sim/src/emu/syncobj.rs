//! DRM sync objects (`SYNCOBJ_CREATE` / `DESTROY` / `TIMELINE_WAIT`) and the asynchronous
//! page-table updates of `GEM_VA` they report.
//!
//! # Kernel checks reproduced (drivers/gpu/drm/drm_syncobj.c)
//!
//! - `drm_syncobj_create_ioctl`: flags other than `DRM_SYNCOBJ_CREATE_SIGNALED`: `EINVAL`.
//!   Handles are `idr_alloc(.., 1, 0, ..)`: the lowest free id >= 1.
//! - `drm_syncobj_destroy_ioctl`: `pad` != 0: `EINVAL`; no such handle (`drm_syncobj_destroy`):
//!   `EINVAL`.
//! - `drm_syncobj_timeline_wait_ioctl`: flags outside WAIT_ALL | WAIT_FOR_SUBMIT |
//!   WAIT_AVAILABLE | WAIT_DEADLINE: `EINVAL`; `count_handles` 0: success; unreadable
//!   handle / point arrays: `EFAULT`; a handle that does not exist (`drm_syncobj_array_find`):
//!   `ENOENT`; a point without a fence and no WAIT_FOR_SUBMIT
//!   (`drm_syncobj_array_wait_timeout`): `EINVAL`; not signalled by the absolute
//!   CLOCK_MONOTONIC `timeout_nsec`: `ETIME`.
//! - `amdgpu_gem_va_ioctl` (`amdgpu_gem_update_timeline_node`): a non-zero
//!   `vm_timeline_syncobj_out` that does not exist: `ENOENT`; point 0 replaces the syncobj's
//!   fence, another point adds a timeline point (`drm_syncobj_add_point`).
//!
//! # Page-table updates (the model)
//!
//! A `GEM_VA` MAP is entered in the file's VM at once (the kernel's `amdgpu_vm_bo_map`), but
//! the GPU sees the mapping only once its page-table update has completed. Updates complete
//! in order, deterministically, at these points and no other:
//!
//! - a `SYNCOBJ_TIMELINE_WAIT` (without WAIT_AVAILABLE, not already timed out) on a fence of a
//!   `GEM_VA` completes that update and every earlier one of the file;
//! - a `CS` of the file completes all of them (the kernel makes the job wait for the VM's
//!   last update: `amdgpu_cs_vm_handling`, `vm->last_update`).
//!
//! So a user queue (whose doorbell nothing synchronises with the VM) that uses a mapping
//! whose update was never waited for faults, as it may on hardware. Mesa waits on
//! `vm_timeline_syncobj` before creating its queue (amdgpu_userq.c `amdgpu_userq_init`), IGT
//! likewise. An UNMAP takes effect at once (stricter than the kernel).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::abi::drm::{
    SyncobjCreate, SyncobjDestroy, SyncobjTimelineWait, DRM_SYNCOBJ_CREATE_SIGNALED,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
};
use pm4rt_core::abi::ioctl::{decode_arg_zext, write_arg};
use pm4rt_core::driver::Fd;
use pm4rt_core::Errno;

use super::gem::GemObject;
use super::state::{lowest_free, State};
use super::user::UserMem;
use super::EmulatedDevice;

/// A fence of the emulated device: the number of a page-table update (0: signalled).
pub(crate) type UpdateNo = u64;

/// One sync object: its current fence (`syncobj->fence`, what point 0 waits for) and its
/// timeline points.
#[derive(Debug, Default)]
pub(crate) struct Syncobj {
    fence: Option<UpdateNo>,
    points: BTreeMap<u64, UpdateNo>,
}

/// The page-table updates of one file's VM.
#[derive(Debug)]
pub(crate) struct PtUpdates {
    /// Number of the next update (starts at 1).
    next: UpdateNo,
    /// Every update up to this one has completed.
    done: UpdateNo,
    /// Mappings whose update has not completed: update -> (VA, BO).
    pending: BTreeMap<UpdateNo, (u64, Arc<GemObject>)>,
}

impl Default for PtUpdates {
    fn default() -> Self {
        PtUpdates { next: 1, done: 0, pending: BTreeMap::new() }
    }
}

impl PtUpdates {
    /// Record a MAP of `gem` at `va` whose update is still to come; returns its number.
    pub(crate) fn queue_map(&mut self, va: u64, gem: Arc<GemObject>) -> UpdateNo {
        let n = self.next;
        self.next += 1;
        self.pending.insert(n, (va, gem));
        n
    }

    /// The number of the last update issued (an UNMAP's fence: it took effect at once).
    pub(crate) fn last(&self) -> UpdateNo {
        self.next - 1
    }

    /// Forget a pending MAP of `gem` at `va` (it was unmapped first); true if one was.
    pub(crate) fn cancel(&mut self, va: u64, gem: &Arc<GemObject>) -> bool {
        let before = self.pending.len();
        self.pending.retain(|_, (v, g)| !(*v == va && Arc::ptr_eq(g, gem)));
        self.pending.len() != before
    }

    /// Forget every pending MAP of `gem` (its handle was closed, which unmaps it).
    pub(crate) fn forget(&mut self, gem: &Arc<GemObject>) {
        self.pending.retain(|_, (_, g)| !Arc::ptr_eq(g, gem));
    }

    /// True when a MAP of `gem` is waiting for its update.
    pub(crate) fn has_pending(&self, gem: &Arc<GemObject>) -> bool {
        self.pending.values().any(|(_, g)| Arc::ptr_eq(g, gem))
    }
}

/// The file's syncobjs.
#[derive(Debug, Default)]
pub(crate) struct Syncobjs {
    objs: HashMap<u32, Syncobj>,
}

impl Syncobjs {
    /// Live handles.
    pub(crate) fn count(&self) -> usize {
        self.objs.len()
    }

    /// Whether `handle` exists.
    pub(crate) fn exists(&self, handle: u32) -> bool {
        self.objs.contains_key(&handle)
    }

    /// Attach update `fence` at `point` of `handle`: point 0 replaces the syncobj's fence
    /// (`drm_syncobj_replace_fence`), another point adds a timeline point whose chain becomes
    /// the syncobj's fence (`drm_syncobj_add_point`).
    pub(crate) fn attach(&mut self, handle: u32, point: u64, fence: UpdateNo) {
        if let Some(o) = self.objs.get_mut(&handle) {
            o.fence = Some(fence);
            if point != 0 {
                o.points.insert(point, fence);
            }
        }
    }

    /// The fence at `point` of `handle`: point 0 is the syncobj's fence; a timeline point is
    /// the first point >= it (`dma_fence_chain_find_seqno`), none when the timeline has not
    /// reached it.
    fn fence(&self, handle: u32, point: u64) -> Option<UpdateNo> {
        let o = self.objs.get(&handle)?;
        if point == 0 {
            return o.fence;
        }
        o.points.range(point..).next().map(|(_, &f)| f)
    }
}

/// Complete every page-table update of `fd` up to `upto`: their mappings become visible to
/// the GPU (a mapping removed from the VM meanwhile is skipped).
pub(crate) fn complete_updates(s: &mut State, fd: Fd, upto: UpdateNo) {
    let Some(file) = s.files.get_mut(&fd.0) else { return };
    let upto = upto.min(file.pt.last());
    if upto <= file.pt.done {
        return;
    }
    let later = file.pt.pending.split_off(&(upto + 1));
    let due = std::mem::replace(&mut file.pt.pending, later);
    file.pt.done = upto;
    let mut failed = None;
    for (_, (va, gem)) in due {
        let live = file.vm.get(&va).filter(|m| Arc::ptr_eq(&m.gem, &gem)).map(|m| m.perms);
        if let Some(perms) = live {
            if let Err(e) = s.mem.map(gem.id, va, perms) {
                failed = Some(format!("page-table update of {va:#x}: {e}"));
            }
        }
    }
    if let Some(why) = failed {
        s.last_error = Some(why);
    }
}

/// `drm_syncobj_create_ioctl`.
pub(crate) fn create(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: SyncobjCreate = decode_arg_zext(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    if a.flags & !DRM_SYNCOBJ_CREATE_SIGNALED != 0 {
        return Err(
            s.fail(Errno::EINVAL, format!("drm_syncobj_create_ioctl: flags {:#x}", a.flags))
        );
    }
    let file = s.file(fd)?;
    let handle = lowest_free(&file.syncobjs.objs)?;
    let fence = (a.flags & DRM_SYNCOBJ_CREATE_SIGNALED != 0).then_some(0);
    file.syncobjs.objs.insert(handle, Syncobj { fence, points: BTreeMap::new() });
    write_arg(kdata, &SyncobjCreate { handle, flags: a.flags }).map_err(|_| Errno::EFAULT)
}

/// `drm_syncobj_destroy_ioctl`.
pub(crate) fn destroy(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: SyncobjDestroy = decode_arg_zext(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    if a.pad != 0 {
        return Err(s.fail(Errno::EINVAL, "drm_syncobj_destroy_ioctl: pad != 0"));
    }
    if s.file(fd)?.syncobjs.objs.remove(&a.handle).is_none() {
        return Err(s.fail(Errno::EINVAL, format!("drm_syncobj_destroy: no syncobj {}", a.handle)));
    }
    Ok(())
}

/// CLOCK_MONOTONIC in ns (`ktime_get`).
fn monotonic_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec.saturating_mul(1_000_000_000).saturating_add(t.tv_nsec)
}

/// `drm_syncobj_timeline_wait_ioctl`.
pub(crate) fn timeline_wait(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: SyncobjTimelineWait = decode_arg_zext(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    let known = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL
        | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
        | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE
        | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE;
    if a.flags & !known != 0 {
        return Err(s.fail(
            Errno::EINVAL,
            format!("drm_syncobj_timeline_wait_ioctl: flags {:#x}", a.flags),
        ));
    }
    if a.count_handles == 0 {
        return Ok(());
    }
    let n = a.count_handles as usize;
    let handles = user
        .read(a.handles, n.checked_mul(4).ok_or(Errno::EINVAL)?)
        .map_err(|e| s.fail(e, "drm_syncobj_array_find: handles unreadable"))?;
    let handles: Vec<u32> =
        handles.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let file = s.file(fd)?;
    if let Some(h) = handles.iter().find(|&&h| !file.syncobjs.exists(h)) {
        let h = *h;
        return Err(s.fail(Errno::ENOENT, format!("drm_syncobj_array_find: no syncobj {h}")));
    }
    let points = user
        .read(a.points, n.checked_mul(8).ok_or(Errno::EINVAL)?)
        .map_err(|e| s.fail(e, "drm_syncobj_array_wait: points unreadable"))?;
    let points: Vec<u64> = points
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let file = s.file(fd)?;
    let fences: Vec<Option<UpdateNo>> =
        handles.iter().zip(&points).map(|(&h, &p)| file.syncobjs.fence(h, p)).collect();
    let done = file.pt.done;
    let wait_for_submit = a.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT != 0;
    if fences.iter().any(Option::is_none) {
        if !wait_for_submit {
            return Err(s.fail(
                Errno::EINVAL,
                "drm_syncobj_array_wait_timeout: a point has no fence (no WAIT_FOR_SUBMIT)",
            ));
        }
        // Nothing else runs while this thread holds the device: the point never arrives.
        let now = monotonic_ns();
        let wait = Duration::from_nanos(a.timeout_nsec.saturating_sub(now).max(0) as u64)
            .min(s.preset.wait_cap);
        drop(s);
        std::thread::sleep(wait);
        return Err(dev
            .lock()
            .fail(Errno::ETIME, "drm_syncobj_timeline_wait: point never submitted"));
    }
    if a.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE != 0 {
        return Ok(());
    }
    let fences: Vec<UpdateNo> = fences.into_iter().flatten().collect();
    let signalled = |f: &UpdateNo| *f <= done;
    let ready = if a.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL != 0 {
        fences.iter().all(signalled)
    } else {
        fences.iter().any(signalled)
    };
    if !ready && a.timeout_nsec <= monotonic_ns() {
        // A poll (timeout already passed) does not wait for the update.
        return Err(s.fail(Errno::ETIME, "drm_syncobj_timeline_wait: not signalled (poll)"));
    }
    // Waiting lets the updates complete (in order).
    let upto = if a.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL != 0 {
        fences.iter().copied().max().unwrap_or(0)
    } else {
        fences.iter().copied().min().unwrap_or(0)
    };
    complete_updates(&mut s, fd, upto);
    let first = fences.iter().position(|&f| f <= upto).unwrap_or(0) as u32;
    let out = SyncobjTimelineWait { first_signaled: first, ..a };
    write_arg(kdata, &out).map_err(|_| Errno::EFAULT)
}
