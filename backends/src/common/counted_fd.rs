//! A device descriptor whose ioctls are counted: the syscall wrapper under every tier's typed
//! ioctl functions (`drm::ioctls::Dev` for the render node, `kfd::ioctls::Kfd` for
//! `/dev/kfd`).
//!
//! Every call counts (success or failure) toward [`pm4rt_core::Counters::ioctls`] and a failing
//! errno becomes [`Error::Io`] naming the step. The descriptor is closed when the
//! [`CountedFd`] is dropped (a close error is ignored: nothing is left to release), so it is
//! the first thing a tier's `Resources` acquires and the last it releases.

use std::sync::Arc;

use bytemuck::Pod;
use pm4rt_core::abi::ioctl::decode_arg;
use pm4rt_core::{Driver, Errno, Error, Fd, Result};

/// A driver, one of its descriptors and the number of ioctls issued on it.
pub(crate) struct CountedFd {
    driver: Arc<dyn Driver>,
    fd: Fd,
    ioctls: u64,
}

impl CountedFd {
    /// Wrap the open descriptor `fd` of `driver`.
    pub(crate) fn new(driver: Arc<dyn Driver>, fd: Fd) -> CountedFd {
        CountedFd { driver, fd, ioctls: 0 }
    }

    /// Ioctls issued so far.
    pub(crate) fn ioctls(&self) -> u64 {
        self.ioctls
    }

    /// The driver.
    pub(crate) fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The descriptor.
    pub(crate) fn fd(&self) -> Fd {
        self.fd
    }

    /// Issue one ioctl, counting it.
    ///
    /// Errors: [`Error::Io`] naming `step` with the driver's errno.
    pub(crate) fn call(
        &mut self,
        step: &'static str,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<()> {
        self.ioctls += 1;
        self.driver.ioctl(self.fd, request, arg, user).map_err(|e| Error::io(step, e))
    }
}

impl Drop for CountedFd {
    fn drop(&mut self) {
        let _ = self.driver.close(self.fd);
    }
}

/// Decode an ioctl's output struct from its argument bytes.
///
/// Errors: [`Error::Io`] (`EFAULT`) at `step` when `arg` is shorter than `T`; callers size
/// their buffers with `arg_for`, so this does not happen, but it stays typed.
pub(crate) fn decode<T: Pod>(step: &'static str, arg: &[u8]) -> Result<T> {
    decode_arg(arg).map_err(|_| Error::io(step, Errno::EFAULT))
}
