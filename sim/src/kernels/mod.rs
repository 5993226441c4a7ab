//! Rust implementations of the GPU kernels of `kernels/README.md` (the math only).
//!
//! Pure functions over host slices; the simulator's dispatch path reads the kernargs from
//! simulated memory and calls these. Weights are raw bytes exactly as in GPU memory; vectors
//! are `f32` slices. Shapes are checked: bad arguments return [`KernelError`], never panic.
//!
//! Vectorisation: the crate forbids `unsafe`. The DMMV rows have three backends (see
//! [`dmmv::Backend`]): AVX-512 and AVX2 + FMA intrinsics through the `pulp` crate's safe
//! wrappers (`pulp::x86::V4` / `V3`, detected at run time; `pulp` holds the `unsafe` of
//! `#[target_feature]` dispatch), and portable code written over fixed 16-lane arrays that
//! LLVM vectorises for the compilation target (the fallback on other CPUs). The block formats
//! added after F32 / Q4_0 / Q8_0 (F16, BF16, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K; module
//! `dmmv_blocks`) have a portable row code, dequantize-then-accumulate, which the AVX2 backend
//! runs inside its AVX2 + FMA frame, and AVX-512 decoders (`dmmv_blocks_v4`) computing the same
//! bits. The other kernels are portable only.
//! Accumulation orders and the error bound: [`mod@dmmv`].

pub mod argmax;
pub mod dmmv;
mod dmmv_blocks;
#[cfg(target_arch = "x86_64")]
mod dmmv_blocks_v3;
#[cfg(target_arch = "x86_64")]
mod dmmv_blocks_v4;
#[cfg(target_arch = "x86_64")]
mod dmmv_v3;
#[cfg(target_arch = "x86_64")]
mod dmmv_v4;
mod error;
pub mod f16;
pub mod norm;

pub use argmax::{argmax_f32, from_key, key, pack, unpack};
pub use dmmv::{
    dequantize_row, dmmv, dmmv_argmax, dmmv_argmax_with, dmmv_f32, dmmv_q4_0, dmmv_q8_0, dmmv_with,
    Backend, WeightType,
};
pub use error::KernelError;
pub use f16::f16_to_f32;
pub use norm::{copy_u32, rms_norm_f32};
