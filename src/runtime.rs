//! Tier selection: enumerate the machine (or an emulated one), build the candidates in
//! selection order (umq, kfd, cs on every AMD render node, then sim), probe them, and pick the
//! first that passes its capability checks and retire smoke.
//!
//! Environment overrides: `PM4RT_TIER` forces one tier (`umq`, `kfd`, `cs`, `sim`),
//! `PM4RT_RENDER_NODE` restricts the hardware tiers to one render node.

use std::sync::Arc;

use pm4rt_backends::cs::{CsConfig, CsSubmitter};
use pm4rt_backends::kfd::{KfdConfig, KfdSubmitter};
use pm4rt_backends::umq::{UmqConfig, UmqSubmitter};
use pm4rt_backends::LinuxDriver;
use pm4rt_core::{Driver, Errno, Submitter, Tier};
use pm4rt_sim::emu::{EmulatedDevice, Preset};
use pm4rt_sim::isa::ExecMode;
use pm4rt_sim::{SimConfig, SimSubmitter};

use crate::error::{Error, Result};
use crate::probe::{probe_one, Candidate, Executor, ProbeOptions, Rejection, TierStatus};

pub use pm4rt_core::DEFAULT_RENDER_NODE;
/// PCI vendor id of AMD, as `/sys/class/drm/renderD*/device/vendor` prints it.
const AMD_VENDOR: &str = "0x1002";

/// What selection may choose.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Only this tier (from `--tier` or `PM4RT_TIER`).
    pub force: Option<Tier>,
    /// Never fall back to the simulator.
    pub exclude_sim: bool,
    /// Only this render node for the hardware tiers (from `PM4RT_RENDER_NODE`).
    pub render_node: Option<String>,
    /// Which executor the simulator tier runs pm4rt's kernels with (`--sim-exec`); `None`:
    /// `PM4RT_SIM_EXEC` at each dispatch.
    pub sim_exec: Option<ExecMode>,
    /// Probe settings (retire-smoke deadline).
    pub probe: ProbeOptions,
}

impl Policy {
    /// The default policy with `PM4RT_TIER` and `PM4RT_RENDER_NODE` applied.
    ///
    /// Errors: [`Error::InvalidTier`] when `PM4RT_TIER` names no tier.
    pub fn from_env() -> Result<Policy> {
        let mut p = Policy::default();
        if let Ok(t) = std::env::var("PM4RT_TIER") {
            p.force = Some(parse_tier(&t)?);
        }
        if let Ok(n) = std::env::var("PM4RT_RENDER_NODE") {
            p.render_node = Some(n);
        }
        Ok(p)
    }

    fn allows(&self, tier: Tier) -> bool {
        self.force.map_or(!(tier == Tier::Sim && self.exclude_sim), |f| f == tier)
    }
}

/// Parse a tier name (`umq`, `kfd`, `cs`, `sim`).
///
/// Errors: [`Error::InvalidTier`].
pub fn parse_tier(name: &str) -> Result<Tier> {
    Tier::from_name(name).ok_or_else(|| Error::InvalidTier(name.to_string()))
}

/// The machine to run on: this host's kernel, or an emulated kernel device of a preset.
#[derive(Clone)]
pub enum Machine {
    /// Real syscalls through [`LinuxDriver`].
    Host,
    /// The emulated amdgpu/KFD device of a preset; the hardware tiers are labelled emulated.
    Emulated(Arc<EmulatedDevice>),
}

/// A named machine preset `--emulate` accepts.
#[derive(Debug, Clone, Copy)]
pub struct NamedPreset {
    /// The name on the command line.
    pub name: &'static str,
    /// What machine it is and how its tiers behave.
    pub description: &'static str,
    /// Builds the preset.
    pub make: fn() -> Preset,
}

/// The preset `--emulate` uses when no name is given.
pub const DEFAULT_PRESET: &str = "gfx1201";

/// The named machine presets `--emulate` accepts.
pub fn presets() -> Vec<NamedPreset> {
    vec![
        NamedPreset {
            name: "gfx1201",
            description: "a healthy RDNA4 gfx1201 machine (R9700-class, Linux 6.17, amdgpu.user_queue=1): every tier works",
            make: healthy_gfx1201,
        },
        NamedPreset {
            name: "r9700",
            description: "an R9700 (gfx1201) on Linux 6.17 with the default user_queue=-1: user queues off, KFD queues created but never retiring, CS works",
            make: Preset::r9700_kfd_never_retires,
        },
        NamedPreset {
            name: "rdna3-userq",
            description: "an RX 7900 XTX (gfx1100) on Linux 6.17 with amdgpu.user_queue=1: user queues work",
            make: Preset::rx7900xtx_userq,
        },
        NamedPreset {
            name: "rx7900xtx",
            description: "an RX 7900 XTX (gfx1100) on Linux 6.17 with the default user_queue=-1",
            make: Preset::rx7900xtx_gfx1100,
        },
        NamedPreset {
            name: "nogpu",
            description: "a machine without an AMD GPU: no render node, no /dev/kfd (the simulator is chosen)",
            make: no_gpu,
        },
    ]
}

