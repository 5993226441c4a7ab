//! DMMV rows with AVX2 + FMA (x86-64-v3), through `pulp`'s safe intrinsic wrappers.
//!
//! Selected at run time when [`pulp::x86::V3::try_new`] succeeds; the portable rows of
//! [`super::dmmv`] are the fallback. F32 rows are processed [`GROUP_F32`] at a time so every
//! `x` load feeds several rows and their accumulation chains overlap; quantized rows
//! [`GROUP_Q`] at a time. The arithmetic of one row does not depend on the grouping, so the
//! results are the same bits whichever rows are computed together (and however rows are
//! split over threads).
//!
//! Each row stream is prefetched [`PREFETCH_BYTES`] ahead (`_mm_prefetch`, safe in `pulp`):
//! without it the quantized rows ran at about half their cache-resident speed from DRAM.
//!
//! Order (documented in [`super::dmmv`]): F32 keeps the portable 16-lane layout with
//! `acc = fma(w, x, acc)`; Q4_0 / Q8_0 compute per block and lane `l` (0..8)
//! `s = fma(q[l+24], x[l+24], fma(q[l+16], x[l+16], fma(q[l+8], x[l+8], q[l] * x[l])))`
//! (one multiply and three dependent FMAs: measured faster than two independent pairs), then
//! `acc[l] = fma(s, d, acc[l])` over the blocks in order, then an 8-lane tree.

use core::arch::x86_64::{__m128i, __m256, __m256i};
use pulp::x86::V3;
use pulp::{as_arrays, cast};

use super::dmmv::{reduce16, Shape, WeightType};
use super::f16::f16_table;

/// How far ahead of the current position each row stream is prefetched (the hardware
/// prefetchers alone leave the quantized rows latency-bound).
const PREFETCH_BYTES: usize = 4096;

/// Hints the cache line at `row + at` into L1 (`at` may point past the row: a prefetch never
/// faults, and the address is formed with `wrapping_add`, never dereferenced).
#[inline(always)]
fn prefetch(simd: V3, row: &[u8], at: usize) {
    simd.sse._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
        row.as_ptr().wrapping_add(at).cast::<i8>(),
    );
}

/// F32 rows computed together.
const GROUP_F32: usize = 4;
/// Q4_0 / Q8_0 rows computed together (1 measured faster than 2-4: fewer register spills).
const GROUP_Q: usize = 1;

/// Returns the AVX2 + FMA token when the CPU supports x86-64-v3.
pub(super) fn detect() -> Option<V3> {
    V3::try_new()
}

/// Computes rows `first .. first + y.len()` into `y` (shape already checked).
pub(super) fn rows_into(simd: V3, shape: Shape, w: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let f16 = f16_table();
    simd.vectorize(Rows { simd, shape, f16, w, x, first, y });
}

/// The work of [`rows_into`] as a `pulp` operation: a struct with an `#[inline(always)]`
/// `call` (closures are not reliably inlined into the feature-enabled frame).
struct Rows<'a> {
    simd: V3,
    shape: Shape,
    f16: &'a [f32; 65536],
    w: &'a [u8],
    x: &'a [f32],
    first: usize,
    y: &'a mut [f32],
}

impl pulp::NullaryFnOnce for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Rows { simd, shape, f16, w, x, first, y } = self;
        match shape.ty {
            WeightType::F32 => rows_loop::<GROUP_F32>(simd, shape, f16, w, x, first, y),
            _ => rows_loop::<GROUP_Q>(simd, shape, f16, w, x, first, y),
        }
    }
}

/// Rows `first ..` in groups of `G`, then one by one.
#[inline(always)]
fn rows_loop<const G: usize>(
    simd: V3,
    shape: Shape,
    f16: &[f32; 65536],
    w: &[u8],
    x: &[f32],
    first: usize,
    y: &mut [f32],
) {
    let x = &x[..shape.cols];
    let rb = shape.row_bytes;
    let base = &w[first * rb..(first + y.len()) * rb];
    let mut groups = y.chunks_exact_mut(G);
    let mut at = 0;
    for out in &mut groups {
        let rows: [&[u8]; G] = core::array::from_fn(|i| &base[(at + i) * rb..(at + i + 1) * rb]);
        out.copy_from_slice(&group(simd, shape.ty, f16, rows, x));
        at += G;
    }
    for out in groups.into_remainder() {
        *out = group(simd, shape.ty, f16, [&base[at * rb..(at + 1) * rb]], x)[0];
        at += 1;
    }
}

