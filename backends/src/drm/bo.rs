//! The BO record and BO creation shared by the DRM tiers (cs and umq): a caller's
//! [`BoDesc`] becomes `GEM_CREATE` domains / flags and `GEM_VA` page flags the same way on
//! both, and a CPU-accessible BO is mmapped eagerly so reads and writes issue no syscall.

use pm4rt_core::abi::drm::{
    GemCreateIn, AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, AMDGPU_GEM_CREATE_NO_CPU_ACCESS,
    AMDGPU_GEM_CREATE_UNCACHED, AMDGPU_GEM_DOMAIN_GTT, AMDGPU_GEM_DOMAIN_VRAM,
    AMDGPU_VM_PAGE_EXECUTABLE, AMDGPU_VM_PAGE_READABLE, AMDGPU_VM_PAGE_WRITEABLE,
};
use pm4rt_core::{BoDesc, BoHandle, Domain, Error, MapAt, Mapping, Result};

use super::ioctls::{Dev, STEP_MMAP};
use crate::common::bo_table::TableBo;
use crate::common::va::VaAllocator;
use pm4rt_core::PAGE_SIZE;

/// One BO: its GEM handle, rounded size, GPU page flags, CPU mapping and VA.
#[derive(Debug)]
pub(crate) struct Bo {
    pub(crate) gem: u32,
    pub(crate) size: u64,
    pub(crate) vm_flags: u32,
    pub(crate) cpu: Option<Box<dyn Mapping>>,
    pub(crate) va: Option<u64>,
}

impl TableBo for Bo {
    fn gpu_span(&self) -> Option<(u64, u64)> {
        self.va.map(|va| (va, self.size))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn cpu(&self) -> Option<&dyn Mapping> {
        self.cpu.as_deref()
    }
}

/// How to create one BO.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoSpec {
    /// Size in bytes (a page multiple).
    pub(crate) size: u64,
    /// `AMDGPU_GEM_DOMAIN_*`.
    pub(crate) domains: u64,
    /// `AMDGPU_GEM_CREATE_*`.
    pub(crate) flags: u64,
    /// mmap it for the CPU.
    pub(crate) cpu: bool,
    /// `AMDGPU_VM_PAGE_*` for a later `GEM_VA MAP`.
    pub(crate) vm_flags: u32,
}

/// The page-rounded size of a caller's BO.
///
/// Errors: [`Error::InvalidArgument`] for 0 or a size that does not fit the address space.
pub(crate) fn rounded_size(desc: &BoDesc) -> Result<u64> {
    if desc.size == 0 {
        return Err(Error::InvalidArgument("BO size must be > 0".into()));
    }
    desc.size
        .checked_next_multiple_of(PAGE_SIZE)
        .filter(|&s| usize::try_from(s).is_ok())
        .ok_or_else(|| Error::InvalidArgument(format!("BO size {:#x} too large", desc.size)))
}

/// The page flags of every GPU mapping: readable, writable and executable, as the reference
/// clients map every BO (Mesa `src/amd/common/ac_linux_drm.c: ac_drm_bo_va_op`, libdrm
/// `amdgpu/amdgpu_bo.c: amdgpu_bo_va_op`). The command processor fetches IBs and rings
/// through the same page tables as the shaders fetch code, so no mapping is left without a
/// permission one of them may need.
pub(crate) const VM_FLAGS: u32 =
    AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE | AMDGPU_VM_PAGE_EXECUTABLE;

/// The [`BoSpec`] of a caller's BO of `size` bytes (already rounded) in `domain` (the
/// descriptor's unless the tier forces one). GTT is CPU-cached and snooped; USWC is never
/// requested because pm4rt reads BOs back through the CPU and reads of write-combined memory
/// are uncached.
pub(crate) fn spec_for(desc: &BoDesc, size: u64, domain: Domain) -> BoSpec {
    let (domains, mut flags) = match domain {
        Domain::Gtt => (AMDGPU_GEM_DOMAIN_GTT, 0),
        Domain::Vram if desc.cpu_access => {
            (AMDGPU_GEM_DOMAIN_VRAM, AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED)
        }
        Domain::Vram => (AMDGPU_GEM_DOMAIN_VRAM, AMDGPU_GEM_CREATE_NO_CPU_ACCESS),
    };
    if desc.uncached {
        flags |= AMDGPU_GEM_CREATE_UNCACHED;
    }
    BoSpec { size, domains, flags, cpu: desc.cpu_access, vm_flags: VM_FLAGS }
}

