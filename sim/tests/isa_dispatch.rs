//! pm4rt's kernels dispatched through a SimSubmitter whose KernelRegistry runs the machine
//! code on the ISA interpreter (`ExecMode::Isa`, what `PM4RT_SIM_EXEC=isa` selects): the same
//! IB, registers and memory as the native path, on both targets. Expected values are
//! hand-computed from the kernel contract (kernels/README.md).

mod common;

use common::isa_rig::{IsaRig, ISA_DATA as DATA};
use pm4rt_core::GfxTarget;
use pm4rt_kernels::KernelId;
use pm4rt_sim::dispatch::KernelRegistry;
use pm4rt_sim::isa::ExecMode;

/// A rig whose registry interprets every kernel.
fn rig(gfx: GfxTarget) -> IsaRig {
    let registry = KernelRegistry::new(gfx).unwrap().with_exec_mode(ExecMode::Isa);
    IsaRig::with_pm4rt_kernels(gfx, registry)
}

fn a(off: u64) -> u64 {
    DATA + off
}

#[test]
fn isa_mode_runs_rms_norm_copy_argmax_and_dmmv_through_the_engine_on_both_targets() {
    for gfx in [GfxTarget::Gfx1201, GfxTarget::Gfx1100] {
        let mut r = rig(gfx);
        // rms_norm: x = [2, 2, 2, 2], eps 0: mean square 4, sqrt 2, y = x / 2 * w = w.
        r.put_f32(0, &[2.0; 4]);
        r.put_f32(0x1000, &[1.0, 2.0, -3.0, 0.5]);
        // copy of 300 elements with one workgroup: only the first 256 are copied.
        r.put_f32(0x3000, &[7.0; 300]);
        // argmax over 300: maximum 9.5 at index 260 (second workgroup), ties at 5.0 earlier.
        let mut xs = vec![5.0f32; 300];
        xs[260] = 9.5;
        r.put_f32(0x5000, &xs);
        // dmmv_f32: 3 x 32 weights, row r = (r + 1) everywhere; x = 1: y = 32 (r + 1).
        let w: Vec<f32> = (0..3).flat_map(|row| vec![(row + 1) as f32; 32]).collect();
        r.put_f32(0x6000, &w);
        r.put_f32(0x7000, &[1.0; 32]);
        let rms = [("x", a(0)), ("weight", a(0x1000)), ("y", a(0x2000)), ("n", 4), ("eps", 0)];
        let copy = [("src", a(0x2000)), ("dst", a(0x2800)), ("n", 4)];
        let big = [("src", a(0x3000)), ("dst", a(0x4000)), ("n", 300)];
        let argmax = [("x", a(0x5000)), ("n", 300), ("out", a(0x5800))];
        let dmmv =
            [("w", a(0x6000)), ("x", a(0x7000)), ("y", a(0x8000)), ("rows", 3), ("cols", 32)];
        r.run(&[
            (KernelId::RmsNormF32, &rms, 1),
            (KernelId::CopyU32, &copy, 1),
            (KernelId::CopyU32, &big, 1),
            (KernelId::ArgmaxF32, &argmax, 2),
            (KernelId::DmmvF32, &dmmv, 1),
        ])
        .unwrap_or_else(|e| panic!("{gfx:?}: {e}"));
        assert_eq!(r.get_f32(0x2000, 4), vec![1.0, 2.0, -3.0, 0.5], "{gfx:?} rms_norm");
        assert_eq!(r.get_f32(0x2800, 4), vec![1.0, 2.0, -3.0, 0.5], "{gfx:?} copy");
        let got = r.get_f32(0x4000, 300);
        assert!(got[..256].iter().all(|v| *v == 7.0), "{gfx:?}: first workgroup copied");
        assert!(got[256..].iter().all(|v| *v == 0.0), "{gfx:?}: one workgroup only");
        // Packed: key(9.5) << 32 | (0xFFFFFFFF - 260); key of a positive float sets bit 31.
        let want =
            (u64::from(9.5f32.to_bits() ^ 0x8000_0000) << 32) | u64::from(0xFFFF_FFFFu32 - 260);
        assert_eq!(r.get_u64(0x5800), want, "{gfx:?} argmax");
        assert_eq!(r.get_f32(0x8000, 3), vec![32.0, 64.0, 96.0], "{gfx:?} dmmv_f32");
    }
}

#[test]
fn exec_mode_names() {
    assert_eq!(ExecMode::parse("native").unwrap(), ExecMode::Native);
    assert_eq!(ExecMode::parse("isa").unwrap(), ExecMode::Isa);
    let err = ExecMode::parse("fast").unwrap_err();
    assert!(err.to_string().contains("PM4RT_SIM_EXEC=\"fast\""), "{err}");
}
