//! The `Submitter` contract, one test body run on every tier: `sim` (the in-process
//! simulator), and `cs`, `kfd` and `umq` on the emulated amdgpu/KFD device. Each case checks
//! what `pm4rt_core::Submitter` documents for every tier: a whole life that retires work and
//! leaves nothing alive on the device, fences retiring in submission order, drop with work in
//! flight, a GPU page fault failing the wait (umq: timing out, a declared exception), typed errors for unknown BOs and fences, and the
//! shared IB-size rule. Tier-specific behaviour (ioctl counts, fault-injection matrices over a
//! tier's own ioctls, ring mechanics) stays in the per-tier files.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pm4rt_backends::cs::{CsConfig, CsSubmitter};
use pm4rt_backends::kfd::{KfdConfig, KfdSubmitter};
use pm4rt_backends::umq::{UmqConfig, UmqSubmitter};
use pm4rt_core::submitter::read_u32;
use pm4rt_core::{BoDesc, BoHandle, Driver, Error, Fence, Submitter, Tier};
use pm4rt_sim::emu::{EmulatedDevice, Preset};
use pm4rt_sim::SimSubmitter;
use rstest::rstest;

use common::{ib_faulting, ib_waiting_for_flag, ib_writing};

const WAIT: Duration = Duration::from_secs(10);

/// A submitter of `tier` and, for the hardware tiers, the emulated device behind it.
struct UnderTest {
    dev: Option<Arc<EmulatedDevice>>,
    s: Box<dyn Submitter>,
}

impl UnderTest {
    fn open(tier: Tier) -> UnderTest {
        let device = |p: Preset| Arc::new(EmulatedDevice::new(p).unwrap());
        let (dev, s): (_, Box<dyn Submitter>) = match tier {
            Tier::Sim => (None, Box::new(SimSubmitter::new().unwrap())),
            Tier::Cs => {
                let d = device(Preset::r9700_gfx1201());
                let c = CsConfig { emulated: true, ..CsConfig::default() };
                (Some(d.clone()), Box::new(CsSubmitter::open(d as Arc<dyn Driver>, c).unwrap()))
            }
            Tier::Kfd => {
                let d = device(Preset::rx7900xtx_gfx1100());
                let c = KfdConfig { emulated: true, ..KfdConfig::default() };
                (Some(d.clone()), Box::new(KfdSubmitter::open(d as Arc<dyn Driver>, c).unwrap()))
            }
            Tier::Umq => {
                let d = device(Preset::rx7900xtx_userq());
                let c = UmqConfig { emulated: true, ..UmqConfig::with_path("/dev/dri/renderD128") };
                (Some(d.clone()), Box::new(UmqSubmitter::open(d as Arc<dyn Driver>, c).unwrap()))
            }
        };
        assert_eq!(s.info().tier, tier);
        UnderTest { dev, s }
    }

    /// Drop the submitter and check that nothing it created is alive on the device.
    fn drop_and_assert_no_leaks(self) {
        let UnderTest { dev, s } = self;
        drop(s);
        if let Some(d) = dev {
            assert!(d.live_handles().is_zero(), "{:?}", d.live_handles());
            assert!(d.kfd_live_handles().is_zero(), "{:?}", d.kfd_live_handles());
        }
    }
}

#[rstest]
fn whole_life_retires_work_and_leaks_nothing(
    #[values(Tier::Sim, Tier::Cs, Tier::Kfd, Tier::Umq)] tier: Tier,
) {
    let mut t = UnderTest::open(tier);
    let s = t.s.as_mut();
    let (data, ib_va, n) = ib_writing(s, 0xC0FFEE);
    let f = s.submit_ib(ib_va, n).unwrap();
    s.wait_fence(f, WAIT).unwrap();
    assert_eq!(read_u32(s, data, 0).unwrap(), 0xC0FFEE);
    assert_eq!(s.info().counters.retired, 1);
    s.unmap_va(data).unwrap();
    s.free_bo(data).unwrap();
    t.drop_and_assert_no_leaks();
}

