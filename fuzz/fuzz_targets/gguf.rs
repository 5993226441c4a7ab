//! libFuzzer harness of the `gguf` target; the body and its contract are
//! `pm4rt::fuzz::gguf` (also run on stable by the main workspace's `tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pm4rt::fuzz::gguf::run(data));
