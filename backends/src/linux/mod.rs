//! [`LinuxDriver`]: the real [`Driver`], making system calls through rustix.
//!
//! - `open` opens `O_RDWR | O_CLOEXEC`; descriptors are owned by the driver until
//!   [`Driver::close`] (an unknown [`Fd`] is `EBADF`).
//! - `ioctl` passes the raw request number and the argument bytes, retrying `EINTR` and
//!   `EAGAIN` like libdrm's `drmIoctl` (bounded: after [`MAX_IOCTL_RETRIES`] `EAGAIN`s it gives
//!   up with `EAGAIN`).
//! - `mmap` maps `MAP_SHARED`, read-write; [`MapAt::Fixed`] must lie inside a reservation from
//!   [`Driver::reserve_va`] and not overlap another live fixed mapping; dropping such a
//!   mapping puts an inaccessible reservation back instead of leaving a hole.
//! - `reserve_va` makes an anonymous `PROT_NONE` mapping aligned by over-allocating and
//!   trimming; `release_va` only releases an exact reservation with no live mappings in it.
//!
//! This module and its `mapping` submodule ([`LinuxMapping`]) are the only places in
//! pm4rt-backends with `unsafe` code.

mod mapping;

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use pm4rt_core::abi::ioctl::ioc_size;
use pm4rt_core::driver::{Driver, Errno, Fd, MapAt, Mapping};
use rustix::fs::{Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};

pub use mapping::LinuxMapping;

/// How many consecutive `EAGAIN` results [`LinuxDriver`] retries before returning `EAGAIN`.
pub const MAX_IOCTL_RETRIES: u32 = 100_000;

fn errno(e: rustix::io::Errno) -> Errno {
    Errno(e.raw_os_error())
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(Errno::EIO.0))
}

fn page_size() -> usize {
    rustix::param::page_size()
}

/// CPU address space bookkeeping shared by the driver and its fixed mappings.
#[derive(Debug, Default)]
pub(crate) struct VaState {
    /// Reservations: start address -> length.
    reservations: BTreeMap<u64, usize>,
    /// Live fixed mappings inside reservations: start address -> length.
    fixed: BTreeMap<u64, usize>,
}

impl VaState {
    fn reservation_containing(&self, addr: u64, len: usize) -> Option<(u64, usize)> {
        let (&start, &rlen) = self.reservations.range(..=addr).next_back()?;
        let end = addr.checked_add(len as u64)?;
        (end <= start + rlen as u64).then_some((start, rlen))
    }

    fn overlaps_fixed(&self, addr: u64, len: usize) -> bool {
        let end = addr + len as u64;
        self.fixed.range(..end).next_back().is_some_and(|(&s, &l)| s + l as u64 > addr)
    }
}

pub(crate) type SharedVa = Arc<Mutex<VaState>>;

pub(crate) fn lock(va: &SharedVa) -> MutexGuard<'_, VaState> {
    // A panic while holding the lock cannot leave the maps half-updated in a way that
    // matters more than losing the process; keep going with the data.
    va.lock().unwrap_or_else(|p| p.into_inner())
}

/// The real syscall [`Driver`] (Linux only).
#[derive(Debug, Default)]
pub struct LinuxDriver {
    fds: Mutex<HashMap<i32, Arc<OwnedFd>>>,
    va: SharedVa,
}

impl LinuxDriver {
    /// A driver with no open descriptors and no reservations.
    pub fn new() -> Self {
        Self::default()
    }

    fn fd(&self, fd: Fd) -> Result<Arc<OwnedFd>, Errno> {
        let fds = self.fds.lock().unwrap_or_else(|p| p.into_inner());
        fds.get(&fd.0).cloned().ok_or(Errno::EBADF)
    }
}

/// An ioctl call with a raw request number and a byte buffer as its argument.
struct RawIoctl<'a> {
    request: u32,
    arg: &'a mut [u8],
}

