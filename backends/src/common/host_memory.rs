//! Host memory behind the [`Mapping`] trait, for the unit tests of the shared core.

use std::sync::Mutex;

use pm4rt_core::{Errno, Mapping};

/// `len` zeroed bytes; accesses outside them are `EFAULT`, as a real mapping's would fault.
#[derive(Debug)]
pub(crate) struct HostMemory(Mutex<Vec<u8>>);

impl HostMemory {
    /// `len` zeroed bytes.
    pub(crate) fn new(len: usize) -> HostMemory {
        HostMemory(Mutex::new(vec![0; len]))
    }
}

impl Mapping for HostMemory {
    fn addr(&self) -> u64 {
        0
    }
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |v| v.len())
    }
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        let v = self.0.lock().map_err(|_| Errno::EIO)?;
        let end = offset.checked_add(out.len()).ok_or(Errno::EFAULT)?;
        out.copy_from_slice(v.get(offset..end).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let mut v = self.0.lock().map_err(|_| Errno::EIO)?;
        let end = offset.checked_add(data.len()).ok_or(Errno::EFAULT)?;
        v.get_mut(offset..end).ok_or(Errno::EFAULT)?.copy_from_slice(data);
        Ok(())
    }
    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        self.read(offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        self.write(offset, &value.to_le_bytes())
    }
}
