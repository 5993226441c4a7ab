//! A [`Driver`] in front of the emulated device that, once armed, drops the CPU's 64-bit
//! stores at offset 0 of render-node mappings: the write-pointer store of the kfd and umq
//! tiers' submit path (their doorbell stores go to the `/dev/kfd` doorbell page, or to byte
//! `doorbell_index * 8` of the umq doorbell BO, and pass). A queue whose doorbell is rung
//! without the write pointer stored must run nothing new.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pm4rt_core::driver::{Driver, Errno, Fd, MapAt, Mapping};
use pm4rt_sim::emu::EmulatedDevice;

/// See the module docs.
#[derive(Debug)]
pub struct LostWptr {
    pub dev: Arc<EmulatedDevice>,
    pub armed: Arc<AtomicBool>,
    kfd_fds: Mutex<Vec<i32>>,
}

impl LostWptr {
    pub fn new(dev: Arc<EmulatedDevice>) -> Arc<LostWptr> {
        Arc::new(LostWptr { dev, armed: Arc::default(), kfd_fds: Mutex::default() })
    }
}

#[derive(Debug)]
struct Lossy {
    inner: Box<dyn Mapping>,
    armed: Arc<AtomicBool>,
}

impl Mapping for Lossy {
    fn addr(&self) -> u64 {
        self.inner.addr()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        self.inner.read(offset, out)
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        self.inner.write(offset, data)
    }
    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        self.inner.load_u64(offset)
    }
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        if offset == 0 && self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.inner.store_u64(offset, value)
    }
}

impl Driver for LostWptr {
    fn open(&self, path: &str) -> Result<Fd, Errno> {
        let fd = self.dev.open(path)?;
        if path == pm4rt_sim::emu::KFD_PATH {
            self.kfd_fds.lock().unwrap().push(fd.0);
        }
        Ok(fd)
    }
    fn close(&self, fd: Fd) -> Result<(), Errno> {
        self.kfd_fds.lock().unwrap().retain(|&f| f != fd.0);
        self.dev.close(fd)
    }
    fn ioctl(
        &self,
        fd: Fd,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<(), Errno> {
        self.dev.ioctl(fd, request, arg, user)
    }
    fn mmap(&self, fd: Fd, offset: u64, len: usize, at: MapAt) -> Result<Box<dyn Mapping>, Errno> {
        let m = self.dev.mmap(fd, offset, len, at)?;
        if self.kfd_fds.lock().unwrap().contains(&fd.0) {
            return Ok(m);
        }
        Ok(Box::new(Lossy { inner: m, armed: Arc::clone(&self.armed) }))
    }
    fn reserve_va(&self, len: usize, align: usize) -> Result<u64, Errno> {
        self.dev.reserve_va(len, align)
    }
    fn release_va(&self, addr: u64, len: usize) -> Result<(), Errno> {
        self.dev.release_va(addr, len)
    }
    fn read_file(&self, path: &str) -> Result<String, Errno> {
        self.dev.read_file(path)
    }
    fn list_dir(&self, path: &str) -> Result<Vec<String>, Errno> {
        self.dev.list_dir(path)
    }
    fn kernel_release(&self) -> Result<String, Errno> {
        self.dev.kernel_release()
    }
}
