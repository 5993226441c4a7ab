//! Streams the kernel's own ring code emits (and tinygrad's, where it differs) must decode,
//! disassemble with every bit named, and be accepted by the builder on both targets.
//!
//! Every expected dword is written by hand from the upstream source, not produced by pm4rt:
//! - `PACKET3(op, n)` = `(3 << 30) | ((op & 0xFF) << 8) | ((n & 0x3FFF) << 16)`
//!   (`drivers/gpu/drm/amd/amdgpu/nvd.h`); the kernel sets no SHADER_TYPE bit, pm4rt always
//!   sets bit 1, so pm4rt's headers are the kernel's `| 2`.
//! - `gfx_v11_0.c: gfx_v11_0_emit_mem_sync` and `gfx_v12_0.c: gfx_v12_0_emit_mem_sync` (the
//!   same code on both): `PACKET3(PACKET3_ACQUIRE_MEM, 6)` = 0xC006_5800, 0 (CP_COHER_CNTL),
//!   0xFFFF_FFFF, 0x00FF_FFFF, 0, 0, 0xA (POLL_INTERVAL), GCR_CNTL = GL2_INV (1 << 14) |
//!   GL2_WB (1 << 15) | GLM_INV (1 << 5) | GLM_WB (1 << 4) | GL1_INV (1 << 9) | GLV_INV
//!   (1 << 8) | GLK_INV (1 << 7) | GLI_INV(1) (1 << 0) = 0xC3B1 (`nvd.h`
//!   `PACKET3_ACQUIRE_MEM_GCR_CNTL_*`).
//! - `gfx_v12_0.c: gfx_v12_0_ring_emit_fence` (64-bit, no interrupt): `PACKET3(PACKET3_RELEASE_MEM,
//!   6)` = 0xC006_4900; dw1 = GCR_SEQ (1 << 22) | GCR_GL2_WB (1 << 21) | CACHE_POLICY(3)
//!   (3 << 25) | EVENT_TYPE(CACHE_FLUSH_AND_INV_TS_EVENT = 0x14) | EVENT_INDEX(5) (5 << 8) =
//!   0x0660_0514; dw2 = DATA_SEL(2) (2 << 29) = 0x4000_0000.
//! - `gfx_v11_0.c: gfx_v11_0_ring_emit_fence`: dw1 adds GCR_GLM_INV (1 << 13) | GCR_GLM_WB
//!   (1 << 12) = 0x0660_3514.
//! - tinygrad `tinygrad/runtime/ops_amd.py: AMDComputeQueue.release_mem(cache_flush=True)`, used
//!   by `signal` on gfx11 and gfx12: dw1 = GLV_INV (1 << 14) | GL1_INV (1 << 15) | GL2_INV
//!   (1 << 20) | GLM_WB (1 << 12) | GLM_INV (1 << 13) | GL2_WB (1 << 21) | SEQ (1 << 22) |
//!   EVENT_TYPE 0x14 | EVENT_INDEX 5 = 0x0070_F514; dw2 = DATA_SEL(1) (1 << 29) | INT_SEL(2)
//!   (2 << 24) = 0x2200_0000.

use pm4rt_core::pm4::{decode, disassemble, Builder, FenceInterrupt, Packet};
use pm4rt_core::GfxTarget::{self, Gfx1100, Gfx1201};

const SHADER_TYPE: u32 = 1 << 1;

/// `gfx_v11_0_emit_mem_sync` / `gfx_v12_0_emit_mem_sync`.
const KERNEL_MEM_SYNC: [u32; 8] =
    [0xC006_5800, 0, 0xFFFF_FFFF, 0x00FF_FFFF, 0, 0, 0x0000_000A, 0x0000_C3B1];
/// `gfx_v12_0_ring_emit_fence` of sequence 0x1_0000_0002 to 0x8000 (64-bit, no interrupt).
const KERNEL_FENCE_GFX12: [u32; 8] =
    [0xC006_4900, 0x0660_0514, 0x4000_0000, 0x0000_8000, 0, 2, 1, 0];