fn healthy_gfx1201() -> Preset {
    let userq = Preset::rx7900xtx_userq();
    Preset {
        name: "healthy gfx1201 (R9700-class), Linux 6.17, amdgpu.user_queue=1".into(),
        user_queue: userq.user_queue,
        userq_ip_mask: userq.userq_ip_mask,
        userq_compute_slots: userq.userq_compute_slots,
        ..Preset::r9700_gfx1201()
    }
}

fn no_gpu() -> Preset {
    Preset {
        name: "no AMD GPU".into(),
        render_nodes: Vec::new(),
        kfd_present: false,
        ..Preset::r9700_gfx1201()
    }
}

impl Machine {
    /// The emulated machine of the preset called `name` (see [`presets`]).
    ///
    /// Errors: [`Error::UnknownPreset`] listing the known names.
    pub fn emulated(name: &str) -> Result<Machine> {
        Self::emulated_executing(name, None)
    }

    /// The emulated machine of the preset called `name` whose GPU runs pm4rt's kernels with
    /// `exec` (`None`: `PM4RT_SIM_EXEC` at each dispatch; `Some(ExecMode::Isa)`: the kernels'
    /// machine code, as a GPU would).
    ///
    /// Errors: [`Error::UnknownPreset`] listing the known names.
    pub fn emulated_executing(name: &str, exec: Option<ExecMode>) -> Result<Machine> {
        let list = presets();
        let Some(p) = list.iter().find(|p| p.name == name) else {
            let names: Vec<_> = list.iter().map(|p| p.name).collect();
            return Err(Error::UnknownPreset { name: name.to_string(), known: names.join(", ") });
        };
        let dev = EmulatedDevice::new(Preset { exec, ..(p.make)() })
            .map_err(|e| Error::Core(pm4rt_core::Error::io("create emulated device", e)))?;
        Ok(Machine::Emulated(Arc::new(dev)))
    }

    fn driver(&self) -> Arc<dyn Driver> {
        match self {
            Machine::Host => Arc::new(LinuxDriver::new()),
            Machine::Emulated(d) => d.clone(),
        }
    }

    fn is_emulated(&self) -> bool {
        matches!(self, Machine::Emulated(_))
    }

    /// What runs the hardware tiers' dispatches on this machine.
    fn executor(&self) -> Executor {
        match self {
            Machine::Host => Executor::Gpu,
            Machine::Emulated(d) => Executor::simulated(d.preset().exec),
        }
    }

    /// The AMD render nodes of the machine, in minor order.
    fn render_nodes(&self, driver: &dyn Driver) -> Vec<String> {
        match self {
            Machine::Emulated(d) => d.preset().render_nodes,
            Machine::Host => {
                let Ok(names) = driver.list_dir("/sys/class/drm") else { return Vec::new() };
                names
                    .into_iter()
                    .filter(|n| n.starts_with("renderD"))
                    .filter(|n| {
                        driver
                            .read_file(&format!("/sys/class/drm/{n}/device/vendor"))
                            .is_ok_and(|v| v.trim() == AMD_VENDOR)
                    })
                    .map(|n| format!("/dev/dri/{n}"))
                    .collect()
            }
        }
    }
}

/// Every candidate allowed by `policy` on `machine`, in selection order: each hardware tier
/// on each AMD render node (umq, then kfd, then cs), then the simulator.
pub fn candidates(machine: &Machine, policy: &Policy) -> Vec<Candidate> {
    let driver = machine.driver();
    let emulated = machine.is_emulated();
    let executor = machine.executor();
    let mut nodes = machine.render_nodes(driver.as_ref());
    if let Some(n) = &policy.render_node {
        nodes.retain(|x| x == n);
        if nodes.is_empty() {
            nodes.push(n.clone());
        }
    }
    let mut out = Vec::new();
    for tier in [Tier::Umq, Tier::Kfd, Tier::Cs] {
        if !policy.allows(tier) {
            continue;
        }
        if nodes.is_empty() {
            out.push(missing_node(tier, emulated, executor));
        }
        for node in &nodes {
            out.push(hardware_candidate(tier, node, driver.clone(), emulated, executor));
        }
    }
    if policy.allows(Tier::Sim) {
        out.push(sim_candidate_executing(policy.sim_exec));
    }
    out
}

