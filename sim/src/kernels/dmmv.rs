//! Dense matrix x vector products (DMMV) over GGML weight formats: `y = W x`.
//!
//! # Semantics
//! `W` is row-major `rows x cols`, stored as raw little-endian bytes exactly as in GPU memory:
//! F32 (4 bytes per value), Q4_0 (`cols / 32` blocks of 18 bytes per row) or Q8_0 (`cols / 32`
//! blocks of 34 bytes per row). Each weight is dequantized with GGML's byte-exact rule
//! (Q4_0: `(nibble - 8) * d`, Q8_0: `q * d`, `d` the block's f16 scale); these products are
//! exact in f32, so the dequantized row equals `gguf.quants.dequantize` bit for bit.
//!
//! # Backends
//! [`dmmv`] and [`dmmv_argmax`] use [`Backend::detect`]: AVX-512 ([`Backend::X86V4`]) or
//! AVX2 + FMA ([`Backend::X86V3`]), via `pulp`'s safe intrinsics and selected at run time,
//! when the CPU has them, else the portable code ([`Backend::Portable`]). [`dmmv_with`] /
//! [`dmmv_argmax_with`] pick one explicitly. The backends use different accumulation orders
//! (below), so their results may differ in the last bits; all satisfy the same bound.
//!
//! # Accumulation order (documented because results are compared with a tolerance)
//! Portable, every format: the row is dequantized in chunks of [`CHUNK`] values; products
//! `w[k] * x[k]` are accumulated into 16 f32 lanes, lane `l` receiving columns `k` with
//! `k % 16 == l` in increasing `k` (one rounding per product, one per addition; no FMA
//! contraction). The 16 lanes are then reduced by a fixed tree: `s8[l] = a[l] + a[l+8]`,
//! `s4[l] = s8[l] + s8[l+4]`, `s2[l] = s4[l] + s4[l+2]`, `y = s2[0] + s2[1]`.
//!
//! X86V3, F32: the same 16 lanes and tree, with `a[l] = fma(w[k], x[k], a[l])` (one rounding
//! per step); the tail of a row whose length is not a multiple of 16 is added into lanes
//! 0.. as `a[l] + w * x` (two roundings).
//!
//! X86V3, Q4_0 / Q8_0: 8 lanes. For block `b` (values `q[j]`, `j < 32`, exact integers;
//! `d` its f16 scale as f32) and `x_j = x[32 b + j]`, lane `l` computes
//! `s = (q[l] * x_l + q[l+8] x_{l+8}) + (q[l+16] * x_{l+16} + q[l+24] x_{l+24})` (each pair a
//! multiply then an fma, then one add), then `a_{b % 2}[l] = fma(s, d, a_{b % 2}[l])` for the
//! blocks in increasing order (two accumulators); then `a[l] = a_0[l] + a_1[l]`,
//! `s4[l] = a[l] + a[l+4]`, `s2[l] = s4[l] + s4[l+2]`, `y = s2[0] + s2[1]`. The integers are
//! carried multiplied by `2^28` (Q4_0) or `2^24` (Q8_0) and `y` is multiplied back at the end:
//! exact, and the same roundings, as long as no value overflows, which holds whenever every
//! finite `|x| <= 2^32`; for other `x` the X86V3 backend runs the portable rows for that
//! product (same bound).
//!
//! X86V4, F32: the X86V3 rows (same bits).
//!
//! X86V3 and X86V4, the block formats (F16, BF16, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K): the
//! portable order and the portable bits (`dmmv_blocks`, `dmmv_blocks_v4`).
//!
//! X86V4, Q4_0 / Q8_0: 16 lanes. For block `b`, lane `l` computes
//! `s = q[l] * x_l + q[l+16] x_{l+16}` (a multiply, then an fma), then
//! `a_{b % 2}[l] = fma(s, d, a_{b % 2}[l])` for the blocks in increasing order; then
//! `a[l] = a_0[l] + a_1[l]` and the portable 16-lane tree. The quants are the exact unscaled
//! integers (no range condition on `x`).
//!
//! Bound: every product passes through at most `cols / 16 + 6` roundings in any backend
//! (portable: `cols / 16` lane additions + 4 tree levels + the product; X86V3 F32:
//! `cols / 16` fma + 1 tail + 4 tree; X86V3 Q: 3 inside `s` + `ceil(cols / 64)` fma + 1 + 3 tree;
//! X86V4 Q: 2 inside `s` + `ceil(cols / 64)` fma + 1 + 4 tree; both at most `cols / 16 + 6`
//! since `cols >= 32`), giving
//! `|y - exact| <= (cols / 16 + 6) * 2^-24 * sum_k |w[k] x[k]|` (standard recursive-summation
//! analysis; dequantized weights are exact in f32). The GPU kernel uses a different order
//! (kernels/README.md "Numerics": 32 lanes over blocks, sequential fma inside a block, then a
//! butterfly), whose depth is also far below `cols`; any summation order satisfies the looser
//! `(cols + 1) * 2^-24 * sum |w x|`, which is the tolerance to use when comparing GPU and
//! simulator results. Each backend is deterministic: the same inputs always give the same
//! bits, independent of the number of threads and of how rows are grouped.
//!
//! # Threads
//! When the weights exceed [`PARALLEL_MIN_BYTES`], rows are shared among
//! `std::thread::available_parallelism()` threads (scoped threads, the calling thread one of
//! them) in contiguous chunks of about 1/16 of a thread's share, each thread taking the next
//! free chunk, so a thread slowed down by another process takes fewer chunks; smaller
//! products run on the calling thread. Results do not depend on the split.

use super::f16::f16_to_f32;
use super::KernelError;

