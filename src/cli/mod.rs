//! Command-line parsing and dispatch to one module per subcommand.

mod compare;
mod disasm;
mod inspect;
mod launch;
mod matvec;
mod probe;
mod smoke;
mod soak;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// pm4rt: drive AMD GPUs directly with PM4 (cs, kfd, umq tiers) or the simulator.
#[derive(Debug, Parser)]
#[command(name = "pm4rt", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The same workload on every usable tier: agreement, latency and cost side by side.
    Compare(compare::Args),
    /// Which tiers work on this machine and, for each that does not, why.
    Probe(probe::Args),
    /// Allocate, map, submit a small IB (WRITE_DATA, COPY_DATA, RELEASE_MEM), verify, time it.
    Smoke(smoke::Args),
    /// Random work, raw packets and injected faults on every tier of the emulated device,
    /// checked after every step: results right or errors typed, demotions downwards, no leak.
    Soak(soak::Args),
    /// Decode a PM4 stream (binary little-endian dwords, or text hex dwords) and print it.
    Disasm(disasm::Args),
    /// y = W x for a GGUF tensor (F32, F16, BF16, Q4_0/1, Q5_0/1, Q8_0, Q4_K, Q5_K, Q6_K) on the
    /// selected tier: argmax, checksum, time.
    Matvec(matvec::Args),
    /// Run one kernel of any code object: grid in workgroups, --arg per explicit argument.
    Launch(launch::Args),
    /// A code object's kernels: arguments, hidden arguments, registers, LDS, scratch, and
    /// whether pm4rt can launch each.
    Inspect(inspect::Args),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Compare(a) => compare::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Smoke(a) => smoke::run(a),
        Command::Soak(a) => soak::run(a),
        Command::Disasm(a) => disasm::run(a),
        Command::Matvec(a) => matvec::run(a),
        Command::Launch(a) => launch::run(a),
        Command::Inspect(a) => inspect::run(a),
    }
}
