//! The [`Submitter`] trait: the one interface every tier (umq, kfd, cs, sim) implements.
//!
//! A submitter owns a GPU virtual address space and one compute queue. Callers allocate
//! buffer objects (BOs), bind them at GPU virtual addresses, write PM4 command streams into
//! them, submit those streams as indirect buffers (IBs) and wait for the returned fences.
//!
//! One IB-size rule holds on every tier: [`check_ib_size`] (at most [`MAX_IB_DWORDS`]), which
//! each `submit_ib` applies before anything reaches the kernel or a queue.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use crate::error::Result;

/// The submission path a [`Submitter`] uses, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// amdgpu user-mode queues (DRM USERQ): ring + doorbell, no syscall per submit.
    Umq,
    /// A KFD PM4 compute queue with a doorbell, no syscall per submit.
    Kfd,
    /// amdgpu command submission (DRM_IOCTL_AMDGPU_CS): one ioctl per submit.
    Cs,
    /// The in-process software GPU.
    Sim,
}

impl Tier {
    /// Every tier in selection order (fastest first).
    pub const ALL: [Tier; 4] = [Tier::Umq, Tier::Kfd, Tier::Cs, Tier::Sim];

    /// The lower-case name used on the command line and in `PM4RT_TIER`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Umq => "umq",
            Tier::Kfd => "kfd",
            Tier::Cs => "cs",
            Tier::Sim => "sim",
        }
    }

    /// Parse a tier name as printed by [`Tier::name`]; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The GPU instruction-set generation a submitter drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GfxTarget {
    /// RDNA3 (Navi 31), `gfx1100`.
    Gfx1100,
    /// RDNA4 (Navi 48, e.g. Radeon AI PRO R9700), `gfx1201`.
    Gfx1201,
}

impl GfxTarget {
    /// LLVM processor name, e.g. `"gfx1201"`.
    pub fn name(self) -> &'static str {
        match self {
            GfxTarget::Gfx1100 => "gfx1100",
            GfxTarget::Gfx1201 => "gfx1201",
        }
    }

    /// True for gfx12 parts (which differ in some PM4 cache-control bits).
    pub fn is_gfx12(self) -> bool {
        matches!(self, GfxTarget::Gfx1201)
    }

    /// KFD `gfx_target_version` (major*10000 + minor*100 + stepping).
    pub fn kfd_target_version(self) -> u32 {
        match self {
            GfxTarget::Gfx1100 => 110000,
            GfxTarget::Gfx1201 => 120001,
        }
    }

    /// Inverse of [`GfxTarget::kfd_target_version`].
    pub fn from_kfd_target_version(v: u32) -> Option<GfxTarget> {
        match v {
            110000 => Some(GfxTarget::Gfx1100),
            120001 => Some(GfxTarget::Gfx1201),
            _ => None,
        }
    }
}

impl fmt::Display for GfxTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a BO's memory lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Domain {
    /// Device memory.
    Vram,
    /// System memory mapped through the GART (CPU-visible, the default).
    #[default]
    Gtt,
}

/// What to allocate: see [`Submitter::alloc_bo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BoDesc {
    /// Size in bytes; rounded up to the 4 KiB page size by the tier. Must be > 0.
    pub size: u64,
    /// Memory domain.
    pub domain: Domain,
    /// The CPU will read or write the BO (required for [`Submitter::write_bo`] /
    /// [`Submitter::read_bo`]).
    pub cpu_access: bool,
    /// The GPU will execute code from the BO.
    pub executable: bool,
    /// Map uncached (for fences and other memory polled by both sides).
    pub uncached: bool,
}

impl BoDesc {
    /// A CPU-accessible GTT buffer of `size` bytes: the common case for data and IBs.
    pub fn gtt(size: u64) -> Self {
        BoDesc { size, domain: Domain::Gtt, cpu_access: true, executable: false, uncached: false }
    }

    /// A CPU-accessible, executable GTT buffer for kernel code.
    pub fn code(size: u64) -> Self {
        BoDesc { executable: true, ..BoDesc::gtt(size) }
    }
}

/// An opaque buffer-object handle, valid only for the submitter that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BoHandle(pub u32);

