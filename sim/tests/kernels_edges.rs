//! Kernel edge cases: argmax packing/NaN/ties against the fixtures' numpy values, rms_norm
//! against numpy float64, fused == dmmv + argmax, shape errors.

use pm4rt_sim::kernels::{
    argmax_f32, copy_u32, dmmv, dmmv_argmax, rms_norm_f32, KernelError, WeightType,
};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f32s(name: &str) -> Vec<f32> {
    fixture(name).chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn manifest(kind: &str) -> Vec<Vec<String>> {
    String::from_utf8(fixture("manifest.txt"))
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(kind))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn argmax_edges_match_numpy() {
    let cases = manifest("argmax");
    assert!(cases.len() >= 12);
    for c in cases {
        let x = f32s(&format!("argmax_{}.f32", c[1]));
        let n: usize = c[2].parse().unwrap();
        assert_eq!(x.len(), n);
        assert_eq!(argmax_f32(&x, n).unwrap(), hex(&c[3]), "case {}", c[1]);
    }
}

#[test]
fn argmax_hand_checked() {
    // README: lowest index wins ties; NaN key 0; all-NaN -> index 0 with key 0.
    assert_eq!(argmax_f32(&[1.0, 3.0, 3.0], 3).unwrap(), 0xC040_0000_FFFF_FFFE);
    assert_eq!(argmax_f32(&[f32::NAN, f32::NEG_INFINITY], 2).unwrap(), 0x007F_FFFF_FFFF_FFFE);
    assert_eq!(argmax_f32(&[f32::NAN, f32::NAN], 2).unwrap(), 0x0000_0000_FFFF_FFFF);
    assert_eq!(argmax_f32(&[], 0).unwrap(), 0);
    // n limits the scan
    assert_eq!(argmax_f32(&[1.0, 9.0], 1).unwrap(), 0xBF80_0000_FFFF_FFFF);
    assert!(matches!(argmax_f32(&[1.0], 2), Err(KernelError::BufferTooShort { .. })));
}

#[test]
fn rms_norm_matches_numpy() {
    const U: f64 = 1.0 / 16_777_216.0;
    for c in manifest("rms") {
        let n: usize = c[1].parse().unwrap();
        let eps = f32::from_bits(hex(&c[2]) as u32);
        let (x, w, want) = (
            f32s(&format!("rms_{n}_x.f32")),
            f32s(&format!("rms_{n}_w.f32")),
            f32s(&format!("rms_{n}_y.f32")),
        );
        let mut y = vec![0f32; n];
        rms_norm_f32(&x, &w, &mut y, n, eps).unwrap();
        // sum: (n/16 + 4) roundings; / n, + eps, sqrt, /, *: a few more, halved by sqrt.
        let rel = ((n / 16 + 4) as f64 / 2.0 + 8.0) * U;
        for i in 0..n {
            let err = (f64::from(y[i]) - f64::from(want[i])).abs();
            assert!(
                err <= rel * f64::from(want[i]).abs() + 1e-30,
                "n {n} i {i}: {} vs {}",
                y[i],
                want[i]
            );
        }
    }
}

#[test]
fn rms_norm_and_copy_shapes() {
    let mut y = [0f32; 2];
    assert_eq!(
        rms_norm_f32(&[1.0, 2.0], &[1.0], &mut y, 2, 0.0),
        Err(KernelError::BufferTooShort {
            kernel: "rms_norm_f32",
            buffer: "weight",
            unit: "elements",
            need: 2,
            have: 1
        })
    );
    let mut d = [0u32; 3];
    copy_u32(&[7, 8, 9, 10], &mut d, 3).unwrap();
    assert_eq!(d, [7, 8, 9]);
    assert!(copy_u32(&[1], &mut d, 2).is_err());
}

fn rand_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Random Q blocks with sane f16 scales (exponent forced small, no inf/NaN).
fn q_weights(ty: WeightType, rows: usize, cols: usize) -> Vec<u8> {
    let bb = ty.block_bytes();
    let mut w = rand_bytes(rows * cols / 32 * bb, 7);
    for b in w.chunks_exact_mut(bb) {
        b[1] = 0x20 | (b[1] & 0x83); // |d| in [2^-7, 2^-5)
    }
    w
}

#[test]
fn fused_equals_dmmv_then_argmax() {
    let x: Vec<f32> = (0..256).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
    for ty in [WeightType::Q4_0, WeightType::Q8_0] {
        // 9000 x 256 Q8_0 is 2.4 MB: takes the multi-threaded path.
        for rows in [1usize, 7, 65, 9000] {
            let w = q_weights(ty, rows, 256);
            let mut y = vec![0f32; rows];
            dmmv(ty, &w, &x, &mut y, rows, 256).unwrap();
            let fused = dmmv_argmax(ty, &w, &x, rows, 256).unwrap();
            assert_eq!(fused, argmax_f32(&y, rows).unwrap(), "{ty:?} rows {rows}");
        }
    }
}

#[test]
fn threads_do_not_change_bits() {
    // 4096 x 512 Q4_0 (1.2 MB) runs split over threads; compare with row-by-row calls.
    let (rows, cols) = (4096, 512);
    let w = q_weights(WeightType::Q4_0, rows, cols);
    let x: Vec<f32> = (0..cols).map(|i| (i as f32).sin()).collect();
    let mut y = vec![0f32; rows];
    dmmv(WeightType::Q4_0, &w, &x, &mut y, rows, cols).unwrap();
    let rb = WeightType::Q4_0.row_bytes(cols).unwrap();
    for r in (0..rows).step_by(97) {
        let mut one = [0f32];
        dmmv(WeightType::Q4_0, &w[r * rb..(r + 1) * rb], &x, &mut one, 1, cols).unwrap();
        assert_eq!(one[0].to_bits(), y[r].to_bits(), "row {r}");
    }
}

#[test]
fn shape_errors() {
    let x = [0f32; 64];
    let mut y = [0f32; 4];
    let w = vec![0u8; 4 * 2 * 18];
    assert_eq!(
        dmmv(WeightType::Q4_0, &w, &x, &mut y, 4, 48),
        Err(KernelError::ColsNotBlockMultiple { kernel: "dmmv_q4_0", cols: 48, block: 32 })
    );
    assert_eq!(
        dmmv(WeightType::Q4_0, &w[..w.len() - 1], &x, &mut y, 4, 64),
        Err(KernelError::BufferTooShort {
            kernel: "dmmv_q4_0",
            buffer: "w",
            unit: "bytes",
            need: 144,
            have: 143
        })
    );
    assert!(matches!(
        dmmv(WeightType::Q8_0, &w, &x, &mut y, 4, 64),
        Err(KernelError::BufferTooShort { buffer: "w", need: 272, .. })
    ));
    assert!(matches!(
        dmmv(WeightType::Q4_0, &w, &x[..32], &mut y, 4, 64),
        Err(KernelError::BufferTooShort { buffer: "x", .. })
    ));
    assert!(matches!(
        dmmv(WeightType::Q4_0, &w, &x, &mut y[..3], 4, 64),
        Err(KernelError::BufferTooShort { buffer: "y", .. })
    ));
    assert!(matches!(
        dmmv(WeightType::Q4_0, &w, &x, &mut y, usize::MAX, 64),
        Err(KernelError::ShapeOverflow { .. })
    ));
    assert!(matches!(
        dmmv_argmax(WeightType::Q8_0, &w, &x, 1, 33),
        Err(KernelError::ColsNotBlockMultiple { kernel: "dmmv_q8_0_argmax", .. })
    ));
    // Zero-sized work is valid and writes nothing.
    dmmv(WeightType::F32, &[], &[], &mut [], 0, 0).unwrap();
    assert_eq!(dmmv_argmax(WeightType::F32, &[], &x[..16], 0, 16).unwrap(), 0);
}
