//! The backend core every tier shares; a tier adds only its kernel calls.
//!
//! - [`bo_table`]: the caller's BOs by pm4rt handle, the index of their GPU mappings (the
//!   containment check of `submit_ib`, the resident set of a CS), and release in reverse
//!   creation order.
//! - [`ib`]: the one IB rule of `submit_ib` (non-empty, at most
//!   [`pm4rt_core::MAX_IB_DWORDS`], 4-byte aligned, inside one GPU-mapped BO) with one set of
//!   messages.
//! - [`health`]: the sticky state of a queue that faulted or was lost.
//! - [`ring_queue`]: a PM4 ring in CPU-mapped memory (the kfd and umq tiers): copy with wrap,
//!   write-pointer publish to memory and doorbell, fence poll, one backoff policy, bounded
//!   waits; [`ring_space`] holds the two rules that bound the ring's free space.
//! - [`bo_access`]: bounds-checked CPU reads and writes of a BO through its mapping.
//! - [`counted_fd`]: a device descriptor whose ioctls are counted and whose errnos become
//!   [`pm4rt_core::Error::Io`] naming the step.
//! - [`va`]: the first-fit GPU VA allocator.
//!
//! Failure cleanup: each tier keeps what it has acquired in one `Resources` value whose `Drop`
//! releases it in reverse order; `open` fills it step by step, so returning an error from any
//! step releases exactly what was acquired before it, and the submitter owns the same value
//! afterwards, so `Drop` of the submitter is that same release.

pub(crate) mod bo_access;
pub(crate) mod bo_table;
pub(crate) mod counted_fd;
pub(crate) mod health;
pub(crate) mod ib;
pub(crate) mod ring;
pub(crate) mod ring_queue;
pub(crate) mod ring_space;
pub(crate) mod va;
