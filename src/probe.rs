//! Tier probing: which submission paths really work on this machine, and why the others don't.
//!
//! A tier counts only after its capability checks succeed (the backend opens the device and
//! creates its queue) AND a retire smoke passes: one tiny IB whose `RELEASE_MEM` must land
//! within a deadline ([`ProbeOptions::retire_deadline`]). Every rejection is recorded as a
//! [`TierStatus`] carrying the failing step, errno and message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pm4rt_core::{Errno, Submitter, Tier};
use pm4rt_sim::isa::ExecMode;

use crate::smoke;

/// Why a tier's capability check failed: the step, the errno if a syscall failed, and a
/// message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// What was being checked or done (e.g. `"open /dev/kfd"`, `"USERQ CREATE"`).
    pub step: String,
    /// The errno of the failing syscall, when there was one.
    pub errno: Option<Errno>,
    /// What the check saw.
    pub message: String,
}

impl Rejection {
    /// The rejection for a submitter error: `Io` errors keep their step and errno.
    pub fn from_error(step: &str, e: &pm4rt_core::Error) -> Self {
        match e {
            pm4rt_core::Error::Io { step, errno } => {
                Rejection { step: (*step).to_string(), errno: Some(*errno), message: e.to_string() }
            }
            other => Rejection::new(step, other.to_string()),
        }
    }

    /// A rejection without an errno.
    pub fn new(step: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection { step: step.into(), errno: None, message: message.into() }
    }
}

/// What executes a candidate's dispatches: the row label `compare` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// A real GPU runs the kernels' machine code.
    Gpu,
    /// The simulator's engine (the simulator tier, or the emulated kernel device's GPU) runs
    /// pm4rt's kernels: natively in Rust, or their machine code on the ISA interpreter.
    Simulated(ExecMode),
}

impl Executor {
    /// `"gpu"`, `"native"` or `"isa"`.
    pub fn name(self) -> &'static str {
        match self {
            Executor::Gpu => "gpu",
            Executor::Simulated(ExecMode::Native) => "native",
            Executor::Simulated(ExecMode::Isa) => "isa",
            Executor::Simulated(ExecMode::Both) => "both",
        }
    }

    /// The executor of a simulated GPU set to `mode` (`None`: the process's mode,
    /// [`ExecMode::current`], at each dispatch; an invalid `PM4RT_SIM_EXEC` there fails every
    /// dispatch, and is labelled native).
    pub fn simulated(mode: Option<ExecMode>) -> Executor {
        Executor::Simulated(mode.unwrap_or_else(|| ExecMode::current().unwrap_or_default()))
    }
}

/// A function that opens a submitter (see [`Candidate::open`]).
pub type Opener = Arc<dyn Fn() -> Result<Box<dyn Submitter>, Rejection> + Send + Sync>;

/// A way to open one tier on one device: the probe calls it and, on success, smoke-tests the
/// submitter it returns.
#[derive(Clone)]
pub struct Candidate {
    /// The tier this candidate opens.
    pub tier: Tier,
    /// The device it targets (render node, `/dev/kfd`, `in-process`), for the report.
    pub device: String,
    /// True when the device is the emulated kernel device rather than hardware.
    pub emulated: bool,
    /// What runs the dispatches (a GPU, or the simulator natively or on machine code).
    pub executor: Executor,
    /// Opens the submitter, or says why it cannot. Callable again: a session that demotes to
    /// this tier at run time opens it then.
    pub open: Opener,
}

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// How long the retire smoke's fence may take before the tier is rejected (default 500 ms).
    pub retire_deadline: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { retire_deadline: Duration::from_millis(500) }
    }
}

/// The outcome for one candidate.
#[derive(Debug, Clone)]
pub struct TierStatus {
    /// The tier.
    pub tier: Tier,
    /// The device probed.
    pub device: String,
    /// True when the device is emulated.
    pub emulated: bool,
    /// `None` when the tier is usable, else why not.
    pub rejection: Option<Rejection>,
    /// Wall time the probe of this candidate took.
    pub elapsed: Duration,
}

impl TierStatus {
    /// True when the tier passed its capability checks and its retire smoke.
    pub fn usable(&self) -> bool {
        self.rejection.is_none()
    }

    /// This status as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        let r = self.rejection.as_ref();
        serde_json::json!({
            "tier": self.tier.name(),
            "device": self.device,
            "emulated": self.emulated,
            "usable": self.usable(),
            "step": r.map(|r| r.step.clone()),
            "errno": r.and_then(|r| r.errno).map(|e| e.0),
            "message": r.map(|r| r.message.clone()),
            "probe_ms": self.elapsed.as_secs_f64() * 1e3,
        })
    }
}

/// Probe one candidate: open it, then run the retire smoke. Returns the status and, when the
/// tier is usable, the open submitter (so selection need not open it twice).
pub fn probe_one(c: &Candidate, opts: &ProbeOptions) -> (TierStatus, Option<Box<dyn Submitter>>) {
    let t0 = Instant::now();
    let (tier, device, emulated) = (c.tier, c.device.clone(), c.emulated);
    let deadline = opts.retire_deadline;
    let outcome = (c.open)().and_then(|mut s| match smoke::run(s.as_mut(), 1, deadline) {
        Ok(_) => Ok(s),
        Err(crate::Error::Core(pm4rt_core::Error::Timeout { waited, .. })) => Err(Rejection::new(
            "retire smoke",
            format!("queue created but the fence did not retire within {waited:.0?}"),
        )),
        Err(e) => Err(Rejection::new("retire smoke", e.to_string())),
    });
    let (rejection, sub) = match outcome {
        Ok(s) => (None, Some(s)),
        Err(r) => (Some(r), None),
    };
    (TierStatus { tier, device, emulated, rejection, elapsed: t0.elapsed() }, sub)
}
