//! Block-format DMMV rows (F16, BF16, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) with AVX-512
//! (x86-64-v4), through `pulp`'s safe intrinsic wrappers.
//!
//! Selected at run time with the rest of [`super::dmmv_v4`]. The portable order of
//! [`super::dmmv_blocks`] accumulates 16 lanes, lane `l` receiving the products of columns
//! `k % 16 == l` in increasing `k`: one 512-bit vector is exactly those 16 lanes, so these
//! rows compute `acc = acc + w * x` per 16 columns (a multiply, then an add: no FMA in the
//! accumulation) and end with the same tree ([`reduce16`]). The dequantized weights are the
//! portable ones bit for bit: integer decode, exact conversion, and the one rounded step of
//! the formats with a minimum (`d q + m`, `d1 q - m1`) done as a single FMA, which equals the
//! portable multiply-then-add because `d q` is exact in f32. So every result has the portable
//! bits (tested against [`super::dmmv_blocks`] for every format), and the documented bound is
//! the portable one.
//!
//! Speed comes from decoding 16 quants per vector operation (`vpmovzxbd`, masks for the fifth
//! bit, `vcvtph2ps` for F16) and from computing [`GROUP`] rows per pass: each `x` vector is
//! loaded once for the group, and the rows' accumulation chains (one add each per 16
//! columns) overlap instead of waiting on each other.

use core::arch::x86_64::{__m256i, __m512, __m512i};
use core::marker::PhantomData;
use pulp::x86::V4;
use pulp::{as_arrays, cast};

use super::dmmv::{reduce16, Shape, WeightType};
use super::dmmv_v3::{self, PREFETCH_BYTES};
use super::f16::{f16_table, f16_to_f32};

/// Rows computed together.
const GROUP: usize = 2;

/// Computes rows `first .. first + y.len()` of a block-format product into `y` (shape
/// already checked; `shape.ty` a block format). Returns `false` (and leaves `y`) for
/// formats of [`super::dmmv`].
pub(super) fn rows_into(
    simd: V4,
    shape: Shape,
    w: &[u8],
    x: &[f32],
    first: usize,
    y: &mut [f32],
) -> bool {
    let f16 = f16_table();
    let x = &x[..shape.cols];
    let rb = shape.row_bytes;
    let w = &w[first * rb..(first + y.len()) * rb];
    macro_rules! run {
        ($bytes:literal, $fmt:ty) => {
            simd.vectorize(Rows::<$bytes, $fmt> { simd, f16, w, rb, x, y, format: PhantomData })
        };
    }
    match shape.ty {
        WeightType::F16 => run!(32, F16),
        WeightType::Bf16 => run!(32, Bf16),
        WeightType::Q4_1 => run!(20, Q4_1),
        WeightType::Q5_0 => run!(22, Q5_0),
        WeightType::Q5_1 => run!(24, Q5_1),
        WeightType::Q4K => run!(144, Q4K),
        WeightType::Q5K => run!(176, Q5K),
        WeightType::Q6K => run!(210, Q6K),
        WeightType::F32 | WeightType::Q4_0 | WeightType::Q8_0 => return false,
    }
    true
}

/// A block format decoded 16 dequantized values per vector.
trait Block<const BYTES: usize> {
    /// Vectors of 16 values per block.
    const VECS: usize;
    /// Per-block values shared by its vectors (scales, decoded quants).
    type Prep: Copy;
    /// A placeholder [`Block::Prep`] (overwritten before use).
    fn empty(simd: V4) -> Self::Prep;
    /// Decodes what the vectors of `blk` share.
    fn prep(simd: V4, f16: &[f32; 65536], blk: &[u8; BYTES]) -> Self::Prep;
    /// Dequantized values `16 i .. 16 i + 16` of the block, bit for bit the portable ones.
    fn vector(simd: V4, blk: &[u8; BYTES], p: &Self::Prep, i: usize) -> __m512;
    /// F16 / BF16: the value of one 2-byte element past the last whole vector of a row;
    /// `None` for the quantized formats (whole blocks only).
    #[inline(always)]
    fn tail_value(_: u16) -> Option<f32> {
        None
    }
}

