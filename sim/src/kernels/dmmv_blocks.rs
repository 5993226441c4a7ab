//! Row products of the block formats added after F32 / Q4_0 / Q8_0: F16, BF16, Q4_1, Q5_0,
//! Q5_1, Q4_K, Q5_K and Q6_K.
//!
//! # Layouts and dequantization (ggml `ggml-common.h` block structs, `ggml-quants.c`
//! `dequantize_row_*`; the same rule as gguf-py `gguf/quants.py` `dequantize_blocks`)
//! - F16 / BF16: one 2-byte value; BF16 is the upper half of an f32 (`bits << 16`).
//! - Q4_1 (20 bytes): `{f16 d; f16 m; u8 qs[16]}`, `v[j] = d * lo(qs[j]) + m`,
//!   `v[j + 16] = d * hi(qs[j]) + m`.
//! - Q5_0 (22 bytes): `{f16 d; u8 qh[4]; u8 qs[16]}`, `h = u32 LE of qh`,
//!   `q[j] = lo(qs[j]) | bit j of h << 4`, `q[j + 16] = hi(qs[j]) | bit (j + 16) of h << 4`,
//!   `v = (q - 16) * d`.
//! - Q5_1 (24 bytes): `{f16 d; f16 m; u8 qh[4]; u8 qs[16]}`, `q` as Q5_0, `v = d * q + m`.
//! - Q4_K (144 bytes, 256 values): `{f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}`; sub-block
//!   `s < 8` of 32 values has a 6-bit scale `sc[s]` and min `mn[s]` (`get_scale_min_k4`:
//!   `s < 4`: `sc = scales[s] & 63`, `mn = scales[s + 4] & 63`; else
//!   `sc = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4`,
//!   `mn = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4`); value `i < 32` of sub-block `s` is
//!   nibble `s % 2` (low first) of `qs[32 (s / 2) + i]`; `v = (d * sc) * q - (dmin * mn)`.
//! - Q5_K (176 bytes): `{f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}`, as Q4_K
//!   with `q |= (bit s of qh[i]) << 4`.
//! - Q6_K (210 bytes): `{u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}`; value `v < 256`:
//!   `h = v / 128`, `r = v % 128`, `lo` = nibble `r / 64` of `ql[64 h + r % 64]`,
//!   `hi = (qh[32 h + r % 32] >> 2 (r / 32)) & 3`, `q = (lo | hi << 4) - 32`,
//!   `v = (d * scales[v / 16]) * q`.
//!
//! Every product of an f16 scale and an integer of at most 8 bits, and the product of that
//! with a quant of at most 6 bits, is exact in f32; the one rounded step is the `- dmin * mn`
//! / `+ m` subtraction or addition, done once in f32 exactly as ggml and gguf-py do (no FMA
//! contraction in Rust). So the dequantized row equals `gguf.quants.dequantize` bit for bit.
//!
//! # Order and bound
//! A row is dequantized into a buffer of [`CHUNK`] values and accumulated with the portable
//! 16-lane order of [`super::dmmv`] (then its tree), so the documented bound
//! `(cols / 16 + 6) * 2^-24 * sum |w x|` holds. The X86V3 backend runs this same code
//! inlined into a `pulp` AVX2 + FMA frame (runtime-detected), so LLVM vectorises it with
//! 256-bit registers (Rust never contracts a multiply and an add into an FMA); the X86V4
//! backend runs [`super::dmmv_blocks_v4`], explicit AVX-512 decoders in the same order. The
//! bits are the portable ones on every backend (tested).

use super::dmmv::{reduce16, Shape, WeightType, CHUNK};
use super::f16::f16_to_f32;

/// Values per K-quant super-block (ggml `QK_K`).
pub const QK_K: usize = 256;

