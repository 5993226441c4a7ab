//! The launch path against numbers read independently from the committed code object with
//! `llvm-readelf-19 -s kernels/gfx1201/pm4rt.hsaco` and the raw 64-byte descriptors:
//! dmmv_q4_0 entry 0x7400, RSRC1 0x600f0045, RSRC2 0x84, LDS 0; rms_norm_f32 entry 0xfd00,
//! RSRC1 0x600f0041, RSRC2 0x84, group_segment_fixed_size 32 (one 512-byte LDS granule).

use std::collections::HashMap;

use pm4rt_core::code_object::CodeObject;
use pm4rt_core::launch::{emit_barrier, emit_dispatch, Launch, LaunchError};
use pm4rt_core::pm4::{decode, regs, Builder, Packet};
use pm4rt_core::{GfxTarget, Tier};

const GFX1201: &[u8] = include_bytes!("../../kernels/gfx1201/pm4rt.hsaco");
const IMAGE_VA: u64 = 0x1_0000_0000;
const KERNARG_VA: u64 = 0x2_0000_0040;

fn registers(stream: &[u32]) -> (HashMap<u16, u32>, Vec<Packet>) {
    let packets: Vec<Packet> = decode(stream).unwrap().into_iter().map(|(_, p)| p).collect();
    let mut regs = HashMap::new();
    for p in &packets {
        if let Packet::SetShReg { offset, values } = p {
            for (i, v) in values.iter().enumerate() {
                regs.insert(offset + i as u16, *v);
            }
        }
    }
    (regs, packets)
}

fn launch_stream(name: &str, grid: [u32; 3]) -> Vec<u32> {
    let co = CodeObject::load(GFX1201, GfxTarget::Gfx1201).unwrap();
    let kernel = co.kernel(name).unwrap();
    let mut b = Builder::growable(GfxTarget::Gfx1201);
    let l = Launch {
        kernel,
        image_va: IMAGE_VA,
        grid,
        workgroup: None,
        kernarg_va: KERNARG_VA,
        tier: Tier::Cs,
    };
    emit_dispatch(&mut b, GfxTarget::Gfx1201, &l).unwrap();
    b.into_vec()
}

#[test]
fn dmmv_q4_0_dispatch_registers() {
    let (r, packets) = registers(&launch_stream("dmmv_q4_0", [512, 1, 1]));
    assert!(matches!(packets[0], Packet::AcquireMem(_)), "starts with ACQUIRE_MEM");
    let entry = IMAGE_VA + 0x7400;
    assert_eq!(r[&regs::COMPUTE_PGM_LO], (entry >> 8) as u32);
    assert_eq!(r[&regs::COMPUTE_PGM_HI], (entry >> 40) as u32);
    assert_eq!(r[&regs::COMPUTE_PGM_RSRC1], 0x600f_0045);
    assert_eq!(r[&regs::COMPUTE_PGM_RSRC2], 0x84);
    assert_eq!(r[&regs::COMPUTE_PGM_RSRC3], 0);
    assert_eq!(r[&regs::COMPUTE_TMPRING_SIZE], 0);
    assert_eq!(r[&regs::COMPUTE_USER_DATA_0], 0x0000_0040);
    assert_eq!(r[&(regs::COMPUTE_USER_DATA_0 + 1)], 0x2);
    assert!(!r.contains_key(&(regs::COMPUTE_USER_DATA_0 + 2)), "only the kernarg pointer");
    assert_eq!(
        [
            r[&regs::COMPUTE_NUM_THREAD_X],
            r[&regs::COMPUTE_NUM_THREAD_Y],
            r[&regs::COMPUTE_NUM_THREAD_Z]
        ],
        [256, 1, 1]
    );
    assert_eq!(r[&regs::COMPUTE_RESOURCE_LIMITS], 0);
    let n = packets.len();
    assert_eq!(packets[n - 2], Packet::DispatchDirect { dim: [512, 1, 1], initiator: 0x8005 });
}

/// tinygrad (`ops_amd.py: AMDComputeQueue.exec`) and kfdtest (`Dispatch.cpp:
/// Dispatch::BuildIb`) write COMPUTE_RESTART_X/Y/Z = 0 before the user data, and end each
/// dispatch with `PACKET3(PACKET3_EVENT_WRITE, 0)`, `EVENT_TYPE(CS_PARTIAL_FLUSH = 7) |
/// EVENT_INDEX(4)` = 0xC000_4600, 0x0000_0407 (tinygrad `EVENT_INDEX_PARTIAL_FLUSH = 4`;
/// kfdtest's original `PM4PartialFlushPacket`). pm4rt sets SHADER_TYPE (bit 1) in headers.
#[test]
fn dispatch_clears_restart_and_ends_with_a_cs_partial_flush() {
    let stream = launch_stream("dmmv_q4_0", [512, 1, 1]);
    assert_eq!(stream[stream.len() - 2..], [0xC000_4602, 0x0000_0407]);
    // SET_SH_REG COMPUTE_RESTART_X (0x21B) with three zeros: PACKET3(SET_SH_REG, 3), 0x21B, 0, 0, 0.
    let restart = [0xC003_7602, 0x0000_021B, 0, 0, 0];
    let at = stream.windows(5).position(|w| w == restart).expect("RESTART_X/Y/Z = 0 written");
    let user = stream
        .windows(2)
        .position(|w| w[0] >> 8 & 0xFF == 0x76 && w[1] == 0x240)
        .expect("COMPUTE_USER_DATA_0 written");
    assert!(at < user, "RESTART before the user data, as tinygrad and kfdtest");
}

