//! Engine operations on any tier: a [`Session`] owns a [`Submitter`], keeps the kernel library
//! and the weights resident, and runs the kernels of `kernels/README.md` — DMMV (F32, Q4_0,
//! Q8_0), argmax, the fused DMMV + argmax LM head, RMS norm and copy.
//!
//! # Resources
//! [`Session::new`] uploads the code object for the submitter's GPU target once (an executable
//! BO), and creates a kernarg arena, an IB BO, an argmax-output BO and a fence BO (the arena,
//! IB and output BOs grow on demand). Weights ([`Session::upload_weights`]) and vectors
//! ([`Session::alloc_vec`]) are one BO each, resident until the session is dropped. The
//! session keeps host copies of what was uploaded (weights, and the last contents written to
//! or read from each vector) so the buffers can be re-created elsewhere, e.g. on another tier.
//!
//! # Submissions
//! Every operation is recorded into a [`Batch`]; [`Batch::submit_and_wait`] writes all of it
//! into ONE IB — per operation its kernarg slot (64 bytes apart), a `WRITE_DATA` zeroing the
//! packed argmax output before an argmax dispatch, the dispatch itself
//! ([`pm4rt_core::launch::emit_dispatch`], which starts with a cache invalidate and ends with
//! a `CS_PARTIAL_FLUSH`, so every dispatch sees everything the earlier ones wrote; no other
//! barrier is needed) — and ends it with a `RELEASE_MEM` fence, padded with a NOP to
//! a multiple of 8 dwords as Mesa pads compute IBs ([`pm4rt_core::pm4::Builder::pad_ib`]); one
//! submission, one wait, then the argmax results are read back. The dispatch's RSRC1 depends
//! on the tier (PRIV on gfx11 KFD queues), so a batch is recorded again after a fallback. The single-operation methods
//! ([`Session::dmmv`], ...) are batches of one.

use std::collections::HashSet;
use std::time::Duration;

use pm4rt_core::code_object::{CodeObject, CodeObjectError, Kernel};
use pm4rt_core::launch::{emit_dispatch, Launch, LaunchError};
use pm4rt_core::pm4::{Builder, EncodeError, FenceInterrupt};
use pm4rt_core::{BoDesc, BoHandle, Fence, GfxTarget, Submitter, SubmitterInfo, Tier};
use pm4rt_kernels::KernelId;
use pm4rt_sim::dispatch::{declared_args, kernels_target};
use pm4rt_sim::kernels::WeightType;

use crate::probe::{probe_one, Candidate, ProbeOptions};

mod program;
use crate::runtime::Selection;
pub use program::{Arg, BufferHandle, Program, UserKernel};

/// Result alias of this module.
pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// How long the single-operation methods wait for their fence (see
/// [`Session::set_timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes between kernarg segments in the arena (every kernel's segment is at most 32 bytes;
/// the launcher needs 16-byte alignment).
pub const KERNARG_SLOT: u64 = 64;

/// Bytes of one packed argmax output (a `u64`).
const ARGMAX_BYTES: u64 = 8;

/// Smallest BO the session allocates (the page size every tier rounds to).
const MIN_BO: u64 = 4096;

/// Storage format of a weight matrix (GGML layouts; see kernels/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// 32-bit floats, row-major.
    F32,
    /// GGML Q4_0: per row `cols / 32` blocks of 18 bytes `{f16 d; u8 qs[16]}`.
    Q4_0,
    /// GGML Q8_0: per row `cols / 32` blocks of 34 bytes `{f16 d; i8 qs[32]}`.
    Q8_0,
    /// IEEE binary16, row-major.
    F16,
    /// bfloat16 (upper half of an f32), row-major.
    Bf16,
    /// GGML Q4_1: per row `cols / 32` blocks of 20 bytes `{f16 d; f16 m; u8 qs[16]}`.
    Q4_1,
    /// GGML Q5_0: per row `cols / 32` blocks of 22 bytes `{f16 d; u8 qh[4]; u8 qs[16]}`.
    Q5_0,
    /// GGML Q5_1: per row `cols / 32` blocks of 24 bytes `{f16 d; f16 m; u8 qh[4]; u8 qs[16]}`.
    Q5_1,
    /// GGML Q4_K: per row `cols / 256` super-blocks of 144 bytes.
    Q4K,
    /// GGML Q5_K: per row `cols / 256` super-blocks of 176 bytes.
    Q5K,
    /// GGML Q6_K: per row `cols / 256` super-blocks of 210 bytes.
    Q6K,
}

impl WeightFormat {
    /// Every format, in the order of `WeightType::ALL`.
    pub const ALL: [WeightFormat; 11] = [
        WeightFormat::F32,
        WeightFormat::Q4_0,
        WeightFormat::Q8_0,
        WeightFormat::F16,
        WeightFormat::Bf16,
        WeightFormat::Q4_1,
        WeightFormat::Q5_0,
        WeightFormat::Q5_1,
        WeightFormat::Q4K,
        WeightFormat::Q5K,
        WeightFormat::Q6K,
    ];

