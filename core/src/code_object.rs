//! AMDGPU code objects: parse an HSA code object (ELF, code object v5), check it targets the
//! device, and expose what a launcher and the simulator need — each kernel's 64-byte kernel
//! descriptor, its kernarg layout from the metadata note, where its code sits in the loadable
//! image, and the image itself.
//!
//! Facts used (LLVM's `llvm/docs/AMDGPUUsage.rst`, "Code Object" and "Kernel Descriptor",
//! unless noted): ELF64 little endian, `e_machine` 224 (EM_AMDGPU), OS/ABI 64
//! (ELFOSABI_AMDGPU_HSA); the target in `e_flags & 0xff` (EF_AMDGPU_MACH: 0x41 gfx1100, 0x4e
//! gfx1201, `llvm/include/llvm/BinaryFormat/ELF.h`); one descriptor per kernel at symbol
//! `NAME.kd`; metadata as MessagePack in a note named `"AMDGPU"` of type 32
//! (NT_AMDGPU_METADATA); the COMPUTE_PGM_RSRC2 fields from AMDGPUUsage's "compute_pgm_rsrc2"
//! table (`llvm/include/llvm/Support/AMDHSAKernelDescriptor.h`).
//!
//! Usage: [`CodeObject::load`] the bytes for the device's [`GfxTarget`], upload
//! [`CodeObject::image`] at some `image_base` (256-byte aligned), then for a kernel
//! `entry VA = image_base + kernel.entry_offset` and the descriptor is at
//! `image_base + kernel.descriptor_offset`. Nothing here panics on arbitrary input.

pub mod dispatch_packet;
pub mod hidden;
pub mod kernargs;
pub mod msgpack;

use std::collections::HashMap;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Sym};
use object::LittleEndian;
use thiserror::Error;

use crate::submitter::GfxTarget;

use msgpack::Value;

/// `e_machine` of AMDGPU code objects (EM_AMDGPU).
pub const EM_AMDGPU: u16 = 224;
/// `EI_OSABI` of HSA code objects (ELFOSABI_AMDGPU_HSA).
pub const ELFOSABI_AMDGPU_HSA: u8 = 64;
/// Mask of the processor field in `e_flags` (EF_AMDGPU_MACH).
pub const EF_AMDGPU_MACH: u32 = 0xff;
/// `e_flags` processor value of gfx1100 (EF_AMDGPU_MACH_AMDGCN_GFX1100).
pub const EF_AMDGPU_MACH_AMDGCN_GFX1100: u32 = 0x41;
/// `e_flags` processor value of gfx1201 (EF_AMDGPU_MACH_AMDGCN_GFX1201).
pub const EF_AMDGPU_MACH_AMDGCN_GFX1201: u32 = 0x4e;
/// Note type of the MessagePack metadata note (NT_AMDGPU_METADATA).
pub const NT_AMDGPU_METADATA: u32 = 32;
/// Size of a kernel descriptor in bytes.
pub const KERNEL_DESCRIPTOR_SIZE: usize = 64;
/// Bytes per RSRC2.LDS_SIZE granule on gfx11 / gfx12.
pub const LDS_GRANULE_BYTES: u32 = 512;
/// Required alignment of a kernel entry point (COMPUTE_PGM_LO holds VA >> 8).
pub const ENTRY_ALIGN: u64 = 256;
/// Largest loadable image accepted (a guard against absurd segment sizes).
pub const MAX_IMAGE_SIZE: u64 = 64 << 20;

const ELF_HEADER_SIZE: u64 = 64;
const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: u64 = 64;

