//! `pm4rt probe`.

use std::process::ExitCode;

use pm4rt::probe::{probe_one, ProbeOptions};
use pm4rt::tiers::{candidates, DEFAULT_RENDER_NODE};

/// Arguments of `pm4rt probe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// DRM render node to probe.
    #[arg(long, env = "PM4RT_RENDER_NODE", default_value = DEFAULT_RENDER_NODE)]
    render_node: String,
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let opts = ProbeOptions::default();
    let statuses: Vec<_> =
        candidates(&a.render_node).into_iter().map(|c| probe_one(c, &opts).0).collect();
    let selected = statuses.iter().find(|s| s.usable()).map(|s| s.tier);
    if a.json {
        let doc = serde_json::json!({
            "selected": selected.map(|t| t.name()),
            "tiers": statuses.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("{:<5} {:<22} {:<9} {:>9}  reason", "tier", "device", "status", "probe");
        for s in &statuses {
            let reason = s.rejection.as_ref().map_or(String::new(), |r| {
                let errno = r.errno.map_or(String::new(), |e| format!(" (errno {e})"));
                format!("{}: {}{errno}", r.step, r.message)
            });
            println!(
                "{:<5} {:<22} {:<9} {:>7.1}ms  {reason}",
                s.tier.name(),
                s.device,
                if s.usable() { "usable" } else { "rejected" },
                s.elapsed.as_secs_f64() * 1e3,
            );
        }
        match selected {
            Some(t) => println!("selected: {t}"),
            None => println!("selected: none"),
        }
    }
    Ok(if selected.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
