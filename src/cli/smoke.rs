//! `pm4rt smoke`.

use std::process::ExitCode;
use std::time::Duration;

use pm4rt::probe::{probe_one, ProbeOptions};
use pm4rt::tiers::{candidates, DEFAULT_RENDER_NODE};
use pm4rt::{smoke, Tier};

/// Arguments of `pm4rt smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tier to run on (umq, kfd, cs, sim); default: the first usable one.
    #[arg(long, env = "PM4RT_TIER", value_parser = parse_tier)]
    tier: Option<Tier>,
    /// Submissions to time.
    #[arg(long, default_value_t = 64)]
    iterations: u32,
    /// Per-fence timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// DRM render node.
    #[arg(long, env = "PM4RT_RENDER_NODE", default_value = DEFAULT_RENDER_NODE)]
    render_node: String,
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    Tier::from_name(s).ok_or_else(|| format!("unknown tier {s:?} (expected umq, kfd, cs or sim)"))
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let opts = ProbeOptions::default();
    let mut reasons = Vec::new();
    for c in candidates(&a.render_node) {
        if a.tier.is_some_and(|t| t != c.tier) {
            continue;
        }
        let (status, sub) = probe_one(c, &opts);
        let Some(mut sub) = sub else {
            let r = status.rejection.expect("a rejected status carries its reason");
            reasons.push(format!("{}: {}: {}", status.tier, r.step, r.message));
            continue;
        };
        let report = smoke::run(sub.as_mut(), a.iterations, Duration::from_millis(a.timeout_ms))?;
        let info = &report.info;
        println!(
            "smoke OK: tier {}{} device {} ({}), {} submissions, latency median {:.1} us, max {:.1} us, {:.2} ioctls per submission",
            info.tier,
            if info.emulated { " (emulated)" } else { "" },
            info.device,
            info.gfx,
            report.iterations,
            report.median.as_secs_f64() * 1e6,
            report.max.as_secs_f64() * 1e6,
            report.ioctls_per_submission,
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("smoke FAILED: no tier could run it");
    for r in reasons {
        eprintln!("  {r}");
    }
    Ok(ExitCode::FAILURE)
}
