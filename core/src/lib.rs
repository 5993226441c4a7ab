//! # pm4rt-core
//!
//! The shared vocabulary of pm4rt: the [`Submitter`] trait every tier implements, its value
//! types and [`Error`], the PM4 packet codec ([`pm4`]), the kernel ABI structs ([`abi`]), the
//! syscall boundary ([`Driver`]) and the code-object loader ([`code_object`]).
//!
//! This crate depends on nothing else of pm4rt; backends and the simulator build on it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod abi;
pub mod code_object;
pub mod driver;
pub mod errno;
pub mod error;
pub mod host_mapping;
pub mod launch;
pub mod pm4;
pub mod submitter;

pub use driver::{Driver, Fd, MapAt, Mapping, DEFAULT_RENDER_NODE};
pub use errno::Errno;
pub use error::{Error, Result};
pub use host_mapping::HostMapping;
pub use submitter::{
    check_ib_size, BoDesc, BoHandle, Counters, Domain, Fence, GfxTarget, Submitter, SubmitterInfo,
    Tier, MAX_IB_DWORDS, PAGE_SIZE,
};