/// Values per GGML block for Q4_0 and Q8_0.
pub const QK: usize = 32;
/// Values dequantized per step into the on-stack buffer (8 blocks).
pub const CHUNK: usize = 8 * QK;
/// Below this many weight bytes a product runs on the calling thread only.
pub const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Weight storage format of a DMMV kernel (ids are GGML's `ggml_type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightType {
    /// 32-bit IEEE floats, 4 bytes per value (GGML type 0).
    F32,
    /// GGML Q4_0: blocks of 32 values in 18 bytes `{f16 d; u8 qs[16]}` (GGML type 2).
    Q4_0,
    /// GGML Q8_0: blocks of 32 values in 34 bytes `{f16 d; i8 qs[32]}` (GGML type 8).
    Q8_0,
    /// IEEE binary16, 2 bytes per value (GGML type 1).
    F16,
    /// bfloat16 (upper half of an f32), 2 bytes per value (GGML type 30).
    Bf16,
    /// GGML Q4_1: 32 values in 20 bytes `{f16 d; f16 m; u8 qs[16]}` (GGML type 3).
    Q4_1,
    /// GGML Q5_0: 32 values in 22 bytes `{f16 d; u8 qh[4]; u8 qs[16]}` (GGML type 6).
    Q5_0,
    /// GGML Q5_1: 32 values in 24 bytes `{f16 d; f16 m; u8 qh[4]; u8 qs[16]}` (GGML type 7).
    Q5_1,
    /// GGML Q4_K: 256 values in 144 bytes (GGML type 12).
    Q4K,
    /// GGML Q5_K: 256 values in 176 bytes (GGML type 13).
    Q5K,
    /// GGML Q6_K: 256 values in 210 bytes (GGML type 14).
    Q6K,
}

impl WeightType {
    /// Every format, in the order of the kernel table (kernels/README.md).
    pub const ALL: [WeightType; 11] = [
        WeightType::F32,
        WeightType::Q4_0,
        WeightType::Q8_0,
        WeightType::F16,
        WeightType::Bf16,
        WeightType::Q4_1,
        WeightType::Q5_0,
        WeightType::Q5_1,
        WeightType::Q4K,
        WeightType::Q5K,
        WeightType::Q6K,
    ];

    /// Values per block (1 for F32 / F16 / BF16: any `cols` is valid; 256 for K-quants).
    pub const fn block_values(self) -> usize {
        match self {
            WeightType::F32 | WeightType::F16 | WeightType::Bf16 => 1,
            WeightType::Q4_0
            | WeightType::Q8_0
            | WeightType::Q4_1
            | WeightType::Q5_0
            | WeightType::Q5_1 => QK,
            WeightType::Q4K | WeightType::Q5K | WeightType::Q6K => super::dmmv_blocks::QK_K,
        }
    }

    /// Bytes per block (ggml `ggml-common.h` block structs; `GGML_QUANT_SIZES` in gguf-py).
    pub const fn block_bytes(self) -> usize {
        match self {
            WeightType::F32 => 4,
            WeightType::F16 | WeightType::Bf16 => 2,
            WeightType::Q4_0 => 18,
            WeightType::Q8_0 => 34,
            WeightType::Q4_1 => 20,
            WeightType::Q5_0 => 22,
            WeightType::Q5_1 => 24,
            WeightType::Q4K => 144,
            WeightType::Q5K => 176,
            WeightType::Q6K => 210,
        }
    }

    /// GGML type id (`ggml_type` / `gguf.GGMLQuantizationType`).
    pub const fn ggml_type(self) -> u32 {
        match self {
            WeightType::F32 => 0,
            WeightType::F16 => 1,
            WeightType::Q4_0 => 2,
            WeightType::Q4_1 => 3,
            WeightType::Q5_0 => 6,
            WeightType::Q5_1 => 7,
            WeightType::Q8_0 => 8,
            WeightType::Q4K => 12,
            WeightType::Q5K => 13,
            WeightType::Q6K => 14,
            WeightType::Bf16 => 30,
        }
    }

    /// The format of a GGML type id; `None` for types without DMMV kernels.
    pub fn from_ggml_type(id: u32) -> Option<WeightType> {
        WeightType::ALL.into_iter().find(|t| t.ggml_type() == id)
    }

