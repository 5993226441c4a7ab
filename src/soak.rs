//! A soak run: random mixtures of engine operations and raw packets on every tier of the
//! emulated device, with random fault injection, checked after every step.
//!
//! [`run`] repeats *rounds* until its time is up. A round builds a fresh emulated machine of a
//! preset (the one asked for, or every preset in turn), selects a tier with fallback as an
//! engine would (or, one round in three, opens tiers directly instead: the emulated device has
//! one GPU address space, so a round never mixes the two), and runs a random number of steps,
//! each one of:
//!
//! - **a batch**: weights of a random format and shape uploaded once per round, a random
//!   input, then RMS norm, DMMV, argmax and the fused DMMV + argmax in one submission. The
//!   results are held to the kernels' error bounds against an f64 evaluation on the host
//!   ([`crate::compare::Tolerance`], [`crate::compare::agree`]), so a wrong buffer, a stale
//!   result or a corrupted replay is a failure;
//! - **raw packets** on a tier opened directly with a small ring (4 KiB on kfd and umq, so the
//!   ring wraps every few dozen submissions): `WRITE_DATA` of random values to random offsets
//!   of a data BO, checked after the fence; or an IB of random dwords, or one writing an
//!   unmapped VA, which must end in a typed error within the wait's bound (never a panic or a
//!   hang);
//! - **a fault**: the `n`-th next ioctl of a random kind fails with a random errno, every later
//!   CS job hangs, or the device is lost (a GPU reset with VRAM loss).
//!
//! After a fault the session either moves to a lower tier and replays ([`Session::demotions`]
//! must only ever go down the selection order) or returns a typed [`SessionError`]; the round
//! ends when no tier is left. At the end of every round everything is dropped and the device
//! must be back to its baseline: no live DRM or KFD handle, mapping, queue, syncobj or BO.
//! Any violation is recorded in [`SoakReport::failures`] with the round, step and seed.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pm4rt_backends::cs::{CsConfig, CsSubmitter};
use pm4rt_backends::kfd::{KfdConfig, KfdSubmitter};
use pm4rt_backends::umq::{UmqConfig, UmqSubmitter};
use pm4rt_core::abi::drm::{
    DRM_IOCTL_AMDGPU_CS, DRM_IOCTL_AMDGPU_GEM_CREATE, DRM_IOCTL_AMDGPU_GEM_VA,
};
use pm4rt_core::abi::kfd::{AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, AMDKFD_IOC_MAP_MEMORY_TO_GPU};
use pm4rt_core::pm4::{encode_packet, Packet, WriteData};
use pm4rt_core::{BoDesc, Driver, Errno, Submitter, Tier};
use pm4rt_sim::emu::EmulatedDevice;

use crate::compare::{agree, Outputs, Tolerance, Workload};
use crate::probe::ProbeOptions;
use crate::rng::SplitMix64;
use crate::runtime::{candidates, presets, select, Machine, Policy};
use crate::session::{Session, SessionError, WeightFormat};

/// How to soak.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Emulation preset to run (`None`: every preset in turn).
    pub preset: Option<String>,
    /// How long to run (rounds are not cut short: the last one finishes).
    pub duration: Duration,
    /// Seed of every random choice.
    pub seed: u64,
}

/// What a soak run did and found.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Rounds (fresh machines) run.
    pub rounds: u64,
    /// Steps run.
    pub steps: u64,
    /// Batches whose results were checked against the bounds.
    pub batches_checked: u64,
    /// Raw IBs whose memory effects were checked.
    pub raw_ibs_checked: u64,
    /// Raw IBs that had to fail (random dwords, unmapped writes) and did, with a typed error.
    pub bad_ibs_refused: u64,
    /// Ring wrap-arounds of the raw kfd / umq queues (their 4 KiB rings), counted from at
    /// least 12 ring dwords per submission (INDIRECT_BUFFER + RELEASE_MEM).
    pub ring_wraps: u64,
    /// Faults injected (ioctl failures, hangs, device losses).
    pub faults_injected: u64,
    /// Typed errors a session returned after a fault.
    pub typed_errors: u64,
    /// Tier demotions the sessions made.
    pub demotions: u64,
    /// Rounds that ended with something still alive on the device (must stay 0).
    pub leaks: u64,
    /// Everything that went wrong, one line each (must stay empty).
    pub failures: Vec<String>,
}

