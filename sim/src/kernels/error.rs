//! Typed errors of the kernel implementations.

/// What went wrong when a kernel's arguments do not describe valid work.
///
/// Every variant names the kernel and the offending argument, so a dispatch error can be
/// traced back to the kernarg that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// `cols` is not a multiple of the weight format's block size (32 for Q4_0 / Q8_0).
    #[error("{kernel}: cols {cols} is not a multiple of the block size {block}")]
    ColsNotBlockMultiple {
        /// Kernel name as in the kernel contract (e.g. `dmmv_q4_0`).
        kernel: &'static str,
        /// The requested number of columns.
        cols: usize,
        /// The block size the format requires.
        block: usize,
    },
    /// A buffer is shorter than the shape requires (e.g. truncated weights).
    #[error("{kernel}: buffer `{buffer}` has {have} {unit} but {need} are required")]
    BufferTooShort {
        /// Kernel name.
        kernel: &'static str,
        /// Argument name (`w`, `x`, `y`, `weight`, `src`, `dst`).
        buffer: &'static str,
        /// Unit of `need` / `have` (`bytes` or `elements`).
        unit: &'static str,
        /// Required length.
        need: usize,
        /// Actual length.
        have: usize,
    },
    /// The shape's size does not fit in `usize` (rows * row bytes overflows).
    #[error("{kernel}: {rows} x {cols} overflows the address space")]
    ShapeOverflow {
        /// Kernel name.
        kernel: &'static str,
        /// Requested rows.
        rows: usize,
        /// Requested columns.
        cols: usize,
    },
    /// An index does not fit in the 32-bit index field of the packed argmax value.
    #[error("{kernel}: {len} elements exceed the 32-bit index range of the argmax packing")]
    IndexRange {
        /// Kernel name.
        kernel: &'static str,
        /// Requested element count.
        len: usize,
    },
    /// The requested implementation cannot run on this CPU (e.g. AVX2 + FMA missing).
    #[error("{kernel}: backend `{backend}` is not available on this CPU")]
    BackendUnavailable {
        /// Kernel name.
        kernel: &'static str,
        /// Backend name (see `Backend::name`).
        backend: &'static str,
    },
}
