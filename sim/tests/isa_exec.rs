//! The ISA interpreter runs committed machine code: pm4rt's `copy_u32` on both targets, with a
//! partial last workgroup, against values the test computes itself; faults and unimplemented
//! instructions are typed errors.

use pm4rt_core::code_object::{CodeObject, Kernel};
use pm4rt_core::{BoHandle, Error, GfxTarget};
use pm4rt_sim::isa::{run_workgroup, ExecError, Program, Target, Wave, WaveLaunch};
use pm4rt_sim::kernels::dmmv::{dequantize_row, dmmv, WeightType};
use pm4rt_sim::memory::{GpuMemory, Perms};

const TARGETS: [(&str, GfxTarget, Target); 2] = [
    ("gfx1201", GfxTarget::Gfx1201, Target::Gfx12),
    ("gfx1100", GfxTarget::Gfx1100, Target::Gfx11),
];
const CODE_VA: u64 = 0x7000_0000;
const WG: u32 = 256;

fn load(mcpu: &str, gfx: GfxTarget) -> CodeObject {
    CodeObject::load(pm4rt_kernels::code_object_by_name(mcpu).unwrap(), gfx).unwrap()
}

fn arg_offset(k: &Kernel, name: &str) -> u64 {
    u64::from(k.args.iter().find(|a| a.name.as_deref() == Some(name)).unwrap().offset)
}

fn bo(mem: &GpuMemory, id: u32, va: u64, size: u64) {
    mem.create_bo(BoHandle(id), size).unwrap();
    mem.map(BoHandle(id), va, Perms::ALL).unwrap();
}

/// Run every wave of a 1-D grid of `groups` workgroups; the first error stops.
fn run_grid(
    target: Target,
    program: &Program,
    k: &Kernel,
    mem: &GpuMemory,
    kernarg_va: u64,
    groups: u32,
) -> Result<(), ExecError> {
    let user_count = (k.descriptor.compute_pgm_rsrc2 >> 1) & 0x1f;
    let mut user = vec![0u32; user_count as usize];
    user[0] = kernarg_va as u32;
    user[1] = (kernarg_va >> 32) as u32;
    for g in 0..groups {
        let mut waves: Vec<Wave> = (0..WG)
            .step_by(32)
            .map(|first| {
                Wave::launch(&WaveLaunch {
                    target,
                    user_sgprs: &user,
                    rsrc2: k.descriptor.compute_pgm_rsrc2,
                    workgroup: [g, 0, 0],
                    first_item: first,
                    workgroup_size: [WG, 1, 1],
                })
            })
            .collect();
        let mut lds = vec![0u8; k.descriptor.group_segment_fixed_size as usize];
        run_workgroup(program, &mut waves, mem, &mut lds, CODE_VA, 1_000_000)?;
    }
    Ok(())
}

#[test]
fn copy_u32_machine_code_copies_n_elements_on_both_targets() {
    for (mcpu, gfx, target) in TARGETS {
        let co = load(mcpu, gfx);
        let k = co.kernel("copy_u32").unwrap();
        let program = Program::decode(target, co.code_bytes(k)).unwrap();
        let mem = GpuMemory::new();
        let (kernarg, src, dst) = (0x1000_0000u64, 0x2000_0000u64, 0x3000_0000u64);
        bo(&mem, 1, kernarg, 4096);
        bo(&mem, 2, src, 4096);
        bo(&mem, 3, dst, 4096);
        let n = 700u32; // three workgroups, the last one partial
        let input: Vec<u32> = (0..1024).map(|i| 0x9E37_79B9u32.wrapping_mul(i + 1)).collect();
        let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
        mem.write(src, &bytes).unwrap();
        mem.write(dst, &[0xAB; 4096]).unwrap();
        mem.write_u64(kernarg + arg_offset(k, "src"), src).unwrap();
        mem.write_u64(kernarg + arg_offset(k, "dst"), dst).unwrap();
        mem.write_u32(kernarg + arg_offset(k, "n"), n).unwrap();
        run_grid(target, &program, k, &mem, kernarg, n.div_ceil(WG)).unwrap();
        let out = mem.read_dwords(dst, 1024).unwrap();
        for i in 0..1024usize {
            let want = if i < n as usize { input[i] } else { 0xABAB_ABAB };
            assert_eq!(out[i], want, "{mcpu}: dst[{i}]");
        }
    }
}

