//! `pm4rt launch`: run one kernel of any code object on the selected tier.
//!
//! `--grid` counts workgroups (as DISPATCH_DIRECT does); `--block` is the workgroup size
//! (default: the kernel's `reqd_work_group_size`). One `--arg` per explicit kernel argument,
//! in order: `u32:N`, `i32:N`, `u64:N`, `f32:X` (by value); `in:FILE` (a buffer uploaded from
//! FILE's bytes); `out:BYTES:FILE` (a zeroed buffer of BYTES bytes, written to FILE after the
//! run); `inout:FILE:OUTFILE` (uploaded from FILE, written to OUTFILE after the run).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pm4rt::session::{Arg, BufferHandle, Session};

use super::target::TargetArgs;

/// Arguments of `pm4rt launch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The code object (ELF, AMDGPU HSA code object v4/v5) for the device's target.
    code_object: PathBuf,
    /// The kernel's name.
    kernel: String,
    #[command(flatten)]
    target: TargetArgs,
    /// Workgroups in X[,Y[,Z]].
    #[arg(long, value_parser = parse_dims)]
    grid: [u32; 3],
    /// Workgroup size X[,Y[,Z]] (default: the kernel's reqd_work_group_size).
    #[arg(long, value_parser = parse_dims)]
    block: Option<[u32; 3]>,
    /// One explicit kernel argument (repeat, in order): u32:N, i32:N, u64:N, f32:X, in:FILE,
    /// out:BYTES:FILE, inout:FILE:OUTFILE.
    #[arg(long = "arg", value_parser = parse_arg_spec)]
    args: Vec<ArgSpec>,
    /// Timed submissions (each one IB); the median and minimum are printed.
    #[arg(long, default_value_t = 1)]
    iterations: u32,
    /// Per-submission timeout in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One parsed `--arg`.
#[derive(Debug, Clone, PartialEq)]
enum ArgSpec {
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    In(PathBuf),
    Out(usize, PathBuf),
    InOut(PathBuf, PathBuf),
}

/// Parse `X[,Y[,Z]]` (missing dimensions are 1; each must be at least 1).
fn parse_dims(s: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = s.split(',').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(format!("{s:?}: expected X[,Y[,Z]]"));
    }
    let mut d = [1u32; 3];
    for (i, p) in parts.iter().enumerate() {
        d[i] = p.trim().parse().map_err(|e| format!("{s:?}: {p:?}: {e}"))?;
        if d[i] == 0 {
            return Err(format!("{s:?}: dimension {i} is 0"));
        }
    }
    Ok(d)
}

