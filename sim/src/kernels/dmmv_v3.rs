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
//! `acc = fma(w, x, acc)`. Q4_0 / Q8_0 decode each block's integers already multiplied by a
//! power of two (`2^28` / `2^24`: the bytes are moved to the top of 32-bit lanes with one
//! `pshufb`, so no shift or bias subtraction is needed before the int -> f32 conversion),
//! compute per block and lane `s = (q0 x0 + q1 x1) + (q2 x2 + q3 x3)` (a multiply and an fma
//! per pair, then an add), `acc[b % 2] = fma(s, d, acc[b % 2])` (two accumulators, so
//! consecutive blocks do not wait for each other), then `acc[0] + acc[1]`, an 8-lane tree and
//! the exact power-of-two unscaling. Scaling by a power of two commutes with every rounding
//! unless a value leaves the normal range, which [`x_in_scaled_range`] rules out for
//! overflow (the caller falls back to the portable rows otherwise); underflow can only make
//! the scaled computation more accurate. Measured on the 2-core Zen 3 CI machine: about 10%
//! fewer cycles per Q4_0 block than the previous bias-subtracting decode with one accumulator.

use core::arch::x86_64::{__m256, __m256i};
use pulp::x86::V3;
use pulp::{as_arrays, cast};

use super::dmmv::{reduce16, Shape, WeightType};
use super::f16::f16_table;

/// How far ahead of the current position each row stream is prefetched (the hardware
/// prefetchers alone leave the quantized rows latency-bound).
pub(super) const PREFETCH_BYTES: usize = 4096;

/// Hints the cache line at `row + at` into L1 (`at` may point past the row: a prefetch never
/// faults, and the address is formed with `wrapping_add`, never dereferenced).
#[inline(always)]
pub(super) fn prefetch(simd: V3, row: &[u8], at: usize) {
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
            WeightType::Q4_0 | WeightType::Q8_0 => {
                rows_loop::<GROUP_Q>(simd, shape, f16, w, x, first, y)
            }
            // The block formats: AVX2 decoders (same bits as the portable rows); F16 (no
            // F16C in `pulp`) runs the portable rows, inlined here so they are compiled
            // with AVX2 + FMA enabled (same bits: no FMA contraction).
            _ => {
                if !super::dmmv_blocks_v3::rows_into(simd, shape, w, x, first, y) {
                    super::dmmv_blocks::rows_into(shape, w, x, first, y);
                }
            }
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
        // Block formats never reach the grouped rows (see `Rows::call`).
        _ => [f32::NAN; N],
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
    /// The power of two by which [`QBlock::quants`] scales the block's integers; a row's
    /// result is multiplied by its inverse.
    const SCALE_LOG2: i32;
    /// The block's 32 quants times `2^SCALE_LOG2` as four vectors of exact f32 values:
    /// vector `k`, lane `l` holds element `8 k + l`.
    fn quants(simd: V3, blk: &[u8]) -> [__m256; 4];
}

struct Q4_0;
struct Q8_0;

impl QBlock for Q4_0 {
    const BYTES: usize = 18;
    const SCALE_LOG2: i32 = 28;
    #[inline(always)]
    fn quants(simd: V3, blk: &[u8]) -> [__m256; 4] {
        q4_0_block(simd, blk)
    }
}

impl QBlock for Q8_0 {
    const BYTES: usize = 34;
    const SCALE_LOG2: i32 = 24;
    #[inline(always)]
    fn quants(simd: V3, blk: &[u8]) -> [__m256; 4] {
        q8_0_block(simd, blk)
    }
}

/// Largest finite `|x|` for which the scaled quantized rows are used: with quants scaled by at
/// most `2^31` and `|d| <= 65504 < 2^16`, every partial sum stays below `cols * 2^79`, far
/// from the f32 overflow threshold `2^128` (for any `cols < 2^48`).
pub(super) const SCALED_X_MAX: f32 = 4_294_967_296.0; // 2^32

/// Whether the scaled quantized rows may be used with `x`: every element is either
/// non-finite (propagates as it would unscaled) or at most [`SCALED_X_MAX`] in magnitude.
pub(super) fn x_in_scaled_range(x: &[f32]) -> bool {
    x.iter().all(|v| !v.is_finite() || v.abs() <= SCALED_X_MAX)
}

/// Blocks accumulated in independent accumulators (block `b` goes to accumulator `b % 2`).
const BLOCK_ACCS: usize = 2;

/// A row's blocks as groups of [`BLOCK_ACCS`] and the remaining (fewer) blocks.
type Paired<'a, const BYTES: usize> = (&'a [[[u8; BYTES]; BLOCK_ACCS]], &'a [[u8; BYTES]]);

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
    let (xp, xt) = as_arrays::<BLOCK_ACCS, [f32; 32]>(&x32[..nb]);
    let paired: [Paired<'_, BYTES>; N] =
        blocks.map(|b| as_arrays::<BLOCK_ACCS, [u8; BYTES]>(&b[..nb]));
    let zero = simd.avx._mm256_setzero_ps();
    let mut acc = [[zero; BLOCK_ACCS]; N];
    for (p, xs) in xp.iter().enumerate() {
        for r in 0..N {
            // Unconditional prefetches, one per started 64 bytes of the group of blocks
            // (Q4_0: one per 36 bytes, Q8_0: two per 68), so no 64-byte line is skipped:
            // cheaper than testing for the first block of each line.
            for l in 0..(BLOCK_ACCS * BYTES).div_ceil(64) {
                prefetch(simd, rows[r], p * BLOCK_ACCS * BYTES + l * 64 + PREFETCH_BYTES);
            }
            for (u, (blk, xb)) in paired[r].0[p].iter().zip(xs).enumerate() {
                acc[r][u] = block_step::<B>(simd, f16, blk, xb, acc[r][u]);
            }
        }
    }
    for r in 0..N {
        for (blk, xb) in paired[r].1.iter().zip(xt) {
            acc[r][0] = block_step::<B>(simd, f16, blk, xb, acc[r][0]);
        }
    }
    let unscale = f32::from_bits(((127 - B::SCALE_LOG2) as u32) << 23);
    acc.map(|[a0, a1]| {
        let a: [f32; 8] = cast(simd.avx._mm256_add_ps(a0, a1));
        let s4: [f32; 4] = core::array::from_fn(|l| a[l] + a[l + 4]);
        let s2: [f32; 2] = core::array::from_fn(|l| s4[l] + s4[l + 2]);
        (s2[0] + s2[1]) * unscale
    })
}

