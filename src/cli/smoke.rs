//! `pm4rt smoke`.

use std::process::ExitCode;
use std::time::Duration;

use pm4rt::smoke;

use super::target::TargetArgs;

/// Arguments of `pm4rt smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// Submissions to time.
    #[arg(long, default_value_t = 64)]
    iterations: u32,
    /// Per-fence timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if a.target.listed_presets() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut sel = match a.target.select() {
        Ok(sel) => sel,
        Err(e) => {
            eprintln!("smoke FAILED: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let report =
        smoke::run(sel.submitter.as_mut(), a.iterations, Duration::from_millis(a.timeout_ms))?;
    let info = &report.info;
    println!(
        "smoke OK: tier {}{} on {} ({}): {} submissions, latency median {:.1} us, max {:.1} us, ioctls per submission: {:.2} to submit + {:.2} to wait",
        info.tier,
        if info.emulated { " [emulated]" } else { "" },
        info.device,
        info.gfx,
        report.iterations,
        report.median.as_secs_f64() * 1e6,
        report.max.as_secs_f64() * 1e6,
        report.ioctls_per_submit,
        report.ioctls_per_wait,
    );
    Ok(ExitCode::SUCCESS)
}