fn missing_node(tier: Tier, emulated: bool, executor: Executor) -> Candidate {
    Candidate {
        tier,
        device: "(none)".into(),
        emulated,
        executor,
        open: Arc::new(|| {
            Err(Rejection {
                step: "find render node".into(),
                errno: Some(Errno::ENOENT),
                message: "no AMD render node (/sys/class/drm/renderD* with vendor 0x1002)".into(),
            })
        }),
    }
}

fn hardware_candidate(
    tier: Tier,
    node: &str,
    driver: Arc<dyn Driver>,
    emulated: bool,
    executor: Executor,
) -> Candidate {
    let path = node.to_string();
    let boxed = |r: pm4rt_core::Result<Box<dyn Submitter>>| {
        r.map_err(|e| Rejection::from_error("open", &e))
    };
    let open: crate::probe::Opener = match tier {
        Tier::Umq => Arc::new(move || {
            let config = UmqConfig { emulated, ..UmqConfig::with_path(path.clone()) };
            boxed(UmqSubmitter::open(driver.clone(), config).map(|s| Box::new(s) as _))
        }),
        Tier::Kfd => Arc::new(move || {
            let config =
                KfdConfig { emulated, render_path: Some(path.clone()), ..KfdConfig::default() };
            boxed(KfdSubmitter::open(driver.clone(), config).map(|s| Box::new(s) as _))
        }),
        Tier::Cs => Arc::new(move || {
            let config = CsConfig { emulated, ..CsConfig::with_path(path.clone()) };
            boxed(CsSubmitter::open(driver.clone(), config).map(|s| Box::new(s) as _))
        }),
        Tier::Sim => return sim_candidate_executing(None),
    };
    let device = if tier == Tier::Kfd { format!("/dev/kfd ({node})") } else { node.to_string() };
    Candidate { tier, device, emulated, executor, open }
}

/// The simulator candidate: always present. Its kernels run as `PM4RT_SIM_EXEC` selects.
pub fn sim_candidate() -> Candidate {
    sim_candidate_executing(None)
}

/// The simulator candidate running pm4rt's kernels with `exec` (`None`: `PM4RT_SIM_EXEC` at
/// each dispatch).
pub fn sim_candidate_executing(exec: Option<ExecMode>) -> Candidate {
    Candidate {
        tier: Tier::Sim,
        device: "in-process".to_string(),
        emulated: false,
        executor: Executor::simulated(exec),
        open: Arc::new(move || {
            match SimSubmitter::with_config(SimConfig { exec, ..SimConfig::default() }) {
                Ok(s) => Ok(Box::new(s) as Box<dyn Submitter>),
                Err(e) => Err(Rejection::from_error("create simulator", &e)),
            }
        }),
    }
}

/// The outcome of selection: the chosen submitter, the statuses of every candidate probed
/// (those before the chosen one were rejected), and the candidates after it (for run-time
/// fallback).
pub struct Selection {
    /// The open submitter of the chosen tier.
    pub submitter: Box<dyn Submitter>,
    /// The chosen candidate.
    pub chosen: Candidate,
    /// Every candidate probed, in order, with its status (the chosen one last).
    pub statuses: Vec<TierStatus>,
    /// Candidates after the chosen one, for demotion at run time.
    pub fallback: Vec<Candidate>,
}

/// Probe `candidates` in order and return the first usable one.
///
/// Errors: [`Error::NoTier`] listing every candidate's reason when none qualifies.
pub fn select(candidates: Vec<Candidate>, opts: &ProbeOptions) -> Result<Selection> {
    let mut statuses = Vec::new();
    let mut rest = candidates.into_iter();
    while let Some(c) = rest.next() {
        let (status, sub) = probe_one(&c, opts);
        statuses.push(status);
        if let Some(submitter) = sub {
            return Ok(Selection { submitter, chosen: c, statuses, fallback: rest.collect() });
        }
    }
    Err(Error::NoTier(reasons(&statuses)))
}

/// Probe every candidate (for the `probe` report).
pub fn probe_all(candidates: &[Candidate], opts: &ProbeOptions) -> Vec<TierStatus> {
    candidates.iter().map(|c| probe_one(c, opts).0).collect()
}

/// One line per rejected status: `tier device: step: message (errno N)`.
pub fn reasons(statuses: &[TierStatus]) -> String {
    statuses
        .iter()
        .filter_map(|s| {
            s.rejection.as_ref().map(|r| {
                let errno = r.errno.map_or(String::new(), |e| format!(" (errno {})", e.0));
                format!("  {} {}: {}: {}{errno}", s.tier, s.device, r.step, r.message)
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}
