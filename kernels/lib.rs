//! # pm4rt-kernels
//!
//! The pm4rt GPU kernel library as data: the prebuilt code objects (one per GPU target, each
//! holding every kernel) and the declared signature of every kernel, as written in
//! `kernels/README.md` (the contract between the GPU code, the launcher and the simulator).
//!
//! The code objects are built from `kernels/src/*.cl` by `kernels/build.sh` (Debian clang-19 /
//! lld-19) and committed; `kernels/check.sh` proves a rebuild reproduces them byte for byte.
//! Nobody needs LLVM to use this crate.
//!
//! This crate is plain data: it does not parse the code objects (pm4rt-core's `code_object`
//! module does) and depends on nothing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;

/// Lanes per workgroup of every kernel (`reqd_work_group_size(256, 1, 1)`).
pub const WORKGROUP_SIZE: u32 = 256;

/// Lanes per wave of every kernel (wave32).
pub const WAVE_SIZE: u32 = 32;

/// Rows per workgroup of the DMMV kernels (one row per wave: 256 / 32).
pub const DMMV_ROWS_PER_WORKGROUP: u32 = WORKGROUP_SIZE / WAVE_SIZE;

/// A GPU target the library is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// RDNA4, `gfx1201`.
    Gfx1201,
    /// RDNA3, `gfx1100`.
    Gfx1100,
}

impl Target {
    /// Every target with a committed code object.
    pub const ALL: [Target; 2] = [Target::Gfx1201, Target::Gfx1100];

    /// The LLVM processor name, e.g. `"gfx1201"`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Gfx1201 => "gfx1201",
            Target::Gfx1100 => "gfx1100",
        }
    }

    /// Parse a processor name as printed by [`Target::name`]; `None` for any other target.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static GFX1201: &[u8] = include_bytes!("gfx1201/pm4rt.hsaco");
static GFX1100: &[u8] = include_bytes!("gfx1100/pm4rt.hsaco");

/// The code object (an AMDGPU ELF, code object v5) holding every kernel for `target`.
pub fn code_object(target: Target) -> &'static [u8] {
    match target {
        Target::Gfx1201 => GFX1201,
        Target::Gfx1100 => GFX1100,
    }
}

/// The code object for a processor name (`"gfx1201"`, `"gfx1100"`); `None` for other names.
pub fn code_object_by_name(target: &str) -> Option<&'static [u8]> {
    Target::from_name(target).map(code_object)
}

/// What an argument is, as far as the launcher must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// A 64-bit global address (metadata value kind `global_buffer`).
    Ptr,
    /// A 32-bit unsigned integer passed by value.
    U32,
    /// A 32-bit float passed by value.
    F32,
}

impl ArgKind {
    /// Size in bytes in the kernarg segment.
    pub fn size(self) -> u32 {
        match self {
            ArgKind::Ptr => 8,
            ArgKind::U32 | ArgKind::F32 => 4,
        }
    }
}

/// One declared kernel argument: where it lives in the kernarg segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgSpec {
    /// The parameter name in the OpenCL source (and the code object metadata).
    pub name: &'static str,
    /// What it is.
    pub kind: ArgKind,
    /// Byte offset in the kernarg segment.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

const fn ptr(name: &'static str, offset: u32) -> ArgSpec {
    ArgSpec { name, kind: ArgKind::Ptr, offset, size: 8 }
}

const fn u32_arg(name: &'static str, offset: u32) -> ArgSpec {
    ArgSpec { name, kind: ArgKind::U32, offset, size: 4 }
}

const fn f32_arg(name: &'static str, offset: u32) -> ArgSpec {
    ArgSpec { name, kind: ArgKind::F32, offset, size: 4 }
}

// Signatures of README.md, laid out with the C rules (pointers 8-aligned, scalars 4-aligned).
const DMMV: &[ArgSpec] =
    &[ptr("w", 0), ptr("x", 8), ptr("y", 16), u32_arg("rows", 24), u32_arg("cols", 28)];
const DMMV_ARGMAX: &[ArgSpec] =
    &[ptr("w", 0), ptr("x", 8), ptr("out", 16), u32_arg("rows", 24), u32_arg("cols", 28)];
const ARGMAX: &[ArgSpec] = &[ptr("x", 0), u32_arg("n", 8), ptr("out", 16)];
const RMS_NORM: &[ArgSpec] =
    &[ptr("x", 0), ptr("weight", 8), ptr("y", 16), u32_arg("n", 24), f32_arg("eps", 28)];
const COPY: &[ArgSpec] = &[ptr("src", 0), ptr("dst", 8), u32_arg("n", 16)];

