//! KfdSubmitter on the emulated /dev/kfd: the whole life with zero live handles, a
//! fault-injection matrix over every ioctl it issues, ring wrap-around that respects rptr, the
//! never-retiring R9700 preset failing fast, and zero ioctls per steady-state submission.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pm4rt_backends::kfd::{self, KfdConfig, KfdSubmitter, SUBMIT_DWORDS};
use pm4rt_core::abi::kfd::*;
use pm4rt_core::pm4::Builder;
use pm4rt_core::{BoDesc, Driver, Errno, Error, Submitter};
use pm4rt_sim::emu::{EmulatedDevice, Preset};

use common::{ib_waiting_for_flag, ib_writing};

fn dev(preset: Preset) -> Arc<EmulatedDevice> {
    Arc::new(EmulatedDevice::new(preset).unwrap())
}

fn open(d: &Arc<EmulatedDevice>, cfg: KfdConfig) -> pm4rt_core::Result<KfdSubmitter> {
    KfdSubmitter::open(d.clone() as Arc<dyn Driver>, KfdConfig { emulated: true, ..cfg })
}

fn assert_no_leaks(d: &EmulatedDevice) {
    assert!(d.live_handles().is_zero(), "{:?}", d.live_handles());
    assert!(d.kfd_live_handles().is_zero(), "{:?}", d.kfd_live_handles());
}

#[test]
fn whole_life_retires_work_and_leaks_nothing() {
    let d = dev(Preset::r9700_gfx1201());
    // poll = 0: every wait goes through WAIT_EVENTS, woken by RELEASE_MEM INT_SEL 2.
    let mut s = open(&d, KfdConfig { poll: Duration::ZERO, ..Default::default() }).unwrap();
    let info = s.info();
    assert_eq!(info.tier, pm4rt_core::Tier::Kfd);
    assert!(info.emulated);
    assert_eq!(s.node().sizes.cwsr_bo_size, 0x1D5_7000);
    let (data, ib_va, n) = ib_writing(&mut s, 0xC0FFEE);
    let f = s.submit_ib(ib_va, n).unwrap();
    s.wait_fence(f, Duration::from_secs(5)).unwrap();
    assert_eq!(pm4rt_core::submitter::read_u32(&s, data, 0).unwrap(), 0xC0FFEE);
    // An IB that waits for the host: the fence cannot retire before wait_fence blocks, so the
    // wake-up must come from RELEASE_MEM INT_SEL 2 through WAIT_EVENTS.
    let (flag_va, wib_va, wn) = ib_waiting_for_flag(&mut s);
    let waits_before = d.kfd_ioctl_count(AMDKFD_IOC_WAIT_EVENTS);
    let fw = s.submit_ib(wib_va, wn).unwrap();
    let mem = d.memory();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        mem.write_u32(flag_va, 1).unwrap();
    });
    s.wait_fence(fw, Duration::from_secs(5)).unwrap();
    setter.join().unwrap();
    assert!(d.kfd_ioctl_count(AMDKFD_IOC_WAIT_EVENTS) > waits_before);
    let f2 = s.submit_ib(ib_va, n).unwrap();
    s.wait_fence(f2, Duration::from_secs(5)).unwrap();
    assert_eq!(s.info().counters.retired, 3);
    s.unmap_va(data).unwrap();
    s.free_bo(data).unwrap();
    drop(s);
    assert_no_leaks(&d);
}

#[test]
fn steady_state_costs_zero_ioctls() {
    let d = dev(Preset::r9700_gfx1201());
    let mut s = open(&d, KfdConfig::default()).unwrap();
    let (_, ib_va, n) = ib_writing(&mut s, 1);
    let before = s.info().counters.ioctls;
    for _ in 0..50 {
        let f = s.submit_ib(ib_va, n).unwrap();
        let t = Instant::now();
        while s.fence_value().unwrap() < f.seq {
            assert!(t.elapsed() < Duration::from_secs(5), "fence {f} did not land");
            std::thread::yield_now();
        }
        s.wait_fence(f, Duration::from_secs(1)).unwrap();
    }
    let c = s.info().counters;
    assert_eq!(c.ioctls, before, "submissions and retired waits must not issue ioctls");
    assert_eq!((c.submissions, c.retired), (50, 50));
    drop(s);
    assert_no_leaks(&d);
}

