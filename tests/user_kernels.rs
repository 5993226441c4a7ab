//! User code objects through the facade: `Session::load_code_object`, byte buffers,
//! `Batch::launch` next to built-in ops, on the simulator and on the emulated gfx1201 (cs,
//! kfd, umq) and gfx1100 devices; bad arguments are errors naming the argument; code objects
//! and buffers survive a demotion. Expected outputs are computed on the host from the kernel
//! sources (tests/user_kernels/src/user.cl).

use std::sync::Arc;
use std::time::Duration;

use pm4rt::probe::ProbeOptions;
use pm4rt::runtime::{candidates, select, Machine, Policy};
use pm4rt::session::{Arg, Session, SessionError};
use pm4rt::Tier;
use pm4rt_core::abi::drm::DRM_IOCTL_AMDGPU_CS;
use pm4rt_sim::emu::EmulatedDevice;
use pm4rt_sim::SimSubmitter;

static GFX1201: &[u8] = include_bytes!("user_kernels/gfx1201/user.hsaco");
static GFX1100: &[u8] = include_bytes!("user_kernels/gfx1100/user.hsaco");
const WAIT: Duration = Duration::from_secs(60);

fn code_for(s: &Session) -> &'static [u8] {
    match s.gfx() {
        pm4rt::GfxTarget::Gfx1201 => GFX1201,
        pm4rt::GfxTarget::Gfx1100 => GFX1100,
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Run `f` on a session of every tier this test covers (one at a time, each on a fresh
/// emulated machine): the simulator, gfx1201's cs/kfd/umq, the gfx1100 tiers that open on
/// the emulated RX 7900 XTX. Returns the names of the tiers run.
fn on_every_tier(mut f: impl FnMut(&str, &mut Session)) -> Vec<String> {
    let mut sim = Session::new(Box::new(SimSubmitter::new().unwrap())).unwrap();
    f("sim", &mut sim);
    let mut names = vec!["sim".to_string()];
    for preset in ["gfx1201", "rx7900xtx"] {
        for tier in [Tier::Cs, Tier::Kfd, Tier::Umq] {
            let machine = Machine::emulated(preset).unwrap();
            let cands: Vec<_> = candidates(&machine, &Policy::default())
                .into_iter()
                .filter(|c| c.tier == tier)
                .collect();
            if cands.is_empty() {
                continue;
            }
            if let Ok(sel) = select(cands, &ProbeOptions::default()) {
                let name = format!("{preset} {tier}");
                let mut s = Session::new(sel.submitter).unwrap();
                f(&name, &mut s);
                names.push(name);
            }
        }
    }
    names
}

/// scale_add on 1000 elements (partial last workgroup), coords3 on a 10 x 5 x 3 grid of
/// 4 x 2 x 2 workgroups and read_dispatch, in one batch with a built-in copy; checked.
fn run_corpus(name: &str, s: &mut Session) {
    let p = s.load_code_object(code_for(s)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let scale = p.kernel("scale_add").unwrap();
    let coords = p.kernel("coords3").unwrap();
    let disp = p.kernel("read_dispatch").unwrap();
    let n = 1000usize;
    let input: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 100.0).collect();
    let x = s.alloc_buffer(4 * n).unwrap();
    s.write_buffer(x, 0, &f32_bytes(&input)).unwrap();
    let y = s.alloc_buffer(4 * n + 4).unwrap();
    s.write_buffer(y, 4 * n, &0xdead_beefu32.to_le_bytes()).unwrap();
    let o = [0; 3].map(|_| s.alloc_buffer(4 * 4096).unwrap_or_else(|e| panic!("{name}: {e}")));
    let d = s.alloc_buffer(4 * 11).unwrap();
    let (va, vb) = (s.alloc_vec(4).unwrap(), s.alloc_vec(4).unwrap());
    s.write_vec(va, &[1.0, 2.0, 3.0, 4.0]).unwrap();

    let mut b = s.batch();
    b.copy(va, vb).unwrap();
    let args = [Arg::Buf(y), Arg::Buf(x), Arg::F32(-1.5), Arg::U32(n as u32)];
    b.launch(&scale, [4, 1, 1], Some([256, 1, 1]), &args).unwrap();
    let outs = [Arg::Buf(o[0]), Arg::Buf(o[1]), Arg::Buf(o[2])];
    b.launch(&coords, [3, 3, 2], Some([4, 2, 2]), &outs).unwrap();
    b.launch(&disp, [3, 2, 1], Some([32, 1, 1]), &[Arg::Buf(d)]).unwrap();
    b.submit_and_wait(WAIT).unwrap_or_else(|e| panic!("{name}: {e}"));

    assert_eq!(s.read_vec(vb).unwrap(), [1.0, 2.0, 3.0, 4.0], "{name}");
    let out = u32s(&s.read_buffer(y).unwrap());
    for i in 0..n {
        assert_eq!(f32::from_bits(out[i]), input[i] * -1.5 + i as f32, "{name}: y[{i}]");
    }
    assert_eq!(out[n], 0xdead_beef, "{name}: wrote past n");
    // The grid is 12 x 6 x 4 work-items (whole workgroups); coords3 sees global sizes of
    // 12 x 6 x 4 and writes each coordinate.
    let got = o.map(|h| u32s(&s.read_buffer(h).unwrap()));
    for z in 0..16u32 {
        for yy in 0..16u32 {
            for xx in 0..16u32 {
                let i = (z * 256 + yy * 16 + xx) as usize;
                let want = if xx < 12 && yy < 6 && z < 4 { [xx, yy, z] } else { [0, 0, 0] };
                assert_eq!([got[0][i], got[1][i], got[2][i]], want, "{name}: ({xx},{yy},{z})");
            }
        }
    }
    let dp = u32s(&s.read_buffer(d).unwrap());
    let fields: Vec<u32> = dp.iter().step_by(2).copied().collect();
    assert_eq!(fields, [32, 1, 1, 96, 2, 1], "{name}: dispatch packet");
}

#[test]
fn the_corpus_runs_on_every_tier_with_host_checked_results() {
    let names = on_every_tier(run_corpus);
    for want in ["sim", "gfx1201 cs", "gfx1201 kfd", "gfx1201 umq"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("rx7900xtx")), "{names:?}");
}

#[test]
fn bad_launches_are_errors_naming_the_problem() {
    let mut s = Session::new(Box::new(SimSubmitter::new().unwrap())).unwrap();
    let p = s.load_code_object(GFX1201).unwrap();
    let e = p.kernel("missing").unwrap_err();
    assert!(e.to_string().contains("no kernel named missing"), "{e}");
    let k = p.kernel("scale_add").unwrap();
    let small = s.alloc_buffer(16).unwrap();
    let mut b = s.batch();
    let e = b.launch(&k, [1, 1, 1], Some([64, 1, 1]), &[Arg::Buf(small)]).unwrap_err();
    assert!(e.to_string().contains("4 explicit arguments"), "{e}");
    let wrong_kind = [Arg::U32(1), Arg::Buf(small), Arg::F32(1.0), Arg::U32(1)];
    let e = b.launch(&k, [1, 1, 1], Some([64, 1, 1]), &wrong_kind).unwrap_err();
    assert!(e.to_string().contains("argument #0 out is a global buffer"), "{e}");
    let wrong_size = [Arg::Buf(small), Arg::Buf(small), Arg::F32(1.0), Arg::U64(1)];
    let e = b.launch(&k, [1, 1, 1], Some([64, 1, 1]), &wrong_size).unwrap_err();
    assert!(e.to_string().contains("#3 n is 4 bytes"), "{e}");
    let ok = [Arg::Buf(small), Arg::Buf(small), Arg::F32(1.0), Arg::U32(1)];
    let e = b.launch(&k, [1, 1, 1], None, &ok).unwrap_err();
    assert!(matches!(e, SessionError::MissingBlock { .. }), "{e}");
    assert!(e.to_string().contains("kernel scale_add"), "{e}");
    assert!(b.is_empty(), "nothing recorded");
    drop(b);
    let e = s.load_code_object(GFX1100).unwrap_err();
    assert!(e.to_string().contains("gfx1100"), "{e}");
}

#[test]
fn code_objects_and_buffers_survive_a_demotion() {
    let machine = Machine::emulated("gfx1201").unwrap();
    let Machine::Emulated(dev) = &machine else { unreachable!() };
    let dev: Arc<EmulatedDevice> = dev.clone();
    let cands: Vec<_> = candidates(&machine, &Policy::default())
        .into_iter()
        .filter(|c| matches!(c.tier, Tier::Cs | Tier::Sim))
        .collect();
    let sel = select(cands, &ProbeOptions::default()).unwrap();
    let mut s = Session::with_fallback(sel, ProbeOptions::default()).unwrap();
    assert_eq!(s.tier(), Tier::Cs);
    let p = s.load_code_object(GFX1201).unwrap();
    let k = p.kernel("scale_add").unwrap();
    let n = 300usize;
    let x = s.alloc_buffer(4 * n).unwrap();
    let input: Vec<f32> = (0..n).map(|i| i as f32).collect();
    s.write_buffer(x, 0, &f32_bytes(&input)).unwrap();
    let y = s.alloc_buffer(4 * n).unwrap();
    let step = |s: &mut Session, k2: f32| {
        let mut b = s.batch();
        let args = [Arg::Buf(y), Arg::Buf(x), Arg::F32(k2), Arg::U32(n as u32)];
        b.launch(&k, [2, 1, 1], Some([256, 1, 1]), &args).unwrap();
        b.submit_and_wait(WAIT).unwrap();
        u32s(&s.read_buffer(y).unwrap())
    };
    let first = step(&mut s, 2.0);
    dev.hang_after(dev.ioctl_count(DRM_IOCTL_AMDGPU_CS));
    let second = step(&mut s, 3.0);
    assert_eq!(s.tier(), Tier::Sim);
    for i in 0..n {
        assert_eq!(f32::from_bits(first[i]), i as f32 * 2.0 + i as f32);
        assert_eq!(f32::from_bits(second[i]), i as f32 * 3.0 + i as f32);
    }
}