impl SoakReport {
    /// True when nothing went wrong.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.leaks == 0
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rounds, {} steps: {} batches and {} raw IBs checked, {} bad IBs refused, {} ring \
             wraps, {} faults injected, {} typed errors, {} demotions, {} leaks, {} failures",
            self.rounds,
            self.steps,
            self.batches_checked,
            self.raw_ibs_checked,
            self.bad_ibs_refused,
            self.ring_wraps,
            self.faults_injected,
            self.typed_errors,
            self.demotions,
            self.leaks,
            self.failures.len()
        )
    }
}

/// How long one batch or raw IB may take before the step counts as failed (the session's
/// own fence timeout; an injected hang is detected within it).
const WAIT: Duration = Duration::from_millis(500);
/// Ring of the raw kfd / umq queues: 4 KiB, so it wraps every few dozen submissions.
const RAW_RING_BYTES: u64 = 4096;

/// Soak until `opts.duration` has passed. See the module documentation.
///
/// Errors: an unknown preset name ([`crate::Error`] from [`Machine::emulated`]).
pub fn run(opts: &SoakOptions) -> crate::Result<SoakReport> {
    let names: Vec<String> = match &opts.preset {
        Some(p) => {
            Machine::emulated(p)?;
            vec![p.clone()]
        }
        None => presets().iter().map(|p| p.name.to_string()).collect(),
    };
    let mut rng = SplitMix64::new(opts.seed);
    let mut report = SoakReport::default();
    let start = Instant::now();
    while start.elapsed() < opts.duration || report.rounds == 0 {
        let name = &names[(report.rounds % names.len() as u64) as usize];
        round(name, &mut rng, &mut report)?;
        report.rounds += 1;
    }
    Ok(report)
}

/// One round on a fresh machine of preset `name`.
fn round(name: &str, rng: &mut SplitMix64, report: &mut SoakReport) -> crate::Result<()> {
    let machine = Machine::emulated(name)?;
    let Machine::Emulated(dev) = &machine else {
        unreachable!("Machine::emulated returns an emulated machine")
    };
    let dev = Arc::clone(dev);
    let round_no = report.rounds;
    let at = |step: u64| format!("preset {name}, round {round_no}, step {step}");
    let policy = Policy::default();
    let probe = ProbeOptions::default();
    let steps = 4 + rng.next_u64() % 24;
    // A round either runs an engine session or raw submitters, never both: the emulated
    // device has one GPU address space for all its files (a real kernel gives every DRM file
    // its own VM), so two files mapping the same VA would collide there.
    let raw_round = rng.next_u64().is_multiple_of(3);
    {
        let mut session = if raw_round {
            Err("a raw round".to_string())
        } else {
            select(candidates(&machine, &policy), &probe).map_err(|e| e.to_string()).and_then(
                |sel| Session::with_fallback(sel, probe.clone()).map_err(|e| e.to_string()),
            )
        };
        let work = random_workload(rng);
        let mut weights = None;
        let mut faulted = false;
        for step in 0..steps {
            report.steps += 1;
            let kind = rng.next_u64() % 8;
            match kind {
                0..=5 if raw_round => raw(&dev, rng, report, &at(step), faulted),
                0..=5 => {
                    let Ok(s) = session.as_mut() else { continue };
                    match batch(s, &work, &mut weights, rng) {
                        Ok(Some(problem)) => {
                            report.failures.push(format!("{}: {problem}", at(step)))
                        }
                        Ok(None) => report.batches_checked += 1,
                        Err(e) if !faulted => {
                            report.failures.push(format!("{}: no fault injected: {e}", at(step)));
                            session = Err(e.to_string());
                        }
                        Err(e) => {
                            report.typed_errors += 1;
                            if !recoverable(&e) {
                                session = Err(e.to_string());
                            }
                        }
                    }
                }
                _ => {
                    inject(&dev, rng);
                    faulted = true;
                    report.faults_injected += 1;
                }
            }
        }
        if let Ok(s) = &session {
            let d = s.demotions();
            report.demotions += d.len() as u64;
            if let Some(bad) = d.iter().find(|d| d.to <= d.from) {
                report.failures.push(format!("{}: demotion goes up: {bad}", at(steps)));
            }
        }
    }
    // Everything of the round is dropped: the device must be back to nothing alive.
    let (drm, kfd, bos) = (dev.live_handles(), dev.kfd_live_handles(), dev.memory().bo_count());
    if !drm.is_zero() || !kfd.is_zero() || bos != 0 {
        report.leaks += 1;
        report
            .failures
            .push(format!("{}: leaked after the round: {drm:?} {kfd:?}, {bos} BOs", at(steps)));
    }
    Ok(())
}