/// The rows of [`rows_into`] in format `B` as a `pulp` operation (an `#[inline(always)]`
/// `call`, so the whole loop is compiled with the AVX-512 features enabled). `w` holds
/// exactly the rows of `y`, `rb` bytes each.
struct Rows<'a, const BYTES: usize, B> {
    simd: V4,
    f16: &'a [f32; 65536],
    w: &'a [u8],
    rb: usize,
    x: &'a [f32],
    y: &'a mut [f32],
    format: PhantomData<B>,
}

impl<const BYTES: usize, B: Block<BYTES>> pulp::NullaryFnOnce for Rows<'_, BYTES, B> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Rows { simd, f16, w, rb, x, y, .. } = self;
        let mut groups = y.chunks_exact_mut(GROUP);
        let mut at = 0;
        for out in &mut groups {
            let rows: [&[u8]; GROUP] = core::array::from_fn(|i| &w[(at + i) * rb..][..rb]);
            out.copy_from_slice(&group::<GROUP, BYTES, B>(simd, f16, rows, x));
            at += GROUP;
        }
        for out in groups.into_remainder() {
            *out = group::<1, BYTES, B>(simd, f16, [&w[at * rb..][..rb]], x)[0];
            at += 1;
        }
    }
}

/// `N` rows: per block, per vector `i`, `acc[r] = acc[r] + w_r * x` (the portable lanes),
/// then the F16 / BF16 tail (columns past the last multiple of 16) into lanes 0.. and
/// [`reduce16`].
#[inline(always)]
fn group<const N: usize, const BYTES: usize, B: Block<BYTES>>(
    simd: V4,
    f16: &[f32; 65536],
    rows: [&[u8]; N],
    x: &[f32],
) -> [f32; N] {
    let f = simd.avx512f;
    let (x16, _) = as_arrays::<16, f32>(x);
    let blocks: [&[[u8; BYTES]]; N] = rows.map(|r| as_arrays::<BYTES, u8>(r).0);
    let nb = (x16.len() / B::VECS).min(blocks.iter().map(|b| b.len()).min().unwrap_or(0));
    let mut acc = [f._mm512_setzero_ps(); N];
    for b in 0..nb {
        let xb = &x16[b * B::VECS..][..B::VECS];
        // A loop, not `array::from_fn`: a large closure is not reliably inlined into the
        // feature-enabled frame, and out of it every intrinsic becomes a call.
        let mut preps = [B::empty(simd); N];
        for r in 0..N {
            for l in 0..BYTES.div_ceil(64) {
                dmmv_v3::prefetch(*simd, rows[r], b * BYTES + l * 64 + PREFETCH_BYTES);
            }
            preps[r] = B::prep(simd, f16, &blocks[r][b]);
        }
        for (i, xv) in xb.iter().enumerate() {
            let xv: __m512 = cast(*xv);
            for r in 0..N {
                let wv = B::vector(simd, &blocks[r][b], &preps[r], i);
                acc[r] = f._mm512_add_ps(acc[r], f._mm512_mul_ps(wv, xv));
            }
        }
    }
    core::array::from_fn(|r| {
        let mut a: [f32; 16] = cast(acc[r]);
        // F16 / BF16: the remaining 2-byte values, one per lane from lane 0 (no tail for
        // the quantized formats: their rows are whole blocks).
        let tail = &rows[r][nb * BYTES..];
        for (l, (c, xv)) in tail.chunks_exact(2).zip(&x[nb * 16..]).enumerate() {
            if let Some(v) = B::tail_value(u16::from_le_bytes([c[0], c[1]])) {
                a[l] += v * xv;
            }
        }
        reduce16(a)
    })
}

/// `b[at .. at + 16]` as a 128-bit vector.
#[inline(always)]
fn bytes16(b: &[u8], at: usize) -> [u8; 16] {
    let mut v = [0u8; 16];
    v.copy_from_slice(&b[at..at + 16]);
    v
}