#[test]
fn an_unmapped_source_is_a_fault_at_its_va() {
    for (mcpu, gfx, target) in TARGETS {
        let co = load(mcpu, gfx);
        let k = co.kernel("copy_u32").unwrap();
        let program = Program::decode(target, co.code_bytes(k)).unwrap();
        let mem = GpuMemory::new();
        let (kernarg, src, dst) = (0x1000_0000u64, 0x2000_0000u64, 0x3000_0000u64);
        bo(&mem, 1, kernarg, 4096);
        bo(&mem, 3, dst, 4096);
        mem.write_u64(kernarg + arg_offset(k, "src"), src).unwrap();
        mem.write_u64(kernarg + arg_offset(k, "dst"), dst).unwrap();
        mem.write_u32(kernarg + arg_offset(k, "n"), 1).unwrap();
        let err = run_grid(target, &program, k, &mem, kernarg, 1).unwrap_err();
        assert!(
            matches!(err, ExecError::Memory(Error::Fault { va }) if va == src),
            "{mcpu}: {err}"
        );
    }
}

#[test]
fn argmax_f32_machine_code_agrees_with_the_native_kernel_on_both_targets() {
    // Values with ties, negatives, a NaN and infinities; n not a multiple of the workgroup.
    let n = 1000usize;
    let mut x: Vec<f32> = (0..n)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / 65536.0 - 100.0)
        .collect();
    x[17] = f32::NAN;
    x[400] = f32::NEG_INFINITY;
    x[999] = x[3];
    for (mcpu, gfx, target) in TARGETS {
        for len in [1usize, 31, 256, 257, n] {
            let co = load(mcpu, gfx);
            let k = co.kernel("argmax_f32").unwrap();
            let program = Program::decode(target, co.code_bytes(k)).unwrap();
            let mem = GpuMemory::new();
            let (kernarg, xs, out) = (0x1000_0000u64, 0x2000_0000u64, 0x3000_0000u64);
            bo(&mem, 1, kernarg, 4096);
            bo(&mem, 2, xs, 4096);
            bo(&mem, 3, out, 4096);
            let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
            mem.write(xs, &bytes).unwrap();
            mem.write_u64(kernarg + arg_offset(k, "x"), xs).unwrap();
            mem.write_u32(kernarg + arg_offset(k, "n"), len as u32).unwrap();
            mem.write_u64(kernarg + arg_offset(k, "out"), out).unwrap();
            run_grid(target, &program, k, &mem, kernarg, (len as u32).div_ceil(WG)).unwrap();
            let native = pm4rt_sim::kernels::argmax::argmax_f32(&x, len).unwrap();
            assert_eq!(mem.read_u64(out).unwrap(), native, "{mcpu}: argmax of {len}");
        }
    }
}

#[test]
fn an_unimplemented_instruction_names_mnemonic_and_va() {
    // `s_nop 0; v_sin_f32_e32 v1, v2; s_endpgm`: encodings from llvm-mc-19 -show-encoding
    // (the same on gfx1100 and gfx1201); v_sin_f32 is not implemented.
    let code: Vec<u8> =
        [0xBF80_0000u32, 0x7E02_6B02, 0xBFB0_0000].iter().flat_map(|w| w.to_le_bytes()).collect();
    for (mcpu, _, target) in TARGETS {
        let program = Program::decode(target, &code).unwrap();
        let mem = GpuMemory::new();
        let mut waves = vec![Wave::launch(&WaveLaunch {
            target,
            user_sgprs: &[],
            rsrc2: 0,
            workgroup: [0; 3],
            first_item: 0,
            workgroup_size: [32, 1, 1],
        })];
        let err = run_workgroup(&program, &mut waves, &mem, &mut [], CODE_VA, 100).unwrap_err();
        assert!(
            matches!(err, ExecError::Unimplemented { mnemonic: "v_sin_f32_e32", va } if va == CODE_VA + 4),
            "{mcpu}: {err}"
        );
    }
}

#[test]
fn a_kernel_that_never_ends_stops_at_the_step_limit() {
    // `s_branch -1` (0xBFA0FFFF: jumps to itself), from llvm-mc-19 -show-encoding.
    let code = 0xBFA0_FFFFu32.to_le_bytes();
    for (mcpu, _, target) in TARGETS {
        let program = Program::decode(target, &code).unwrap();
        let mut waves = vec![Wave::new()];
        let err = run_workgroup(&program, &mut waves, &GpuMemory::new(), &mut [], CODE_VA, 1000)
            .unwrap_err();
        assert!(matches!(err, ExecError::StepLimit(1000)), "{mcpu}: {err}");
    }
}

