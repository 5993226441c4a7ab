//! What the CP takes as a queue's write pointer when its doorbell is written, for KFD PM4
//! queues and amdgpu user queues alike.
//!
//! A queue has two copies of its write pointer: the 64-bit value written to its doorbell and
//! the 64-bit value at its write-pointer address in memory. A running (mapped) queue's CP
//! takes the doorbell's value (`CP_HQD_PQ_DOORBELL_CONTROL.DOORBELL_EN`), but whenever the
//! queue is (re)loaded the write pointer comes from memory:
//!
//! - KFD: `load_mqd` passes `p->write_ptr` to the kgd `hqd_load`, which does not read it with
//!   `get_user` but "trigger[s] a one-shot polling read from memory in the CP"
//!   (the kgd `hqd_load`, e.g. amdgpu_amdkfd_gfx_v9.c `kgd_gfx_v9_hqd_load`; the MQD's
//!   `cp_hqd_pq_wptr_poll_addr` is `q->write_ptr`, kfd_mqd_manager_v11.c `update_mqd`).
//! - User queues: MES maps the queue with `wptr_addr` = the wptr VA and `wptr_mc_addr` = the
//!   wptr BO's GART address ("FW expects WPTR BOs to be mapped into GART",
//!   mes_userqueue.c `mes_userq_mqd_create` / `mes_userq_map`), and the MQD's
//!   `cp_hqd_pq_wptr_poll_addr` is the wptr VA (`*_compute_mqd_init`).
//!
//! The kernel and the scheduler firmware preempt and re-map queues at any time (evictions,
//! oversubscription, suspend), so a client must keep both copies equal: store the write
//! pointer, then ring the doorbell with the same value (what the kernel's own
//! `gfx_v11_0_ring_set_wptr_compute` does: `atomic64_set(wptr_cpu_addr)` then
//! `WDOORBELL64`). The emulator models a queue that may have been re-mapped at every doorbell:
//! it consumes only up to the smaller of the two values, so a client that rings the doorbell
//! without storing the write pointer (or the reverse) runs nothing new.

use crate::memory::GpuMemory;

/// The write pointer the queue runs to after its doorbell received `doorbell`, given its
/// write-pointer address `wptr_va`; `None` (nothing new runs) when that address cannot be
/// read.
pub(crate) fn cp_wptr(mem: &GpuMemory, doorbell: u64, wptr_va: u64) -> Option<u64> {
    mem.read_u64(wptr_va).ok().map(|stored| stored.min(doorbell))
}