/// 16 bytes zero-extended to 32-bit lanes.
#[inline(always)]
fn widen(simd: V4, b: &[u8], at: usize) -> __m512i {
    simd.avx512f._mm512_cvtepu8_epi32(cast(bytes16(b, at)))
}

#[inline(always)]
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

struct F16;
struct Bf16;
struct Q4_1;
struct Q5_0;
struct Q5_1;
struct Q4K;
struct Q5K;
struct Q6K;

impl Block<32> for F16 {
    const VECS: usize = 1;
    type Prep = ();
    #[inline(always)]
    fn empty(_: V4) {}
    #[inline(always)]
    fn prep(_: V4, _: &[f32; 65536], _: &[u8; 32]) {}
    /// `vcvtph2ps`: exact, as [`f16_to_f32`] for every finite value.
    #[inline(always)]
    fn vector(simd: V4, blk: &[u8; 32], _: &(), _: usize) -> __m512 {
        simd.avx512f._mm512_cvtph_ps(cast::<[u8; 32], __m256i>(*blk))
    }
    #[inline(always)]
    fn tail_value(h: u16) -> Option<f32> {
        Some(f16_to_f32(h))
    }
}

impl Block<32> for Bf16 {
    const VECS: usize = 1;
    type Prep = ();
    #[inline(always)]
    fn empty(_: V4) {}
    #[inline(always)]
    fn prep(_: V4, _: &[f32; 65536], _: &[u8; 32]) {}
    /// The upper half of an f32: zero-extend, shift left by 16.
    #[inline(always)]
    fn vector(simd: V4, blk: &[u8; 32], _: &(), _: usize) -> __m512 {
        let f = simd.avx512f;
        cast(f._mm512_slli_epi32::<16>(f._mm512_cvtepu16_epi32(cast::<[u8; 32], __m256i>(*blk))))
    }
    #[inline(always)]
    fn tail_value(h: u16) -> Option<f32> {
        Some(f32::from_bits(u32::from(h) << 16))
    }
}

/// Per-block values of Q4_1 / Q5_0 / Q5_1: `d`, `m` (unused by Q5_0) broadcast, the 16
/// quant bytes widened, and the high-bit word (unused by Q4_1).
#[derive(Clone, Copy)]
struct Small {
    d: __m512,
    m: __m512,
    q: __m512i,
    h: u32,
}

/// The 4-bit quants of vector `i` (low nibbles for `i == 0`, high for `i == 1`).
#[inline(always)]
fn nibbles(simd: V4, q: __m512i, i: usize) -> __m512i {
    let f = simd.avx512f;
    if i == 0 {
        f._mm512_and_si512(q, f._mm512_set1_epi32(0x0f))
    } else {
        f._mm512_srli_epi32::<4>(q)
    }
}

/// The 5-bit quants of vector `i` of a Q5_0 / Q5_1 block: the nibbles with bit `16 i + l` of
/// `h` as bit 4 of lane `l`.
#[inline(always)]
fn quants5(simd: V4, p: &Small, i: usize) -> __m512i {
    let f = simd.avx512f;
    let n = nibbles(simd, p.q, i);
    let k = (p.h >> (16 * i)) as u16;
    f._mm512_mask_or_epi32(n, k, n, f._mm512_set1_epi32(16))
}

impl Block<20> for Q4_1 {
    const VECS: usize = 2;
    type Prep = Small;
    #[inline(always)]
    fn empty(simd: V4) -> Small {
        let z = simd.avx512f._mm512_setzero_ps();
        Small { d: z, m: z, q: cast(z), h: 0 }
    }
    #[inline(always)]
    fn prep(simd: V4, f16: &[f32; 65536], blk: &[u8; 20]) -> Small {
        let f = simd.avx512f;
        let d = f._mm512_set1_ps(f16[usize::from(le16(blk, 0))]);
        let m = f._mm512_set1_ps(f16[usize::from(le16(blk, 2))]);
        Small { d, m, q: widen(simd, blk, 4), h: 0 }
    }
    /// `d q + m`: one FMA (`d q` exact).
    #[inline(always)]
    fn vector(simd: V4, _: &[u8; 20], p: &Small, i: usize) -> __m512 {
        let f = simd.avx512f;
        f._mm512_fmadd_ps(p.d, f._mm512_cvtepi32_ps(nibbles(simd, p.q, i)), p.m)
    }
}