    /// The format's name as GGML prints it (`F32`, `Q4_0`, `Q4_K`, ...).
    pub fn name(self) -> &'static str {
        self.weight_type().ggml_name()
    }

    /// Values per block: 1 for F32 / F16 / BF16 (any `cols`), 32 for Q4_0 / Q4_1 / Q5_0 /
    /// Q5_1 / Q8_0, 256 for the K-quants.
    pub fn block_values(self) -> usize {
        self.weight_type().block_values()
    }

    /// Bytes of one row of `cols` values; `None` when `cols` is not a multiple of
    /// [`WeightFormat::block_values`] or the size overflows.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        self.weight_type().row_bytes(cols).ok()
    }

    /// Bytes of a `rows x cols` matrix, with the shape checks of
    /// [`Session::upload_weights`].
    ///
    /// Errors: [`SessionError::BadDimension`] for zero or over-u32 `rows` / `cols` or a size
    /// that overflows; [`SessionError::ColsNotBlockMultiple`].
    pub fn weight_bytes(self, rows: usize, cols: usize) -> Result<usize> {
        dim("weight rows", rows)?;
        dim("weight cols", cols)?;
        let block = self.block_values();
        if !cols.is_multiple_of(block) {
            return Err(SessionError::ColsNotBlockMultiple { format: self, cols, block });
        }
        self.row_bytes(cols).and_then(|r| r.checked_mul(rows)).ok_or(SessionError::BadDimension {
            what: "weight bytes",
            value: usize::MAX,
            max: u64::MAX,
        })
    }

    /// The simulator's name for the same format.
    pub fn weight_type(self) -> WeightType {
        match self {
            WeightFormat::F32 => WeightType::F32,
            WeightFormat::Q4_0 => WeightType::Q4_0,
            WeightFormat::Q8_0 => WeightType::Q8_0,
            WeightFormat::F16 => WeightType::F16,
            WeightFormat::Bf16 => WeightType::Bf16,
            WeightFormat::Q4_1 => WeightType::Q4_1,
            WeightFormat::Q5_0 => WeightType::Q5_0,
            WeightFormat::Q5_1 => WeightType::Q5_1,
            WeightFormat::Q4K => WeightType::Q4K,
            WeightFormat::Q5K => WeightType::Q5K,
            WeightFormat::Q6K => WeightType::Q6K,
        }
    }

    /// The format of a simulator [`WeightType`] (e.g. from [`crate::gguf::MatTensor`]).
    pub fn from_weight_type(t: WeightType) -> WeightFormat {
        match t {
            WeightType::F32 => WeightFormat::F32,
            WeightType::Q4_0 => WeightFormat::Q4_0,
            WeightType::Q8_0 => WeightFormat::Q8_0,
            WeightType::F16 => WeightFormat::F16,
            WeightType::Bf16 => WeightFormat::Bf16,
            WeightType::Q4_1 => WeightFormat::Q4_1,
            WeightType::Q5_0 => WeightFormat::Q5_0,
            WeightType::Q5_1 => WeightFormat::Q5_1,
            WeightType::Q4K => WeightFormat::Q4K,
            WeightType::Q5K => WeightFormat::Q5K,
            WeightType::Q6K => WeightFormat::Q6K,
        }
    }

    fn dmmv_kernel(self) -> KernelId {
        match self {
            WeightFormat::F32 => KernelId::DmmvF32,
            WeightFormat::Q4_0 => KernelId::DmmvQ4_0,
            WeightFormat::Q8_0 => KernelId::DmmvQ8_0,
            WeightFormat::F16 => KernelId::DmmvF16,
            WeightFormat::Bf16 => KernelId::DmmvBf16,
            WeightFormat::Q4_1 => KernelId::DmmvQ4_1,
            WeightFormat::Q5_0 => KernelId::DmmvQ5_0,
            WeightFormat::Q5_1 => KernelId::DmmvQ5_1,
            WeightFormat::Q4K => KernelId::DmmvQ4K,
            WeightFormat::Q5K => KernelId::DmmvQ5K,
            WeightFormat::Q6K => KernelId::DmmvQ6K,
        }
    }

    fn fused_kernel(self) -> KernelId {
        match self {
            WeightFormat::F32 => KernelId::DmmvF32Argmax,
            WeightFormat::Q4_0 => KernelId::DmmvQ4_0Argmax,
            WeightFormat::Q8_0 => KernelId::DmmvQ8_0Argmax,
            WeightFormat::F16 => KernelId::DmmvF16Argmax,
            WeightFormat::Bf16 => KernelId::DmmvBf16Argmax,
            WeightFormat::Q4_1 => KernelId::DmmvQ4_1Argmax,
            WeightFormat::Q5_0 => KernelId::DmmvQ5_0Argmax,
            WeightFormat::Q5_1 => KernelId::DmmvQ5_1Argmax,
            WeightFormat::Q4K => KernelId::DmmvQ4KArgmax,
            WeightFormat::Q5K => KernelId::DmmvQ5KArgmax,
            WeightFormat::Q6K => KernelId::DmmvQ6KArgmax,
        }
    }
}

