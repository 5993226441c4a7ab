//! [`HostMapping`]: a [`Mapping`] over plain host memory, for drivers that back a mapping with
//! bytes of their own (an emulated doorbell page, test doubles of the kernel) instead of a
//! real `mmap`.
//!
//! Contract: an access that does not lie entirely inside the bytes is `EFAULT`, as a real
//! mapping's would fault; 64-bit loads and stores are little-endian. A mapping built with
//! [`HostMapping::counted`] decrements its counter when dropped (what an `munmap` would release),
//! so a driver can count live mappings for leak checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::driver::Mapping;
use crate::errno::Errno;

/// `len` bytes of host memory behind the [`Mapping`] trait (see the module docs).
#[derive(Debug)]
pub struct HostMapping {
    bytes: Mutex<Vec<u8>>,
    addr: u64,
    live: Option<Arc<AtomicUsize>>,
}

impl HostMapping {
    /// `len` zeroed bytes reported at address `addr`.
    pub fn new(len: usize, addr: u64) -> HostMapping {
        HostMapping { bytes: Mutex::new(vec![0; len]), addr, live: None }
    }

    /// The same mapping, counted in `live`: incremented now, decremented on drop.
    pub fn counted(mut self, live: Arc<AtomicUsize>) -> HostMapping {
        live.fetch_add(1, Ordering::SeqCst);
        self.live = Some(live);
        self
    }

    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Mapping for HostMapping {
    fn addr(&self) -> u64 {
        self.addr
    }
    fn len(&self) -> usize {
        self.bytes().len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        let b = self.bytes();
        let end = offset.checked_add(out.len()).ok_or(Errno::EFAULT)?;
        out.copy_from_slice(b.get(offset..end).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let mut b = self.bytes();
        let end = offset.checked_add(data.len()).ok_or(Errno::EFAULT)?;
        b.get_mut(offset..end).ok_or(Errno::EFAULT)?.copy_from_slice(data);
        Ok(())
    }
    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        let mut v = [0u8; 8];
        self.read(offset, &mut v)?;
        Ok(u64::from_le_bytes(v))
    }
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        self.write(offset, &value.to_le_bytes())
    }
}

impl Drop for HostMapping {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_outside_the_bytes_are_efault_and_drop_uncounts() {
        let live = Arc::new(AtomicUsize::new(0));
        let m = HostMapping::new(16, 0x1000).counted(live.clone());
        assert_eq!(live.load(Ordering::SeqCst), 1);
        assert_eq!((m.addr(), m.len()), (0x1000, 16));
        m.store_u64(8, 0x0102_0304_0506_0708).unwrap();
        let mut b = [0u8; 2];
        m.read(8, &mut b).unwrap();
        assert_eq!(b, [0x08, 0x07], "little-endian");
        assert_eq!(m.load_u64(9), Err(Errno::EFAULT));
        assert_eq!(m.write(usize::MAX, &[1]), Err(Errno::EFAULT));
        drop(m);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }
}
