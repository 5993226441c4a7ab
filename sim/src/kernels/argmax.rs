//! Argmax with the kernel contract's packed 64-bit result.
//!
//! `key(f)`: the ordered-u32 key, `bits ^ 0x8000_0000` when the sign bit is clear, else
//! `!bits`; a larger key is a larger float. NaN rule: every NaN (either sign) gets key 0,
//! below every number including -inf (key 0x007F_FFFF), so a NaN wins only if all values are
//! NaN. Packed value: `key << 32 | (0xFFFF_FFFF - index)`; the maximum picks the largest key
//! and, among equal keys, the lowest index. Note that +0.0 (key 0x8000_0000) is larger than
//! -0.0 (key 0x7FFF_FFFF): ties are equal keys, i.e. equal bit patterns.

use super::KernelError;

/// Largest element count whose every index fits the 32-bit index field (`2^32`).
pub const MAX_LEN: usize = 1 << 32;

/// Ordered key of `f` with the NaN rule (every NaN -> 0).
#[inline(always)]
pub fn key(f: f32) -> u32 {
    if f.is_nan() {
        return 0;
    }
    let bits = f.to_bits();
    if bits & 0x8000_0000 == 0 {
        bits ^ 0x8000_0000
    } else {
        !bits
    }
}

/// Inverse of [`key`] for keys of numbers; key 0 decodes to the NaN with bits 0xFFFF_FFFF.
pub fn from_key(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k ^ 0x8000_0000)
    } else {
        f32::from_bits(!k)
    }
}

/// Packs value `f` at `index` as `key(f) << 32 | (0xFFFF_FFFF - index)`.
///
/// `index` must be below 2^32 (callers check [`MAX_LEN`]); higher bits are discarded.
#[inline(always)]
pub fn pack(f: f32, index: usize) -> u64 {
    (u64::from(key(f)) << 32) | u64::from(0xFFFF_FFFF - (index as u32))
}

/// Decodes a packed value into `(index, value)`.
pub fn unpack(packed: u64) -> (u32, f32) {
    let lo = packed as u32;
    let hi = (packed >> 32) as u32;
    (0xFFFF_FFFF - lo, from_key(hi))
}

/// Kernel `argmax_f32`: the maximum of [`pack`]`(x[i], i)` over `i < n`.
///
/// Returns 0 (the identity of the GPU's atomic max, which the caller zeroes first) when
/// `n == 0`; the caller merges the result into the output word with `max`.
///
/// # Errors
/// [`KernelError::BufferTooShort`] if `x.len() < n`; [`KernelError::IndexRange`] if
/// `n > 2^32`.
pub fn argmax_f32(x: &[f32], n: usize) -> Result<u64, KernelError> {
    const KERNEL: &str = "argmax_f32";
    if x.len() < n {
        return Err(KernelError::BufferTooShort {
            kernel: KERNEL,
            buffer: "x",
            unit: "elements",
            need: n,
            have: x.len(),
        });
    }
    if n > MAX_LEN {
        return Err(KernelError::IndexRange { kernel: KERNEL, len: n });
    }
    // Strictly-greater keeps the first (lowest) index among equal keys.
    let mut best_key = 0u32;
    let mut best_index = 0usize;
    let mut any = false;
    for (i, v) in x[..n].iter().enumerate() {
        let k = key(*v);
        if !any || k > best_key {
            best_key = k;
            best_index = i;
            any = true;
        }
    }
    if !any {
        return Ok(0);
    }
    Ok((u64::from(best_key) << 32) | u64::from(0xFFFF_FFFF - (best_index as u32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden keys from the README's definition.
    #[test]
    fn keys() {
        assert_eq!(key(f32::NEG_INFINITY), 0x007F_FFFF);
        assert_eq!(key(f32::INFINITY), 0xFF80_0000);
        assert_eq!(key(0.0), 0x8000_0000);
        assert_eq!(key(-0.0), 0x7FFF_FFFF);
        assert_eq!(key(1.0), 0xBF80_0000);
        assert_eq!(key(-1.0), 0x407F_FFFF);
        assert_eq!(key(f32::NAN), 0);
        assert_eq!(key(-f32::NAN), 0);
        assert_eq!(key(f32::from_bits(0x7F80_0001)), 0);
        assert_eq!(from_key(0xBF80_0000), 1.0);
        assert_eq!(from_key(0x407F_FFFF), -1.0);
        assert!(from_key(0).is_nan());
    }

    #[test]
    fn packing() {
        assert_eq!(pack(1.0, 0), 0xBF80_0000_FFFF_FFFF);
        assert_eq!(pack(1.0, 5), 0xBF80_0000_FFFF_FFFA);
        assert_eq!(unpack(0xBF80_0000_FFFF_FFFA), (5, 1.0));
    }
}