/// How many workgroups (in X) a launch needs, per README.md's grid column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grid {
    /// `ceil(rows / 8)`: one row per wave.
    RowsPerWave,
    /// `max(1, ceil(n / 256))`: one element per lane.
    ElementsPerLane,
    /// Exactly one workgroup.
    Single,
}

impl Grid {
    /// Workgroups for a problem of `n` rows or elements (at least 1).
    pub fn workgroups(self, n: u32) -> u32 {
        match self {
            Grid::RowsPerWave => n.div_ceil(DMMV_ROWS_PER_WORKGROUP).max(1),
            Grid::ElementsPerLane => n.div_ceil(WORKGROUP_SIZE).max(1),
            Grid::Single => 1,
        }
    }
}

/// Every kernel of the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelId {
    /// `y = W x` with f32 weights.
    DmmvF32,
    /// `y = W x` with GGML Q4_0 weights.
    DmmvQ4_0,
    /// `y = W x` with GGML Q8_0 weights.
    DmmvQ8_0,
    /// argmax of `W x` (f32 weights), packed into a u64.
    DmmvF32Argmax,
    /// argmax of `W x` (Q4_0 weights), packed into a u64.
    DmmvQ4_0Argmax,
    /// argmax of `W x` (Q8_0 weights), packed into a u64.
    DmmvQ8_0Argmax,
    /// `y = W x` with f16 (IEEE binary16) weights.
    DmmvF16,
    /// `y = W x` with bfloat16 weights.
    DmmvBf16,
    /// `y = W x` with GGML Q4_1 weights.
    DmmvQ4_1,
    /// `y = W x` with GGML Q5_0 weights.
    DmmvQ5_0,
    /// `y = W x` with GGML Q5_1 weights.
    DmmvQ5_1,
    /// `y = W x` with GGML Q4_K weights.
    DmmvQ4K,
    /// `y = W x` with GGML Q5_K weights.
    DmmvQ5K,
    /// `y = W x` with GGML Q6_K weights.
    DmmvQ6K,
    /// argmax of `W x` (f16 (IEEE binary16) weights), packed into a u64.
    DmmvF16Argmax,
    /// argmax of `W x` (bfloat16 weights), packed into a u64.
    DmmvBf16Argmax,
    /// argmax of `W x` (GGML Q4_1 weights), packed into a u64.
    DmmvQ4_1Argmax,
    /// argmax of `W x` (GGML Q5_0 weights), packed into a u64.
    DmmvQ5_0Argmax,
    /// argmax of `W x` (GGML Q5_1 weights), packed into a u64.
    DmmvQ5_1Argmax,
    /// argmax of `W x` (GGML Q4_K weights), packed into a u64.
    DmmvQ4KArgmax,
    /// argmax of `W x` (GGML Q5_K weights), packed into a u64.
    DmmvQ5KArgmax,
    /// argmax of `W x` (GGML Q6_K weights), packed into a u64.
    DmmvQ6KArgmax,
    /// argmax of an f32 vector, packed into a u64.
    ArgmaxF32,
    /// RMS norm of a whole f32 vector times a weight vector.
    RmsNormF32,
    /// `dst[i] = src[i]` over u32 elements.
    CopyU32,
}

impl KernelId {
    /// Every kernel, in the order of the README table.
    pub const ALL: [KernelId; 25] = [
        KernelId::DmmvF32,
        KernelId::DmmvQ4_0,
        KernelId::DmmvQ8_0,
        KernelId::DmmvF32Argmax,
        KernelId::DmmvQ4_0Argmax,
        KernelId::DmmvQ8_0Argmax,
        KernelId::DmmvF16,
        KernelId::DmmvBf16,
        KernelId::DmmvQ4_1,
        KernelId::DmmvQ5_0,
        KernelId::DmmvQ5_1,
        KernelId::DmmvQ4K,
        KernelId::DmmvQ5K,
        KernelId::DmmvQ6K,
        KernelId::DmmvF16Argmax,
        KernelId::DmmvBf16Argmax,
        KernelId::DmmvQ4_1Argmax,
        KernelId::DmmvQ5_0Argmax,
        KernelId::DmmvQ5_1Argmax,
        KernelId::DmmvQ4KArgmax,
        KernelId::DmmvQ5KArgmax,
        KernelId::DmmvQ6KArgmax,
        KernelId::ArgmaxF32,
        KernelId::RmsNormF32,
        KernelId::CopyU32,
    ];

