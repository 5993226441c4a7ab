//! DRM sync objects for the page-table updates of `GEM_VA`, as an `impl` block on the shared
//! [`Dev`]: `SYNCOBJ_CREATE`, `SYNCOBJ_DESTROY`, `SYNCOBJ_TIMELINE_WAIT`, and a `GEM_VA MAP`
//! that signals a timeline point when its page-table update is done.
//!
//! `GEM_VA` returns before the page tables are written. The cs tier needs no wait (the
//! kernel makes every CS job depend on the VM's last update) and neither does kfd (its MAP
//! ioctl waits), but nothing orders a user queue's doorbell with the update: Mesa passes
//! `vm_timeline_syncobj_out` / `vm_timeline_point` on every map and waits for the point with
//! `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | WAIT_FOR_SUBMIT` before the queue may use the memory
//! (amdgpu_userq.c `amdgpu_userq_init`; amdgpu_bo.c records each BO's `vm_timeline_point`).

use std::time::Duration;

use pm4rt_core::abi::drm::{
    GemVa, SyncobjCreate, SyncobjDestroy, SyncobjTimelineWait, AMDGPU_VA_OP_MAP,
    DRM_IOCTL_SYNCOBJ_CREATE, DRM_IOCTL_SYNCOBJ_DESTROY, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
};
use pm4rt_core::abi::ioctl::arg_for;
use pm4rt_core::driver::user_ptr;
use pm4rt_core::Result;

use super::ioctls::{Dev, STEP_VA_MAP};
use crate::cs::clock::{absolute_deadline_ns, monotonic_now_ns};

/// Step name: `SYNCOBJ_CREATE`.
pub const STEP_SYNCOBJ_CREATE: &str = "SYNCOBJ_CREATE";
/// Step name: `SYNCOBJ_DESTROY`.
pub const STEP_SYNCOBJ_DESTROY: &str = "SYNCOBJ_DESTROY";
/// Step name: `SYNCOBJ_TIMELINE_WAIT` for a page-table update.
pub const STEP_VM_WAIT: &str = "SYNCOBJ_TIMELINE_WAIT (GEM_VA update)";

impl Dev {
    /// `SYNCOBJ_CREATE` (unsignalled); returns the handle.
    pub(crate) fn syncobj_create(&mut self) -> Result<u32> {
        let mut arg = arg_for(DRM_IOCTL_SYNCOBJ_CREATE, &SyncobjCreate::default());
        self.call(STEP_SYNCOBJ_CREATE, DRM_IOCTL_SYNCOBJ_CREATE, &mut arg, &mut [])?;
        Ok(Dev::decode::<SyncobjCreate>(STEP_SYNCOBJ_CREATE, &arg)?.handle)
    }

    /// `SYNCOBJ_DESTROY`.
    pub(crate) fn syncobj_destroy(&mut self, handle: u32) -> Result<()> {
        let mut arg = arg_for(DRM_IOCTL_SYNCOBJ_DESTROY, &SyncobjDestroy { handle, pad: 0 });
        self.call(STEP_SYNCOBJ_DESTROY, DRM_IOCTL_SYNCOBJ_DESTROY, &mut arg, &mut [])
    }

    /// `SYNCOBJ_TIMELINE_WAIT` for `point` of `handle` (WAIT_ALL | WAIT_FOR_SUBMIT, as
    /// Mesa), at most `timeout` (an absolute CLOCK_MONOTONIC deadline; `ETIME` when it
    /// passes).
    pub(crate) fn syncobj_wait_point(
        &mut self,
        handle: u32,
        point: u64,
        timeout: Duration,
    ) -> Result<()> {
        let mut handles = handle.to_le_bytes();
        let mut points = point.to_le_bytes();
        let deadline = absolute_deadline_ns(monotonic_now_ns(), timeout);
        let wait = SyncobjTimelineWait {
            handles: user_ptr(&handles),
            points: user_ptr(&points),
            timeout_nsec: deadline as i64,
            count_handles: 1,
            flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
            first_signaled: 0,
            pad: 0,
        };
        let mut arg = arg_for(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &wait);
        self.call(
            STEP_VM_WAIT,
            DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
            &mut arg,
            &mut [&mut handles[..], &mut points[..]],
        )
    }

    /// `GEM_VA MAP` of the whole BO `handle` (`size` bytes) at `va` with `flags`, signalling
    /// `point` of the timeline syncobj `syncobj` when the page tables are updated.
    pub(crate) fn va_map_signalling(
        &mut self,
        handle: u32,
        va: u64,
        size: u64,
        flags: u32,
        syncobj: u32,
        point: u64,
    ) -> Result<()> {
        self.gem_va(
            STEP_VA_MAP,
            GemVa {
                handle,
                operation: AMDGPU_VA_OP_MAP,
                flags,
                va_address: va,
                offset_in_bo: 0,
                map_size: size,
                vm_timeline_point: point,
                vm_timeline_syncobj_out: syncobj,
                ..Default::default()
            },
        )
    }
}
