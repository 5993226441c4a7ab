//! LinuxDriver tests that need no GPU: error paths, files, and real mappings of a memfd.

use std::os::fd::AsRawFd;

use pm4rt_core::abi::drm::DRM_IOCTL_AMDGPU_INFO;
use pm4rt_core::abi::ioctl::ioc_size;
use pm4rt_core::driver::{Driver, Errno, Fd, MapAt};

use super::LinuxDriver;

const PAGE: usize = 4096;

/// A memfd of `len` bytes, opened through the driver (via /proc/self/fd).
fn memfd(driver: &LinuxDriver, len: u64) -> (std::os::fd::OwnedFd, Fd) {
    let owned = rustix::fs::memfd_create("pm4rt-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&owned, len).unwrap();
    let fd = driver.open(&format!("/proc/self/fd/{}", owned.as_raw_fd())).unwrap();
    (owned, fd)
}

/// The `/proc/self/maps` line whose range contains `addr`.
fn maps_line(addr: u64) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .find(|l| {
            let range = l.split(' ').next().unwrap_or("");
            let mut it = range.split('-').map(|s| u64::from_str_radix(s, 16).unwrap_or(0));
            let (start, end) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            (start..end).contains(&addr)
        })
        .map(str::to_owned)
}

#[test]
fn open_missing_node_is_enoent() {
    let d = LinuxDriver::new();
    assert_eq!(d.open("/dev/dri/pm4rt-no-such-node"), Err(Errno::ENOENT));
}

#[test]
fn ioctl_on_dev_null_is_enotty_and_fd_errors() {
    let d = LinuxDriver::new();
    let fd = d.open("/dev/null").unwrap();
    let mut arg = vec![0u8; ioc_size(DRM_IOCTL_AMDGPU_INFO)];
    assert_eq!(d.ioctl(fd, DRM_IOCTL_AMDGPU_INFO, &mut arg, &mut []), Err(Errno::ENOTTY));
    // An argument shorter than the request's encoded size is refused before the syscall.
    assert_eq!(d.ioctl(fd, DRM_IOCTL_AMDGPU_INFO, &mut arg[..31], &mut []), Err(Errno::EINVAL));
    d.close(fd).unwrap();
    assert_eq!(d.close(fd), Err(Errno::EBADF));
    assert_eq!(d.ioctl(fd, DRM_IOCTL_AMDGPU_INFO, &mut arg, &mut []), Err(Errno::EBADF));
    assert_eq!(d.mmap(fd, 0, PAGE, MapAt::Anywhere).err(), Some(Errno::EBADF));
}

