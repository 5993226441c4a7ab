//! Edge cases of the VALU families the corpus needs (f16 arithmetic and conversions, high
//! 32-bit products, wrapping subtraction, clz, packed f16, DPP16), run on one wave with lane
//! 31 masked off in EXEC. The machine code is llvm-mc-19 -show-encoding output (identical for
//! gfx1201 and gfx1100); expected values are written from IEEE 754 binary16 and the integer
//! definitions, never taken from the interpreter.

use pm4rt_sim::isa::{run_workgroup, ExecError, Program, Target, Wave};
use pm4rt_sim::memory::GpuMemory;

const CODE_VA: u64 = 0x7000_0000;
const SENTINEL: u32 = 0xAAAA_AAAA;
/// Lane 31 is inactive.
const EXEC: u32 = 0x7FFF_FFFF;

/// The snippet, in order:
/// v_add_f16_e32 v2, v0, v1; v_mul_f16_e32 v3, v0, v1; v_cvt_f32_f16_e32 v4, v0;
/// v_cvt_f16_f32_e32 v5, v6; v_mul_hi_u32 v7, v8, v9; v_mul_hi_i32 v10, v8, v9;
/// v_sub_nc_u32_e32 v11, v8, v9; v_clz_i32_u32_e32 v12, v8; v_pk_add_f16 v13, v0, v1;
/// v_mov_b32_dpp v14, v8 row_shr:1 row_mask:0xf bank_mask:0xf bound_ctrl:1;
/// v_mov_b32_dpp v15, v8 row_xmask:1 row_mask:0x5 bank_mask:0xf; s_endpgm.
const SNIPPET: &[u8] = &[
    0x00, 0x03, 0x04, 0x64, 0x00, 0x03, 0x06, 0x6a, 0x00, 0x17, 0x08, 0x7e, 0x06, 0x15, 0x0a, 0x7e,
    0x07, 0x00, 0x2d, 0xd7, 0x08, 0x13, 0x02, 0x00, 0x0a, 0x00, 0x2e, 0xd7, 0x08, 0x13, 0x02, 0x00,
    0x08, 0x13, 0x16, 0x4c, 0x08, 0x73, 0x18, 0x7e, 0x0d, 0x40, 0x0f, 0xcc, 0x00, 0x03, 0x02, 0x18,
    0xfa, 0x02, 0x1c, 0x7e, 0x08, 0x11, 0x09, 0xff, 0xfa, 0x02, 0x1e, 0x7e, 0x08, 0x61, 0x01, 0x5f,
    0x00, 0x00, 0xb0, 0xbf,
];

/// Per lane: (x, y) binary16 in the low halves of v0, v1, with the expected x + y and x * y.
/// Lanes 8.. use (1.0, 1.0): 2.0 and 1.0.
const F16_CASES: [(u16, u16, u16, u16); 8] = [
    // Smallest denormal twice: 2^-23 exactly; product 2^-48 rounds to +0.
    (0x0001, 0x0001, 0x0002, 0x0000),
    // Largest finite twice: both overflow to +inf.
    (0x7bff, 0x7bff, 0x7c00, 0x7c00),
    // A quiet NaN operand gives a quiet NaN.
    (0x7e00, 0x3c00, 0x7e00, 0x7e00),
    // 2^-24 * 0.5 = 2^-25, halfway between 0 and 2^-24: ties to even, +0; the sum rounds to 0.5.
    (0x0001, 0x3800, 0x3800, 0x0000),
    // 3 * 2^-24 * 0.5 = 1.5 * 2^-24: tie between 1 and 2 units, even is 2 (0x0002); the sum
    // 0.5 + 3 * 2^-24 rounds to 0.5.
    (0x0003, 0x3800, 0x3800, 0x0002),
    // 1 + (-1) is +0 when rounding to nearest; 1 * -1 = -1.
    (0x3c00, 0xbc00, 0x0000, 0xbc00),
    // Largest denormal + smallest denormal = smallest normal 2^-14; the product underflows.
    (0x03ff, 0x0001, 0x0400, 0x0000),
    // -65504 + 2 = -65502 rounds to -65504 (ulp 32); -65504 * 2 overflows to -inf.
    (0xfbff, 0x4000, 0xfbff, 0xfc00),
];

/// Per lane: f32 input of v_cvt_f16_f32 and the expected binary16.
fn cvt_cases() -> [(f32, u16); 8] {
    [
        (65519.0, 0x7bff),                         // below the rounding midpoint of 65504
        (65520.0, 0x7c00),                         // the midpoint ties to even: +inf
        (2f32.powi(-25), 0x0000),                  // half of the smallest denormal: +0
        (2f32.powi(-25) + 2f32.powi(-40), 0x0001), // just above: the smallest denormal
        (f32::from_bits(0x7fc0_0000), 0x7e00),     // quiet NaN
        (-0.0, 0x8000),                            // signed zero
        (1.0 + 2f32.powi(-11), 0x3c00),            // tie: even mantissa 0
        (1.0 + 3.0 * 2f32.powi(-11), 0x3c02),      // tie: even mantissa 2
    ]
}

/// Per lane: (v8, v9) integer operands.
const INT_CASES: [(u32, u32); 6] = [
    (0xffff_ffff, 0xffff_ffff),
    (0x8000_0000, 2),
    (0x8000_0000, 0x8000_0000),
    (0, 1),
    (1, 0),
    (0x1234_5678, 0x9abc_def0),
];

fn wave(vgprs: usize) -> Wave {
    let mut w = Wave::new();
    w.vgpr = vec![[SENTINEL; 32]; vgprs];
    w.set_exec(EXEC);
    w
}

