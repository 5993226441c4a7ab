//! Side-by-side comparison of the tiers on the same work.
//!
//! [`run`] opens every usable candidate, gives each a [`crate::session::Session`] holding the
//! same weights and input, runs each operation of the workload `iters` times, and reports per
//! tier: agreement with the simulator (max abs error, error relative to the largest magnitude,
//! same argmax), latency per operation (median, p99), and submissions and ioctls per operation.

use std::time::{Duration, Instant};

use crate::probe::{probe_one, Candidate, ProbeOptions, TierStatus};
use crate::rng::SplitMix64;
use crate::session::{Session, SessionError, WeightFormat};
use pm4rt_core::{Submitter, Tier};

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

/// How a tier's outputs compare with the simulator's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Agreement {
    /// max |y - y_sim| over the DMMV output and the RMS-norm output.
    pub max_abs: f64,
    /// `max_abs` divided by the largest |y_sim| (a relative error that stays meaningful for
    /// outputs near zero).
    pub max_rel: f64,
    /// Both argmax indices (plain and fused) equal the simulator's.
    pub same_argmax: bool,
}

/// One row of the comparison.
#[derive(Debug, Clone)]
pub struct TierRow {
    /// The tier's probe status (device, emulated, rejection).
    pub status: TierStatus,
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
            "error": self.error,
            "agreement": self.agreement.map(|a| serde_json::json!({
                "max_abs": a.max_abs, "max_rel": a.max_rel, "same_argmax": a.same_argmax,
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

/// Run `w` on every candidate (`iters` >= 1 repetitions per operation). The simulator's
/// outputs are the reference: it runs first, whether or not it is among the candidates.
pub fn run(
    candidates: &[Candidate],
    w: &Workload,
    iters: u32,
    opts: &ProbeOptions,
) -> Vec<TierRow> {
    let reference = crate::runtime::sim_candidate();
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
            rows.push(TierRow { status, ops: Vec::new(), agreement: None, error: None });
            continue;
        };
        let (ops, out, error) = match measure(sub, w, iters) {
            Ok((ops, out)) => (ops, Some(out), None),
            Err(e) => (Vec::new(), None, Some(e.to_string())),
        };
        let is_ref = c.tier == Tier::Sim && ref_out.is_none();
        let agreement = match (&out, &ref_out) {
            (Some(o), Some(r)) => Some(agree(o, r)),
            _ => None,
        };
        if is_ref {
            ref_out = out;
        }
        if c.tier == Tier::Sim && !sim_listed {
            continue; // the reference alone is not a row the user asked for
        }
        rows.push(TierRow { status, ops, agreement, error });
    }
    rows.sort_by_key(|r| r.status.tier); // selection order: umq, kfd, cs, sim
    rows
}

fn agree(o: &Outputs, r: &Outputs) -> Agreement {
    let pairs = o.y.iter().zip(&r.y).chain(o.norm.iter().zip(&r.norm));
    let max_abs = pairs.map(|(a, b)| f64::from((a - b).abs())).fold(0.0, f64::max);
    let scale = r.y.iter().chain(&r.norm).map(|v| f64::from(v.abs())).fold(0.0, f64::max);
    let lengths_match = o.y.len() == r.y.len() && o.norm.len() == r.norm.len();
    Agreement {
        max_abs: if lengths_match { max_abs } else { f64::INFINITY },
        max_rel: if scale > 0.0 && lengths_match { max_abs / scale } else { max_abs },
        same_argmax: o.argmax.0 == r.argmax.0 && o.fused.0 == r.fused.0,
    }
}

fn measure(
    sub: Box<dyn Submitter>,
    w: &Workload,
    iters: u32,
) -> Result<(Vec<OpStats>, Outputs), SessionError> {
    let iters = iters.max(1);
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
