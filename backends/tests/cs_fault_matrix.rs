//! Fault-injection matrix for the cs tier on the emulated amdgpu device: every ioctl the
//! backend issues during a whole life (open, alloc, map, submit, wait, free, drop), failed
//! once at each of its occurrences with a plausible errno, must surface as
//! `Error::Io { step, errno }` naming that errno, and leave zero live kernel handles.

use std::sync::Arc;
use std::time::Duration;

use pm4rt_backends::cs::{CsConfig, CsSubmitter};
use pm4rt_core::abi::drm::DRM_IOCTL_AMDGPU_CTX;
use pm4rt_core::pm4::{encode_packet, Packet, ReleaseMem};
use pm4rt_core::{BoDesc, Errno, Error, Submitter};
use pm4rt_sim::emu::{EmulatedDevice, Preset, EMULATED_IOCTLS};

/// One whole life; returns the first error.
fn life(dev: &Arc<EmulatedDevice>) -> Result<(), Error> {
    let mut s = CsSubmitter::open(dev.clone(), CsConfig { emulated: true, ..CsConfig::default() })?;
    let ib = s.alloc_bo(&BoDesc::gtt(4096))?;
    let ib_va = s.map_va(ib, None)?;
    let fence = s.alloc_bo(&BoDesc { uncached: true, ..BoDesc::gtt(4096) })?;
    let fence_va = s.map_va(fence, None)?;
    let words = encode_packet(&Packet::ReleaseMem(ReleaseMem {
        event_type: 0x14,
        event_index: 5,
        data_sel: 1,
        addr: fence_va,
        data: 7,
        ..Default::default()
    }));
    let bytes: Vec<u8> = words.iter().flat_map(|d| d.to_le_bytes()).collect();
    s.write_bo(ib, 0, &bytes)?;
    let f = s.submit_ib(ib_va, words.len() as u32)?;
    s.wait_fence(f, Duration::from_secs(2))?;
    s.unmap_va(fence)?;
    s.free_bo(fence)?;
    s.free_bo(ib)?; // still mapped: unmapped by free_bo
    Ok(())
}

/// A plausible errno for each ioctl (what the kernel returns under memory pressure or a
/// reset), by command number.
fn errno_for(request: u32) -> Errno {
    match request & 0xFF {
        0x40 | 0x41 => Errno::ENOMEM,    // GEM_CREATE, GEM_MMAP
        0x44 | 0x49 => Errno::ECANCELED, // CS, WAIT_CS
        0x48 => Errno::ENOMEM,           // GEM_VA (page-table allocation)
        _ => Errno::EINVAL,
    }
}

#[test]
fn every_ioctl_of_a_whole_life_failing_is_typed_and_leaks_nothing() {
    let clean = Arc::new(EmulatedDevice::new(Preset::r9700_gfx1201()).unwrap());
    life(&clean).expect("a clean life succeeds");
    assert!(clean.live_handles().is_zero(), "{:?}", clean.live_handles());
    let mut cases = 0;
    for &req in EMULATED_IOCTLS {
        for nth in 1..=clean.ioctl_count(req) {
            let dev = Arc::new(EmulatedDevice::new(Preset::r9700_gfx1201()).unwrap());
            let errno = errno_for(req);
            dev.fail_ioctl(req, nth, errno);
            let result = life(&dev);
            let live = dev.live_handles();
            assert!(live.is_zero(), "ioctl {req:#x} #{nth}: leaked {live:?}");
            match result {
                Err(Error::Io { step, errno: e }) => {
                    assert_eq!(e, errno, "ioctl {req:#x} #{nth} at {step}");
                    assert!(!step.is_empty());
                }
                // A failure of the CS or WAIT_CS ioctl with ECANCELED is the kernel's
                // "context lost": the backend reports it as DeviceLost, by design.
                Err(Error::DeviceLost { reason }) if errno == Errno::ECANCELED => {
                    assert!(!reason.is_empty())
                }
                // The second CTX ioctl is CTX FREE, issued by Drop: there is no caller to
                // report it to; closing the render node releases the context (no leak above).
                Ok(()) if req == DRM_IOCTL_AMDGPU_CTX && nth == 2 => {}
                other => panic!("ioctl {req:#x} #{nth} failing with {errno}: {other:?}"),
            }
            cases += 1;
        }
    }
    assert!(cases >= 12, "only {cases} cases");
}