/// Computes rows `first .. first + y.len()` of a block-format product into `y` (shape already
/// checked; `shape.ty` one of this module's formats).
#[inline(always)]
pub(super) fn rows_into(shape: Shape, w: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let x = &x[..shape.cols];
    let mut buf = [0f32; CHUNK];
    for (i, out) in y.iter_mut().enumerate() {
        let start = (first + i) * shape.row_bytes;
        let row = &w[start..start + shape.row_bytes];
        *out = match shape.ty {
            WeightType::F16 => row_dot(row, x, 2, 1, &mut buf, dequant_f16),
            WeightType::Bf16 => row_dot(row, x, 2, 1, &mut buf, dequant_bf16),
            WeightType::Q4_1 => row_dot(row, x, 20, 32, &mut buf, dequant_q4_1),
            WeightType::Q5_0 => row_dot(row, x, 22, 32, &mut buf, dequant_q5_0),
            WeightType::Q5_1 => row_dot(row, x, 24, 32, &mut buf, dequant_q5_1),
            WeightType::Q4K => row_dot(row, x, 144, QK_K, &mut buf, dequant_q4_k),
            WeightType::Q5K => row_dot(row, x, 176, QK_K, &mut buf, dequant_q5_k),
            WeightType::Q6K => row_dot(row, x, 210, QK_K, &mut buf, dequant_q6_k),
            // Not a format of this module: computed by `super::dmmv`'s rows.
            WeightType::F32 | WeightType::Q4_0 | WeightType::Q8_0 => f32::NAN,
        };
    }
}

/// Dequantizes one block of `ty` (a format of this module) into `out`; `false` for formats
/// of `super::dmmv`.
pub(super) fn dequant_block(ty: WeightType, b: &[u8], out: &mut [f32]) -> bool {
    match ty {
        WeightType::F16 => dequant_f16(b, out),
        WeightType::Bf16 => dequant_bf16(b, out),
        WeightType::Q4_1 => dequant_q4_1(b, out),
        WeightType::Q5_0 => dequant_q5_0(b, out),
        WeightType::Q5_1 => dequant_q5_1(b, out),
        WeightType::Q4K => dequant_q4_k(b, out),
        WeightType::Q5K => dequant_q5_k(b, out),
        WeightType::Q6K => dequant_q6_k(b, out),
        WeightType::F32 | WeightType::Q4_0 | WeightType::Q8_0 => return false,
    }
    true
}

/// Dot product of one row (`unit` bytes per block of `vals` values) with `x`: blocks are
/// dequantized into `buf` a chunk at a time, accumulated into 16 lanes (`k % 16`) in
/// increasing `k`, then reduced by the fixed tree. F16 / BF16 (`vals == 1`) rows whose length
/// is not a multiple of 16 add their tail into lanes 0.. in order.
#[inline(always)]
fn row_dot<D: Fn(&[u8], &mut [f32])>(
    row: &[u8],
    x: &[f32],
    unit: usize,
    vals: usize,
    buf: &mut [f32; CHUNK],
    dequant: D,
) -> f32 {
    let mut acc = [0f32; 16];
    let n = row.len() / unit * vals;
    let full = n / 16 * 16;
    let mut k = 0;
    while k < full {
        let m = (full - k).min(CHUNK);
        let bytes = &row[k / vals * unit..(k + m) / vals * unit];
        for (b, o) in bytes.chunks_exact(unit).zip(buf[..m].chunks_exact_mut(vals)) {
            dequant(b, o);
        }
        for (ca, cb) in buf[..m].chunks_exact(16).zip(x[k..k + m].chunks_exact(16)) {
            for l in 0..16 {
                acc[l] += ca[l] * cb[l];
            }
        }
        k += m;
    }
    let mut one = [0f32; 1];
    for (l, (b, xv)) in row[full / vals * unit..].chunks_exact(unit).zip(&x[full..n]).enumerate() {
        dequant(b, &mut one);
        acc[l] += one[0] * xv;
    }
    reduce16(acc)
}

