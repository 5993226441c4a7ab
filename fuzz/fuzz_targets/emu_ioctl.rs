//! libFuzzer harness of the `emu_ioctl` target; the body and its contract are
//! `pm4rt::fuzz::emu_ioctl` (also run on stable by the main workspace's `tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pm4rt::fuzz::emu_ioctl::run(data));