/// Why a code object was rejected. Every variant names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodeObjectError {
    /// The input is too short for a structure it declares.
    #[error("truncated code object: {what} needs bytes {offset:#x}..{end:#x} but the file has {len:#x}", end = offset.saturating_add(*need))]
    Truncated {
        /// The structure (e.g. `"ELF header"`, `"program headers"`, `"PT_LOAD segment 1"`).
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Its size.
        need: u64,
        /// The input length.
        len: u64,
    },
    /// The input does not start with the ELF magic.
    #[error("not an ELF file: magic {magic:02x?} at offset 0")]
    NotElf {
        /// The first (up to) four bytes.
        magic: Vec<u8>,
    },
    /// An ELF identification/header field has the wrong value for an AMDGPU HSA code object.
    #[error("not an AMDGPU HSA code object: {field} is {found:#x}, expected {expected:#x}")]
    WrongFormat {
        /// The field (`"EI_CLASS"`, `"EI_DATA"`, `"EI_OSABI"`, `"e_machine"`).
        field: &'static str,
        /// Its value.
        found: u64,
        /// The required value.
        expected: u64,
    },
    /// `e_flags` names a processor pm4rt does not support.
    #[error(
        "code object targets EF_AMDGPU_MACH {mach:#x} (e_flags {e_flags:#x}), not gfx1100/gfx1201"
    )]
    UnknownTarget {
        /// `e_flags & EF_AMDGPU_MACH`.
        mach: u32,
        /// The whole `e_flags`.
        e_flags: u32,
    },
    /// The code object is for another GPU than the device.
    #[error("code object is for {object} but the device is {device}")]
    ForeignTarget {
        /// Target of the code object.
        object: GfxTarget,
        /// Target of the device.
        device: GfxTarget,
    },
    /// An ELF structure is malformed (as reported by the `object` crate or our checks).
    #[error("malformed ELF {what}: {reason}")]
    Elf {
        /// The structure (`"file header"`, `"section headers"`, `"symbol table"` ...).
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A PT_LOAD segment cannot be laid out.
    #[error("bad PT_LOAD segment {index} (vaddr {vaddr:#x}): {reason}")]
    BadSegment {
        /// Program header index.
        index: usize,
        /// Its virtual address.
        vaddr: u64,
        /// What was wrong.
        reason: String,
    },
    /// A kernel listed in the metadata has no `NAME.kd` descriptor symbol.
    #[error("kernel {kernel}: descriptor symbol {symbol} not found")]
    MissingDescriptor {
        /// The kernel name.
        kernel: String,
        /// The symbol looked for.
        symbol: String,
    },
    /// A kernel descriptor is inconsistent (with itself, the metadata, the target or the
    /// image).
    #[error("kernel {kernel}: bad descriptor at image offset {offset:#x}: {reason}")]
    BadDescriptor {
        /// The kernel name.
        kernel: String,
        /// Image offset (vaddr) of the descriptor.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The metadata note is missing or malformed.
    #[error("bad AMDGPU metadata note at file offset {offset:#x}: {reason}")]
    BadNote {
        /// File offset of the note's descriptor bytes (0 when there is no note at all).
        offset: u64,
        /// What was wrong (field path and problem).
        reason: String,
    },
    /// [`CodeObject::kernel`] was asked for a kernel the code object does not hold.
    #[error("no kernel named {name} in the code object")]
    NoSuchKernel {
        /// The name asked for.
        name: String,
    },
    /// A kernel's kernarg layout differs from the declared signature.
    #[error("kernel {kernel}: kernarg layout differs from the declared signature: {reason}")]
    SignatureMismatch {
        /// The kernel name.
        kernel: String,
        /// The first difference found.
        reason: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = CodeObjectError> = std::result::Result<T, E>;

/// The target encoded in `e_flags`, if pm4rt supports it.
pub fn target_from_e_flags(e_flags: u32) -> Option<GfxTarget> {
    match e_flags & EF_AMDGPU_MACH {
        EF_AMDGPU_MACH_AMDGCN_GFX1100 => Some(GfxTarget::Gfx1100),
        EF_AMDGPU_MACH_AMDGCN_GFX1201 => Some(GfxTarget::Gfx1201),
        _ => None,
    }
}

/// `kernel_code_properties` bits and how many user SGPRs each enables, in the order the
/// hardware fills them (AMDGPUUsage.rst, "Initial Kernel Execution State").
const USER_SGPR_PROPERTIES: [(u16, u32, &str); 7] = [
    (1 << 0, 4, "private segment buffer"),
    (1 << 1, 2, "dispatch ptr"),
    (1 << 2, 2, "queue ptr"),
    (1 << 3, 2, "kernarg segment ptr"),
    (1 << 4, 2, "dispatch id"),
    (1 << 5, 2, "flat scratch init"),
    (1 << 6, 1, "private segment size"),
];

/// `kernel_code_properties` bit 3: the kernarg segment pointer is a user SGPR pair.
pub const KCP_KERNARG_SEGMENT_PTR: u16 = 1 << 3;
/// `kernel_code_properties` bit 10: the kernel is wave32.
pub const KCP_WAVEFRONT_SIZE32: u16 = 1 << 10;

/// The 64-byte kernel descriptor (offsets from AMDGPUUsage.rst, "Kernel Descriptor";
/// `llvm/include/llvm/Support/AMDHSAKernelDescriptor.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelDescriptor {
    /// LDS bytes per workgroup (offset 0).
    pub group_segment_fixed_size: u32,
    /// Scratch bytes per lane (offset 4).
    pub private_segment_fixed_size: u32,
    /// Kernarg segment bytes (offset 8).
    pub kernarg_size: u32,
    /// From the descriptor's own address to the kernel entry (offset 16).
    pub kernel_code_entry_byte_offset: i64,
    /// COMPUTE_PGM_RSRC3 (offset 44).
    pub compute_pgm_rsrc3: u32,
    /// COMPUTE_PGM_RSRC1 (offset 48).
    pub compute_pgm_rsrc1: u32,
    /// COMPUTE_PGM_RSRC2 (offset 52).
    pub compute_pgm_rsrc2: u32,
    /// Which user SGPRs are set up, wave32 (offset 56).
    pub kernel_code_properties: u16,
    /// Kernarg preload specification (offset 58).
    pub kernarg_preload: u16,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl KernelDescriptor {
    /// Decode a descriptor from its 64 bytes.
    pub fn from_bytes(b: &[u8; KERNEL_DESCRIPTOR_SIZE]) -> KernelDescriptor {
        let mut off = [0u8; 8];
        off.copy_from_slice(&b[16..24]);
        KernelDescriptor {
            group_segment_fixed_size: le_u32(b, 0),
            private_segment_fixed_size: le_u32(b, 4),
            kernarg_size: le_u32(b, 8),
            kernel_code_entry_byte_offset: i64::from_le_bytes(off),
            compute_pgm_rsrc3: le_u32(b, 44),
            compute_pgm_rsrc1: le_u32(b, 48),
            compute_pgm_rsrc2: le_u32(b, 52),
            kernel_code_properties: u16::from_le_bytes([b[56], b[57]]),
            kernarg_preload: u16::from_le_bytes([b[58], b[59]]),
        }
    }

    /// True when `kernel_code_properties` bit 10 (wavefront size 32) is set.
    pub fn is_wave32(&self) -> bool {
        self.kernel_code_properties & KCP_WAVEFRONT_SIZE32 != 0
    }

    /// True when the kernel wants the kernarg segment pointer in user SGPRs.
    pub fn wants_kernarg_ptr(&self) -> bool {
        self.kernel_code_properties & KCP_KERNARG_SEGMENT_PTR != 0
    }

    /// User SGPRs implied by `kernel_code_properties` (sum over the enabled inputs).
    pub fn user_sgprs_from_properties(&self) -> u32 {
        USER_SGPR_PROPERTIES
            .iter()
            .filter(|(bit, _, _)| self.kernel_code_properties & bit != 0)
            .map(|(_, n, _)| n)
            .sum()
    }

    /// Names of the user-SGPR inputs enabled, in hardware order.
    pub fn user_sgpr_inputs(&self) -> Vec<&'static str> {
        USER_SGPR_PROPERTIES
            .iter()
            .filter(|(bit, _, _)| self.kernel_code_properties & bit != 0)
            .map(|(_, _, name)| *name)
            .collect()
    }

    /// RSRC2.USER_SGPR, bits `[5:1]`.
    pub fn rsrc2_user_sgpr(&self) -> u32 {
        (self.compute_pgm_rsrc2 >> 1) & 0x1f
    }

    /// RSRC2.LDS_SIZE, bits `[23:15]`, in [`LDS_GRANULE_BYTES`] granules.
    pub fn rsrc2_lds_granules(&self) -> u32 {
        (self.compute_pgm_rsrc2 >> 15) & 0x1ff
    }

    /// System SGPRs that follow the user SGPRs on gfx11 (not architected): SCRATCH_EN (wave
    /// offset, bit 0), TGID_X/Y/Z_EN (bits 7/8/9), TG_SIZE_EN (bit 10).
    pub fn rsrc2_system_sgprs(&self) -> u32 {
        [0u32, 7, 8, 9, 10].iter().filter(|&&b| self.compute_pgm_rsrc2 & (1 << b) != 0).count()
            as u32
    }

    /// LDS granules the launcher must program: `ceil(group_segment_fixed_size / 512)`.
    pub fn lds_granules_needed(&self) -> u32 {
        self.group_segment_fixed_size.div_ceil(LDS_GRANULE_BYTES)
    }

    /// COMPUTE_PGM_RSRC2 as a PM4 launcher must write it: the descriptor's value with
    /// LDS_SIZE `[23:15]` raised to [`KernelDescriptor::lds_granules_needed`]. For HSA code
    /// objects LLVM leaves LDS_SIZE 0 because an AQL packet processor fills it from the
    /// dispatch packet (LLVM commit 6ccb076, "AMDGPU/AMDHSA: Set COMPUTE_PGM_RSRC2:LDS_SIZE
    /// to 0"); a PM4 dispatch has no such step, so pm4rt fills it. [`KernelDescriptor::check`]
    /// guarantees the value fits the 9-bit field.
    pub fn dispatch_rsrc2(&self) -> u32 {
        let granules = self.rsrc2_lds_granules().max(self.lds_granules_needed()) & 0x1ff;
        (self.compute_pgm_rsrc2 & !(0x1ff << 15)) | (granules << 15)
    }

    /// RSRC1.VGPRS, bits `[5:0]`: the VGPR allocation in granules, minus one.
    pub fn rsrc1_vgpr_granules(&self) -> u32 {
        self.compute_pgm_rsrc1 & 0x3f
    }

    /// Check the descriptor's internal consistency for `target`:
    /// - RSRC2.USER_SGPR equals the count implied by `kernel_code_properties`, except that on
    ///   gfx1100 wave32 LLVM pads the user SGPRs so that user + system SGPRs = 16 (its
    ///   `UserSGPRInit16Bug` workaround; the padding is never read);
    /// - LDS: `group_segment_fixed_size` fits RSRC2.LDS_SIZE once rounded up to 512-byte
    ///   granules, and a non-zero RSRC2.LDS_SIZE covers it (HSA code objects leave it 0; see
    ///   [`KernelDescriptor::dispatch_rsrc2`]);
    /// - a kernarg segment (`kernarg_size` > 0) comes with the kernarg pointer;
    /// - kernarg preloading is off (pm4rt's launcher does not preload).
    ///
    /// Errors: a description of the first inconsistency.
    pub fn check(&self, target: GfxTarget) -> std::result::Result<(), String> {
        let want = self.user_sgprs_from_properties();
        let have = self.rsrc2_user_sgpr();
        let padded = target == GfxTarget::Gfx1100 && self.is_wave32() && have > want && {
            have + self.rsrc2_system_sgprs() == 16
        };
        if have != want && !padded {
            return Err(format!(
                "RSRC2.USER_SGPR is {have} but kernel_code_properties {:#06x} ({}) need {want}",
                self.kernel_code_properties,
                self.user_sgpr_inputs().join(", ")
            ));
        }
        let lds = u64::from(self.rsrc2_lds_granules()) * u64::from(LDS_GRANULE_BYTES);
        if self.rsrc2_lds_granules() != 0 && lds < u64::from(self.group_segment_fixed_size) {
            return Err(format!(
                "RSRC2.LDS_SIZE {} granules ({lds} bytes) < group_segment_fixed_size {}",
                self.rsrc2_lds_granules(),
                self.group_segment_fixed_size
            ));
        }
        if self.lds_granules_needed() > 0x1ff {
            return Err(format!(
                "group_segment_fixed_size {} needs {} LDS granules, more than RSRC2.LDS_SIZE holds",
                self.group_segment_fixed_size,
                self.lds_granules_needed()
            ));
        }
        if self.kernarg_size > 0 && !self.wants_kernarg_ptr() {
            return Err(format!(
                "kernarg_size {} but no kernarg segment pointer in kernel_code_properties {:#06x}",
                self.kernarg_size, self.kernel_code_properties
            ));
        }
        if self.kernarg_preload != 0 {
            return Err(format!("kernarg_preload {:#06x} is not supported", self.kernarg_preload));
        }
        Ok(())
    }
}

/// How the metadata classifies an argument (`.value_kind`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `global_buffer`: a 64-bit global pointer.
    GlobalBuffer,
    /// `by_value`: the bytes of a scalar or struct.
    ByValue,
    /// `hidden_*`: an implicit argument the runtime would have to fill.
    Hidden(String),
    /// Anything else (e.g. `dynamic_shared_pointer`, `image`).
    Other(String),
}

impl ValueKind {
    fn parse(s: &str) -> ValueKind {
        match s {
            "global_buffer" => ValueKind::GlobalBuffer,
            "by_value" => ValueKind::ByValue,
            _ if s.starts_with("hidden_") => ValueKind::Hidden(s.to_owned()),
            _ => ValueKind::Other(s.to_owned()),
        }
    }
}

/// One kernel argument as recorded in the metadata note (`.args[]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernArg {
    /// `.name` (absent for hidden arguments).
    pub name: Option<String>,
    /// `.offset` in the kernarg segment.
    pub offset: u32,
    /// `.size` in bytes.
    pub size: u32,
    /// `.value_kind`.
    pub value_kind: ValueKind,
}

