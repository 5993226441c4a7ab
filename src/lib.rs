//! # pm4rt
//!
//! A runtime that drives AMD GPUs (RDNA4 gfx1201, RDNA3 gfx1100) directly: it builds PM4
//! command streams itself and submits them through one of the Linux kernel's three compute
//! paths — amdgpu command submission (`cs`), KFD compute queues (`kfd`) and amdgpu user-mode
//! queues (`umq`) — or a software GPU (`sim`) when no AMD GPU is present.
//!
//! This facade re-exports the core vocabulary ([`Submitter`], [`Tier`], [`Fence`], ...) and
//! adds the smoke test ([`smoke`]) and tier probing ([`probe`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod compare;
pub mod dwords;
pub mod error;
pub mod fuzz;
pub mod gguf;
pub mod probe;
pub mod rng;
pub mod runtime;
pub mod session;
pub mod smoke;
pub mod soak;

pub use error::{Error, Result};
pub use pm4rt_core::{
    pm4, BoDesc, BoHandle, Counters, Domain, Fence, GfxTarget, Submitter, SubmitterInfo, Tier,
};

/// The README's code blocks, compiled as doctests so the engine snippet stays in step with the
/// API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