#[inline(always)]
fn group<const N: usize>(
    simd: V3,
    ty: WeightType,
    f16: &[f32; 65536],
    rows: [&[u8]; N],
    x: &[f32],
) -> [f32; N] {
    match ty {
        WeightType::F32 => f32_rows(simd, rows, x),
        WeightType::Q4_0 => q_rows::<N, 18, Q4_0>(simd, f16, rows, x),
        WeightType::Q8_0 => q_rows::<N, 34, Q8_0>(simd, f16, rows, x),
    }
}

/// F32 rows: lanes `k % 16`, `acc = fma(w[k], x[k], acc)` in increasing `k`; the tail of a row
/// whose length is not a multiple of 16 goes into lanes 0.. (`acc + w * x`), then [`reduce16`].
#[inline(always)]
fn f32_rows<const N: usize>(simd: V3, rows: [&[u8]; N], x: &[f32]) -> [f32; N] {
    let (x16, xt) = as_arrays::<16, f32>(x);
    let mut lo = [simd.avx._mm256_setzero_ps(); N];
    let mut hi = [simd.avx._mm256_setzero_ps(); N];
    let w64: [&[[u8; 64]]; N] = rows.map(|r| as_arrays::<64, u8>(r).0);
    for (k, xv) in x16.iter().enumerate() {
        let xv: [__m256; 2] = cast(*xv);
        for r in 0..N {
            prefetch(simd, rows[r], k * 64 + PREFETCH_BYTES);
            let wv: [__m256; 2] = cast(w64[r][k]);
            lo[r] = simd.fma._mm256_fmadd_ps(wv[0], xv[0], lo[r]);
            hi[r] = simd.fma._mm256_fmadd_ps(wv[1], xv[1], hi[r]);
        }
    }
    core::array::from_fn(|r| {
        let mut acc: [f32; 16] = cast([lo[r], hi[r]]);
        let tail = &rows[r][x16.len() * 64..];
        for (l, (wb, xv)) in tail.chunks_exact(4).zip(xt).enumerate() {
            let wv = f32::from_le_bytes([wb[0], wb[1], wb[2], wb[3]]);
            acc[l] += wv * xv;
        }
        reduce16(acc)
    })
}

/// A GGML block format with 32 values per block (a trait, not a closure, so that it is
/// always inlined into the feature-enabled frame).
trait QBlock {
    /// Bytes per block (f16 scale first).
    const BYTES: usize;
    /// The block's 32 quants as four vectors of exact small integers (as f32), in the element
    /// order that [`QBlock::xs`] gives `x`.
    fn quants(simd: V3, blk: &[u8]) -> [__m256; 4];
    /// The block's 32 `x` values (`x[0..8], .., x[24..32]`) rearranged to match
    /// [`QBlock::quants`].
    fn xs(simd: V3, x: [__m256; 4]) -> [__m256; 4];
}

struct Q4_0;
struct Q8_0;

impl QBlock for Q4_0 {
    const BYTES: usize = 18;
    #[inline(always)]
    fn quants(simd: V3, blk: &[u8]) -> [__m256; 4] {
        q4_0_block(simd, blk)
    }
    /// Element order.
    #[inline(always)]
    fn xs(_: V3, x: [__m256; 4]) -> [__m256; 4] {
        x
    }
}

impl QBlock for Q8_0 {
    const BYTES: usize = 34;
    #[inline(always)]
    fn quants(simd: V3, blk: &[u8]) -> [__m256; 4] {
        q8_0_block(simd, blk)
    }
    /// Element order.
    #[inline(always)]
    fn xs(_: V3, x: [__m256; 4]) -> [__m256; 4] {
        x
    }
}

