//! How to open a [`UmqSubmitter`](super::UmqSubmitter): [`UmqConfig`], its defaults (Mesa's
//! winsys values, `amdgpu_userq.h`) and the sizes of the queue's own BOs.

use std::time::Duration;

use pm4rt_core::abi::drm::AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_MASK;
use pm4rt_core::{Domain, Error, GfxTarget, Result, DEFAULT_RENDER_NODE};

use super::probe::USER_QUEUE_PARAM;

/// Default ring size: 64 KiB, Mesa's `AMDGPU_USERQ_RING_SIZE` (0x10000).
pub const DEFAULT_RING_BYTES: u64 = 0x10000;
/// Smallest ring the kernel accepts (`queue_size < AMDGPU_GPU_PAGE_SIZE` is `EINVAL`).
pub const MIN_RING_BYTES: u64 = 4096;
/// Default doorbell index inside the doorbell BO, in 8-byte units: Mesa's
/// `AMDGPU_USERQ_DOORBELL_INDEX` (4; "any number will work").
pub const DEFAULT_DOORBELL_INDEX: u32 = 4;
/// Size of the DOORBELL-domain BO (one page, as Mesa allocates).
pub const DOORBELL_BO_SIZE: u64 = 4096;
/// Size of the write- and read-pointer BOs (one page; the kernel requires the wptr BO to be at
/// most one page and validates one page at each VA).
pub const POINTER_BO_SIZE: u64 = 4096;
/// Size of the fence BO.
pub const FENCE_BO_SIZE: u64 = 4096;
/// Dwords one submission occupies in the ring at most (ACQUIRE_MEM 8 + INDIRECT_BUFFER 4 +
/// RELEASE_MEM 8).
pub const MAX_SUBMIT_DWORDS: usize = 20;

/// How to open a [`UmqSubmitter`](super::UmqSubmitter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UmqConfig {
    /// The render node, e.g. [`DEFAULT_RENDER_NODE`].
    pub path: String,
    /// Where the `user_queue` module parameter is read ([`USER_QUEUE_PARAM`]).
    pub user_queue_param: String,
    /// The GPU target, used only when the kernel does not report the GC IP version; when both
    /// are known they must agree.
    pub gfx: Option<GfxTarget>,
    /// Put every caller BO in this domain regardless of [`BoDesc::domain`](pm4rt_core::BoDesc::domain).
    pub force_domain: Option<Domain>,
    /// Ring size in bytes: a power of two >= [`MIN_RING_BYTES`].
    pub ring_bytes: u64,
    /// Doorbell index inside the doorbell BO (8-byte units; `index * 8 + 8 <= 4096`).
    pub doorbell_index: u32,
    /// Queue priority (`AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_*`, 0..=3; 0 normal-low,
    /// 3 high needs CAP_SYS_NICE).
    pub priority: u32,
    /// Put a full ACQUIRE_MEM (cache write-back + invalidate) before every IB.
    pub mem_sync: bool,
    /// Longest `submit_ib` waits for ring space before failing with [`Error::Timeout`].
    pub space_timeout: Duration,
    /// Longest a `GEM_VA` map waits for its page-table update (`SYNCOBJ_TIMELINE_WAIT`)
    /// before failing with [`Error::Io`] ([`STEP_VM_WAIT`](super::STEP_VM_WAIT), `ETIME`).
    pub vm_update_timeout: Duration,
    /// Report the device as emulated in [`SubmitterInfo::emulated`](pm4rt_core::SubmitterInfo::emulated).
    pub emulated: bool,
}

impl Default for UmqConfig {
    fn default() -> Self {
        UmqConfig {
            path: DEFAULT_RENDER_NODE.to_string(),
            user_queue_param: USER_QUEUE_PARAM.to_string(),
            gfx: None,
            force_domain: None,
            ring_bytes: DEFAULT_RING_BYTES,
            doorbell_index: DEFAULT_DOORBELL_INDEX,
            priority: 0,
            mem_sync: true,
            space_timeout: Duration::from_secs(2),
            vm_update_timeout: Duration::from_secs(2),
            emulated: false,
        }
    }
}

impl UmqConfig {
    /// The default configuration for the render node at `path`.
    pub fn with_path(path: impl Into<String>) -> Self {
        UmqConfig { path: path.into(), ..UmqConfig::default() }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.ring_bytes < MIN_RING_BYTES
            || !self.ring_bytes.is_power_of_two()
            || self.ring_bytes / 4 > u64::from(u32::MAX)
        {
            return Err(Error::InvalidArgument(format!(
                "ring size {:#x} must be a power of two >= {MIN_RING_BYTES:#x}",
                self.ring_bytes
            )));
        }
        if u64::from(self.doorbell_index) * 8 + 8 > DOORBELL_BO_SIZE {
            return Err(Error::InvalidArgument(format!(
                "doorbell index {} does not fit the {DOORBELL_BO_SIZE}-byte doorbell BO",
                self.doorbell_index
            )));
        }
        if self.priority & !AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_MASK != 0 {
            return Err(Error::InvalidArgument(format!(
                "queue priority {} is not in 0..=3",
                self.priority
            )));
        }
        Ok(())
    }
}
