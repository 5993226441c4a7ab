//! Block-format DMMV rows (BF16, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) with AVX2 + FMA
//! (x86-64-v3), through `pulp`'s safe intrinsic wrappers.
//!
//! The AVX2 counterpart of [`super::dmmv_blocks_v4`], with the same contract: the portable
//! order of [`super::dmmv_blocks`] (16 lanes, here two 256-bit vectors, `acc = acc + w * x`
//! without FMA, then [`reduce16`]) and the portable dequantized values bit for bit (the one
//! rounded step `d q + m` / `d1 q - m1` as an FMA, `d q` being exact), so every result has
//! the portable bits (tested). [`GROUP`] rows per pass share each `x` load. F16 is not here:
//! `pulp` 0.22 exposes no F16C wrapper, so its rows stay the portable code in the AVX2 frame.

use core::arch::x86_64::{__m256, __m256i};
use core::marker::PhantomData;
use pulp::x86::V3;
use pulp::{as_arrays, cast};

use super::dmmv::{reduce16, Shape, WeightType};
use super::dmmv_v3::{prefetch, PREFETCH_BYTES};
use super::f16::f16_table;

/// Rows computed together.
const GROUP: usize = 2;

/// Sixteen values as two 8-lane vectors (lanes 0..8, 8..16).
type V16 = [__m256; 2];

/// Computes rows `first .. first + y.len()` of a block-format product into `y` (shape
/// already checked). Returns `false` (and leaves `y`) for F16 and the formats of
/// [`super::dmmv`].
pub(super) fn rows_into(
    simd: V3,
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
        WeightType::Bf16 => run!(32, Bf16),
        WeightType::Q4_1 => run!(20, Q4_1),
        WeightType::Q5_0 => run!(22, Q5_0),
        WeightType::Q5_1 => run!(24, Q5_1),
        WeightType::Q4K => run!(144, Q4K),
        WeightType::Q5K => run!(176, Q5K),
        WeightType::Q6K => run!(210, Q6K),
        WeightType::F16 | WeightType::F32 | WeightType::Q4_0 | WeightType::Q8_0 => return false,
    }
    true
}

/// A block format decoded 16 dequantized values at a time.
trait Block<const BYTES: usize> {
    /// Groups of 16 values per block.
    const VECS: usize;
    /// Per-block values shared by its vectors.
    type Prep: Copy;
    /// A placeholder [`Block::Prep`] (overwritten before use).
    fn empty() -> Self::Prep;
    /// Decodes what the vectors of `blk` share.
    fn prep(simd: V3, f16: &[f32; 65536], blk: &[u8; BYTES]) -> Self::Prep;
    /// Dequantized values `16 i .. 16 i + 16` of the block, bit for bit the portable ones.
    fn vector(simd: V3, blk: &[u8; BYTES], p: &Self::Prep, i: usize) -> V16;
    /// BF16: the value of one 2-byte element past the last 16 of a row; `None` for the
    /// quantized formats (whole blocks only).
    #[inline(always)]
    fn tail_value(_: u16) -> Option<f32> {
        None
    }
}

/// The rows of [`rows_into`] in format `B` as a `pulp` operation (an `#[inline(always)]`
/// `call`, so the whole loop is compiled with AVX2 + FMA enabled).
struct Rows<'a, const BYTES: usize, B> {
    simd: V3,
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