/// One block into an accumulator: `acc + d * ((q0 x0 + q1 x1) + (q2 x2 + q3 x3))` per lane
/// (`q0 x0` a multiply, `+ q1 x1` an fma, likewise for the second pair, one add, one fma).
#[inline(always)]
fn block_step<B: QBlock>(
    simd: V3,
    f16: &[f32; 65536],
    blk: &[u8],
    xb: &[f32; 32],
    acc: __m256,
) -> __m256 {
    let xv: [__m256; 4] = cast(*xb);
    let q = B::quants(simd, blk);
    let s0 = simd.fma._mm256_fmadd_ps(q[1], xv[1], simd.avx._mm256_mul_ps(q[0], xv[0]));
    let s1 = simd.fma._mm256_fmadd_ps(q[3], xv[3], simd.avx._mm256_mul_ps(q[2], xv[2]));
    let s = simd.avx._mm256_add_ps(s0, s1);
    // One 16-bit load (a `[u8; 2]` copy, not two byte loads).
    let h = blk.first_chunk::<2>().map_or(0, |h| u16::from_le_bytes(*h));
    let d = simd.avx._mm256_set1_ps(f16[usize::from(h)]);
    simd.fma._mm256_fmadd_ps(s, d, acc)
}

/// `pshufb` control moving byte `first + i` of each 128-bit half into the top byte of dword
/// `i` (`i < 8`; dwords 4..8 read the upper half, which holds the same 16 bytes) and zeroing
/// the other bytes.
const fn top_byte_control(first: u8) -> [u8; 32] {
    let mut c = [0x80u8; 32];
    let mut i = 0;
    while i < 8 {
        c[i * 4 + 3] = first + i as u8;
        i += 1;
    }
    c
}

/// 16 bytes, in both 128-bit halves of a vector.
#[inline(always)]
fn broadcast16(simd: V3, b: &[u8], at: usize) -> __m256i {
    simd.avx2._mm256_broadcastsi128_si256(cast(bytes16(b, at)))
}

/// Q4_0 block `{f16 d; u8 qs[16]}`: element `j < 16` is `lo(qs[j]) - 8`, `j + 16` is
/// `hi(qs[j]) - 8`; returned times `2^28`.
///
/// `qs ^ 0x88` turns both nibbles into 4-bit two's complement values equal to `nibble - 8`.
/// Each byte is moved to the top of a 32-bit lane (`pshufb`): the lane is then the signed
/// integer `(hi - 8) * 2^28 + (lo ^ 8) * 2^24`. Masking the top nibble gives
/// `(hi - 8) * 2^28`; shifting left by 4 gives `(lo - 8) * 2^28`. Both convert to f32 exactly.
#[inline(always)]
fn q4_0_block(simd: V3, blk: &[u8]) -> [__m256; 4] {
    let v = simd.avx2._mm256_xor_si256(broadcast16(simd, blk, 2), simd.avx._mm256_set1_epi8(-120)); // 0x88
    let a = simd.avx2._mm256_shuffle_epi8(v, cast(top_byte_control(0))); // qs[0..8]
    let b = simd.avx2._mm256_shuffle_epi8(v, cast(top_byte_control(8))); // qs[8..16]
    let hi = simd.avx._mm256_set1_epi32(0xf000_0000_u32 as i32);
    let lo = |n: __m256i| simd.avx._mm256_cvtepi32_ps(simd.avx2._mm256_slli_epi32::<4>(n));
    let hi = |n: __m256i| simd.avx._mm256_cvtepi32_ps(simd.avx2._mm256_and_si256(n, hi));
    [lo(a), lo(b), hi(a), hi(b)]
}

/// Q8_0 block `{f16 d; i8 qs[32]}`: element `j` is `qs[j]`; returned times `2^24` (each byte
/// moved to the top of a 32-bit lane is the signed integer `qs[j] * 2^24`).
#[inline(always)]
fn q8_0_block(simd: V3, blk: &[u8]) -> [__m256; 4] {
    let lo = broadcast16(simd, blk, 2);
    let hi = broadcast16(simd, blk, 18);
    let (c0, c8): (__m256i, __m256i) = (cast(top_byte_control(0)), cast(top_byte_control(8)));
    let top = |v, c| simd.avx._mm256_cvtepi32_ps(simd.avx2._mm256_shuffle_epi8(v, c));
    [top(lo, c0), top(lo, c8), top(hi, c0), top(hi, c8)]
}

/// `b[at .. at + 16]` as an array.
#[inline(always)]
fn bytes16(b: &[u8], at: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&b[at..at + 16]);
    out
}