impl Dev {
    /// `GEM_CREATE`, then for `spec.cpu` `GEM_MMAP` and an mmap of the render node. Not
    /// mapped into the GPU VA space. On a failing mmap the GEM handle is closed again.
    ///
    /// Errors: [`Error::Io`] naming the failing step.
    pub(crate) fn create_bo(&mut self, spec: BoSpec) -> Result<Bo> {
        let gem = self.gem_create(GemCreateIn {
            bo_size: spec.size,
            alignment: PAGE_SIZE,
            domains: spec.domains,
            domain_flags: spec.flags,
        })?;
        let mut bo = Bo { gem, size: spec.size, vm_flags: spec.vm_flags, cpu: None, va: None };
        if spec.cpu {
            let mapped = self.gem_mmap_offset(gem).and_then(|offset| {
                let len = usize::try_from(spec.size)
                    .map_err(|_| Error::io(STEP_MMAP, pm4rt_core::Errno::ENOMEM))?;
                self.driver()
                    .mmap(self.fd(), offset, len, MapAt::Anywhere)
                    .map_err(|e| Error::io(STEP_MMAP, e))
            });
            match mapped {
                Ok(m) => bo.cpu = Some(m),
                Err(e) => {
                    let _ = self.gem_close(gem);
                    return Err(e);
                }
            }
        }
        Ok(bo)
    }
}

/// Reserve the VA at which the caller's BO `handle` (record `bo`) is to be mapped: `at`, or
/// the lowest free VA.
///
/// Errors: [`Error::BadVa`] when the BO is already mapped or the allocator refuses the VA.
pub(crate) fn reserve_va(
    va: &mut VaAllocator,
    handle: BoHandle,
    bo: &Bo,
    at: Option<u64>,
) -> Result<u64> {
    let refuse = |reason| Error::BadVa { bo: handle, va: at.unwrap_or(0), reason };
    if bo.va.is_some() {
        return Err(refuse("BO is already mapped"));
    }
    va.alloc(bo.size, at).map_err(|r| refuse(r.reason()))
}

impl Dev {
    /// `GEM_VA UNMAP` of the caller's BO `handle` (record `bo`), then free its VA.
    ///
    /// Errors: [`Error::BadVa`] when it is not mapped; [`Error::Io`] (the VA stays reserved).
    pub(crate) fn unmap_bo(
        &mut self,
        va: &mut VaAllocator,
        handle: BoHandle,
        bo: &Bo,
    ) -> Result<()> {
        let Some(at) = bo.va else {
            return Err(Error::BadVa { bo: handle, va: 0, reason: "not mapped" });
        };
        self.va_unmap(bo.gem, at, bo.size, bo.vm_flags)?;
        va.free(at);
        Ok(())
    }

    /// Release `bo`: `GEM_VA UNMAP` if mapped (its VA is freed either way), munmap,
    /// `GEM_CLOSE`. Every step runs; the first error returns. `GEM_CLOSE` of the last handle
    /// also drops a mapping the unmap failed to remove.
    ///
    /// Errors: [`Error::Io`] of the first failing step.
    pub(crate) fn release_bo(&mut self, va: &mut VaAllocator, mut bo: Bo) -> Result<()> {
        let mut first = None;
        if let Some(at) = bo.va.take() {
            if let Err(e) = self.va_unmap(bo.gem, at, bo.size, bo.vm_flags) {
                first = Some(e);
            }
            va.free(at);
        }
        drop(bo.cpu.take());
        if let Err(e) = self.gem_close(bo.gem) {
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }
}
