//! Side-by-side comparison of the tiers on the same work.
//!
//! [`run`] opens every usable candidate, gives each a [`crate::session::Session`] holding the
//! same weights and input, runs each operation of the workload `iters` times, and reports per
//! tier: agreement with the simulator, latency per operation (median, p99), and submissions
//! and ioctls per operation.
//!
//! # Agreement is a check
//!
//! Every tier's outputs are held to the kernels' documented error bounds ([`Tolerance`]), not
//! to a constant: any two correct implementations of a kernel may differ by the sum of their
//! bounds against exact arithmetic, and nothing more. A value outside that, a NaN or an
//! infinity where the reference is finite, an output of the wrong length, or an argmax index
//! that differs where the reference values are not within their bounds of each other (a tie
//! the precision cannot resolve) is a disagreement. [`failures`] lists every disagreement and
//! every tier that failed during the run; `pm4rt compare` exits non-zero when it is not empty.
//!
//! # Executors
//!
//! The reference always runs pm4rt's kernels natively on the simulator (the fast Rust
//! implementations, whose bounds the fixtures check against ggml's arithmetic). Each row names
//! what ran its dispatches ([`Executor`]): a GPU, the native kernels, or the ISA interpreter
//! on the kernels' machine code. `pm4rt compare --emulate` runs the emulated tiers on machine
//! code by default, so their agreement column checks the code objects a GPU would run against
//! the native reference, not the reference against itself.

use std::time::{Duration, Instant};

use crate::probe::{probe_one, Candidate, Executor, ProbeOptions, TierStatus};
use crate::rng::SplitMix64;
use crate::session::{Session, SessionError, WeightFormat};
use pm4rt_core::{Submitter, Tier};
use pm4rt_sim::isa::ExecMode;

/// The work every tier runs: an RMS norm of `x`, then the LM-head product `W · norm(x)`, its
/// argmax, and the fused DMMV + argmax.
#[derive(Debug, Clone)]
pub struct Workload {
    /// What it is, for the report (e.g. `"synthetic Q4_0 32000x4096"`).
    pub label: String,
    /// Weight format.
    pub format: WeightFormat,
    /// Rows of W (the vocabulary size for an LM head).
    pub rows: usize,
    /// Columns of W (the hidden size).
    pub cols: usize,
    /// W in GGML layout, `rows * row_bytes(cols)` bytes.
    pub weights: Vec<u8>,
    /// The input vector (`cols` values).
    pub x: Vec<f32>,
    /// RMS-norm weight (`cols` values).
    pub norm_weight: Vec<f32>,
    /// RMS-norm epsilon.
    pub eps: f32,
}

/// Default synthetic shape: the LM head of a 7B Llama-class model (vocabulary 32000, hidden
/// 4096) in Q4_0, 73.7 MB of weights.
pub const DEFAULT_SHAPE: (usize, usize) = (32000, 4096);

impl Workload {
    /// A workload of the given weights whose input `x` and RMS-norm weight are drawn from
    /// `rng`: x uniform in [-1, 1), the norm weight uniform in [0.5, 1.5), epsilon 1e-6.
    pub fn with_inputs(
        label: String,
        format: WeightFormat,
        (rows, cols): (usize, usize),
        weights: Vec<u8>,
        rng: &mut SplitMix64,
    ) -> Workload {
        let x = (0..cols).map(|_| rng.next_f32()).collect();
        let norm_weight = (0..cols).map(|_| 1.0 + 0.5 * rng.next_f32()).collect();
        Workload { label, format, rows, cols, weights, x, norm_weight, eps: 1e-6 }
    }

