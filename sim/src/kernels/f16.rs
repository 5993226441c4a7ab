//! IEEE 754 binary16 -> binary32 conversion (exact; subnormals, infinities and NaN payloads).
//!
//! Every finite half value is exactly representable in f32, so the conversion is exact and
//! equals what F16C (`vcvtph2ps`) produces bit for bit (NaN payloads are kept, quiet bit
//! preserved). `pulp` 0.22 exposes no F16C wrapper, so the SIMD DMMV rows look the block
//! scales up in [`f16_table`] (65536 f32 built once from [`f16_to_f32`], as ggml does on CPUs
//! without F16C; one load per block scale).

use std::sync::OnceLock;

/// Converts the binary16 bit pattern `h` to the f32 of the same value.
///
/// Normal numbers take a branch-free fast path; zero, subnormals, infinities and NaN go
/// through [`f16_to_f32_special`].
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let exp = (h >> 10) & 0x1f;
    if exp != 0 && exp != 0x1f {
        let sign = u32::from(h & 0x8000) << 16;
        let rest = u32::from(h & 0x7fff) << 13;
        // Rebias the exponent from 15 to 127: add (127 - 15) << 23.
        return f32::from_bits(sign | (rest + (112 << 23)));
    }
    f16_to_f32_special(h)
}

/// [`f16_to_f32`] with fewer operations on the hot path (used by the SIMD DMMV rows).
///
/// Finite values: the half's sign and its exponent/mantissa bits are placed where an f32
/// with exponent bias 127 would have them, and the result is scaled by 2^112 (= 2^(127-15)),
/// which is exact for every finite half, subnormals included (a power-of-two scaling of a
/// value with at most 11 significant bits, no overflow or underflow). Infinities and NaN
/// (exponent 31) go through [`f16_to_f32_special`]. Same bits as [`f16_to_f32`] for all
/// 65536 inputs (tested).
#[inline(always)]
pub fn f16_to_f32_scaled(h: u16) -> f32 {
    if h & 0x7c00 == 0x7c00 {
        return f16_to_f32_special(h);
    }
    // Sign-extended, shifted: bit 31 = sign, bits 27..13 = exponent and mantissa.
    let bits = ((i32::from(h as i16) << 13) as u32) & 0x8fff_e000;
    f32::from_bits(bits) * f32::from_bits((127 + 112) << 23)
}

/// Every binary16 bit pattern's f32 value: `f16_table()[h as usize] == f16_to_f32(h)` bit for
/// bit (tested for all 65536 patterns). Built on first use (256 KiB), then shared.
pub fn f16_table() -> &'static [f32; 65536] {
    static TABLE: OnceLock<Box<[f32; 65536]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0f32; 65536]);
        for (h, v) in (0..=u16::MAX).zip(t.iter_mut()) {
            *v = f16_to_f32(h);
        }
        t
    })
}

/// Slow path of [`f16_to_f32`] for exponent 0 (zero, subnormal) and 31 (inf, NaN).
#[cold]
#[inline(never)]
pub fn f16_to_f32_special(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = (h >> 10) & 0x1f;
    let man = u32::from(h & 0x3ff);
    if exp == 0x1f {
        return f32::from_bits(sign | 0x7f80_0000 | (man << 13));
    }
    if exp != 0 {
        return f16_to_f32(h);
    }
    // Zero or subnormal: value = man * 2^-24, exact in f32 (at most 10 significant bits).
    let magnitude = man as f32 * (1.0 / 16_777_216.0);
    f32::from_bits(sign | magnitude.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden values from the IEEE 754 binary16 definition.
    #[test]
    fn known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0400), 6.103_515_6e-5); // smallest normal 2^-14
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8); // smallest subnormal 2^-24
        assert_eq!(f16_to_f32(0x03ff), 1023.0 / 16_777_216.0); // largest subnormal
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0000).to_bits(), 0);
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert_eq!(f16_to_f32(0x7e00).to_bits(), 0x7fc0_0000);
        assert_eq!(f16_to_f32(0xfd01).to_bits(), 0xffa0_2000);
    }

    #[test]
    fn scaled_equals_plain_for_all_patterns() {
        for h in 0..=u16::MAX {
            assert_eq!(f16_to_f32_scaled(h).to_bits(), f16_to_f32(h).to_bits(), "{h:#06x}");
        }
    }

    #[test]
    fn table_equals_plain_for_all_patterns() {
        let t = f16_table();
        for h in 0..=u16::MAX {
            assert_eq!(t[usize::from(h)].to_bits(), f16_to_f32(h).to_bits(), "{h:#06x}");
        }
    }

    // Reference: f64 arithmetic from the definition, for all 65536 patterns.
    #[test]
    fn exhaustive_against_definition() {
        for h in 0..=u16::MAX {
            let sign = if h & 0x8000 != 0 { -1.0f64 } else { 1.0 };
            let exp = i32::from((h >> 10) & 0x1f);
            let man = f64::from(h & 0x3ff);
            let got = f16_to_f32(h);
            match exp {
                0x1f if man == 0.0 => assert_eq!(f64::from(got), sign * f64::INFINITY),
                0x1f => assert!(got.is_nan(), "{h:#06x}"),
                0 => assert_eq!(f64::from(got), sign * man * 2f64.powi(-24), "{h:#06x}"),
                _ => assert_eq!(
                    f64::from(got),
                    sign * (1.0 + man / 1024.0) * 2f64.powi(exp - 15),
                    "{h:#06x}"
                ),
            }
        }
    }
}