impl Block<22> for Q5_0 {
    const VECS: usize = 2;
    type Prep = Small;
    #[inline(always)]
    fn empty(simd: V4) -> Small {
        let z = simd.avx512f._mm512_setzero_ps();
        Small { d: z, m: z, q: cast(z), h: 0 }
    }
    #[inline(always)]
    fn prep(simd: V4, f16: &[f32; 65536], blk: &[u8; 22]) -> Small {
        let f = simd.avx512f;
        let d = f._mm512_set1_ps(f16[usize::from(le16(blk, 0))]);
        Small { d, m: d, q: widen(simd, blk, 6), h: le32(blk, 2) }
    }
    /// `(q - 16) d`, both steps exact.
    #[inline(always)]
    fn vector(simd: V4, _: &[u8; 22], p: &Small, i: usize) -> __m512 {
        let f = simd.avx512f;
        let q = f._mm512_sub_epi32(quants5(simd, p, i), f._mm512_set1_epi32(16));
        f._mm512_mul_ps(f._mm512_cvtepi32_ps(q), p.d)
    }
}

impl Block<24> for Q5_1 {
    const VECS: usize = 2;
    type Prep = Small;
    #[inline(always)]
    fn empty(simd: V4) -> Small {
        let z = simd.avx512f._mm512_setzero_ps();
        Small { d: z, m: z, q: cast(z), h: 0 }
    }
    #[inline(always)]
    fn prep(simd: V4, f16: &[f32; 65536], blk: &[u8; 24]) -> Small {
        let f = simd.avx512f;
        let d = f._mm512_set1_ps(f16[usize::from(le16(blk, 0))]);
        let m = f._mm512_set1_ps(f16[usize::from(le16(blk, 2))]);
        Small { d, m, q: widen(simd, blk, 8), h: le32(blk, 4) }
    }
    /// `d q + m`: one FMA (`d q` exact).
    #[inline(always)]
    fn vector(simd: V4, _: &[u8; 24], p: &Small, i: usize) -> __m512 {
        let f = simd.avx512f;
        f._mm512_fmadd_ps(p.d, f._mm512_cvtepi32_ps(quants5(simd, p, i)), p.m)
    }
}

/// Per-super-block values of Q4_K / Q5_K: `d * sc[s]` and `dmin * mn[s]` of the 8
/// sub-blocks (exact products, as the portable rows).
#[derive(Clone, Copy)]
struct KScales {
    d1: [f32; 8],
    m1: [f32; 8],
}

/// Scales and mins of the 8 sub-blocks from `d`, `dmin` and the 12 packed bytes at
/// `blk[4..16]` (ggml `get_scale_min_k4`).
#[inline(always)]
fn k_scales(f16: &[f32; 65536], blk: &[u8]) -> KScales {
    let (d, dmin) = (f16[usize::from(le16(blk, 0))], f16[usize::from(le16(blk, 2))]);
    let sc = &blk[4..16];
    let mut out = KScales { d1: [0.0; 8], m1: [0.0; 8] };
    for s in 0..8 {
        let (a, m) = if s < 4 {
            (sc[s] & 63, sc[s + 4] & 63)
        } else {
            ((sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4), (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4))
        };
        out.d1[s] = d * f32::from(a);
        out.m1[s] = dmin * f32::from(m);
    }
    out
}

/// `[0, 1, .., 15]` and `[16, .., 31]`: the quants a dequantization table is built for.
const IOTA16: [f32; 16] = iota(0.0);
const IOTA16_HI: [f32; 16] = iota(16.0);

