//! The umq tier on the emulated amdgpu device: the whole life on a preset with user queues,
//! the R9700-on-6.17 preset refused by the probe (no USERQ ioctl), the kernel's USERQ checks
//! through raw ioctls, a fault-injection matrix over every ioctl of open, and zero ioctls per
//! submission in steady state.
//!
//! Request numbers and errnos are literals from include/uapi/drm/amdgpu_drm.h / drm.h (the
//! `DRM_IOWR` encodings) and the kernel functions the emulator cites; expected memory contents
//! are the literal values the test's own IBs write.

mod common;

use std::sync::Arc;
use std::time::Duration;

use pm4rt_backends::umq::{ProbeFailure, UmqConfig, UmqSubmitter};
use pm4rt_core::abi::drm::{
    GemCreateIn, GemCreateOut, GemVa, UserqIn, UserqMqdComputeGfx11, UserqOut,
};
use pm4rt_core::abi::ioctl::{arg_for, decode_arg};
use pm4rt_core::driver::user_ptr;
use pm4rt_core::pm4::Builder;
use pm4rt_core::{BoDesc, Driver, Errno, Error, Fd, Submitter, Tier};
use pm4rt_sim::emu::{EmulatedDevice, Preset, EMULATED_IOCTLS};

// Golden request numbers (include/uapi/drm/amdgpu_drm.h, drm.h).
const GEM_CREATE: u32 = 0xC020_6440;
const GEM_MMAP: u32 = 0xC008_6441;
const INFO: u32 = 0x4020_6445;
const GEM_VA: u32 = 0x4040_6448;
const USERQ: u32 = 0xC048_6456;
const GEM_CLOSE: u32 = 0x4008_6409;
// DRM core syncobj requests (include/uapi/drm/drm.h: DRM_IOWR(0xBF / 0xC0 / 0xCA, ...)).
const SYNCOBJ_CREATE: u32 = 0xC008_64BF;
const SYNCOBJ_DESTROY: u32 = 0xC008_64C0;
const SYNCOBJ_TIMELINE_WAIT: u32 = 0xC028_64CA;
const NODE: &str = "/dev/dri/renderD128";
const WAIT: Duration = Duration::from_secs(10);

fn userq_device() -> Arc<EmulatedDevice> {
    Arc::new(EmulatedDevice::new(Preset::rx7900xtx_userq()).unwrap())
}

fn config() -> UmqConfig {
    UmqConfig { emulated: true, ..UmqConfig::with_path(NODE) }
}

fn total_ioctls(dev: &EmulatedDevice) -> u64 {
    EMULATED_IOCTLS.iter().map(|&r| dev.ioctl_count(r)).sum()
}

/// An IB writing `value` to `va` (WRITE_DATA).
fn write_ib(s: &UmqSubmitter, va: u64, value: u32) -> Vec<u32> {
    let mut b = Builder::growable(s.info().gfx);
    b.write_data(va, &[value]).unwrap();
    b.into_vec()
}

