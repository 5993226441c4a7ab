//! `drm_ioctl` for the emulated device: the declarative ioctl table and the argument copy-in /
//! copy-out rules of drivers/gpu/drm/drm_ioctl.c.

use pm4rt_core::abi::drm as d;
use pm4rt_core::abi::ioctl::{ioc_dir, ioc_nr, ioc_size, ioc_type, IOC_READ, IOC_WRITE};
use pm4rt_core::driver::Fd;
use pm4rt_core::Errno;

use super::user::UserMem;
use super::{drm, syncobj, userq, EmulatedDevice, IoctlFault};

/// A handler: the kernel-side argument buffer (`kdata`, `max(in, out, driver size)` bytes,
/// zero-extended) and the caller's user memory.
pub(crate) type Handler =
    fn(&EmulatedDevice, Fd, &mut [u8], &mut UserMem<'_, '_>) -> Result<(), Errno>;

/// One entry of the table: the kernel's own request number (`cmd_drv`) and the handler.
pub(crate) struct IoctlDesc {
    pub(crate) name: &'static str,
    pub(crate) cmd: u32,
    pub(crate) handler: Handler,
}

/// The ioctls the emulated device implements (`amdgpu_ioctls_kms` subset plus DRM core
/// `GEM_CLOSE` and the `SYNCOBJ_*` the user-queue tier needs).
pub(crate) const TABLE: &[IoctlDesc] = &[
    IoctlDesc { name: "GEM_CREATE", cmd: d::DRM_IOCTL_AMDGPU_GEM_CREATE, handler: drm::gem_create },
    IoctlDesc { name: "GEM_MMAP", cmd: d::DRM_IOCTL_AMDGPU_GEM_MMAP, handler: drm::gem_mmap },
    IoctlDesc { name: "CTX", cmd: d::DRM_IOCTL_AMDGPU_CTX, handler: drm::ctx },
    IoctlDesc { name: "BO_LIST", cmd: d::DRM_IOCTL_AMDGPU_BO_LIST, handler: drm::bo_list },
    IoctlDesc { name: "CS", cmd: d::DRM_IOCTL_AMDGPU_CS, handler: drm::cs },
    IoctlDesc { name: "INFO", cmd: d::DRM_IOCTL_AMDGPU_INFO, handler: drm::info },
    IoctlDesc { name: "GEM_VA", cmd: d::DRM_IOCTL_AMDGPU_GEM_VA, handler: drm::gem_va },
    IoctlDesc { name: "WAIT_CS", cmd: d::DRM_IOCTL_AMDGPU_WAIT_CS, handler: drm::wait_cs },
    IoctlDesc { name: "GEM_CLOSE", cmd: d::DRM_IOCTL_GEM_CLOSE, handler: drm::gem_close },
    IoctlDesc { name: "USERQ", cmd: d::DRM_IOCTL_AMDGPU_USERQ, handler: userq::userq },
    IoctlDesc {
        name: "SYNCOBJ_CREATE",
        cmd: d::DRM_IOCTL_SYNCOBJ_CREATE,
        handler: syncobj::create,
    },
    IoctlDesc {
        name: "SYNCOBJ_DESTROY",
        cmd: d::DRM_IOCTL_SYNCOBJ_DESTROY,
        handler: syncobj::destroy,
    },
    IoctlDesc {
        name: "SYNCOBJ_TIMELINE_WAIT",
        cmd: d::DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
        handler: syncobj::timeline_wait,
    },
];

/// Request numbers (the kernel's own sizes) of every emulated ioctl.
pub const EMULATED_IOCTLS: &[u32] = &[
    d::DRM_IOCTL_AMDGPU_GEM_CREATE,
    d::DRM_IOCTL_AMDGPU_GEM_MMAP,
    d::DRM_IOCTL_AMDGPU_CTX,
    d::DRM_IOCTL_AMDGPU_BO_LIST,
    d::DRM_IOCTL_AMDGPU_CS,
    d::DRM_IOCTL_AMDGPU_INFO,
    d::DRM_IOCTL_AMDGPU_GEM_VA,
    d::DRM_IOCTL_AMDGPU_WAIT_CS,
    d::DRM_IOCTL_GEM_CLOSE,
    d::DRM_IOCTL_AMDGPU_USERQ,
    d::DRM_IOCTL_SYNCOBJ_CREATE,
    d::DRM_IOCTL_SYNCOBJ_DESTROY,
    d::DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
];

/// Names of the emulated ioctls, in table order.
pub fn ioctl_names() -> Vec<&'static str> {
    TABLE.iter().map(|e| e.name).collect()
}

/// `drm_ioctl`: look the command up by nr, copy `in_size` bytes in (zero-extending to the
/// kernel's size), run the handler, copy `out_size` bytes back (even on failure, as
/// drm_ioctl does).
pub(crate) fn dispatch(
    dev: &EmulatedDevice,
    fd: Fd,
    request: u32,
    arg: &mut [u8],
    user: &mut [&mut [u8]],
) -> Result<(), Errno> {
    if dev.lock().kfd.is_kfd(fd) {
        return super::kfd::dispatch(dev, fd, request, arg, user);
    }
    let nr = ioc_nr(request);
    {
        let mut s = dev.lock();
        s.file(fd)?;
        // drm_ioctl: `if (DRM_IOCTL_TYPE(cmd) != DRM_IOCTL_BASE) return -ENOTTY;`
        if ioc_type(request) != d::DRM_IOCTL_BASE {
            return Err(s.fail(Errno::ENOTTY, format!("request {request:#x} is not a DRM ioctl")));
        }
        let s = &mut *s;
        if let (count, Some(e)) = IoctlFault::count_call(&mut s.ioctl_counts, &s.faults, nr) {
            return Err(s.fail(e, format!("injected failure of ioctl nr {nr:#x} call {count}")));
        }
    }
    // drm_ioctl: an nr without a handler keeps `retcode = -EINVAL`.
    let Some(desc) = TABLE.iter().find(|e| ioc_nr(e.cmd) == nr) else {
        return Err(dev.lock().fail(Errno::EINVAL, format!("no ioctl with nr {nr:#x}")));
    };
    let usize_ = ioc_size(request);
    // The kernel would copy_from_user / copy_to_user `_IOC_SIZE(cmd)` bytes from `arg`.
    if arg.len() < usize_ {
        return Err(dev.lock().fail(Errno::EFAULT, "argument shorter than _IOC_SIZE(request)"));
    }
    let dir = ioc_dir(request) & ioc_dir(desc.cmd);
    let in_size = if dir & IOC_WRITE != 0 { usize_ } else { 0 };
    let out_size = if dir & IOC_READ != 0 { usize_ } else { 0 };
    let ksize = in_size.max(out_size).max(ioc_size(desc.cmd));
    let mut kdata = vec![0u8; ksize];
    kdata[..in_size].copy_from_slice(&arg[..in_size]);
    let mut mem = UserMem::new(user);
    let r = (desc.handler)(dev, fd, &mut kdata, &mut mem);
    arg[..out_size].copy_from_slice(&kdata[..out_size]);
    r
}