const fn iota(first: f32) -> [f32; 16] {
    let mut t = [0f32; 16];
    let mut n = 0;
    while n < 16 {
        t[n] = first + n as f32;
        n += 1;
    }
    t
}

/// The quant bytes of vector `i` of a Q4_K / Q5_K super-block whose 128 quant bytes start at
/// `qs`, widened to 32-bit lanes with the lane's nibble in bits 0..4 (the bits above are
/// ignored by the table lookups): sub-block `s = i / 2` reads nibble `s % 2` of bytes
/// `32 (s / 2) + 16 (i % 2) ..`.
#[inline(always)]
fn k_nibbles(simd: V4, blk: &[u8], qs: usize, i: usize) -> __m512i {
    let (s, half) = (i / 2, i % 2);
    let q = widen(simd, blk, qs + 32 * (s / 2) + 16 * half);
    if s % 2 == 0 {
        q
    } else {
        simd.avx512f._mm512_srli_epi32::<4>(q)
    }
}

/// The dequantization table `d1 n - m1` of sub-block `s` for the quants `n` in `iota` (one
/// FMA: `d1 n` is exact, so the one rounding is the portable subtraction's).
#[inline(always)]
fn k_table(simd: V4, p: &KScales, s: usize, iota: [f32; 16]) -> __m512 {
    let f = simd.avx512f;
    f._mm512_fmsub_ps(f._mm512_set1_ps(p.d1[s]), cast(iota), f._mm512_set1_ps(p.m1[s]))
}

impl Block<144> for Q4K {
    const VECS: usize = 16;
    type Prep = KScales;
    #[inline(always)]
    fn empty(_: V4) -> KScales {
        KScales { d1: [0.0; 8], m1: [0.0; 8] }
    }
    #[inline(always)]
    fn prep(_: V4, f16: &[f32; 65536], blk: &[u8; 144]) -> KScales {
        k_scales(f16, blk)
    }
    /// The 16 values `d1 n - m1` of the sub-block's table, looked up by nibble (`vpermps`).
    #[inline(always)]
    fn vector(simd: V4, blk: &[u8; 144], p: &KScales, i: usize) -> __m512 {
        let table = k_table(simd, p, i / 2, IOTA16);
        simd.avx512f._mm512_permutexvar_ps(k_nibbles(simd, blk, 16, i), table)
    }
}

impl Block<176> for Q5K {
    const VECS: usize = 16;
    type Prep = KScales;
    #[inline(always)]
    fn empty(_: V4) -> KScales {
        KScales { d1: [0.0; 8], m1: [0.0; 8] }
    }
    #[inline(always)]
    fn prep(_: V4, f16: &[f32; 65536], blk: &[u8; 176]) -> KScales {
        k_scales(f16, blk)
    }
    /// As Q4_K, from the table of quants `16 + n` in the lanes where bit `s` of
    /// `qh[16 (i % 2) + l]` (bit 4 of the quant) is set.
    #[inline(always)]
    fn vector(simd: V4, blk: &[u8; 176], p: &KScales, i: usize) -> __m512 {
        let f = simd.avx512f;
        let s = i / 2;
        let n = k_nibbles(simd, blk, 48, i);
        let h = widen(simd, blk, 16 + 16 * (i % 2));
        let k = f._mm512_test_epi32_mask(h, f._mm512_set1_epi32(1 << s));
        let lo = f._mm512_permutexvar_ps(n, k_table(simd, p, s, IOTA16));
        f._mm512_mask_permutexvar_ps(lo, k, n, k_table(simd, p, s, IOTA16_HI))
    }
}

/// A Q6_K super-block decoded: the 256 quants `q - 32` as bytes in value order, and the 16
/// scales `d * scales[i]` (exact products).
#[derive(Clone, Copy)]
struct Q6Prep {
    q: [u8; 256],
    ds: [f32; 16],
}

