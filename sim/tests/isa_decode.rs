//! Decoder edge cases: literals, sizes and typed errors. The encodings and their expected
//! text come from llvm-objdump-19's disassembly of the committed code objects
//! (`fixtures/isa/*.dis`), not from the decoder.

use pm4rt_sim::isa::{decode_all, text, DecodeError, Family, Target};

fn bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn a_literal_belongs_to_its_instruction() {
    // gfx1201 fixture: `v_xor_b32_e32 v4, 0x80000000, v1` (3A0802FF 80000000), then
    // `s_sendmsg sendmsg(MSG_DEALLOC_VGPRS)` (BFB60003).
    let insts =
        decode_all(Target::Gfx12, &bytes(&[0x3A08_02FF, 0x8000_0000, 0xBFB6_0003])).unwrap();
    assert_eq!(insts.len(), 2);
    assert_eq!(insts[0].family, Family::Vop2);
    assert_eq!((insts[0].len, insts[0].literal), (2, Some(0x8000_0000)));
    assert_eq!(text::format(Target::Gfx12, &insts[0]), "v_xor_b32_e32 v4, 0x80000000, v1");
    assert_eq!(insts[1].offset, 8);
    assert_eq!(text::format(Target::Gfx12, &insts[1]), "s_sendmsg sendmsg(MSG_DEALLOC_VGPRS)");
}

#[test]
fn three_dword_global_load_with_negative_offset() {
    // gfx1201 fixture: EE05C07C 00000007 FFFFF002.
    let insts =
        decode_all(Target::Gfx12, &bytes(&[0xEE05_C07C, 0x0000_0007, 0xFFFF_F002])).unwrap();
    assert_eq!((insts.len(), insts[0].len, insts[0].family), (1, 3, Family::Global));
    assert_eq!(
        text::format(Target::Gfx12, &insts[0]),
        "global_load_b128 v[7:10], v[2:3], off offset:-16"
    );
}

#[test]
fn dual_issue_halves() {
    // gfx1100 fixture: C8201F2C 0B0C18C8.
    let insts = decode_all(Target::Gfx11, &bytes(&[0xC820_1F2C, 0x0B0C_18C8])).unwrap();
    assert_eq!(insts[0].family, Family::Vopd);
    assert_eq!(
        text::format(Target::Gfx11, &insts[0]),
        "v_dual_fmac_f32 v11, v44, v15 :: v_dual_add_nc_u32 v12, -8, v12"
    );
}

#[test]
fn unknown_encoding_names_offset_and_dwords() {
    // s_nop 0, then a dword whose family bits [31:26] = 0b111111 no encoding uses.
    let err =
        decode_all(Target::Gfx12, &bytes(&[0xBF80_0000, 0xFC00_0000, 0x1234_5678])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Unknown {
            target: Target::Gfx12,
            offset: 4,
            dwords: vec![0xFC00_0000, 0x1234_5678]
        }
    );
    assert!(err.to_string().contains("0x4"), "{err}");
    assert!(err.to_string().contains("fc000000"), "{err}");
}

#[test]
fn truncated_instructions_are_errors() {
    // A three-dword global load cut after two dwords.
    assert_eq!(
        decode_all(Target::Gfx12, &bytes(&[0xEE05_C07C, 0x0000_0007])).unwrap_err(),
        DecodeError::Truncated { offset: 0, need: 12, have: 8 }
    );
    // A VOP2 whose literal is missing.
    assert_eq!(
        decode_all(Target::Gfx12, &bytes(&[0x3A08_02FF])).unwrap_err(),
        DecodeError::Truncated { offset: 0, need: 8, have: 4 }
    );
    assert_eq!(decode_all(Target::Gfx11, &[0; 5]).unwrap_err(), DecodeError::Unaligned(5));
}

#[test]
fn programs_are_decoded_once_per_code_and_find_branch_targets() {
    use pm4rt_sim::isa::ProgramCache;
    use std::sync::Arc;
    // v_xor_b32_e32 with a literal (8 bytes), then s_sendmsg at byte 8.
    let code = bytes(&[0x3A08_02FF, 0x8000_0000, 0xBFB6_0003]);
    let cache = ProgramCache::new();
    let a = cache.get(Target::Gfx12, &code).unwrap();
    let b = cache.get(Target::Gfx12, &code).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(cache.len(), 1);
    cache.get(Target::Gfx11, &code).unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(a.index_of(8), Some(1));
    assert_eq!(a.index_of(4), None, "byte 4 is the literal, not an instruction");
}
