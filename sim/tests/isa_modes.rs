//! The execution modes of the simulator's dispatches (`PM4RT_SIM_EXEC`, `ExecMode`), through
//! the engine: `both` runs pm4rt's kernels on the native and the ISA executor and fails naming
//! kernel and element when they disagree beyond the kernel's bound (shown with a registry whose
//! native outputs are perturbed); code that is none of pm4rt's kernels runs on the interpreter
//! even in `native` mode. Expected values are computed by the tests from the kernel contract
//! (kernels/README.md), never by the simulator.

mod common;

use common::isa_rig::{Dispatch, IsaRig, ISA_DATA as DATA};
use std::time::{Duration, Instant};

use pm4rt_core::{Error, GfxTarget, Submitter};
use pm4rt_kernels::KernelId;
use pm4rt_sim::dispatch::KernelRegistry;
use pm4rt_sim::isa::ExecMode;

/// A [`Dispatch`] owning its arguments.
type OwnedDispatch = (KernelId, Vec<(&'static str, u64)>, u32);

const TARGETS: [GfxTarget; 2] = [GfxTarget::Gfx1201, GfxTarget::Gfx1100];

type Rig = IsaRig;

/// A rig with pm4rt's code object whose registry runs in `mode`.
fn with_mode(gfx: GfxTarget, mode: ExecMode) -> Rig {
    IsaRig::with_pm4rt_kernels(gfx, KernelRegistry::new(gfx).unwrap().with_exec_mode(mode))
}

fn a(off: u64) -> u64 {
    DATA + off
}

/// A deterministic pseudo-random sequence (64-bit LCG, Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next() >> 8) as f32 / 8_388_608.0 - 1.0
    }
}

/// The little-endian bytes of the f16 `(1 + m / 1024) * 2^-10` (IEEE binary16: sign 0,
/// exponent field 5 with bias 15, 10-bit mantissa `m`): a small positive block scale.
fn f16_scale(m: u32) -> [u8; 2] {
    let bits = (5u16 << 10) | (m as u16 & 0x3ff);
    bits.to_le_bytes()
}

/// Packed argmax key of a positive float (kernels/README.md: `bits ^ 0x8000_0000`).
fn packed(v: f32, index: u32) -> u64 {
    assert!(v >= 0.0);
    (u64::from(v.to_bits() ^ 0x8000_0000) << 32) | u64::from(0xFFFF_FFFF - index)
}

/// Random f32, Q4_0 and Q8_0 weights, x and norm weights in `rig`'s data BO, and a dispatch
/// of every pm4rt kernel on them.
fn random_workload(rig: &mut Rig, seed: u64) -> Vec<OwnedDispatch> {
    let mut r = Lcg(seed);
    let (rows, cols) = (19u64, 96u64);
    let x: Vec<f32> = (0..cols).map(|_| r.f32()).collect();
    rig.put_f32(0x0, &x);
    let wf: Vec<f32> = (0..rows * cols).map(|_| r.f32()).collect();
    rig.put_f32(0x1000, &wf);
    let mut q4 = Vec::new();
    let mut q8 = Vec::new();
    for _ in 0..rows * cols / 32 {
        q4.extend_from_slice(&f16_scale(r.next() % 1024));
        q4.extend((0..16).map(|_| r.next() as u8));
        q8.extend_from_slice(&f16_scale(r.next() % 1024));
        q8.extend((0..32).map(|_| r.next() as u8));
    }
    rig.put(0x10000, &q4);
    rig.put(0x20000, &q8);
    let norm_w: Vec<f32> = (0..cols).map(|_| r.f32()).collect();
    rig.put_f32(0x30000, &norm_w);
    let dm = |w: u64, y: u64| {
        vec![("w", a(w)), ("x", a(0)), ("y", a(y)), ("rows", rows), ("cols", cols)]
    };
    let am = |w: u64, o: u64| {
        vec![("w", a(w)), ("x", a(0)), ("out", a(o)), ("rows", rows), ("cols", cols)]
    };
    vec![
        (KernelId::DmmvF32, dm(0x1000, 0x40000), 3),
        (KernelId::DmmvQ4_0, dm(0x10000, 0x41000), 3),
        (KernelId::DmmvQ8_0, dm(0x20000, 0x42000), 3),
        (KernelId::DmmvF32Argmax, am(0x1000, 0x43000), 3),
        (KernelId::DmmvQ4_0Argmax, am(0x10000, 0x43008), 3),
        (KernelId::DmmvQ8_0Argmax, am(0x20000, 0x43010), 3),
        (KernelId::ArgmaxF32, vec![("x", a(0x1000)), ("n", rows * cols), ("out", a(0x43018))], 8),
        (
            KernelId::RmsNormF32,
            vec![("x", a(0)), ("weight", a(0x30000)), ("y", a(0x44000)), ("n", cols), ("eps", 0)],
            1,
        ),
        (KernelId::CopyU32, vec![("src", a(0x1000)), ("dst", a(0x50000)), ("n", 600)], 3),
    ]
}

