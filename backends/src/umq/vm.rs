//! The render node and its GPU VA space as the umq tier uses them: the VA allocator, `GEM_VA`
//! maps that signal a point of the VM timeline syncobj, and the bounded wait for that point.
//!
//! `GEM_VA` returns before the page tables are written, and nothing orders a user queue's
//! doorbell with the update, so every mapping the queue may touch is waited for before it is
//! used (Mesa `amdgpu_userq.c: amdgpu_userq_init`; see `crate::drm::syncobj`).

use std::time::Duration;

use pm4rt_core::{BoHandle, Error, Result, PAGE_SIZE};

use crate::common::va::{VaAllocator, VaRefusal};
use crate::drm::bo::{self, Bo, BoSpec};
use crate::drm::ioctls::Dev;

/// The render node, the GPU VA allocator and the timeline syncobj of the VM's page-table
/// updates: everything BO creation needs.
pub(crate) struct Vm {
    pub(crate) dev: Dev,
    pub(crate) va: VaAllocator,
    /// The syncobj passed as `vm_timeline_syncobj_out` of every GEM_VA MAP.
    pub(crate) vm_sync: u32,
    /// Last timeline point used (points 1, 2, 3, ...).
    pub(crate) vm_point: u64,
}

impl Vm {
    /// GEM_CREATE and mmap as `spec` asks, then GEM_VA at a VA aligned to `va_align` unless
    /// it is 0; undoes its own steps on failure. The mapping is not waited for: see
    /// [`Vm::wait_vm`].
    pub(crate) fn create(&mut self, spec: BoSpec, va_align: u64) -> Result<Bo> {
        let mut bo = self.dev.create_bo(spec)?;
        if va_align != 0 {
            if let Err(e) = self.map_aligned(&mut bo, va_align) {
                drop(bo.cpu.take());
                let _ = self.dev.gem_close(bo.gem);
                return Err(e);
            }
        }
        Ok(bo)
    }

    /// GEM_VA MAP signalling the next point of the VM timeline; returns the point.
    pub(crate) fn va_map(&mut self, gem: u32, va: u64, size: u64, flags: u32) -> Result<u64> {
        let point = self.vm_point + 1;
        self.dev.va_map_signalling(gem, va, size, flags, self.vm_sync, point)?;
        self.vm_point = point;
        Ok(point)
    }

    /// Wait (bounded) until every page-table update so far is done: a user queue must not
    /// touch a mapping before (Mesa's `amdgpu_userq_init` waits the same way).
    pub(crate) fn wait_vm(&mut self, timeout: Duration) -> Result<()> {
        self.dev.syncobj_wait_point(self.vm_sync, self.vm_point, timeout)
    }

    /// Map `bo` at the lowest free VA aligned to `align`.
    pub(crate) fn map_aligned(&mut self, bo: &mut Bo, align: u64) -> Result<()> {
        let align = align.max(PAGE_SIZE);
        let refuse = |r: VaRefusal| Error::BadVa { bo: BoHandle(0), va: 0, reason: r.reason() };
        let at = if align == PAGE_SIZE {
            self.va.alloc(bo.size, None).map_err(refuse)?
        } else {
            // Reserve enough to align inside, then keep only the aligned part.
            let span = bo.size.checked_add(align - PAGE_SIZE).ok_or(Error::BadVa {
                bo: BoHandle(0),
                va: 0,
                reason: "BO too large",
            })?;
            let start = self.va.alloc(span, None).map_err(refuse)?;
            self.va.free(start);
            let aligned = start.div_ceil(align) * align;
            self.va.alloc(bo.size, Some(aligned)).map_err(refuse)?
        };
        if let Err(e) = self.va_map(bo.gem, at, bo.size, bo.vm_flags) {
            self.va.free(at);
            return Err(e);
        }
        bo.va = Some(at);
        Ok(())
    }

    /// Release `bo` (see `Dev::release_bo`).
    pub(crate) fn release(&mut self, bo: Bo) -> Result<()> {
        self.dev.release_bo(&mut self.va, bo)
    }

    /// Map the caller's BO `handle` (record `bo`, not mapped) at `va` or the lowest free VA,
    /// and wait (bounded by `timeout`) for the page-table update before returning: nothing
    /// orders the queue's doorbell with it, so the caller must not hand the VA to the GPU
    /// earlier. A failed wait unmaps again.
    ///
    /// Errors: [`Error::BadVa`] (already mapped, or the VA refused); [`Error::Io`].
    pub(crate) fn map_waited(
        &mut self,
        handle: BoHandle,
        bo: &Bo,
        va: Option<u64>,
        timeout: Duration,
    ) -> Result<u64> {
        let at = bo::reserve_va(&mut self.va, handle, bo, va)?;
        if let Err(e) = self.va_map(bo.gem, at, bo.size, bo.vm_flags) {
            self.va.free(at);
            return Err(e);
        }
        if let Err(e) = self.wait_vm(timeout) {
            let _ = self.dev.va_unmap(bo.gem, at, bo.size, bo.vm_flags);
            self.va.free(at);
            return Err(e);
        }
        Ok(at)
    }
}