/// `N` rows: per block, per 16 values, `acc[r] = acc[r] + w_r * x` (the portable lanes), then
/// the BF16 tail into lanes 0.. and [`reduce16`].
#[inline(always)]
fn group<const N: usize, const BYTES: usize, B: Block<BYTES>>(
    simd: V3,
    f16: &[f32; 65536],
    rows: [&[u8]; N],
    x: &[f32],
) -> [f32; N] {
    let a = simd.avx;
    let (x16, _) = as_arrays::<16, f32>(x);
    let blocks: [&[[u8; BYTES]]; N] = rows.map(|r| as_arrays::<BYTES, u8>(r).0);
    let nb = (x16.len() / B::VECS).min(blocks.iter().map(|b| b.len()).min().unwrap_or(0));
    let mut acc = [[a._mm256_setzero_ps(); 2]; N];
    for b in 0..nb {
        let xb = &x16[b * B::VECS..][..B::VECS];
        // A loop, not `array::from_fn` (see `dmmv_blocks_v4`).
        let mut preps = [B::empty(); N];
        for r in 0..N {
            for l in 0..BYTES.div_ceil(64) {
                prefetch(simd, rows[r], b * BYTES + l * 64 + PREFETCH_BYTES);
            }
            preps[r] = B::prep(simd, f16, &blocks[r][b]);
        }
        for (i, xv) in xb.iter().enumerate() {
            let xv: V16 = cast(*xv);
            for r in 0..N {
                let wv = B::vector(simd, &blocks[r][b], &preps[r], i);
                for h in 0..2 {
                    acc[r][h] = a._mm256_add_ps(acc[r][h], a._mm256_mul_ps(wv[h], xv[h]));
                }
            }
        }
    }
    core::array::from_fn(|r| {
        let mut l16: [f32; 16] = cast(acc[r]);
        let tail = &rows[r][nb * BYTES..];
        for (l, (c, xv)) in tail.chunks_exact(2).zip(&x[nb * 16..]).enumerate() {
            if let Some(v) = B::tail_value(u16::from_le_bytes([c[0], c[1]])) {
                l16[l] += v * xv;
            }
        }
        reduce16(l16)
    })
}

/// `b[at .. at + 8]` in the low half of a 16-byte array.
#[inline(always)]
fn bytes8(b: &[u8], at: usize) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&b[at..at + 8]);
    v
}

/// `b[at .. at + 8]` zero-extended to eight 32-bit lanes.
#[inline(always)]
fn widen8(simd: V3, b: &[u8], at: usize) -> __m256i {
    simd.avx2._mm256_cvtepu8_epi32(cast(bytes8(b, at)))
}

#[inline(always)]
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

struct Bf16;

/// Eight bf16 values at `blk[at ..]` as f32.
#[inline(always)]
fn bf16_half(simd: V3, blk: &[u8], at: usize) -> __m256 {
    let v = simd.avx2;
    let mut b = [0u8; 16];
    b.copy_from_slice(&blk[at..at + 16]);
    cast(v._mm256_slli_epi32::<16>(v._mm256_cvtepu16_epi32(cast(b))))
}
struct Q4_1;
struct Q5_0;
struct Q5_1;
struct Q4K;
struct Q5K;
struct Q6K;

impl Block<32> for Bf16 {
    const VECS: usize = 1;
    type Prep = ();
    #[inline(always)]
    fn empty() {}
    #[inline(always)]
    fn prep(_: V3, _: &[f32; 65536], _: &[u8; 32]) {}
    /// The upper half of an f32: zero-extend, shift left by 16.
    #[inline(always)]
    fn vector(simd: V3, blk: &[u8; 32], _: &(), _: usize) -> V16 {
        [bf16_half(simd, blk, 0), bf16_half(simd, blk, 16)]
    }
    #[inline(always)]
    fn tail_value(h: u16) -> Option<f32> {
        Some(f32::from_bits(u32::from(h) << 16))
    }
}

/// Per-block values of Q4_1 / Q5_0 / Q5_1: `d`, `m` (unused by Q5_0), where the quant bytes
/// start, and the high-bit word (unused by Q4_1).
#[derive(Clone, Copy)]
struct Small {
    d: f32,
    m: f32,
    h: u32,
}

const SMALL0: Small = Small { d: 0.0, m: 0.0, h: 0 };

