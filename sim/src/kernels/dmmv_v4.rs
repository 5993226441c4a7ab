//! DMMV rows with AVX-512 (x86-64-v4: F, BW, CD, DQ, VL), through `pulp`'s safe intrinsic
//! wrappers.
//!
//! Selected at run time when [`pulp::x86::V4::try_new`] succeeds (before
//! [`super::dmmv_v3`]). Only the quantized rows are new: they are compute-bound in the X86V3
//! code (about 17 vector operations per 32 Q4_0 weights), and here 16-lane vectors decode a
//! whole half block per operation, 7 vector operations per block. F32 rows are memory-bound
//! already and run the X86V3 code (same bits).
//!
//! Decode: Q4_0 moves byte `j` of `qs` into the low byte of 32-bit lane `j`
//! (`vpmovzxbd`) and looks up each lane's low nibble in a 16-entry table of the values
//! `n - 8` (`vpermps` ignores the other bits), once as is and once shifted right by 4; Q8_0
//! sign-extends the bytes (`vpmovsxbd`) and converts them. The quants are therefore the
//! exact, unscaled integers: unlike the X86V3 rows, no condition on the range of `x`.
//!
//! Order (documented in [`super::dmmv`]): 16 lanes. For block `b` and lane `l`,
//! `s = q[l] * x_l + q[l+16] x_{l+16}` (a multiply, then an fma), then
//! `acc[b % 2] = fma(s, d, acc[b % 2])` (two accumulators, blocks in increasing order), then
//! `acc[0] + acc[1]` and the 16-lane tree of [`super::dmmv::reduce16`].
//!
//! Measured on the 2-core Zen 5 CI machine (`cargo run --release -p pm4rt-sim --example
//! dmmv_backends [65536]`, best of N): Q4_0 about 1.7 times the X86V3 rows' throughput in
//! cache (18 vs 10.6 GiB/s) and 1.6 times from DRAM (36.7 vs 23.2); Q8_0 about 1.2 times in
//! cache and equal from DRAM (memory-bound). Rejected there: 2 or 4 rows per pass (faster in cache, up
//! to 40% slower from DRAM), 4 accumulators, in-register scale conversion (`vcvtph2ps` per
//! block or per 32 blocks) instead of the f16 table.

use core::arch::x86_64::__m512;
use core::marker::PhantomData;
use pulp::x86::V4;
use pulp::{as_arrays, cast};

use super::dmmv::{reduce16, Shape, WeightType};
use super::dmmv_v3::{self, PREFETCH_BYTES};
use super::f16::f16_table;

/// Returns the AVX-512 token when the CPU supports x86-64-v4.
pub(super) fn detect() -> Option<V4> {
    V4::try_new()
}

/// Computes rows `first .. first + y.len()` into `y` (shape already checked).
pub(super) fn rows_into(simd: V4, shape: Shape, w: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let f16 = f16_table();
    let x = &x[..shape.cols];
    let rb = shape.row_bytes;
    let w = &w[first * rb..(first + y.len()) * rb];
    match shape.ty {
        // F32: the X86V3 rows (AVX-512 implies AVX2 + FMA).
        WeightType::F32 => dmmv_v3::rows_into(*simd, shape, w, x, 0, y),
        WeightType::F16
        | WeightType::Bf16
        | WeightType::Q4_1
        | WeightType::Q5_0
        | WeightType::Q5_1
        | WeightType::Q4K
        | WeightType::Q5K
        | WeightType::Q6K => {
            super::dmmv_blocks_v4::rows_into(simd, shape, w, x, 0, y);
        }
        WeightType::Q4_0 => {
            simd.vectorize(Rows::<18, Q4_0> { simd, f16, w, rb, x, y, format: PhantomData })
        }
        WeightType::Q8_0 => {
            simd.vectorize(Rows::<34, Q8_0> { simd, f16, w, rb, x, y, format: PhantomData })
        }
    }
}

/// The quantized rows of [`rows_into`] in format `B` (`BYTES` bytes per block) as a `pulp`
/// operation (an `#[inline(always)]` `call`, so the whole loop is compiled with the AVX-512
/// features enabled). `w` holds exactly the rows of `y`, `rb` bytes each.
struct Rows<'a, const BYTES: usize, B> {
    simd: V4,
    f16: &'a [f32; 65536],
    w: &'a [u8],
    rb: usize,
    x: &'a [f32],
    y: &'a mut [f32],
    format: PhantomData<B>,
}

impl<const BYTES: usize, B: QBlock> pulp::NullaryFnOnce for Rows<'_, BYTES, B> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Rows { simd, f16, w, rb, x, y, .. } = self;
        for (i, out) in y.iter_mut().enumerate() {
            *out = q_row::<BYTES, B>(simd, f16, &w[i * rb..(i + 1) * rb], x);
        }
    }
}

