//! The launch path against numbers read independently from the committed code object with
//! `llvm-readelf-19 -s kernels/gfx1201/pm4rt.hsaco` and the raw 64-byte descriptors:
//! dmmv_q4_0 entry 0x3600, RSRC1 0x600f0045, RSRC2 0x84, LDS 0; rms_norm_f32 entry 0x5600,
//! RSRC1 0x600f0041, RSRC2 0x84, group_segment_fixed_size 32 (one 512-byte LDS granule).

use std::collections::HashMap;

use pm4rt_core::code_object::CodeObject;
use pm4rt_core::launch::{emit_barrier, emit_dispatch, Launch, LaunchError};
use pm4rt_core::pm4::{decode, regs, Builder, Packet};
use pm4rt_core::GfxTarget;

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
    let l = Launch { kernel, image_va: IMAGE_VA, grid, workgroup: None, kernarg_va: KERNARG_VA };
    emit_dispatch(&mut b, GfxTarget::Gfx1201, &l).unwrap();
    b.into_vec()
}

#[test]
fn dmmv_q4_0_dispatch_registers() {
    let (r, packets) = registers(&launch_stream("dmmv_q4_0", [512, 1, 1]));
    assert!(matches!(packets[0], Packet::AcquireMem(_)), "starts with ACQUIRE_MEM");
    let entry = IMAGE_VA + 0x3600;
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
    let last = packets.last().unwrap();
    assert_eq!(*last, Packet::DispatchDirect { dim: [512, 1, 1], initiator: 0x8005 });
}

#[test]
fn lds_size_is_programmed_from_group_segment_size() {
    let (r, _) = registers(&launch_stream("rms_norm_f32", [1, 1, 1]));
    assert_eq!(r[&regs::COMPUTE_PGM_RSRC2], 0x84 | (1 << 15));
    assert_eq!(r[&regs::COMPUTE_PGM_LO], ((IMAGE_VA + 0x5600) >> 8) as u32);
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
