//! `pm4rt soak`: random work, raw packets and injected faults on every tier of the emulated
//! device, checked after every step, for a fixed time.

use std::process::ExitCode;
use std::time::Duration;

use pm4rt::soak::{self, SoakOptions};

/// Arguments of `pm4rt soak`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Emulation preset to soak (default: every preset in turn; `--emulate list` names them).
    #[arg(long, value_name = "PRESET")]
    emulate: Option<String>,
    /// How long to run, in seconds (the last round finishes).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of every random choice (a failure names it, so it can be replayed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as one JSON document.
    #[arg(long)]
    json: bool,
    /// How the simulator runs kernels (native, isa, both); default: PM4RT_SIM_EXEC, else
    /// native.
    #[arg(long, value_parser = super::target::parse_sim_exec, value_name = "MODE")]
    sim_exec: Option<pm4rt_sim::isa::ExecMode>,
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if a.emulate.as_deref() == Some("list") {
        for p in pm4rt::runtime::presets() {
            println!("{}  {}", p.name, p.description);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.sim_exec.is_some() {
        pm4rt_sim::isa::ExecMode::set_process_mode(a.sim_exec);
    }
    let opts =
        SoakOptions { preset: a.emulate, duration: Duration::from_secs(a.seconds), seed: a.seed };
    let r = soak::run(&opts)?;
    if a.json {
        let doc = serde_json::json!({
            "seed": a.seed,
            "seconds": a.seconds,
            "ok": r.ok(),
            "rounds": r.rounds,
            "steps": r.steps,
            "batches_checked": r.batches_checked,
            "raw_ibs_checked": r.raw_ibs_checked,
            "bad_ibs_refused": r.bad_ibs_refused,
            "ring_wraps": r.ring_wraps,
            "faults_injected": r.faults_injected,
            "typed_errors": r.typed_errors,
            "demotions": r.demotions,
            "leaks": r.leaks,
            "failures": r.failures,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("soak (seed {}): {r}", a.seed);
        for f in &r.failures {
            eprintln!("soak: {f}");
        }
    }
    Ok(if r.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