    /// A synthetic Q4_0 workload of `rows x cols` (cols a multiple of 32) from SplitMix64
    /// seeded with `seed`: block scales are f16 values in [2^-8, 2^-7) (exponent 7, random
    /// mantissa), quants uniform random nibbles, then the inputs of
    /// [`Workload::with_inputs`].
    ///
    /// Errors: the shape checks of [`Session::upload_weights`]
    /// ([`SessionError::BadDimension`], [`SessionError::ColsNotBlockMultiple`]), and
    /// [`SessionError::HostMemory`] when the weights do not fit in host memory.
    pub fn synthetic_q4_0(rows: usize, cols: usize, seed: u64) -> Result<Workload, SessionError> {
        let format = WeightFormat::Q4_0;
        let bytes = format.weight_bytes(rows, cols)?;
        let mut weights = Vec::new();
        weights
            .try_reserve_exact(bytes)
            .map_err(|_| SessionError::HostMemory { what: "synthetic weights", bytes })?;
        let mut rng = SplitMix64::new(seed);
        for _ in 0..rows * (cols / 32) {
            let d: u16 = 0x1C00 | (rng.next_u64() as u16 & 0x3FF);
            weights.extend_from_slice(&d.to_le_bytes());
            weights.extend_from_slice(&rng.next_u64().to_le_bytes());
            weights.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        let label = format!("synthetic Q4_0 {rows}x{cols} (seed {seed})");
        Ok(Workload::with_inputs(label, format, (rows, cols), weights, &mut rng))
    }
}

/// Latency and cost of one operation on one tier.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Operation name (`rms_norm`, `dmmv`, `argmax`, `dmmv_argmax`).
    pub name: &'static str,
    /// Median latency (submit to results read back).
    pub median: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// Submissions per operation.
    pub submissions: f64,
    /// ioctls per operation.
    pub ioctls: f64,
}

/// The results a tier produced, for the agreement check.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// RMS-norm output.
    pub norm: Vec<f32>,
    /// DMMV output.
    pub y: Vec<f32>,
    /// Argmax of `y`: (index, value).
    pub argmax: (u32, f32),
    /// Fused DMMV + argmax: (index, value).
    pub fused: (u32, f32),
}

/// How an argmax index compares with the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArgmaxMatch {
    /// The same index.
    #[default]
    Same,
    /// Another index whose reference value is within the error bounds of the maximum: a tie
    /// the kernels' precision cannot resolve.
    Tie,
    /// Another index, clearly smaller in the reference (or out of range).
    Differs,
}

impl ArgmaxMatch {
    /// `"same"`, `"tie"` or `"DIFFERS"`.
    pub fn name(self) -> &'static str {
        match self {
            ArgmaxMatch::Same => "same",
            ArgmaxMatch::Tie => "tie",
            ArgmaxMatch::Differs => "DIFFERS",
        }
    }
}

/// How a tier's outputs compare with the simulator's.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Agreement {
    /// max |out - ref| over the DMMV and RMS-norm outputs (infinite when a value is not
    /// finite where the reference is, or the lengths differ).
    pub max_abs: f64,
    /// `max_abs` divided by the largest |ref| (a relative error that stays meaningful for
    /// outputs near zero).
    pub max_rel: f64,
    /// The largest |out - ref| / tolerance over every element: above 1 is outside the bound.
    pub worst: f64,
    /// Where `worst` is: output (`"rms_norm"` or `"dmmv"`) and element index.
    pub worst_at: Option<(&'static str, usize)>,
    /// Elements that are NaN or infinite where the reference is finite (or differ in kind).
    pub nonfinite: usize,
    /// The plain argmax against the reference's.
    pub argmax: ArgmaxMatch,
    /// The fused DMMV + argmax against the reference's.
    pub fused: ArgmaxMatch,
}

impl Agreement {
    /// True when every output is within its bound and both argmaxes match (or tie).
    pub fn ok(&self) -> bool {
        self.worst <= 1.0
            && self.nonfinite == 0
            && self.argmax != ArgmaxMatch::Differs
            && self.fused != ArgmaxMatch::Differs
    }

    /// What is wrong, or `None` when [`Agreement::ok`].
    pub fn problem(&self) -> Option<String> {
        if self.ok() {
            return None;
        }
        let mut parts = Vec::new();
        if self.nonfinite > 0 {
            parts.push(format!(
                "{} non-finite values where the reference is finite",
                self.nonfinite
            ));
        }
        if self.worst > 1.0 {
            let (out, i) = self.worst_at.unwrap_or(("output", 0));
            parts.push(format!(
                "{out}[{i}] is {:.3}x its error bound from the reference (max abs {:.3e})",
                self.worst, self.max_abs
            ));
        }
        if self.argmax == ArgmaxMatch::Differs {
            parts.push("argmax differs".into());
        }
        if self.fused == ArgmaxMatch::Differs {
            parts.push("fused dmmv_argmax differs".into());
        }
        Some(parts.join("; "))
    }
}

