//! The error type shared by every tier.
//!
//! Every failure a [`crate::Submitter`] can report is a variant here, carrying what was wrong
//! and where (a VA, a BO, a byte offset, a step name and errno). Nothing in pm4rt panics on bad
//! input; it returns one of these.

use std::time::Duration;

use crate::errno::Errno;
use crate::pm4::DecodeError;
use crate::submitter::{BoHandle, Fence};

/// Result alias used throughout pm4rt.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while allocating, mapping, submitting or waiting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `wait_fence` gave up: the fence did not retire within `waited`.
    #[error("fence {fence} did not retire within {waited:?}")]
    Timeout {
        /// The fence that was waited for.
        fence: Fence,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The device or context is gone (GPU reset, VRAM lost, queue torn down by the kernel).
    /// Every later submission on this submitter fails the same way.
    #[error("device lost: {reason}")]
    DeviceLost {
        /// What the kernel (or emulator) reported.
        reason: String,
    },
    /// The queue touched a GPU VA with no mapping (a page fault). The queue is halted.
    #[error("GPU page fault at VA {va:#x}")]
    Fault {
        /// The faulting GPU virtual address.
        va: u64,
    },
    /// A system call failed. `step` names what pm4rt was doing (e.g. `"GEM_CREATE"`).
    #[error("{step} failed: errno {} ({})", errno.0, errno.name())]
    Io {
        /// The step (usually the ioctl) that failed.
        step: &'static str,
        /// What the system call returned.
        errno: Errno,
    },
    /// A command stream could not be decoded. The queue is halted.
    #[error("malformed PM4 in IB at VA {ib_va:#x}, dword {}: {source}", source.offset)]
    Pm4 {
        /// VA of the IB holding the bad packet.
        ib_va: u64,
        /// The decode failure (its `offset` is the dword offset inside that IB).
        source: DecodeError,
    },
    /// A `WAIT_REG_MEM` never became true before the queue's deadline. The queue is halted.
    #[error("WAIT_REG_MEM on VA {va:#x} (value & {mask:#x} {function} {reference:#x}) never became true; last value {last:#x}")]
    WaitRegMemDeadline {
        /// Polled address.
        va: u64,
        /// Comparison reference.
        reference: u32,
        /// Comparison mask.
        mask: u32,
        /// Comparison function, e.g. `"=="`.
        function: &'static str,
        /// The last value read.
        last: u32,
    },
    /// Nested `INDIRECT_BUFFER` packets went deeper than the engine allows.
    #[error("INDIRECT_BUFFER nesting deeper than {limit} at IB VA {ib_va:#x}")]
    IbDepth {
        /// The IB whose packet exceeded the limit.
        ib_va: u64,
        /// The maximum nesting depth.
        limit: u32,
    },
    /// A dispatch could not run: unknown code at `PGM_LO/HI`, bad launch registers or kernel
    /// arguments. The queue is halted.
    #[error("dispatch of code at VA {pgm_va:#x} failed: {reason}")]
    Dispatch {
        /// The code address programmed in COMPUTE_PGM_LO/HI.
        pgm_va: u64,
        /// What was wrong.
        reason: String,
    },
    /// A BO handle this submitter does not know (never allocated, or already freed).
    #[error("unknown BO {0}")]
    UnknownBo(BoHandle),
    /// A CPU read or write of a BO fell outside it.
    #[error("access of {len} bytes at offset {offset:#x} is outside {bo} (size {size:#x})")]
    OutOfBounds {
        /// The BO.
        bo: BoHandle,
        /// Start of the access.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// The BO's size.
        size: u64,
    },
    /// A VA request was rejected (misaligned, outside the VA range, overlapping, or the BO is
    /// already / not mapped).
    #[error("bad VA request for {bo} at {va:#x}: {reason}")]
    BadVa {
        /// The BO being mapped.
        bo: BoHandle,
        /// The requested VA (0 when the tier chose it).
        va: u64,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An argument was invalid (zero size, bad shape, misaligned IB ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The tier does not support the request on this machine.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The fence does not belong to this submitter, or was never issued.
    #[error("fence {0} was never issued by this submitter")]
    UnknownFence(Fence),
}

impl Error {
    /// Build an [`Error::Io`] from a step name and an errno.
    pub fn io(step: &'static str, errno: Errno) -> Self {
        Error::Io { step, errno }
    }
}