/// A session error after which the session cannot go on.
fn recoverable(e: &SessionError) -> bool {
    !matches!(e, SessionError::AllTiersFailed { .. })
}

/// A random small LM-head-shaped workload of a random format.
fn random_workload(rng: &mut SplitMix64) -> Workload {
    let rows = 1 + (rng.next_u64() % 300) as usize;
    let cols = 32 * (1 + (rng.next_u64() % 8) as usize);
    let format =
        [WeightFormat::F32, WeightFormat::Q8_0, WeightFormat::Q4_0][(rng.next_u64() % 3) as usize];
    let weights = match format {
        WeightFormat::F32 => (0..rows * cols).flat_map(|_| rng.next_f32().to_le_bytes()).collect(),
        _ => {
            let block = if format == WeightFormat::Q8_0 { 32 } else { 16 };
            let mut b = Vec::new();
            for _ in 0..rows * cols / 32 {
                // f16 scale in [2^-8, 2^-7), random quants.
                b.extend((0x1C00u16 | (rng.next_u64() as u16 & 0x3FF)).to_le_bytes());
                b.extend((0..block).map(|_| rng.next_u64() as u8));
            }
            b
        }
    };
    Workload::with_inputs("soak".into(), format, (rows, cols), weights, rng)
}

/// One batch on the session, checked; `Ok(Some(why))` when the results are wrong.
fn batch(
    s: &mut Session,
    work: &Workload,
    weights: &mut Option<crate::session::WeightHandle>,
    rng: &mut SplitMix64,
) -> Result<Option<String>, SessionError> {
    let w = match *weights {
        Some(w) => w,
        None => {
            let w = s.upload_weights(work.format, work.rows, work.cols, &work.weights)?;
            *weights = Some(w);
            w
        }
    };
    // A fresh input each time (the weights stay resident).
    let mut input = work.clone();
    input.x = (0..work.cols).map(|_| 4.0 * rng.next_f32()).collect();
    let [x, nw, h, y] = [work.cols, work.cols, work.cols, work.rows].map(|n| s.alloc_vec(n));
    let (x, nw, h, y) = (x?, nw?, h?, y?);
    s.write_vec(x, &input.x)?;
    s.write_vec(nw, &input.norm_weight)?;
    let mut b = s.batch();
    b.rms_norm(x, nw, input.eps, h)?;
    b.dmmv(w, h, y)?;
    let a = b.argmax(y)?;
    let f = b.dmmv_argmax(w, h)?;
    let r = b.submit_and_wait(WAIT)?;
    let got = Outputs {
        norm: s.read_vec(h)?,
        y: s.read_vec(y)?,
        argmax: r.argmax(a),
        fused: r.argmax(f),
    };
    let tol = Tolerance::of(&input)?;
    let want = exact(&input)?;
    Ok(agree(&got, &want, &tol).problem())
}

