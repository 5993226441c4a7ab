//! The code-object loader against the committed kernel library (kernels/gfx*/pm4rt.hsaco).
//!
//! Expected numbers are literals recorded from LLVM's own tools on those files, never from
//! the loader:
//! - `llvm-readelf-19 -h` (e_flags), `-s` (symbol values and sizes), `-l` (PT_LOAD layout),
//!   `--notes` (metadata: kernarg_segment_size, group_segment_fixed_size, vgpr/sgpr counts);
//! - `llvm-objdump-19 -s -j .rodata` (descriptor bytes: rsrc1/rsrc2/kernel_code_properties);
//! - `llvm-objdump-19 -d --mcpu=...` (first instruction encodings).
//!
//! If `kernels/build.sh` ever produces different code objects, re-record these literals.

use pm4rt_core::code_object::{
    CodeObject, CodeObjectError, DeclaredArg, DeclaredKind, KernelDescriptor, ENTRY_ALIGN,
};
use pm4rt_core::GfxTarget;

static GFX1201: &[u8] = include_bytes!("../../kernels/gfx1201/pm4rt.hsaco");
static GFX1100: &[u8] = include_bytes!("../../kernels/gfx1100/pm4rt.hsaco");

fn both() -> [(GfxTarget, &'static [u8]); 2] {
    [(GfxTarget::Gfx1201, GFX1201), (GfxTarget::Gfx1100, GFX1100)]
}

const fn p(name: &'static str, offset: u32) -> DeclaredArg<'static> {
    DeclaredArg { name, kind: DeclaredKind::Pointer, offset, size: 8 }
}
const fn v(name: &'static str, offset: u32) -> DeclaredArg<'static> {
    DeclaredArg { name, kind: DeclaredKind::Value, offset, size: 4 }
}

/// kernels/README.md's signatures, laid out with the C rules.
fn readme_kernels() -> Vec<(&'static str, Vec<DeclaredArg<'static>>)> {
    let dmmv = || vec![p("w", 0), p("x", 8), p("y", 16), v("rows", 24), v("cols", 28)];
    let fused = || vec![p("w", 0), p("x", 8), p("out", 16), v("rows", 24), v("cols", 28)];
    vec![
        ("dmmv_f32", dmmv()),
        ("dmmv_q4_0", dmmv()),
        ("dmmv_q8_0", dmmv()),
        ("dmmv_f32_argmax", fused()),
        ("dmmv_q4_0_argmax", fused()),
        ("dmmv_q8_0_argmax", fused()),
        ("dmmv_f16", dmmv()),
        ("dmmv_bf16", dmmv()),
        ("dmmv_q4_1", dmmv()),
        ("dmmv_q5_0", dmmv()),
        ("dmmv_q5_1", dmmv()),
        ("dmmv_q4_k", dmmv()),
        ("dmmv_q5_k", dmmv()),
        ("dmmv_q6_k", dmmv()),
        ("dmmv_f16_argmax", fused()),
        ("dmmv_bf16_argmax", fused()),
        ("dmmv_q4_1_argmax", fused()),
        ("dmmv_q5_0_argmax", fused()),
        ("dmmv_q5_1_argmax", fused()),
        ("dmmv_q4_k_argmax", fused()),
        ("dmmv_q5_k_argmax", fused()),
        ("dmmv_q6_k_argmax", fused()),
        ("argmax_f32", vec![p("x", 0), v("n", 8), p("out", 16)]),
        ("rms_norm_f32", vec![p("x", 0), p("weight", 8), p("y", 16), v("n", 24), v("eps", 28)]),
        ("copy_u32", vec![p("src", 0), p("dst", 8), v("n", 16)]),
    ]
}

#[test]
fn both_code_objects_hold_every_readme_kernel_with_its_signature() {
    for (target, bytes) in both() {
        let co = CodeObject::load(bytes, target).unwrap();
        assert_eq!(co.target(), target);
        assert_eq!(co.kernels().len(), 25, "{target}");
        for (name, sig) in readme_kernels() {
            let k = co.kernel(name).unwrap();
            assert!(k.descriptor.is_wave32(), "{target} {name}: not wave32");
            assert_eq!(k.metadata.wavefront_size, 32);
            assert_eq!(k.metadata.reqd_workgroup_size, Some([256, 1, 1]), "{target} {name}");
            k.check_signature(&sig).unwrap();
            assert_eq!(k.entry_offset % ENTRY_ALIGN, 0, "{target} {name}");
            // Only the kernarg pointer as user SGPRs: kernel_code_properties = bit 3 | bit 10.
            assert_eq!(k.descriptor.kernel_code_properties, 0x0408, "{target} {name}");
            assert_eq!(k.descriptor.user_sgprs_from_properties(), 2);
            assert_eq!(k.descriptor.private_segment_fixed_size, 0, "{target} {name}: scratch");
            k.descriptor.check(target).unwrap();
            assert!(co.is_executable(k.entry_offset, k.code_size));
            assert_eq!(co.code_bytes(k).len() as u64, k.code_size);
        }
    }
}

#[test]
fn header_and_image_match_llvm_readelf() {
    // llvm-readelf-19 -h: "Flags: 0x4E, gfx1201" / "Flags: 0x41, gfx1100".
    let a = CodeObject::parse(GFX1201).unwrap();
    let b = CodeObject::parse(GFX1100).unwrap();
    assert_eq!((a.e_flags(), a.target()), (0x4e, GfxTarget::Gfx1201));
    assert_eq!((b.e_flags(), b.target()), (0x41, GfxTarget::Gfx1100));
    // llvm-readelf-19 --notes: amdhsa.target.
    assert_eq!(a.target_id(), "amdgcn-amd-amdhsa--gfx1201");
    assert_eq!(b.target_id(), "amdgcn-amd-amdhsa--gfx1100");
    // llvm-readelf-19 -l (gfx1201): last PT_LOAD at vaddr 0x11380 with memsz 0xc80; the code
    // PT_LOAD at vaddr 0x7200 comes from file offset 0x6200.
    assert_eq!(a.image().len(), 0x11380 + 0xc80);
    assert_eq!(&a.image()[0x7200..0x7210], &GFX1201[0x6200..0x6210]);
    // The first PT_LOAD starts at file offset 0 (the ELF header is in the image).
    assert_eq!(&a.image()[..4], b"\x7fELF");
}

/// (target, kernel, .kd vaddr, entry vaddr, code size, kernarg_size, LDS bytes, rsrc1, rsrc2,
/// metadata vgpr_count)
type Row = (GfxTarget, &'static str, u64, u64, u64, u32, u32, u32, u32, u32);

#[test]
fn descriptors_match_llvm_objdump_and_readelf() {
    use GfxTarget::{Gfx1100, Gfx1201};
    // .kd/.entry/size: llvm-readelf-19 -s; kernarg/LDS/vgpr: llvm-readelf-19 --notes;
    // rsrc1/rsrc2: descriptor bytes (llvm-objdump-19 -s -j .rodata) at .kd + 48 / + 52.
    let rows: [Row; 8] = [
        (Gfx1201, "dmmv_f32", 0x5ac0, 0x7200, 368, 32, 0, 0x600f_0040, 0x84, 8),
        (Gfx1201, "dmmv_q4_0", 0x5b00, 0x7400, 1288, 32, 0, 0x600f_0045, 0x84, 48),
        (Gfx1201, "argmax_f32", 0x6040, 0xfa00, 652, 24, 64, 0x600f_0001, 0x84, 11),
        (Gfx1201, "rms_norm_f32", 0x6080, 0xfd00, 884, 32, 32, 0x600f_0041, 0x84, 11),
        (Gfx1201, "copy_u32", 0x60c0, 0x10100, 144, 20, 0, 0x600f_0000, 0x84, 4),
        (Gfx1100, "dmmv_f32", 0x5ac0, 0x7200, 412, 32, 0, 0x60af_0080, 0x9e, 8),
        (Gfx1100, "argmax_f32", 0x6040, 0xf400, 628, 24, 64, 0x60af_0081, 0x9e, 11),
        (Gfx1100, "copy_u32", 0x60c0, 0xfb00, 140, 20, 0, 0x60af_0080, 0x9e, 4),
    ];
    for (target, name, kd, entry, size, kernarg, lds, rsrc1, rsrc2, vgprs) in rows {
        let bytes = if target == Gfx1201 { GFX1201 } else { GFX1100 };
        let co = CodeObject::load(bytes, target).unwrap();
        let k = co.kernel(name).unwrap();
        let d = &k.descriptor;
        let what = format!("{target} {name}");
        assert_eq!(k.descriptor_offset, kd, "{what}");
        assert_eq!(k.entry_offset, entry, "{what}");
        assert_eq!(d.kernel_code_entry_byte_offset, (entry - kd) as i64, "{what}");
        assert_eq!(k.code_size, size, "{what}");
        assert_eq!(d.kernarg_size, kernarg, "{what}");
        assert_eq!(k.metadata.kernarg_segment_size, kernarg, "{what}");
        assert_eq!(d.group_segment_fixed_size, lds, "{what}");
        assert_eq!(d.compute_pgm_rsrc1, rsrc1, "{what}");
        assert_eq!(d.compute_pgm_rsrc2, rsrc2, "{what}");
        assert_eq!(d.compute_pgm_rsrc3, 0, "{what}");
        assert_eq!(k.metadata.vgpr_count, vgprs, "{what}");
        assert_eq!(k.entry_va(0x1_0000_0000), 0x1_0000_0000 + entry);
        assert_eq!(k.descriptor_va(0x1_0000_0000), 0x1_0000_0000 + kd);
    }
}

#[test]
fn user_sgprs_and_lds_follow_the_rsrc2_fields() {
    let a = CodeObject::parse(GFX1201).unwrap();
    let b = CodeObject::parse(GFX1100).unwrap();
    // gfx1201: RSRC2 0x84 = USER_SGPR 2 (bits 5:1) | TGID_X_EN (bit 7).
    let d = a.kernel("argmax_f32").unwrap().descriptor;
    assert_eq!(d.rsrc2_user_sgpr(), 2);
    assert_eq!(d.user_sgprs_from_properties(), 2);
    // HSA code objects leave RSRC2.LDS_SIZE 0; the launcher fills ceil(64 / 512) = 1 granule.
    assert_eq!(d.rsrc2_lds_granules(), 0);
    assert_eq!(d.lds_granules_needed(), 1);
    assert_eq!(d.dispatch_rsrc2(), 0x84 | (1 << 15));
    assert_eq!(a.kernel("copy_u32").unwrap().descriptor.dispatch_rsrc2(), 0x84);
    // gfx1100: RSRC2 0x9e = USER_SGPR 15 | TGID_X_EN: LLVM's UserSGPRInit16Bug padding to
    // 15 user + 1 system SGPR = 16, accepted only on gfx1100.
    let d = b.kernel("copy_u32").unwrap().descriptor;
    assert_eq!((d.rsrc2_user_sgpr(), d.rsrc2_system_sgprs()), (15, 1));
    assert!(d.check(GfxTarget::Gfx1100).is_ok());
    assert!(d.check(GfxTarget::Gfx1201).unwrap_err().contains("USER_SGPR is 15"));
}

fn descriptor_with(kcp: u16, rsrc2: u32, lds: u32) -> KernelDescriptor {
    let mut b = [0u8; 64];
    b[0..4].copy_from_slice(&lds.to_le_bytes());
    b[8..12].copy_from_slice(&8u32.to_le_bytes());
    b[52..56].copy_from_slice(&rsrc2.to_le_bytes());
    b[56..58].copy_from_slice(&kcp.to_le_bytes());
    KernelDescriptor::from_bytes(&b)
}

#[test]
fn descriptor_checker_rejects_inconsistencies() {
    let t = GfxTarget::Gfx1201;
    // dispatch ptr (2) + kernarg ptr (2) = 4 user SGPRs, RSRC2 says 2.
    let d = descriptor_with(0x040a, 2 << 1, 0);
    assert_eq!(d.user_sgprs_from_properties(), 4);
    assert!(d.check(t).unwrap_err().contains("dispatch ptr, kernarg segment ptr"));
    assert!(descriptor_with(0x040a, 4 << 1, 0).check(t).is_ok());
    // private segment buffer (4) + kernarg (2) + private segment size (1) = 7.
    assert_eq!(descriptor_with(0x0449, 0, 0).user_sgprs_from_properties(), 7);
    // LDS: a non-zero LDS_SIZE of 1 granule (512 bytes) cannot hold 513 bytes.
    let d = descriptor_with(0x0408, (2 << 1) | (1 << 15), 513);
    assert!(d.check(t).unwrap_err().contains("LDS_SIZE"));
    assert!(descriptor_with(0x0408, (2 << 1) | (2 << 15), 513).check(t).is_ok());
    // More LDS than 0x1ff granules can describe.
    assert!(descriptor_with(0x0408, 2 << 1, 0x1ff * 512 + 1).check(t).is_err());
    // A kernarg segment without the kernarg pointer.
    assert!(descriptor_with(0x0400, 0, 0).check(t).unwrap_err().contains("kernarg"));
}

#[test]
fn code_bytes_start_with_the_disassembled_instruction() {
    // llvm-objdump-19 -d: first instruction of each kernel (dwords, little endian in memory).
    let cases: [(GfxTarget, &str, [u32; 2]); 4] = [
        (GfxTarget::Gfx1201, "dmmv_q4_0", [0xF400_2280, 0xF800_0018]), // s_load_b64 s[10:11], s[0:1], 0x18
        (GfxTarget::Gfx1100, "dmmv_q4_0", [0xF404_0280, 0xF800_0018]), // same, gfx11 encoding
        (GfxTarget::Gfx1201, "argmax_f32", [0xF400_0100, 0xF800_0008]), // s_load_b32 s4, s[0:1], 0x8
        (GfxTarget::Gfx1100, "copy_u32", [0xF400_0100, 0xF800_0010]), // s_load_b32 s4, s[0:1], 0x10
    ];
    for (target, name, words) in cases {
        let bytes = if target == GfxTarget::Gfx1201 { GFX1201 } else { GFX1100 };
        let co = CodeObject::load(bytes, target).unwrap();
        let code = co.code_bytes(co.kernel(name).unwrap());
        let first: Vec<u32> =
            code[..8].chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(first, words, "{target} {name}");
    }
    // Kernels have distinct code (the simulator identifies them by these bytes).
    let co = CodeObject::parse(GFX1201).unwrap();
    let mut codes: Vec<&[u8]> = co.kernels().iter().map(|k| co.code_bytes(k)).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 25);
}

#[test]
fn typed_errors_name_what_is_wrong() {
    use CodeObjectError as E;
    assert!(matches!(CodeObject::parse(b"\x7fELX"), Err(E::NotElf { .. })));
    assert!(matches!(CodeObject::parse(&[]), Err(E::NotElf { .. })));
    assert!(matches!(
        CodeObject::parse(&GFX1201[..40]),
        Err(E::Truncated { what: "ELF header", need: 64, len: 40, .. })
    ));
    let patched = |at: usize, bytes: &[u8]| {
        let mut b = GFX1201.to_vec();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    assert!(matches!(
        CodeObject::parse(&patched(4, &[1])),
        Err(E::WrongFormat { field: "EI_CLASS", found: 1, expected: 2 })
    ));
    assert!(matches!(
        CodeObject::parse(&patched(5, &[2])),
        Err(E::WrongFormat { field: "EI_DATA", .. })
    ));
    assert!(matches!(
        CodeObject::parse(&patched(7, &[0])),
        Err(E::WrongFormat { field: "EI_OSABI", found: 0, expected: 64 })
    ));
    assert!(matches!(
        CodeObject::parse(&patched(18, &62u16.to_le_bytes())),
        Err(E::WrongFormat { field: "e_machine", found: 62, expected: 224 })
    ));
    // EF_AMDGPU_MACH_AMDGCN_GFX1200 = 0x48 (llvm ELF.h): a real target, not one pm4rt runs.
    assert!(matches!(
        CodeObject::parse(&patched(48, &0x48u32.to_le_bytes())),
        Err(E::UnknownTarget { mach: 0x48, .. })
    ));
    assert_eq!(
        CodeObject::load(GFX1201, GfxTarget::Gfx1100),
        Err(E::ForeignTarget { object: GfxTarget::Gfx1201, device: GfxTarget::Gfx1100 })
    );
    // e_flags says gfx1100 but the metadata says gfx1201.
    assert!(matches!(
        CodeObject::parse(&patched(48, &0x41u32.to_le_bytes())),
        Err(E::BadNote { .. })
    ));
    let co = CodeObject::parse(GFX1201).unwrap();
    assert!(matches!(co.kernel("dmmv_iq4_nl"), Err(E::NoSuchKernel { .. })));
}

/// Replace every occurrence of `from` by `to` (same length) in a copy of `bytes`.
fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut b = bytes.to_vec();
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= b.len() {
        if &b[i..i + from.len()] == from {
            b[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(n > 0, "pattern not found");
    b
}

#[test]
fn missing_descriptor_bad_descriptor_and_bad_note() {
    // Rename the descriptor symbol in every string table: the metadata still asks for it.
    let b = replace_all(GFX1201, b"copy_u32.kd\0", b"copy_u32.kx\0");
    match CodeObject::parse(&b) {
        Err(CodeObjectError::MissingDescriptor { kernel, symbol }) => {
            assert_eq!((kernel.as_str(), symbol.as_str()), ("copy_u32", "copy_u32.kd"));
        }
        other => panic!("{other:?}"),
    }
    // copy_u32.kd is at vaddr 0x60c0 = file offset 0x60c0 (first PT_LOAD maps offset 0 at 0):
    // make kernarg_size (offset 8) disagree with the metadata's 20.
    let mut b = GFX1201.to_vec();
    b[0x60c0 + 8] = 24;
    match CodeObject::parse(&b) {
        Err(CodeObjectError::BadDescriptor { kernel, offset: 0x60c0, reason }) => {
            assert_eq!(kernel, "copy_u32");
            assert!(reason.contains("kernarg_size 24"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Entry offset moved by 4: no longer 256-aligned.
    let mut b = GFX1201.to_vec();
    b[0x60c0 + 16] += 4;
    assert!(matches!(CodeObject::parse(&b), Err(CodeObjectError::BadDescriptor { .. })));
    // Break a metadata key: the note no longer has amdhsa.kernels.
    let b = replace_all(GFX1201, b"amdhsa.kernels", b"amdhsa.kernelz");
    assert!(matches!(CodeObject::parse(&b), Err(CodeObjectError::BadNote { .. })));
    // Change the note type from 32 (NT_AMDGPU_METADATA): no metadata note at all. The note
    // header sits at the NOTE segment's file offset 0x200 (llvm-readelf-19 -l): namesz,
    // descsz, type.
    let mut b = GFX1201.to_vec();
    assert_eq!(u32::from_le_bytes([b[0x208], b[0x209], b[0x20a], b[0x20b]]), 32);
    b[0x208] = 33;
    assert!(matches!(CodeObject::parse(&b), Err(CodeObjectError::BadNote { offset: 0, .. })));
}

#[test]
fn signature_mismatches_are_reported() {
    let co = CodeObject::parse(GFX1201).unwrap();
    let k = co.kernel("argmax_f32").unwrap();
    // Swapped n/out, a wrong name, a pointer declared as a value, a missing argument.
    let bad: [Vec<DeclaredArg<'_>>; 4] = [
        vec![p("x", 0), p("out", 8), v("n", 16)],
        vec![p("x", 0), v("len", 8), p("out", 16)],
        vec![v("x", 0), v("n", 8), p("out", 16)],
        vec![p("x", 0), v("n", 8)],
    ];
    for sig in bad {
        assert!(matches!(k.check_signature(&sig), Err(CodeObjectError::SignatureMismatch { .. })));
    }
}

/// xorshift64: a deterministic stream for the byte-flip test.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn arbitrary_bytes_never_panic() {
    for (_, bytes) in both() {
        // Truncations at many lengths, including every length near the structures' ends.
        let mut lengths: Vec<usize> = (0..bytes.len()).step_by(23).collect();
        lengths.extend(0..80);
        lengths.extend(0x200..0x260);
        for len in lengths {
            let r = CodeObject::parse(&bytes[..len]);
            assert!(r.is_err() || len == bytes.len(), "truncation to {len} parsed");
        }
        // Random byte flips: 1 to 4 bytes at a time.
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut ok = 0;
        for _ in 0..3000 {
            let mut b = bytes.to_vec();
            for _ in 0..(xorshift(&mut s) % 4 + 1) {
                let at = (xorshift(&mut s) % b.len() as u64) as usize;
                b[at] ^= (xorshift(&mut s) % 255 + 1) as u8;
            }
            if let Ok(co) = CodeObject::parse(&b) {
                ok += 1;
                for k in co.kernels() {
                    let _ = co.code_bytes(k);
                }
            }
        }
        // Most flips land in code or padding and still parse; many others must not.
        assert!(ok > 0 && ok < 3000, "{ok} of 3000 flipped objects parsed");
    }
}