    /// The kernel's symbol name in the code object (its descriptor is `NAME.kd`).
    pub fn name(self) -> &'static str {
        match self {
            KernelId::DmmvF32 => "dmmv_f32",
            KernelId::DmmvQ4_0 => "dmmv_q4_0",
            KernelId::DmmvQ8_0 => "dmmv_q8_0",
            KernelId::DmmvF32Argmax => "dmmv_f32_argmax",
            KernelId::DmmvQ4_0Argmax => "dmmv_q4_0_argmax",
            KernelId::DmmvQ8_0Argmax => "dmmv_q8_0_argmax",
            KernelId::DmmvF16 => "dmmv_f16",
            KernelId::DmmvBf16 => "dmmv_bf16",
            KernelId::DmmvQ4_1 => "dmmv_q4_1",
            KernelId::DmmvQ5_0 => "dmmv_q5_0",
            KernelId::DmmvQ5_1 => "dmmv_q5_1",
            KernelId::DmmvQ4K => "dmmv_q4_k",
            KernelId::DmmvQ5K => "dmmv_q5_k",
            KernelId::DmmvQ6K => "dmmv_q6_k",
            KernelId::DmmvF16Argmax => "dmmv_f16_argmax",
            KernelId::DmmvBf16Argmax => "dmmv_bf16_argmax",
            KernelId::DmmvQ4_1Argmax => "dmmv_q4_1_argmax",
            KernelId::DmmvQ5_0Argmax => "dmmv_q5_0_argmax",
            KernelId::DmmvQ5_1Argmax => "dmmv_q5_1_argmax",
            KernelId::DmmvQ4KArgmax => "dmmv_q4_k_argmax",
            KernelId::DmmvQ5KArgmax => "dmmv_q5_k_argmax",
            KernelId::DmmvQ6KArgmax => "dmmv_q6_k_argmax",
            KernelId::ArgmaxF32 => "argmax_f32",
            KernelId::RmsNormF32 => "rms_norm_f32",
            KernelId::CopyU32 => "copy_u32",
        }
    }

    /// Look a kernel up by its symbol name; `None` for unknown names.
    pub fn from_name(name: &str) -> Option<KernelId> {
        KernelId::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The declared arguments, in order, with their kernarg offsets and sizes.
    pub fn signature(self) -> &'static [ArgSpec] {
        match self.kind() {
            KernelKind::Dmmv { .. } => DMMV,
            KernelKind::DmmvArgmax { .. } => DMMV_ARGMAX,
            KernelKind::ArgmaxF32 => ARGMAX,
            KernelKind::RmsNormF32 => RMS_NORM,
            KernelKind::CopyU32 => COPY,
        }
    }

    /// Bytes of kernarg segment the declared arguments occupy (end of the last argument).
    pub fn kernarg_size(self) -> u32 {
        self.signature().iter().map(|a| a.offset + a.size).max().unwrap_or(0)
    }

    /// How the grid is sized for this kernel.
    pub fn grid(self) -> Grid {
        match self.kind() {
            KernelKind::Dmmv { .. } | KernelKind::DmmvArgmax { .. } => Grid::RowsPerWave,
            KernelKind::ArgmaxF32 | KernelKind::CopyU32 => Grid::ElementsPerLane,
            KernelKind::RmsNormF32 => Grid::Single,
        }
    }

    /// What the kernel computes, with the GGML weight type of the DMMV kernels (`ggml_type`
    /// ids of ggml.h: F32 0, F16 1, Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q4_K 12, Q5_K 13,
    /// Q6_K 14, BF16 30).
    pub fn kind(self) -> KernelKind {
        match self {
            KernelId::DmmvF32 => KernelKind::Dmmv { ggml_type: 0 },
            KernelId::DmmvF32Argmax => KernelKind::DmmvArgmax { ggml_type: 0 },
            KernelId::DmmvQ4_0 => KernelKind::Dmmv { ggml_type: 2 },
            KernelId::DmmvQ4_0Argmax => KernelKind::DmmvArgmax { ggml_type: 2 },
            KernelId::DmmvQ8_0 => KernelKind::Dmmv { ggml_type: 8 },
            KernelId::DmmvQ8_0Argmax => KernelKind::DmmvArgmax { ggml_type: 8 },
            KernelId::DmmvF16 => KernelKind::Dmmv { ggml_type: 1 },
            KernelId::DmmvF16Argmax => KernelKind::DmmvArgmax { ggml_type: 1 },
            KernelId::DmmvBf16 => KernelKind::Dmmv { ggml_type: 30 },
            KernelId::DmmvBf16Argmax => KernelKind::DmmvArgmax { ggml_type: 30 },
            KernelId::DmmvQ4_1 => KernelKind::Dmmv { ggml_type: 3 },
            KernelId::DmmvQ4_1Argmax => KernelKind::DmmvArgmax { ggml_type: 3 },
            KernelId::DmmvQ5_0 => KernelKind::Dmmv { ggml_type: 6 },
            KernelId::DmmvQ5_0Argmax => KernelKind::DmmvArgmax { ggml_type: 6 },
            KernelId::DmmvQ5_1 => KernelKind::Dmmv { ggml_type: 7 },
            KernelId::DmmvQ5_1Argmax => KernelKind::DmmvArgmax { ggml_type: 7 },
            KernelId::DmmvQ4K => KernelKind::Dmmv { ggml_type: 12 },
            KernelId::DmmvQ4KArgmax => KernelKind::DmmvArgmax { ggml_type: 12 },
            KernelId::DmmvQ5K => KernelKind::Dmmv { ggml_type: 13 },
            KernelId::DmmvQ5KArgmax => KernelKind::DmmvArgmax { ggml_type: 13 },
            KernelId::DmmvQ6K => KernelKind::Dmmv { ggml_type: 14 },
            KernelId::DmmvQ6KArgmax => KernelKind::DmmvArgmax { ggml_type: 14 },
            KernelId::ArgmaxF32 => KernelKind::ArgmaxF32,
            KernelId::RmsNormF32 => KernelKind::RmsNormF32,
            KernelId::CopyU32 => KernelKind::CopyU32,
        }
    }
}

