//! The instructions the DMMV kernels of the block formats added to the ISA interpreter, each
//! run on both targets from bytes that `llvm-mc-19 -triple=amdgcn-amd-amdhsa -mcpu=<target>
//! -show-encoding` printed for the assembly quoted next to them, against values the test
//! derives by hand from the ISA's definitions (AMD "RDNA3 / RDNA4 Instruction Set
//! Architecture", per-opcode descriptions), never from the interpreter: NaN, denormal f16,
//! overflow and wrap-around cases included.

use pm4rt_core::BoHandle;
use pm4rt_sim::isa::{run_workgroup, Program, Target, Wave, WaveLaunch};
use pm4rt_sim::memory::{GpuMemory, Perms};

const CODE_VA: u64 = 0x7000_0000;
const TARGETS: [Target; 2] = [Target::Gfx12, Target::Gfx11];
/// `s_endpgm` (the same on both targets).
const ENDPGM: [u8; 4] = [0x00, 0x00, 0xb0, 0xbf];

fn wave(target: Target) -> Wave {
    Wave::launch(&WaveLaunch {
        target,
        user_sgprs: &[],
        rsrc2: 0,
        workgroup: [0; 3],
        first_item: 0,
        workgroup_size: [32, 1, 1],
    })
}

/// Run `code` (then `s_endpgm`) on one wave prepared by `setup`; the wave afterwards.
fn run(target: Target, code: &[u8], mem: &GpuMemory, setup: impl FnOnce(&mut Wave)) -> Wave {
    let mut bytes = code.to_vec();
    bytes.extend_from_slice(&ENDPGM);
    let program = Program::decode(target, &bytes).unwrap();
    let mut waves = vec![wave(target)];
    setup(&mut waves[0]);
    run_workgroup(&program, &mut waves, mem, &mut [], CODE_VA, 100)
        .unwrap_or_else(|e| panic!("{target:?}: {e}"));
    waves.pop().unwrap()
}

/// Run a VALU instruction with `v0`, `v2`, `v3` of lane `l` set to `inputs[l]`; `v1` of
/// every lane afterwards.
fn valu(target: Target, code: &[u8], inputs: &[[u32; 3]]) -> Vec<u32> {
    let mem = GpuMemory::new();
    let w = run(target, code, &mem, |w| {
        for (l, &[a, b, c]) in inputs.iter().enumerate() {
            w.vgpr[0][l] = a;
            w.vgpr[2][l] = b;
            w.vgpr[3][l] = c;
        }
    });
    w.vgpr[1][..inputs.len()].to_vec()
}

fn check(name: &str, code: &[u8], cases: &[([u32; 3], u32)]) {
    let inputs: Vec<[u32; 3]> = cases.iter().map(|c| c.0).collect();
    for target in TARGETS {
        let got = valu(target, code, &inputs);
        for (l, (input, want)) in cases.iter().enumerate() {
            assert_eq!(got[l], *want, "{target:?} {name} {input:#x?}: got {:#x}", got[l]);
        }
    }
}

#[test]
fn v_cvt_f32_f16_converts_exactly_including_denormals_infinities_and_nans() {
    // v_cvt_f32_f16_e32 v1, v0: [0x00,0x17,0x02,0x7e]. Only v0[15:0] is read.
    check(
        "v_cvt_f32_f16",
        &[0x00, 0x17, 0x02, 0x7e],
        &[
            ([0x3c00, 0, 0], 0x3f80_0000),      // 1.0
            ([0xdead_3c00, 0, 0], 0x3f80_0000), // high half ignored
            ([0xc000, 0, 0], 0xc000_0000),      // -2.0
            ([0x7bff, 0, 0], 0x477f_e000),      // 65504, the largest finite f16
            ([0x0001, 0, 0], 0x3380_0000),      // 2^-24, the smallest denormal
            ([0x03ff, 0, 0], 0x387f_c000),      // 1023 * 2^-24, the largest denormal
            ([0x0200, 0, 0], 0x3800_0000),      // 2^-15
            ([0x8000, 0, 0], 0x8000_0000),      // -0.0
            ([0x7c00, 0, 0], 0x7f80_0000),      // +inf
            ([0xfc00, 0, 0], 0xff80_0000),      // -inf
            ([0x7e00, 0, 0], 0x7fc0_0000),      // quiet NaN
            ([0xfe01, 0, 0], 0xffc0_2000),      // quiet NaN, payload 1 kept (shifted by 13)
            ([0x7d00, 0, 0], 0x7fe0_0000),      // signalling NaN: quieted, payload kept
        ],
    );
}

