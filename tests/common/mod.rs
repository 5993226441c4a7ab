//! Readers of tests/fixtures/ shared by the fixture-driven tests.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::PathBuf;

/// The bytes of `tests/fixtures/<name>` (panics naming the file when it cannot be read).
pub fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A fixture of raw little-endian f32 values.
pub fn f32s(name: &str) -> Vec<f32> {
    fixture(name).chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The lines of `manifest.txt` whose first word is `kind`, split into words.
pub fn manifest(kind: &str) -> Vec<Vec<String>> {
    String::from_utf8(fixture("manifest.txt"))
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(kind))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}