#[test]
fn read_file_matches_kernel_release() {
    let d = LinuxDriver::new();
    let release = d.kernel_release().unwrap();
    let osrelease = d.read_file("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(osrelease.trim_end(), release);
    assert!(!release.is_empty());
    assert_eq!(d.read_file("/proc/pm4rt-missing"), Err(Errno::ENOENT));
}

#[test]
fn list_dir_is_sorted() {
    let dir = std::env::temp_dir().join(format!("pm4rt-listdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["node10", "b", "a", "node2"] {
        std::fs::write(dir.join(name), "").unwrap();
    }
    let d = LinuxDriver::new();
    let names = d.list_dir(dir.to_str().unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(names, ["a", "b", "node10", "node2"]);
    assert_eq!(d.list_dir("/pm4rt-missing-dir"), Err(Errno::ENOENT));
}

#[test]
fn memfd_mapping_round_trip() {
    let d = LinuxDriver::new();
    let (_keep, fd) = memfd(&d, 2 * PAGE as u64);
    let a = d.mmap(fd, 0, 2 * PAGE, MapAt::Anywhere).unwrap();
    let b = d.mmap(fd, PAGE as u64, PAGE, MapAt::Anywhere).unwrap();
    assert_eq!(a.len(), 2 * PAGE);
    assert_eq!(a.addr() % PAGE as u64, 0);

    // Shared: a write through one mapping is seen through the other (offset PAGE of the file).
    a.write(PAGE + 16, b"pm4rt").unwrap();
    let mut out = [0u8; 5];
    b.read(16, &mut out).unwrap();
    assert_eq!(&out, b"pm4rt");

    b.store_u64(8, 0x1122_3344_5566_7788).unwrap();
    assert_eq!(a.load_u64(PAGE + 8).unwrap(), 0x1122_3344_5566_7788);
    let mut le = [0u8; 8];
    a.read(PAGE + 8, &mut le).unwrap();
    assert_eq!(u64::from_le_bytes(le), 0x1122_3344_5566_7788);

    // Bounds and alignment.
    assert_eq!(b.read(PAGE - 4, &mut out), Err(Errno::EFAULT));
    assert_eq!(b.write(usize::MAX, b"x"), Err(Errno::EFAULT));
    assert_eq!(b.load_u64(PAGE), Err(Errno::EFAULT));
    assert_eq!(b.load_u64(4), Err(Errno::EINVAL));
    assert_eq!(b.store_u64(PAGE - 8 + 1, 0), Err(Errno::EFAULT));
    b.read(PAGE, &mut []).unwrap();

    let addr = a.addr();
    drop(a);
    assert!(maps_line(addr).is_none_or(|l| !l.contains("pm4rt-test")));
    drop(b);
    d.close(fd).unwrap();
}

#[test]
fn dev_zero_shared_mapping() {
    let d = LinuxDriver::new();
    let fd = d.open("/dev/zero").unwrap();
    let m = d.mmap(fd, 0, PAGE, MapAt::Anywhere).unwrap();
    assert_eq!(m.load_u64(0).unwrap(), 0);
    m.write(100, &[1, 2, 3]).unwrap();
    let mut out = [0u8; 3];
    m.read(100, &mut out).unwrap();
    assert_eq!(out, [1, 2, 3]);
    assert_eq!(d.mmap(fd, 0, 0, MapAt::Anywhere).err(), Some(Errno::EINVAL));
    d.close(fd).unwrap();
}

#[test]
fn reserve_fixed_map_and_drop_re_reserves() {
    let d = LinuxDriver::new();
    let align = 1 << 21;
    let base = d.reserve_va(4 * PAGE, align).unwrap();
    assert_eq!(base % align as u64, 0);
    let line = maps_line(base).expect("reservation is mapped");
    assert!(line.contains(" ---p "), "{line}");

    let (_keep, fd) = memfd(&d, 2 * PAGE as u64);
    let at = base + PAGE as u64;
    let m = d.mmap(fd, 0, 2 * PAGE, MapAt::Fixed(at)).unwrap();
    assert_eq!(m.addr(), at);
    assert!(maps_line(at).unwrap().contains(" rw-s "));
    m.store_u64(PAGE, 42).unwrap();
    let other = d.mmap(fd, 0, PAGE, MapAt::Anywhere).unwrap();
    let mut v = [0u8; 8];
    other.read(0, &mut v).unwrap();
    assert_eq!(v, [0; 8]);
    let other2 = d.mmap(fd, PAGE as u64, PAGE, MapAt::Anywhere).unwrap();
    assert_eq!(other2.load_u64(0).unwrap(), 42);

    // Refused: overlapping a live fixed mapping, outside any reservation, misaligned, and
    // releasing a reservation that still holds a mapping.
    assert_eq!(d.mmap(fd, 0, PAGE, MapAt::Fixed(base + 2 * PAGE as u64)).err(), Some(Errno::EBUSY));
    assert_eq!(
        d.mmap(fd, 0, 2 * PAGE, MapAt::Fixed(base + 3 * PAGE as u64)).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(d.mmap(fd, 0, PAGE, MapAt::Fixed(base + 8)).err(), Some(Errno::EINVAL));
    // A length whose page rounding overflows is refused, not a panic.
    assert_eq!(d.mmap(fd, 0, usize::MAX, MapAt::Fixed(base)).err(), Some(Errno::ENOMEM));
    assert_eq!(d.release_va(base, 4 * PAGE), Err(Errno::EBUSY));

    // Dropping the fixed mapping leaves an inaccessible reservation, not a hole.
    drop(m);
    let line = maps_line(at).expect("range still reserved after drop");
    assert!(line.contains(" ---p "), "{line}");
    // The range can be mapped again.
    let again = d.mmap(fd, PAGE as u64, PAGE, MapAt::Fixed(base)).unwrap();
    assert_eq!(again.load_u64(0).unwrap(), 42);
    drop(again);

    assert_eq!(d.release_va(base + 1, 4 * PAGE), Err(Errno::EINVAL));
    assert_eq!(d.release_va(base, PAGE), Err(Errno::EINVAL));
    d.release_va(base, 4 * PAGE).unwrap();
    assert!(maps_line(base).is_none_or(|l| !l.contains(" ---p ")));
    assert_eq!(d.release_va(base, 4 * PAGE), Err(Errno::EINVAL));
    assert_eq!(d.reserve_va(0, PAGE), Err(Errno::EINVAL));
    assert_eq!(d.reserve_va(PAGE, 3 * PAGE), Err(Errno::EINVAL));
    drop((other, other2));
    d.close(fd).unwrap();
}
