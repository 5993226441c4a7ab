//! Engine ops through `Session` on the simulator tier, against the gguf/numpy fixtures of
//! tests/fixtures/ (tolerances from tests/fixtures/README.md).

mod common;
use common::{f32s, fixture, manifest};
use std::time::Duration;

use pm4rt::gguf::Gguf;
use pm4rt::session::{Session, SessionError, WeightFormat};
use pm4rt_sim::engine::EngineConfig;
use pm4rt_sim::{SimConfig, SimSubmitter};

const U: f64 = 1.0 / 16_777_216.0;
const WAIT: Duration = Duration::from_secs(60);

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// kernels/README.md: index = 0xFFFFFFFF - lo; value from key(hi) (bits ^ 0x80000000 when
/// the top bit is set, else !bits); key 0 is NaN.
fn decode(packed: u64) -> (u32, f32) {
    let (hi, lo) = ((packed >> 32) as u32, packed as u32);
    let value = if hi & 0x8000_0000 != 0 { hi ^ 0x8000_0000 } else { !hi };
    (0xFFFF_FFFF - lo, f32::from_bits(value))
}

fn same(a: (u32, f32), b: (u32, f32)) -> bool {
    a.0 == b.0 && (a.1.to_bits() == b.1.to_bits() || (a.1.is_nan() && b.1.is_nan()))
}

fn sim_session() -> Session {
    Session::new(Box::new(SimSubmitter::new().unwrap())).unwrap()
}

fn submissions(s: &Session) -> u64 {
    s.info().counters.submissions
}

/// The format of a fixture type name (`q4_k` -> Q4_K), matched by GGML name.
fn format_of(ty: &str) -> WeightFormat {
    let f = WeightFormat::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(ty));
    f.unwrap_or_else(|| panic!("no format named {ty}"))
}

