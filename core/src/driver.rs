//! The [`Driver`] trait: the syscall boundary between the backends and the kernel.
//!
//! Backends (cs, kfd, umq) never call the OS directly; they talk to a `Driver`. Two
//! implementations exist: `LinuxDriver` (pm4rt-backends, real syscalls through rustix) and the
//! emulated amdgpu / KFD device (pm4rt-sim), which decodes every ioctl from its raw argument
//! bytes and validates it the way the kernel does.
//!
//! ## Nested user pointers
//!
//! Many ioctl structs carry pointers to further user memory (CS chunk arrays, BO lists, MQDs,
//! aperture arrays). A caller puts such memory in `user` slices and stores
//! [`user_ptr`]`(slice)` into the pointer field. The Linux driver simply passes `arg` to the
//! kernel (the addresses are real). The emulated device resolves each pointer field by finding
//! the `user` slice that contains it, and fails with `EFAULT` exactly where the kernel's
//! `copy_from_user` would: so a backend that forgets to supply a buffer fails on the emulator
//! too.

use std::fmt;

/// A positive `errno` value returned by a failing system call.
///
/// The named values (and their names, [`Errno::name`]) come from one table: the errnos the
/// amdgpu and KFD drivers return (`include/uapi/asm-generic/errno-base.h`,
/// `include/uapi/asm-generic/errno.h`, and `include/linux/errno.h` for the kernel-internal
/// `ENOTSUPP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// Declares the named [`Errno`] constants and the name table from one list.
macro_rules! errnos {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        impl Errno {
            $($(#[$doc])* pub const $name: Errno = Errno($value);)*

            /// Every named errno, with its symbolic name.
            pub const TABLE: &'static [(Errno, &'static str)] =
                &[$((Errno::$name, stringify!($name)),)*];
        }
    };
}

errnos! {
    /// Operation not permitted.
    EPERM = 1,
    /// No such file or directory.
    ENOENT = 2,
    /// Interrupted system call (retried by the Linux driver).
    EINTR = 4,
    /// I/O error.
    EIO = 5,
    /// Bad file descriptor.
    EBADF = 9,
    /// Try again (retried by the Linux driver).
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// Permission denied.
    EACCES = 13,
    /// Bad address (a user pointer the kernel cannot read).
    EFAULT = 14,
    /// Device or resource busy.
    EBUSY = 16,
    /// File exists.
    EEXIST = 17,
    /// No such device.
    ENODEV = 19,
    /// Invalid argument.
    EINVAL = 22,
    /// Inappropriate ioctl for device.
    ENOTTY = 25,
    /// No space left.
    ENOSPC = 28,
    /// Timer expired.
    ETIME = 62,
    /// Operation not supported.
    EOPNOTSUPP = 95,
    /// Connection timed out.
    ETIMEDOUT = 110,
    /// Operation canceled (amdgpu: the context was reset or VRAM was lost).
    ECANCELED = 125,
    /// Kernel-internal "not supported" (amdgpu USERQ when no IP has user queues).
    ENOTSUPP = 524,
}

impl Errno {
    /// The symbolic name (`"EINVAL"`), or `"unknown errno"` for a value not in
    /// [`Errno::TABLE`].
    pub fn name(self) -> &'static str {
        Errno::TABLE.iter().find(|(e, _)| *e == self).map_or("unknown errno", |&(_, n)| n)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// The render node pm4rt opens when none is configured (the first render node).
pub const DEFAULT_RENDER_NODE: &str = "/dev/dri/renderD128";

/// An open file descriptor handed out by a [`Driver`]. Close it with [`Driver::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fd(pub i32);

/// The address of a user buffer, as stored into an ioctl struct's pointer field.
pub fn user_ptr(buf: &[u8]) -> u64 {
    buf.as_ptr() as usize as u64
}

/// CPU access to memory mapped by [`Driver::mmap`]: a BO, a ring, a doorbell page.
///
/// Every access is bounds checked. Dropping the mapping unmaps it.
pub trait Mapping: Send + Sync + fmt::Debug {
    /// The CPU address of the first byte (equal to the GPU VA for KFD BOs).
    fn addr(&self) -> u64;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// True when the mapping has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy bytes out of the mapping. Errors with `EFAULT` when out of bounds.
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno>;
    /// Copy bytes into the mapping. Errors with `EFAULT` when out of bounds.
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno>;
    /// An 8-byte aligned 64-bit load with acquire ordering (fence and rptr polling).
    fn load_u64(&self, offset: usize) -> Result<u64, Errno>;
    /// An 8-byte aligned 64-bit store with release ordering: every earlier write to any
    /// mapping is visible before it (wptr and doorbell writes).
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno>;
}

/// Where an [`Driver::mmap`] should place the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapAt {
    /// Anywhere the OS picks.
    Anywhere,
    /// Exactly at this CPU address, replacing a reservation made by [`Driver::reserve_va`].
    Fixed(u64),
}

/// The system calls the backends need, and nothing more.
///
/// Implementations: `LinuxDriver` (real), the emulated device (pm4rt-sim), and mockall mocks
/// in tests.
pub trait Driver: Send + Sync {
    /// Open a device node (read-write, close-on-exec).
    fn open(&self, path: &str) -> Result<Fd, Errno>;
    /// Close a descriptor from [`Driver::open`].
    fn close(&self, fd: Fd) -> Result<(), Errno>;
    /// Issue `request` on `fd` with the argument struct `arg` (its bytes are the struct; the
    /// kernel may write results back into it). `user` holds the buffers that pointer fields
    /// of `arg` (or of other `user` buffers) point to; see the module docs.
    fn ioctl(
        &self,
        fd: Fd,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<(), Errno>;
    /// Map `len` bytes of `fd` at file `offset`, readable and writable, shared.
    fn mmap(&self, fd: Fd, offset: u64, len: usize, at: MapAt) -> Result<Box<dyn Mapping>, Errno>;
    /// Reserve `len` bytes of CPU address space aligned to `align` (no access), for a later
    /// [`MapAt::Fixed`] mapping. Returns the address; [`Driver::release_va`] frees it.
    fn reserve_va(&self, len: usize, align: usize) -> Result<u64, Errno>;
    /// Release a reservation from [`Driver::reserve_va`].
    fn release_va(&self, addr: u64, len: usize) -> Result<(), Errno>;
    /// Read a whole (sysfs) text file.
    fn read_file(&self, path: &str) -> Result<String, Errno>;
    /// The names in a directory (sysfs topology), sorted.
    fn list_dir(&self, path: &str) -> Result<Vec<String>, Errno>;
    /// The running kernel's release string (`uname -r`).
    fn kernel_release(&self) -> Result<String, Errno>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from `include/uapi/asm-generic/errno-base.h` / `errno.h` and
    /// `include/linux/errno.h` (ENOTSUPP), names as the headers spell them.
    #[test]
    fn errno_names_come_from_the_one_table() {
        assert_eq!(Errno(22).name(), "EINVAL");
        assert_eq!(Errno(62).name(), "ETIME");
        assert_eq!(Errno(125).name(), "ECANCELED");
        assert_eq!(Errno(524).name(), "ENOTSUPP");
        assert_eq!(Errno(3).name(), "unknown errno");
        assert_eq!(Errno::EFAULT.to_string(), "EFAULT (14)");
        assert_eq!(crate::error::errno_name(19), "ENODEV");
        for (i, (e, n)) in Errno::TABLE.iter().enumerate() {
            for (f, m) in &Errno::TABLE[i + 1..] {
                assert!(e != f && n != m, "{n} and {m} collide");
            }
        }
    }
}
