//! `pm4rt disasm`.

use std::path::PathBuf;
use std::process::ExitCode;

use pm4rt::{dwords, pm4, GfxTarget};

/// Arguments of `pm4rt disasm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File of little-endian dwords, or text with hex dwords (one or more per line, `#` comments).
    file: PathBuf,
    /// Target whose register fields to show (gfx1201 or gfx1100).
    #[arg(long, default_value = "gfx1201", value_parser = parse_gfx)]
    gfx: GfxTarget,
}

fn parse_gfx(s: &str) -> Result<GfxTarget, String> {
    match s {
        "gfx1201" => Ok(GfxTarget::Gfx1201),
        "gfx1100" => Ok(GfxTarget::Gfx1100),
        _ => Err(format!("unknown target {s:?} (expected gfx1201 or gfx1100)")),
    }
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(&a.file).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let stream = dwords::parse(&bytes).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let listing = pm4::disassemble(&stream, a.gfx);
    for (offset, text) in &listing.lines {
        println!("{offset:6}: {text}");
    }
    match listing.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!(
                "error: {}: malformed PM4 at dword {}: {}",
                a.file.display(),
                e.offset,
                e.kind
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
