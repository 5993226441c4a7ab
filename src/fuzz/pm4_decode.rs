//! Target `pm4_decode`: the PM4 decoder and disassembler on arbitrary dwords.
//!
//! Input: byte 0 picks the target (bit 0: gfx1100, else gfx1201); the rest, little-endian,
//! is the dword stream (a trailing partial dword is dropped). Checked:
//! - [`decode`], [`decode_one`] at every offset and [`disassemble`] return (no panic), and a
//!   [`DecodeError`](pm4rt_core::pm4::DecodeError) names an offset inside the stream;
//! - [`disassemble`] lists exactly the packets [`decode`] returns, stopping at the same error;
//! - round trip (the codec's contract, `pm4rt_core::pm4` module docs): every decoded packet
//!   the encoder accepts re-encodes to dwords that decode to the same packet and length.

use pm4rt_core::pm4::{decode, decode_one, disassemble, format_packet, try_encode_packet};
use pm4rt_core::GfxTarget;

/// Runs the target on one input; panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let gfx = if sel & 1 != 0 { GfxTarget::Gfx1100 } else { GfxTarget::Gfx1201 };
    let dwords: Vec<u32> =
        rest.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();

    let decoded = decode(&dwords);
    let listing = disassemble(&dwords, gfx);
    match &decoded {
        Ok(pkts) => {
            assert!(listing.error.is_none(), "disassembly failed where decode succeeded");
            assert_eq!(listing.lines.len(), pkts.len(), "disassembly lists other packets");
        }
        Err(e) => {
            assert!(e.offset < dwords.len(), "error offset {} outside the stream", e.offset);
            assert_eq!(listing.error.as_ref(), Some(e), "disassembly stopped elsewhere");
        }
    }
    for (i, (off, line)) in listing.lines.iter().enumerate() {
        if let Ok(pkts) = &decoded {
            assert_eq!(pkts[i].0, *off, "packet {i} offsets differ");
        }
        assert!(!line.is_empty());
    }

    let mut off = 0;
    while off < dwords.len() {
        let Ok((p, len)) = decode_one(&dwords, off) else { break };
        assert!(len > 0 && off + len <= dwords.len(), "packet at {off} has length {len}");
        let _ = format_packet(&p, gfx);
        if let Ok(enc) = try_encode_packet(&p) {
            let again = decode_one(&enc, 0);
            assert_eq!(again.as_ref().map(|(q, _)| q), Ok(&p), "round trip of {p:?}");
            assert_eq!(again.map(|(_, n)| n), Ok(enc.len()), "re-encoded length of {p:?}");
        }
        off += len;
    }
    // Decoding from any offset (a header in the middle of a body) never panics either.
    for start in 0..dwords.len().min(64) {
        let _ = decode_one(&dwords, start);
    }
    let _ = decode_one(&dwords, dwords.len());
}
