//! The cs tier's whole life on the emulated amdgpu device (pm4rt-sim `emu`): open, allocate,
//! map, submit WRITE_DATA + RELEASE_MEM IBs built with `encode_packet`, wait, read back, free,
//! and nothing alive after drop. Also device loss, hangs and injected ioctl failures.

mod common;

use std::sync::Arc;
use std::time::Duration;

use pm4rt_backends::cs::{CsConfig, CsSubmitter};
use pm4rt_core::abi::drm::DRM_IOCTL_AMDGPU_CS;
use pm4rt_core::pm4::{encode_packet, Packet, ReleaseMem, WriteData};
use pm4rt_core::submitter::read_u32;
use pm4rt_core::{BoDesc, BoHandle, Errno, Error, GfxTarget, Submitter, Tier};
use pm4rt_sim::emu::{EmulatedDevice, Preset};

fn device(preset: Preset) -> Arc<EmulatedDevice> {
    Arc::new(EmulatedDevice::new(preset).expect("emulated device"))
}

fn open(dev: &Arc<EmulatedDevice>) -> CsSubmitter {
    CsSubmitter::open(dev.clone(), CsConfig { emulated: true, ..CsConfig::default() })
        .expect("open on the emulated device")
}

/// WRITE_DATA `value` to `dst` (memory, write confirm), then an end-of-pipe RELEASE_MEM writing
/// the 32-bit `fence` to `fence_va` (event 0x14 CACHE_FLUSH_AND_INV_TS_EVENT, index 5, DATA_SEL 1
/// = low 32 bits: nvd.h `PACKET3_RELEASE_MEM`, `gfx_v11_0_ring_emit_fence`).
fn ib(dst: u64, value: u32, fence_va: u64, fence: u32) -> Vec<u8> {
    let mut dw = encode_packet(&Packet::WriteData(WriteData {
        dst_sel: 5,
        wr_confirm: true,
        addr: dst,
        data: vec![value],
        ..Default::default()
    }));
    dw.extend(encode_packet(&Packet::ReleaseMem(ReleaseMem {
        event_type: 0x14,
        event_index: 5,
        data_sel: 1,
        addr: fence_va,
        data: u64::from(fence),
        ..Default::default()
    })));
    dw.iter().flat_map(|d| d.to_le_bytes()).collect()
}

struct Setup {
    ib_bo: BoHandle,
    ib_va: u64,
    data: BoHandle,
    data_va: u64,
}

fn setup(s: &mut CsSubmitter) -> Setup {
    let ib_bo = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let ib_va = s.map_va(ib_bo, None).unwrap();
    let data = s.alloc_bo(&BoDesc { uncached: true, ..BoDesc::gtt(4096) }).unwrap();
    let data_va = s.map_va(data, None).unwrap();
    Setup { ib_bo, ib_va, data, data_va }
}