// SAFETY: `opcode` is the caller's request number and `as_ptr` points at `arg`, a live,
// exclusively borrowed buffer at least `_IOC_SIZE(request)` bytes long (checked by
// `LinuxDriver::ioctl` before the call), so the kernel's copy_from_user / copy_to_user of the
// argument stays inside it. The output is the plain return value.
unsafe impl rustix::ioctl::Ioctl for RawIoctl<'_> {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> rustix::ioctl::Opcode {
        self.request as rustix::ioctl::Opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        if self.arg.is_empty() {
            std::ptr::null_mut()
        } else {
            self.arg.as_mut_ptr().cast()
        }
    }

    unsafe fn output_from_ptr(
        _out: rustix::ioctl::IoctlOutput,
        _extract_output: *mut c_void,
    ) -> rustix::io::Result<()> {
        Ok(())
    }
}

impl Driver for LinuxDriver {
    fn open(&self, path: &str) -> Result<Fd, Errno> {
        let owned =
            rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).map_err(errno)?;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&owned);
        let mut fds = self.fds.lock().unwrap_or_else(|p| p.into_inner());
        fds.insert(raw, Arc::new(owned));
        Ok(Fd(raw))
    }

    fn close(&self, fd: Fd) -> Result<(), Errno> {
        let mut fds = self.fds.lock().unwrap_or_else(|p| p.into_inner());
        // The descriptor closes when the last in-flight user (an ioctl or mmap holding a
        // clone) lets go of it.
        fds.remove(&fd.0).map(drop).ok_or(Errno::EBADF)
    }

    fn ioctl(
        &self,
        fd: Fd,
        request: u32,
        arg: &mut [u8],
        _user: &mut [&mut [u8]],
    ) -> Result<(), Errno> {
        // The kernel copies _IOC_SIZE(request) bytes in and out of `arg`: it must be that long.
        if arg.len() < ioc_size(request) {
            return Err(Errno::EINVAL);
        }
        let owned = self.fd(fd)?;
        let mut again = 0u32;
        loop {
            let call = RawIoctl { request, arg: &mut *arg };
            // SAFETY: see `impl Ioctl for RawIoctl`: the argument buffer is live, exclusive and
            // large enough for the request's encoded size. Nested user pointers inside `arg`
            // (the `user` buffers) are the caller's: `Driver::ioctl` takes them as `&mut`
            // slices so they are live and unaliased for the duration of this call.
            match unsafe { rustix::ioctl::ioctl(owned.as_fd(), call) } {
                Ok(()) => return Ok(()),
                Err(e) if e == rustix::io::Errno::INTR => continue,
                Err(e) if e == rustix::io::Errno::AGAIN => {
                    again += 1;
                    if again >= MAX_IOCTL_RETRIES {
                        return Err(Errno::EAGAIN);
                    }
                    std::thread::yield_now();
                }
                Err(e) => return Err(errno(e)),
            }
        }
    }

    fn mmap(&self, fd: Fd, offset: u64, len: usize, at: MapAt) -> Result<Box<dyn Mapping>, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let owned = self.fd(fd)?;
        match at {
            MapAt::Anywhere => {
                // SAFETY: a fresh shared mapping at an address the kernel picks; it replaces
                // nothing. The mapping is owned by the returned LinuxMapping, which unmaps it
                // exactly once on drop.
                let ptr = unsafe {
                    rustix::mm::mmap(
                        std::ptr::null_mut(),
                        len,
                        ProtFlags::READ | ProtFlags::WRITE,
                        MapFlags::SHARED,
                        owned.as_fd(),
                        offset,
                    )
                }
                .map_err(errno)?;
                Ok(Box::new(LinuxMapping::anywhere(ptr as u64, len)))
            }
            MapAt::Fixed(addr) => {
                if !addr.is_multiple_of(page_size() as u64) {
                    return Err(Errno::EINVAL);
                }
                let len_pages = len.checked_next_multiple_of(page_size()).ok_or(Errno::ENOMEM)?;
                let mut va = lock(&self.va);
                if va.reservation_containing(addr, len_pages).is_none() {
                    return Err(Errno::EINVAL);
                }
                if va.overlaps_fixed(addr, len_pages) {
                    return Err(Errno::EBUSY);
                }
                // SAFETY: [addr, addr + len_pages) lies inside a PROT_NONE reservation this
                // driver made (checked above) and overlaps no live mapping (checked above,
                // under the same lock), so MAP_FIXED replaces only inaccessible pages no Rust
                // object refers to.
                let ptr = unsafe {
                    rustix::mm::mmap(
                        addr as *mut c_void,
                        len,
                        ProtFlags::READ | ProtFlags::WRITE,
                        MapFlags::SHARED | MapFlags::FIXED,
                        owned.as_fd(),
                        offset,
                    )
                }
                .map_err(errno)?;
                if ptr as u64 != addr {
                    return Err(Errno::EINVAL);
                }
                va.fixed.insert(addr, len_pages);
                drop(va);
                Ok(Box::new(LinuxMapping::fixed(addr, len, len_pages, Arc::clone(&self.va))))
            }
        }
    }

    fn reserve_va(&self, len: usize, align: usize) -> Result<u64, Errno> {
        let page = page_size();
        if len == 0 || (align != 0 && !align.is_power_of_two()) {
            return Err(Errno::EINVAL);
        }
        let align = align.max(page);
        let len = len.checked_next_multiple_of(page).ok_or(Errno::ENOMEM)?;
        let total = len.checked_add(align).ok_or(Errno::ENOMEM)?;
        // SAFETY: a fresh anonymous inaccessible mapping at an address the kernel picks; it
        // replaces nothing.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                total,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(errno)? as u64;
        let start = base.next_multiple_of(align as u64);
        let head = (start - base) as usize;
        let tail = total - head - len;
        // SAFETY: both trims lie inside the mapping just created above and outside the kept
        // range [start, start + len); nothing else refers to them.
        unsafe {
            if head > 0 {
                rustix::mm::munmap(base as *mut c_void, head).map_err(errno)?;
            }
            if tail > 0 {
                rustix::mm::munmap((start + len as u64) as *mut c_void, tail).map_err(errno)?;
            }
        }
        lock(&self.va).reservations.insert(start, len);
        Ok(start)
    }

    fn release_va(&self, addr: u64, len: usize) -> Result<(), Errno> {
        let mut va = lock(&self.va);
        let rlen = *va.reservations.get(&addr).ok_or(Errno::EINVAL)?;
        if len.next_multiple_of(page_size()) != rlen {
            return Err(Errno::EINVAL);
        }
        if va.overlaps_fixed(addr, rlen) {
            return Err(Errno::EBUSY);
        }
        // SAFETY: exactly a reservation this driver made, with no live mapping inside it
        // (checked under the lock), so only inaccessible pages are unmapped.
        unsafe { rustix::mm::munmap(addr as *mut c_void, rlen) }.map_err(errno)?;
        va.reservations.remove(&addr);
        Ok(())
    }

    fn read_file(&self, path: &str) -> Result<String, Errno> {
        std::fs::read_to_string(path).map_err(|e| io_errno(&e))
    }

    fn list_dir(&self, path: &str) -> Result<Vec<String>, Errno> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| io_errno(&e))? {
            let entry = entry.map_err(|e| io_errno(&e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn kernel_release(&self) -> Result<String, Errno> {
        let uname = rustix::system::uname();
        uname.release().to_str().map(str::to_owned).map_err(|_| Errno::EINVAL)
    }
}

impl Drop for LinuxDriver {
    fn drop(&mut self) {
        // Reservations without live mappings are released; ones that still hold a mapping
        // stay until the process exits (the mapping's drop re-reserves its range).
        let mut va = lock(&self.va);
        let reservations: Vec<(u64, usize)> =
            va.reservations.iter().map(|(&a, &l)| (a, l)).collect();
        for (addr, len) in reservations {
            if !va.overlaps_fixed(addr, len) {
                // SAFETY: a reservation of this driver with no live mapping inside (checked
                // under the lock): only inaccessible pages are unmapped.
                if unsafe { rustix::mm::munmap(addr as *mut c_void, len) }.is_ok() {
                    va.reservations.remove(&addr);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
