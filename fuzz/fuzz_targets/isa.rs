//! libFuzzer harness of the `isa` target; the body and its contract are `pm4rt::fuzz::isa`
//! (also run on stable by the main workspace's `tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pm4rt::fuzz::isa::run(data));
