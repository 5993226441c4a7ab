//! IEEE binary16 conversions for the f16 VALU operations. An f16 operation is computed exactly
//! in f64 (sums, differences and products of two binary16 values are exact there) and
//! rounded once to binary16, to nearest even, denormals kept (the mode LLVM's default
//! FP16/FP64 denormal setting selects). A NaN result is a quiet NaN with the operand's sign
//! and top payload bits.

/// The value of binary16 bits `h`.
pub(super) fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let man = u64::from(h & 0x3ff);
    match exp {
        0 => sign * f64::from_bits((1023u64 - 24) << 52) * man as f64,
        0x1f if man == 0 => sign * f64::INFINITY,
        0x1f => {
            f64::from_bits((u64::from(h & 0x8000) << 48) | (0x7ff << 52) | (1 << 51) | (man << 42))
        }
        e => sign * f64::from_bits((u64::from(e) + 1023 - 15) << 52) * (1.0 + man as f64 / 1024.0),
    }
}

/// `v` rounded to binary16, to nearest even.
pub(super) fn f16_from_f64(v: f64) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let man = bits & ((1 << 52) - 1);
    if exp == 0x7ff {
        return if man == 0 { sign | 0x7c00 } else { sign | 0x7e00 | ((man >> 42) as u16 & 0x3ff) };
    }
    if exp == 0 {
        // f64 denormals are far below the smallest binary16 denormal.
        return sign;
    }
    let e = exp - 1023;
    // Significand with the implicit bit, 53 bits; the binary16 result keeps 11 of them for
    // normals (e >= -14) and fewer below.
    let sig = man | (1 << 52);
    let keep_shift = if e >= -14 { 42 } else { 42 + (-14 - e) as u32 };
    if keep_shift > 53 {
        return sign;
    }
    let kept = sig >> keep_shift;
    let rest = sig & ((1u64 << keep_shift) - 1);
    let half = 1u64 << (keep_shift - 1);
    let rounded = kept + u64::from(rest > half || (rest == half && kept & 1 == 1));
    if e >= -14 {
        // rounded in [1024, 2048]: 2048 carries into the next binade.
        let (m, e) = if rounded == 2048 { (1024, e + 1) } else { (rounded, e) };
        if e > 15 {
            return sign | 0x7c00;
        }
        sign | (((e + 15) as u16) << 10) | (m as u16 & 0x3ff)
    } else {
        // Denormal: rounded in [0, 1024]; 1024 is the smallest normal.
        sign | rounded as u16
    }
}
