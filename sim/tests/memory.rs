//! GpuMemory: translation across pages and BOs, faults, borrowing.

use pm4rt_core::{BoHandle, Error};
use pm4rt_sim::memory::GpuMemory;

const A: BoHandle = BoHandle(1);
const B: BoHandle = BoHandle(2);

/// Two one-page BOs mapped back to back at 0x10000 and 0x11000, a hole at 0x12000.
fn two_bos() -> GpuMemory {
    let m = GpuMemory::new();
    assert_eq!(m.create_bo(A, 100).unwrap(), 4096);
    assert_eq!(m.create_bo(B, 4096).unwrap(), 4096);
    m.map(A, 0x10000).unwrap();
    m.map(B, 0x11000).unwrap();
    m
}

#[test]
fn access_crossing_two_bos() {
    let m = two_bos();
    let data: Vec<u8> = (0..16).collect();
    m.write(0x10FF8, &data).unwrap();
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    m.read_bo(A, 4088, &mut a).unwrap();
    m.read_bo(B, 0, &mut b).unwrap();
    assert_eq!(a, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(b, [8, 9, 10, 11, 12, 13, 14, 15]);
    assert_eq!(m.read_u64(0x10FFC).unwrap(), u64::from_le_bytes([4, 5, 6, 7, 8, 9, 10, 11]));
    // with_slice over the seam gets a copy with the same bytes.
    let sum: u32 = m.with_slice(0x10FF8, 16, |s| s.iter().map(|&x| u32::from(x)).sum()).unwrap();
    assert_eq!(sum, 120);
    m.with_slice_mut(0x10FFE, 4, |s| s.fill(0xEE)).unwrap();
    assert_eq!(m.read_u32(0x10FFE).unwrap(), 0xEEEE_EEEE);
}

#[test]
fn fault_at_first_unmapped_byte() {
    let m = two_bos();
    let mut buf = [0u8; 8];
    assert_eq!(m.read(0x11FFC, &mut buf), Err(Error::Fault { va: 0x12000 }));
    assert_eq!(m.write(0xFFFC, &[1; 8]), Err(Error::Fault { va: 0xFFFC }));
    assert_eq!(m.read_u32(0x12000), Err(Error::Fault { va: 0x12000 }));
    assert_eq!(m.with_slice(0x11000, 4097, |_| ()), Err(Error::Fault { va: 0x12000 }));
    // Nothing was written by the failed write.
    assert_eq!(m.read_u32(0x10000).unwrap(), 0);
}

#[test]
fn map_rules() {
    let m = two_bos();
    let c = BoHandle(3);
    m.create_bo(c, 8192).unwrap();
    assert!(matches!(m.map(c, 0x12001), Err(Error::BadVa { .. })));
    assert!(matches!(m.map(c, 0xF000), Err(Error::BadVa { .. })), "overlaps A");
    assert!(matches!(m.map(c, 0x11000), Err(Error::BadVa { .. })), "overlaps B");
    assert!(matches!(m.map(c, !0xFFF_u64), Err(Error::BadVa { .. })), "wraps");
    assert_eq!(m.find_free(0x10000..0x20000, 8192), Some(0x12000));
    assert_eq!(m.find_free(0x10000..0x13000, 8192), None);
    m.map(c, 0x12000).unwrap();
    assert_eq!(m.bo_va(c).unwrap(), Some(0x12000));
    assert_eq!(m.unmap(A).unwrap(), 0x10000);
    assert_eq!(m.find_free(0x10000..0x20000, 4096), Some(0x10000));
    m.destroy_bo(c).unwrap();
    assert_eq!(m.read_u32(0x12000), Err(Error::Fault { va: 0x12000 }));
    assert_eq!(m.bo_count(), 2);
    assert_eq!(m.destroy_bo(c), Err(Error::UnknownBo(c)));
}

#[test]
fn borrow_in_place_and_nested_other_bo() {
    let m = two_bos();
    m.write(0x10000, &[1, 2, 3, 4]).unwrap();
    // Read A while writing B: distinct BOs may be borrowed together.
    m.with_slice(0x10000, 4, |a| {
        m.with_slice_mut(0x11000, 4, |b| b.copy_from_slice(a)).unwrap();
    })
    .unwrap();
    assert_eq!(m.read_u32(0x11000).unwrap(), 0x0403_0201);
}

#[test]
fn reentrant_borrow_of_same_bo_is_an_error_not_a_deadlock() {
    let m = two_bos();
    let inner = m.with_slice(0x10000, 4, |_| m.write_u32(0x10010, 1)).unwrap();
    assert!(matches!(inner, Err(Error::InvalidArgument(_))), "{inner:?}");
    // The mark is gone afterwards.
    m.write_u32(0x10010, 1).unwrap();
}

#[test]
fn huge_bo_is_refused_not_aborted() {
    let m = GpuMemory::new();
    assert!(matches!(m.create_bo(A, u64::MAX), Err(Error::Io { errno: 12, .. })));
    assert!(matches!(m.create_bo(A, 0), Err(Error::InvalidArgument(_))));
}
