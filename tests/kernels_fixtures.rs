//! DMMV and fused-argmax kernels against the gguf/numpy fixtures of tests/fixtures/ (read
//! through the facade's strict GGUF reader), on every DMMV backend this CPU can run (the
//! portable fallback always, AVX2 + FMA when present). Tolerance: see tests/fixtures/README.md.

mod common;
use common::{f32s, fixture, manifest};
use pm4rt::gguf::Gguf;
use pm4rt_sim::kernels::{argmax_f32, dmmv_argmax_with, dmmv_with, unpack, Backend};

/// The backends to test: the portable fallback always; x86-v3 whenever the CPU has AVX2 + FMA
/// and x86-v4 whenever it has AVX-512 F/BW/CD/DQ/VL (checked here with std's detection,
/// independently of the kernel crate's own).
fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Portable];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            assert!(Backend::X86V3.is_available(), "AVX2+FMA CPU but x86-v3 backend unavailable");
            v.push(Backend::X86V3);
            if has!("avx512f")
                && has!("avx512bw")
                && has!("avx512cd")
                && has!("avx512dq")
                && has!("avx512vl")
            {
                assert!(
                    Backend::X86V4.is_available(),
                    "AVX-512 F/BW/CD/DQ/VL CPU but x86-v4 backend unavailable"
                );
                v.push(Backend::X86V4);
            }
        }
    }
    v
}

/// Every format with fixtures (the `<type>` of `dmmv_<type>.gguf`).
const FORMATS: [&str; 11] =
    ["f32", "q4_0", "q8_0", "f16", "bf16", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"];

#[test]
fn dmmv_matches_numpy() {
    for backend in backends() {
        dmmv_matches_numpy_on(backend);
    }
}

fn dmmv_matches_numpy_on(backend: Backend) {
    const U: f64 = 1.0 / 16_777_216.0;
    let cases = manifest("dmmv");
    assert!(cases.len() >= 40 + 8 * 12, "manifest lists {} dmmv cases", cases.len());
    for ty in FORMATS {
        let file = fixture(&format!("dmmv_{ty}.gguf"));
        let g = Gguf::parse(&file).unwrap();
        for c in cases.iter().filter(|c| c[1] == ty) {
            let (rows, cols): (usize, usize) = (c[2].parse().unwrap(), c[3].parse().unwrap());
            let case = format!("{} {ty} {rows}x{cols}", backend.name());
            let m = g.matrix(&format!("w_{rows}x{cols}")).unwrap();
            assert_eq!((m.rows, m.cols), (rows, cols), "{case}");
            assert_eq!(m.ty.kernel_name(), format!("dmmv_{ty}"), "{case}");
            let x = f32s(&format!("x_{cols}.f32"));
            let want = f32s(&format!("y_{ty}_{rows}x{cols}.f32"));
            let absy = f32s(&format!("absy_{ty}_{rows}x{cols}.f32"));
            let mut y = vec![f32::NAN; rows];
            dmmv_with(backend, m.ty, m.bytes, &x, &mut y, rows, cols).unwrap();
            let depth = (cols / 16 + 6) as f64;
            for r in 0..rows {
                let err = (f64::from(y[r]) - f64::from(want[r])).abs();
                let tol = depth * U * f64::from(absy[r]) + f64::from(want[r]).abs() * U + 1e-30;
                assert!(err <= tol, "{case} row {r}: got {} want {} (tol {tol:e})", y[r], want[r]);
            }
            // Argmax of the products: exact against numpy's argmax packing of y_ref whenever
            // the top two reference values are farther apart than the tolerance (true here).
            let packed: u64 = u64::from_str_radix(c[5].trim_start_matches("0x"), 16).unwrap();
            let fused = dmmv_argmax_with(backend, m.ty, m.bytes, &x, rows, cols).unwrap();
            assert_eq!(fused, argmax_f32(&y, rows).unwrap(), "{case}: fused != dmmv+argmax");
            assert_eq!(unpack(fused).0, unpack(packed).0, "{case}: argmax index");
        }
    }
}

/// Columns that are not a multiple of the block size (32, or 256 for the K-quants) are a
/// typed error naming the kernel, the columns and the block, on every backend.
#[test]
fn cols_not_a_block_multiple_are_typed_errors() {
    use pm4rt_sim::kernels::{KernelError, WeightType};
    for (ty, cols, block) in [
        (WeightType::Q4K, 640, 256),
        (WeightType::Q5K, 300, 256),
        (WeightType::Q6K, 32, 256),
        (WeightType::Q5_0, 48, 32),
        (WeightType::Q4_1, 33, 32),
        (WeightType::Q5_1, 16, 32),
    ] {
        let w = vec![0u8; 4096];
        let x = vec![0f32; cols];
        for backend in backends() {
            let mut y = [0f32; 1];
            let e = dmmv_with(backend, ty, &w, &x, &mut y, 1, cols).unwrap_err();
            let want = KernelError::ColsNotBlockMultiple { kernel: ty.kernel_name(), cols, block };
            assert_eq!(e, want, "{ty:?}");
            let e = dmmv_argmax_with(backend, ty, &w, &x, 1, cols).unwrap_err();
            assert!(e.to_string().contains("not a multiple of the block size"), "{e}");
        }
    }
}

#[test]
fn gguf_fixture_truncations_never_panic() {
    let file = fixture("dmmv_q8_0.gguf");
    let g = Gguf::parse(&file).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.alignment, 32);
    let header_end = g.data_offset as usize;
    // Every cut inside the header and tensor infos, then a stride through the data.
    for n in (0..header_end).chain((header_end..file.len()).step_by(4099)) {
        assert!(Gguf::parse(&file[..n]).is_err(), "length {n} parsed");
    }
    // Random byte corruption of the header: errors or a valid parse, never a panic.
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let mut f = file[..header_end].to_vec();
        let at = (s % header_end as u64) as usize;
        f[at] ^= (s >> 32) as u8 | 1;
        let _ = Gguf::parse(&f);
    }
}