/// The 4-bit quants of values `16 i + 8 j ..` (`j < 2`) of a block whose 16 quant bytes
/// start at `qs`: low nibbles for `i == 0`, high for `i == 1`.
#[inline(always)]
fn nibbles(simd: V3, blk: &[u8], qs: usize, i: usize, j: usize) -> __m256i {
    let v = simd.avx2;
    let q = widen8(simd, blk, qs + 8 * j);
    if i == 0 {
        v._mm256_and_si256(q, simd.avx._mm256_set1_epi32(0x0f))
    } else {
        v._mm256_srli_epi32::<4>(q)
    }
}

/// `(h >> (first + l) & 1) << 4` in lane `l`: bit 4 of the quants from a high-bit word.
#[inline(always)]
fn fifth_bits(simd: V3, h: u32, first: u32) -> __m256i {
    let (v, a) = (simd.avx2, simd.avx);
    let lanes: __m256i = cast([0u32, 1, 2, 3, 4, 5, 6, 7]);
    let s = v._mm256_srlv_epi32(a._mm256_set1_epi32((h >> first) as i32), lanes);
    v._mm256_slli_epi32::<4>(v._mm256_and_si256(s, a._mm256_set1_epi32(1)))
}

/// The 5-bit quants of values `16 i + 8 j ..` of a Q5_0 / Q5_1 block.
#[inline(always)]
fn quants5(simd: V3, blk: &[u8], qs: usize, h: u32, i: usize, j: usize) -> __m256i {
    let n = nibbles(simd, blk, qs, i, j);
    simd.avx2._mm256_or_si256(n, fifth_bits(simd, h, (16 * i + 8 * j) as u32))
}

/// `d q + m` for 16 quants (one FMA each: `d q` exact).
#[inline(always)]
fn affine(simd: V3, p: &Small, q: [__m256i; 2]) -> V16 {
    let a = simd.avx;
    let (d, m) = (a._mm256_set1_ps(p.d), a._mm256_set1_ps(p.m));
    // No closures: they are not reliably inlined into the AVX2 frame.
    [
        simd.fma._mm256_fmadd_ps(d, a._mm256_cvtepi32_ps(q[0]), m),
        simd.fma._mm256_fmadd_ps(d, a._mm256_cvtepi32_ps(q[1]), m),
    ]
}

impl Block<20> for Q4_1 {
    const VECS: usize = 2;
    type Prep = Small;
    #[inline(always)]
    fn empty() -> Small {
        SMALL0
    }
    #[inline(always)]
    fn prep(_: V3, f16: &[f32; 65536], blk: &[u8; 20]) -> Small {
        Small { d: f16[usize::from(le16(blk, 0))], m: f16[usize::from(le16(blk, 2))], h: 0 }
    }
    #[inline(always)]
    fn vector(simd: V3, blk: &[u8; 20], p: &Small, i: usize) -> V16 {
        affine(simd, p, [nibbles(simd, blk, 4, i, 0), nibbles(simd, blk, 4, i, 1)])
    }
}

impl Block<22> for Q5_0 {
    const VECS: usize = 2;
    type Prep = Small;
    #[inline(always)]
    fn empty() -> Small {
        SMALL0
    }
    #[inline(always)]
    fn prep(_: V3, f16: &[f32; 65536], blk: &[u8; 22]) -> Small {
        Small { d: f16[usize::from(le16(blk, 0))], m: 0.0, h: le32(blk, 2) }
    }
    /// `(q - 16) d`, both steps exact.
    #[inline(always)]
    fn vector(simd: V3, blk: &[u8; 22], p: &Small, i: usize) -> V16 {
        let a = simd.avx;
        let (d, bias) = (a._mm256_set1_ps(p.d), a._mm256_set1_epi32(16));
        let q0 = simd.avx2._mm256_sub_epi32(quants5(simd, blk, 6, p.h, i, 0), bias);
        let q1 = simd.avx2._mm256_sub_epi32(quants5(simd, blk, 6, p.h, i, 1), bias);
        [a._mm256_mul_ps(a._mm256_cvtepi32_ps(q0), d), a._mm256_mul_ps(a._mm256_cvtepi32_ps(q1), d)]
    }
}