impl std::fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong in a session. Every variant names the operation or buffer and the values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The submitter failed (allocation, mapping, submission, a fault, a timeout ...).
    #[error(transparent)]
    Core(#[from] pm4rt_core::Error),
    /// The kernel library did not load for the device, or a kernel's arguments differ from
    /// the declared signature.
    #[error("kernel library: {0}")]
    CodeObject(#[from] CodeObjectError),
    /// A dispatch could not be emitted.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// A packet could not be encoded.
    #[error("encoding the command stream: {0}")]
    Encode(#[from] EncodeError),
    /// The weight bytes do not have the length the shape needs (truncated, or another shape).
    #[error("{format} weights {rows}x{cols}: expected {expected} bytes, got {got}")]
    WeightBytes {
        /// Weight format.
        format: WeightFormat,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// `cols` is not a multiple of the format's block size.
    #[error("{format} weights: cols {cols} is not a multiple of the block size {block}")]
    ColsNotBlockMultiple {
        /// Weight format.
        format: WeightFormat,
        /// Columns asked for.
        cols: usize,
        /// Required multiple.
        block: usize,
    },
    /// A dimension is zero or exceeds what a kernel argument (u32) holds.
    #[error("{what} is {value}; it must be between 1 and {max}")]
    BadDimension {
        /// Which dimension (e.g. `"weight rows"`, `"vector length"`).
        what: &'static str,
        /// The value given.
        value: usize,
        /// The largest accepted value.
        max: u64,
    },
    /// A vector's length does not match the operation's shape.
    #[error("{op}: {arg} has {got} elements, expected {expected}")]
    Shape {
        /// The operation (`"dmmv"`, `"rms_norm"` ...).
        op: &'static str,
        /// The argument (`"x"`, `"y"`, `"weight"`, `"dst"`, or `"data"` for a host slice).
        arg: &'static str,
        /// Elements required.
        expected: usize,
        /// Elements it has.
        got: usize,
    },
    /// The same vector was passed where the kernel needs distinct buffers.
    #[error("{op}: {a} and {b} are the same vector, which the kernel cannot do in place")]
    Aliased {
        /// The operation.
        op: &'static str,
        /// First argument.
        a: &'static str,
        /// Second argument.
        b: &'static str,
    },
    /// A handle that this session did not create.
    #[error("unknown {kind} handle #{id} (not created by this session)")]
    UnknownHandle {
        /// `"weight"` or `"vector"`.
        kind: &'static str,
        /// Its number.
        id: u32,
    },
    /// A tier failed and no fallback tier could take over.
    #[error("{from} failed ({cause}) and no fallback tier could take over: {skipped}")]
    AllTiersFailed {
        /// The last tier that failed.
        from: Tier,
        /// Its error.
        cause: String,
        /// Each fallback tier tried and why it could not be used.
        skipped: String,
    },
    /// Host memory for a buffer could not be allocated.
    #[error("cannot allocate {bytes} bytes of host memory for {what}")]
    HostMemory {
        /// What the memory was for.
        what: &'static str,
        /// Bytes asked for.
        bytes: usize,
    },
    /// A user code object did not load for the device, or has no kernel of that name.
    #[error("code object: {0}")]
    UserCode(CodeObjectError),
    /// A user-kernel launch's arguments or geometry do not match the kernel's metadata.
    #[error(transparent)]
    Kernarg(pm4rt_core::code_object::kernargs::KernargError),
    /// A user-kernel launch without a workgroup size, for a kernel that declares none.
    #[error(
        "kernel {kernel}: no workgroup size given and the kernel declares no reqd_work_group_size"
    )]
    MissingBlock {
        /// The kernel.
        kernel: String,
    },
    /// The fence memory after the wait does not hold the value the IB's RELEASE_MEM writes.
    #[error("fence at {va:#x} holds {got:#x} after the wait, expected {expected:#x}")]
    FenceValue {
        /// Fence VA.
        va: u64,
        /// Value read.
        got: u64,
        /// Value written by the submission.
        expected: u64,
    },
}

impl SessionError {
    /// True when the error means the tier itself failed (its fence timed out, the queue
    /// faulted, the device was lost, an ioctl failed, or the fence did not land), so the same
    /// batch may succeed on another tier.
    pub fn is_tier_failure(&self) -> bool {
        use pm4rt_core::Error as E;
        matches!(
            self,
            SessionError::Core(
                E::Timeout { .. } | E::Fault { .. } | E::DeviceLost { .. } | E::Io { .. }
            ) | SessionError::FenceValue { .. }
        )
    }
}

/// A weight matrix uploaded by [`Session::upload_weights`] (valid only for that session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeightHandle(u32);

/// An f32 vector allocated by [`Session::alloc_vec`] (valid only for that session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VecHandle(u32);

/// Where an argmax result of a [`Batch`] lands; look it up in its [`BatchResults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgmaxSlot(usize);

/// One resident buffer.
#[derive(Debug, Clone, Copy)]
struct Buf {
    bo: BoHandle,
    va: u64,
    size: u64,
}

/// A resident weight matrix and its host copy.
#[derive(Debug)]
struct Weight {
    format: WeightFormat,
    rows: usize,
    cols: usize,
    buf: Buf,
    host: Vec<u8>,
}

/// A resident vector and its host copy (the last contents written or read).
#[derive(Debug)]
struct Vector {
    len: usize,
    buf: Buf,
    host: Vec<f32>,
}

/// A buffer an operation writes (read back after a fallback replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Res {
    Vec(u32),
    Out(usize),
    /// A byte buffer passed to a user-kernel launch.
    Buf(u32),
}

/// A kernel argument, resolved to a value when the IB is recorded (so a batch can be
/// replayed on another tier, where every buffer has another VA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpArg {
    /// The VA of a weight matrix.
    Weight(u32),
    /// The VA of a vector.
    Vec(u32),
    /// The VA of the op's argmax output slot.
    Out,
    /// A u32, or an f32's bits, widened.
    Value(u64),
}

/// One recorded operation.
#[derive(Debug, Clone)]
struct Op {
    kernel: KernelId,
    /// Kernel argument values by declared name.
    args: Vec<(&'static str, OpArg)>,
    /// Workgroups in X.
    groups: u32,
    writes: Vec<Res>,
    /// The argmax output slot this op zeroes and writes, if any.
    out: Option<usize>,
    /// A user-kernel launch ([`Batch::launch`]); when set, `kernel`, `args` and `groups` are
    /// unused.
    user: Option<Box<program::UserOp>>,
}

impl Op {
    /// A user-kernel launch writing `writes`.
    fn user(op: program::UserOp, writes: Vec<Res>) -> Op {
        Op {
            kernel: KernelId::ALL[0],
            args: Vec::new(),
            groups: 0,
            writes,
            out: None,
            user: Some(Box::new(op)),
        }
    }

    /// Bytes of the kernarg arena this op uses.
    fn arena_bytes(&self) -> u64 {
        self.user.as_ref().map_or(KERNARG_SLOT, |u| u.arena_bytes())
    }
}

/// A GPU session over one submitter. See the module documentation.
pub struct Session {
    sub: Box<dyn Submitter>,
    gfx: GfxTarget,
    code: CodeObject,
    image: Buf,
    kernarg: Buf,
    ib: Buf,
    outs: Buf,
    fence: Buf,
    fence_value: u64,
    /// A submission whose wait failed (timed out): waited for before the next one reuses the
    /// arena and IB.
    in_flight: Option<Fence>,
    weights: Vec<Weight>,
    vectors: Vec<Vector>,
    /// User code objects ([`Session::load_code_object`]).
    programs: Vec<program::LoadedProgram>,
    /// User byte buffers ([`Session::alloc_buffer`]).
    buffers: Vec<program::Buffer>,
    timeout: Duration,
    /// Tiers to demote to at run time, in order (empty: no fallback).
    fallback: Vec<Candidate>,
    /// Retire-smoke settings for opening a fallback tier.
    probe: ProbeOptions,
    /// Every demotion so far.
    demotions: Vec<Demotion>,
    /// Batches submitted successfully so far.
    batches: u64,
}

/// A run-time move to a lower tier (see [`Session::with_fallback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demotion {
    /// The tier that failed.
    pub from: Tier,
    /// The tier the session moved to.
    pub to: Tier,
    /// The device of the new tier.
    pub device: String,
    /// Why the old tier was abandoned (the error of the failed batch).
    pub reason: String,
    /// How many batches had completed before the failure (the failed batch was replayed).
    pub after_batches: u64,
    /// Fallback tiers that could not be opened on the way down, with their reasons.
    pub skipped: Vec<String>,
}

impl std::fmt::Display for Demotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {} ({}) after {} batches: {}",
            self.from, self.to, self.device, self.after_batches, self.reason
        )?;
        for s in &self.skipped {
            write!(f, "; skipped {s}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("gfx", &self.gfx)
            .field("weights", &self.weights.len())
            .field("vectors", &self.vectors.len())
            .finish_non_exhaustive()
    }
}