#[test]
fn ring_wraps_many_times_without_overrunning_rptr() {
    let d = dev(Preset::r9700_gfx1201());
    // 1 KiB ring = 256 dwords: 9 submissions fill it; 300 wrap it ~33 times.
    let mut s = open(&d, KfdConfig { ring_bytes: 1024, ..Default::default() }).unwrap();
    let (data, ib_va, n) = ib_writing(&mut s, 7);
    let mut last = None;
    for _ in 0..300 {
        last = Some(s.submit_ib(ib_va, n).unwrap());
    }
    let last = last.unwrap();
    s.wait_fence(last, Duration::from_secs(10)).unwrap();
    assert_eq!(s.wptr(), 300 * SUBMIT_DWORDS as u64);
    assert!(s.wptr() > 30 * s.ring_dwords());
    // The fence is written before the event packet: rptr catches up right after. The CP
    // reports it as a 32-bit dword offset wrapped at the ring size.
    let end = s.wptr() % s.ring_dwords();
    let t = Instant::now();
    while s.rptr().unwrap() != end && t.elapsed() < Duration::from_secs(2) {
        std::thread::yield_now();
    }
    assert_eq!(s.rptr().unwrap(), end, "the engine consumed exactly what was written");
    assert_eq!(s.fence_value().unwrap(), 300);
    assert_eq!(pm4rt_core::submitter::read_u32(&s, data, 0).unwrap(), 7);
    drop(s);
    assert_no_leaks(&d);
}

#[test]
fn r9700_never_retiring_fails_fast_with_a_clear_error() {
    let d = dev(Preset::r9700_kfd_never_retires());
    let mut s = open(&d, KfdConfig::default()).unwrap();
    let (_, ib_va, n) = ib_writing(&mut s, 1);
    let t = Instant::now();
    let e = s.smoke(ib_va, n, Duration::from_millis(200)).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let msg = e.to_string();
    assert!(msg.contains("created but the fence did not retire within"), "{msg}");
    // The plain wait is a typed timeout.
    assert!(matches!(
        s.wait_fence(pm4rt_core::Fence { seq: 1 }, Duration::from_millis(20)),
        Err(Error::Timeout { .. })
    ));
    drop(s);
    assert_no_leaks(&d);
}

#[test]
fn page_fault_surfaces_as_fault_with_the_va() {
    let d = dev(Preset::r9700_gfx1201());
    let mut s = open(&d, KfdConfig::default()).unwrap();
    let mut b = Builder::growable(s.info().gfx);
    b.write_data(0x10_0000, &[1]).unwrap(); // below the GPUVM aperture: unmapped
    let words = b.into_vec();
    let ib = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let ib_va = s.map_va(ib, None).unwrap();
    s.write_bo(ib, 0, bytemuck::cast_slice(&words)).unwrap();
    let f = s.submit_ib(ib_va, words.len() as u32).unwrap();
    assert_eq!(s.wait_fence(f, Duration::from_secs(5)), Err(Error::Fault { va: 0x10_0000 }));
    assert!(matches!(s.submit_ib(ib_va, 1), Err(Error::DeviceLost { .. })));
    drop(s);
    assert_no_leaks(&d);
}

/// (request, calls during open, step).
const OPEN_IOCTLS: &[(u32, u64, &str)] = &[
    (AMDKFD_IOC_GET_VERSION, 1, kfd::STEP_GET_VERSION),
    (AMDKFD_IOC_ACQUIRE_VM, 1, kfd::STEP_ACQUIRE_VM),
    (AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, 2, kfd::STEP_APERTURES),
    (AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, 7, kfd::STEP_ALLOC),
    (AMDKFD_IOC_MAP_MEMORY_TO_GPU, 7, kfd::STEP_MAP),
    (AMDKFD_IOC_CREATE_EVENT, 3, kfd::STEP_CREATE_EVENT),
    (AMDKFD_IOC_CREATE_QUEUE, 1, kfd::STEP_CREATE_QUEUE),
];

#[test]
fn fault_injection_matrix_over_every_ioctl() {
    let mut cases = 0;
    for &(req, calls, step) in OPEN_IOCTLS {
        for nth in 1..=calls {
            for errno in [Errno::ENOMEM, Errno::EINVAL] {
                let d = dev(Preset::r9700_gfx1201());
                d.fail_kfd_ioctl(req, nth, errno);
                let e = open(&d, KfdConfig::default()).err();
                assert_eq!(e, Some(Error::Io { step, errno }), "{step} #{nth}");
                assert_no_leaks(&d);
                cases += 1;
            }
        }
    }
    // Run-time and teardown ioctls: typed errors, never a panic, nothing left after drop.
    let teardown: &[(u32, &str)] = &[
        (AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU, kfd::STEP_UNMAP),
        (AMDKFD_IOC_FREE_MEMORY_OF_GPU, kfd::STEP_FREE),
        (AMDKFD_IOC_DESTROY_EVENT, kfd::STEP_DESTROY_EVENT),
        (AMDKFD_IOC_DESTROY_QUEUE, kfd::STEP_DESTROY_QUEUE),
    ];
    for &(req, step) in teardown {
        let d = dev(Preset::r9700_gfx1201());
        let mut s = open(&d, KfdConfig::default()).unwrap();
        let bo = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        s.map_va(bo, None).unwrap();
        d.fail_kfd_ioctl(req, d.kfd_ioctl_count(req) + 1, Errno::EIO);
        if req == AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU {
            assert_eq!(s.unmap_va(bo), Err(Error::Io { step, errno: Errno::EIO }));
        } else if req == AMDKFD_IOC_FREE_MEMORY_OF_GPU {
            s.unmap_va(bo).unwrap();
            assert_eq!(s.free_bo(bo), Err(Error::Io { step, errno: Errno::EIO }));
        }
        drop(s); // the failure hits drop for the DESTROY_* kinds
        assert_no_leaks(&d);
        cases += 1;
    }
    // WAIT_EVENTS failing is a typed error of wait_fence.
    let d = dev(Preset::r9700_kfd_never_retires());
    let mut s = open(&d, KfdConfig::default()).unwrap();
    let (_, ib_va, n) = ib_writing(&mut s, 1);
    let f = s.submit_ib(ib_va, n).unwrap();
    d.fail_kfd_ioctl(AMDKFD_IOC_WAIT_EVENTS, 1, Errno::EINTR);
    assert_eq!(
        s.wait_fence(f, Duration::from_millis(50)),
        Err(Error::Io { step: kfd::STEP_WAIT_EVENTS, errno: Errno::EINTR })
    );
    drop(s);
    assert_no_leaks(&d);
    assert_eq!(cases, 2 * 22 + 4);
}