/// The workload's outputs evaluated in f64 (rounded to f32 once at the end).
fn exact(w: &Workload) -> Result<Outputs, SessionError> {
    let n = w.cols as f64;
    let ss: f64 = w.x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let r = (ss / n + f64::from(w.eps)).sqrt();
    let norm: Vec<f64> =
        w.x.iter().zip(&w.norm_weight).map(|(&x, &g)| f64::from(x) / r * f64::from(g)).collect();
    let row_bytes = w.format.weight_bytes(1, w.cols)?;
    let mut row = vec![0f32; w.cols];
    let mut y = Vec::with_capacity(w.rows);
    for bytes in w.weights.chunks_exact(row_bytes).take(w.rows) {
        pm4rt_sim::kernels::dequantize_row(w.format.weight_type(), bytes, w.cols, &mut row)
            .map_err(|e| pm4rt_core::Error::InvalidArgument(e.to_string()))?;
        y.push(row.iter().zip(&norm).map(|(&a, b)| f64::from(a) * b).sum::<f64>());
    }
    let best = (0..y.len()).fold(0, |m, i| if y[i] > y[m] { i } else { m });
    let top = (best as u32, y.get(best).copied().unwrap_or(0.0) as f32);
    Ok(Outputs {
        norm: norm.iter().map(|&v| v as f32).collect(),
        y: y.iter().map(|&v| v as f32).collect(),
        argmax: top,
        fused: top,
    })
}

/// Open `tier` directly on the device, with a small ring on kfd / umq.
fn open_raw(dev: &Arc<EmulatedDevice>, tier: Tier) -> Option<Box<dyn Submitter>> {
    let driver: Arc<dyn Driver> = Arc::clone(dev) as Arc<dyn Driver>;
    let node = "/dev/dri/renderD128".to_string();
    match tier {
        Tier::Umq => {
            let c = UmqConfig {
                emulated: true,
                ring_bytes: RAW_RING_BYTES,
                ..UmqConfig::with_path(node)
            };
            UmqSubmitter::open(driver, c).ok().map(|s| Box::new(s) as Box<dyn Submitter>)
        }
        Tier::Kfd => {
            let c = KfdConfig {
                emulated: true,
                render_path: Some(node),
                ring_bytes: RAW_RING_BYTES,
                ..KfdConfig::default()
            };
            KfdSubmitter::open(driver, c).ok().map(|s| Box::new(s) as Box<dyn Submitter>)
        }
        Tier::Cs => {
            let c = CsConfig { emulated: true, ..CsConfig::with_path(node) };
            CsSubmitter::open(driver, c).ok().map(|s| Box::new(s) as Box<dyn Submitter>)
        }
        Tier::Sim => None,
    }
}

