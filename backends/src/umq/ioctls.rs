//! The `USERQ` ioctl (create / free) as an `impl` block on the shared [`Dev`], and the step
//! names of the umq tier.

use pm4rt_core::abi::drm::{
    UserqIn, UserqMqdComputeGfx11, UserqOut, AMDGPU_HW_IP_COMPUTE, AMDGPU_USERQ_OP_CREATE,
    AMDGPU_USERQ_OP_FREE, DRM_IOCTL_AMDGPU_USERQ, USERQ_MQD_COMPUTE_SIZE,
};
use pm4rt_core::abi::ioctl::arg_for;
use pm4rt_core::driver::user_ptr;
use pm4rt_core::Result;

use crate::drm::ioctls::Dev;
pub use crate::drm::ioctls::{
    STEP_BO_ACCESS, STEP_CLOSE, STEP_GEM_CLOSE, STEP_GEM_CREATE, STEP_GEM_MMAP, STEP_INFO_DEV,
    STEP_INFO_HW_IP, STEP_MMAP, STEP_OPEN, STEP_VA_MAP, STEP_VA_UNMAP,
};

/// Step name: `INFO` with `AMDGPU_INFO_UQ_FW_AREAS` (COMPUTE).
pub const STEP_INFO_UQ_FW_AREAS: &str = "INFO UQ_FW_AREAS";
/// Step name: reading `/sys/module/amdgpu/parameters/user_queue`.
pub const STEP_READ_PARAM: &str = "read amdgpu.user_queue";
/// Step name: `USERQ` with `AMDGPU_USERQ_OP_CREATE`.
pub const STEP_USERQ_CREATE: &str = "USERQ CREATE";
/// Step name: `USERQ` with `AMDGPU_USERQ_OP_FREE`.
pub const STEP_USERQ_FREE: &str = "USERQ FREE";
/// Step name: a CPU access to the ring, read/write pointer or fence BO, or the doorbell.
pub const STEP_QUEUE_ACCESS: &str = "queue memory access";

/// What `USERQ CREATE` needs for a compute queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CreateCompute {
    pub(crate) doorbell_handle: u32,
    pub(crate) doorbell_offset: u32,
    pub(crate) flags: u32,
    pub(crate) queue_va: u64,
    pub(crate) queue_size: u64,
    pub(crate) rptr_va: u64,
    pub(crate) wptr_va: u64,
    pub(crate) eop_va: u64,
}

impl Dev {
    /// `USERQ CREATE` of a COMPUTE queue; the MQD (`drm_amdgpu_userq_mqd_compute_gfx11`,
    /// 8 bytes) is passed through a `user` buffer. Returns the queue id.
    pub(crate) fn userq_create(&mut self, c: CreateCompute) -> Result<u32> {
        let mut mqd = bytemuck::bytes_of(&UserqMqdComputeGfx11 { eop_va: c.eop_va }).to_vec();
        let input = UserqIn {
            op: AMDGPU_USERQ_OP_CREATE,
            queue_id: 0,
            ip_type: AMDGPU_HW_IP_COMPUTE,
            doorbell_handle: c.doorbell_handle,
            doorbell_offset: c.doorbell_offset,
            flags: c.flags,
            queue_va: c.queue_va,
            queue_size: c.queue_size,
            rptr_va: c.rptr_va,
            wptr_va: c.wptr_va,
            mqd: user_ptr(&mqd),
            mqd_size: USERQ_MQD_COMPUTE_SIZE as u64,
        };
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_USERQ, &input);
        self.call(STEP_USERQ_CREATE, DRM_IOCTL_AMDGPU_USERQ, &mut arg, &mut [&mut mqd[..]])?;
        Ok(Dev::decode::<UserqOut>(STEP_USERQ_CREATE, &arg)?.queue_id)
    }

    /// `USERQ FREE`: every field but `op` and `queue_id` zero (the kernel's
    /// `amdgpu_userq_input_args_validate` refuses anything else with `EINVAL`).
    pub(crate) fn userq_free(&mut self, queue_id: u32) -> Result<()> {
        let input = UserqIn { op: AMDGPU_USERQ_OP_FREE, queue_id, ..UserqIn::default() };
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_USERQ, &input);
        self.call(STEP_USERQ_FREE, DRM_IOCTL_AMDGPU_USERQ, &mut arg, &mut [])
    }
}