#[test]
fn rms_norm_machine_code_agrees_with_the_native_kernel_on_both_targets() {
    let mut rng = Rng(0xABCD_EF01_2345_6789);
    for (mcpu, gfx, target) in TARGETS {
        let co = load(mcpu, gfx);
        let k = co.kernel("rms_norm_f32").unwrap();
        let program = Program::decode(target, co.code_bytes(k)).unwrap();
        for n in [1usize, 31, 256, 700, 1000] {
            let x: Vec<f32> = (0..n).map(|_| rng.f32() * 4.0).collect();
            let weight: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            let eps = 1e-5f32;
            let mem = GpuMemory::new();
            let (kernarg, xv, wv, yv) = (0x1000_0000u64, 0x2000_0000u64, 0x3000_0000, 0x4000_0000);
            bo(&mem, 1, kernarg, 4096);
            bo(&mem, 2, xv, 4096);
            bo(&mem, 3, wv, 4096);
            bo(&mem, 4, yv, 4096);
            mem.write(xv, &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()).unwrap();
            mem.write(wv, &weight.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>())
                .unwrap();
            mem.write_u64(kernarg + arg_offset(k, "x"), xv).unwrap();
            mem.write_u64(kernarg + arg_offset(k, "weight"), wv).unwrap();
            mem.write_u64(kernarg + arg_offset(k, "y"), yv).unwrap();
            mem.write_u32(kernarg + arg_offset(k, "n"), n as u32).unwrap();
            mem.write_u32(kernarg + arg_offset(k, "eps"), eps.to_bits()).unwrap();
            run_grid(target, &program, k, &mem, kernarg, 1)
                .unwrap_or_else(|e| panic!("{mcpu} rms_norm n={n}: {e}"));
            let got = mem.read_dwords(yv, n).unwrap();
            let mut native = vec![0f32; n];
            pm4rt_sim::kernels::rms_norm_f32(&x, &weight, &mut native, n, eps).unwrap();
            // Any summation order of the n squares is within (n + 1) 2^-24 relative; the
            // division, square root and the per-element divide and multiply add a few
            // roundings (sim/src/kernels/norm.rs), here 8 ulp.
            let rel = ((n + 1) as f64 + 8.0) / 16_777_216.0;
            for i in 0..n {
                let (a, b) = (f64::from(f32::from_bits(got[i])), f64::from(native[i]));
                assert!(
                    (a - b).abs() <= rel * b.abs() + f64::from(f32::MIN_POSITIVE),
                    "{mcpu} n={n} y[{i}]: isa {a} native {b}"
                );
            }
        }
    }
}

/// A deterministic pseudo-random generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// Weights of `rows` x `cols` in `ty`'s layout: random values; quantized blocks get a
/// finite f16 scale in [2^-8, 2^-1] so every product is finite.
fn random_weights(rng: &mut Rng, ty: WeightType, rows: usize, cols: usize) -> Vec<u8> {
    let bytes = ty.row_bytes(cols).unwrap() * rows;
    match ty {
        WeightType::F32 => (0..rows * cols).flat_map(|_| rng.f32().to_le_bytes()).collect(),
        _ => {
            let block = ty.row_bytes(32).unwrap();
            let mut w: Vec<u8> = (0..bytes).map(|_| rng.next() as u8).collect();
            for b in w.chunks_mut(block) {
                // f16: sign 0, exponent 7..=14 (2^-8..2^-1), random mantissa.
                let h = (((7 + rng.next() % 8) << 10) | (rng.next() % 1024)) as u16;
                b[..2].copy_from_slice(&h.to_le_bytes());
            }
            w
        }
    }
}

#[test]
fn dmmv_machine_code_agrees_with_the_native_kernels_within_their_bound() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for (mcpu, gfx, target) in TARGETS {
        let co = load(mcpu, gfx);
        for (name, ty) in [
            ("dmmv_f32", WeightType::F32),
            ("dmmv_q4_0", WeightType::Q4_0),
            ("dmmv_q8_0", WeightType::Q8_0),
        ] {
            let k = co.kernel(name).unwrap();
            let program = Program::decode(target, co.code_bytes(k)).unwrap();
            for _ in 0..3 {
                let rows = 1 + (rng.next() % 40) as usize;
                let cols = 32 * (1 + (rng.next() % 6) as usize);
                let w = random_weights(&mut rng, ty, rows, cols);
                let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
                let mem = GpuMemory::new();
                let (kernarg, wv, xv, yv) =
                    (0x1000_0000u64, 0x2000_0000u64, 0x3000_0000, 0x4000_0000);
                bo(&mem, 1, kernarg, 4096);
                bo(&mem, 2, wv, w.len() as u64);
                bo(&mem, 3, xv, 4096);
                bo(&mem, 4, yv, 4096);
                mem.write(wv, &w).unwrap();
                mem.write(xv, &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()).unwrap();
                mem.write_u64(kernarg + arg_offset(k, "w"), wv).unwrap();
                mem.write_u64(kernarg + arg_offset(k, "x"), xv).unwrap();
                mem.write_u64(kernarg + arg_offset(k, "y"), yv).unwrap();
                mem.write_u32(kernarg + arg_offset(k, "rows"), rows as u32).unwrap();
                mem.write_u32(kernarg + arg_offset(k, "cols"), cols as u32).unwrap();
                // 8 rows per workgroup (one per wave).
                run_grid(target, &program, k, &mem, kernarg, (rows as u32).div_ceil(8))
                    .unwrap_or_else(|e| panic!("{mcpu} {name} {rows}x{cols}: {e}"));
                let got = mem.read_dwords(yv, rows).unwrap();
                let mut native = vec![0f32; rows];
                dmmv(ty, &w, &x, &mut native, rows, cols).unwrap();
                let row_bytes = ty.row_bytes(cols).unwrap();
                for r in 0..rows {
                    let mut deq = vec![0f32; cols];
                    dequantize_row(ty, &w[r * row_bytes..], cols, &mut deq).unwrap();
                    let abs: f64 = deq.iter().zip(&x).map(|(a, b)| f64::from(a * b).abs()).sum();
                    // The GPU-vs-simulator bound of sim/src/kernels/dmmv.rs.
                    let bound = (cols + 1) as f64 * abs / 16_777_216.0;
                    let diff = (f64::from(f32::from_bits(got[r])) - f64::from(native[r])).abs();
                    assert!(
                        diff <= bound,
                        "{mcpu} {name} {rows}x{cols} row {r}: isa {} native {} (bound {bound:e})",
                        f32::from_bits(got[r]),
                        native[r]
                    );
                }
            }
        }
    }
}