/// A run of raw IBs on a random hardware tier opened directly. Errors are expected only
/// after a fault was injected in the round (`faulted`), or from KFD queues of a preset whose
/// queues never retire.
fn raw(
    dev: &Arc<EmulatedDevice>,
    rng: &mut SplitMix64,
    report: &mut SoakReport,
    at: &str,
    faulted: bool,
) {
    let tier = [Tier::Umq, Tier::Kfd, Tier::Cs][(rng.next_u64() % 3) as usize];
    let expected = faulted || (tier == Tier::Kfd && !dev.preset().kfd_queues_retire);
    // A tier the preset does not offer (or a fault injected earlier) refuses to open: fine.
    let Some(mut sub) = open_raw(dev, tier) else { return };
    let bad = rng.next_u64().is_multiple_of(2);
    let mut check = |sub: &mut Box<dyn Submitter>| -> Result<(u64, bool, u64), String> {
        let data = sub.alloc_bo(&BoDesc::gtt(4096)).map_err(|e| e.to_string())?;
        let data_va = sub.map_va(data, None).map_err(|e| e.to_string())?;
        let ib = sub.alloc_bo(&BoDesc::gtt(4096)).map_err(|e| e.to_string())?;
        let ib_va = sub.map_va(ib, None).map_err(|e| e.to_string())?;
        let count = 40 + rng.next_u64() % 260;
        let mut shadow = [0u32; 1024];
        let mut dwords_written = 0u64;
        for _ in 0..count {
            let off = rng.next_u64() % 1000;
            let vals: Vec<u32> =
                (0..1 + rng.next_u64() % 8).map(|_| rng.next_u64() as u32).collect();
            let ib_words = encode_packet(&Packet::WriteData(WriteData {
                dst_sel: 5,
                wr_confirm: true,
                addr: data_va + 4 * off,
                data: vals.clone(),
                ..Default::default()
            }));
            sub.write_bo(ib, 0, bytemuck::cast_slice(&ib_words)).map_err(|e| e.to_string())?;
            let fence = sub.submit_ib(ib_va, ib_words.len() as u32).map_err(|e| e.to_string())?;
            sub.wait_fence(fence, WAIT).map_err(|e| e.to_string())?;
            for (i, v) in vals.iter().enumerate() {
                shadow[off as usize + i] = *v;
            }
            let mut got = vec![0u8; 4096];
            sub.read_bo(data, 0, &mut got).map_err(|e| e.to_string())?;
            if bytemuck::cast_slice::<u8, u32>(&got) != shadow.as_slice() {
                return Err(format!("{tier}: data BO differs after a WRITE_DATA at dword {off}"));
            }
            // The IB runs from the ring through one INDIRECT_BUFFER (4 dwords) and the tier's
            // fence (RELEASE_MEM, 8); umq may add an ACQUIRE_MEM (8).
            dwords_written += 12;
        }
        // Then, sometimes, an IB that must fail: random dwords or a write to an unmapped VA.
        if bad {
            let words: Vec<u32> = if rng.next_u64().is_multiple_of(2) {
                (0..16).map(|_| rng.next_u64() as u32).collect()
            } else {
                encode_packet(&Packet::WriteData(WriteData {
                    dst_sel: 5,
                    addr: 0x7F_0000_0000,
                    data: vec![1],
                    ..Default::default()
                }))
            };
            sub.write_bo(ib, 0, bytemuck::cast_slice(&words)).map_err(|e| e.to_string())?;
            let t = Instant::now();
            let outcome =
                sub.submit_ib(ib_va, words.len() as u32).and_then(|f| sub.wait_fence(f, WAIT));
            if t.elapsed() > 4 * WAIT {
                return Err(format!("{tier}: a bad IB took {:?} to fail", t.elapsed()));
            }
            // Random dwords may happen to decode as harmless packets; an unmapped write may
            // not. Either way the outcome is a value, never a panic.
            let _ = outcome;
        }
        Ok((count, bad, dwords_written))
    };
    match check(&mut sub) {
        Ok((count, bad, dwords)) => {
            report.raw_ibs_checked += count;
            report.bad_ibs_refused += u64::from(bad);
            if tier != Tier::Cs {
                report.ring_wraps += dwords / (RAW_RING_BYTES / 4);
            }
        }
        // After an injected fault every error is a typed one of the Submitter contract.
        Err(_) if expected => report.typed_errors += 1,
        Err(e) => report.failures.push(format!("{at}: raw {tier}: {e}")),
    }
}

/// Inject one random fault into the device.
fn inject(dev: &EmulatedDevice, rng: &mut SplitMix64) {
    let requests = [
        DRM_IOCTL_AMDGPU_CS,
        DRM_IOCTL_AMDGPU_GEM_CREATE,
        DRM_IOCTL_AMDGPU_GEM_VA,
        AMDKFD_IOC_ALLOC_MEMORY_OF_GPU,
        AMDKFD_IOC_MAP_MEMORY_TO_GPU,
    ];
    let errnos = [Errno::EIO, Errno::ENOMEM, Errno::EINVAL, Errno::EFAULT];
    match rng.next_u64() % 4 {
        0 | 1 => {
            let req = requests[(rng.next_u64() % requests.len() as u64) as usize];
            let errno = errnos[(rng.next_u64() % errnos.len() as u64) as usize];
            dev.fail_ioctl(req, dev.ioctl_count(req) + 1 + rng.next_u64() % 3, errno);
        }
        2 => dev.hang_after(dev.ioctl_count(DRM_IOCTL_AMDGPU_CS)),
        _ => dev.lose_device(rng.next_u64().is_multiple_of(2)),
    }
}
