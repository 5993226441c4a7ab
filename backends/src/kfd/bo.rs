//! The KFD BO record, the allocation flags of every KFD BO, and its release.
//!
//! KFD binds a BO's GPU VA when it is allocated (`ALLOC_MEMORY_OF_GPU` takes `va_addr`), so a
//! record always has its VA; `MAP_MEMORY_TO_GPU` only makes the mapping valid on the GPU,
//! which is what [`TableBo::gpu_span`] reports.

use pm4rt_core::abi::kfd::{
    KFD_IOC_ALLOC_MEM_FLAGS_COHERENT, KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE,
    KFD_IOC_ALLOC_MEM_FLAGS_GTT, KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE,
    KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC, KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED, KFD_IOC_ALLOC_MEM_FLAGS_VRAM,
    KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE,
};
use pm4rt_core::{BoDesc, Domain, Mapping, Result};

use super::ioctls::Kfd;
use crate::common::bo_table::TableBo;

/// One KFD allocation.
#[derive(Debug)]
pub(crate) struct Bo {
    /// The handle `ALLOC_MEMORY_OF_GPU` returned.
    pub(crate) handle: u64,
    /// Its GPU VA (also its CPU address when mapped for the CPU).
    pub(crate) va: u64,
    /// Size in bytes (a page multiple).
    pub(crate) size: u64,
    /// The CPU mapping, for BOs with CPU access.
    pub(crate) cpu: Option<Box<dyn Mapping>>,
    /// `MAP_MEMORY_TO_GPU` done and not undone.
    pub(crate) gpu_mapped: bool,
}

impl TableBo for Bo {
    fn gpu_span(&self) -> Option<(u64, u64)> {
        self.gpu_mapped.then_some((self.va, self.size))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn cpu(&self) -> Option<&dyn Mapping> {
        self.cpu.as_deref()
    }
}

/// What every allocation asks for, as tinygrad's `KFDIface.alloc` (runtime/ops_amd.py) does
/// for all of its buffers: writable and executable GPU pages (`amdgpu_amdkfd_gpuvm.c:
/// get_pte_flags` makes KFD pages readable always, writable / executable only on request), and
/// no substitution of the domain.
pub(crate) const ALWAYS: u32 = KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE
    | KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE
    | KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE;
/// Queue buffers the CPU and the CP both access: GTT, coherent and uncached.
pub(crate) const GTT_UC: u32 = KFD_IOC_ALLOC_MEM_FLAGS_GTT
    | ALWAYS
    | KFD_IOC_ALLOC_MEM_FLAGS_COHERENT
    | KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED;
/// Queue buffers only the GPU touches (EOP, CWSR): VRAM.
pub(crate) const VRAM_PRIVATE: u32 = KFD_IOC_ALLOC_MEM_FLAGS_VRAM | ALWAYS;

/// The allocation flags of a caller's BO in `domain` (the descriptor's unless the tier forces
/// one).
pub(crate) fn flags_for(desc: &BoDesc, domain: Domain) -> u32 {
    let mut flags = ALWAYS;
    flags |= match domain {
        Domain::Vram if desc.cpu_access => {
            KFD_IOC_ALLOC_MEM_FLAGS_VRAM | KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC
        }
        Domain::Vram => KFD_IOC_ALLOC_MEM_FLAGS_VRAM,
        Domain::Gtt => KFD_IOC_ALLOC_MEM_FLAGS_GTT,
    };
    if desc.uncached {
        flags |= KFD_IOC_ALLOC_MEM_FLAGS_COHERENT | KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED;
    }
    flags
}

/// Release `bo`: `UNMAP_MEMORY_FROM_GPU` if mapped, munmap, `FREE_MEMORY_OF_GPU`. Every step
/// runs; the first error returns.
///
/// Errors: [`pm4rt_core::Error::Io`] of the first failing step.
pub(crate) fn release(kfd: &mut Kfd, gpu_id: u32, bo: Bo) -> Result<()> {
    let mut first = Ok(());
    if bo.gpu_mapped {
        first = kfd.unmap(bo.handle, gpu_id);
    }
    drop(bo.cpu);
    let freed = kfd.free(bo.handle);
    first.and(freed)
}