#[test]
fn fused_dmmv_argmax_machine_code_picks_a_maximal_row_on_both_targets() {
    let mut rng = Rng(0x0DDB_A11C_AFE0_F00D);
    for (mcpu, gfx, target) in TARGETS {
        let co = load(mcpu, gfx);
        for (name, ty) in [
            ("dmmv_f32_argmax", WeightType::F32),
            ("dmmv_q4_0_argmax", WeightType::Q4_0),
            ("dmmv_q8_0_argmax", WeightType::Q8_0),
        ] {
            let k = co.kernel(name).unwrap();
            let program = Program::decode(target, co.code_bytes(k)).unwrap();
            for _ in 0..3 {
                let rows = 1 + (rng.next() % 40) as usize;
                let cols = 32 * (1 + (rng.next() % 6) as usize);
                let w = random_weights(&mut rng, ty, rows, cols);
                let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
                let mem = GpuMemory::new();
                let (kernarg, wv, xv, out) =
                    (0x1000_0000u64, 0x2000_0000u64, 0x3000_0000, 0x4000_0000);
                bo(&mem, 1, kernarg, 4096);
                bo(&mem, 2, wv, w.len() as u64);
                bo(&mem, 3, xv, 4096);
                bo(&mem, 4, out, 4096);
                mem.write(wv, &w).unwrap();
                mem.write(xv, &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()).unwrap();
                mem.write_u64(kernarg + arg_offset(k, "w"), wv).unwrap();
                mem.write_u64(kernarg + arg_offset(k, "x"), xv).unwrap();
                mem.write_u64(kernarg + arg_offset(k, "out"), out).unwrap();
                mem.write_u32(kernarg + arg_offset(k, "rows"), rows as u32).unwrap();
                mem.write_u32(kernarg + arg_offset(k, "cols"), cols as u32).unwrap();
                run_grid(target, &program, k, &mem, kernarg, (rows as u32).div_ceil(8))
                    .unwrap_or_else(|e| panic!("{mcpu} {name} {rows}x{cols}: {e}"));
                let (row, value) = pm4rt_sim::kernels::unpack(mem.read_u64(out).unwrap());
                let mut y = vec![0f32; rows];
                dmmv(ty, &w, &x, &mut y, rows, cols).unwrap();
                let best = y.iter().copied().fold(f32::MIN, f32::max);
                let row_bytes = ty.row_bytes(cols).unwrap();
                let bound = |r: usize| {
                    let mut deq = vec![0f32; cols];
                    dequantize_row(ty, &w[r * row_bytes..], cols, &mut deq).unwrap();
                    let abs: f64 = deq.iter().zip(&x).map(|(a, b)| f64::from(a * b).abs()).sum();
                    (cols + 1) as f64 * abs / 16_777_216.0
                };
                let r = row as usize;
                assert!(r < rows, "{mcpu} {name}: row {r} of {rows}");
                assert!(
                    (f64::from(value) - f64::from(y[r])).abs() <= bound(r),
                    "{mcpu} {name}: row {r} value {value} vs native {}",
                    y[r]
                );
                let best_row = y.iter().position(|&v| v == best).unwrap();
                assert!(
                    f64::from(best) - f64::from(y[r]) <= bound(r) + bound(best_row),
                    "{mcpu} {name} {rows}x{cols}: picked row {r} ({}), native max {best} at {best_row}",
                    y[r]
                );
            }
        }
    }
}