#[inline(always)]
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// 2-byte binary16 values -> f32 (`out.len()` of them).
#[inline(always)]
fn dequant_f16(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

/// 2-byte bfloat16 values -> f32: the upper 16 bits of the f32.
#[inline(always)]
fn dequant_bf16(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
    }
}

/// One Q4_1 block (20 bytes) -> 32 values.
#[inline(always)]
fn dequant_q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_to_f32(le16(b, 0)), f16_to_f32(le16(b, 2)));
    let (lo, hi) = out.split_at_mut(16);
    for ((l, h), q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[4..20]) {
        *l = d * f32::from(q & 0x0f) + m;
        *h = d * f32::from(q >> 4) + m;
    }
}

/// The 5-bit quants of a Q5_0 / Q5_1 block as f32 (`qh` the 4 high-bit bytes, `qs` the 16
/// nibble bytes), each passed with its index to `f`; branch-free so LLVM vectorises it.
#[inline(always)]
fn q5_values(qh: &[u8], qs: &[u8], out: &mut [f32], f: impl Fn(f32) -> f32) {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let (lo, hi) = out.split_at_mut(16);
    for (j, ((l, u), q)) in lo.iter_mut().zip(hi.iter_mut()).zip(&qs[..16]).enumerate() {
        let q = u32::from(*q);
        *l = f(((q & 0x0f) | (((h >> j) & 1) << 4)) as f32);
        *u = f(((q >> 4) | (((h >> (j + 16)) & 1) << 4)) as f32);
    }
}

/// One Q5_0 block (22 bytes) -> 32 values.
#[inline(always)]
fn dequant_q5_0(b: &[u8], out: &mut [f32]) {
    let d = f16_to_f32(le16(b, 0));
    // q - 16 is exact in f32 (|q| < 32), as the integer subtraction of ggml.
    q5_values(&b[2..6], &b[6..22], out, |q| (q - 16.0) * d);
}

/// One Q5_1 block (24 bytes) -> 32 values.
#[inline(always)]
fn dequant_q5_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_to_f32(le16(b, 0)), f16_to_f32(le16(b, 2)));
    q5_values(&b[4..8], &b[8..24], out, |q| d * q + m);
}

/// Scale and min of sub-block `s` from the 12 packed bytes (ggml `get_scale_min_k4`).
#[inline(always)]
fn scale_min_k4(s: usize, sc: &[u8]) -> (u8, u8) {
    if s < 4 {
        (sc[s] & 63, sc[s + 4] & 63)
    } else {
        ((sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4), (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4))
    }
}

/// One Q4_K super-block (144 bytes) -> 256 values.
#[inline(always)]
fn dequant_q4_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_to_f32(le16(b, 0)), f16_to_f32(le16(b, 2)));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for (s, o) in out.chunks_exact_mut(32).enumerate() {
        let (sc, mn) = scale_min_k4(s, scales);
        let (d1, m1) = (d * f32::from(sc), dmin * f32::from(mn));
        let shift = 4 * (s % 2);
        for (v, q) in o.iter_mut().zip(&qs[32 * (s / 2)..32 * (s / 2) + 32]) {
            *v = d1 * f32::from((q >> shift) & 0x0f) - m1;
        }
    }
}

/// One Q5_K super-block (176 bytes) -> 256 values.
#[inline(always)]
fn dequant_q5_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_to_f32(le16(b, 0)), f16_to_f32(le16(b, 2)));
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for (s, o) in out.chunks_exact_mut(32).enumerate() {
        let (sc, mn) = scale_min_k4(s, scales);
        let (d1, m1) = (d * f32::from(sc), dmin * f32::from(mn));
        let shift = 4 * (s % 2);
        let q = &qs[32 * (s / 2)..32 * (s / 2) + 32];
        for ((v, q), h) in o.iter_mut().zip(q).zip(qh) {
            let q5 = ((q >> shift) & 0x0f) | (((h >> s) & 1) << 4);
            *v = d1 * f32::from(q5) - m1;
        }
    }
}

