//! The loader and kernarg builder on the user-kernel corpus (tests/user_kernels, OpenCL C
//! compiled by clang-19 for gfx1201 and gfx1100 with hidden arguments, partial workgroups and
//! the dispatch pointer).
//!
//! Expected offsets and descriptor bits are literals recorded from `llvm-readelf-19 --notes`
//! and `llvm-objdump-19 -s -j .rodata` on the committed code objects; expected hidden values
//! are computed here by hand from the geometry (AMDGPUUsage "Code Object V5 Metadata";
//! ROCm clr `VirtualGPU::submitKernelInternal`), never by the code under test.

use pm4rt_core::code_object::hidden::LaunchGeometry;
use pm4rt_core::code_object::kernargs::{ArgValue, KernargError};
use pm4rt_core::code_object::{CodeObject, CodeObjectError, KernArg, ValueKind};
use pm4rt_core::GfxTarget;

static GFX1201: &[u8] = include_bytes!("../../tests/user_kernels/gfx1201/user.hsaco");
static GFX1100: &[u8] = include_bytes!("../../tests/user_kernels/gfx1100/user.hsaco");

fn both() -> Vec<CodeObject> {
    vec![
        CodeObject::load(GFX1201, GfxTarget::Gfx1201).unwrap(),
        CodeObject::load(GFX1100, GfxTarget::Gfx1100).unwrap(),
    ]
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

#[test]
fn every_corpus_kernel_loads_and_is_launchable() {
    for co in both() {
        let mut names: Vec<_> = co.kernels().iter().map(|k| k.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["coords3", "read_dispatch", "scale_add"]);
        for k in co.kernels() {
            assert!(k.launch_blocker().is_none(), "{}: {:?}", k.name, k.launch_blocker());
        }
        // llvm-readelf --notes: .kernarg_segment_size 280 / 280 / 8 (read_dispatch uses no
        // implicit argument, so it has no hidden ones).
        assert_eq!(co.kernel("scale_add").unwrap().kernarg_segment_size(), 280);
        assert_eq!(co.kernel("coords3").unwrap().kernarg_segment_size(), 280);
        assert_eq!(co.kernel("read_dispatch").unwrap().kernarg_segment_size(), 8);
        assert_eq!(co.kernel("read_dispatch").unwrap().hidden_args().count(), 0);
        let rd = co.kernel("read_dispatch").unwrap();
        assert!(rd.descriptor.user_sgpr_inputs().contains(&"dispatch ptr"));
        let names: Vec<_> = co.kernel("scale_add").unwrap().explicit_args().cloned().collect();
        assert_eq!(
            names
                .iter()
                .map(|a| (a.name.as_deref().unwrap(), a.offset, a.size))
                .collect::<Vec<_>>(),
            [("out", 0, 8), ("in", 8, 8), ("k", 16, 4), ("n", 20, 4)]
        );
    }
}

#[test]
fn scale_add_kernargs_hold_explicit_and_hidden_values() {
    for co in both() {
        let k = co.kernel("scale_add").unwrap();
        // 1000 work-items in workgroups of 256: 3 whole workgroups and a remainder of 232.
        let g = LaunchGeometry::new([1000, 1, 1], [256, 1, 1]);
        let args = [
            ArgValue::Pointer(0x1_0000_1000),
            ArgValue::Pointer(0x2_0000_2000),
            ArgValue::F32(2.5),
            ArgValue::U32(1000),
        ];
        let ka = k.build_kernargs(&args, &g).unwrap();
        assert_eq!(ka.len(), 280);
        assert_eq!(u64_at(&ka, 0), 0x1_0000_1000);
        assert_eq!(u64_at(&ka, 8), 0x2_0000_2000);
        assert_eq!(u32_at(&ka, 16), 2.5f32.to_bits());
        assert_eq!(u32_at(&ka, 20), 1000);
        // hidden_block_count_x/y/z at 24/28/32, group_size at 36/38/40, remainder at 42/44/46.
        assert_eq!([u32_at(&ka, 24), u32_at(&ka, 28), u32_at(&ka, 32)], [3, 1, 1]);
        assert_eq!([u16_at(&ka, 36), u16_at(&ka, 38), u16_at(&ka, 40)], [256, 1, 1]);
        assert_eq!([u16_at(&ka, 42), u16_at(&ka, 44), u16_at(&ka, 46)], [232, 0, 0]);
        // hidden_global_offset_x/y/z at 64/72/80 are 0; hidden_grid_dims at 88 is 1.
        assert_eq!([u64_at(&ka, 64), u64_at(&ka, 72), u64_at(&ka, 80)], [0, 0, 0]);
        assert_eq!(u16_at(&ka, 88), 1);
        // Everything no argument covers is zero.
        assert!(ka[48..64].iter().all(|&b| b == 0));
        assert!(ka[90..].iter().all(|&b| b == 0));
    }
}

#[test]
fn coords3_kernargs_for_a_partial_3d_grid() {
    for co in both() {
        let k = co.kernel("coords3").unwrap();
        // 10 x 5 x 3 work-items in 4 x 2 x 2 workgroups.
        let g = LaunchGeometry::new([10, 5, 3], [4, 2, 2]);
        let outs =
            [ArgValue::Pointer(0x7000), ArgValue::Pointer(0x8000), ArgValue::Pointer(0x9000)];
        let ka = k.build_kernargs(&outs, &g).unwrap();
        assert_eq!([u64_at(&ka, 0), u64_at(&ka, 8), u64_at(&ka, 16)], [0x7000, 0x8000, 0x9000]);
        assert_eq!([u32_at(&ka, 24), u32_at(&ka, 28), u32_at(&ka, 32)], [2, 2, 1]);
        assert_eq!([u16_at(&ka, 36), u16_at(&ka, 38), u16_at(&ka, 40)], [4, 2, 2]);
        assert_eq!([u16_at(&ka, 42), u16_at(&ka, 44), u16_at(&ka, 46)], [2, 1, 1]);
        assert_eq!(u16_at(&ka, 88), 3);
        assert_eq!(g.workgroups(), [3, 3, 2]);
    }
}

#[test]
fn bad_arguments_are_errors_naming_the_argument() {
    let co = CodeObject::load(GFX1201, GfxTarget::Gfx1201).unwrap();
    assert_eq!(
        co.kernel("nope").unwrap_err(),
        CodeObjectError::NoSuchKernel { name: "nope".into() }
    );
    let k = co.kernel("scale_add").unwrap();
    let g = LaunchGeometry::new([64, 1, 1], [64, 1, 1]);
    let e = k.build_kernargs(&[ArgValue::Pointer(1)], &g).unwrap_err();
    assert!(matches!(e, KernargError::WrongCount { expected: 4, got: 1, .. }), "{e}");
    assert!(e.to_string().contains("#0 out, #1 in, #2 k, #3 n"), "{e}");

    let bad_kind = [ArgValue::Pointer(1), ArgValue::U32(3), ArgValue::F32(1.0), ArgValue::U32(1)];
    let e = k.build_kernargs(&bad_kind, &g).unwrap_err();
    assert!(e.to_string().contains("argument #1 in is a global buffer but a u32"), "{e}");

    let ptr_for_value =
        [ArgValue::Pointer(1), ArgValue::Pointer(2), ArgValue::Pointer(3), ArgValue::U32(1)];
    let e = k.build_kernargs(&ptr_for_value, &g).unwrap_err();
    assert!(e.to_string().contains("argument #2 k is a 4-byte value but a buffer"), "{e}");

    let bad_size =
        [ArgValue::Pointer(1), ArgValue::Pointer(2), ArgValue::F32(1.0), ArgValue::U64(1)];
    let e = k.build_kernargs(&bad_size, &g).unwrap_err();
    assert!(matches!(&e, KernargError::WrongSize { expected: 4, got: 8, .. }), "{e}");
    assert!(e.to_string().contains("#3 n"), "{e}");

    let ok = [ArgValue::Pointer(1), ArgValue::Pointer(2), ArgValue::F32(1.0), ArgValue::U32(1)];
    let e = k.build_kernargs(&ok, &LaunchGeometry::new([64, 1, 1], [2048, 1, 1])).unwrap_err();
    assert!(matches!(e, KernargError::Geometry { .. }), "{e}");
}

#[test]
fn unsupported_hidden_kinds_are_refused_naming_kernel_and_kind() {
    let co = CodeObject::load(GFX1201, GfxTarget::Gfx1201).unwrap();
    for kind in [
        "hidden_printf_buffer",
        "hidden_hostcall_buffer",
        "hidden_multigrid_sync_arg",
        "hidden_default_queue",
        "hidden_completion_action",
        "hidden_heap_v1",
    ] {
        let mut k = co.kernel("coords3").unwrap().clone();
        // LLVM places these at implicit offset 72.. (emitHiddenKernelArgs); 24 + 72 = 96.
        k.args.push(KernArg {
            name: None,
            offset: 96,
            size: 8,
            value_kind: ValueKind::Hidden(kind.into()),
        });
        let outs = [ArgValue::Pointer(0), ArgValue::Pointer(0), ArgValue::Pointer(0)];
        let e = k.build_kernargs(&outs, &LaunchGeometry::new([1, 1, 1], [1, 1, 1])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("kernel coords3") && msg.contains(kind), "{msg}");
        assert!(k.launch_blocker().is_some());
    }
}

fn user_data(stream: &[u32]) -> Vec<u32> {
    use pm4rt_core::pm4::{decode, regs, Packet};
    for (_, p) in decode(stream).unwrap() {
        if let Packet::SetShReg { offset, values } = p {
            if offset == regs::COMPUTE_USER_DATA_0 {
                return values;
            }
        }
    }
    Vec::new()
}

#[test]
fn dispatch_pointer_precedes_the_kernarg_pointer_in_the_user_sgprs() {
    use pm4rt_core::launch::{
        emit_dispatch, emit_dispatch_with, DispatchInputs, Launch, LaunchError,
    };
    use pm4rt_core::pm4::Builder;
    for co in both() {
        let gfx = co.target();
        let k = co.kernel("read_dispatch").unwrap();
        // llvm-objdump .rodata: kernel_code_properties 0x040a = wave32 | kernarg ptr (bit 3) |
        // dispatch ptr (bit 1).
        assert_eq!(k.descriptor.kernel_code_properties, 0x040a);
        let l = Launch {
            kernel: k,
            image_va: 0x1_0000_0000,
            grid: [1, 1, 1],
            workgroup: Some([64, 1, 1]),
            kernarg_va: 0x2_0000_0100,
            tier: pm4rt_core::Tier::Sim,
        };
        let mut b = Builder::growable(gfx);
        let inputs = DispatchInputs { dispatch_packet_va: Some(0x3_0000_0040), dispatch_id: 0 };
        emit_dispatch_with(&mut b, gfx, &l, &inputs).unwrap();
        // AMDGPUUsage "Initial Kernel Execution State": dispatch ptr (s[0:1]) before the
        // kernarg segment ptr (s[2:3]).
        assert_eq!(user_data(&b.into_vec()), [0x40, 0x3, 0x100, 0x2]);
        let mut b = Builder::growable(gfx);
        let e = emit_dispatch(&mut b, gfx, &l).unwrap_err();
        assert!(matches!(e, LaunchError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("dispatch packet"), "{e}");
    }
}