impl Block<24> for Q5_1 {
    const VECS: usize = 2;
    type Prep = Small;
    #[inline(always)]
    fn empty() -> Small {
        SMALL0
    }
    #[inline(always)]
    fn prep(_: V3, f16: &[f32; 65536], blk: &[u8; 24]) -> Small {
        let (d, m) = (f16[usize::from(le16(blk, 0))], f16[usize::from(le16(blk, 2))]);
        Small { d, m, h: le32(blk, 4) }
    }
    #[inline(always)]
    fn vector(simd: V3, blk: &[u8; 24], p: &Small, i: usize) -> V16 {
        affine(simd, p, [quants5(simd, blk, 8, p.h, i, 0), quants5(simd, blk, 8, p.h, i, 1)])
    }
}

/// `d * sc[s]` and `dmin * mn[s]` of the 8 sub-blocks of a Q4_K / Q5_K super-block (exact
/// products; ggml `get_scale_min_k4`).
#[derive(Clone, Copy)]
struct KScales {
    d1: [f32; 8],
    m1: [f32; 8],
}

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

/// Nibbles of values `16 i + 8 j ..` of a Q4_K / Q5_K super-block whose quant bytes start at
/// `qs`: sub-block `s = i / 2` reads nibble `s % 2` of bytes `32 (s / 2) + 16 (i % 2) ..`.
#[inline(always)]
fn k_nibbles(simd: V3, blk: &[u8], qs: usize, i: usize, j: usize) -> __m256i {
    let s = i / 2;
    nibbles(simd, blk, qs + 32 * (s / 2) + 16 * (i % 2), s % 2, j)
}

/// `d1 q - m1` of sub-block `s` (one FMA: `d1 q` exact).
#[inline(always)]
fn k_values(simd: V3, p: &KScales, s: usize, q: [__m256i; 2]) -> V16 {
    let a = simd.avx;
    let (d1, m1) = (a._mm256_set1_ps(p.d1[s]), a._mm256_set1_ps(p.m1[s]));
    [
        simd.fma._mm256_fmsub_ps(d1, a._mm256_cvtepi32_ps(q[0]), m1),
        simd.fma._mm256_fmsub_ps(d1, a._mm256_cvtepi32_ps(q[1]), m1),
    ]
}

impl Block<144> for Q4K {
    const VECS: usize = 16;
    type Prep = KScales;
    #[inline(always)]
    fn empty() -> KScales {
        KScales { d1: [0.0; 8], m1: [0.0; 8] }
    }
    #[inline(always)]
    fn prep(_: V3, f16: &[f32; 65536], blk: &[u8; 144]) -> KScales {
        k_scales(f16, blk)
    }
    #[inline(always)]
    fn vector(simd: V3, blk: &[u8; 144], p: &KScales, i: usize) -> V16 {
        k_values(simd, p, i / 2, [k_nibbles(simd, blk, 16, i, 0), k_nibbles(simd, blk, 16, i, 1)])
    }
}

impl Block<176> for Q5K {
    const VECS: usize = 16;
    type Prep = KScales;
    #[inline(always)]
    fn empty() -> KScales {
        KScales { d1: [0.0; 8], m1: [0.0; 8] }
    }
    #[inline(always)]
    fn prep(_: V3, f16: &[f32; 65536], blk: &[u8; 176]) -> KScales {
        k_scales(f16, blk)
    }
    /// As Q4_K with `((qh[16 (i % 2) + 8 j + l] >> s) & 1) << 4` added.
    #[inline(always)]
    fn vector(simd: V3, blk: &[u8; 176], p: &KScales, i: usize) -> V16 {
        k_values(simd, p, i / 2, [q5_k_quants(simd, blk, i, 0), q5_k_quants(simd, blk, i, 1)])
    }
}

