//! Unit tests for the PM4 codec: golden dwords, round trips, rejections, builder limits.

use super::*;

#[test]
fn header_only_nop_roundtrip() {
    // TYPE 3 (0xC000_0000) | COUNT 0x3FFF (0x3FFF_0000) | NOP 0x10 (0x1000) | SHADER_TYPE (0x2)
    let p = Packet::Nop { payload: vec![] };
    assert_eq!(encode_packet(&p), vec![0xFFFF_1002]);
    assert_eq!(decode(&[0xFFFF_1002]).unwrap(), vec![(0, p)]);
}