#[test]
fn v_cvt_f32_ubyte0_converts_the_low_byte() {
    // v_cvt_f32_ubyte0_e32 v1, v0: [0x00,0x23,0x02,0x7e].
    check(
        "v_cvt_f32_ubyte0",
        &[0x00, 0x23, 0x02, 0x7e],
        &[
            ([0x1234_5678, 0, 0], 0x42f0_0000), // 0x78 = 120.0
            ([0xff, 0, 0], 0x437f_0000),        // 255.0
            ([0xffff_ff00, 0, 0], 0),           // 0.0
        ],
    );
}

#[test]
fn v_sub_f32_subtracts_with_ieee_specials_and_overflow() {
    // v_sub_f32_e32 v1, v0, v2: [0x00,0x05,0x02,0x08] (D = S0 - S1).
    check(
        "v_sub_f32",
        &[0x00, 0x05, 0x02, 0x08],
        &[
            ([0x3fc0_0000, 0x3e80_0000, 0], 0x3fa0_0000), // 1.5 - 0.25 = 1.25
            ([0x7f7f_ffff, 0xff7f_ffff, 0], 0x7f80_0000), // MAX - (-MAX) overflows to +inf
            ([0x3f80_0000, 0x3f80_0000, 0], 0),           // 1 - 1 = +0
            ([0x0000_0001, 0x0000_0002, 0], 0x8000_0001), // denormals kept: -2^-149
        ],
    );
    for target in TARGETS {
        // inf - inf and x - NaN are NaN (any payload).
        let got = valu(
            target,
            &[0x00, 0x05, 0x02, 0x08],
            &[[0x7f80_0000, 0x7f80_0000, 0], [0x4040_0000, 0x7fc0_0000, 0]],
        );
        assert!(got.iter().all(|&v| f32::from_bits(v).is_nan()), "{target:?}: {got:#x?}");
    }
}

#[test]
fn v_subrev_nc_u32_wraps() {
    // v_subrev_nc_u32_e32 v1, 32, v0: [0xa0,0x00,0x02,0x4e] (D = S1 - S0 = v0 - 32).
    check(
        "v_subrev_nc_u32",
        &[0xa0, 0x00, 0x02, 0x4e],
        &[([100, 0, 0], 68), ([5, 0, 0], 0xffff_ffe5), ([32, 0, 0], 0)],
    );
}

#[test]
fn v_and_or_b32_masks_then_merges() {
    // v_and_or_b32 v1, v0, 15, v2: [0x01,0x00,0x57,0xd6,0x00,0x1f,0x09,0x04].
    check(
        "v_and_or_b32",
        &[0x01, 0x00, 0x57, 0xd6, 0x00, 0x1f, 0x09, 0x04],
        &[([0xabcd_ef5a, 0x1230, 0], 0x123a), ([0xffff_ffff, 0xf000_0000, 0], 0xf000_000f)],
    );
}

#[test]
fn v_perm_b32_selects_bytes_sign_fills_and_constants() {
    // v_perm_b32 v1, v0, v2, v3: [0x01,0x00,0x44,0xd6,0x00,0x05,0x0e,0x04]. The 8 bytes are
    // {S0 = v0 (high), S1 = v2 (low)} = 0xaabbccdd_11223344.
    check(
        "v_perm_b32",
        &[0x01, 0x00, 0x44, 0xd6, 0x00, 0x05, 0x0e, 0x04],
        &[
            // selectors 0, 1, 4, 5: bytes 0x44, 0x33, 0xdd, 0xcc
            ([0xaabb_ccdd, 0x1122_3344, 0x0504_0100], 0xccdd_3344),
            // 8: sign of byte 1 (0x33: 0); 11: sign of byte 7 (0xaa: 0xff); 13: 0xff; 12: 0
            ([0xaabb_ccdd, 0x1122_3344, 0x0c0d_0b08], 0x00ff_ff00),
            // 9: sign of byte 3 (0x11: 0); 10: sign of byte 5 (0xcc: 0xff); 0xff: 0xff; 7: 0xaa
            ([0xaabb_ccdd, 0x1122_3344, 0x07ff_0a09], 0xaaff_ff00),
        ],
    );
}

#[test]
fn v_mul_u32_u24_and_hi_use_the_low_24_bits() {
    // v_mul_u32_u24_e32 v1, v0, v2: [0x00,0x05,0x02,0x16];
    // v_mul_hi_u32_u24_e32 v1, v0, v2: [0x00,0x05,0x02,0x18].
    // 0xff_ffff * 0xff_ffff = 0xffff_fe00_0001; bits above 23 of the inputs are ignored.
    let cases = [[0xff_ffff, 0xff_ffff, 0], [0xab00_00b0, 0x1234, 0], [0x100_0000, 7, 0]];
    check(
        "v_mul_u32_u24",
        &[0x00, 0x05, 0x02, 0x16],
        &[(cases[0], 0xfe00_0001), (cases[1], 0xb0 * 0x1234), (cases[2], 0)],
    );
    check(
        "v_mul_hi_u32_u24",
        &[0x00, 0x05, 0x02, 0x18],
        &[(cases[0], 0xffff), (cases[1], 0), (cases[2], 0)],
    );
}

