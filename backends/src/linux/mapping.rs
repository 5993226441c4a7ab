//! [`LinuxMapping`]: CPU access to memory mapped by [`super::LinuxDriver`].

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

use pm4rt_core::driver::{Errno, Mapping};
use rustix::mm::{MapFlags, ProtFlags};

use super::{lock, SharedVa};

/// A shared mapping of a device file (a BO, ring, doorbell page). Every access is bounds
/// checked; dropping it unmaps it, or, for a [`pm4rt_core::MapAt::Fixed`] mapping, turns its
/// pages back into an inaccessible reservation.
#[derive(Debug)]
pub struct LinuxMapping {
    addr: u64,
    len: usize,
    /// For fixed mappings: the page-rounded length and the driver's VA bookkeeping.
    fixed: Option<(usize, SharedVa)>,
}

impl LinuxMapping {
    pub(super) fn anywhere(addr: u64, len: usize) -> Self {
        LinuxMapping { addr, len, fixed: None }
    }

    pub(super) fn fixed(addr: u64, len: usize, len_pages: usize, va: SharedVa) -> Self {
        LinuxMapping { addr, len, fixed: Some((len_pages, va)) }
    }

    /// Check `[offset, offset + n)` lies inside the mapping; return its address.
    fn range(&self, offset: usize, n: usize) -> Result<*mut u8, Errno> {
        match offset.checked_add(n) {
            Some(end) if end <= self.len => Ok((self.addr as usize + offset) as *mut u8),
            _ => Err(Errno::EFAULT),
        }
    }

    fn atomic(&self, offset: usize) -> Result<&AtomicU64, Errno> {
        let p = self.range(offset, 8)?;
        if !(p as usize).is_multiple_of(8) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: `p` is 8-byte aligned and the 8 bytes at it lie inside this live mapping
        // (checked above); the mapping outlives the returned reference (it borrows `self`).
        // The memory is shared with the device, which is why it is only touched atomically
        // here.
        Ok(unsafe { AtomicU64::from_ptr(p.cast()) })
    }
}

impl Mapping for LinuxMapping {
    fn addr(&self) -> u64 {
        self.addr
    }

    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        let src = self.range(offset, out.len())?;
        // SAFETY: the source range is inside this live, readable mapping (checked by
        // `range`), and `out` is a distinct Rust buffer, so the ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let dst = self.range(offset, data.len())?;
        // SAFETY: the destination range is inside this live, writable mapping (checked by
        // `range`); the mapping is not Rust-owned memory, so no Rust reference aliases it.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        Ok(())
    }

    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        Ok(self.atomic(offset)?.load(Ordering::Acquire))
    }

    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        self.atomic(offset)?.store(value, Ordering::Release);
        Ok(())
    }
}

impl Drop for LinuxMapping {
    fn drop(&mut self) {
        match &self.fixed {
            None => {
                // SAFETY: this mapping was created by `LinuxDriver::mmap` for exactly
                // [addr, addr + len) and is unmapped once, here; no reference into it
                // survives `self`.
                let _ = unsafe { rustix::mm::munmap(self.addr as *mut c_void, self.len) };
            }
            Some((len_pages, va)) => {
                let mut state = lock(va);
                // SAFETY: [addr, addr + len_pages) is this fixed mapping, inside a reservation
                // of the driver; replacing it with an inaccessible anonymous mapping keeps the
                // reservation intact (no hole another allocation could take).
                let _ = unsafe {
                    rustix::mm::mmap_anonymous(
                        self.addr as *mut c_void,
                        *len_pages,
                        ProtFlags::empty(),
                        MapFlags::PRIVATE | MapFlags::NORESERVE | MapFlags::FIXED,
                    )
                };
                state.fixed.remove(&self.addr);
            }
        }
    }
}