/// Tearing a queue down with work in flight (an IB blocked on a flag nobody writes) unmaps it
/// before its buffers are freed, as the kernel's DESTROY_QUEUE does: the engine never touches
/// the freed memory, so no GPU reset follows and the next queue on the device works.
#[test]
fn teardown_with_work_in_flight_leaves_the_device_healthy() {
    let d = dev(Preset::r9700_gfx1201());
    let mut s = open(&d, KfdConfig::default()).unwrap();
    let (_, ib_va, n) = ib_waiting_for_flag(&mut s);
    let f = s.submit_ib(ib_va, n).unwrap();
    assert!(matches!(s.wait_fence(f, Duration::from_millis(20)), Err(Error::Timeout { .. })));
    let t = Instant::now();
    drop(s);
    assert!(t.elapsed() < Duration::from_secs(2), "teardown took {:?}", t.elapsed());
    assert_no_leaks(&d);

    let mut s = open(&d, KfdConfig::default()).unwrap();
    let (data, ib_va, n) = ib_writing(&mut s, 0x5EED);
    let f = s.submit_ib(ib_va, n).unwrap();
    s.wait_fence(f, Duration::from_secs(5)).unwrap();
    assert_eq!(pm4rt_core::submitter::read_u32(&s, data, 0).unwrap(), 0x5EED);
    drop(s);
    assert_no_leaks(&d);
}

/// tinygrad's `KFDIface.__init__` calls RUNTIME_ENABLE (mode_mask 0) after ACQUIRE_VM when the
/// KFD version is at least 1.14; a KFD 1.13 (which has the ioctl) or older is not asked.
#[test]
fn open_calls_runtime_enable_from_kfd_1_14() {
    for (version, calls) in [((1, 18), 1), ((1, 14), 1), ((1, 13), 0), ((1, 12), 0)] {
        let d = dev(Preset { kfd_version: version, ..Preset::r9700_gfx1201() });
        let s = open(&d, KfdConfig::default()).unwrap();
        assert_eq!(d.kfd_ioctl_count(AMDKFD_IOC_RUNTIME_ENABLE), calls, "KFD {version:?}");
        drop(s);
        assert_no_leaks(&d);
    }
}

/// A KFD PM4 queue whose doorbell is rung without the write pointer stored at
/// `write_pointer_address` runs nothing new: a re-loaded queue's CP reads the write pointer
/// from memory (kgd `hqd_load`: "a one-shot polling read from memory in the CP").
#[test]
fn doorbell_without_the_stored_wptr_runs_nothing() {
    let d = dev(Preset::r9700_gfx1201());
    let drv = common::lost_wptr::LostWptr::new(d.clone());
    let mut s = KfdSubmitter::open(
        drv.clone() as Arc<dyn Driver>,
        KfdConfig { emulated: true, ..Default::default() },
    )
    .unwrap();
    common::assert_doorbell_without_the_stored_wptr_runs_nothing(&mut s, &drv.armed);
    drop(s);
    assert_no_leaks(&d);
}

/// A queue that faulted is gone with its process, but the GPU is not: a queue created
/// afterwards (a new /dev/kfd process, as after the kernel evicted the faulting one) runs.
#[test]
fn a_queue_created_after_a_fault_runs() {
    let d = dev(Preset::r9700_gfx1201());
    let mut s = open(&d, KfdConfig::default()).unwrap();
    let (ib_va, n) = common::ib_faulting(&mut s);
    let f = s.submit_ib(ib_va, n).unwrap();
    let e = s.wait_fence(f, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::Fault { va: 0x7F_0000_0000 }), "{e:?}");
    drop(s);
    common::assert_runs(&mut open(&d, KfdConfig::default()).unwrap(), 0x600D);
    assert_no_leaks(&d);
}