/// Per 16-bit lane shift counts: `a` for the first 32 bytes of a vector, `b` for the rest.
const fn counts(a: u16, b: u16) -> [u16; 32] {
    let mut c = [a; 32];
    let mut i = 16;
    while i < 32 {
        c[i] = b;
        i += 1;
    }
    c
}

impl Block<210> for Q6K {
    const VECS: usize = 16;
    type Prep = Q6Prep;
    #[inline(always)]
    fn empty(_: V4) -> Q6Prep {
        Q6Prep { q: [0; 256], ds: [0.0; 16] }
    }
    /// Half `h` of 128 values: group `k < 4` of 32 has low nibble `k / 2` of
    /// `ql[64 h + 32 (k % 2) + r]` and bits `2 k .. 2 k + 2` of `qh[32 h + r]`, `r < 32`.
    /// With `L = ql[64 h ..][..64]` and `H` = `qh[32 h ..][..32]` twice, groups 0 and 1 are
    /// `(L & 15) | (H << (4, 2) & 0x30)` and groups 2 and 3 `(L >> 4 & 15) | (H >> (0, 2) &
    /// 0x30)` (16-bit shifts by 4 or 2 / 0 or 2 in the two 32-byte halves; bits crossing a
    /// byte boundary are masked off), then `- 32` bytewise (two's complement `i8`).
    #[inline(always)]
    fn prep(simd: V4, f16: &[f32; 65536], blk: &[u8; 210]) -> Q6Prep {
        let (f, bw) = (simd.avx512f, simd.avx512bw);
        let d = f16[usize::from(le16(blk, 208))];
        let mut out = Q6Prep { q: [0; 256], ds: [0.0; 16] };
        for (i, ds) in out.ds.iter_mut().enumerate() {
            *ds = d * f32::from(blk[192 + i] as i8);
        }
        let (low4, top2, bias) =
            (f._mm512_set1_epi8(0x0f), f._mm512_set1_epi8(0x30), f._mm512_set1_epi8(32));
        for h in 0..2 {
            let l: __m512i = cast(bytes64(blk, 64 * h));
            let hh: __m512i = f._mm512_broadcast_i64x4(cast(bytes32(blk, 128 + 32 * h)));
            let g01 = f._mm512_or_si512(
                f._mm512_and_si512(l, low4),
                f._mm512_and_si512(bw._mm512_sllv_epi16(hh, cast(counts(4, 2))), top2),
            );
            let g23 = f._mm512_or_si512(
                f._mm512_and_si512(bw._mm512_srli_epi16::<4>(l), low4),
                f._mm512_and_si512(bw._mm512_srlv_epi16(hh, cast(counts(0, 2))), top2),
            );
            let g01: [u8; 64] = cast(bw._mm512_sub_epi8(g01, bias));
            let g23: [u8; 64] = cast(bw._mm512_sub_epi8(g23, bias));
            out.q[128 * h..][..64].copy_from_slice(&g01);
            out.q[128 * h + 64..][..64].copy_from_slice(&g23);
        }
        out
    }
    /// Values `16 i ..`: `ds[i] * (q - 32)`, exact.
    #[inline(always)]
    fn vector(simd: V4, _: &[u8; 210], p: &Q6Prep, i: usize) -> __m512 {
        let f = simd.avx512f;
        let q = f._mm512_cvtepi8_epi32(cast(bytes16(&p.q, 16 * i)));
        f._mm512_mul_ps(f._mm512_set1_ps(p.ds[i]), f._mm512_cvtepi32_ps(q))
    }
}

/// `b[at .. at + 32]` as an array.
#[inline(always)]
fn bytes32(b: &[u8], at: usize) -> [u8; 32] {
    let mut v = [0u8; 32];
    v.copy_from_slice(&b[at..at + 32]);
    v
}

/// `b[at .. at + 64]` as an array.
#[inline(always)]
fn bytes64(b: &[u8], at: usize) -> [u8; 64] {
    let mut v = [0u8; 64];
    v.copy_from_slice(&b[at..at + 64]);
    v
}