/// Per-element absolute tolerances between two correct implementations, from the kernels'
/// documented bounds (`pm4rt_sim::kernels::dmmv` and `::norm`), computed in f64 from the
/// workload:
///
/// - RMS norm: any summation order of the `n` squares errs by at most `(n + 1) 2^-24`
///   relative, the square root halves that, and the division by `n`, `+ eps`, the square
///   root, the division and the product add at most 6 roundings, so one implementation is
///   within `rel = ((n + 1) / 2 + 6) 2^-24` of the exact `|norm_i|` and two within twice that.
/// - DMMV row `i`: any summation order of `cols` products errs by at most
///   `(cols + 1) 2^-24 S_i` with `S_i = sum_k |w_ik norm_k|` (the weights dequantize exactly),
///   and each tier multiplies its own normalised input, off by at most `2 rel |norm_k|`: two
///   implementations differ by at most `(2 (cols + 1) 2^-24 + 2 rel) S_i`.
///
/// Every tolerance is widened by 2^-10 of itself (for the f64 evaluation) and never below the
/// smallest normal f32.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tolerance {
    /// Per RMS-norm output element.
    pub norm: Vec<f64>,
    /// Per DMMV output row.
    pub y: Vec<f64>,
}

const ULP: f64 = 1.0 / (1u64 << 24) as f64;

impl Tolerance {
    /// The tolerances of workload `w`.
    ///
    /// Errors: [`SessionError::BadDimension`] / [`SessionError::ColsNotBlockMultiple`] for a
    /// shape the session refuses; [`SessionError::Core`] when the weights are shorter than
    /// `w`'s shape.
    pub fn of(w: &Workload) -> Result<Tolerance, SessionError> {
        let widen = |t: f64| (t * (1.0 + 1.0 / 1024.0)).max(f64::from(f32::MIN_POSITIVE));
        let n = w.cols;
        let sum_sq: f64 = w.x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let r = (sum_sq / n as f64 + f64::from(w.eps)).sqrt();
        let exact: Vec<f64> =
            w.x.iter()
                .zip(&w.norm_weight)
                .map(|(&x, &g)| f64::from(x) / r * f64::from(g))
                .collect();
        let rel = ((n as f64 + 1.0) / 2.0 + 6.0) * ULP;
        let norm = exact.iter().map(|v| widen(2.0 * rel * v.abs())).collect();
        let row_bytes = w.format.weight_bytes(1, w.cols)?;
        let ty = w.format.weight_type();
        let mut row = vec![0f32; w.cols];
        let factor = 2.0 * (w.cols as f64 + 1.0) * ULP + 2.0 * rel;
        let mut y = Vec::with_capacity(w.rows);
        for bytes in w.weights.chunks_exact(row_bytes).take(w.rows) {
            pm4rt_sim::kernels::dequantize_row(ty, bytes, w.cols, &mut row)
                .map_err(|e| pm4rt_core::Error::InvalidArgument(e.to_string()))?;
            let s: f64 = row.iter().zip(&exact).map(|(&a, b)| (f64::from(a) * b).abs()).sum();
            y.push(widen(factor * s));
        }
        Ok(Tolerance { norm, y })
    }
}

/// One row of the comparison.
#[derive(Debug, Clone)]
pub struct TierRow {
    /// The tier's probe status (device, emulated, rejection).
    pub status: TierStatus,
    /// What ran the tier's dispatches (GPU, native simulator kernels, or the ISA interpreter
    /// on the kernels' machine code).
    pub executor: Executor,
    /// Per-operation figures (empty when the tier could not run).
    pub ops: Vec<OpStats>,
    /// Agreement with the simulator (None for the simulator itself or a failed tier).
    pub agreement: Option<Agreement>,
    /// Why the tier failed during the run, if it did.
    pub error: Option<String>,
}

