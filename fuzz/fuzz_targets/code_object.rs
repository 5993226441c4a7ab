//! libFuzzer harness of the `code_object` target; the body and its contract are
//! `pm4rt::fuzz::code_object` (also run on stable by the main workspace's `tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pm4rt::fuzz::code_object::run(data));
