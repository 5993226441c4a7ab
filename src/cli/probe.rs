//! `pm4rt probe`.

use std::process::ExitCode;

use pm4rt::runtime::{candidates, probe_all};

use super::target::TargetArgs;

/// Arguments of `pm4rt probe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if a.target.listed_presets() {
        return Ok(ExitCode::SUCCESS);
    }
    let (machine, policy) = a.target.machine_and_policy()?;
    let t0 = std::time::Instant::now();
    let statuses = probe_all(&candidates(&machine, &policy), &policy.probe);
    let total = t0.elapsed();
    let selected = statuses.iter().find(|s| s.usable()).map(|s| s.tier);
    if a.json {
        let doc = serde_json::json!({
            "machine": a.target.emulate.as_deref().map_or("host".to_string(), |p| format!("emulated:{p}")),
            "selected": selected.map(|t| t.name()),
            "probe_ms": total.as_secs_f64() * 1e3,
            "tiers": statuses.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("{:<5} {:<44} {:<9} {:>9}  reason", "tier", "device", "status", "probe");
        for s in &statuses {
            let reason = s.rejection.as_ref().map_or(String::new(), |r| {
                let errno = r.errno.map_or(String::new(), |e| format!(" (errno {})", e.0));
                format!("{}: {}{errno}", r.step, r.message)
            });
            let device =
                if s.emulated { format!("{} [emulated]", s.device) } else { s.device.clone() };
            println!(
                "{:<5} {:<44} {:<9} {:>7.1}ms  {reason}",
                s.tier.name(),
                device,
                if s.usable() { "usable" } else { "rejected" },
                s.elapsed.as_secs_f64() * 1e3,
            );
        }
        let sel = selected.map_or("none".to_string(), |t| t.to_string());
        println!("selected: {sel} (total probe time {:.1} ms)", total.as_secs_f64() * 1e3);
    }
    Ok(if selected.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