/// A GGML block format with 32 values per block, decoded into 16-lane vectors.
trait QBlock {
    /// The block's 32 quants as exact f32 integers: vector `k`, lane `l` holds element
    /// `16 k + l`.
    fn quants(simd: V4, blk: &[u8]) -> [__m512; 2];
}

struct Q4_0;
struct Q8_0;

/// `Q4_0_VALUES[n] = n - 8`: the value of nibble `n`.
const Q4_0_VALUES: [f32; 16] = {
    let mut t = [0f32; 16];
    let mut n = 0;
    while n < 16 {
        t[n] = n as f32 - 8.0;
        n += 1;
    }
    t
};

impl QBlock for Q4_0 {
    /// `{f16 d; u8 qs[16]}`: element `j < 16` is `lo(qs[j]) - 8`, `j + 16` is `hi(qs[j]) - 8`.
    /// Byte `j` goes to the low byte of dword `j`; `vpermps` looks up the low 4 bits of each
    /// dword in [`Q4_0_VALUES`] (the other bits are ignored), once as is and once shifted
    /// right by 4.
    #[inline(always)]
    fn quants(simd: V4, blk: &[u8]) -> [__m512; 2] {
        let f = simd.avx512f;
        let t = f._mm512_cvtepu8_epi32(cast(bytes16(blk, 2)));
        let values: __m512 = cast(Q4_0_VALUES);
        [
            f._mm512_permutexvar_ps(t, values),
            f._mm512_permutexvar_ps(f._mm512_srli_epi32::<4>(t), values),
        ]
    }
}

impl QBlock for Q8_0 {
    /// `{f16 d; i8 qs[32]}`: element `j` is `qs[j]` (sign-extended to 32 bits, converted).
    #[inline(always)]
    fn quants(simd: V4, blk: &[u8]) -> [__m512; 2] {
        let f = simd.avx512f;
        let q = |at| f._mm512_cvtepi32_ps(f._mm512_cvtepi8_epi32(cast(bytes16(blk, at))));
        [q(2), q(18)]
    }
}

/// Blocks accumulated in independent accumulators (block `b` goes to accumulator `b % 2`).
const BLOCK_ACCS: usize = 2;

/// One quantized row of format `B` (`BYTES` bytes per block).
#[inline(always)]
fn q_row<const BYTES: usize, B: QBlock>(
    simd: V4,
    f16: &[f32; 65536],
    row: &[u8],
    x: &[f32],
) -> f32 {
    let f = simd.avx512f;
    let (x32, _) = as_arrays::<32, f32>(x);
    let blocks = as_arrays::<BYTES, u8>(row).0;
    let nb = x32.len().min(blocks.len());
    let (xp, xt) = as_arrays::<BLOCK_ACCS, [f32; 32]>(&x32[..nb]);
    let (bp, bt) = as_arrays::<BLOCK_ACCS, [u8; BYTES]>(&blocks[..nb]);
    let mut acc = [f._mm512_setzero_ps(); BLOCK_ACCS];
    for (p, (blks, xs)) in bp.iter().zip(xp).enumerate() {
        // One prefetch per started 64 bytes of the pair of blocks (see `dmmv_v3`).
        for l in 0..(BLOCK_ACCS * BYTES).div_ceil(64) {
            dmmv_v3::prefetch(*simd, row, p * BLOCK_ACCS * BYTES + l * 64 + PREFETCH_BYTES);
        }
        for (u, (blk, xb)) in blks.iter().zip(xs).enumerate() {
            acc[u] = block_step::<B>(simd, f16, blk, xb, acc[u]);
        }
    }
    for (blk, xb) in bt.iter().zip(xt) {
        acc[0] = block_step::<B>(simd, f16, blk, xb, acc[0]);
    }
    let a: [f32; 16] = cast(f._mm512_add_ps(acc[0], acc[1]));
    reduce16(a)
}

/// One block into an accumulator: `acc + d * (q_lo * x_lo + q_hi * x_hi)` per lane.
#[inline(always)]
fn block_step<B: QBlock>(
    simd: V4,
    f16: &[f32; 65536],
    blk: &[u8],
    xb: &[f32; 32],
    acc: __m512,
) -> __m512 {
    let f = simd.avx512f;
    let xv: [__m512; 2] = cast(*xb);
    let q = B::quants(simd, blk);
    let s = f._mm512_fmadd_ps(q[1], xv[1], f._mm512_mul_ps(q[0], xv[0]));
    let h = blk.first_chunk::<2>().map_or(0, |h| u16::from_le_bytes(*h));
    f._mm512_fmadd_ps(s, f._mm512_set1_ps(f16[usize::from(h)]), acc)
}

/// `b[at .. at + 16]` as an array.
#[inline(always)]
fn bytes16(b: &[u8], at: usize) -> [u8; 16] {
    let mut v = [0u8; 16];
    v.copy_from_slice(&b[at..at + 16]);
    v
}