/// What a declared argument is, for [`Kernel::check_signature`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeclaredKind {
    /// A global pointer (metadata `global_buffer`, 8 bytes).
    Pointer,
    /// A scalar by value (metadata `by_value`).
    Value,
}

/// One argument of a declared signature, for [`Kernel::check_signature`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeclaredArg<'a> {
    /// Parameter name.
    pub name: &'a str,
    /// Pointer or value.
    pub kind: DeclaredKind,
    /// Byte offset in the kernarg segment.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// Per-kernel facts from the metadata note besides the arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelMetadata {
    /// `.kernarg_segment_size`.
    pub kernarg_segment_size: u32,
    /// `.kernarg_segment_align`.
    pub kernarg_segment_align: u32,
    /// `.group_segment_fixed_size` (LDS bytes).
    pub group_segment_fixed_size: u32,
    /// `.private_segment_fixed_size` (scratch bytes per lane).
    pub private_segment_fixed_size: u32,
    /// `.wavefront_size`.
    pub wavefront_size: u32,
    /// `.sgpr_count`.
    pub sgpr_count: u32,
    /// `.vgpr_count`.
    pub vgpr_count: u32,
    /// `.max_flat_workgroup_size`.
    pub max_flat_workgroup_size: u32,
    /// `.reqd_workgroup_size`, when the source declared one.
    pub reqd_workgroup_size: Option<[u32; 3]>,
}