#[test]
fn whole_life_with_user_queues_and_zero_live_handles() {
    let dev = userq_device();
    {
        // A 4 KiB ring (1024 dwords) so 300 submissions wrap it many times.
        let mut s =
            UmqSubmitter::open(dev.clone(), UmqConfig { ring_bytes: 4096, ..config() }).unwrap();
        assert_eq!(s.info().tier, Tier::Umq);
        assert!(s.info().emulated);
        assert_eq!(s.info().gfx.name(), "gfx1100");
        assert_eq!(dev.ioctl_count(USERQ), 1);
        assert_eq!(dev.live_handles().user_queues, 1);

        let data = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let data_va = s.map_va(data, None).unwrap();
        let ib = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let ib_va = s.map_va(ib, None).unwrap();

        // First submission: the value lands and the fence retires.
        let words = write_ib(&s, data_va, 0xC0FF_EE00);
        s.write_bo(ib, 0, bytemuck::cast_slice(&words)).unwrap();
        let f = s.submit_ib(ib_va, words.len() as u32).unwrap();
        s.wait_fence(f, WAIT).unwrap();
        let mut out = [0u8; 4];
        s.read_bo(data, 0, &mut out).unwrap();
        assert_eq!(u32::from_le_bytes(out), 0xC0FF_EE00);

        // Steady state: 300 submissions, each its own value slot; no ioctl at all.
        let ioctls = total_ioctls(&dev);
        let counted = s.info().counters.ioctls;
        let rings = dev.doorbell_rings();
        let mut last = f;
        for i in 0..300u32 {
            let slot = u64::from(i % 1000) * 4;
            let words = write_ib(&s, data_va + slot, 0x1000 + i);
            let off = u64::from(i % 8) * 64; // 8 IB slots, reused only after their work ran
            if i >= 8 {
                s.wait_fence(pm4rt_core::Fence { seq: last.seq - 7 }, WAIT).unwrap();
            }
            s.write_bo(ib, off, bytemuck::cast_slice(&words)).unwrap();
            last = s.submit_ib(ib_va + off, words.len() as u32).unwrap();
        }
        s.wait_fence(last, WAIT).unwrap();
        assert_eq!(total_ioctls(&dev), ioctls, "zero ioctls per submission and wait");
        assert_eq!(s.info().counters.ioctls, counted);
        assert_eq!(dev.doorbell_rings(), rings + 300, "one doorbell write per submission");
        assert!(s.wptr() > s.ring_dwords() * 5, "the ring wrapped");
        for i in 0..300u32 {
            let mut out = [0u8; 4];
            s.read_bo(data, u64::from(i) * 4, &mut out).unwrap();
            assert_eq!(u32::from_le_bytes(out), 0x1000 + i, "slot {i}");
        }
        assert_eq!(s.info().counters.submissions, 301);
        assert_eq!(s.info().counters.retired, 301);

        s.unmap_va(data).unwrap();
        s.free_bo(data).unwrap();
    }
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

#[test]
fn r9700_preset_probe_gives_the_reasons_and_never_creates() {
    let dev = Arc::new(EmulatedDevice::r9700().unwrap());
    let p = UmqSubmitter::probe(dev.clone(), &config()).unwrap();
    assert_eq!(
        p.failures,
        vec![
            ProbeFailure::ParamOff { value: -1 },
            ProbeFailure::NoComputeInIpMask { mask: 0 },
            ProbeFailure::NoComputeSlots { slots: 0 },
        ]
    );
    let e = UmqSubmitter::open(dev.clone(), config()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Unsupported(_)));
    assert!(msg.contains("amdgpu.user_queue = -1"), "{msg}");
    assert!(msg.contains("userq_num_slots = 0"), "{msg}");
    assert_eq!(dev.ioctl_count(USERQ), 0, "CREATE never attempted");
    assert_eq!(dev.ioctl_count(GEM_CREATE), 0, "nothing allocated either");
    assert!(dev.live_handles().is_zero());
}

#[test]
fn each_probe_check_alone_keeps_create_away() {
    let base = Preset::rx7900xtx_userq();
    let cases = [
        (Preset { user_queue: 0, ..base.clone() }, ProbeFailure::ParamOff { value: 0 }),
        (Preset { userq_ip_mask: 1, ..base.clone() }, ProbeFailure::NoComputeInIpMask { mask: 1 }),
        (
            Preset { userq_compute_slots: 0, ..base.clone() },
            ProbeFailure::NoComputeSlots { slots: 0 },
        ),
    ];
    for (preset, want) in cases {
        let dev = Arc::new(EmulatedDevice::new(preset).unwrap());
        let e = UmqSubmitter::open(dev.clone(), config()).unwrap_err();
        assert!(e.to_string().contains(&want.to_string()), "{e}");
        assert_eq!(dev.ioctl_count(USERQ), 0);
        assert!(dev.live_handles().is_zero());
    }
}

// --- the kernel's USERQ checks, through raw ioctls --------------------------------------------

struct Raw {
    dev: Arc<EmulatedDevice>,
    fd: Fd,
}

impl Raw {
    fn new(preset: Preset) -> Raw {
        let dev = Arc::new(EmulatedDevice::new(preset).unwrap());
        let fd = dev.open(NODE).unwrap();
        Raw { dev, fd }
    }

    fn gem(&self, size: u64, domains: u64) -> u32 {
        let mut arg = arg_for(
            GEM_CREATE,
            &GemCreateIn { bo_size: size, alignment: 4096, domains, domain_flags: 0 },
        );
        self.dev.ioctl(self.fd, GEM_CREATE, &mut arg, &mut []).unwrap();
        decode_arg::<GemCreateOut>(&arg).unwrap().handle
    }

