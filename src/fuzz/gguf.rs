//! Target `gguf`: the GGUF reader ([`crate::gguf::Gguf::parse`]) on arbitrary bytes.
//!
//! Checked: parsing returns (no panic, no allocation beyond what the file's bytes justify);
//! on success every tensor of a known size lies inside the file and [`Gguf::matrix`] /
//! [`Gguf::info`] / [`Gguf::meta`] return for every tensor and key.

use crate::gguf::Gguf;

/// Runs the target on one input; panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let Ok(g) = Gguf::parse(data) else { return };
    assert!(g.alignment.is_power_of_two(), "alignment {}", g.alignment);
    assert!(g.data_offset.is_multiple_of(g.alignment));
    for t in &g.tensors {
        let start = g.data_offset.checked_add(t.offset).expect("checked by parse");
        let end = start.checked_add(t.size.unwrap_or(0)).expect("checked by parse");
        assert!(end <= data.len() as u64, "tensor {} [{start}, {end}) outside", t.name);
        assert!(g.info(&t.name).is_ok());
        if let Ok(m) = g.matrix(&t.name) {
            assert_eq!(Some(m.bytes.len() as u64), t.size, "tensor {} bytes", t.name);
        }
    }
    for kv in &g.metadata {
        assert!(g.meta(&kv.key).is_some());
    }
}
