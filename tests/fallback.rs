//! Run-time fallback: a tier that hangs or loses its device mid-run is abandoned, the session
//! moves to the next tier, re-creates its buffers from host copies, replays the failed batch,
//! and its results equal a session that ran on the simulator from the start.

use std::time::Duration;

use pm4rt::probe::ProbeOptions;
use pm4rt::runtime::{candidates, select, Machine, Policy};
use pm4rt::session::{Session, SessionError, VecHandle, WeightFormat, WeightHandle};
use pm4rt::Tier;
use pm4rt_core::abi::drm::DRM_IOCTL_AMDGPU_CS;
use pm4rt_sim::emu::EmulatedDevice;
use pm4rt_sim::SimSubmitter;
use std::sync::Arc;

const ROWS: usize = 96;
const COLS: usize = 64;

/// A deterministic F32 matrix and input (small integers and halves: exact in f32).
fn data() -> (Vec<u8>, Vec<f32>, Vec<f32>) {
    let w: Vec<f32> = (0..ROWS * COLS).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.5).collect();
    let x: Vec<f32> = (0..COLS).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.25).collect();
    let nw: Vec<f32> = (0..COLS).map(|i| 1.0 + (i % 3) as f32 * 0.5).collect();
    (w.iter().flat_map(|f| f.to_le_bytes()).collect(), x, nw)
}

struct Model {
    w: WeightHandle,
    x: VecHandle,
    nw: VecHandle,
    h: VecHandle,
    y: VecHandle,
}

fn load(s: &mut Session) -> Model {
    let (wb, x, nw) = data();
    let w = s.upload_weights(WeightFormat::F32, ROWS, COLS, &wb).unwrap();
    let [xv, nwv, h, y] = [COLS, COLS, COLS, ROWS].map(|n| s.alloc_vec(n).unwrap());
    s.write_vec(xv, &x).unwrap();
    s.write_vec(nwv, &nw).unwrap();
    Model { w, x: xv, nw: nwv, h, y }
}

/// What one step produced: the product, its argmax and the fused LM head's (index, value).
type StepOut = (Vec<f32>, (u32, f32), (u32, f32));

/// One "token": RMS norm in place on x, the product, its argmax and the fused LM head.
fn step(s: &mut Session, m: &Model) -> Result<StepOut, SessionError> {
    let mut b = s.batch();
    b.rms_norm(m.x, m.nw, 1e-6, m.h)?;
    b.dmmv(m.w, m.h, m.y)?;
    let a = b.argmax(m.y)?;
    let f = b.dmmv_argmax(m.w, m.h)?;
    b.copy(m.h, m.x)?;
    let r = b.submit_and_wait(Duration::from_millis(300))?;
    Ok((s.read_vec(m.y)?, r.argmax(a), r.argmax(f)))
}

fn reference(steps: usize) -> Vec<StepOut> {
    let mut s = Session::new(Box::new(SimSubmitter::new().unwrap())).unwrap();
    let m = load(&mut s);
    (0..steps).map(|_| step(&mut s, &m).unwrap()).collect()
}

/// The healthy gfx1201 machine with only the cs and sim candidates, and its device.
fn cs_then_sim() -> (Session, Arc<EmulatedDevice>) {
    let machine = Machine::emulated("gfx1201").unwrap();
    let Machine::Emulated(dev) = &machine else { unreachable!() };
    let dev = dev.clone();
    let cands: Vec<_> = candidates(&machine, &Policy::default())
        .into_iter()
        .filter(|c| matches!(c.tier, Tier::Cs | Tier::Sim))
        .collect();
    let sel = select(cands, &ProbeOptions::default()).unwrap();
    assert_eq!(sel.chosen.tier, Tier::Cs);
    (Session::with_fallback(sel, ProbeOptions::default()).unwrap(), dev)
}

#[test]
fn hang_mid_run_demotes_to_the_next_tier_and_replays() {
    let want = reference(4);
    let (mut s, dev) = cs_then_sim();
    let m = load(&mut s);
    let mut got = Vec::new();
    for i in 0..4 {
        if i == 2 {
            dev.hang_after(dev.ioctl_count(DRM_IOCTL_AMDGPU_CS)); // every later job hangs
        }
        got.push(step(&mut s, &m).expect("the session hides the tier failure"));
        assert_eq!(s.tier(), if i < 2 { Tier::Cs } else { Tier::Sim });
    }
    assert_eq!(got, want, "results equal the simulator's, before and after the demotion");
    let d = s.demotions();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].from, d[0].to, d[0].after_batches), (Tier::Cs, Tier::Sim, 2));
    assert!(d[0].reason.contains("did not retire"), "{}", d[0]);
}

#[test]
fn device_loss_demotes_too() {
    let want = reference(2);
    let (mut s, dev) = cs_then_sim();
    let m = load(&mut s);
    let first = step(&mut s, &m).unwrap();
    dev.lose_device(true);
    let second = step(&mut s, &m).unwrap();
    assert_eq!(vec![first, second], want);
    assert_eq!(s.tier(), Tier::Sim);
    assert!(s.demotions()[0].reason.contains("device lost"), "{}", s.demotions()[0]);
}

#[test]
fn without_fallback_the_failure_reaches_the_caller() {
    let machine = Machine::emulated("gfx1201").unwrap();
    let Machine::Emulated(dev) = &machine else { unreachable!() };
    let policy = Policy { force: Some(Tier::Cs), ..Policy::default() };
    let sel = select(candidates(&machine, &policy), &ProbeOptions::default()).unwrap();
    assert!(sel.fallback.is_empty());
    let mut s = Session::with_fallback(sel, ProbeOptions::default()).unwrap();
    let m = load(&mut s);
    dev.hang_after(dev.ioctl_count(DRM_IOCTL_AMDGPU_CS));
    let e = step(&mut s, &m).unwrap_err();
    assert!(e.is_tier_failure(), "{e}");
    assert!(s.demotions().is_empty());
}
