//! Typed wrappers over the amdgpu DRM ioctls shared by the cs and umq tiers: open, `INFO`,
//! `GEM_CREATE`, `GEM_MMAP`, `GEM_VA`, `GEM_CLOSE`, close.
//!
//! Every wrapper counts the ioctl it issues (success or failure) and turns a failing errno into
//! [`Error::Io`] naming its step (the `STEP_*` constants, which tests match on). Pointer fields
//! of an argument point into `user` slices passed alongside (see [`pm4rt_core::driver`]).
//! Tier-specific ioctls (cs: `CTX`, `CS`, `WAIT_CS`; umq: `USERQ`) live in the tier's module as
//! further `impl Dev` blocks built on [`Dev::call`].

use std::sync::Arc;

use bytemuck::Pod;
use pm4rt_core::abi::drm::{
    GemClose, GemCreateIn, GemCreateOut, GemMmapIn, GemMmapOut, GemVa, Info, InfoQueryHwIp,
    AMDGPU_VA_OP_UNMAP, DRM_IOCTL_AMDGPU_GEM_CREATE, DRM_IOCTL_AMDGPU_GEM_MMAP,
    DRM_IOCTL_AMDGPU_GEM_VA, DRM_IOCTL_AMDGPU_INFO, DRM_IOCTL_GEM_CLOSE,
};
use pm4rt_core::abi::ioctl::{arg_for, decode_arg_zext};
use pm4rt_core::driver::user_ptr;
use pm4rt_core::{Driver, Error, Fd, Result};

use crate::common::counted_fd::{self, CountedFd};

/// Step name: opening the render node.
pub const STEP_OPEN: &str = "open";
/// Step name: `INFO` with `AMDGPU_INFO_HW_IP_INFO`.
pub const STEP_INFO_HW_IP: &str = "INFO HW_IP_INFO";
/// Step name: `INFO` with `AMDGPU_INFO_DEV_INFO`.
pub const STEP_INFO_DEV: &str = "INFO DEV_INFO";
/// Step name: `GEM_CREATE`.
pub const STEP_GEM_CREATE: &str = "GEM_CREATE";
/// Step name: `GEM_MMAP` (asking for the mmap offset).
pub const STEP_GEM_MMAP: &str = "GEM_MMAP";
/// Step name: mapping a BO into the CPU address space.
pub const STEP_MMAP: &str = "mmap";
/// Step name: `GEM_VA` with `AMDGPU_VA_OP_MAP`.
pub const STEP_VA_MAP: &str = "GEM_VA MAP";
/// Step name: `GEM_VA` with `AMDGPU_VA_OP_UNMAP`.
pub const STEP_VA_UNMAP: &str = "GEM_VA UNMAP";
/// Step name: DRM core `GEM_CLOSE`.
pub const STEP_GEM_CLOSE: &str = "GEM_CLOSE";
/// Step name: closing the render node (a close on drop, whose error is ignored).
pub const STEP_CLOSE: &str = "close";
/// Step name: a CPU read or write through a BO's mapping.
pub const STEP_BO_ACCESS: &str = "BO CPU access";

/// The open render node: driver, descriptor and the ioctl counter.
pub(crate) struct Dev {
    io: CountedFd,
}

/// Copy `value`'s bytes to the start of `dst` (which must be at least that long).
pub(crate) fn store<T: Pod>(dst: &mut [u8], value: &T) {
    let bytes = bytemuck::bytes_of(value);
    dst[..bytes.len()].copy_from_slice(bytes);
}

impl Dev {
    /// Open `path` through `driver`. Counts no ioctl.
    pub(crate) fn open(driver: Arc<dyn Driver>, path: &str) -> Result<Dev> {
        let fd = driver.open(path).map_err(|e| Error::io(STEP_OPEN, e))?;
        Ok(Dev { io: CountedFd::new(driver, fd) })
    }

    /// Ioctls issued so far.
    pub(crate) fn ioctls(&self) -> u64 {
        self.io.ioctls()
    }

    /// The driver (for mmap).
    pub(crate) fn driver(&self) -> &Arc<dyn Driver> {
        self.io.driver()
    }