fn dim(what: &'static str, value: usize) -> Result<u32> {
    match u32::try_from(value) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(SessionError::BadDimension { what, value, max: u64::from(u32::MAX) }),
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// Decode a packed argmax value (kernels/README.md): `index = 0xFFFFFFFF - lo`,
/// `value = from_key(hi)` (key 0, i.e. NaN, decodes to a NaN).
pub fn unpack_argmax(packed: u64) -> (u32, f32) {
    pm4rt_sim::kernels::unpack(packed)
}

impl Session {
    /// Open a session on `sub`: load the kernel library for its GPU target, upload it, and
    /// create the kernarg arena, IB, argmax-output and fence BOs.
    ///
    /// Errors: [`SessionError::CodeObject`] when the library does not load for the target or
    /// a kernel's metadata differs from its declared signature; [`SessionError::Core`] for
    /// allocation, mapping or upload failures.
    pub fn new(mut sub: Box<dyn Submitter>) -> Result<Session> {
        let gfx = sub.info().gfx;
        let code = CodeObject::load(pm4rt_kernels::code_object(kernels_target(gfx)), gfx)?;
        for id in KernelId::ALL {
            code.kernel(id.name())?.check_signature(&declared_args(id))?;
        }
        let image_len = code.image().len() as u64;
        let image = new_buf(sub.as_mut(), BoDesc::code(image_len.max(MIN_BO)))?;
        sub.write_bo(image.bo, 0, code.image())?;
        let kernarg = new_buf(sub.as_mut(), BoDesc::gtt(MIN_BO))?;
        let ib = new_buf(sub.as_mut(), BoDesc::gtt(MIN_BO))?;
        let outs = new_buf(sub.as_mut(), BoDesc::gtt(MIN_BO))?;
        let fence = new_buf(sub.as_mut(), BoDesc { uncached: true, ..BoDesc::gtt(MIN_BO) })?;
        sub.write_bo(fence.bo, 0, &0u64.to_le_bytes())?;
        Ok(Session {
            sub,
            gfx,
            code,
            image,
            kernarg,
            ib,
            outs,
            fence,
            fence_value: 0,
            in_flight: None,
            weights: Vec::new(),
            vectors: Vec::new(),
            programs: Vec::new(),
            buffers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            fallback: Vec::new(),
            probe: ProbeOptions::default(),
            demotions: Vec::new(),
            batches: 0,
        })
    }

    /// Open a session on the tier `selection` chose, with run-time fallback: when a batch
    /// fails because the tier did (its fence timed out, the queue faulted, the device was
    /// lost, an ioctl failed, or the fence did not hold its value), the session demotes to
    /// the next candidate of `selection.fallback` that passes its retire smoke (`probe`),
    /// re-creates the kernel library, every weight and every vector there from the host
    /// copies, replays the failed batch, and records a [`Demotion`]. The caller gets the
    /// batch's results; an error only when every remaining tier failed
    /// ([`SessionError::AllTiersFailed`]).
    ///
    /// With fallback, the vectors a batch writes are read back after it completes so their
    /// host copies are current (the cost of being able to replay on another tier).
    ///
    /// Errors: as [`Session::new`].
    pub fn with_fallback(selection: Selection, probe: ProbeOptions) -> Result<Session> {
        let mut s = Session::new(selection.submitter)?;
        s.fallback = selection.fallback;
        s.probe = probe;
        Ok(s)
    }

    /// The tier the session runs on now.
    pub fn tier(&self) -> Tier {
        self.sub.info().tier
    }

    /// Every run-time demotion so far, oldest first.
    pub fn demotions(&self) -> &[Demotion] {
        &self.demotions
    }

    /// The submitter's static facts and counters (e.g. `counters.submissions`).
    pub fn info(&self) -> SubmitterInfo {
        self.sub.info()
    }

    /// The GPU target the kernels run as.
    pub fn gfx(&self) -> GfxTarget {
        self.gfx
    }

    /// The submitter (for inspection).
    pub fn submitter(&self) -> &dyn Submitter {
        self.sub.as_ref()
    }

    /// How long the single-operation methods wait for completion.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Set how long the single-operation methods wait for completion.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Upload a `rows x cols` weight matrix in `format` (row-major; GGML block layout for the
    /// quantized formats) once; it stays resident and the handle is reused by every op. A
    /// host copy is kept ([`Session::weight_host`]).
    ///
    /// Errors: [`SessionError::BadDimension`] for zero or over-u32 `rows` / `cols`;
    /// [`SessionError::ColsNotBlockMultiple`] (Q4_0 / Q8_0 need `cols % 32 == 0`);
    /// [`SessionError::WeightBytes`] when `bytes.len()` is not exactly
    /// `rows * row_bytes(cols)` (truncated or another shape); [`SessionError::Core`].
    pub fn upload_weights(
        &mut self,
        format: WeightFormat,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<WeightHandle> {
        let expected = format.weight_bytes(rows, cols)?;
        if bytes.len() != expected {
            return Err(SessionError::WeightBytes {
                format,
                rows,
                cols,
                expected,
                got: bytes.len(),
            });
        }
        let id = u32::try_from(self.weights.len()).map_err(|_| SessionError::BadDimension {
            what: "weight count",
            value: self.weights.len(),
            max: u64::from(u32::MAX),
        })?;
        let buf = new_buf(self.sub.as_mut(), BoDesc::gtt(expected as u64))?;
        if let Err(e) = self.sub.write_bo(buf.bo, 0, bytes) {
            let _ = self.sub.free_bo(buf.bo);
            return Err(e.into());
        }
        self.weights.push(Weight { format, rows, cols, buf, host: bytes.to_vec() });
        Ok(WeightHandle(id))
    }

    /// Format, rows and columns of `w`.
    ///
    /// Errors: [`SessionError::UnknownHandle`].
    pub fn weight_shape(&self, w: WeightHandle) -> Result<(WeightFormat, usize, usize)> {
        let w = self.weight(w)?;
        Ok((w.format, w.rows, w.cols))
    }

    /// The host copy of the bytes uploaded for `w`.
    ///
    /// Errors: [`SessionError::UnknownHandle`].
    pub fn weight_host(&self, w: WeightHandle) -> Result<&[u8]> {
        Ok(&self.weight(w)?.host)
    }

    /// Allocate a resident f32 vector of `len` elements (contents zero).
    ///
    /// Errors: [`SessionError::BadDimension`] for 0 or more than `u32::MAX` elements;
    /// [`SessionError::Core`].
    pub fn alloc_vec(&mut self, len: usize) -> Result<VecHandle> {
        dim("vector length", len)?;
        let id = u32::try_from(self.vectors.len()).map_err(|_| SessionError::BadDimension {
            what: "vector count",
            value: self.vectors.len(),
            max: u64::from(u32::MAX),
        })?;
        let buf = new_buf(self.sub.as_mut(), BoDesc::gtt(4 * len as u64))?;
        let host = vec![0f32; len];
        if let Err(e) = self.sub.write_bo(buf.bo, 0, &f32_bytes(&host)) {
            let _ = self.sub.free_bo(buf.bo);
            return Err(e.into());
        }
        self.vectors.push(Vector { len, buf, host });
        Ok(VecHandle(id))
    }

    /// Number of elements of `v`.
    ///
    /// Errors: [`SessionError::UnknownHandle`].
    pub fn vec_len(&self, v: VecHandle) -> Result<usize> {
        Ok(self.vector(v)?.len)
    }

    /// Copy `data` (exactly `len` elements) into `v` and into its host copy.
    ///
    /// Errors: [`SessionError::Shape`] for another length; [`SessionError::UnknownHandle`];
    /// [`SessionError::Core`].
    pub fn write_vec(&mut self, v: VecHandle, data: &[f32]) -> Result<()> {
        let len = self.vector(v)?.len;
        if data.len() != len {
            return Err(SessionError::Shape {
                op: "write_vec",
                arg: "data",
                expected: len,
                got: data.len(),
            });
        }
        let bo = self.vector(v)?.buf.bo;
        self.sub.write_bo(bo, 0, &f32_bytes(data))?;
        self.vectors[v.0 as usize].host.copy_from_slice(data);
        Ok(())
    }

    /// Read `v` back from the device (refreshing its host copy).
    ///
    /// Errors: [`SessionError::UnknownHandle`]; [`SessionError::Core`].
    pub fn read_vec(&mut self, v: VecHandle) -> Result<Vec<f32>> {
        let (bo, len) = {
            let x = self.vector(v)?;
            (x.buf.bo, x.len)
        };
        let mut bytes = vec![0u8; 4 * len];
        self.sub.read_bo(bo, 0, &mut bytes)?;
        let out: Vec<f32> =
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        self.vectors[v.0 as usize].host.copy_from_slice(&out);
        Ok(out)
    }

    /// The host copy of `v`: the last contents written with [`Session::write_vec`] or read
    /// with [`Session::read_vec`] (not what later kernels wrote).
    ///
    /// Errors: [`SessionError::UnknownHandle`].
    pub fn vec_host(&self, v: VecHandle) -> Result<&[f32]> {
        Ok(&self.vector(v)?.host)
    }

    /// `y = W x` (`x` has `cols` elements, `y` has `rows`), waited for.
    ///
    /// Errors: as [`Batch::dmmv`] and [`Batch::submit_and_wait`].
    pub fn dmmv(&mut self, w: WeightHandle, x: VecHandle, y: VecHandle) -> Result<()> {
        let timeout = self.timeout;
        let mut b = self.batch();
        b.dmmv(w, x, y)?;
        b.submit_and_wait(timeout).map(|_| ())
    }

    /// The index and value of the largest element of `x` (lowest index among ties; NaN
    /// never wins unless every element is NaN), waited for.
    ///
    /// Errors: as [`Batch::argmax`] and [`Batch::submit_and_wait`].
    pub fn argmax(&mut self, x: VecHandle) -> Result<(u32, f32)> {
        let timeout = self.timeout;
        let mut b = self.batch();
        let slot = b.argmax(x)?;
        Ok(b.submit_and_wait(timeout)?.argmax(slot))
    }

    /// The fused LM head: argmax of `W x` without materialising it, waited for.
    ///
    /// Errors: as [`Batch::dmmv_argmax`] and [`Batch::submit_and_wait`].
    pub fn dmmv_argmax(&mut self, w: WeightHandle, x: VecHandle) -> Result<(u32, f32)> {
        let timeout = self.timeout;
        let mut b = self.batch();
        let slot = b.dmmv_argmax(w, x)?;
        Ok(b.submit_and_wait(timeout)?.argmax(slot))
    }

    /// `y = x / sqrt(mean(x^2) + eps) * weight`, waited for.
    ///
    /// Errors: as [`Batch::rms_norm`] and [`Batch::submit_and_wait`].
    pub fn rms_norm(
        &mut self,
        x: VecHandle,
        weight: VecHandle,
        eps: f32,
        y: VecHandle,
    ) -> Result<()> {
        let timeout = self.timeout;
        let mut b = self.batch();
        b.rms_norm(x, weight, eps, y)?;
        b.submit_and_wait(timeout).map(|_| ())
    }

    /// `dst = src` on the device, waited for.
    ///
    /// Errors: as [`Batch::copy`] and [`Batch::submit_and_wait`].
    pub fn copy(&mut self, src: VecHandle, dst: VecHandle) -> Result<()> {
        let timeout = self.timeout;
        let mut b = self.batch();
        b.copy(src, dst)?;
        b.submit_and_wait(timeout).map(|_| ())
    }

    /// Start recording several operations into one submission.
    pub fn batch(&mut self) -> Batch<'_> {
        Batch { s: self, ops: Vec::new(), outs: 0 }
    }

    fn weight(&self, w: WeightHandle) -> Result<&Weight> {
        self.weights
            .get(w.0 as usize)
            .ok_or(SessionError::UnknownHandle { kind: "weight", id: w.0 })
    }

    fn vector(&self, v: VecHandle) -> Result<&Vector> {
        self.vectors
            .get(v.0 as usize)
            .ok_or(SessionError::UnknownHandle { kind: "vector", id: v.0 })
    }

    fn kernel(&self, id: KernelId) -> Result<&Kernel> {
        Ok(self.code.kernel(id.name())?)
    }

    /// Make `buf` at least `need` bytes (replacing it with a larger BO). Only called when no
    /// submission is in flight.
    fn ensure(&mut self, which: fn(&mut Session) -> &mut Buf, need: u64) -> Result<()> {
        let cur = *which(self);
        if cur.size >= need {
            return Ok(());
        }
        let size = need.max(MIN_BO).checked_next_power_of_two().unwrap_or(need);
        let new = new_buf(self.sub.as_mut(), BoDesc::gtt(size))?;
        *which(self) = new;
        self.sub.free_bo(cur.bo)?;
        Ok(())
    }

    /// Run a batch; on a tier failure with fallback candidates left, demote and replay it.
    fn execute(&mut self, ops: &[Op], outs: usize, timeout: Duration) -> Result<BatchResults> {
        loop {
            match self.execute_once(ops, outs, timeout) {
                Ok(r) => {
                    if !self.fallback.is_empty() {
                        self.sync_outputs(ops)?;
                    }
                    self.batches += 1;
                    return Ok(r);
                }
                Err(e) if e.is_tier_failure() && !self.fallback.is_empty() => self.demote(&e)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Refresh the host copies of the vectors `ops` wrote.
    fn sync_outputs(&mut self, ops: &[Op]) -> Result<()> {
        let written: HashSet<u32> = ops
            .iter()
            .flat_map(|o| o.writes.iter())
            .filter_map(|r| match r {
                Res::Vec(i) => Some(*i),
                _ => None,
            })
            .collect();
        for i in written {
            self.read_vec(VecHandle(i))?;
        }
        let buffers: HashSet<u32> = ops
            .iter()
            .flat_map(|o| o.writes.iter())
            .filter_map(|r| match r {
                Res::Buf(i) => Some(*i),
                _ => None,
            })
            .collect();
        for i in buffers {
            self.read_buffer(BufferHandle(i))?;
        }
        Ok(())
    }

    /// Move to the next fallback tier that opens and passes its retire smoke.
    fn demote(&mut self, cause: &SessionError) -> Result<()> {
        let from = self.tier();
        let mut skipped = Vec::new();
        while !self.fallback.is_empty() {
            let c = self.fallback.remove(0);
            let (status, sub) = probe_one(&c, &self.probe);
            let Some(sub) = sub else {
                let why = status
                    .rejection
                    .map_or_else(String::new, |r| format!("{}: {}", r.step, r.message));
                skipped.push(format!("{} ({why})", c.tier));
                continue;
            };
            match self.rebuild_on(sub) {
                Ok(()) => {
                    self.demotions.push(Demotion {
                        from,
                        to: c.tier,
                        device: c.device,
                        reason: cause.to_string(),
                        after_batches: self.batches,
                        skipped,
                    });
                    return Ok(());
                }
                Err(e) => skipped.push(format!("{} (re-creating buffers: {e})", c.tier)),
            }
        }
        Err(SessionError::AllTiersFailed {
            from,
            cause: cause.to_string(),
            skipped: skipped.join("; "),
        })
    }

    /// Replace the submitter with `sub`: load the kernel library for its target and
    /// re-create every weight and vector from the host copies (handles stay valid). On error
    /// the session is unchanged.
    fn rebuild_on(&mut self, sub: Box<dyn Submitter>) -> Result<()> {
        let mut fresh = Session::new(sub)?;
        for w in &self.weights {
            fresh.upload_weights(w.format, w.rows, w.cols, &w.host)?;
        }
        for v in &self.vectors {
            let h = fresh.alloc_vec(v.len)?;
            fresh.write_vec(h, &v.host)?;
        }
        fresh.adopt_programs(self)?;
        fresh.timeout = self.timeout;
        fresh.fallback = std::mem::take(&mut self.fallback);
        fresh.probe = self.probe.clone();
        fresh.demotions = std::mem::take(&mut self.demotions);
        fresh.batches = self.batches;
        fresh.fence_value = self.fence_value;
        *self = fresh;
        Ok(())
    }

    fn execute_once(&mut self, ops: &[Op], outs: usize, timeout: Duration) -> Result<BatchResults> {
        if let Some(f) = self.in_flight {
            self.sub.wait_fence(f, timeout)?;
            self.in_flight = None;
        }
        if ops.is_empty() {
            return Ok(BatchResults { argmax: Vec::new() });
        }
        let arena: u64 = ops.iter().map(Op::arena_bytes).sum();
        self.ensure(|s| &mut s.kernarg, arena)?;
        self.ensure(|s| &mut s.outs, ARGMAX_BYTES * outs.max(1) as u64)?;
        let (kernarg, ib_words) = self.record(ops)?;
        let ib_bytes: Vec<u8> = ib_words.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.ensure(|s| &mut s.ib, ib_bytes.len() as u64)?;
        self.sub.write_bo(self.kernarg.bo, 0, &kernarg)?;
        self.sub.write_bo(self.ib.bo, 0, &ib_bytes)?;
        let dwords = u32::try_from(ib_words.len()).map_err(|_| SessionError::BadDimension {
            what: "IB dwords",
            value: ib_words.len(),
            max: u64::from(u32::MAX),
        })?;
        let fence = self.sub.submit_ib(self.ib.va, dwords)?;
        self.in_flight = Some(fence);
        self.sub.wait_fence(fence, timeout)?;
        self.in_flight = None;
        let mut f = [0u8; 8];
        self.sub.read_bo(self.fence.bo, 0, &mut f)?;
        let got = u64::from_le_bytes(f);
        if got != self.fence_value {
            return Err(SessionError::FenceValue {
                va: self.fence.va,
                got,
                expected: self.fence_value,
            });
        }
        let mut raw = vec![0u8; ARGMAX_BYTES as usize * outs];
        if outs > 0 {
            self.sub.read_bo(self.outs.bo, 0, &mut raw)?;
        }
        let argmax = raw
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                unpack_argmax(u64::from_le_bytes(b))
            })
            .collect();
        Ok(BatchResults { argmax })
    }

    /// The kernarg arena contents and the IB for `ops` (see the module documentation).
    fn record(&mut self, ops: &[Op]) -> Result<(Vec<u8>, Vec<u32>)> {
        let arena: u64 = ops.iter().map(Op::arena_bytes).sum();
        let mut kernarg = vec![0u8; arena as usize];
        let mut b = Builder::growable(self.gfx);
        let mut next = 0usize;
        for op in ops {
            let slot = next;
            next += op.arena_bytes() as usize;
            if let Some(u) = &op.user {
                self.record_user(u, &mut kernarg, slot, self.kernarg.va, &mut b)?;
                continue;
            }
            for &(name, arg) in &op.args {
                let value = self.resolve(arg, op.out)?;
                if let Some(a) = op.kernel.signature().iter().find(|a| a.name == name) {
                    let at = slot + a.offset as usize;
                    kernarg[at..at + a.size as usize]
                        .copy_from_slice(&value.to_le_bytes()[..a.size as usize]);
                }
            }
            if let Some(o) = op.out {
                b.write_data(self.outs.va + ARGMAX_BYTES * o as u64, &[0, 0])?;
            }
            let kernel = self.kernel(op.kernel)?;
            let l = Launch {
                kernel,
                image_va: self.image.va,
                grid: [op.groups, 1, 1],
                workgroup: None,
                kernarg_va: self.kernarg.va + slot as u64,
                tier: self.tier(),
            };
            emit_dispatch(&mut b, self.gfx, &l)?;
        }
        self.fence_value += 1;
        b.release_mem_fence(self.fence.va, self.fence_value, FenceInterrupt::None)?;
        b.pad_ib()?;
        Ok((kernarg, b.into_vec()))
    }
}

impl Session {
    /// The value of `arg` on the current tier. The argmax output's VA is known only now (the
    /// output BO may have grown).
    fn resolve(&self, arg: OpArg, out: Option<usize>) -> Result<u64> {
        Ok(match arg {
            OpArg::Weight(i) => self.weight(WeightHandle(i))?.buf.va,
            OpArg::Vec(i) => self.vector(VecHandle(i))?.buf.va,
            OpArg::Out => self.outs.va + ARGMAX_BYTES * out.unwrap_or(0) as u64,
            OpArg::Value(v) => v,
        })
    }
}

fn new_buf(sub: &mut dyn Submitter, desc: BoDesc) -> Result<Buf> {
    let bo = sub.alloc_bo(&desc)?;
    match sub.map_va(bo, None) {
        Ok(va) => Ok(Buf { bo, va, size: desc.size }),
        Err(e) => {
            let _ = sub.free_bo(bo);
            Err(e.into())
        }
    }
}

/// Operations recorded for one submission; see [`Session::batch`] and the module docs.
/// Nothing runs until [`Batch::submit_and_wait`]; dropping a batch discards it.
pub struct Batch<'s> {
    s: &'s mut Session,
    ops: Vec<Op>,
    outs: usize,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("ops", &self.ops.len()).finish_non_exhaustive()
    }
}