#[rstest]
fn fences_retire_in_submission_order(
    #[values(Tier::Sim, Tier::Cs, Tier::Kfd, Tier::Umq)] tier: Tier,
) {
    let mut t = UnderTest::open(tier);
    let s = t.s.as_mut();
    let data = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let data_va = s.map_va(data, None).unwrap();
    let mut fences: Vec<Fence> = Vec::new();
    for value in 1..=8u32 {
        let mut b = pm4rt_core::pm4::Builder::growable(s.info().gfx);
        b.write_data(data_va, &[value]).unwrap();
        let (_, va, n) = common::upload_ib(s, &b.into_vec());
        let f = s.submit_ib(va, n).unwrap();
        if let Some(prev) = fences.last() {
            assert!(f.seq > prev.seq, "fence {f} after {prev}");
        }
        fences.push(f);
    }
    s.wait_fence(*fences.last().unwrap(), WAIT).unwrap();
    // The last fence retiring means every earlier one has: none of them waits any more.
    for f in &fences {
        s.wait_fence(*f, Duration::ZERO).unwrap();
    }
    assert_eq!(read_u32(s, data, 0).unwrap(), 8, "the last submission wrote last");
    t.drop_and_assert_no_leaks();
}

#[rstest]
fn drop_with_work_in_flight_returns_and_leaks_nothing(
    #[values(Tier::Sim, Tier::Cs, Tier::Kfd, Tier::Umq)] tier: Tier,
) {
    let mut t = UnderTest::open(tier);
    let s = t.s.as_mut();
    // An IB that waits for a flag nobody sets: still running when the submitter goes.
    let (_flag_va, ib_va, n) = ib_waiting_for_flag(s);
    let f = s.submit_ib(ib_va, n).unwrap();
    let e = s.wait_fence(f, Duration::from_millis(20)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    let start = Instant::now();
    t.drop_and_assert_no_leaks();
    assert!(start.elapsed() < WAIT, "drop took {:?}", start.elapsed());
}

#[rstest]
fn a_gpu_page_fault_fails_the_wait_and_leaks_nothing(
    #[values(Tier::Sim, Tier::Cs, Tier::Kfd, Tier::Umq)] tier: Tier,
) {
    let mut t = UnderTest::open(tier);
    let s = t.s.as_mut();
    let (ib_va, n) = ib_faulting(s);
    let f = s.submit_ib(ib_va, n).unwrap();
    // Declared exception: a user queue learns of a fault only as a fence that never arrives
    // (the umq tier has no fault event to wait on), so its wait times out.
    let wait = if tier == Tier::Umq { Duration::from_millis(200) } else { WAIT };
    let e = s.wait_fence(f, wait).unwrap_err();
    match (tier, &e) {
        (Tier::Umq, Error::Timeout { .. }) => {}
        (Tier::Sim | Tier::Cs | Tier::Kfd, Error::Fault { .. } | Error::DeviceLost { .. }) => {}
        _ => panic!("{tier}: {e:?}"),
    }
    t.drop_and_assert_no_leaks();
}

#[rstest]
fn unknown_bos_and_fences_are_typed_errors(
    #[values(Tier::Sim, Tier::Cs, Tier::Kfd, Tier::Umq)] tier: Tier,
) {
    let mut t = UnderTest::open(tier);
    let s = t.s.as_mut();
    let stranger = BoHandle(0xDEAD);
    assert_eq!(s.free_bo(stranger), Err(Error::UnknownBo(stranger)));
    assert_eq!(s.map_va(stranger, None), Err(Error::UnknownBo(stranger)));
    let never = Fence { seq: 1 << 40 };
    assert_eq!(s.wait_fence(never, Duration::ZERO), Err(Error::UnknownFence(never)));
    t.drop_and_assert_no_leaks();
}

#[rstest]
fn an_ib_of_2_pow_20_dwords_is_refused_with_the_shared_rule(
    #[values(Tier::Sim, Tier::Cs, Tier::Kfd, Tier::Umq)] tier: Tier,
) {
    let mut t = UnderTest::open(tier);
    common::assert_refuses_an_ib_of_2_pow_20_dwords(t.s.as_mut());
    t.drop_and_assert_no_leaks();
}