/// RSRC1.PRIV (bit 20) on gfx11 KFD queues: tinygrad `ops_amd.py: _amd_program_image`
/// ("priv=1 on gfx11 for cwsr"), kfdtest `NeedCwsrWA` (DEGFX11_12113, gfx 11.0.0). The gfx1100
/// dmmv_q4_0 descriptor's RSRC1 (byte 48 of `dmmv_q4_0.kd` at 0x5b00 in
/// kernels/gfx1100/pm4rt.hsaco) is 0x60af0085; with PRIV 0x60bf0085.
#[test]
fn rsrc1_priv_only_on_gfx11_kfd_queues() {
    const GFX1100: &[u8] = include_bytes!("../../kernels/gfx1100/pm4rt.hsaco");
    let cases = [
        (GfxTarget::Gfx1100, GFX1100, Tier::Kfd, 0x60bf_0085),
        (GfxTarget::Gfx1100, GFX1100, Tier::Cs, 0x60af_0085),
        (GfxTarget::Gfx1100, GFX1100, Tier::Umq, 0x60af_0085),
        (GfxTarget::Gfx1100, GFX1100, Tier::Sim, 0x60af_0085),
        (GfxTarget::Gfx1201, GFX1201, Tier::Kfd, 0x600f_0045),
    ];
    for (gfx, image, tier, want) in cases {
        let co = CodeObject::load(image, gfx).unwrap();
        let kernel = co.kernel("dmmv_q4_0").unwrap();
        let l = Launch {
            kernel,
            image_va: IMAGE_VA,
            grid: [1, 1, 1],
            workgroup: None,
            kernarg_va: KERNARG_VA,
            tier,
        };
        let mut b = Builder::growable(gfx);
        emit_dispatch(&mut b, gfx, &l).unwrap();
        let (r, _) = registers(&b.into_vec());
        assert_eq!(r[&regs::COMPUTE_PGM_RSRC1], want, "{gfx:?} {tier:?}");
    }
}

#[test]
fn lds_size_is_programmed_from_group_segment_size() {
    let (r, _) = registers(&launch_stream("rms_norm_f32", [1, 1, 1]));
    assert_eq!(r[&regs::COMPUTE_PGM_RSRC2], 0x84 | (1 << 15));
    assert_eq!(r[&regs::COMPUTE_PGM_LO], ((IMAGE_VA + 0xfd00) >> 8) as u32);
}

#[test]
fn scratch_and_zero_grid_are_refused() {
    let co = CodeObject::load(GFX1201, GfxTarget::Gfx1201).unwrap();
    let k = co.kernel("copy_u32").unwrap();
    let mut b = Builder::growable(GfxTarget::Gfx1201);
    let l = Launch {
        kernel: k,
        image_va: IMAGE_VA,
        grid: [0, 1, 1],
        workgroup: None,
        kernarg_va: KERNARG_VA,
        tier: Tier::Cs,
    };
    assert!(matches!(
        emit_dispatch(&mut b, GfxTarget::Gfx1201, &l),
        Err(LaunchError::Invalid { .. })
    ));
    let mut scratch = k.clone();
    scratch.descriptor.private_segment_fixed_size = 16;
    let l = Launch { kernel: &scratch, grid: [1, 1, 1], ..l };
    assert!(matches!(
        emit_dispatch(&mut b, GfxTarget::Gfx1201, &l),
        Err(LaunchError::Unsupported { .. })
    ));
    assert!(b.is_empty(), "nothing written on failure");
}

#[test]
fn full_buffer_holds_no_partial_dispatch() {
    let co = CodeObject::load(GFX1201, GfxTarget::Gfx1201).unwrap();
    let k = co.kernel("dmmv_f32").unwrap();
    let l = Launch {
        kernel: k,
        image_va: IMAGE_VA,
        grid: [1, 1, 1],
        workgroup: None,
        kernarg_va: KERNARG_VA,
        tier: Tier::Cs,
    };
    let full = launch_stream("dmmv_f32", [1, 1, 1]).len();
    let mut buf = vec![0u32; full - 1];
    let mut b = Builder::new(&mut buf, GfxTarget::Gfx1201);
    assert!(matches!(emit_dispatch(&mut b, GfxTarget::Gfx1201, &l), Err(LaunchError::Encode(_))));
    assert_eq!(b.len(), 0);
    let mut buf = vec![0u32; full + 2];
    let mut b = Builder::new(&mut buf, GfxTarget::Gfx1201);
    emit_dispatch(&mut b, GfxTarget::Gfx1201, &l).unwrap();
    emit_barrier(&mut b).unwrap();
    assert_eq!(b.len(), full + 2);
}