fn run_all(rig: &mut Rig, calls: &[OwnedDispatch]) -> Result<(), Error> {
    let d: Vec<Dispatch<'_>> = calls.iter().map(|(k, args, g)| (*k, args.as_slice(), *g)).collect();
    rig.run(&d)
}

#[test]
fn both_mode_accepts_every_kernel_on_random_inputs_and_keeps_native_outputs() {
    for gfx in TARGETS {
        for seed in [1u64, 2] {
            let mut both = with_mode(gfx, ExecMode::Both);
            let calls = random_workload(&mut both, seed);
            run_all(&mut both, &calls).unwrap_or_else(|e| panic!("{gfx} seed {seed}: {e}"));
            let mut native = with_mode(gfx, ExecMode::Native);
            let calls = random_workload(&mut native, seed);
            run_all(&mut native, &calls).unwrap();
            // `both` leaves the native executor's bytes.
            for (off, n) in [(0x40000, 19), (0x41000, 19), (0x42000, 19), (0x44000, 96)] {
                let (p, q) = (both.get_f32(off, n), native.get_f32(off, n));
                assert!(
                    p.iter().zip(&q).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{gfx} seed {seed} at {off:#x}"
                );
            }
            for off in [0x43000, 0x43008, 0x43010, 0x43018] {
                assert_eq!(both.get_u64(off), native.get_u64(off), "{gfx} seed {seed} {off:#x}");
            }
            // copy_u32 copied the first 600 weights (3 workgroups of 256 lanes cover them).
            assert_eq!(both.get_f32(0x50000, 600), both.get_f32(0x1000, 600), "{gfx} copy");
        }
    }
}

/// dmmv_f32 with 2 rows of 32 columns: row r = r + 1 everywhere, x = 1, so y = [32, 64].
fn two_rows(rig: &mut Rig) -> [(&'static str, u64); 5] {
    let w: Vec<f32> = (0..2).flat_map(|row| vec![(row + 1) as f32; 32]).collect();
    rig.put_f32(0x1000, &w);
    rig.put_f32(0x2000, &[1.0; 32]);
    [("w", a(0x1000)), ("x", a(0x2000)), ("y", a(0x3000)), ("rows", 2), ("cols", 32)]
}

#[test]
fn both_mode_fails_naming_kernel_and_element_when_the_native_output_is_wrong() {
    for gfx in TARGETS {
        // y[1] + 1.0 (64 -> 65): far beyond the bound 2 * 33 * 2^-24 * 64.
        let perturbed = KernelRegistry::new(gfx)
            .unwrap()
            .with_exec_mode(ExecMode::Both)
            .with_native_perturbation(|id, bytes| {
                if id == KernelId::DmmvF32 {
                    bytes[4..8].copy_from_slice(&65.0f32.to_le_bytes());
                }
            });
        let mut rig = IsaRig::with_pm4rt_kernels(gfx, perturbed);
        let args = two_rows(&mut rig);
        let e = rig.run(&[(KernelId::DmmvF32, &args, 1)]).unwrap_err();
        match &e {
            Error::Dispatch { reason, .. } => {
                assert!(reason.contains("dmmv_f32"), "{gfx}: {reason}");
                assert!(reason.contains("y[1]"), "{gfx}: {reason}");
                assert!(reason.contains("disagree"), "{gfx}: {reason}");
            }
            other => panic!("{gfx}: expected Dispatch, got {other:?}"),
        }
    }
}

#[test]
fn both_mode_accepts_a_difference_within_the_bound() {
    for gfx in TARGETS {
        // y[0] = 32 one ulp up (2^-18): within 2 * 33 * 2^-24 * 32.
        let registry = KernelRegistry::new(gfx)
            .unwrap()
            .with_exec_mode(ExecMode::Both)
            .with_native_perturbation(|id, bytes| {
                if id == KernelId::DmmvF32 {
                    let up = f32::from_bits(32.0f32.to_bits() + 1);
                    bytes[0..4].copy_from_slice(&up.to_le_bytes());
                }
            });
        let mut rig = IsaRig::with_pm4rt_kernels(gfx, registry);
        let args = two_rows(&mut rig);
        rig.run(&[(KernelId::DmmvF32, &args, 1)]).unwrap_or_else(|e| panic!("{gfx}: {e}"));
        // The native (perturbed) bytes are kept.
        assert_eq!(rig.get_f32(0x3000, 2), vec![f32::from_bits(32.0f32.to_bits() + 1), 64.0]);
    }
}

#[test]
fn both_mode_fused_argmax_accepts_a_tie_and_refuses_a_lower_row() {
    for gfx in TARGETS {
        // Rows 0 and 1 are equal (x = 1, all weights 2: y = 64); row 2 is 32.
        let setup = |rig: &mut Rig| {
            let mut w = vec![2.0f32; 64];
            w.extend([1.0f32; 32]);
            rig.put_f32(0x1000, &w);
            rig.put_f32(0x2000, &[1.0; 32]);
            [("w", a(0x1000)), ("x", a(0x2000)), ("out", a(0x3000)), ("rows", 3), ("cols", 32)]
        };
        // The ISA picks row 0 (lowest index of the tie); the perturbed native says row 1.
        let tie = KernelRegistry::new(gfx)
            .unwrap()
            .with_exec_mode(ExecMode::Both)
            .with_native_perturbation(|_, b| b.copy_from_slice(&packed(64.0, 1).to_le_bytes()));
        let mut rig = IsaRig::with_pm4rt_kernels(gfx, tie);
        let args = setup(&mut rig);
        rig.run(&[(KernelId::DmmvF32Argmax, &args, 1)]).unwrap_or_else(|e| panic!("{gfx}: {e}"));
        // Native claims row 2 with 64.0: its own value is 32, below the maximum.
        let wrong = KernelRegistry::new(gfx)
            .unwrap()
            .with_exec_mode(ExecMode::Both)
            .with_native_perturbation(|_, b| b.copy_from_slice(&packed(64.0, 2).to_le_bytes()));
        let mut rig = IsaRig::with_pm4rt_kernels(gfx, wrong);
        let args = setup(&mut rig);
        let e = rig.run(&[(KernelId::DmmvF32Argmax, &args, 1)]).unwrap_err();
        assert!(
            matches!(&e, Error::Dispatch { reason, .. }
                if reason.contains("dmmv_f32_argmax") && reason.contains("row 2")),
            "{gfx}: {e}"
        );
    }
}

#[test]
fn native_mode_interprets_code_that_is_not_a_pm4rt_kernel() {
    for gfx in TARGETS {
        let mut rig = with_mode(gfx, ExecMode::Native);
        // copy_u32 with its `s_nop 0` (BF800000 in llvm-objdump-19's disassembly of both
        // committed code objects) turned into `s_nop 1` (BF800001): the same program, other
        // bytes, so the registry does not know it and the interpreter runs it.
        let k = rig.co.kernel("copy_u32").unwrap().clone();
        let entry = k.entry_va(rig.image_va);
        let code = rig.co.code_bytes(&k).to_vec();
        let at = code
            .chunks_exact(4)
            .position(|c| c == 0xBF80_0000u32.to_le_bytes())
            .unwrap_or_else(|| panic!("{gfx}: copy_u32 has an s_nop 0"));
        rig.sim.memory().write_u32(entry + 4 * at as u64, 0xBF80_0001).unwrap();
        let src: Vec<f32> = (0..300).map(|i| i as f32 * 0.5).collect();
        rig.put_f32(0, &src);
        let args = [("src", a(0)), ("dst", a(0x2000)), ("n", 300)];
        rig.run(&[(KernelId::CopyU32, &args, 2)]).unwrap_or_else(|e| panic!("{gfx}: {e}"));
        assert_eq!(rig.get_f32(0x2000, 300), src, "{gfx}");
    }
}

#[test]
fn a_kernel_that_never_ends_times_out_and_dropping_the_queue_stops_it() {
    for gfx in TARGETS {
        let mut rig = with_mode(gfx, ExecMode::Isa);
        // copy_u32 whose first instruction is `s_branch -1` (BFA0FFFF, llvm-mc-19
        // -show-encoding on gfx1100 and gfx1201): every wave spins at its entry, and the
        // workgroup step bound (2^32 instructions) is minutes away.
        let k = rig.co.kernel("copy_u32").unwrap().clone();
        rig.sim.memory().write_u32(k.entry_va(rig.image_va), 0xBFA0_FFFF).unwrap();
        let args = [("src", a(0)), ("dst", a(0x2000)), ("n", 64)];
        let fence = rig.submit(&[(KernelId::CopyU32, &args, 1)]).unwrap();
        let e = rig.sim.wait_fence(fence, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{gfx}: {e}");
        let t = Instant::now();
        drop(rig);
        assert!(t.elapsed() < Duration::from_secs(2), "{gfx}: drop took {:?}", t.elapsed());
    }
}

#[test]
fn a_step_limit_stops_a_kernel_that_never_ends_with_a_dispatch_error() {
    for gfx in TARGETS {
        let registry = KernelRegistry::new(gfx).unwrap().with_exec_mode(ExecMode::Isa);
        let mut rig = IsaRig::with_pm4rt_kernels(gfx, registry.with_step_limit(1000));
        // copy_u32 starting with `s_branch -1` (BFA0FFFF, as above): each workgroup stops
        // after 1000 instructions instead of 2^32.
        let k = rig.co.kernel("copy_u32").unwrap().clone();
        rig.sim.memory().write_u32(k.entry_va(rig.image_va), 0xBFA0_FFFF).unwrap();
        let args = [("src", a(0)), ("dst", a(0x2000)), ("n", 64)];
        let e = rig.run(&[(KernelId::CopyU32, &args, 1)]).unwrap_err();
        assert!(matches!(e, Error::Dispatch { .. }), "{gfx}: {e}");
        assert!(e.to_string().contains("1000"), "{gfx}: {e}");
    }
}

#[test]
fn exec_mode_names_include_both() {
    assert_eq!(ExecMode::parse("both").unwrap(), ExecMode::Both);
    for name in ExecMode::NAMES {
        assert_eq!(ExecMode::parse(name).unwrap().name(), name);
    }
    let err = ExecMode::parse("fast").unwrap_err();
    assert!(err.to_string().contains("\"both\""), "{err}");
}

#[test]
fn isa_dispatches_are_counted_per_family_and_memory_kind() {
    for gfx in TARGETS {
        let registry = KernelRegistry::new(gfx).unwrap().with_exec_mode(ExecMode::Isa);
        let mut rig = IsaRig::with_pm4rt_kernels(gfx, registry.clone());
        let src: Vec<f32> = (0..300).map(|i| i as f32).collect();
        rig.put_f32(0, &src);
        let args = [("src", a(0)), ("dst", a(0x2000)), ("n", 300)];
        rig.run(&[(KernelId::CopyU32, &args, 2)]).unwrap();
        let last = registry.last_stats().expect("the interpreter ran");
        assert_eq!(last.kernel, "copy_u32");
        let s = &last.stats;
        // 2 workgroups of 256 lanes = 16 waves. copy_u32 (llvm-objdump-19 of both code
        // objects) does one global_load_b32 and one global_store_b32 per wave with an item
        // below n after its v_cmpx; waves 0..9 have some (9 full, the 10th 12 lanes: 300 =
        // 9 * 32 + 12), the other 6 branch over them (s_cbranch_execz).
        assert_eq!((s.workgroups, s.waves), (2, 16), "{gfx}");
        assert_eq!((s.global.loads, s.global.stores), (10, 10), "{gfx}");
        assert_eq!((s.global.load_bytes, s.global.store_bytes), (1200, 1200), "{gfx}");
        assert_eq!(s.of(pm4rt_sim::isa::Family::Global), 20, "{gfx}");
        assert_eq!(s.lds, Default::default(), "{gfx}: copy_u32 uses no LDS");
        assert!(s.of(pm4rt_sim::isa::Family::Sopp) >= 16, "{gfx}: every wave ends");
        let f = s.active_lane_fraction();
        assert!(f > 0.0 && f < 1.0, "{gfx}: partial waves lower the fraction: {f}");
        assert_eq!(registry.total_stats(), last.stats, "{gfx}: one dispatch so far");
        registry.reset_stats();
        assert_eq!(registry.last_stats(), None);
    }
}