fn parse_arg_spec(s: &str) -> Result<ArgSpec, String> {
    let (kind, rest) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected KIND:VALUE"))?;
    let num = |what: &str| format!("{s:?}: {rest:?} is not {what}");
    Ok(match kind {
        "u32" => ArgSpec::U32(rest.parse().map_err(|_| num("a u32"))?),
        "i32" => ArgSpec::I32(rest.parse().map_err(|_| num("an i32"))?),
        "u64" => ArgSpec::U64(rest.parse().map_err(|_| num("a u64"))?),
        "f32" => ArgSpec::F32(rest.parse().map_err(|_| num("an f32"))?),
        "in" => ArgSpec::In(rest.into()),
        "out" => {
            let (bytes, file) =
                rest.split_once(':').ok_or_else(|| format!("{s:?}: expected out:BYTES:FILE"))?;
            let n: usize = bytes.parse().map_err(|_| format!("{s:?}: {bytes:?} is not a size"))?;
            if n == 0 {
                return Err(format!("{s:?}: a buffer needs at least 1 byte"));
            }
            ArgSpec::Out(n, file.into())
        }
        "inout" => {
            let (i, o) = rest
                .split_once(':')
                .ok_or_else(|| format!("{s:?}: expected inout:FILE:OUTFILE"))?;
            ArgSpec::InOut(i.into(), o.into())
        }
        _ => {
            return Err(format!(
                "{s:?}: unknown kind {kind:?} (u32, i32, u64, f32, in, out, inout)"
            ))
        }
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if a.target.listed_presets() {
        return Ok(ExitCode::SUCCESS);
    }
    match launch(&a) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("launch FAILED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read(p: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn launch(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let code = read(&a.code_object)?;
    let sel = a.target.select()?;
    let mut s = Session::new(sel.submitter)?;
    let dev = s.info();
    let p = s.load_code_object(&code)?;
    let k = p.kernel(&a.kernel)?;

    let mut args = Vec::with_capacity(a.args.len());
    let mut outputs: Vec<(BufferHandle, PathBuf)> = Vec::new();
    let t0 = Instant::now();
    for spec in &a.args {
        args.push(match spec {
            ArgSpec::U32(v) => Arg::U32(*v),
            ArgSpec::I32(v) => Arg::I32(*v),
            ArgSpec::U64(v) => Arg::U64(*v),
            ArgSpec::F32(v) => Arg::F32(*v),
            ArgSpec::In(f) | ArgSpec::InOut(f, _) => {
                let bytes = read(f)?;
                if bytes.is_empty() {
                    return Err(format!(
                        "{}: empty file (a buffer needs at least 1 byte)",
                        f.display()
                    )
                    .into());
                }
                let h = s.alloc_buffer(bytes.len())?;
                s.write_buffer(h, 0, &bytes)?;
                if let ArgSpec::InOut(_, out) = spec {
                    outputs.push((h, out.clone()));
                }
                Arg::Buf(h)
            }
            ArgSpec::Out(n, f) => {
                let h = s.alloc_buffer(*n)?;
                outputs.push((h, f.clone()));
                Arg::Buf(h)
            }
        });
    }
    let upload = t0.elapsed();

    let timeout = Duration::from_millis(a.timeout_ms);
    let mut times = Vec::new();
    for _ in 0..a.iterations.max(1) {
        let t = Instant::now();
        let mut b = s.batch();
        b.launch(&k, a.grid, a.block, &args)?;
        b.submit_and_wait(timeout)?;
        times.push(t.elapsed());
    }
    times.sort();
    let mut written = Vec::new();
    for (h, path) in &outputs {
        let bytes = s.read_buffer(*h)?;
        std::fs::write(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push((path.display().to_string(), bytes.len()));
    }
    let block = a.block.or(k.kernel().metadata.reqd_workgroup_size).unwrap_or([0; 3]);
    if a.json {
        let doc = serde_json::json!({
            "kernel": k.name(),
            "tier": dev.tier.to_string(),
            "emulated": dev.emulated,
            "device": dev.device,
            "gfx": dev.gfx.to_string(),
            "grid": a.grid,
            "block": block,
            "iterations": times.len(),
            "upload_ms": ms(upload),
            "median_ms": ms(times[times.len() / 2]),
            "min_ms": ms(times[0]),
            "outputs": written.iter().map(|(p, n)| serde_json::json!({"file": p, "bytes": n})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "launch: {} grid {:?} x block {:?} on tier {}{} ({}, {})",
        k.name(),
        a.grid,
        block,
        dev.tier,
        if dev.emulated { " [emulated]" } else { "" },
        dev.device,
        dev.gfx
    );
    for (p, n) in &written {
        println!("output: {p} ({n} bytes)");
    }
    println!(
        "time: upload {:.3} ms, launch median {:.3} ms, min {:.3} ms over {} submission(s)",
        ms(upload),
        ms(times[times.len() / 2]),
        ms(times[0]),
        times.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_and_arg_specs_parse_or_say_why() {
        assert_eq!(parse_dims("4"), Ok([4, 1, 1]));
        assert_eq!(parse_dims("4,2,3"), Ok([4, 2, 3]));
        assert!(parse_dims("4,0").unwrap_err().contains("dimension 1 is 0"));
        assert!(parse_dims("1,2,3,4").is_err());
        assert_eq!(parse_arg_spec("u32:7"), Ok(ArgSpec::U32(7)));
        assert_eq!(parse_arg_spec("i32:-7"), Ok(ArgSpec::I32(-7)));
        assert_eq!(parse_arg_spec("f32:2.5"), Ok(ArgSpec::F32(2.5)));
        assert_eq!(parse_arg_spec("out:16:y.bin"), Ok(ArgSpec::Out(16, "y.bin".into())));
        assert_eq!(parse_arg_spec("inout:a:b"), Ok(ArgSpec::InOut("a".into(), "b".into())));
        assert!(parse_arg_spec("u32:x").unwrap_err().contains("not a u32"));
        assert!(parse_arg_spec("out:0:y").is_err());
        assert!(parse_arg_spec("ptr:1").unwrap_err().contains("unknown kind"));
    }
}