/// One Q6_K super-block (210 bytes) -> 256 values, 16 at a time (one scale each).
#[inline(always)]
fn dequant_q6_k(b: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
    let d = f16_to_f32(le16(b, 208));
    for (sub, o) in out.chunks_exact_mut(16).enumerate() {
        let (g, half) = (sub / 2, sub % 2); // 32-value group, its first or second 16
        let (h, k) = (g / 4, g % 4); // half of 128 values, 32-value group inside it
        let at = 16 * half;
        let lo = &ql[64 * h + 32 * (k % 2) + at..][..16];
        let hi = &qh[32 * h + at..][..16];
        let ds = d * f32::from(scales[sub] as i8);
        let (ls, hs) = (4 * (k / 2) as u32, 2 * k as u32);
        for ((v, l), u) in o.iter_mut().zip(lo).zip(hi) {
            let q = ((u32::from(*l) >> ls) & 0x0f) | (((u32::from(*u) >> hs) & 3) << 4);
            // q - 32 is exact in f32, as ggml's integer subtraction.
            *v = ds * (q as f32 - 32.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::dmmv::{dmmv_argmax_with, dmmv_with, Backend};
    use super::*;

    /// Every SIMD backend the CPU has gives the portable rows' bits for every block format
    /// (their module docs promise the portable order and dequantization): random blocks with
    /// normal f16 scales / values, 7 rows (groups of rows and a remainder), F16 / BF16 rows
    /// with a tail past the last multiple of 16 columns, every argmax equal as well.
    #[test]
    fn block_formats_same_bits_as_portable_on_every_backend() {
        let mut s = 0x243f_6a88_85a3_08d3u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        };
        let rows = 7;
        for ty in [
            WeightType::F16,
            WeightType::Bf16,
            WeightType::Q4_1,
            WeightType::Q5_0,
            WeightType::Q5_1,
            WeightType::Q4K,
            WeightType::Q5K,
            WeightType::Q6K,
        ] {
            let cols = match ty {
                WeightType::F16 | WeightType::Bf16 => 16 * 37 + 9,
                WeightType::Q4K | WeightType::Q5K | WeightType::Q6K => 3 * QK_K,
                _ => 32 * 23,
            };
            let rb = ty.row_bytes(cols).unwrap();
            let mut w: Vec<u8> = (0..rows * rb).map(|_| next()).collect();
            // Normal f16 / bf16 halves (exponent bits set to a moderate range), so no NaN
            // payload or infinity makes bits differ for reasons outside the kernel.
            let halves: Vec<usize> = match ty {
                WeightType::F16 | WeightType::Bf16 => (0..rows * cols).map(|i| 2 * i).collect(),
                WeightType::Q5_0 | WeightType::Q6K => (0..rows * rb / ty.block_bytes())
                    .map(|b| b * ty.block_bytes() + if ty == WeightType::Q6K { 208 } else { 0 })
                    .collect(),
                _ => (0..rows * rb / ty.block_bytes())
                    .flat_map(|b| [b * ty.block_bytes(), b * ty.block_bytes() + 2])
                    .collect(),
            };
            for at in halves {
                let hi = &mut w[at + 1];
                *hi = match ty {
                    WeightType::Bf16 => 0x3c | (*hi & 0x80), // exponent 120..121
                    _ => 0x30 | (*hi & 0x83),                // f16 exponent 12..15
                };
            }
            let x: Vec<f32> = (0..cols).map(|_| f32::from(next()) / 128.0 - 1.0).collect();
            let mut want = vec![0f32; rows];
            dmmv_with(Backend::Portable, ty, &w, &x, &mut want, rows, cols).unwrap();
            let want_max = dmmv_argmax_with(Backend::Portable, ty, &w, &x, rows, cols).unwrap();
            for be in Backend::ALL.into_iter().filter(|b| b.is_available()) {
                let mut y = vec![f32::NAN; rows];
                dmmv_with(be, ty, &w, &x, &mut y, rows, cols).unwrap();
                for r in 0..rows {
                    assert_eq!(y[r].to_bits(), want[r].to_bits(), "{be:?} {ty:?} row {r}");
                }
                let got = dmmv_argmax_with(be, ty, &w, &x, rows, cols).unwrap();
                assert_eq!(got, want_max, "{be:?} {ty:?} argmax");
            }
        }
    }

    /// Q4_K by the definition: d = 1, dmin = 0.5, scale bytes chosen so every sub-block has
    /// a distinct scale and min, including the packed high bits of sub-blocks 4..7.
    #[test]
    fn q4_k_scales_and_nibbles_by_definition() {
        let mut b = vec![0x00, 0x3c, 0x00, 0x38]; // d = 1.0, dmin = 0.5
                                                  // scales[0..4] = sc 1..4 with high bits 01 (-> sc[4..8] bits 4..5 = 1),
                                                  // scales[4..8] = mins 5..8 with high bits 10 (-> mn[4..8] bits 4..5 = 2),
                                                  // scales[8..12] = low nibbles of sc[4..8] = 1..4, high nibbles of mn[4..8] = 9..12.
        b.extend([0x41, 0x42, 0x43, 0x44, 0x85, 0x86, 0x87, 0x88]);
        b.extend([0x91, 0xa2, 0xb3, 0xc4]);
        b.extend((0..128).map(|i| (i % 16) as u8 | (((i + 1) % 16) as u8) << 4));
        let mut out = [0f32; 256];
        dequant_q4_k(&b, &mut out);
        let sc = [1, 2, 3, 4, 17, 18, 19, 20];
        let mn = [5, 6, 7, 8, 32 + 9, 32 + 10, 32 + 11, 32 + 12];
        for s in 0..8 {
            for i in 0..32 {
                let q = if s % 2 == 0 { i % 16 } else { (i + 1) % 16 };
                let want = (sc[s] * q) as f32 - 0.5 * mn[s] as f32;
                assert_eq!(out[32 * s + i], want, "sub-block {s} value {i}");
            }
        }
    }

    /// Q6_K by the definition: every value's position reads its own low nibble and high bits.
    #[test]
    fn q6_k_positions_by_definition() {
        let mut b = vec![0u8; 210];
        // Value 130 (h = 1, r = 2): ql[64 + 2] low nibble, qh[32 + 2] bits 0..1.
        b[66] = 0x05;
        b[160] = 0x0c; // qh[32 + 0] bits 2..3 = 3: value 128 + 32 = 160 (k = 1)
        b[128 + 34] = 0x02;
        b[192..208].fill(2); // scales 2
        b[208..210].copy_from_slice(&0x3800u16.to_le_bytes()); // d = 0.5
        let mut out = [0f32; 256];
        dequant_q6_k(&b, &mut out);
        // value 130: q = 5 | 2 << 4 = 37 - 32 = 5 -> 0.5 * 2 * 5
        assert_eq!(out[130], 5.0);
        // value 160: lo nibble 0 of ql[64 + 32] = 0, hi = 3 -> q = 48 - 32 = 16
        assert_eq!(out[160], 16.0);
        // untouched value: q = -32
        assert_eq!(out[0], -32.0);
    }

    #[test]
    fn q5_0_high_bits_by_definition() {
        let mut b = vec![0x00, 0x3c]; // d = 1
        b.extend(0x8000_0001u32.to_le_bytes()); // bit 0 and bit 31
        b.extend([0xffu8; 16]);
        let mut out = [0f32; 32];
        dequant_q5_0(&b, &mut out);
        assert_eq!(out[0], 15.0); // 31 - 16
        assert_eq!(out[1], -1.0); // 15 - 16
        assert_eq!(out[31], 15.0);
        assert_eq!(out[16], -1.0);
    }
}