impl Batch<'_> {
    /// Operations recorded so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn vec_arg(
        &self,
        op: &'static str,
        arg: &'static str,
        v: VecHandle,
        len: usize,
    ) -> Result<OpArg> {
        let x = self.s.vector(v)?;
        if x.len != len {
            return Err(SessionError::Shape { op, arg, expected: len, got: x.len });
        }
        Ok(OpArg::Vec(v.0))
    }

    fn new_out(&mut self) -> usize {
        self.outs += 1;
        self.outs - 1
    }

    /// Record `y = W x`: `x` must have `cols` elements and `y` `rows`, distinct vectors.
    ///
    /// Errors: [`SessionError::UnknownHandle`], [`SessionError::Shape`],
    /// [`SessionError::Aliased`].
    pub fn dmmv(&mut self, w: WeightHandle, x: VecHandle, y: VecHandle) -> Result<()> {
        let wt = self.s.weight(w)?;
        let (format, rows, cols, w_va) = (wt.format, wt.rows, wt.cols, OpArg::Weight(w.0));
        let x_va = self.vec_arg("dmmv", "x", x, cols)?;
        let y_va = self.vec_arg("dmmv", "y", y, rows)?;
        if x == y {
            return Err(SessionError::Aliased { op: "dmmv", a: "x", b: "y" });
        }
        let kernel = format.dmmv_kernel();
        self.ops.push(Op {
            kernel,
            args: vec![
                ("w", w_va),
                ("x", x_va),
                ("y", y_va),
                ("rows", OpArg::Value(rows as u64)),
                ("cols", OpArg::Value(cols as u64)),
            ],
            groups: kernel.grid().workgroups(rows as u32),
            writes: vec![Res::Vec(y.0)],
            out: None,
            user: None,
        });
        Ok(())
    }

    /// Record an argmax of `x`; its output is zeroed (WRITE_DATA) right before the dispatch.
    ///
    /// Errors: [`SessionError::UnknownHandle`].
    pub fn argmax(&mut self, x: VecHandle) -> Result<ArgmaxSlot> {
        let v = self.s.vector(x)?;
        let (n, x_va) = (v.len, OpArg::Vec(x.0));
        let o = self.new_out();
        let kernel = KernelId::ArgmaxF32;
        self.ops.push(Op {
            kernel,
            args: vec![("x", x_va), ("n", OpArg::Value(n as u64)), ("out", OpArg::Out)],
            groups: kernel.grid().workgroups(n as u32),
            writes: vec![Res::Out(o)],
            out: Some(o),
            user: None,
        });
        Ok(ArgmaxSlot(o))
    }

    /// Record the fused DMMV + argmax (the LM head): `x` must have `cols` elements.
    ///
    /// Errors: [`SessionError::UnknownHandle`], [`SessionError::Shape`].
    pub fn dmmv_argmax(&mut self, w: WeightHandle, x: VecHandle) -> Result<ArgmaxSlot> {
        let wt = self.s.weight(w)?;
        let (format, rows, cols, w_va) = (wt.format, wt.rows, wt.cols, OpArg::Weight(w.0));
        let x_va = self.vec_arg("dmmv_argmax", "x", x, cols)?;
        let o = self.new_out();
        let kernel = format.fused_kernel();
        self.ops.push(Op {
            kernel,
            args: vec![
                ("w", w_va),
                ("x", x_va),
                ("out", OpArg::Out),
                ("rows", OpArg::Value(rows as u64)),
                ("cols", OpArg::Value(cols as u64)),
            ],
            groups: kernel.grid().workgroups(rows as u32),
            writes: vec![Res::Out(o)],
            out: Some(o),
            user: None,
        });
        Ok(ArgmaxSlot(o))
    }

    /// Record `y = x / sqrt(mean(x^2) + eps) * weight`; `x`, `weight` and `y` have the same
    /// length (`y` may be `x`: each element is read and written by the same lane).
    ///
    /// Errors: [`SessionError::UnknownHandle`], [`SessionError::Shape`].
    pub fn rms_norm(
        &mut self,
        x: VecHandle,
        weight: VecHandle,
        eps: f32,
        y: VecHandle,
    ) -> Result<()> {
        let n = self.s.vector(x)?.len;
        let x_va = self.vec_arg("rms_norm", "x", x, n)?;
        let w_va = self.vec_arg("rms_norm", "weight", weight, n)?;
        let y_va = self.vec_arg("rms_norm", "y", y, n)?;
        let kernel = KernelId::RmsNormF32;
        self.ops.push(Op {
            kernel,
            args: vec![
                ("x", x_va),
                ("weight", w_va),
                ("y", y_va),
                ("n", OpArg::Value(n as u64)),
                ("eps", OpArg::Value(u64::from(eps.to_bits()))),
            ],
            groups: kernel.grid().workgroups(n as u32),
            writes: vec![Res::Vec(y.0)],
            out: None,
            user: None,
        });
        Ok(())
    }

    /// Record `dst = src` (same length).
    ///
    /// Errors: [`SessionError::UnknownHandle`], [`SessionError::Shape`].
    pub fn copy(&mut self, src: VecHandle, dst: VecHandle) -> Result<()> {
        let n = self.s.vector(src)?.len;
        let src_va = self.vec_arg("copy", "src", src, n)?;
        let dst_va = self.vec_arg("copy", "dst", dst, n)?;
        let kernel = KernelId::CopyU32;
        self.ops.push(Op {
            kernel,
            args: vec![("src", src_va), ("dst", dst_va), ("n", OpArg::Value(n as u64))],
            groups: kernel.grid().workgroups(n as u32),
            writes: vec![Res::Vec(dst.0)],
            out: None,
            user: None,
        });
        Ok(())
    }

    /// Write everything recorded into one IB, submit it once, wait up to `timeout`, and read
    /// the argmax results back. An empty batch submits nothing.
    ///
    /// Errors: [`SessionError::Core`] from the submitter — a fault or dispatch error reported
    /// through the fence, [`pm4rt_core::Error::Timeout`] (the session then waits for that
    /// submission before its next one) —, [`SessionError::Launch`] / [`SessionError::Encode`],
    /// [`SessionError::FenceValue`].
    pub fn submit_and_wait(self, timeout: Duration) -> Result<BatchResults> {
        let Batch { s, ops, outs } = self;
        s.execute(&ops, outs, timeout)
    }
}

