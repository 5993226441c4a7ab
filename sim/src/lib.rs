//! # pm4rt-sim
//!
//! The software GPU behind the `sim` tier: a GPU virtual address space over host BO storage
//! ([`memory`]), a PM4 queue engine running on its own thread ([`engine`]) and the
//! [`SimSubmitter`] that implements [`pm4rt_core::Submitter`] on top of them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod dispatch;
pub mod emu;
pub mod engine;
pub mod isa;
pub mod kernels;
pub mod memory;
pub mod submitter;

pub use submitter::{SimConfig, SimSubmitter, SIM_VA_RANGE};
