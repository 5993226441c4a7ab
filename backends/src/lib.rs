//! # pm4rt-backends
//!
//! The kernel paths of pm4rt, each a [`pm4rt_core::Submitter`] over any
//! [`pm4rt_core::Driver`], and [`LinuxDriver`], the driver that makes the real system calls.
//!
//! Every tier has the same files with the same meaning: `mod.rs` (the module docs and the
//! [`pm4rt_core::Submitter`] implementation), `config.rs` (how to open it), `open.rs`
//! (bring-up, and the `Resources` that release everything in reverse order) and `ioctls.rs`
//! (typed wrappers over the tier's ioctls and the step names its errors carry). What the tiers
//! share lives once in the private `common` module (BO table, IB rule, queue health, ring
//! queue) and, for the two DRM tiers, in `drm`.
//!
//! `unsafe` code is denied everywhere except in the [`linux`] module (the syscall driver and
//! its mapping type), where every block carries a `SAFETY:` comment.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod common;
pub mod cs;
mod drm;
pub mod kfd;
#[allow(unsafe_code)]
pub mod linux;
pub mod umq;

pub use linux::{LinuxDriver, LinuxMapping};
pub use pm4rt_core::{DEFAULT_RENDER_NODE, PAGE_SIZE};