/// What a submitted [`Batch`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResults {
    argmax: Vec<(u32, f32)>,
}

impl BatchResults {
    /// The `(index, value)` of an argmax recorded in this batch. A slot from another batch
    /// that is out of range yields `(u32::MAX, NaN)`, the decoding of an empty result.
    pub fn argmax(&self, slot: ArgmaxSlot) -> (u32, f32) {
        self.argmax.get(slot.0).copied().unwrap_or((u32::MAX, f32::NAN))
    }

    /// Every argmax result in recording order.
    pub fn all_argmax(&self) -> &[(u32, f32)] {
        &self.argmax
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm4rt_core::pm4::{decode, Packet};
    use pm4rt_sim::SimSubmitter;

    /// Every dispatch carries its own invalidate and flush, so a batch of dependent operations
    /// needs no other barrier; a WRITE_DATA zeroes each argmax output right before its
    /// dispatch; one fence at the end.
    #[test]
    fn record_zeroes_argmax_outputs_and_ends_with_one_fence() {
        let mut s = Session::new(Box::new(SimSubmitter::new().unwrap())).unwrap();
        let w = s.upload_weights(WeightFormat::F32, 2, 4, &[0u8; 32]).unwrap();
        let [x, nw, h, y, z] = [4, 4, 4, 2, 2].map(|n| s.alloc_vec(n).unwrap());
        let mut b = s.batch();
        b.rms_norm(x, nw, 1e-6, h).unwrap();
        b.dmmv(w, h, y).unwrap();
        b.argmax(y).unwrap();
        b.copy(y, z).unwrap();
        b.dmmv_argmax(w, h).unwrap();
        b.copy(z, y).unwrap();
        let ops = std::mem::take(&mut b.ops);
        drop(b);
        let (_, ib) = s.record(&ops).unwrap();
        let kinds: Vec<char> = decode(&ib)
            .unwrap()
            .into_iter()
            .filter_map(|(_, p)| match p {
                Packet::AcquireMem(_) => Some('I'),
                Packet::EventWrite { .. } => Some('B'),
                Packet::WriteData(_) => Some('Z'),
                Packet::DispatchDirect { .. } => Some('D'),
                Packet::ReleaseMem(_) => Some('F'),
                _ => None,
            })
            .collect();
        assert_eq!(kinds.iter().collect::<String>(), "IDBIDBZIDBIDBZIDBIDBF");
    }

    /// Mesa pads compute IBs to 8 dwords (`ac_gpu_info.c`: `ib_pad_dw_mask = 0x7`) with one
    /// type-3 NOP after the last packet (`amdgpu_cs.c: amdgpu_pad_gfx_compute_ib`).
    #[test]
    fn record_pads_the_ib_to_8_dwords_with_one_nop() {
        let mut s = Session::new(Box::new(SimSubmitter::new().unwrap())).unwrap();
        let [x, y] = [4, 4].map(|n| s.alloc_vec(n).unwrap());
        let mut b = s.batch();
        b.copy(x, y).unwrap();
        let ops = std::mem::take(&mut b.ops);
        drop(b);
        let (_, ib) = s.record(&ops).unwrap();
        assert_eq!(ib.len() % 8, 0, "{} dwords", ib.len());
        let packets = decode(&ib).unwrap();
        let (at, last) = packets.last().unwrap();
        let (fence_at, _) =
            packets.iter().rev().find(|(_, p)| matches!(p, Packet::ReleaseMem(_))).unwrap();
        let pad = ib.len() - (fence_at + 8);
        assert!(pad > 0, "this IB needs padding");
        assert_eq!(*at, fence_at + 8, "one NOP right after the fence");
        // PKT3(PKT3_NOP, pad - 2) (| SHADER_TYPE, which pm4rt sets on every header), or the
        // header-only NOP 0xFFFF1000 for one dword.
        let header = if pad == 1 { 0xFFFF_1002 } else { 0xC000_1002 | ((pad as u32 - 2) << 16) };
        assert_eq!(ib[*at], header);
        assert!(matches!(last, Packet::Nop { .. }));
    }
}