    fn map(&self, handle: u32, va: u64, size: u64) {
        let v = GemVa {
            handle,
            operation: 1,
            flags: (1 << 1) | (1 << 2),
            va_address: va,
            map_size: size,
            ..Default::default()
        };
        let mut arg = arg_for(GEM_VA, &v);
        self.dev.ioctl(self.fd, GEM_VA, &mut arg, &mut []).unwrap();
    }

    fn userq(&self, q: UserqIn, eop_va: u64) -> Result<u32, Errno> {
        let mut mqd = bytemuck::bytes_of(&UserqMqdComputeGfx11 { eop_va }).to_vec();
        let q = UserqIn { mqd: if q.mqd == 1 { user_ptr(&mqd) } else { q.mqd }, ..q };
        let mut arg = arg_for(USERQ, &q);
        self.dev.ioctl(self.fd, USERQ, &mut arg, &mut [&mut mqd[..]])?;
        Ok(decode_arg::<UserqOut>(&arg).unwrap().queue_id)
    }
}

const RING: u64 = 0x10_0000_0000;
const WPTR: u64 = RING + 0x10000;
const RPTR: u64 = WPTR + 0x1000;
const EOP: u64 = RPTR + 0x1000;

/// A raw device with a doorbell BO (handle 1), ring, wptr, rptr and EOP mapped.
fn raw_setup(preset: Preset) -> (Raw, UserqIn) {
    let r = Raw::new(preset);
    let db = r.gem(4096, 0x40);
    let ring = r.gem(0x10000, 2);
    r.map(ring, RING, 0x10000);
    let w = r.gem(4096, 2);
    r.map(w, WPTR, 4096);
    let rp = r.gem(4096, 2);
    r.map(rp, RPTR, 4096);
    let eop = r.gem(4096, 4);
    r.map(eop, EOP, 4096);
    let q = UserqIn {
        op: 1,
        ip_type: 1,
        doorbell_handle: db,
        doorbell_offset: 4,
        queue_va: RING,
        queue_size: 0x10000,
        rptr_va: RPTR,
        wptr_va: WPTR,
        mqd: 1, // replaced by the MQD buffer's address
        mqd_size: 8,
        ..Default::default()
    };
    (r, q)
}

#[test]
fn kernel_userq_checks() {
    // No IP with user queues at all (the R9700 default): ENOTSUPP.
    let (r, q) = raw_setup(Preset::r9700_gfx1201());
    assert_eq!(r.userq(q, EOP), Err(Errno::ENOTSUPP));

    // User queues for GFX only: COMPUTE is "not supported for this IP".
    let (r, q) = raw_setup(Preset { userq_ip_mask: 1, ..Preset::rx7900xtx_userq() });
    assert_eq!(r.userq(q, EOP), Err(Errno::EINVAL));
    assert!(r.dev.last_error().unwrap().contains("Usermode queue is not supported for this IP"));

    let (r, q) = raw_setup(Preset::rx7900xtx_userq());
    let bad: Vec<(UserqIn, u64, &str)> = vec![
        (UserqIn { queue_size: 0x3000, ..q }, EOP, "power of 2"),
        (UserqIn { queue_size: 2048, ..q }, EOP, "smaller than"),
        (UserqIn { rptr_va: 0, ..q }, EOP, "rptr or wptr"),
        (UserqIn { wptr_va: 0, ..q }, EOP, "rptr or wptr"),
        (UserqIn { queue_va: RING + 0x20_0000, ..q }, EOP, "not mapped"),
        (UserqIn { queue_size: 0x20000, ..q }, EOP, "not mapped"),
        (UserqIn { doorbell_offset: 512, ..q }, EOP, "doorbell_offset"),
        (UserqIn { doorbell_handle: 2, ..q }, EOP, "DOORBELL domain"),
        (UserqIn { doorbell_handle: 99, ..q }, EOP, "Can't find"),
        (UserqIn { mqd_size: 16, ..q }, EOP, "mqd_size"),
        (q, EOP + 0x10_0000, "EOP VA"),
        (UserqIn { flags: 1 << 3, ..q }, EOP, "flags"),
        (UserqIn { ip_type: 5, ..q }, EOP, "IP type"),
    ];
    for (arg, eop, why) in bad {
        assert_eq!(r.userq(arg, eop), Err(Errno::EINVAL), "{why}");
        let last = r.dev.last_error().unwrap();
        assert!(last.contains(why), "{why}: {last}");
    }
    // HIGH priority needs CAP_SYS_NICE (EACCES).
    assert_eq!(r.userq(UserqIn { flags: 3, ..q }, EOP), Err(Errno::EACCES));
    assert_eq!(r.dev.live_handles().user_queues, 0);

    // A valid create, then FREE rules.
    let id = r.userq(q, EOP).unwrap();
    assert_eq!(id, 1);
    let free = |f: UserqIn| r.userq(UserqIn { mqd: 0, ..f }, 0);
    assert_eq!(
        free(UserqIn { op: 2, queue_id: id, queue_va: RING, ..Default::default() }),
        Err(Errno::EINVAL)
    );
    assert_eq!(free(UserqIn { op: 2, queue_id: id + 1, ..Default::default() }), Err(Errno::ENOENT));
    assert_eq!(free(UserqIn { op: 2, queue_id: id, ..Default::default() }), Ok(0));
    assert_eq!(r.dev.live_handles().user_queues, 0);
    // A queue left behind goes away with its file.
    r.userq(q, EOP).unwrap();
    assert_eq!(r.dev.live_handles().user_queues, 1);
    r.dev.close(r.fd).unwrap();
    assert_eq!(r.dev.live_handles().user_queues, 0);
}

