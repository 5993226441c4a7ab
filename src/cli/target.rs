//! Options shared by the commands that run work: which machine, which tier, which node.

use pm4rt::runtime::{self, candidates, parse_tier, presets, Machine, Policy, Selection};
use pm4rt::Tier;
use pm4rt_sim::isa::ExecMode;

/// Where to run: `--tier`, `--emulate`, `--render-node`, `--exclude-sim`, `--sim-exec`.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Tier to run on (umq, kfd, cs, sim); default: the first usable in that order.
    #[arg(long, env = "PM4RT_TIER", value_parser = parse_tier_arg)]
    pub tier: Option<Tier>,
    /// Run the hardware tiers on the emulated kernel device of a preset instead of this
    /// machine's kernel (`--emulate` alone: a healthy gfx1201 machine; `--emulate list` names
    /// the presets).
    #[arg(long, num_args = 0..=1, default_missing_value = runtime::DEFAULT_PRESET, value_name = "PRESET")]
    pub emulate: Option<String>,
    /// Only this DRM render node for the hardware tiers.
    #[arg(long, env = "PM4RT_RENDER_NODE")]
    pub render_node: Option<String>,
    /// Never fall back to the simulator.
    #[arg(long)]
    pub exclude_sim: bool,
    /// How the simulator tier and the emulated device's GPU run kernels: native (pm4rt's
    /// kernels in Rust, other code on the ISA interpreter), isa (everything interpreted) or
    /// both (pm4rt's kernels both ways, compared); default: native (compare --emulate: isa on
    /// the emulated tiers).
    #[arg(long, env = "PM4RT_SIM_EXEC", value_parser = parse_sim_exec, value_name = "MODE")]
    pub sim_exec: Option<ExecMode>,
}

/// Parse `--sim-exec`.
pub fn parse_sim_exec(s: &str) -> Result<ExecMode, String> {
    ExecMode::parse(s).map_err(|e| e.to_string())
}

fn parse_tier_arg(s: &str) -> Result<Tier, String> {
    parse_tier(s).map_err(|e| e.to_string())
}

impl TargetArgs {
    /// True (after printing the presets) when the user asked `--emulate list`.
    pub fn listed_presets(&self) -> bool {
        if self.emulate.as_deref() != Some("list") {
            return false;
        }
        let list = presets();
        let width = list.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in list {
            println!("{:<width$}  {}", p.name, p.description);
        }
        true
    }

    /// The machine and policy these options describe; `--sim-exec` is pinned in both (the
    /// simulator candidate's and the emulated device's executor).
    pub fn machine_and_policy(&self) -> pm4rt::Result<(Machine, Policy)> {
        self.machine_and_policy_emulating(None)
    }

    /// As [`TargetArgs::machine_and_policy`], with the emulated device's GPU running pm4rt's
    /// kernels with `emulated_default` unless `--sim-exec` (or `PM4RT_SIM_EXEC`) says otherwise.
    pub fn machine_and_policy_emulating(
        &self,
        emulated_default: Option<ExecMode>,
    ) -> pm4rt::Result<(Machine, Policy)> {
        let machine = match &self.emulate {
            Some(name) => Machine::emulated_executing(name, self.sim_exec.or(emulated_default))?,
            None => Machine::Host,
        };
        let policy = Policy {
            force: self.tier,
            exclude_sim: self.exclude_sim,
            render_node: self.render_node.clone(),
            sim_exec: self.sim_exec,
            ..Policy::default()
        };
        Ok((machine, policy))
    }

    /// Probe and select a tier.
    pub fn select(&self) -> pm4rt::Result<Selection> {
        let (machine, policy) = self.machine_and_policy()?;
        runtime::select(candidates(&machine, &policy), &policy.probe)
    }
}
