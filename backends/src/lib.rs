//! # pm4rt-backends
//!
//! The kernel paths of pm4rt, each a [`pm4rt_core::Submitter`] over any
//! [`pm4rt_core::Driver`], and [`LinuxDriver`], the driver that makes the real system calls.
//!
//! `unsafe` code is denied everywhere except in the [`linux`] module (the syscall driver and
//! its mapping type), where every block carries a `SAFETY:` comment.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod bo_access;
mod counted;
pub mod cs;
mod drm;
pub mod kfd;
#[allow(unsafe_code)]
pub mod linux;
mod ring;
pub mod umq;
mod va;

pub use linux::{LinuxDriver, LinuxMapping};