// --- fault injection --------------------------------------------------------------------------

#[test]
fn fault_injection_matrix_over_open() {
    // Open issues INFO x3, SYNCOBJ_CREATE, then per BO GEM_CREATE (6), GEM_MMAP (5),
    // GEM_VA (5), then SYNCOBJ_TIMELINE_WAIT and USERQ.
    let cases: Vec<(u32, u64, Option<&str>)> = vec![
        (INFO, 1, None), // DEV_INFO: a probe failure
        (INFO, 2, None), // HW_IP_INFO
        (INFO, 3, None), // UQ_FW_AREAS
        (SYNCOBJ_CREATE, 1, Some("SYNCOBJ_CREATE")),
        (SYNCOBJ_TIMELINE_WAIT, 1, Some("SYNCOBJ_TIMELINE_WAIT (GEM_VA update)")),
        (GEM_CREATE, 1, Some("GEM_CREATE")),
        (GEM_CREATE, 3, Some("GEM_CREATE")),
        (GEM_CREATE, 6, Some("GEM_CREATE")),
        (GEM_MMAP, 1, Some("GEM_MMAP")),
        (GEM_MMAP, 5, Some("GEM_MMAP")),
        (GEM_VA, 1, Some("GEM_VA MAP")),
        (GEM_VA, 4, Some("GEM_VA MAP")),
        (GEM_VA, 5, Some("GEM_VA MAP")),
        (USERQ, 1, Some("USERQ CREATE")),
    ];
    for errno in [Errno::ENOMEM, Errno::EINTR, Errno::ENODEV] {
        for &(req, nth, step) in &cases {
            let dev = userq_device();
            dev.fail_ioctl(req, nth, errno);
            let e = UmqSubmitter::open(dev.clone(), config()).unwrap_err();
            match step {
                Some(step) => assert_eq!(e, Error::Io { step, errno }, "{req:#x} #{nth}"),
                None => assert!(matches!(e, Error::Unsupported(_)), "{req:#x} #{nth}: {e:?}"),
            }
            if req != USERQ {
                assert_eq!(dev.ioctl_count(USERQ), 0, "no CREATE after a failed step");
            }
            assert!(dev.live_handles().is_zero(), "{req:#x} #{nth}: {:?}", dev.live_handles());
        }
    }
}

#[test]
fn failing_teardown_calls_still_release_the_rest() {
    for (req, nth) in [(USERQ, 2), (GEM_VA, 6), (GEM_CLOSE, 1), (SYNCOBJ_DESTROY, 1)] {
        let dev = userq_device();
        dev.fail_ioctl(req, nth, Errno::EIO);
        let s = UmqSubmitter::open(dev.clone(), config()).unwrap();
        drop(s);
        let live = dev.live_handles();
        // Whatever the failed call held may stay; everything else is gone and the file closed
        // (closing the file releases the rest, as drm_release does).
        assert_eq!(live.fds, 0, "{req:#x}: {live:?}");
        assert!(live.is_zero(), "{req:#x}: {live:?}");
    }
}