/// `gfx_v11_0_ring_emit_fence`, same arguments.
const KERNEL_FENCE_GFX11: [u32; 8] =
    [0xC006_4900, 0x0660_3514, 0x4000_0000, 0x0000_8000, 0, 2, 1, 0];
/// tinygrad's `signal` RELEASE_MEM (32-bit value 7 to 0x9000, interrupt after write, ctxid 3).
const TINYGRAD_SIGNAL: [u32; 8] = [0xC006_4900, 0x0070_F514, 0x2200_0000, 0x0000_9000, 0, 7, 0, 3];

/// Decode `stream` (one packet), check the disassembly on `gfx` names every bit (no `?=`) and
/// contains `expect`, and re-encode it with a builder for `gfx`: the same dwords but SHADER_TYPE.
fn accepts(stream: &[u32], gfx: GfxTarget, expect: &str) {
    let packets = decode(stream).unwrap_or_else(|e| panic!("{gfx:?}: {e}"));
    assert_eq!(packets.len(), 1);
    let text = disassemble(stream, gfx).into_result().unwrap();
    assert!(text.contains(expect), "{gfx:?}: {text}");
    assert!(!text.contains("?="), "{gfx:?}: an unnamed bit in {text}");
    let mut b = Builder::growable(gfx);
    b.packet(&packets[0].1).unwrap_or_else(|e| panic!("{gfx:?}: builder refused: {e}"));
    let out = b.into_vec();
    assert_eq!(out[0], stream[0] | SHADER_TYPE);
    assert_eq!(out[1..], stream[1..]);
}

#[test]
fn kernel_mem_sync_is_accepted_and_named_on_gfx11_and_gfx12() {
    for gfx in [Gfx1100, Gfx1201] {
        accepts(
            &KERNEL_MEM_SYNC,
            gfx,
            "GCR_CNTL=0xc3b1{GLI_INV=0x1 GLM_WB GLM_INV GLK_INV GLV_INV GL1_INV GL2_INV GL2_WB}",
        );
    }
}

#[test]
fn kernel_fences_are_accepted_and_named() {
    accepts(&KERNEL_FENCE_GFX12, Gfx1201, "GCR_CNTL=0x600{GL2_WB SEQ=0x1} CACHE_POLICY=3");
    accepts(
        &KERNEL_FENCE_GFX11,
        Gfx1100,
        "GCR_CNTL=0x603{GLM_WB GLM_INV GL2_WB SEQ=0x1} CACHE_POLICY=3",
    );
}

#[test]
fn tinygrad_signal_release_mem_is_accepted_on_gfx12() {
    for gfx in [Gfx1100, Gfx1201] {
        accepts(
            &TINYGRAD_SIGNAL,
            gfx,
            "GCR_CNTL=0x70f{GLM_WB GLM_INV GLV_INV GL1_INV GL2_INV GL2_WB SEQ=0x1}",
        );
    }
}

#[test]
fn builder_release_mem_and_acquire_mem_take_the_kernel_gcr_values_on_gfx12() {
    let Packet::AcquireMem(a) = decode(&KERNEL_MEM_SYNC).unwrap()[0].1.clone() else {
        panic!("not ACQUIRE_MEM")
    };
    let Packet::ReleaseMem(r) = decode(&TINYGRAD_SIGNAL).unwrap()[0].1.clone() else {
        panic!("not RELEASE_MEM")
    };
    let mut b = Builder::growable(Gfx1201);
    b.acquire_mem(a).unwrap();
    b.release_mem(r).unwrap();
    let out = b.into_vec();
    assert_eq!(out[7], 0xC3B1);
    assert_eq!(out[9], 0x0070_F514);
}

#[test]
fn our_fences_are_the_kernels() {
    for (gfx, kernel) in [(Gfx1100, KERNEL_FENCE_GFX11), (Gfx1201, KERNEL_FENCE_GFX12)] {
        let mut b = Builder::growable(gfx);
        b.release_mem_fence(0x8000, 0x1_0000_0002, FenceInterrupt::None).unwrap();
        let out = b.into_vec();
        assert_eq!(out[0], kernel[0] | SHADER_TYPE, "{gfx:?}");
        assert_eq!(out[1..], kernel[1..], "{gfx:?}");
    }
}
