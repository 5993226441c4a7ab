//! `pm4rt matvec`: one matrix-vector product (or the fused LM-head argmax) of a GGUF tensor on
//! the selected tier.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pm4rt::gguf::{ggml_type_name, Gguf, GgufError};
use pm4rt::rng::SplitMix64;
use pm4rt::session::{Session, SessionError, WeightFormat};

use super::target::TargetArgs;

/// Arguments of `pm4rt matvec`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Default input: x[i] = 2 * (r_i >> 40) / 2^24 - 1, uniform in [-1, 1), where r_0, r_1, ... are \
successive outputs of SplitMix64 seeded with --seed (default 42): state += 0x9E3779B97F4A7C15; \
z = state; z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; \
r = z ^ (z >> 31).

Checksum: sum(y) accumulated in f64 in index order, and FNV-1a 64 (offset basis \
0xcbf29ce484222325, prime 0x100000001b3) of y's bytes as little-endian f32.

Files given with --input / --output are raw little-endian f32 (cols / rows values).")]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// GGUF file holding the tensor.
    #[arg(long)]
    gguf: PathBuf,
    /// Name of a 2-D tensor in the file (rows x cols, dims [cols, rows]) of a type in
    /// `pm4rt::gguf::SUPPORTED_TYPES` (F32, Q4_0, Q8_0, F16, BF16, Q4_1, Q5_0, Q5_1, Q4_K,
    /// Q5_K, Q6_K).
    #[arg(long)]
    tensor: String,
    /// Input vector: raw little-endian f32, exactly `cols` values (default: seeded random).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Seed of the default input (see below).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Write y = W x here as raw little-endian f32 (`rows` values).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Only the argmax, with the fused LM-head kernel (y is not materialised, so no
    /// --output and no checksum).
    #[arg(long, conflicts_with = "output")]
    argmax: bool,
    /// Timed submissions (each one IB); the median and minimum are printed.
    #[arg(long, default_value_t = 1)]
    iterations: u32,
    /// Per-submission timeout in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
}

/// Why `matvec` could not run.
#[derive(Debug, thiserror::Error)]
enum MatvecError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Gguf { path: PathBuf, source: GgufError },
    #[error("tensor {name} has {dims} dimension(s) {shape:?}; matvec needs a 2-D matrix")]
    NotMatrix { name: String, dims: usize, shape: Vec<u64> },
    #[error("{path}: {got} bytes, expected {expected} ({cols} little-endian f32 values)")]
    InputLength { path: PathBuf, got: usize, expected: usize, cols: usize },
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// FNV-1a 64 of `bytes`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn read(path: &PathBuf) -> Result<Vec<u8>, MatvecError> {
    std::fs::read(path).map_err(|source| MatvecError::Io { path: path.clone(), source })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if a.target.listed_presets() {
        return Ok(ExitCode::SUCCESS);
    }
    match matvec(&a) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("matvec FAILED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn matvec(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let file = read(&a.gguf)?;
    let gerr = |source| MatvecError::Gguf { path: a.gguf.clone(), source };
    let g = Gguf::parse(&file).map_err(gerr)?;
    let info = g.info(&a.tensor).map_err(gerr)?;
    if info.dims.len() != 2 {
        return Err(MatvecError::NotMatrix {
            name: a.tensor.clone(),
            dims: info.dims.len(),
            shape: info.dims.clone(),
        }
        .into());
    }
    let type_name = ggml_type_name(info.ggml_type);
    let m = g.matrix(&a.tensor).map_err(gerr)?;
    let format = WeightFormat::from_weight_type(m.ty);
    let (x, input_desc) = match &a.input {
        Some(p) => {
            let b = read(p)?;
            if b.len() != 4 * m.cols {
                return Err(MatvecError::InputLength {
                    path: p.clone(),
                    got: b.len(),
                    expected: 4 * m.cols,
                    cols: m.cols,
                }
                .into());
            }
            let x = b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            (x.collect::<Vec<f32>>(), p.display().to_string())
        }
        None => (SplitMix64::f32s(a.seed, m.cols), format!("SplitMix64 seed {}", a.seed)),
    };

    let sel = a.target.select()?;
    let mut s = Session::new(sel.submitter)?;
    let dev = s.info();
    println!(
        "matvec: {} {type_name} {}x{} (rows x cols, {} bytes) on tier {}{} ({}, {})",
        a.tensor,
        m.rows,
        m.cols,
        m.bytes.len(),
        dev.tier,
        if dev.emulated { " [emulated]" } else { "" },
        dev.device,
        dev.gfx
    );
    println!("input: {input_desc}");

    let t0 = Instant::now();
    let w = s.upload_weights(format, m.rows, m.cols, m.bytes)?;
    let xv = s.alloc_vec(m.cols)?;
    s.write_vec(xv, &x)?;
    let y = if a.argmax { None } else { Some(s.alloc_vec(m.rows)?) };
    let upload = t0.elapsed();

    let timeout = Duration::from_millis(a.timeout_ms);
    let before = s.info().counters.submissions;
    let mut times = Vec::new();
    let mut best = (0, f32::NAN);
    for _ in 0..a.iterations.max(1) {
        let t = Instant::now();
        let mut b = s.batch();
        let slot = match y {
            Some(y) => {
                b.dmmv(w, xv, y)?;
                b.argmax(y)?
            }
            None => b.dmmv_argmax(w, xv)?,
        };
        let r = b.submit_and_wait(timeout)?;
        times.push(t.elapsed());
        best = r.argmax(slot);
    }
    let submissions = s.info().counters.submissions - before;
    times.sort();
    let kernels = if a.argmax { "fused dmmv_argmax" } else { "dmmv + argmax" };
    println!("argmax: index {} value {:e} ({kernels})", best.0, best.1);
    if let Some(y) = y {
        let yv = s.read_vec(y)?;
        let bytes = f32_bytes(&yv);
        let sum: f64 = yv.iter().map(|v| f64::from(*v)).sum();
        println!("checksum: sum(y) = {sum:e} (f64), fnv1a64(y) = {:#018x}", fnv1a64(&bytes));
        if let Some(p) = &a.output {
            std::fs::write(p, &bytes)
                .map_err(|source| MatvecError::Io { path: p.clone(), source })?;
            println!("output: {} ({} f32)", p.display(), yv.len());
        }
    } else {
        println!("checksum: n/a (--argmax does not materialise y)");
    }
    println!(
        "time: upload {:.3} ms, compute median {:.3} ms, min {:.3} ms over {} submission(s)",
        ms(upload),
        ms(times[times.len() / 2]),
        ms(times[0]),
        submissions
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_values() {
        // FNV-1a 64 test vectors (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