/// One kernel of a loaded code object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kernel {
    /// The kernel's name (its code symbol; the descriptor symbol is `NAME.kd`).
    pub name: String,
    /// The decoded descriptor.
    pub descriptor: KernelDescriptor,
    /// Offset of the descriptor in [`CodeObject::image`] (its ELF vaddr).
    pub descriptor_offset: u64,
    /// Offset of the first instruction in [`CodeObject::image`]: descriptor offset plus
    /// `kernel_code_entry_byte_offset`; a multiple of [`ENTRY_ALIGN`].
    pub entry_offset: u64,
    /// Size of the code (the function symbol's size).
    pub code_size: u64,
    /// The arguments, in metadata order.
    pub args: Vec<KernArg>,
    /// The other metadata fields.
    pub metadata: KernelMetadata,
}

impl Kernel {
    /// GPU VA of the entry when the image is uploaded at `image_base` (for COMPUTE_PGM_LO/HI).
    pub fn entry_va(&self, image_base: u64) -> u64 {
        image_base.wrapping_add(self.entry_offset)
    }

    /// GPU VA of the descriptor when the image is uploaded at `image_base`.
    pub fn descriptor_va(&self, image_base: u64) -> u64 {
        image_base.wrapping_add(self.descriptor_offset)
    }

    /// Check that the kernarg layout equals `declared`: the same arguments in the same order
    /// with equal names, offsets, sizes and kinds, no hidden arguments, and a kernarg segment
    /// that ends where the last declared argument ends.
    ///
    /// Errors: [`CodeObjectError::SignatureMismatch`] naming the first difference.
    pub fn check_signature(&self, declared: &[DeclaredArg<'_>]) -> Result<()> {
        let fail = |reason: String| {
            Err(CodeObjectError::SignatureMismatch { kernel: self.name.clone(), reason })
        };
        if let Some(h) = self.args.iter().find(|a| matches!(a.value_kind, ValueKind::Hidden(_))) {
            return fail(format!("hidden argument {:?} at offset {}", h.value_kind, h.offset));
        }
        if self.args.len() != declared.len() {
            return fail(format!(
                "{} arguments in the metadata, {} declared",
                self.args.len(),
                declared.len()
            ));
        }
        for (i, (a, d)) in self.args.iter().zip(declared).enumerate() {
            let kind_ok = match d.kind {
                DeclaredKind::Pointer => a.value_kind == ValueKind::GlobalBuffer,
                DeclaredKind::Value => a.value_kind == ValueKind::ByValue,
            };
            if a.name.as_deref() != Some(d.name)
                || a.offset != d.offset
                || a.size != d.size
                || !kind_ok
            {
                return fail(format!(
                    "argument {i}: metadata {:?} {:?} offset {} size {}, declared {:?} {:?} offset {} size {}",
                    a.name, a.value_kind, a.offset, a.size, d.name, d.kind, d.offset, d.size
                ));
            }
        }
        let end = declared.iter().map(|d| u64::from(d.offset) + u64::from(d.size)).max();
        if end.unwrap_or(0) != u64::from(self.descriptor.kernarg_size) {
            return fail(format!(
                "declared arguments end at {} but kernarg_size is {}",
                end.unwrap_or(0),
                self.descriptor.kernarg_size
            ));
        }
        Ok(())
    }
}

/// A parsed, checked AMDGPU code object: its target, loadable image and kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeObject {
    target: GfxTarget,
    e_flags: u32,
    target_id: String,
    image: Vec<u8>,
    exec_ranges: Vec<ExecRange>,
    kernels: Vec<Kernel>,
}