fn run(target: Target, code: &[u8], w: Wave) -> Result<Wave, ExecError> {
    let program = Program::decode(target, code).unwrap();
    let mut waves = vec![w];
    run_workgroup(&program, &mut waves, &GpuMemory::new(), &mut [], CODE_VA, 1000)?;
    Ok(waves.pop().unwrap())
}

fn inputs() -> Wave {
    let mut w = wave(16);
    let cvt = cvt_cases();
    for l in 0..32 {
        let (x, y) = F16_CASES.get(l).map_or((0x3c00, 0x3c00), |c| (c.0, c.1));
        // High halves: 65504 twice in lane 1 (the packed sum overflows), else 1.0 twice.
        let hi = if l == 1 { 0x7bffu32 } else { 0x3c00 };
        w.vgpr[0][l] = u32::from(x) | hi << 16;
        w.vgpr[1][l] = u32::from(y) | hi << 16;
        w.vgpr[6][l] = cvt.get(l).map_or(1.0f32, |c| c.0).to_bits();
        let (a, b) = INT_CASES.get(l).copied().unwrap_or((l as u32 * 0x0101_0101, !(l as u32)));
        w.vgpr[8][l] = a;
        w.vgpr[9][l] = b;
    }
    w
}

#[test]
fn f16_integer_and_dpp_edge_cases_on_both_targets() {
    for target in [Target::Gfx12, Target::Gfx11] {
        let input = inputs();
        let w = run(target, SNIPPET, input.clone()).unwrap_or_else(|e| panic!("{target:?}: {e}"));
        let cvt = cvt_cases();
        for l in 0..31 {
            let ctx = format!("{target:?} lane {l}");
            let (_, _, sum, prod) = F16_CASES.get(l).copied().unwrap_or((0, 0, 0x4000, 0x3c00));
            // 16-bit results: the low half is checked.
            assert_eq!(w.vgpr[2][l] & 0xffff, u32::from(sum), "{ctx}: v_add_f16");
            assert_eq!(w.vgpr[3][l] & 0xffff, u32::from(prod), "{ctx}: v_mul_f16");
            let x = input.vgpr[0][l] & 0xffff;
            let want_f32: f32 = match x {
                0x0001 => 2f32.powi(-24),
                0x0003 => 3.0 * 2f32.powi(-24),
                0x03ff => 1023.0 * 2f32.powi(-24),
                0x7bff => 65504.0,
                0xfbff => -65504.0,
                0x3c00 => 1.0,
                0x7e00 => f32::from_bits(0x7fc0_0000),
                other => panic!("no case for {other:#x}"),
            };
            assert_eq!(w.vgpr[4][l], want_f32.to_bits(), "{ctx}: v_cvt_f32_f16");
            let want_h = cvt.get(l).map_or(0x3c00, |c| c.1);
            assert_eq!(w.vgpr[5][l] & 0xffff, u32::from(want_h), "{ctx}: v_cvt_f16_f32");
            let (a, b) = (input.vgpr[8][l], input.vgpr[9][l]);
            let hi_u = ((u64::from(a) * u64::from(b)) >> 32) as u32;
            let hi_i = ((i64::from(a as i32) * i64::from(b as i32)) >> 32) as u32;
            assert_eq!(w.vgpr[7][l], hi_u, "{ctx}: v_mul_hi_u32");
            assert_eq!(w.vgpr[10][l], hi_i, "{ctx}: v_mul_hi_i32");
            assert_eq!(w.vgpr[11][l], a.wrapping_sub(b), "{ctx}: v_sub_nc_u32");
            let clz = if a == 0 { u32::MAX } else { a.leading_zeros() };
            assert_eq!(w.vgpr[12][l], clz, "{ctx}: v_clz_i32_u32");
            let hi_sum = if l == 1 { 0x7c00u32 } else { 0x4000 };
            assert_eq!(w.vgpr[13][l], u32::from(sum) | hi_sum << 16, "{ctx}: v_pk_add_f16");
            // row_shr:1 with bound_ctrl: the first lane of each 16-lane row reads 0.
            let shr = if l % 16 == 0 { 0 } else { input.vgpr[8][l - 1] };
            assert_eq!(w.vgpr[14][l], shr, "{ctx}: row_shr:1 bound_ctrl:1");
            // row_xmask:1 with row_mask 0x5: row 0 reads lane ^ 1, row 1 is not written.
            let xm = if l < 16 { input.vgpr[8][l ^ 1] } else { SENTINEL };
            assert_eq!(w.vgpr[15][l], xm, "{ctx}: row_xmask:1 row_mask:0x5");
        }
        // The inactive lane keeps every register.
        for r in 2..16 {
            assert_eq!(w.vgpr[r][31], input.vgpr[r][31], "{target:?}: v{r} of inactive lane 31");
        }
    }
}

#[test]
fn dpp_reading_an_inactive_lane_is_reported_not_guessed() {
    // v_mov_b32_dpp v15, v8 row_xmask:1 row_mask:0xf bank_mask:0xf; s_endpgm: lane 30 reads
    // inactive lane 31 (no fetch-inactive).
    let code = [0xfa, 0x02, 0x1e, 0x7e, 0x08, 0x61, 0x01, 0xff, 0x00, 0x00, 0xb0, 0xbf];
    for target in [Target::Gfx12, Target::Gfx11] {
        let err = run(target, &code, inputs()).unwrap_err();
        assert!(
            matches!(err, ExecError::Unimplemented { va, .. } if va == CODE_VA),
            "{target:?}: {err}"
        );
    }
}