#[test]
fn v_pk_lshrrev_b16_shifts_each_half_by_its_own_amount() {
    // v_pk_lshrrev_b16 v1, v0, v2: [0x01,0x40,0x05,0xcc,0x00,0x05,0x02,0x18] (op_sel:[0,0]
    // op_sel_hi:[1,1]): D.lo = v2.lo >> v0.lo[3:0], D.hi = v2.hi >> v0.hi[3:0].
    check(
        "v_pk_lshrrev_b16",
        &[0x01, 0x40, 0x05, 0xcc, 0x00, 0x05, 0x02, 0x18],
        &[
            ([0x0004_0008, 0xf000_ff00, 0], 0x0f00_00ff),
            // shift amounts use bits [3:0] only: 0x13 -> 3, 0x10 -> 0
            ([0x0010_0013, 0x8001_0010, 0], 0x8001_0002),
        ],
    );
}

#[test]
fn s_mulk_i32_multiplies_by_the_sign_extended_immediate() {
    // s_mulk_i32 s0, 0xfff0: [0xf0,0xff,0x00,0xb8] (D = D * sign_extend(0xfff0) = D * -16).
    for target in TARGETS {
        for (s0, want) in [(3u32, (-48i32) as u32), (0x1000_0000, 0), (0xffff_ffff, 16)] {
            let w = run(target, &[0xf0, 0xff, 0x00, 0xb8], &GpuMemory::new(), |w| {
                w.set_s(0, s0);
                w.scc = true;
            });
            assert_eq!(w.s(0), want, "{target:?} {s0:#x}");
            assert!(w.scc, "{target:?}: SCC is not written");
        }
    }
}

#[test]
fn s_and_not1_saveexec_b32_saves_exec_and_keeps_s0_and_not_exec() {
    // s_and_not1_saveexec_b32 s1, s2: [0x02,0x30,0x81,0xbe]:
    // s1 = EXEC; EXEC = s2 & ~EXEC; SCC = EXEC != 0.
    for target in TARGETS {
        for (exec, s2, want_exec) in [(0x0000_ffffu32, 0x00ff_00ffu32, 0x00ff_0000u32), (1, 1, 0)] {
            let w = run(target, &[0x02, 0x30, 0x81, 0xbe], &GpuMemory::new(), |w| {
                w.set_exec(exec);
                w.set_s(2, s2);
            });
            assert_eq!((w.s(1), w.exec(), w.scc), (exec, want_exec, want_exec != 0), "{target:?}");
        }
    }
}

#[test]
fn global_load_d16_writes_one_half_and_keeps_the_other() {
    const BUF: u64 = 0x2000_0000;
    // global_load_d16_hi_b16 v1, v[4:5], off offset:2, then global_load_d16_b16 v1, v[4:5],
    // off (gfx12 and gfx11 encodings differ).
    let code = |target: Target| -> Vec<u8> {
        match target {
            Target::Gfx12 => vec![
                0x7c, 0xc0, 0x08, 0xee, 0x01, 0x00, 0x00, 0x00, 0x04, 0x02, 0x00, 0x00, //
                0x7c, 0x00, 0x08, 0xee, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
            ],
            Target::Gfx11 => vec![
                0x02, 0x00, 0x8e, 0xdc, 0x04, 0x00, 0x7c, 0x01, //
                0x00, 0x00, 0x82, 0xdc, 0x04, 0x00, 0x7c, 0x01,
            ],
        }
    };
    for target in TARGETS {
        let mem = GpuMemory::new();
        mem.create_bo(BoHandle(1), 4096).unwrap();
        mem.map(BoHandle(1), BUF, Perms::ALL).unwrap();
        let bytes: Vec<u8> = (0..128u32).map(|i| (i * 7 + 1) as u8).collect();
        mem.write(BUF, &bytes).unwrap();
        // Only lanes 0..3 run; lane l reads at BUF + 4 l. Disabled lanes keep v1.
        let w = run(target, &code(target), &mem, |w| {
            w.set_exec(0xf);
            for l in 0..32 {
                let a = BUF + 4 * l as u64;
                w.vgpr[4][l] = a as u32;
                w.vgpr[5][l] = (a >> 32) as u32;
                w.vgpr[1][l] = 0xdead_beef;
            }
        });
        for l in 0..32usize {
            let half =
                |o: usize| u32::from(bytes[4 * l + o]) | u32::from(bytes[4 * l + o + 1]) << 8;
            let want = if l < 4 { half(0) | half(2) << 16 } else { 0xdead_beef };
            assert_eq!(w.vgpr[1][l], want, "{target:?} lane {l}");
        }
    }
}