    /// GGML's name of the format (`F32`, `Q4_K`, ...), as gguf-py and llama.cpp print it.
    pub const fn ggml_name(self) -> &'static str {
        match self {
            WeightType::F32 => "F32",
            WeightType::F16 => "F16",
            WeightType::Bf16 => "BF16",
            WeightType::Q4_0 => "Q4_0",
            WeightType::Q4_1 => "Q4_1",
            WeightType::Q5_0 => "Q5_0",
            WeightType::Q5_1 => "Q5_1",
            WeightType::Q8_0 => "Q8_0",
            WeightType::Q4K => "Q4_K",
            WeightType::Q5K => "Q5_K",
            WeightType::Q6K => "Q6_K",
        }
    }

    /// Name of the plain DMMV kernel for this format (`dmmv_f32`, `dmmv_q4_k`, ...).
    pub const fn kernel_name(self) -> &'static str {
        match self {
            WeightType::F32 => "dmmv_f32",
            WeightType::F16 => "dmmv_f16",
            WeightType::Bf16 => "dmmv_bf16",
            WeightType::Q4_0 => "dmmv_q4_0",
            WeightType::Q4_1 => "dmmv_q4_1",
            WeightType::Q5_0 => "dmmv_q5_0",
            WeightType::Q5_1 => "dmmv_q5_1",
            WeightType::Q8_0 => "dmmv_q8_0",
            WeightType::Q4K => "dmmv_q4_k",
            WeightType::Q5K => "dmmv_q5_k",
            WeightType::Q6K => "dmmv_q6_k",
        }
    }

    /// Name of the fused DMMV + argmax kernel for this format (`dmmv_q4_k_argmax`, ...).
    pub const fn argmax_kernel_name(self) -> &'static str {
        match self {
            WeightType::F32 => "dmmv_f32_argmax",
            WeightType::F16 => "dmmv_f16_argmax",
            WeightType::Bf16 => "dmmv_bf16_argmax",
            WeightType::Q4_0 => "dmmv_q4_0_argmax",
            WeightType::Q4_1 => "dmmv_q4_1_argmax",
            WeightType::Q5_0 => "dmmv_q5_0_argmax",
            WeightType::Q5_1 => "dmmv_q5_1_argmax",
            WeightType::Q8_0 => "dmmv_q8_0_argmax",
            WeightType::Q4K => "dmmv_q4_k_argmax",
            WeightType::Q5K => "dmmv_q5_k_argmax",
            WeightType::Q6K => "dmmv_q6_k_argmax",
        }
    }

    /// Whether the rows of this format are computed by the block decoders of
    /// `dmmv_blocks` (every format but F32, Q4_0 and Q8_0).
    const fn is_block_format(self) -> bool {
        !matches!(self, WeightType::F32 | WeightType::Q4_0 | WeightType::Q8_0)
    }

    /// Bytes of one weight row of `cols` values.
    ///
    /// # Errors
    /// [`KernelError::ColsNotBlockMultiple`] if `cols` is not a multiple of the block size;
    /// [`KernelError::ShapeOverflow`] if the size overflows `usize`.
    pub fn row_bytes(self, cols: usize) -> Result<usize, KernelError> {
        let kernel = self.kernel_name();
        let block = self.block_values();
        if !cols.is_multiple_of(block) {
            return Err(KernelError::ColsNotBlockMultiple { kernel, cols, block });
        }
        (cols / block).checked_mul(self.block_bytes()).ok_or(KernelError::ShapeOverflow {
            kernel,
            rows: 1,
            cols,
        })
    }
}

/// Checked shape of one DMMV call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) ty: WeightType,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) row_bytes: usize,
}

/// Implementation of the row products (see the module documentation for each one's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Portable Rust, vectorised by the compiler for the compilation target; always available.
    Portable,
    /// AVX2 + FMA (x86-64-v3) through `pulp`'s safe intrinsics; chosen at run time when the
    /// CPU supports it.
    X86V3,
    /// AVX-512 F/BW/CD/DQ/VL (x86-64-v4) through `pulp`'s safe intrinsics for the quantized
    /// rows (F32 rows as [`Backend::X86V3`]); chosen at run time when the CPU supports it.
    X86V4,
}

impl Backend {
    /// Every backend, in increasing order of preference (filter with
    /// [`Backend::is_available`] to compare the ones this CPU can run).
    pub const ALL: [Backend; 3] = [Backend::Portable, Backend::X86V3, Backend::X86V4];

    /// The backend [`dmmv`] and [`dmmv_argmax`] use on this machine: the first available of
    /// [`Backend::X86V4`], [`Backend::X86V3`] and [`Backend::Portable`].
    pub fn detect() -> Backend {
        [Backend::X86V4, Backend::X86V3]
            .into_iter()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Portable)
    }

    /// Whether this backend can run on this CPU.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::X86V3 => super::dmmv_v3::detect().is_some(),
            #[cfg(target_arch = "x86_64")]
            Backend::X86V4 => super::dmmv_v4::detect().is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::X86V3 | Backend::X86V4 => false,
        }
    }

    /// Short name (`portable`, `x86-v3`, `x86-v4`).
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::X86V3 => "x86-v3",
            Backend::X86V4 => "x86-v4",
        }
    }
}

fn check(
    ty: WeightType,
    kernel: &'static str,
    w: &[u8],
    x: &[f32],
    rows: usize,
    cols: usize,
) -> Result<Shape, KernelError> {
    let row_bytes = ty.row_bytes(cols).map_err(|e| match e {
        KernelError::ColsNotBlockMultiple { cols, block, .. } => {
            KernelError::ColsNotBlockMultiple { kernel, cols, block }
        }
        _ => KernelError::ShapeOverflow { kernel, rows, cols },
    })?;
    let need =
        rows.checked_mul(row_bytes).ok_or(KernelError::ShapeOverflow { kernel, rows, cols })?;
    if w.len() < need {
        return Err(KernelError::BufferTooShort {
            kernel,
            buffer: "w",
            unit: "bytes",
            need,
            have: w.len(),
        });
    }
    if x.len() < cols {
        return Err(KernelError::BufferTooShort {
            kernel,
            buffer: "x",
            unit: "elements",
            need: cols,
            have: x.len(),
        });
    }
    Ok(Shape { ty, rows, cols, row_bytes })
}

/// `y[r] = sum_k W[r][k] * x[k]` for `r < rows`, with `W` in format `ty`.
///
/// Parameters: `w` raw weight bytes (at least `rows * row_bytes(cols)`; extra bytes are
/// ignored), `x` at least `cols` values, `y` at least `rows` values (only `y[..rows]` is
/// written). Order and tolerance: see the module documentation.
///
/// # Errors
/// [`KernelError::ColsNotBlockMultiple`], [`KernelError::BufferTooShort`] (naming `w`, `x` or
/// `y`), [`KernelError::ShapeOverflow`]. Nothing is written on error.
pub fn dmmv(
    ty: WeightType,
    w: &[u8],
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
) -> Result<(), KernelError> {
    dmmv_with(Backend::detect(), ty, w, x, y, rows, cols)
}

