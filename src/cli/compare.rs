//! `pm4rt compare`: the same work on every usable tier, side by side.

use std::path::PathBuf;
use std::process::ExitCode;

use pm4rt::compare::{self, TierRow, Workload, DEFAULT_SHAPE};
use pm4rt::gguf::Gguf;
use pm4rt::probe::Executor;
use pm4rt::rng::SplitMix64;
use pm4rt::runtime::candidates;
use pm4rt::session::WeightFormat;
use pm4rt_sim::isa::ExecMode;

use super::target::TargetArgs;

/// Arguments of `pm4rt compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// GGUF file holding the weight matrix to use instead of the synthetic one.
    #[arg(long, requires = "tensor")]
    gguf: Option<PathBuf>,
    /// Tensor name inside --gguf (a 2-D tensor of a type in `pm4rt::gguf::SUPPORTED_TYPES`).
    #[arg(long, requires = "gguf")]
    tensor: Option<String>,
    /// Rows of the synthetic Q4_0 matrix (the default is a 7B model's vocabulary).
    #[arg(long, default_value_t = DEFAULT_SHAPE.0)]
    rows: usize,
    /// Columns of the synthetic matrix (a multiple of 32; the default is a 7B model's hidden
    /// size).
    #[arg(long, default_value_t = DEFAULT_SHAPE.1)]
    cols: usize,
    /// Seed of the synthetic data and of the input vector.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Repetitions per operation (at least 1; default 20, or 2 when any tier interprets
    /// machine code, which is slower by orders of magnitude).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    iters: Option<u32>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

fn workload(a: &Args) -> Result<Workload, Box<dyn std::error::Error>> {
    let (Some(path), Some(name)) = (&a.gguf, &a.tensor) else {
        return Workload::synthetic_q4_0(a.rows, a.cols, a.seed)
            .map_err(|e| format!("--rows {} --cols {}: {e}", a.rows, a.cols).into());
    };
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let g = Gguf::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = g.matrix(name).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Workload::with_inputs(
        format!("{} {} {}x{}", path.display(), name, m.rows, m.cols),
        WeightFormat::from_weight_type(m.ty),
        (m.rows, m.cols),
        m.bytes.to_vec(),
        &mut SplitMix64::new(a.seed),
    ))
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if a.target.listed_presets() {
        return Ok(ExitCode::SUCCESS);
    }
    let w = workload(&a)?;
    // Emulated tiers run the kernels' machine code (the reference row stays native), so their
    // agreement checks the code objects a GPU would run.
    let (machine, policy) = a.target.machine_and_policy_emulating(Some(ExecMode::Isa))?;
    let candidates = candidates(&machine, &policy);
    let interprets = candidates.iter().any(|c| c.executor == Executor::Simulated(ExecMode::Isa));
    let iters = a.iters.unwrap_or(if interprets { 2 } else { 20 });
    let rows = compare::run(&candidates, &w, iters, &policy.probe)?;
    let ran = rows.iter().filter(|r| r.error.is_none() && !r.ops.is_empty()).count();
    let mut failures = compare::failures(&rows);
    if ran == 0 {
        failures.push("no tier ran the workload".into());
    }
    if a.json {
        let doc = serde_json::json!({
            "workload": w.label,
            "iters": iters,
            "machine": a.target.emulate.as_deref().map_or("host".to_string(), |p| format!("emulated:{p}")),
            "ok": failures.is_empty(),
            "failures": failures,
            "tiers": rows.iter().map(TierRow::to_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_table(&w, iters, &rows);
    }
    for f in &failures {
        eprintln!("compare: {f}");
    }
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_table(w: &Workload, iters: u32, rows: &[TierRow]) {
    println!(
        "workload: {}, {} iterations per op; agreement: worst error / kernel error bound vs the simulator",
        w.label, iters
    );
    let names: Vec<&str> = rows
        .iter()
        .find(|r| !r.ops.is_empty())
        .map_or(Vec::new(), |r| r.ops.iter().map(|o| o.name).collect());
    print!("{:<5} {:<10} {:<6} {:<24}", "tier", "device", "exec", "agreement");
    for n in &names {
        print!(" {:>24}", format!("{n} med/p99 us"));
    }
    println!(" {:>9} {:>8}", "subm/op", "ioctl/op");
    for r in rows {
        let s = &r.status;
        let device = if s.emulated {
            "emulated"
        } else if s.tier == pm4rt::Tier::Sim {
            "software"
        } else {
            "hardware"
        };
        if let Some(rej) = &s.rejection {
            println!(
                "{:<5} {:<10} {:<6} unusable: {}: {}",
                s.tier.name(),
                device,
                "-",
                rej.step,
                rej.message
            );
            continue;
        }
        if let Some(e) = &r.error {
            println!("{:<5} {:<10} {:<6} failed: {e}", s.tier.name(), device, r.executor.name());
            continue;
        }
        let agreement = r.agreement.map_or("reference".to_string(), |a| {
            if a.ok() {
                format!("ok {:.3}x bound, {}", a.worst, a.argmax.name())
            } else if a.nonfinite > 0 {
                format!("FAIL {} non-finite", a.nonfinite)
            } else if a.worst > 1.0 {
                format!("FAIL {:.3}x bound", a.worst)
            } else {
                format!("FAIL argmax {}/{}", a.argmax.name(), a.fused.name())
            }
        });
        print!("{:<5} {:<10} {:<6} {:<24}", s.tier.name(), device, r.executor.name(), agreement);
        for o in &r.ops {
            print!(
                " {:>24}",
                format!("{:.1}/{:.1}", o.median.as_secs_f64() * 1e6, o.p99.as_secs_f64() * 1e6)
            );
        }
        let (subm, ioctl) =
            r.ops.iter().fold((0.0, 0.0), |(a, b), o| (a + o.submissions, b + o.ioctls));
        let n = r.ops.len().max(1) as f64;
        println!(" {:>9.2} {:>8.2}", subm / n, ioctl / n);
    }
}