impl fmt::Display for BoHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BO#{}", self.0)
    }
}

/// A submission's completion token. Sequence numbers increase by one per submission on a
/// queue, starting at 1; a fence retires only after every earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fence {
    /// The sequence number of the submission.
    pub seq: u64,
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.seq)
    }
}

/// Running counters of a submitter, for comparing tiers' costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// System calls of the ioctl kind issued so far (0 for the simulator).
    pub ioctls: u64,
    /// IBs submitted so far.
    pub submissions: u64,
    /// Fences observed retired so far.
    pub retired: u64,
}

/// Static facts and running counters of a submitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitterInfo {
    /// Which path this submitter uses.
    pub tier: Tier,
    /// The GPU generation the work must be compiled for.
    pub gfx: GfxTarget,
    /// Usable GPU VA range for [`Submitter::map_va`].
    pub va_range: Range<u64>,
    /// True when a hardware backend (cs, kfd, umq) runs on the emulated kernel device rather
    /// than a real GPU. Always false for the simulator tier, which is software by definition.
    pub emulated: bool,
    /// A short human-readable description of the device (e.g. the render node).
    pub device: String,
    /// Counters so far.
    pub counters: Counters,
}

/// One compute queue plus its GPU address space, on some tier.
///
/// The trait is object safe and `Send`: engines hold a `Box<dyn Submitter>` and may move it
/// between threads. Dropping a submitter waits (bounded) for nothing: it releases the queue,
/// mappings and BOs in reverse order of creation.
///
/// # Examples
///
/// One IB on the simulator tier: allocate and map a BO, write an IB that stores a dword into
/// it, submit, wait for the fence and read the result back.
///
/// ```
/// use std::time::Duration;
///
/// use pm4rt_core::pm4::Builder;
/// use pm4rt_core::{BoDesc, Submitter};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut s: Box<dyn Submitter> = Box::new(pm4rt_sim::SimSubmitter::new()?);
/// let data = s.alloc_bo(&BoDesc::gtt(4096))?;
/// let data_va = s.map_va(data, None)?;
/// let mut b = Builder::growable(s.info().gfx);
/// b.write_data(data_va, &[0xC0FFEE])?;
/// let words = b.into_vec();
/// let ib = s.alloc_bo(&BoDesc::gtt(4096))?;
/// let ib_va = s.map_va(ib, None)?;
/// s.write_bo(ib, 0, bytemuck::cast_slice(&words))?;
/// let fence = s.submit_ib(ib_va, words.len() as u32)?;
/// s.wait_fence(fence, Duration::from_secs(5))?;
/// assert_eq!(pm4rt_core::submitter::read_u32(s.as_ref(), data, 0)?, 0xC0FFEE);
/// # Ok(())
/// # }
/// ```
pub trait Submitter: Send {
    /// Static facts and the current counters.
    fn info(&self) -> SubmitterInfo;

    /// Allocate a BO described by `desc`.
    ///
    /// Errors: [`crate::Error::InvalidArgument`] for a zero size; [`crate::Error::Io`] when the
    /// kernel refuses (e.g. `ENOMEM`).
    fn alloc_bo(&mut self, desc: &BoDesc) -> Result<BoHandle>;

    /// Free a BO, unmapping it first if it is still mapped.
    ///
    /// Errors: [`crate::Error::UnknownBo`]; [`crate::Error::Io`].
    fn free_bo(&mut self, bo: BoHandle) -> Result<()>;

    /// Bind `bo` into the GPU VA space, at `va` if given (4 KiB aligned, inside
    /// [`SubmitterInfo::va_range`], not overlapping another mapping), else at a VA the tier
    /// picks. Returns the VA. A BO is mapped at most once.
    ///
    /// Errors: [`crate::Error::BadVa`], [`crate::Error::UnknownBo`], [`crate::Error::Io`].
    fn map_va(&mut self, bo: BoHandle, va: Option<u64>) -> Result<u64>;

    /// Remove `bo`'s GPU mapping. Work still in flight that touches it will fault.
    ///
    /// Errors: [`crate::Error::BadVa`] when it is not mapped, [`crate::Error::UnknownBo`].
    fn unmap_va(&mut self, bo: BoHandle) -> Result<()>;