impl TierRow {
    /// This row as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status.to_json(),
            "executor": self.executor.name(),
            "error": self.error,
            "agreement": self.agreement.map(|a| serde_json::json!({
                "ok": a.ok(),
                "max_abs": json_f64(a.max_abs),
                "max_rel": json_f64(a.max_rel),
                "worst_over_bound": json_f64(a.worst),
                "worst_at": a.worst_at.map(|(out, i)| serde_json::json!({"output": out, "index": i})),
                "nonfinite": a.nonfinite,
                "argmax": a.argmax.name(),
                "fused_argmax": a.fused.name(),
                "same_argmax": a.argmax == ArgmaxMatch::Same && a.fused == ArgmaxMatch::Same,
            })),
            "ops": self.ops.iter().map(|o| serde_json::json!({
                "op": o.name,
                "median_us": o.median.as_secs_f64() * 1e6,
                "p99_us": o.p99.as_secs_f64() * 1e6,
                "submissions_per_op": o.submissions,
                "ioctls_per_op": o.ioctls,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A finite number as is; infinity and NaN (which JSON lacks) as `null`.
fn json_f64(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

/// Every disagreement and every failure during the run, one line each naming the tier (empty:
/// every usable tier agreed). Tiers the probe rejected are not failures: they did not run.
pub fn failures(rows: &[TierRow]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows {
        let tier = r.status.tier.name();
        if let Some(e) = &r.error {
            out.push(format!("{tier}: failed: {e}"));
        } else if let Some(p) = r.agreement.as_ref().and_then(Agreement::problem) {
            out.push(format!("{tier}: disagrees with the simulator: {p}"));
        }
    }
    out
}

/// Run `w` on every candidate (`iters` >= 1 repetitions per operation). The simulator's
/// outputs are the reference: it runs first, whether or not it is among the candidates.
///
/// Errors: [`SessionError::BadDimension`] for `iters == 0`; the shape errors of
/// [`Tolerance::of`]. A tier that fails is a row with its error, not an error of `run`.
pub fn run(
    candidates: &[Candidate],
    w: &Workload,
    iters: u32,
    opts: &ProbeOptions,
) -> Result<Vec<TierRow>, SessionError> {
    if iters == 0 {
        return Err(SessionError::BadDimension { what: "iters", value: 0, max: u32::MAX.into() });
    }
    let tol = Tolerance::of(w)?;
    // The reference runs pm4rt's kernels natively, whatever the rows execute.
    let reference = crate::runtime::sim_candidate_executing(Some(ExecMode::Native));
    let mut ref_out: Option<Outputs> = None;
    let mut rows = Vec::new();
    let sim_listed = candidates.iter().any(|c| c.tier == Tier::Sim);
    let order: Vec<&Candidate> = std::iter::once(&reference)
        .filter(|_| !sim_listed)
        .chain(candidates.iter().filter(|c| c.tier == Tier::Sim))
        .chain(candidates.iter().filter(|c| c.tier != Tier::Sim))
        .collect();
    for c in order {
        let (status, sub) = probe_one(c, opts);
        let Some(sub) = sub else {
            let executor = c.executor;
            rows.push(TierRow { status, executor, ops: Vec::new(), agreement: None, error: None });
            continue;
        };
        let (ops, out, error) = match measure(sub, w, iters) {
            Ok((ops, out)) => (ops, Some(out), None),
            Err(e) => (Vec::new(), None, Some(e.to_string())),
        };
        let is_ref = c.tier == Tier::Sim && ref_out.is_none();
        let agreement = match (&out, &ref_out) {
            (Some(o), Some(r)) => Some(agree(o, r, &tol)),
            _ => None,
        };
        if is_ref {
            ref_out = out;
        }
        if c.tier == Tier::Sim && !sim_listed {
            continue; // the reference alone is not a row the user asked for
        }
        rows.push(TierRow { status, executor: c.executor, ops, agreement, error });
    }
    rows.sort_by_key(|r| r.status.tier); // selection order: umq, kfd, cs, sim
    Ok(rows)
}

/// Compare a tier's outputs `o` with the reference's `r` under `tol` (module docs).
pub fn agree(o: &Outputs, r: &Outputs, tol: &Tolerance) -> Agreement {
    let mut a = Agreement::default();
    let mut max_abs: f64 = 0.0;
    for (name, out, reference, t) in
        [("rms_norm", &o.norm, &r.norm, &tol.norm), ("dmmv", &o.y, &r.y, &tol.y)]
    {
        if out.len() != reference.len() {
            a.worst = f64::INFINITY;
            a.worst_at = Some((name, out.len().min(reference.len())));
            max_abs = f64::INFINITY;
            continue;
        }
        for (i, (&v, &want)) in out.iter().zip(reference.iter()).enumerate() {
            let (v, want) = (f64::from(v), f64::from(want));
            let ratio = if want.is_finite() != v.is_finite() || (want.is_nan() != v.is_nan()) {
                a.nonfinite += 1;
                max_abs = f64::INFINITY;
                f64::INFINITY
            } else if !v.is_finite() {
                // Both infinite or both NaN: the same infinity agrees.
                if v == want || v.is_nan() {
                    0.0
                } else {
                    a.nonfinite += 1;
                    f64::INFINITY
                }
            } else {
                let d = (v - want).abs();
                max_abs = max_abs.max(d);
                d / t.get(i).copied().unwrap_or(f64::from(f32::MIN_POSITIVE))
            };
            if ratio > a.worst {
                a.worst = ratio;
                a.worst_at = Some((name, i));
            }
        }
    }
    let scale = r.y.iter().chain(&r.norm).map(|v| f64::from(v.abs())).fold(0.0, f64::max);
    a.max_abs = max_abs;
    a.max_rel = if scale > 0.0 { max_abs / scale } else { max_abs };
    a.argmax = argmax_match(o.argmax.0, r.argmax.0, &r.y, &tol.y);
    a.fused = argmax_match(o.fused.0, r.fused.0, &r.y, &tol.y);
    a
}

/// `got` against the reference's index `want` over the reference output `y`.
fn argmax_match(got: u32, want: u32, y: &[f32], tol: &[f64]) -> ArgmaxMatch {
    if got == want {
        return ArgmaxMatch::Same;
    }
    let (g, w) = (got as usize, want as usize);
    match (y.get(g), y.get(w), tol.get(g), tol.get(w)) {
        (Some(&yg), Some(&yw), Some(tg), Some(tw))
            if yg.is_finite() && yw.is_finite() && f64::from(yw) - f64::from(yg) <= tg + tw =>
        {
            ArgmaxMatch::Tie
        }
        _ => ArgmaxMatch::Differs,
    }
}

fn measure(
    sub: Box<dyn Submitter>,
    w: &Workload,
    iters: u32,
) -> Result<(Vec<OpStats>, Outputs), SessionError> {
    let mut s = Session::new(sub)?;
    let weights = s.upload_weights(w.format, w.rows, w.cols, &w.weights)?;
    let x = s.alloc_vec(w.cols)?;
    let nw = s.alloc_vec(w.cols)?;
    let xn = s.alloc_vec(w.cols)?;
    let y = s.alloc_vec(w.rows)?;
    s.write_vec(x, &w.x)?;
    s.write_vec(nw, &w.norm_weight)?;
    let mut out = Outputs::default();
    let mut stats = Vec::new();
    stats.push(timed(&mut s, "rms_norm", iters, |s| s.rms_norm(x, nw, w.eps, xn))?);
    out.norm = s.read_vec(xn)?;
    stats.push(timed(&mut s, "dmmv", iters, |s| s.dmmv(weights, xn, y))?);
    out.y = s.read_vec(y)?;
    stats.push(timed(&mut s, "argmax", iters, |s| s.argmax(y).map(|r| out.argmax = r))?);
    stats.push(timed(&mut s, "dmmv_argmax", iters, |s| {
        s.dmmv_argmax(weights, xn).map(|r| out.fused = r)
    })?);
    Ok((stats, out))
}

fn timed(
    s: &mut Session,
    name: &'static str,
    iters: u32,
    mut op: impl FnMut(&mut Session) -> Result<(), SessionError>,
) -> Result<OpStats, SessionError> {
    let c0 = s.info().counters;
    // Grown as needed: `--iters 4294967295` must not ask for 64 GiB up front.
    let mut lat = Vec::with_capacity(iters.min(4096) as usize);
    for _ in 0..iters {
        let t0 = Instant::now();
        op(s)?;
        lat.push(t0.elapsed());
    }
    let c1 = s.info().counters;
    lat.sort();
    let n = f64::from(iters);
    Ok(OpStats {
        name,
        median: lat[lat.len() / 2],
        p99: lat[((lat.len() * 99).div_ceil(100)).saturating_sub(1)],
        submissions: (c1.submissions - c0.submissions) as f64 / n,
        ioctls: (c1.ioctls - c0.ioctls) as f64 / n,
    })
}