/// [`dmmv`] on an explicit [`Backend`] (for tests and benchmarks of each implementation).
///
/// # Errors
/// As [`dmmv`], plus [`KernelError::BackendUnavailable`] if `backend` cannot run on this CPU
/// (checked after the shape).
pub fn dmmv_with(
    backend: Backend,
    ty: WeightType,
    w: &[u8],
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
) -> Result<(), KernelError> {
    let kernel = ty.kernel_name();
    let shape = check(ty, kernel, w, x, rows, cols)?;
    if y.len() < rows {
        return Err(KernelError::BufferTooShort {
            kernel,
            buffer: "y",
            unit: "elements",
            need: rows,
            have: y.len(),
        });
    }
    let rows_into = rows_fn(backend, kernel, ty, &x[..cols])?;
    let y = &mut y[..rows];
    let threads = threads_for(shape);
    if threads <= 1 {
        rows_into(shape, w, x, 0, y);
        return Ok(());
    }
    let per = chunk_rows(rows, threads);
    let chunks = std::sync::Mutex::new(y.chunks_mut(per).enumerate());
    let work = || loop {
        // Take the next chunk of rows; the lock is held only for that.
        let next = chunks.lock().unwrap_or_else(|e| e.into_inner()).next();
        match next {
            Some((i, yc)) => rows_into(shape, w, x, i * per, yc),
            None => break,
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        // The calling thread works too.
        work();
    });
    Ok(())
}

/// Rows per chunk when `rows` are shared among `threads` threads: about 16 chunks per thread,
/// so a thread slowed down (another process on its core) takes fewer chunks instead of
/// making the others wait at the end, but at least 16 rows so each chunk streams a while.
fn chunk_rows(rows: usize, threads: usize) -> usize {
    rows.div_ceil(threads.max(1) * 16).max(16)
}

/// [`dmmv`] with F32 weights (kernel `dmmv_f32`). Any `cols` is valid.
///
/// # Errors
/// As [`dmmv`].
pub fn dmmv_f32(
    w: &[u8],
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
) -> Result<(), KernelError> {
    dmmv(WeightType::F32, w, x, y, rows, cols)
}

/// [`dmmv`] with Q4_0 weights (kernel `dmmv_q4_0`). `cols` must be a multiple of 32.
///
/// # Errors
/// As [`dmmv`].
pub fn dmmv_q4_0(
    w: &[u8],
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
) -> Result<(), KernelError> {
    dmmv(WeightType::Q4_0, w, x, y, rows, cols)
}

/// [`dmmv`] with Q8_0 weights (kernel `dmmv_q8_0`). `cols` must be a multiple of 32.
///
/// # Errors
/// As [`dmmv`].
pub fn dmmv_q8_0(
    w: &[u8],
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
) -> Result<(), KernelError> {
    dmmv(WeightType::Q8_0, w, x, y, rows, cols)
}

/// Fused DMMV + argmax (kernels `dmmv_*_argmax`): returns the packed argmax value of the
/// vector `y = W x` (see [`super::argmax`]) without materialising `y`.
///
/// The row dot products are bit-identical to [`dmmv`]'s, so the result equals
/// `argmax_f32(dmmv(...))`. Returns 0 (the identity of the atomic max) when `rows == 0`.
/// The caller merges it into the output word with `max`, as the GPU's atomic max does.
///
/// # Errors
/// As [`dmmv`] (without `y`), plus [`KernelError::IndexRange`] if `rows > 2^32`.
pub fn dmmv_argmax(
    ty: WeightType,
    w: &[u8],
    x: &[f32],
    rows: usize,
    cols: usize,
) -> Result<u64, KernelError> {
    dmmv_argmax_with(Backend::detect(), ty, w, x, rows, cols)
}

/// [`dmmv_argmax`] on an explicit [`Backend`].
///
/// # Errors
/// As [`dmmv_argmax`], plus [`KernelError::BackendUnavailable`] if `backend` cannot run on
/// this CPU.
pub fn dmmv_argmax_with(
    backend: Backend,
    ty: WeightType,
    w: &[u8],
    x: &[f32],
    rows: usize,
    cols: usize,
) -> Result<u64, KernelError> {
    let kernel = ty.argmax_kernel_name();
    let shape = check(ty, kernel, w, x, rows, cols)?;
    if rows > super::argmax::MAX_LEN {
        return Err(KernelError::IndexRange { kernel, len: rows });
    }
    let rows_into = rows_fn(backend, kernel, ty, &x[..cols])?;
    let range_max = |first: usize, count: usize| -> u64 {
        let mut buf = [0f32; 64];
        let mut best = 0u64;
        let mut r = first;
        while r < first + count {
            let n = (first + count - r).min(buf.len());
            rows_into(shape, w, x, r, &mut buf[..n]);
            for (i, v) in buf[..n].iter().enumerate() {
                best = best.max(super::argmax::pack(*v, r + i));
            }
            r += n;
        }
        best
    };
    let threads = threads_for(shape);
    if threads <= 1 {
        return Ok(range_max(0, rows));
    }
    let per = chunk_rows(rows, threads);
    let next_chunk = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut best = 0u64;
        loop {
            let first = next_chunk.fetch_add(per, std::sync::atomic::Ordering::Relaxed);
            if first >= rows {
                return best;
            }
            best = best.max(range_max(first, per.min(rows - first)));
        }
    };
    let best = std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        // The calling thread works too.
        let mine = work();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).fold(mine, u64::max)
    });
    Ok(best)
}

fn threads_for(shape: Shape) -> usize {
    let bytes = shape.rows.saturating_mul(shape.row_bytes);
    if bytes < PARALLEL_MIN_BYTES || shape.rows < 2 {
        return 1;
    }
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(shape.rows)
}

/// Row-product function of one backend: computes rows `first .. first + y.len()` into `y`.
type RowsFn = fn(Shape, &[u8], &[f32], usize, &mut [f32]);