    /// The render-node descriptor.
    pub(crate) fn fd(&self) -> Fd {
        self.io.fd()
    }

    /// Issue one ioctl, counting it; a failure becomes [`Error::Io`] naming `step`.
    pub(crate) fn call(
        &mut self,
        step: &'static str,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<()> {
        self.io.call(step, request, arg, user)
    }

    /// Decode an ioctl's output struct from its argument bytes.
    pub(crate) fn decode<T: Pod>(step: &'static str, arg: &[u8]) -> Result<T> {
        counted_fd::decode(step, arg)
    }

    /// `INFO` query `query` (with the `query_hw_ip` view when `hw_ip` is given) into a `T`.
    /// A shorter answer (older kernel) leaves the tail zero.
    pub(crate) fn info<T: Pod>(
        &mut self,
        step: &'static str,
        query: u32,
        hw_ip: InfoQueryHwIp,
    ) -> Result<T> {
        let mut out = vec![0u8; std::mem::size_of::<T>()];
        let info = Info::with_hw_ip(query, hw_ip, user_ptr(&out), out.len() as u32);
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_INFO, &info);
        self.call(step, DRM_IOCTL_AMDGPU_INFO, &mut arg, &mut [&mut out[..]])?;
        Ok(decode_arg_zext(&out))
    }

    /// `GEM_CREATE`; returns the GEM handle.
    pub(crate) fn gem_create(&mut self, input: GemCreateIn) -> Result<u32> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_GEM_CREATE, &input);
        self.call(STEP_GEM_CREATE, DRM_IOCTL_AMDGPU_GEM_CREATE, &mut arg, &mut [])?;
        Ok(Self::decode::<GemCreateOut>(STEP_GEM_CREATE, &arg)?.handle)
    }

    /// `GEM_MMAP`: the offset at which to mmap the render node for `handle`.
    pub(crate) fn gem_mmap_offset(&mut self, handle: u32) -> Result<u64> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_GEM_MMAP, &GemMmapIn { handle, pad: 0 });
        self.call(STEP_GEM_MMAP, DRM_IOCTL_AMDGPU_GEM_MMAP, &mut arg, &mut [])?;
        Ok(Self::decode::<GemMmapOut>(STEP_GEM_MMAP, &arg)?.addr_ptr)
    }

    pub(crate) fn gem_va(&mut self, step: &'static str, va: GemVa) -> Result<()> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_GEM_VA, &va);
        self.call(step, DRM_IOCTL_AMDGPU_GEM_VA, &mut arg, &mut [])
    }

    /// `GEM_VA MAP` of the whole BO `handle` (`size` bytes) at `va` with `flags`, signalling
    /// no syncobj (`vm_timeline_syncobj_out` 0 = none, `amdgpu_gem_va_ioctl`).
    pub(crate) fn va_map(&mut self, handle: u32, va: u64, size: u64, flags: u32) -> Result<()> {
        self.va_map_signalling(handle, va, size, flags, 0, 0)
    }

    /// `GEM_VA UNMAP` of the mapping of `handle` at `va` (same size and flags as mapped, the
    /// way libdrm's `amdgpu_bo_va_op` repeats them; the kernel only needs handle and VA).
    pub(crate) fn va_unmap(&mut self, handle: u32, va: u64, size: u64, flags: u32) -> Result<()> {
        self.gem_va(
            STEP_VA_UNMAP,
            GemVa {
                handle,
                operation: AMDGPU_VA_OP_UNMAP,
                flags,
                va_address: va,
                offset_in_bo: 0,
                map_size: size,
                ..Default::default()
            },
        )
    }

    /// DRM core `GEM_CLOSE`.
    pub(crate) fn gem_close(&mut self, handle: u32) -> Result<()> {
        let mut arg = arg_for(DRM_IOCTL_GEM_CLOSE, &GemClose { handle, pad: 0 });
        self.call(STEP_GEM_CLOSE, DRM_IOCTL_GEM_CLOSE, &mut arg, &mut [])
    }
}
