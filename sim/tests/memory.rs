//! GpuMemory: translation across pages and BOs, faults, borrowing.

use pm4rt_core::{BoHandle, Error};
use pm4rt_sim::memory::{GpuMemory, Perms};

const A: BoHandle = BoHandle(1);
const B: BoHandle = BoHandle(2);

/// Two one-page BOs mapped back to back at 0x10000 and 0x11000, a hole at 0x12000.
fn two_bos() -> GpuMemory {
    let m = GpuMemory::new();
    assert_eq!(m.create_bo(A, 100).unwrap(), 4096);
    assert_eq!(m.create_bo(B, 4096).unwrap(), 4096);
    m.map(A, 0x10000, Perms::ALL).unwrap();
    m.map(B, 0x11000, Perms::ALL).unwrap();
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
    assert!(matches!(m.map(c, 0x12001, Perms::ALL), Err(Error::BadVa { .. })));
    assert!(matches!(m.map(c, 0xF000, Perms::ALL), Err(Error::BadVa { .. })), "overlaps A");
    assert!(matches!(m.map(c, 0x11000, Perms::ALL), Err(Error::BadVa { .. })), "overlaps B");
    assert!(matches!(m.map(c, !0xFFF_u64, Perms::ALL), Err(Error::BadVa { .. })), "wraps");
    assert_eq!(m.find_free(0x10000..0x20000, 8192), Some(0x12000));
    assert_eq!(m.find_free(0x10000..0x13000, 8192), None);
    m.map(c, 0x12000, Perms::ALL).unwrap();
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
    assert!(matches!(
        m.create_bo(A, u64::MAX),
        Err(Error::Io { errno: pm4rt_core::Errno::ENOMEM, .. })
    ));
    assert!(matches!(m.create_bo(A, 0), Err(Error::InvalidArgument(_))));
}

#[test]
fn page_permissions_fault_the_access_they_forbid() {
    let m = GpuMemory::new();
    let (ro, rw, none) = (BoHandle(10), BoHandle(11), BoHandle(12));
    for id in [ro, rw, none] {
        m.create_bo(id, 4096).unwrap();
    }
    m.map(ro, 0x10000, Perms::READ_ONLY).unwrap();
    m.map(rw, 0x11000, Perms::READ_WRITE).unwrap();
    m.map(none, 0x12000, Perms { read: false, write: false, execute: false }).unwrap();
    // A GPU write to a read-only page faults there and writes nothing.
    assert!(matches!(m.write_u32(0x10008, 1), Err(Error::Fault { va: 0x10008 })));
    assert_eq!(m.read_u32(0x10008).unwrap(), 0);
    // A write straddling a writable page into an unwritable one faults at the boundary.
    assert!(matches!(m.write(0x11FFC, &[1; 8]), Err(Error::Fault { va: 0x12000 })));
    assert_eq!(m.read_u32(0x11FFC).unwrap(), 0, "nothing written on a fault");
    // A mapping without READABLE faults reads too.
    assert!(matches!(m.read_u32(0x12000), Err(Error::Fault { va: 0x12000 })));
    // Instruction fetch needs EXECUTABLE.
    assert!(matches!(m.with_code(0x11000, 4, |_| ()), Err(Error::Fault { va: 0x11000 })));
    assert!(matches!(m.with_slice_mut(0x10000, 4, |_| ()), Err(Error::Fault { va: 0x10000 })));
    // CPU access through the BO is not the GPU's page table.
    m.write_bo(ro, 8, &7u32.to_le_bytes()).unwrap();
    assert_eq!(m.read_u32(0x10008).unwrap(), 7);
    assert_eq!(m.perms_at(0x10FFF), Some(Perms::READ_ONLY));
    assert_eq!(m.perms_at(0x13000), None);
}

#[test]
fn code_runs_from_executable_pages() {
    let m = GpuMemory::new();
    m.create_bo(BoHandle(1), 4096).unwrap();
    m.map(BoHandle(1), 0x20000, Perms::ALL).unwrap();
    m.write_u32(0x20000, 0xBF81_0000).unwrap();
    assert_eq!(m.with_code(0x20000, 4, |b| b.to_vec()).unwrap(), 0xBF81_0000u32.to_le_bytes());
}