impl CodeObject {
    /// Parse `bytes` and require that it targets `device`.
    ///
    /// Errors: everything [`CodeObject::parse`] reports, and
    /// [`CodeObjectError::ForeignTarget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pm4rt_core::code_object::CodeObject;
    /// use pm4rt_core::GfxTarget;
    ///
    /// let bytes = pm4rt_kernels::code_object(pm4rt_kernels::Target::Gfx1201);
    /// let co = CodeObject::load(bytes, GfxTarget::Gfx1201)?;
    /// assert!(co.kernel("dmmv_q4_0").is_ok());
    /// // The same bytes are refused for another GPU.
    /// assert!(CodeObject::load(bytes, GfxTarget::Gfx1100).is_err());
    /// # Ok::<(), pm4rt_core::code_object::CodeObjectError>(())
    /// ```
    pub fn load(bytes: &[u8], device: GfxTarget) -> Result<CodeObject> {
        let co = CodeObject::parse(bytes)?;
        if co.target != device {
            return Err(CodeObjectError::ForeignTarget { object: co.target, device });
        }
        Ok(co)
    }

    /// Parse and check a code object for whichever supported target it names.
    ///
    /// Errors: [`CodeObjectError::Truncated`], [`CodeObjectError::NotElf`],
    /// [`CodeObjectError::WrongFormat`], [`CodeObjectError::UnknownTarget`],
    /// [`CodeObjectError::Elf`], [`CodeObjectError::BadSegment`],
    /// [`CodeObjectError::BadNote`], [`CodeObjectError::MissingDescriptor`],
    /// [`CodeObjectError::BadDescriptor`].
    pub fn parse(bytes: &[u8]) -> Result<CodeObject> {
        let (target, e_flags) = check_ident(bytes)?;
        // The object crate reads aligned structures: give it an 8-byte aligned copy.
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        let aligned: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        aligned[..bytes.len()].copy_from_slice(bytes);
        let data: &[u8] = &aligned[..bytes.len()];
        Parser { data, target }.parse(e_flags)
    }

    /// The GPU target (from `e_flags`).
    pub fn target(&self) -> GfxTarget {
        self.target
    }

    /// The raw `e_flags` (processor plus feature bits).
    pub fn e_flags(&self) -> u32 {
        self.e_flags
    }

    /// The metadata's `amdhsa.target`, e.g. `"amdgcn-amd-amdhsa--gfx1201"`.
    pub fn target_id(&self) -> &str {
        &self.target_id
    }

    /// The loadable image: every PT_LOAD segment at its vaddr (file bytes, then zeros up to
    /// `p_memsz`), zero elsewhere. Upload it at a 256-byte aligned `image_base`.
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// Every kernel, in metadata order.
    pub fn kernels(&self) -> &[Kernel] {
        &self.kernels
    }

    /// The kernel called `name`.
    ///
    /// Errors: [`CodeObjectError::NoSuchKernel`].
    pub fn kernel(&self, name: &str) -> Result<&Kernel> {
        self.kernels
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| CodeObjectError::NoSuchKernel { name: name.to_owned() })
    }

    /// The machine code of `kernel` (`code_size` bytes from its entry), as the GPU will see
    /// it: the simulator identifies kernels by these bytes. Empty if `kernel` is not from
    /// this code object's image.
    pub fn code_bytes(&self, kernel: &Kernel) -> &[u8] {
        let start = usize::try_from(kernel.entry_offset).unwrap_or(usize::MAX);
        let len = usize::try_from(kernel.code_size).unwrap_or(usize::MAX);
        start.checked_add(len).and_then(|end| self.image.get(start..end)).unwrap_or(&[])
    }

    /// True when image offsets `[start, start + len)` lie inside an executable PT_LOAD.
    pub fn is_executable(&self, start: u64, len: u64) -> bool {
        let Some(end) = start.checked_add(len) else { return false };
        self.exec_ranges.iter().any(|&(s, e)| start >= s && end <= e)
    }
}