/// The 5-bit quants of values `16 i + 8 j ..` of a Q5_K super-block.
#[inline(always)]
fn q5_k_quants(simd: V3, blk: &[u8], i: usize, j: usize) -> __m256i {
    let (v, a) = (simd.avx2, simd.avx);
    let h = widen8(simd, blk, 16 + 16 * (i % 2) + 8 * j);
    let h = v._mm256_srlv_epi32(h, a._mm256_set1_epi32((i / 2) as i32));
    let h = v._mm256_slli_epi32::<4>(v._mm256_and_si256(h, a._mm256_set1_epi32(1)));
    v._mm256_or_si256(k_nibbles(simd, blk, 48, i, j), h)
}

/// `b[at .. at + 32]` as a vector.
#[inline(always)]
fn load32(b: &[u8], at: usize) -> __m256i {
    let mut v = [0u8; 32];
    v.copy_from_slice(&b[at..at + 32]);
    cast(v)
}

/// A Q6_K super-block decoded: the 256 quants `q - 32` as bytes in value order, and the 16
/// scales `d * scales[i]` (exact products).
#[derive(Clone, Copy)]
struct Q6Prep {
    q: [u8; 256],
    ds: [f32; 16],
}

impl Block<210> for Q6K {
    const VECS: usize = 16;
    type Prep = Q6Prep;
    #[inline(always)]
    fn empty() -> Q6Prep {
        Q6Prep { q: [0; 256], ds: [0.0; 16] }
    }
    /// Group `k < 4` of 32 values of half `h`: low nibble `k / 2` of
    /// `ql[64 h + 32 (k % 2) + r]` and bits `2 k .. 2 k + 2` of `qh[32 h + r]` moved to bits
    /// 4..6 (16-bit shifts by constants; bits crossing a byte are masked off), `- 32`
    /// bytewise.
    #[inline(always)]
    fn prep(simd: V3, f16: &[f32; 65536], blk: &[u8; 210]) -> Q6Prep {
        let (v, a) = (simd.avx2, simd.avx);
        let d = f16[usize::from(le16(blk, 208))];
        let mut out = Self::empty();
        for (i, ds) in out.ds.iter_mut().enumerate() {
            *ds = d * f32::from(blk[192 + i] as i8);
        }
        let (low4, top2, bias) =
            (a._mm256_set1_epi8(0x0f), a._mm256_set1_epi8(0x30), a._mm256_set1_epi8(32));
        for h in 0..2 {
            let hh = load32(blk, 128 + 32 * h);
            let his = [
                v._mm256_slli_epi16::<4>(hh),
                v._mm256_slli_epi16::<2>(hh),
                hh,
                v._mm256_srli_epi16::<2>(hh),
            ];
            for (k, hi) in his.into_iter().enumerate() {
                let l = load32(blk, 64 * h + 32 * (k % 2));
                let l = if k < 2 { l } else { v._mm256_srli_epi16::<4>(l) };
                let q =
                    v._mm256_or_si256(v._mm256_and_si256(l, low4), v._mm256_and_si256(hi, top2));
                let q: [u8; 32] = cast(v._mm256_sub_epi8(q, bias));
                out.q[128 * h + 32 * k..][..32].copy_from_slice(&q);
            }
        }
        out
    }
    /// Values `16 i ..`: `ds[i] * (q - 32)`, exact.
    #[inline(always)]
    fn vector(simd: V3, _: &[u8; 210], p: &Q6Prep, i: usize) -> V16 {
        let a = simd.avx;
        let ds = a._mm256_set1_ps(p.ds[i]);
        let q0 = simd.avx2._mm256_cvtepi8_epi32(cast(bytes8(&p.q, 16 * i)));
        let q1 = simd.avx2._mm256_cvtepi8_epi32(cast(bytes8(&p.q, 16 * i + 8)));
        [
            a._mm256_mul_ps(ds, a._mm256_cvtepi32_ps(q0)),
            a._mm256_mul_ps(ds, a._mm256_cvtepi32_ps(q1)),
        ]
    }
}
