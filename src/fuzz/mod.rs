//! Fuzz-target bodies: one function per target that takes arbitrary bytes and must never
//! panic, hang or allocate without bound on them.
//!
//! The libFuzzer harnesses in `fuzz/fuzz_targets/` (cargo-fuzz, nightly) call these functions,
//! and so does the stable test `tests/fuzz_corpus.rs`, which replays every committed corpus
//! and regression input: `cargo test --workspace` exercises every target without libFuzzer.
//!
//! Targets whose deep states raw bytes cannot reach ([`emu_ioctl`], [`engine`]) read their
//! input as a small program through [`input::Input`], which, like the `arbitrary` crate,
//! turns any byte string (including a truncated one) into a valid program: the main workspace
//! needs no fuzzing dependency, and a crashing input replays the same way in both runners.
//!
//! Contract of every `run` function: it returns normally for every input. A panic is a bug,
//! either in the code under test (a decoder that panics, an invariant that does not hold) or
//! in the target's invariant checks.

pub mod code_object;
pub mod emu_ioctl;
pub mod engine;
pub mod gguf;
pub mod input;
pub mod isa;
pub mod pm4_decode;
pub mod seeds;

/// A target body: runs one input, panics only on a bug.
pub type Body = fn(&[u8]);

/// The fuzz targets, by the names of their `fuzz/fuzz_targets/*.rs` files and corpus
/// directories, with their bodies.
pub const TARGETS: &[(&str, Body)] = &[
    ("pm4_decode", pm4_decode::run),
    ("engine", engine::run),
    ("code_object", code_object::run),
    ("gguf", gguf::run),
    ("emu_ioctl", emu_ioctl::run),
    ("isa", isa::run),
];