#[test]
fn a_hung_queue_times_out_within_the_deadline() {
    let dev = userq_device();
    let mut s = UmqSubmitter::open(dev.clone(), config()).unwrap();
    let ib = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let ib_va = s.map_va(ib, None).unwrap();
    // WAIT_REG_MEM on a value that never comes would hang; an unmapped write faults the
    // queue instead: the fence never arrives and the wait is bounded.
    let words = write_ib(&s, 0x7_0000_0000, 1);
    s.write_bo(ib, 0, bytemuck::cast_slice(&words)).unwrap();
    let f = s.submit_ib(ib_va, words.len() as u32).unwrap();
    let t = std::time::Instant::now();
    let e = s.wait_fence(f, Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(s);
    assert!(dev.live_handles().is_zero());
}

#[test]
fn open_costs_match_the_documented_ioctl_counts() {
    // The queue the tier creates passes the emulator's kernel checks with Mesa's sizes.
    let dev = userq_device();
    let s = UmqSubmitter::open(dev.clone(), config()).unwrap();
    assert_eq!(s.ring_dwords(), 0x10000 / 4);
    assert_eq!(dev.ioctl_count(GEM_CREATE), 6);
    assert_eq!(dev.ioctl_count(GEM_MMAP), 5);
    assert_eq!(dev.ioctl_count(GEM_VA), 5);
    assert_eq!(dev.ioctl_count(INFO), 3);
    // One timeline syncobj for the VM; the queue BOs' page-table updates waited once.
    assert_eq!(dev.ioctl_count(SYNCOBJ_CREATE), 1);
    assert_eq!(dev.ioctl_count(SYNCOBJ_TIMELINE_WAIT), 1);
    assert_eq!(dev.live_handles().syncobjs, 1);
    let vas = s.queue_vas();
    assert_eq!(vas.eop % 256, 0);
    drop(s);
    assert_eq!(dev.ioctl_count(GEM_CLOSE), 6);
    assert_eq!(dev.ioctl_count(SYNCOBJ_DESTROY), 1);
    assert!(dev.live_handles().is_zero());
}

/// Freeing a user queue with work in flight (an IB blocked on a flag nobody writes) unmaps it
/// before its buffers go away, as amdgpu_userq_destroy does: no GPU reset follows and the
/// next queue on the device works.
#[test]
fn teardown_with_work_in_flight_leaves_the_device_healthy() {
    let dev = userq_device();
    let mut s = UmqSubmitter::open(dev.clone(), config()).unwrap();
    let (_, ib_va, n) = common::ib_waiting_for_flag(&mut s);
    let f = s.submit_ib(ib_va, n).unwrap();
    assert!(matches!(s.wait_fence(f, Duration::from_millis(20)), Err(Error::Timeout { .. })));
    drop(s);
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());

    let mut s = UmqSubmitter::open(dev.clone(), config()).unwrap();
    let (data, ib_va, n) = common::ib_writing(&mut s, 0x5EED);
    let f = s.submit_ib(ib_va, n).unwrap();
    s.wait_fence(f, WAIT).unwrap();
    assert_eq!(pm4rt_core::submitter::read_u32(&s, data, 0).unwrap(), 0x5EED);
}

