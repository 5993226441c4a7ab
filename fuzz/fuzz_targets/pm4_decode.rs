//! libFuzzer harness of the `pm4_decode` target; the body and its contract are
//! `pm4rt::fuzz::pm4_decode` (also run on stable by the main workspace's `tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pm4rt::fuzz::pm4_decode::run(data));