    /// Copy `data` into `bo` at byte `offset`.
    ///
    /// Errors: [`crate::Error::OutOfBounds`], [`crate::Error::UnknownBo`],
    /// [`crate::Error::Unsupported`] when the BO has no CPU access.
    fn write_bo(&mut self, bo: BoHandle, offset: u64, data: &[u8]) -> Result<()>;

    /// Copy `out.len()` bytes of `bo` starting at byte `offset` into `out`.
    ///
    /// Errors: as [`Submitter::write_bo`].
    fn read_bo(&self, bo: BoHandle, offset: u64, out: &mut [u8]) -> Result<()>;

    /// Submit the PM4 stream of `dwords` dwords at GPU VA `ib_va` (4-byte aligned, mapped) to
    /// the queue and return its fence. Does not wait; many submissions may be in flight.
    ///
    /// Errors: [`crate::Error::InvalidArgument`] for an empty or misaligned IB, one longer than
    /// [`MAX_IB_DWORDS`] ([`check_ib_size`]), or one not inside a mapped BO; [`crate::Error::DeviceLost`] once the queue is dead;
    /// [`crate::Error::Timeout`] when a ring tier's ring stays full past its limit (nothing is
    /// submitted; which fence it names is the tier's choice); [`crate::Error::Io`].
    fn submit_ib(&mut self, ib_va: u64, dwords: u32) -> Result<Fence>;

    /// Wait until `fence` retires, at most `timeout`.
    ///
    /// Errors: [`crate::Error::Timeout`]; [`crate::Error::Fault`] when the queue page-faulted;
    /// [`crate::Error::DeviceLost`]; [`crate::Error::Pm4`], [`crate::Error::Dispatch`],
    /// [`crate::Error::WaitRegMemDeadline`] for work the queue refused;
    /// [`crate::Error::UnknownFence`].
    fn wait_fence(&mut self, fence: Fence, timeout: Duration) -> Result<()>;
}

/// BO sizes and GPU VAs are multiples of this: the GPU page size
/// (`drivers/gpu/drm/amd/amdgpu/amdgpu_gart.h: AMDGPU_GPU_PAGE_SIZE`), also the CPU page size
/// of the x86-64 hosts pm4rt runs on.
pub const PAGE_SIZE: u64 = 4096;

/// Most dwords one IB may hold: `INDIRECT_BUFFER` dw3 IB_SIZE is bits \[19:0\], 2^20 - 1.
///
/// The kernel does not enforce it: `amdgpu_cs.c: amdgpu_cs_p2_ib` takes any `ib_bytes / 4`,
/// and `gfx_v11_0.c: gfx_v11_0_ring_emit_ib_compute` / `gfx_v12_0.c:
/// gfx_v12_0_ring_emit_ib_compute` OR the length unmasked into dw3 next to CHAIN (bit 20),
/// VALID (23) and VMID (\[27:24\]), so a longer IB runs truncated or under another VMID.
/// pm4rt's own ring tiers (kfd, umq) write the same packet, so every tier refuses it.
pub const MAX_IB_DWORDS: u32 = crate::pm4::tables::fields::IB_SIZE.max();

/// The IB-size rule of every [`Submitter::submit_ib`]: `dwords` must be at most
/// [`MAX_IB_DWORDS`].
///
/// Errors: [`crate::Error::InvalidArgument`] naming the size and the limit.
pub fn check_ib_size(dwords: u32) -> Result<()> {
    if dwords > MAX_IB_DWORDS {
        return Err(crate::Error::InvalidArgument(format!(
            "IB of {dwords} dwords exceeds the {MAX_IB_DWORDS} dwords one INDIRECT_BUFFER can \
             run (IB_SIZE is a 20-bit field)"
        )));
    }
    Ok(())
}

/// Read a little-endian `u32` from a BO. A convenience over [`Submitter::read_bo`].
pub fn read_u32(s: &dyn Submitter, bo: BoHandle, offset: u64) -> Result<u32> {
    let mut b = [0u8; 4];
    s.read_bo(bo, offset, &mut b)?;
    Ok(u32::from_le_bytes(b))
}