/// The row function of `backend` for weights `ty` and input `x`, or
/// [`KernelError::BackendUnavailable`]. X86V3 quantized rows need every finite `|x|` within
/// their scaled range (module docs); otherwise the portable rows compute that product.
fn rows_fn(
    backend: Backend,
    kernel: &'static str,
    ty: WeightType,
    x: &[f32],
) -> Result<RowsFn, KernelError> {
    match backend {
        Backend::Portable => Ok(rows_into),
        #[cfg(target_arch = "x86_64")]
        Backend::X86V3 if ty.is_block_format() => match super::dmmv_v3::detect() {
            Some(_) => Ok(rows_into_v3),
            None => Err(KernelError::BackendUnavailable { kernel, backend: backend.name() }),
        },
        #[cfg(target_arch = "x86_64")]
        Backend::X86V3 => match super::dmmv_v3::detect() {
            Some(_) if ty != WeightType::F32 && !super::dmmv_v3::x_in_scaled_range(x) => {
                Ok(rows_into)
            }
            Some(_) => Ok(rows_into_v3),
            None => Err(KernelError::BackendUnavailable { kernel, backend: backend.name() }),
        },
        #[cfg(target_arch = "x86_64")]
        Backend::X86V4 => match super::dmmv_v4::detect() {
            // Unscaled quants: no range condition on `x`.
            Some(_) => Ok(rows_into_v4),
            None => Err(KernelError::BackendUnavailable { kernel, backend: backend.name() }),
        },
        #[cfg(not(target_arch = "x86_64"))]
        Backend::X86V3 | Backend::X86V4 => {
            let _ = (ty, x);
            Err(KernelError::BackendUnavailable { kernel, backend: backend.name() })
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn rows_into_v3(shape: Shape, w: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    // Only reached through `rows_fn`, which checked the CPU; the portable rows otherwise.
    match super::dmmv_v3::detect() {
        Some(simd) => super::dmmv_v3::rows_into(simd, shape, w, x, first, y),
        None => rows_into(shape, w, x, first, y),
    }
}

#[cfg(target_arch = "x86_64")]
fn rows_into_v4(shape: Shape, w: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    // Only reached through `rows_fn`, which checked the CPU; the portable rows otherwise.
    match super::dmmv_v4::detect() {
        Some(simd) => super::dmmv_v4::rows_into(simd, shape, w, x, first, y),
        None => rows_into(shape, w, x, first, y),
    }
}

/// Portable rows: computes rows `first .. first + y.len()` into `y` (shape already checked).
fn rows_into(shape: Shape, w: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    if shape.ty.is_block_format() {
        return super::dmmv_blocks::rows_into(shape, w, x, first, y);
    }
    let x = &x[..shape.cols];
    let mut buf = [0f32; CHUNK];
    for (i, out) in y.iter_mut().enumerate() {
        let start = (first + i) * shape.row_bytes;
        let row = &w[start..start + shape.row_bytes];
        *out = match shape.ty {
            WeightType::F32 => row_dot(row, x, 4 * 16, &mut buf, dequant_f32),
            WeightType::Q4_0 => row_dot(row, x, 18, &mut buf, dequant_q4_0),
            WeightType::Q8_0 => row_dot(row, x, 34, &mut buf, dequant_q8_0),
            _ => f32::NAN, // block formats returned above
        };
    }
}

/// Dot product of one weight row with `x` in the documented order.
///
/// `unit` is the number of bytes `dequant` turns into `out.len()` values per call (a Q block,
/// or 16 f32 values); the tail of an F32 row shorter than 16 values is handled separately.
#[inline(always)]
fn row_dot<D: Fn(&[u8], &mut [f32])>(
    row: &[u8],
    x: &[f32],
    unit: usize,
    buf: &mut [f32; CHUNK],
    dequant: D,
) -> f32 {
    let vals_per_unit = if unit == 64 { 16 } else { QK };
    let units_per_chunk = CHUNK / vals_per_unit;
    let mut acc = [0f32; 16];
    let full = row.len() / unit * unit;
    let nvals = full / unit * vals_per_unit;
    for (wc, xc) in row[..full].chunks(unit * units_per_chunk).zip(x[..nvals].chunks(CHUNK)) {
        let n = wc.len() / unit * vals_per_unit;
        for (u, o) in wc.chunks_exact(unit).zip(buf.chunks_exact_mut(vals_per_unit)) {
            dequant(u, o);
        }
        lanes_dot(&buf[..n], xc, &mut acc);
    }
    // F32 rows whose length is not a multiple of 16: the tail goes into lanes 0.. in order.
    for (l, (wb, xv)) in row[full..].chunks_exact(4).zip(&x[nvals..]).enumerate() {
        let wv = f32::from_le_bytes([wb[0], wb[1], wb[2], wb[3]]);
        acc[l] += wv * xv;
    }
    reduce16(acc)
}

/// `acc[l] += a[k] * b[k]` for `k % 16 == l`, in increasing `k`; `a.len()` is a multiple of 16.
#[inline(always)]
fn lanes_dot(a: &[f32], b: &[f32], acc: &mut [f32; 16]) {
    for (ca, cb) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for l in 0..16 {
            acc[l] += ca[l] * cb[l];
        }
    }
}

/// Dequantize one row of `cols` values stored in `row` (GGML layout of `ty`) into `out`, with
/// the byte-exact rule the kernels use (see the module documentation).
///
/// # Errors
/// [`KernelError::ColsNotBlockMultiple`] / [`KernelError::ShapeOverflow`] as
/// [`WeightType::row_bytes`]; [`KernelError::BufferTooShort`] when `row` is shorter than one
/// row or `out` shorter than `cols`.
pub fn dequantize_row(
    ty: WeightType,
    row: &[u8],
    cols: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let kernel = ty.kernel_name();
    let bytes = ty.row_bytes(cols)?;
    let short =
        |buffer, unit, need, have| KernelError::BufferTooShort { kernel, buffer, unit, need, have };
    if row.len() < bytes {
        return Err(short("w", "bytes", bytes, row.len()));
    }
    if out.len() < cols {
        return Err(short("out", "elements", cols, out.len()));
    }
    let (bb, bv) = (ty.block_bytes(), ty.block_values());
    for (b, o) in row[..bytes].chunks_exact(bb).zip(out[..cols].chunks_exact_mut(bv)) {
        match ty {
            WeightType::F32 => dequant_f32(b, o),
            WeightType::Q4_0 => dequant_q4_0(b, o),
            WeightType::Q8_0 => dequant_q8_0(b, o),
            _ => {
                super::dmmv_blocks::dequant_block(ty, b, o);
            }
        }
    }
    Ok(())
}

/// Fixed tree reduction of the 16 lanes. Kept out of line on purpose: when LLVM sees this
/// tree together with the accumulation loop it vectorises the loop 2 lanes wide (measured:
/// 2x slower); out of line it uses full-width vectors.
#[inline(never)]
pub(super) fn reduce16(a: [f32; 16]) -> f32 {
    let s8: [f32; 8] = std::array::from_fn(|l| a[l] + a[l + 8]);
    let s4: [f32; 4] = std::array::from_fn(|l| s8[l] + s8[l + 4]);
    let s2: [f32; 2] = std::array::from_fn(|l| s4[l] + s4[l + 2]);
    s2[0] + s2[1]
}

/// 64 bytes of little-endian f32 -> 16 values.
#[inline(always)]
fn dequant_f32(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// One Q4_0 block (18 bytes) -> 32 values: `out[j] = (lo(qs[j]) - 8) * d`,
/// `out[j + 16] = (hi(qs[j]) - 8) * d`.
#[inline(always)]
fn dequant_q4_0(b: &[u8], out: &mut [f32]) {
    let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    let (lo, hi) = out.split_at_mut(16);
    for ((l, h), q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[2..18]) {
        *l = (i32::from(q & 0x0f) - 8) as f32 * d;
        *h = (i32::from(q >> 4) - 8) as f32 * d;
    }
}

/// One Q8_0 block (34 bytes) -> 32 values: `out[j] = qs[j] as i8 * d`.
#[inline(always)]
fn dequant_q8_0(b: &[u8], out: &mut [f32]) {
    let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    for (o, q) in out.iter_mut().zip(&b[2..34]) {
        *o = f32::from(*q as i8) * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A hand-built Q4_0 block from the GGML format definition: d = 0.5 (f16 0x3800),
    // qs[j] = j | (15 - j) << 4, so element j = (j - 8) * 0.5 and element j + 16 = (7 - j) * 0.5.
    fn q4_block() -> Vec<u8> {
        let mut b = vec![0x00, 0x38];
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        b
    }

    #[test]
    fn dequantize_row_follows_the_block_layout() {
        let mut row = q4_block();
        row.extend(q4_block());
        let mut out = [0f32; 64];
        dequantize_row(WeightType::Q4_0, &row, 64, &mut out).unwrap();
        for j in 0..16 {
            assert_eq!(out[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(out[j + 16], (7.0 - j as f32) * 0.5);
            assert_eq!(out[32 + j], out[j]);
        }
        assert!(dequantize_row(WeightType::Q4_0, &row[..35], 64, &mut out).is_err());
        assert!(dequantize_row(WeightType::Q4_0, &row, 64, &mut out[..63]).is_err());
        assert!(dequantize_row(WeightType::Q4_0, &row, 40, &mut out).is_err());
    }

    #[test]
    fn q4_0_block_by_definition() {
        let mut out = [0f32; 32];
        dequant_q4_0(&q4_block(), &mut out);
        for j in 0..16 {
            assert_eq!(out[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(out[j + 16], (7.0 - j as f32) * 0.5);
        }
    }

    #[test]
    fn q8_0_block_by_definition() {
        // d = -2.0 (f16 0xc000), qs = -128, -127, ..., -97
        let mut b = vec![0x00, 0xc0];
        b.extend((0..32).map(|j: i32| (j - 128) as i8 as u8));
        let mut out = [0f32; 32];
        dequant_q8_0(&b, &mut out);
        for (j, v) in out.iter().enumerate() {
            assert_eq!(*v, (j as f32 - 128.0) * -2.0);
        }
    }

    /// Every DMMV kernel of the library maps to a format whose kernel names are the
    /// kernel's, and every format has both kernels (the registry relies on it).
    #[test]
    fn every_dmmv_kernel_has_a_format_and_back() {
        use pm4rt_kernels::{KernelId, KernelKind};
        let mut seen = Vec::new();
        for id in KernelId::ALL {
            let (ty, fused) = match id.kind() {
                KernelKind::Dmmv { ggml_type } => (ggml_type, false),
                KernelKind::DmmvArgmax { ggml_type } => (ggml_type, true),
                _ => continue,
            };
            let t = WeightType::from_ggml_type(ty).unwrap_or_else(|| panic!("{id}: type {ty}"));
            let want = if fused { t.argmax_kernel_name() } else { t.kernel_name() };
            assert_eq!(id.name(), want);
            seen.push((t, fused));
        }
        for t in WeightType::ALL {
            assert!(seen.contains(&(t, false)) && seen.contains(&(t, true)), "{t:?}");
        }
        assert_eq!(WeightType::from_ggml_type(9), None); // Q8_1
    }

    /// Every backend this CPU can run; the portable fallback always.
    fn backends() -> Vec<Backend> {
        Backend::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    #[test]
    fn detect_prefers_v4_then_v3_by_the_cpus_features() {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            // pulp's x86-64-v3 and -v4 feature lists (the SSE levels are implied by AVX2).
            let v3 = has!("avx2") && has!("fma") && has!("bmi1") && has!("bmi2") && has!("lzcnt");
            let v4 = v3
                && has!("avx512f")
                && has!("avx512bw")
                && has!("avx512cd")
                && has!("avx512dq")
                && has!("avx512vl");
            assert_eq!(Backend::X86V3.is_available(), v3);
            assert_eq!(Backend::X86V4.is_available(), v4);
            let want = match (v4, v3) {
                (true, _) => Backend::X86V4,
                (false, true) => Backend::X86V3,
                _ => Backend::Portable,
            };
            assert_eq!(Backend::detect(), want);
        }
        assert!(Backend::Portable.is_available());
    }

    #[test]
    fn q4_0_dot_with_ones() {
        // sum_j (j-8)*0.5 + sum_j (7-j)*0.5 over j < 16 = 0.5 * (-8 + -8) = -8
        let x = [1f32; 32];
        for be in backends() {
            let mut y = [0f32; 1];
            dmmv_with(be, WeightType::Q4_0, &q4_block(), &x, &mut y, 1, 32).unwrap();
            assert_eq!(y[0], -8.0, "{be:?}");
        }
        let mut y = [0f32; 1];
        dmmv_q4_0(&q4_block(), &x, &mut y, 1, 32).unwrap();
        assert_eq!(y[0], -8.0);
    }

    #[test]
    fn f32_odd_cols_and_tail() {
        // 5 x 19 matrix with w[r][k] = k + r, x[k] = 1: y = sum k + 19 r = 171 + 19 r (exact).
        // 5 rows: one group of 4 and a single row on the SIMD backend.
        let cols = 19;
        let w: Vec<u8> = (0..5)
            .flat_map(|r| (0..cols).map(move |k| (k + r) as f32))
            .flat_map(f32::to_le_bytes)
            .collect();
        let x = vec![1f32; cols];
        for be in backends() {
            let mut y = [0f32; 5];
            dmmv_with(be, WeightType::F32, &w, &x, &mut y, 5, cols).unwrap();
            assert_eq!(y, [171.0, 190.0, 209.0, 228.0, 247.0], "{be:?}");
        }
        let mut y = [0f32; 2];
        dmmv_f32(&w, &x, &mut y, 2, cols).unwrap();
        assert_eq!(y, [171.0, 190.0]);
    }

    /// Every byte value at every position of a Q4_0 and a Q8_0 block, read through a one-hot
    /// `x` (two blocks, so both accumulators are used): `y` is exactly the element's value
    /// times `d` (GGML's definition: Q4_0 `nibble - 8`, low nibbles first; Q8_0 the signed
    /// byte), on every backend.
    #[test]
    fn every_quant_value_at_every_position_on_every_backend() {
        let d = 0x3800u16; // 0.5
        for v in 0..=255u8 {
            let q4: Vec<u8> = [d.to_le_bytes().as_slice(), &[v; 16]].concat().repeat(2);
            let q8: Vec<u8> = [d.to_le_bytes().as_slice(), &[v; 32]].concat().repeat(2);
            for k in 0..64 {
                let mut x = [0f32; 64];
                x[k] = 1.0;
                let nib = if k % 32 < 16 { v & 15 } else { v >> 4 };
                for (ty, w, want) in [
                    (WeightType::Q4_0, &q4, (f32::from(nib) - 8.0) * 0.5),
                    (WeightType::Q8_0, &q8, f32::from(v as i8) * 0.5),
                ] {
                    for be in backends() {
                        let mut y = [f32::NAN; 1];
                        dmmv_with(be, ty, w, &x, &mut y, 1, 64).unwrap();
                        assert_eq!(y[0], want, "{be:?} {ty:?} byte {v:#04x} position {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn q_blocks_exact_on_every_backend() {
        // Q8_0 row of 2 blocks: d = 0.25 (0x3400) and -2.0 (0xc000); qs = j - 16 and 3;
        // x[k] = 1: y = 0.25 * sum_j (j - 16) + -2 * 3 * 32 = 0.25 * -16 - 192 = -196.
        let mut w = vec![0x00, 0x34];
        w.extend((0..32).map(|j: i32| (j - 16) as i8 as u8));
        w.extend([0x00, 0xc0]);
        w.extend([3u8; 32]);
        let x = [1f32; 64];
        for be in backends() {
            let mut y = [0f32; 1];
            dmmv_with(be, WeightType::Q8_0, &w, &x, &mut y, 1, 64).unwrap();
            assert_eq!(y[0], -196.0, "{be:?}");
            assert_eq!(
                dmmv_argmax_with(be, WeightType::Q8_0, &w, &x, 1, 64).unwrap(),
                super::super::argmax::pack(-196.0, 0),
                "{be:?}"
            );
        }
    }

    /// Rows of `nb` copies of [`q4_block`] with every byte of `qs` set to `byte` and scale
    /// bits `d` (f16).
    fn q4_rows(rows: usize, nb: usize, d: u16, byte: u8) -> Vec<u8> {
        let mut blk = [0u8; 18];
        blk[..2].copy_from_slice(&d.to_le_bytes());
        blk[2..].fill(byte);
        blk.repeat(rows * nb)
    }

    /// A finite `|x|` above the X86V3 scaled range (2^32) makes that backend run the portable
    /// rows: same bits as [`Backend::Portable`], finite where the scaled rows would overflow.
    /// X86V4 decodes unscaled quants and needs no fallback: its result is finite and within
    /// the documented bound of the portable one.
    #[test]
    fn wide_x_gives_the_portable_result() {
        let (rows, cols) = (3usize, 64usize);
        for (ty, w) in [
            (WeightType::Q4_0, q4_rows(rows, cols / 32, 0x3c00, 0x0f)), // d = 1, q = 7 and -8
            (WeightType::Q8_0, {
                let mut b = vec![0x00, 0x3c]; // d = 1
                b.extend((0..32).map(|j: i32| (j * 8 - 128) as i8 as u8));
                b.repeat(rows * cols / 32)
            }),
        ] {
            let mut x = vec![0.25f32; cols];
            x[5] = 1.0e30; // 7 * 1e30 * 2^28 would overflow f32 in the scaled rows
            let mut want = vec![0f32; rows];
            dmmv_with(Backend::Portable, ty, &w, &x, &mut want, rows, cols).unwrap();
            assert!(want.iter().all(|v| v.is_finite()), "{ty:?} {want:?}");
            for be in backends() {
                let mut y = vec![0f32; rows];
                dmmv_with(be, ty, &w, &x, &mut y, rows, cols).unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                if be == Backend::X86V4 {
                    // |w x| summed is below 128 * 1e30 + 64 * 128 * 0.25; bound (cols/16 + 6) u.
                    let tol = (cols as f64 / 16.0 + 6.0) * 2f64.powi(-24) * 1.3e32;
                    for (a, b) in y.iter().zip(&want) {
                        assert!(a.is_finite() && (f64::from(*a) - f64::from(*b)).abs() <= tol);
                    }
                } else {
                    assert_eq!(bits(&y), bits(&want), "{be:?} {ty:?}");
                }
            }
        }
    }

    /// At the edge of the scaled range (`|x| = 2^32`, the largest f16 scale, the largest
    /// quant magnitude, 4096 columns) the result is the exact value: no overflow.
    #[test]
    fn scaled_range_edge_is_exact() {
        let (rows, cols) = (2usize, 4096usize);
        // d = 65504 (f16 0x7bff), every nibble 0 -> q = -8, x = 2^32 everywhere.
        let w = q4_rows(rows, cols / 32, 0x7bff, 0x00);
        let x = vec![4_294_967_296.0f32; cols];
        // Exact: cols * (-8) * 65504 * 2^32 = -2^12 * 2^3 * 65504 * 2^32 (representable).
        let exact = -(cols as f64) * 8.0 * 65504.0 * 4_294_967_296.0;
        for be in backends() {
            let mut y = vec![0f32; rows];
            dmmv_with(be, WeightType::Q4_0, &w, &x, &mut y, rows, cols).unwrap();
            for v in &y {
                assert_eq!(f64::from(*v), exact, "{be:?}");
            }
        }
    }

    /// Non-finite inputs propagate as in the unscaled arithmetic: `inf * (q - 8)` is an
    /// infinity of the right sign, `inf * 0` (nibble 8) is NaN.
    #[test]
    fn infinite_x_propagates() {
        let (rows, cols) = (1usize, 32usize);
        let mut x = vec![1.0f32; cols];
        x[0] = f32::INFINITY;
        for (byte, check) in [
            (0x0fu8, (|v: f32| v == f32::INFINITY) as fn(f32) -> bool), // q = 7
            (0x00, |v: f32| v == f32::NEG_INFINITY),                    // q = -8
            (0x88, |v: f32| v.is_nan()),                                // q = 0: inf * 0
        ] {
            let w = q4_rows(rows, 1, 0x3c00, byte);
            for be in backends() {
                let mut y = vec![0f32; rows];
                dmmv_with(be, WeightType::Q4_0, &w, &x, &mut y, rows, cols).unwrap();
                assert!(check(y[0]), "{be:?} byte {byte:#x}: {}", y[0]);
            }
        }
    }

    /// f64 reference from the GGML definitions (independent of the code under test) and the
    /// documented bound `(cols / 16 + 6) * 2^-24 * sum |w x|` for every backend.
    #[test]
    fn backends_within_documented_bound_of_f64() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let (rows, cols) = (9usize, 160usize);
        let x: Vec<f32> = (0..cols).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
        for ty in [WeightType::F32, WeightType::Q4_0, WeightType::Q8_0] {
            let rb = ty.row_bytes(cols).unwrap();
            let mut w: Vec<u8> = (0..rows * rb).map(|_| next() as u8).collect();
            let mut deq = vec![0f64; rows * cols];
            for r in 0..rows {
                for blk in 0..cols / ty.block_values() {
                    let b = &mut w[r * rb + blk * ty.block_bytes()..][..ty.block_bytes()];
                    let at = r * cols + blk * ty.block_values();
                    match ty {
                        WeightType::F32 => {
                            b[3] = 0x3c | (b[3] & 0x80); // |w| in [2^-7, 2^-5)
                            deq[at] = f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                        }
                        _ => {
                            b[1] = 0x20 | (b[1] & 0x83); // f16 exponent 8..11: normal
                            let h = u16::from_le_bytes([b[0], b[1]]);
                            let e = i32::from((h >> 10) & 0x1f);
                            let m = f64::from(h & 0x3ff);
                            let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
                            let d = sign * (1.0 + m / 1024.0) * 2f64.powi(e - 15);
                            for j in 0..32 {
                                let q = if ty == WeightType::Q4_0 {
                                    let byte = b[2 + j % 16];
                                    let n = if j < 16 { byte & 0x0f } else { byte >> 4 };
                                    f64::from(n) - 8.0
                                } else {
                                    f64::from(b[2 + j] as i8)
                                };
                                deq[at + j] = q * d;
                            }
                        }
                    }
                }
            }
            for be in backends() {
                let mut y = vec![0f32; rows];
                dmmv_with(be, ty, &w, &x, &mut y, rows, cols).unwrap();
                for r in 0..rows {
                    let terms = (0..cols).map(|k| deq[r * cols + k] * f64::from(x[k]));
                    let exact: f64 = terms.clone().sum();
                    let abs: f64 = terms.map(f64::abs).sum();
                    let bound = (cols / 16 + 6) as f64 * abs / 16_777_216.0;
                    let err = (f64::from(y[r]) - exact).abs();
                    assert!(err <= bound, "{be:?} {ty:?} row {r}: {err:e} > {bound:e}");
                }
            }
        }
    }
}