#[test]
fn whole_life_on_the_emulated_r9700() {
    let dev = device(Preset::r9700_gfx1201());
    let preset = dev.preset();
    let mut s = open(&dev);
    let info = s.info();
    assert_eq!(info.tier, Tier::Cs);
    assert_eq!(info.gfx, GfxTarget::Gfx1201);
    assert!(info.emulated);
    assert_eq!(info.va_range, preset.va_start().next_multiple_of(4096)..preset.va_max());

    let Setup { ib_bo, ib_va, data, data_va } = setup(&mut s);
    let bytes = ib(data_va, 0xCAFE_F00D, data_va + 8, 1);
    s.write_bo(ib_bo, 0, &bytes).unwrap();
    let before = s.info().counters.ioctls;
    let f = s.submit_ib(ib_va, (bytes.len() / 4) as u32).unwrap();
    assert_eq!(s.info().counters.ioctls - before, 1, "one ioctl per submit");
    s.wait_fence(f, Duration::from_secs(5)).unwrap();
    assert_eq!(s.info().counters.ioctls - before, 2, "one ioctl per wait");
    assert_eq!(read_u32(&s, data, 0).unwrap(), 0xCAFE_F00D);
    assert_eq!(read_u32(&s, data, 8).unwrap(), 1);

    // Several submissions in flight, each its own IB in the same BO; wait only for the last.
    let mut last = f;
    for i in 1..=4u32 {
        let off = u64::from(i) * 256;
        let bytes = ib(data_va + 16 + 4 * u64::from(i), 0x100 + i, data_va + 8, 1 + i);
        s.write_bo(ib_bo, off, &bytes).unwrap();
        last = s.submit_ib(ib_va + off, (bytes.len() / 4) as u32).unwrap();
    }
    assert_eq!(last.seq, 5);
    s.wait_fence(last, Duration::from_secs(5)).unwrap();
    for i in 1..=4u32 {
        assert_eq!(read_u32(&s, data, 16 + 4 * u64::from(i)).unwrap(), 0x100 + i);
    }
    assert_eq!(read_u32(&s, data, 8).unwrap(), 5);
    let before = s.info().counters.ioctls;
    s.wait_fence(pm4rt_core::Fence { seq: 3 }, Duration::from_secs(1)).unwrap();
    assert_eq!(s.info().counters.ioctls, before, "retired earlier fence: no ioctl");
    let c = s.info().counters;
    assert_eq!((c.submissions, c.retired), (5, 5));

    s.free_bo(data).unwrap();
    s.free_bo(ib_bo).unwrap();
    drop(s);
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

#[test]
fn drop_with_live_bos_and_work_in_flight_releases_everything() {
    let dev = device(Preset::r9700_gfx1201());
    let mut s = open(&dev);
    let Setup { ib_bo, ib_va, data_va, .. } = setup(&mut s);
    let _hidden = s
        .alloc_bo(&BoDesc { domain: pm4rt_core::Domain::Vram, cpu_access: false, ..BoDesc::gtt(1) })
        .unwrap();
    let bytes = ib(data_va, 7, data_va + 8, 1);
    s.write_bo(ib_bo, 0, &bytes).unwrap();
    s.submit_ib(ib_va, (bytes.len() / 4) as u32).unwrap();
    drop(s);
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

#[test]
fn gfx1100_preset_is_detected() {
    let dev = device(Preset::rx7900xtx_gfx1100());
    assert_eq!(open(&dev).info().gfx, GfxTarget::Gfx1100);
    assert!(dev.live_handles().is_zero());
}

#[test]
fn a_hung_job_times_out_within_the_bound() {
    let dev = device(Preset::r9700_gfx1201());
    dev.hang_after(0);
    let mut s = open(&dev);
    let Setup { ib_bo, ib_va, data_va, .. } = setup(&mut s);
    let bytes = ib(data_va, 1, data_va + 8, 1);
    s.write_bo(ib_bo, 0, &bytes).unwrap();
    let f = s.submit_ib(ib_va, (bytes.len() / 4) as u32).unwrap();
    let t = std::time::Instant::now();
    let e = s.wait_fence(f, Duration::from_millis(50)).unwrap_err();
    assert_eq!(e, Error::Timeout { fence: f, waited: Duration::from_millis(50) });
    assert!(t.elapsed() < Duration::from_secs(5), "bounded: {:?}", t.elapsed());
    drop(s);
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

#[test]
fn device_loss_is_reported_with_the_context_state() {
    let dev = device(Preset::r9700_gfx1201());
    dev.hang_after(0);
    let mut s = open(&dev);
    let Setup { ib_bo, ib_va, data_va, .. } = setup(&mut s);
    let bytes = ib(data_va, 1, data_va + 8, 1);
    s.write_bo(ib_bo, 0, &bytes).unwrap();
    let f = s.submit_ib(ib_va, (bytes.len() / 4) as u32).unwrap();
    dev.lose_device(true);
    let Error::DeviceLost { reason } = s.wait_fence(f, Duration::from_secs(1)).unwrap_err() else {
        panic!("expected DeviceLost")
    };
    assert!(reason.contains("VRAM lost") && reason.contains("guilty"), "{reason}");
    assert!(matches!(s.submit_ib(ib_va, 4), Err(Error::DeviceLost { .. })));
    drop(s);
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

#[test]
fn injected_cs_failure_is_typed_and_leaks_nothing() {
    let dev = device(Preset::r9700_gfx1201());
    dev.fail_ioctl(DRM_IOCTL_AMDGPU_CS, 1, Errno::ENOMEM);
    let mut s = open(&dev);
    let Setup { ib_bo, ib_va, data, data_va } = setup(&mut s);
    let bytes = ib(data_va, 3, data_va + 8, 1);
    s.write_bo(ib_bo, 0, &bytes).unwrap();
    let n = (bytes.len() / 4) as u32;
    assert_eq!(s.submit_ib(ib_va, n), Err(Error::Io { step: "CS", errno: Errno::ENOMEM }));
    let f = s.submit_ib(ib_va, n).unwrap();
    assert_eq!(f.seq, 1, "a failed submission takes no sequence number");
    s.wait_fence(f, Duration::from_secs(5)).unwrap();
    assert_eq!(read_u32(&s, data, 0).unwrap(), 3);
    drop(s);
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

#[test]
fn an_ib_of_2_pow_20_dwords_is_refused_before_the_cs_ioctl() {
    let dev = device(Preset::r9700_gfx1201());
    let mut s = open(&dev);
    let cs_calls = dev.ioctl_count(DRM_IOCTL_AMDGPU_CS);
    common::assert_refuses_an_ib_of_2_pow_20_dwords(&mut s);
    assert_eq!(dev.ioctl_count(DRM_IOCTL_AMDGPU_CS), cs_calls, "the kernel never saw it");
}