/// What a kernel computes, grouped for launchers and simulators that treat every DMMV
/// weight format alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// `y = W x` (signature `w, x, y, rows, cols`).
    Dmmv {
        /// GGML type id of the weights.
        ggml_type: u32,
    },
    /// Fused DMMV + argmax (signature `w, x, out, rows, cols`).
    DmmvArgmax {
        /// GGML type id of the weights.
        ggml_type: u32,
    },
    /// argmax of an f32 vector.
    ArgmaxF32,
    /// RMS norm of an f32 vector.
    RmsNormF32,
    /// u32 copy.
    CopyU32,
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_objects_are_amdgpu_elf_for_their_target() {
        // ELF magic, ELFCLASS64 (2), little endian (1), OS/ABI 64 (AMDGPU_HSA); e_machine 224
        // at byte 18; e_flags at byte 48 with EF_AMDGPU_MACH 0x4e (gfx1201) / 0x41 (gfx1100)
        // (llvm/BinaryFormat/ELF.h).
        for (t, mach) in [(Target::Gfx1201, 0x4e), (Target::Gfx1100, 0x41)] {
            let b = code_object(t);
            assert_eq!(&b[..4], b"\x7fELF", "{t}");
            assert_eq!((b[4], b[5], b[7]), (2, 1, 64), "{t}");
            assert_eq!(u16::from_le_bytes([b[18], b[19]]), 224, "{t}");
            assert_eq!(u32::from_le_bytes([b[48], b[49], b[50], b[51]]) & 0xff, mach, "{t}");
        }
    }

    #[test]
    fn every_kernel_name_is_in_both_code_objects() {
        for t in Target::ALL {
            let b = code_object(t);
            for k in KernelId::ALL {
                let kd = format!("{}.kd\0", k.name());
                assert!(b.windows(kd.len()).any(|w| w == kd.as_bytes()), "{k} missing in {t}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        for k in KernelId::ALL {
            assert_eq!(KernelId::from_name(k.name()), Some(k));
        }
        assert_eq!(KernelId::from_name("dmmv_q2_k"), None);
        for t in Target::ALL {
            assert_eq!(Target::from_name(t.name()), Some(t));
        }
        assert!(code_object_by_name("gfx900").is_none());
    }

    #[test]
    fn signatures_are_naturally_aligned_and_disjoint() {
        for k in KernelId::ALL {
            let mut end = 0;
            for a in k.signature() {
                assert_eq!(a.size, a.kind.size(), "{k}.{}", a.name);
                assert_eq!(a.offset % a.size, 0, "{k}.{} misaligned", a.name);
                assert!(a.offset >= end, "{k}.{} overlaps", a.name);
                end = a.offset + a.size;
            }
        }
        // Literal sizes from the README signatures (C layout).
        assert_eq!(KernelId::DmmvQ4_0.kernarg_size(), 32);
        assert_eq!(KernelId::ArgmaxF32.kernarg_size(), 24);
        assert_eq!(KernelId::RmsNormF32.kernarg_size(), 32);
        assert_eq!(KernelId::CopyU32.kernarg_size(), 20);
        assert_eq!(KernelId::DmmvQ4K.kernarg_size(), 32);
    }

    #[test]
    fn grids_follow_the_readme() {
        assert_eq!(KernelId::DmmvQ8_0.grid().workgroups(17), 3);
        assert_eq!(KernelId::DmmvF32.grid().workgroups(16), 2);
        assert_eq!(KernelId::ArgmaxF32.grid().workgroups(257), 2);
        assert_eq!(KernelId::CopyU32.grid().workgroups(0), 1);
        assert_eq!(KernelId::DmmvQ6KArgmax.grid().workgroups(9), 2);
        assert_eq!(KernelId::RmsNormF32.grid().workgroups(100_000), 1);
    }
}
