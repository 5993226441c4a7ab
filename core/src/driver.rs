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

pub use crate::errno::Errno;

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
