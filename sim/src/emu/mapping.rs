//! The [`Mapping`] returned by the emulated device's `mmap`: a window onto a BO's simulated
//! memory, so CPU writes are what the engine reads and vice versa.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pm4rt_core::{Errno, Mapping};

use super::gem::GemObject;

/// A CPU mapping of (part of) a GEM object. Holds a reference to the object, like a real
/// mmap: the BO stays alive after GEM_CLOSE until the mapping is dropped.
#[derive(Debug)]
pub(crate) struct EmuMapping {
    pub(crate) gem: Arc<GemObject>,
    pub(crate) addr: u64,
    pub(crate) len: usize,
    pub(crate) live: Arc<AtomicUsize>,
}

impl EmuMapping {
    fn check(&self, offset: usize, len: usize) -> Result<u64, Errno> {
        let end = offset.checked_add(len).ok_or(Errno::EFAULT)?;
        if end > self.len {
            return Err(Errno::EFAULT);
        }
        Ok(offset as u64)
    }
}

impl Mapping for EmuMapping {
    fn addr(&self) -> u64 {
        self.addr
    }

    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        let off = self.check(offset, out.len())?;
        self.gem.mem.read_bo(self.gem.id, off, out).map_err(|_| Errno::EFAULT)
    }

    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let off = self.check(offset, data.len())?;
        self.gem.mem.write_bo(self.gem.id, off, data).map_err(|_| Errno::EFAULT)
    }

    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        if offset & 7 != 0 {
            return Err(Errno::EFAULT);
        }
        let mut b = [0u8; 8];
        // GpuMemory takes the BO's lock for the access: it is ordered with the engine's.
        self.read(offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        if offset & 7 != 0 {
            return Err(Errno::EFAULT);
        }
        self.write(offset, &value.to_le_bytes())
    }
}

impl Drop for EmuMapping {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}
