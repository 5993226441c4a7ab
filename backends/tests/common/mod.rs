//! IBs shared by the backend tests on the emulated device (any [`Submitter`]).

#![allow(dead_code)] // each test crate uses a subset

pub mod lost_wptr;

use pm4rt_core::pm4::Builder;
use pm4rt_core::{BoDesc, BoHandle, Submitter};

/// `words` uploaded into a fresh 4 KiB GTT BO mapped at a VA: (BO, VA, dwords).
pub fn upload_ib(s: &mut dyn Submitter, words: &[u32]) -> (BoHandle, u64, u32) {
    let ib = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let va = s.map_va(ib, None).unwrap();
    s.write_bo(ib, 0, bytemuck::cast_slice(words)).unwrap();
    (ib, va, words.len() as u32)
}

/// A data BO and an IB writing `value` to its first dword: (data BO, IB VA, IB dwords).
pub fn ib_writing(s: &mut dyn Submitter, value: u32) -> (BoHandle, u64, u32) {
    let data = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let data_va = s.map_va(data, None).unwrap();
    let mut b = Builder::growable(s.info().gfx);
    b.write_data(data_va, &[value]).unwrap();
    let (_, va, n) = upload_ib(s, &b.into_vec());
    (data, va, n)
}

/// A zeroed flag BO and an IB that waits until the flag's first dword is 1 (WAIT_REG_MEM,
/// poll interval 0xA): (flag VA, IB VA, IB dwords).
pub fn ib_waiting_for_flag(s: &mut dyn Submitter) -> (u64, u64, u32) {
    let flag = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let flag_va = s.map_va(flag, None).unwrap();
    let mut b = Builder::growable(s.info().gfx);
    b.wait_mem_eq(flag_va, 1, 0xFFFF_FFFF, 0xA).unwrap();
    let (_, va, n) = upload_ib(s, &b.into_vec());
    (flag_va, va, n)
}

/// The shared IB-size rule (`pm4rt_core::check_ib_size`): an IB of 2^20 dwords, inside one
/// mapped BO, is refused by `submit_ib` with the one message every tier gives (IB_SIZE of
/// `INDIRECT_BUFFER` is 20 bits: `gfx_v12_0.c: gfx_v12_0_ring_emit_ib_compute` would spill the
/// length into CHAIN/VALID/VMID). Nothing is submitted.
pub fn assert_refuses_an_ib_of_2_pow_20_dwords(s: &mut dyn Submitter) {
    let dwords = 1u32 << 20;
    let bo = s.alloc_bo(&BoDesc::gtt(u64::from(dwords) * 4 + 4096)).unwrap();
    let va = s.map_va(bo, None).unwrap();
    let submissions = s.info().counters.submissions;
    match s.submit_ib(va, dwords) {
        Err(pm4rt_core::Error::InvalidArgument(m)) => assert_eq!(
            m,
            "IB of 1048576 dwords exceeds the 1048575 dwords one INDIRECT_BUFFER can run \
             (IB_SIZE is a 20-bit field)"
        ),
        other => panic!("an IB of 2^20 dwords was not refused: {other:?}"),
    }
    assert_eq!(s.info().counters.submissions, submissions, "nothing was submitted");
    s.free_bo(bo).unwrap();
}

/// An IB writing to a VA nothing is mapped at (a GPU page fault): (IB VA, IB dwords).
pub fn ib_faulting(s: &mut dyn Submitter) -> (u64, u32) {
    let mut b = Builder::growable(s.info().gfx);
    b.write_data(0x7F_0000_0000, &[1]).unwrap();
    let (_, va, n) = upload_ib(s, &b.into_vec());
    (va, n)
}

/// Submit an IB writing `value` and check it landed within 10 s.
pub fn assert_runs(s: &mut dyn Submitter, value: u32) {
    let (data, ib_va, n) = ib_writing(s, value);
    let f = s.submit_ib(ib_va, n).unwrap();
    s.wait_fence(f, std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(pm4rt_core::submitter::read_u32(s, data, 0).unwrap(), value);
}

/// A submission whose write-pointer store `armed` drops runs nothing, though its doorbell is
/// rung; once both stores happen again, the next doorbell runs both submissions.
pub fn assert_doorbell_without_the_stored_wptr_runs_nothing(
    s: &mut dyn Submitter,
    armed: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering::SeqCst;
    assert_runs(s, 7);
    let (_, ib_va, n) = ib_writing(s, 7);
    let (data, ib2, n2) = ib_writing(s, 9);
    armed.store(true, SeqCst);
    let f2 = s.submit_ib(ib2, n2).unwrap();
    let e = s.wait_fence(f2, std::time::Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, pm4rt_core::Error::Timeout { .. }), "{e:?}");
    assert_eq!(pm4rt_core::submitter::read_u32(s, data, 0).unwrap(), 0, "nothing ran");
    armed.store(false, SeqCst);
    let f3 = s.submit_ib(ib_va, n).unwrap();
    s.wait_fence(f3, std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(pm4rt_core::submitter::read_u32(s, data, 0).unwrap(), 9);
}
