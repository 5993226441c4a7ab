//! GEM objects: a BO of the simulated memory, reference counted like the kernel's
//! `drm_gem_object` (handles, VA mappings and CPU mmaps each hold a reference).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pm4rt_core::BoHandle;

use crate::memory::GpuMemory;

/// One GEM object. Its simulated storage is destroyed when the last reference drops.
#[derive(Debug)]
pub(crate) struct GemObject {
    pub(crate) mem: Arc<GpuMemory>,
    /// The BO's id in [`GpuMemory`] (device-unique).
    pub(crate) id: BoHandle,
    /// Size in bytes, page aligned (`amdgpu_bo_size`).
    pub(crate) size: u64,
    /// GEM_CREATE `domains` (DOORBELL ones map as doorbell pages, see `userq.rs`).
    pub(crate) domains: u64,
    /// GEM_CREATE `domain_flags` as stored by the kernel.
    pub(crate) flags: u64,
    /// The fake mmap offset (`amdgpu_bo_mmap_offset`).
    pub(crate) mmap_offset: u64,
    pub(crate) live: Arc<AtomicUsize>,
}

impl Drop for GemObject {
    fn drop(&mut self) {
        // Unmaps it too if still mapped; nothing else can refer to it now.
        let _ = self.mem.destroy_bo(self.id);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}