/// Check the ELF identification and header fields before handing the bytes to `object`.
fn check_ident(b: &[u8]) -> Result<(GfxTarget, u32)> {
    let len = b.len() as u64;
    if b.len() < 4 || &b[..4] != b"\x7fELF" {
        return Err(CodeObjectError::NotElf { magic: b[..b.len().min(4)].to_vec() });
    }
    if len < ELF_HEADER_SIZE {
        return Err(CodeObjectError::Truncated {
            what: "ELF header",
            offset: 0,
            need: ELF_HEADER_SIZE,
            len,
        });
    }
    let wrong = |field, found: u64, expected: u64| {
        Err(CodeObjectError::WrongFormat { field, found, expected })
    };
    if b[4] != elf::ELFCLASS64.0 {
        return wrong("EI_CLASS", b[4].into(), elf::ELFCLASS64.0.into());
    }
    if b[5] != elf::ELFDATA2LSB.0 {
        return wrong("EI_DATA", b[5].into(), elf::ELFDATA2LSB.0.into());
    }
    if b[7] != ELFOSABI_AMDGPU_HSA {
        return wrong("EI_OSABI", b[7].into(), ELFOSABI_AMDGPU_HSA.into());
    }
    let machine = u16::from_le_bytes([b[18], b[19]]);
    if machine != EM_AMDGPU {
        return wrong("e_machine", machine.into(), EM_AMDGPU.into());
    }
    let e_flags = le_u32(b, 48);
    let target = target_from_e_flags(e_flags)
        .ok_or(CodeObjectError::UnknownTarget { mach: e_flags & EF_AMDGPU_MACH, e_flags })?;
    Ok((target, e_flags))
}

fn elf_err(what: &'static str) -> impl Fn(object::read::Error) -> CodeObjectError {
    move |e| CodeObjectError::Elf { what, reason: e.to_string() }
}

fn note_err(offset: u64, reason: impl Into<String>) -> CodeObjectError {
    CodeObjectError::BadNote { offset, reason: reason.into() }
}

/// `[start, end)` image offsets of an executable PT_LOAD.
type ExecRange = (u64, u64);

struct Symbol {
    value: u64,
    size: u64,
    is_func: bool,
}

struct Parser<'d> {
    data: &'d [u8],
    target: GfxTarget,
}