/// Quantized rows of format `B` (`BYTES == B::BYTES`, a separate parameter so that blocks are
/// fixed-size arrays and need no bounds checks).
#[inline(always)]
fn q_rows<const N: usize, const BYTES: usize, B: QBlock>(
    simd: V3,
    f16: &[f32; 65536],
    rows: [&[u8]; N],
    x: &[f32],
) -> [f32; N] {
    debug_assert_eq!(BYTES, B::BYTES);
    let (x32, _) = as_arrays::<32, f32>(x);
    let blocks: [&[[u8; BYTES]]; N] = rows.map(|r| as_arrays::<BYTES, u8>(r).0);
    let nb = x32.len().min(blocks.iter().map(|b| b.len()).min().unwrap_or(0));
    let mut acc = [simd.avx._mm256_setzero_ps(); N];
    for (b, xb) in x32[..nb].iter().enumerate() {
        let xv = B::xs(simd, cast(*xb));
        for r in 0..N {
            // One prefetch per 64-byte line: the first block that starts in it.
            if (b * BYTES) % 64 < BYTES {
                prefetch(simd, rows[r], b * BYTES + PREFETCH_BYTES);
            }
            let blk = &blocks[r][b];
            let q = B::quants(simd, blk);
            let s = simd.avx._mm256_mul_ps(q[0], xv[0]);
            let s = simd.fma._mm256_fmadd_ps(q[1], xv[1], s);
            let s = simd.fma._mm256_fmadd_ps(q[2], xv[2], s);
            let s = simd.fma._mm256_fmadd_ps(q[3], xv[3], s);
            let d = simd.avx._mm256_set1_ps(f16[usize::from(u16::from_le_bytes([blk[0], blk[1]]))]);
            acc[r] = simd.fma._mm256_fmadd_ps(s, d, acc[r]);
        }
    }
    acc.map(|a| {
        let a: [f32; 8] = cast(a);
        let s4: [f32; 4] = core::array::from_fn(|l| a[l] + a[l + 4]);
        let s2: [f32; 2] = core::array::from_fn(|l| s4[l] + s4[l + 2]);
        s2[0] + s2[1]
    })
}

/// Q4_0 block `{f16 d; u8 qs[16]}`: element `j < 16` is `lo(qs[j]) - 8`, `j + 16` is `hi(qs[j]) - 8`.
#[inline(always)]
fn q4_0_block(simd: V3, blk: &[u8]) -> [__m256; 4] {
    let a = simd.avx2._mm256_cvtepu8_epi32(bytes8(blk, 2)); // qs[0..8]
    let b = simd.avx2._mm256_cvtepu8_epi32(bytes8(blk, 10)); // qs[8..16]
    let m = simd.avx._mm256_set1_epi32(0x0f);
    [
        minus8(simd, simd.avx2._mm256_and_si256(a, m)),
        minus8(simd, simd.avx2._mm256_and_si256(b, m)),
        minus8(simd, simd.avx2._mm256_srli_epi32::<4>(a)),
        minus8(simd, simd.avx2._mm256_srli_epi32::<4>(b)),
    ]
}

/// `n - 8` as f32 for integer lanes `0 <= n < 16`, exactly: the bits `0x4B00_0000 | n` are
/// the f32 `2^23 + n`, minus `2^23 + 8`.
#[inline(always)]
fn minus8(simd: V3, n: __m256i) -> __m256 {
    let magic = simd.avx._mm256_set1_epi32(0x4b00_0000);
    let bias = simd.avx._mm256_set1_ps(8_388_616.0);
    simd.avx._mm256_sub_ps(simd.avx._mm256_castsi256_ps(simd.avx2._mm256_or_si256(n, magic)), bias)
}

/// Q8_0 block `{f16 d; i8 qs[32]}`: element `j` is `qs[j]`.
#[inline(always)]
fn q8_0_block(simd: V3, blk: &[u8]) -> [__m256; 4] {
    let lo: __m128i = cast(bytes16(blk, 2));
    let hi: __m128i = cast(bytes16(blk, 18));
    [
        i8_to_f32(simd, lo),
        i8_to_f32(simd, simd.sse2._mm_unpackhi_epi64(lo, lo)),
        i8_to_f32(simd, hi),
        i8_to_f32(simd, simd.sse2._mm_unpackhi_epi64(hi, hi)),
    ]
}

/// The low 8 bytes of `v` as signed integers -> 8 f32.
#[inline(always)]
fn i8_to_f32(simd: V3, v: __m128i) -> __m256 {
    simd.avx._mm256_cvtepi32_ps(simd.avx2._mm256_cvtepi8_epi32(v))
}

/// `b[at .. at + 8]` in the low half of a vector.
#[inline(always)]
fn bytes8(b: &[u8], at: usize) -> __m128i {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    cast([u64::from_le_bytes(v), 0])
}

/// `b[at .. at + 16]` as an array.
#[inline(always)]
fn bytes16(b: &[u8], at: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&b[at..at + 16]);
    out
}