/// Eight rings' worth of submissions back to back (a 4 KiB ring of 1024 dwords, 20 dwords
/// each): the CP reports its read pointer as a 32-bit dword offset wrapped at the ring size
/// (kfdtest: "On PM4 queues Rptr is always 32-bit in dword units and wraps at queue size"),
/// so the tier must bound ring space by retired fences, as Mesa does; a tier reconstructing a
/// 64-bit read pointer from the report stalls after about one ring.
#[test]
fn several_rings_of_submissions_with_the_cps_wrapping_rptr() {
    let dev = userq_device();
    {
        let mut s =
            UmqSubmitter::open(dev.clone(), UmqConfig { ring_bytes: 4096, ..config() }).unwrap();
        let data = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let data_va = s.map_va(data, None).unwrap();
        let ib = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let ib_va = s.map_va(ib, None).unwrap();
        let words = write_ib(&s, data_va, 0x5EED_0001);
        s.write_bo(ib, 0, bytemuck::cast_slice(&words)).unwrap();
        // The dword after the 32-bit report is not the CP's: it must stay as written here.
        let rptr_va = s.queue_vas().rptr;
        dev.memory().write_u32(rptr_va + 4, 0xDEAD_BEEF).unwrap();
        let n = 8 * 1024 / 20 + 1;
        let mut last = None;
        for _ in 0..n {
            last = Some(s.submit_ib(ib_va, words.len() as u32).unwrap());
        }
        s.wait_fence(last.unwrap(), WAIT).unwrap();
        assert!(s.wptr() >= 8 * s.ring_dwords(), "{} dwords written", s.wptr());
        assert_eq!(s.info().counters.retired, n as u64);
        let mem = dev.memory();
        let t = std::time::Instant::now();
        let end = (s.wptr() % s.ring_dwords()) as u32;
        while mem.read_u32(rptr_va).unwrap() != end && t.elapsed() < WAIT {
            std::thread::yield_now();
        }
        assert_eq!(mem.read_u32(rptr_va).unwrap(), end, "rptr = wptr mod ring, in dwords");
        assert_eq!(mem.read_u32(rptr_va + 4).unwrap(), 0xDEAD_BEEF);
        let mut out = [0u8; 4];
        s.read_bo(data, 0, &mut out).unwrap();
        assert_eq!(u32::from_le_bytes(out), 0x5EED_0001);
    }
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

/// A user queue whose doorbell is rung without the write pointer stored in the wptr BO runs
/// nothing new: MES maps the queue from the wptr BO (mes_userqueue.c `mes_userq_map`:
/// `wptr_mc_addr`, "FW expects WPTR BOs to be mapped into GART").
#[test]
fn doorbell_without_the_stored_wptr_runs_nothing() {
    let dev = userq_device();
    let drv = common::lost_wptr::LostWptr::new(dev.clone());
    {
        let mut s = UmqSubmitter::open(drv.clone() as Arc<dyn Driver>, config()).unwrap();
        common::assert_doorbell_without_the_stored_wptr_runs_nothing(&mut s, &drv.armed);
    }
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

/// Both probe paths on the emulated device: Linux 6.17 (UQ_FW_AREAS(COMPUTE) is EINVAL: Mesa's
/// EOP layout) and a later kernel that reports the compute metadata (2048 bytes aligned 256,
/// raised to Mesa's page). Either way the queue runs.
#[test]
fn umq_opens_with_and_without_the_compute_fw_areas_query() {
    let newer = Preset { uq_fw_areas_compute: true, ..Preset::rx7900xtx_userq() };
    for (preset, from_kernel) in [(Preset::rx7900xtx_userq(), false), (newer, true)] {
        let dev = Arc::new(EmulatedDevice::new(preset).unwrap());
        {
            let mut s = UmqSubmitter::open(dev.clone(), config()).unwrap();
            let p = s.probe_result();
            assert_eq!(p.eop.is_some(), from_kernel);
            assert_eq!(p.eop_not_reported, (!from_kernel).then_some(Errno::EINVAL));
            let eop = p.eop_layout();
            assert_eq!((eop.size, eop.alignment, eop.from_kernel), (4096, 256, from_kernel));
            let (data, ib_va, n) = common::ib_writing(&mut s, 0xE0E0);
            let f = s.submit_ib(ib_va, n).unwrap();
            s.wait_fence(f, WAIT).unwrap();
            assert_eq!(pm4rt_core::submitter::read_u32(&s, data, 0).unwrap(), 0xE0E0);
        }
        assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
    }
}

/// A user queue that faulted does not poison the next one: a queue created afterwards runs.
#[test]
fn a_queue_created_after_a_fault_runs() {
    let dev = userq_device();
    {
        let mut s = UmqSubmitter::open(dev.clone(), config()).unwrap();
        let (ib_va, n) = common::ib_faulting(&mut s);
        let f = s.submit_ib(ib_va, n).unwrap();
        // A user queue learns of the fault only as a fence that never arrives.
        assert!(s.wait_fence(f, Duration::from_millis(300)).is_err());
    }
    common::assert_runs(&mut UmqSubmitter::open(dev.clone(), config()).unwrap(), 0x600D);
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}