impl<'d> Parser<'d> {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn need(&self, what: &'static str, offset: u64, need: u64) -> Result<()> {
        match offset.checked_add(need) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(CodeObjectError::Truncated { what, offset, need, len: self.len() }),
        }
    }

    /// File offset of a sub-slice of `self.data`.
    fn offset_of(&self, s: &[u8]) -> u64 {
        (s.as_ptr() as usize).wrapping_sub(self.data.as_ptr() as usize) as u64
    }

    fn parse(self, e_flags: u32) -> Result<CodeObject> {
        let endian = LittleEndian;
        let header =
            elf::FileHeader64::<LittleEndian>::parse(self.data).map_err(elf_err("file header"))?;
        let phnum = u64::from(header.e_phnum(endian));
        self.need("program headers", header.e_phoff(endian), phnum.saturating_mul(PHDR_SIZE))?;
        let shnum = u64::from(header.e_shnum(endian));
        self.need("section headers", header.e_shoff(endian), shnum.saturating_mul(SHDR_SIZE))?;
        let phdrs =
            header.program_headers(endian, self.data).map_err(elf_err("program headers"))?;

        let (image, exec_ranges) = self.layout(phdrs)?;
        let (md_offset, metadata) = self.metadata(phdrs)?;
        let symbols = self.symbols(header)?;

        let md = msgpack::decode(metadata)
            .map_err(|e| note_err(md_offset, format!("MessagePack: {e}")))?;
        let target_id = md
            .get("amdhsa.target")
            .and_then(Value::as_str)
            .ok_or_else(|| note_err(md_offset, "amdhsa.target missing or not a string"))?
            .to_owned();
        let expect = format!("amdgcn-amd-amdhsa--{}", self.target.name());
        if target_id != expect && !target_id.starts_with(&format!("{expect}:")) {
            return Err(note_err(
                md_offset,
                format!("amdhsa.target {target_id:?} does not match e_flags ({expect})"),
            ));
        }
        let list = md
            .get("amdhsa.kernels")
            .and_then(Value::as_array)
            .ok_or_else(|| note_err(md_offset, "amdhsa.kernels missing or not an array"))?;

        let mut co = CodeObject {
            target: self.target,
            e_flags,
            target_id,
            image,
            exec_ranges,
            kernels: Vec::with_capacity(list.len()),
        };
        for (i, entry) in list.iter().enumerate() {
            let k = self.kernel(&co, &symbols, md_offset, i, entry)?;
            if co.kernels.iter().any(|o| o.name == k.name) {
                return Err(note_err(md_offset, format!("kernel {} listed twice", k.name)));
            }
            co.kernels.push(k);
        }
        Ok(co)
    }

    /// Lay the PT_LOAD segments out at their vaddrs.
    fn layout(
        &self,
        phdrs: &[elf::ProgramHeader64<LittleEndian>],
    ) -> Result<(Vec<u8>, Vec<ExecRange>)> {
        let endian = LittleEndian;
        let mut size = 0u64;
        let loads: Vec<_> =
            phdrs.iter().enumerate().filter(|(_, p)| p.p_type(endian) == elf::PT_LOAD).collect();
        for &(index, p) in &loads {
            let vaddr = p.p_vaddr(endian);
            let bad = |reason: String| CodeObjectError::BadSegment { index, vaddr, reason };
            let (filesz, memsz) = (p.p_filesz(endian), p.p_memsz(endian));
            if filesz > memsz {
                return Err(bad(format!("p_filesz {filesz:#x} > p_memsz {memsz:#x}")));
            }
            let end =
                vaddr.checked_add(memsz).filter(|&e| e <= MAX_IMAGE_SIZE).ok_or_else(|| {
                    bad(format!("ends beyond the {MAX_IMAGE_SIZE:#x}-byte image limit"))
                })?;
            self.need("PT_LOAD segment", p.p_offset(endian), filesz)?;
            size = size.max(end);
        }
        if loads.is_empty() {
            return Err(CodeObjectError::Elf {
                what: "program headers",
                reason: "no PT_LOAD segment".into(),
            });
        }
        let mut image = vec![0u8; size as usize];
        let mut exec = Vec::new();
        for &(index, p) in &loads {
            let vaddr = p.p_vaddr(endian);
            let bytes = p.data(endian, self.data).map_err(|()| CodeObjectError::BadSegment {
                index,
                vaddr,
                reason: "file range outside the input".into(),
            })?;
            let start = vaddr as usize; // <= MAX_IMAGE_SIZE, checked above
            image[start..start + bytes.len()].copy_from_slice(bytes);
            if p.p_flags(endian).0 & elf::PF_X.0 != 0 {
                exec.push((vaddr, vaddr + p.p_memsz(endian)));
            }
        }
        Ok((image, exec))
    }

    /// The descriptor bytes of the NT_AMDGPU_METADATA note and their file offset.
    /// Exactly one such note is accepted: a code object linked from several objects carries
    /// one note per object, which loaders would read only partly.
    fn metadata(&self, phdrs: &[elf::ProgramHeader64<LittleEndian>]) -> Result<(u64, &'d [u8])> {
        let endian = LittleEndian;
        let mut found: Option<(u64, &'d [u8])> = None;
        for p in phdrs {
            let Some(mut notes) = p
                .notes(endian, self.data)
                .map_err(|e| note_err(p.p_offset(endian), format!("note segment: {e}")))?
            else {
                continue;
            };
            while let Some(note) =
                notes.next().map_err(|e| note_err(p.p_offset(endian), format!("note list: {e}")))?
            {
                if note.name() == b"AMDGPU" && note.n_type(endian).0 == NT_AMDGPU_METADATA {
                    let offset = self.offset_of(note.desc());
                    if let Some((first, _)) = found {
                        return Err(note_err(
                            offset,
                            format!(
                                "a second NT_AMDGPU_METADATA note (the first is at {first:#x})"
                            ),
                        ));
                    }
                    found = Some((offset, note.desc()));
                }
            }
        }
        found.ok_or_else(|| note_err(0, "no note named \"AMDGPU\" of type NT_AMDGPU_METADATA (32)"))
    }

    /// Symbols by name, from .symtab (else .dynsym).
    fn symbols(&self, header: &elf::FileHeader64<LittleEndian>) -> Result<HashMap<String, Symbol>> {
        let endian = LittleEndian;
        let sections = header.sections(endian, self.data).map_err(elf_err("section headers"))?;
        let mut table = sections
            .symbols(endian, self.data, elf::SHT_SYMTAB)
            .map_err(elf_err("symbol table"))?;
        if table.is_empty() {
            table = sections
                .symbols(endian, self.data, elf::SHT_DYNSYM)
                .map_err(elf_err("dynamic symbol table"))?;
        }
        let strings = table.strings();
        let mut map = HashMap::new();
        for sym in table.iter() {
            let Ok(name) = sym.name(endian, strings) else { continue };
            let Ok(name) = std::str::from_utf8(name) else { continue };
            if name.is_empty() {
                continue;
            }
            map.insert(
                name.to_owned(),
                Symbol {
                    value: sym.st_value(endian),
                    size: sym.st_size(endian),
                    is_func: sym.st_type() == elf::STT_FUNC,
                },
            );
        }
        Ok(map)
    }

    fn kernel(
        &self,
        co: &CodeObject,
        symbols: &HashMap<String, Symbol>,
        md_offset: u64,
        index: usize,
        entry: &Value<'_>,
    ) -> Result<Kernel> {
        let path = format!("amdhsa.kernels[{index}]");
        let field = |key: &str| {
            entry.get(key).ok_or_else(|| note_err(md_offset, format!("{path}.{key} missing")))
        };
        let string = |key: &str| {
            field(key)?
                .as_str()
                .ok_or_else(|| note_err(md_offset, format!("{path}.{key} is not a string")))
        };
        let uint = |v: &Value<'_>, what: &str| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| note_err(md_offset, format!("{what} is not a u32")))
        };
        let num = |key: &str| uint(field(key)?, &format!("{path}.{key}"));

        let name = string(".name")?.to_owned();
        let symbol = string(".symbol")?;
        let args_v = field(".args")
            .ok()
            .map(|v| {
                v.as_array()
                    .ok_or_else(|| note_err(md_offset, format!("{path}.args is not an array")))
            })
            .transpose()?
            .unwrap_or(&[]);
        let mut args = Vec::with_capacity(args_v.len());
        for (j, a) in args_v.iter().enumerate() {
            let ap = format!("{path}.args[{j}]");
            let get = |key: &str| {
                a.get(key).ok_or_else(|| note_err(md_offset, format!("{ap}.{key} missing")))
            };
            let kind = get(".value_kind")?
                .as_str()
                .ok_or_else(|| note_err(md_offset, format!("{ap}.value_kind is not a string")))?;
            let arg_name = match a.get(".name") {
                None => None,
                Some(v) => Some(
                    v.as_str()
                        .ok_or_else(|| note_err(md_offset, format!("{ap}.name is not a string")))?
                        .to_owned(),
                ),
            };
            args.push(KernArg {
                name: arg_name,
                offset: uint(get(".offset")?, &format!("{ap}.offset"))?,
                size: uint(get(".size")?, &format!("{ap}.size"))?,
                value_kind: ValueKind::parse(kind),
            });
        }
        let reqd = match entry.get(".reqd_workgroup_size") {
            None => None,
            Some(v) => {
                let dims = v.as_array().filter(|d| d.len() == 3).ok_or_else(|| {
                    note_err(md_offset, format!("{path}.reqd_workgroup_size is not 3 integers"))
                })?;
                let what = format!("{path}.reqd_workgroup_size[]");
                Some([uint(&dims[0], &what)?, uint(&dims[1], &what)?, uint(&dims[2], &what)?])
            }
        };
        let metadata = KernelMetadata {
            kernarg_segment_size: num(".kernarg_segment_size")?,
            kernarg_segment_align: num(".kernarg_segment_align")?,
            group_segment_fixed_size: num(".group_segment_fixed_size")?,
            private_segment_fixed_size: num(".private_segment_fixed_size")?,
            wavefront_size: num(".wavefront_size")?,
            sgpr_count: num(".sgpr_count")?,
            vgpr_count: num(".vgpr_count")?,
            max_flat_workgroup_size: num(".max_flat_workgroup_size")?,
            reqd_workgroup_size: reqd,
        };

        let kd = symbols.get(symbol).ok_or_else(|| CodeObjectError::MissingDescriptor {
            kernel: name.clone(),
            symbol: symbol.to_owned(),
        })?;
        let bad = |reason: String| CodeObjectError::BadDescriptor {
            kernel: name.clone(),
            offset: kd.value,
            reason,
        };
        if kd.size != KERNEL_DESCRIPTOR_SIZE as u64 {
            return Err(bad(format!("symbol {symbol} has size {}, expected 64", kd.size)));
        }
        let raw: &[u8; KERNEL_DESCRIPTOR_SIZE] = usize::try_from(kd.value)
            .ok()
            .and_then(|s| co.image.get(s..s.checked_add(KERNEL_DESCRIPTOR_SIZE)?))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("descriptor lies outside the loadable image".into()))?;
        let descriptor = KernelDescriptor::from_bytes(raw);

        let entry_offset =
            i128::from(kd.value) + i128::from(descriptor.kernel_code_entry_byte_offset);
        let entry_offset = u64::try_from(entry_offset).map_err(|_| {
            bad(format!(
                "kernel_code_entry_byte_offset {} points before the image",
                descriptor.kernel_code_entry_byte_offset
            ))
        })?;
        if entry_offset % ENTRY_ALIGN != 0 {
            return Err(bad(format!("entry {entry_offset:#x} is not {ENTRY_ALIGN}-byte aligned")));
        }
        let func = symbols
            .get(&name)
            .filter(|s| s.is_func)
            .ok_or_else(|| bad(format!("no function symbol {name}")))?;
        if func.value != entry_offset {
            return Err(bad(format!(
                "entry {entry_offset:#x} differs from function symbol {name} at {:#x}",
                func.value
            )));
        }
        if func.size == 0 || !co.is_executable(entry_offset, func.size) {
            return Err(bad(format!(
                "code {entry_offset:#x}+{:#x} is not inside an executable segment",
                func.size
            )));
        }
        descriptor.check(self.target).map_err(bad)?;
        if descriptor.kernarg_size != metadata.kernarg_segment_size {
            return Err(bad(format!(
                "kernarg_size {} != metadata .kernarg_segment_size {}",
                descriptor.kernarg_size, metadata.kernarg_segment_size
            )));
        }
        if descriptor.group_segment_fixed_size != metadata.group_segment_fixed_size
            || descriptor.private_segment_fixed_size != metadata.private_segment_fixed_size
        {
            return Err(bad(format!(
                "segment sizes (LDS {}, scratch {}) != metadata (LDS {}, scratch {})",
                descriptor.group_segment_fixed_size,
                descriptor.private_segment_fixed_size,
                metadata.group_segment_fixed_size,
                metadata.private_segment_fixed_size
            )));
        }
        let wave = if descriptor.is_wave32() { 32 } else { 64 };
        if wave != metadata.wavefront_size {
            return Err(bad(format!(
                "descriptor says wave{wave}, metadata .wavefront_size {}",
                metadata.wavefront_size
            )));
        }
        for a in &args {
            if u64::from(a.offset) + u64::from(a.size) > u64::from(descriptor.kernarg_size) {
                return Err(bad(format!(
                    "argument {:?} at {}+{} runs past kernarg_size {}",
                    a.name, a.offset, a.size, descriptor.kernarg_size
                )));
            }
        }
        Ok(Kernel {
            name,
            descriptor,
            descriptor_offset: kd.value,
            entry_offset,
            code_size: func.size,
            args,
            metadata,
        })
    }
}