/// Every format with fixtures (the `<type>` of `dmmv_<type>.gguf`).
const FORMATS: [&str; 11] =
    ["f32", "q4_0", "q8_0", "f16", "bf16", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"];

/// Every dmmv fixture: one batch of dmmv + argmax(y) + fused dmmv_argmax = one submission.
#[test]
fn dmmv_argmax_and_fused_lm_head_match_the_fixtures() {
    let cases = manifest("dmmv");
    assert!(cases.len() >= 40, "manifest lists {} dmmv cases", cases.len());
    let mut s = sim_session();
    let mut seen = 0;
    for ty in FORMATS {
        let file = fixture(&format!("dmmv_{ty}.gguf"));
        let g = Gguf::parse(&file).unwrap();
        for c in cases.iter().filter(|c| c[1] == ty) {
            let (rows, cols): (usize, usize) = (c[2].parse().unwrap(), c[3].parse().unwrap());
            let case = format!("{ty} {rows}x{cols}");
            let m = g.matrix(&format!("w_{rows}x{cols}")).unwrap();
            assert_eq!(WeightFormat::from_weight_type(m.ty), format_of(ty));
            let w = s.upload_weights(format_of(ty), rows, cols, m.bytes).unwrap();
            assert_eq!(s.weight_host(w).unwrap(), m.bytes, "{case}: host copy");
            let x = s.alloc_vec(cols).unwrap();
            let y = s.alloc_vec(rows).unwrap();
            s.write_vec(x, &f32s(&format!("x_{cols}.f32"))).unwrap();
            let before = submissions(&s);
            let mut b = s.batch();
            b.dmmv(w, x, y).unwrap();
            let a = b.argmax(y).unwrap();
            let f = b.dmmv_argmax(w, x).unwrap();
            let r = b.submit_and_wait(WAIT).unwrap();
            assert_eq!(submissions(&s) - before, 1, "{case}: one submission");
            let got = s.read_vec(y).unwrap();
            let want = f32s(&format!("y_{ty}_{rows}x{cols}.f32"));
            let absy = f32s(&format!("absy_{ty}_{rows}x{cols}.f32"));
            let depth = (cols / 16 + 6) as f64;
            for i in 0..rows {
                let err = (f64::from(got[i]) - f64::from(want[i])).abs();
                let tol = depth * U * f64::from(absy[i]) + f64::from(want[i]).abs() * U + 1e-30;
                assert!(
                    err <= tol,
                    "{case} row {i}: got {} want {} (tol {tol:e})",
                    got[i],
                    want[i]
                );
            }
            assert!(same(r.argmax(f), r.argmax(a)), "{case}: fused != dmmv + argmax");
            assert_eq!(r.argmax(f).0, decode(hex(&c[5])).0, "{case}: argmax index");
            assert_eq!(r.argmax(f).0, c[4].parse::<u32>().unwrap(), "{case}: manifest index");
            seen += 1;
        }
    }
    assert_eq!(seen, cases.len());
}

#[test]
fn argmax_edges_match_numpy() {
    let mut s = sim_session();
    for c in manifest("argmax") {
        let (name, n, packed) = (&c[1], c[2].parse::<usize>().unwrap(), hex(&c[3]));
        let x = f32s(&format!("argmax_{name}.f32"));
        assert_eq!(x.len(), n, "{name}");
        if n == 0 {
            assert!(matches!(s.alloc_vec(0), Err(SessionError::BadDimension { value: 0, .. })));
            continue;
        }
        let v = s.alloc_vec(n).unwrap();
        s.write_vec(v, &x).unwrap();
        let got = s.argmax(v).unwrap();
        assert!(same(got, decode(packed)), "{name}: got {got:?}, want {:?}", decode(packed));
    }
}

#[test]
fn rms_norm_matches_numpy() {
    let mut s = sim_session();
    for c in manifest("rms") {
        let n: usize = c[1].parse().unwrap();
        let eps = f32::from_bits(hex(&c[2]) as u32);
        let (x, w, want) = (
            f32s(&format!("rms_{n}_x.f32")),
            f32s(&format!("rms_{n}_w.f32")),
            f32s(&format!("rms_{n}_y.f32")),
        );
        let (xv, wv, yv) =
            (s.alloc_vec(n).unwrap(), s.alloc_vec(n).unwrap(), s.alloc_vec(n).unwrap());
        s.write_vec(xv, &x).unwrap();
        s.write_vec(wv, &w).unwrap();
        s.rms_norm(xv, wv, eps, yv).unwrap();
        let y = s.read_vec(yv).unwrap();
        // The simulator's order (sim/src/kernels/norm.rs): (n/16 + 4) roundings in the sum,
        // a few more after, halved by the sqrt.
        let rel = ((n / 16 + 4) as f64 / 2.0 + 8.0) * U;
        for i in 0..n {
            let err = (f64::from(y[i]) - f64::from(want[i])).abs();
            assert!(
                err <= rel * f64::from(want[i]).abs() + 1e-30,
                "n {n} i {i}: {} vs {}",
                y[i],
                want[i]
            );
        }
    }
}

#[test]
fn a_batch_of_dependent_ops_is_one_submission() {
    // rms_norm(x) -> h; dmmv(W, h) -> y; argmax(y); copy(y) -> z; fused LM head on h.
    let file = fixture("dmmv_q8_0.gguf");
    let g = Gguf::parse(&file).unwrap();
    let m = g.matrix("w_65x96").unwrap();
    let x: Vec<f32> = f32s("x_96.f32");
    let norm_w: Vec<f32> = (0..96).map(|i| 0.5 + i as f32 / 96.0).collect();

    // Op by op (five submissions) ...
    let mut s1 = sim_session();
    let w1 = s1.upload_weights(WeightFormat::Q8_0, 65, 96, m.bytes).unwrap();
    let [xv, nw, h, y, z] = [96, 96, 96, 65, 65].map(|n| s1.alloc_vec(n).unwrap());
    s1.write_vec(xv, &x).unwrap();
    s1.write_vec(nw, &norm_w).unwrap();
    let before = submissions(&s1);
    s1.rms_norm(xv, nw, 1e-6, h).unwrap();
    s1.dmmv(w1, h, y).unwrap();
    let am1 = s1.argmax(y).unwrap();
    s1.copy(y, z).unwrap();
    let lm1 = s1.dmmv_argmax(w1, h).unwrap();
    assert_eq!(submissions(&s1) - before, 5);
    let z1 = s1.read_vec(z).unwrap();

    // ... and as one batch.
    let mut s2 = sim_session();
    let w2 = s2.upload_weights(WeightFormat::Q8_0, 65, 96, m.bytes).unwrap();
    let [xv, nw, h, y, z] = [96, 96, 96, 65, 65].map(|n| s2.alloc_vec(n).unwrap());
    s2.write_vec(xv, &x).unwrap();
    s2.write_vec(nw, &norm_w).unwrap();
    let before = submissions(&s2);
    let mut b = s2.batch();
    b.rms_norm(xv, nw, 1e-6, h).unwrap();
    b.dmmv(w2, h, y).unwrap();
    let am = b.argmax(y).unwrap();
    b.copy(y, z).unwrap();
    let lm = b.dmmv_argmax(w2, h).unwrap();
    assert_eq!(b.len(), 5);
    let r = b.submit_and_wait(WAIT).unwrap();
    assert_eq!(submissions(&s2) - before, 1, "five ops, one submission");
    assert!(same(r.argmax(am), am1) && same(r.argmax(lm), lm1), "{:?}", r.all_argmax());
    assert!(same(r.argmax(am), r.argmax(lm)), "fused == dmmv + argmax");
    let z2 = s2.read_vec(z).unwrap();
    assert_eq!(
        z1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        z2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert!(z2.iter().any(|v| *v != 0.0), "the copy saw the dmmv output");
    // An empty batch submits nothing.
    let before = submissions(&s2);
    s2.batch().submit_and_wait(WAIT).unwrap();
    assert_eq!(submissions(&s2), before);
}

#[test]
fn weights_are_uploaded_once_and_reused() {
    let file = fixture("dmmv_f32.gguf");
    let g = Gguf::parse(&file).unwrap();
    let m = g.matrix("w_7x32").unwrap();
    let mut s = sim_session();
    let w = s.upload_weights(WeightFormat::F32, 7, 32, m.bytes).unwrap();
    let (x, y) = (s.alloc_vec(32).unwrap(), s.alloc_vec(7).unwrap());
    // x = e_k picks column k of W exactly.
    for k in [0usize, 5, 31] {
        let mut e = vec![0f32; 32];
        e[k] = 1.0;
        s.write_vec(x, &e).unwrap();
        s.dmmv(w, x, y).unwrap();
        let got = s.read_vec(y).unwrap();
        for (r, g) in got.iter().enumerate() {
            let at = 4 * (r * 32 + k);
            let want = f32::from_le_bytes(m.bytes[at..at + 4].try_into().unwrap());
            assert_eq!(*g, want, "row {r} col {k}");
        }
    }
    assert_eq!(s.weight_shape(w).unwrap(), (WeightFormat::F32, 7, 32));
}

#[test]
fn bad_weights_and_shapes_are_typed_errors() {
    let file = fixture("dmmv_q4_0.gguf");
    let g = Gguf::parse(&file).unwrap();
    let m = g.matrix("w_64x96").unwrap();
    let mut s = sim_session();
    // Truncated: 64 rows of 3 blocks of 18 bytes = 3456 bytes expected.
    let e = s.upload_weights(WeightFormat::Q4_0, 64, 96, &m.bytes[..m.bytes.len() - 1]);
    assert!(matches!(e, Err(SessionError::WeightBytes { expected: 3456, got: 3455, .. })), "{e:?}");
    // Shape mismatch: the same bytes claimed as 65 rows (3510) or as Q8_0 (64 * 102 = 6528).
    let e = s.upload_weights(WeightFormat::Q4_0, 65, 96, m.bytes);
    assert!(matches!(e, Err(SessionError::WeightBytes { expected: 3510, got: 3456, .. })), "{e:?}");
    let e = s.upload_weights(WeightFormat::Q8_0, 64, 96, m.bytes);
    assert!(matches!(e, Err(SessionError::WeightBytes { expected: 6528, got: 3456, .. })), "{e:?}");
    let e = s.upload_weights(WeightFormat::Q4_0, 1, 33, &[0; 18]);
    assert!(matches!(e, Err(SessionError::ColsNotBlockMultiple { cols: 33, block: 32, .. })));
    let e = s.upload_weights(WeightFormat::F32, 0, 32, &[]);
    assert!(matches!(e, Err(SessionError::BadDimension { what: "weight rows", .. })), "{e:?}");
    assert!(e.unwrap_err().to_string().contains("weight rows"));

    let w = s.upload_weights(WeightFormat::Q4_0, 64, 96, m.bytes).unwrap();
    let (x, y, short) =
        (s.alloc_vec(96).unwrap(), s.alloc_vec(64).unwrap(), s.alloc_vec(95).unwrap());
    let e = s.dmmv(w, short, y);
    assert!(
        matches!(e, Err(SessionError::Shape { op: "dmmv", arg: "x", expected: 96, got: 95 })),
        "{e:?}"
    );
    let e = s.dmmv(w, x, x);
    assert!(matches!(e, Err(SessionError::Shape { arg: "y", expected: 64, got: 96, .. })), "{e:?}");
    let e = s.write_vec(x, &[1.0; 3]);
    assert!(matches!(e, Err(SessionError::Shape { arg: "data", expected: 96, got: 3, .. })));
    // Handles from another (larger) session are unknown here.
    let mut other = sim_session();
    for _ in 0..5 {
        other.alloc_vec(4).unwrap();
    }
    let foreign = other.alloc_vec(4).unwrap();
    assert!(matches!(s.read_vec(foreign), Err(SessionError::UnknownHandle { kind: "vector", .. })));
    // Nothing was submitted by the failed ops.
    assert_eq!(submissions(&s), 0);
}

#[test]
fn aliased_dmmv_is_refused() {
    let mut s = sim_session();
    let w = s.upload_weights(WeightFormat::F32, 4, 4, &[0u8; 64]).unwrap();
    let v = s.alloc_vec(4).unwrap();
    assert!(matches!(s.dmmv(w, v, v), Err(SessionError::Aliased { .. })));
}

#[test]
fn gfx1100_session_runs_the_gfx1100_code_object() {
    let cfg = SimConfig {
        engine: EngineConfig { gfx: pm4rt::GfxTarget::Gfx1100, ..EngineConfig::default() },
        ..SimConfig::default()
    };
    let sub = SimSubmitter::with_config(cfg).unwrap();
    let mut s = Session::new(Box::new(sub)).unwrap();
    assert_eq!(s.gfx(), pm4rt::GfxTarget::Gfx1100);
    let file = fixture("dmmv_q4_0.gguf");
    let g = Gguf::parse(&file).unwrap();
    let m = g.matrix("w_151936x32").unwrap();
    let w = s.upload_weights(WeightFormat::Q4_0, 151_936, 32, m.bytes).unwrap();
    let x = s.alloc_vec(32).unwrap();
    s.write_vec(x, &f32s("x_32.f32")).unwrap();
    let (idx, _) = s.dmmv_argmax(w, x).unwrap();
    let c = manifest("dmmv").into_iter().find(|c| c[1] == "q4_0" && c[2] == "151936").unwrap();
    assert_eq!(idx, c[4].parse::<u32>().unwrap());
}

#[test]
fn a_dispatch_error_comes_back_through_the_session() {
    // A submitter whose dispatches run nothing: the session reports the dispatch error.
    let sub = SimSubmitter::new().unwrap();
    sub.set_dispatch_hook(None);
    let mut s = Session::new(Box::new(sub)).unwrap();
    let v = s.alloc_vec(8).unwrap();
    let e = s.argmax(v).unwrap_err();
    assert!(matches!(&e, SessionError::Core(pm4rt_core::Error::Dispatch { .. })), "{e:?}");
}
