//! Nested user pointers: resolving a pointer field against the caller's `user` slices the way
//! the kernel's `copy_from_user` / `copy_to_user` would (see `pm4rt_core::driver`).

use pm4rt_core::driver::user_ptr;
use pm4rt_core::Errno;

/// The user buffers of one ioctl call.
pub(crate) struct UserMem<'a, 'b> {
    bufs: &'a mut [&'b mut [u8]],
}

impl<'a, 'b> UserMem<'a, 'b> {
    pub(crate) fn new(bufs: &'a mut [&'b mut [u8]]) -> Self {
        UserMem { bufs }
    }

    /// Index and byte offset of the buffer holding `[addr, addr + len)`.
    fn locate(&self, addr: u64, len: usize) -> Result<(usize, usize), Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        for (i, b) in self.bufs.iter().enumerate() {
            let start = user_ptr(b);
            let bend = start + b.len() as u64;
            if addr >= start && end <= bend {
                return Ok((i, (addr - start) as usize));
            }
        }
        Err(Errno::EFAULT)
    }

    /// `copy_from_user`: `len` bytes at `addr`. Zero bytes always succeed (as in the kernel).
    pub(crate) fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let (i, off) = self.locate(addr, len)?;
        Ok(self.bufs[i][off..off + len].to_vec())
    }

    /// `copy_to_user`: store `data` at `addr`.
    pub(crate) fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() {
            return Ok(());
        }
        let (i, off) = self.locate(addr, data.len())?;
        self.bufs[i][off..off + data.len()].copy_from_slice(data);
        Ok(())
    }
}
