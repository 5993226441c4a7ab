//! Bring-up and release of a user queue: the probe, the queue's own BOs in Mesa's order
//! (`amdgpu_userq.c: amdgpu_userq_init`), `USERQ CREATE`, and [`Resources`], which releases
//! whatever was acquired in reverse order, after a failed step of `open` and on drop alike.

use std::sync::Arc;

use pm4rt_core::abi::drm::{
    AMDGPU_GEM_CREATE_NO_CPU_ACCESS, AMDGPU_GEM_CREATE_UNCACHED, AMDGPU_GEM_DOMAIN_DOORBELL,
    AMDGPU_GEM_DOMAIN_GTT, AMDGPU_GEM_DOMAIN_VRAM, AMDGPU_VM_MTYPE_UC,
};
use pm4rt_core::{Driver, Error, GfxTarget, Result, PAGE_SIZE};

use super::config::{UmqConfig, DOORBELL_BO_SIZE, FENCE_BO_SIZE, POINTER_BO_SIZE};
use super::ioctls::{CreateCompute, STEP_QUEUE_ACCESS};
use super::probe::{self, UmqProbe};
use super::vm::Vm;
use crate::common::bo_table::BoTable;
use crate::common::va::VaAllocator;
use crate::drm::bo::{self, Bo, BoSpec};
use crate::drm::ioctls::Dev;

/// Indices of the queue's own BOs, in creation order.
pub(super) const Q_DOORBELL: usize = 0;
pub(super) const Q_RING: usize = 1;
pub(super) const Q_WPTR: usize = 2;
pub(super) const Q_RPTR: usize = 3;
pub(super) const Q_EOP: usize = 4;
pub(super) const Q_FENCE: usize = 5;

/// Everything a user queue holds, released in reverse by `Drop`: `USERQ FREE` first (the queue
/// stops reading its ring before its memory goes; the kernel waits for the queue's last
/// fence), the caller's BOs newest first, the queue's BOs newest first (fence, EOP, rptr,
/// wptr, ring, doorbell), `SYNCOBJ_DESTROY`, and last the render node (closed by its
/// descriptor). Errors are ignored; nothing here panics.
pub(super) struct Resources {
    pub(super) vm: Vm,
    /// The queue's BOs, indexed by the `Q_*` constants.
    pub(super) queue_bos: Vec<Bo>,
    pub(super) queue_id: Option<u32>,
    /// The caller's BOs.
    pub(super) bos: BoTable<Bo>,
}

impl Drop for Resources {
    fn drop(&mut self) {
        if let Some(q) = self.queue_id.take() {
            let _ = self.vm.dev.userq_free(q);
        }
        for bo in self.bos.drain_newest_first() {
            let _ = self.vm.release(bo);
        }
        while let Some(bo) = self.queue_bos.pop() {
            let _ = self.vm.release(bo);
        }
        let _ = self.vm.dev.syncobj_destroy(self.vm.vm_sync);
    }
}

/// What `open` brings up.
pub(super) struct Opened {
    pub(super) res: Resources,
    pub(super) probe: UmqProbe,
    pub(super) gfx: GfxTarget,
    pub(super) device_id: u32,
}

/// Run the capability probe on the render node of `config` (open, 3 INFO queries, close).
pub(super) fn probe_only(driver: Arc<dyn Driver>, config: &UmqConfig) -> Result<UmqProbe> {
    let mut dev = Dev::open(driver, &config.path)?;
    Ok(probe::probe(&mut dev, &config.user_queue_param))
}

/// Open the render node, probe it, and create the queue; on failure everything acquired is
/// released (by `Drop` of what holds it) before the error returns.
pub(super) fn open(driver: Arc<dyn Driver>, config: &UmqConfig) -> Result<Opened> {
    config.check()?;
    let mut dev = Dev::open(driver, &config.path)?;
    let probe = probe::probe(&mut dev, &config.user_queue_param);
    if let Some(e) = probe.error(&config.path) {
        return Err(e);
    }
    let (gfx, va, device_id) = target(&probe, config)?;
    let vm_sync = dev.syncobj_create()?;
    let mut res = Resources {
        vm: Vm { dev, va, vm_sync, vm_point: 0 },
        queue_bos: Vec::with_capacity(6),
        queue_id: None,
        bos: BoTable::default(),
    };
    res.queue_id = Some(create_queue(&mut res, config, &probe)?);
    Ok(Opened { res, probe, gfx, device_id })
}

/// The GPU target, the VA allocator and the PCI device id from the probe's INFO answers.
fn target(probe: &UmqProbe, config: &UmqConfig) -> Result<(GfxTarget, VaAllocator, u32)> {
    let (Some(hw_ip), Some(dev_info)) = (probe.hw_ip, probe.dev_info) else {
        return Err(Error::Unsupported("probe returned no device information".into()));
    };
    let va = crate::drm::target::va_allocator(&config.path, &dev_info)?;
    let gfx =
        crate::drm::target::gfx_target(&config.path, hw_ip.ip_discovery_version, config.gfx, "")?;
    Ok((gfx, va, dev_info.device_id))
}

/// Create the queue's BOs (pushed onto `res.queue_bos` as they are made) and the queue.
fn create_queue(res: &mut Resources, config: &UmqConfig, probe: &UmqProbe) -> Result<u32> {
    let (vm, qbos) = (&mut res.vm, &mut res.queue_bos);
    let eop = probe.eop_layout();
    let eop_size = u64::from(eop.size)
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or_else(|| Error::Unsupported("EOP size overflows".into()))?;
    // Page flags of the CP-read queue buffers: as every mapping (bo::VM_FLAGS).
    let rwx = bo::VM_FLAGS;
    // Ring, wptr and rptr bypass the GPU L2 so the CP and the CPU see each other's stores:
    // Mesa's amdgpu_userq.c creates them RADEON_FLAG_GL2_BYPASS, which amdgpu_create_bo
    // maps with AMDGPU_VM_MTYPE_UC.
    let uc = rwx | AMDGPU_VM_MTYPE_UC;
    let gtt = |size, flags, vm_flags| {
        let spec = BoSpec { size, domains: AMDGPU_GEM_DOMAIN_GTT, flags, cpu: true, vm_flags };
        (spec, PAGE_SIZE)
    };
    let specs = [
        // Q_DOORBELL: CPU-mapped only; the kernel pins it in the doorbell aperture.
        (
            BoSpec {
                size: DOORBELL_BO_SIZE,
                domains: AMDGPU_GEM_DOMAIN_DOORBELL,
                flags: 0,
                cpu: true,
                vm_flags: 0,
            },
            0,
        ),
        gtt(config.ring_bytes, 0, uc), // Q_RING
        gtt(POINTER_BO_SIZE, 0, uc),   // Q_WPTR
        gtt(POINTER_BO_SIZE, 0, uc),   // Q_RPTR
        (
            // Q_EOP: GPU only, at the firmware's alignment.
            BoSpec {
                size: eop_size,
                domains: AMDGPU_GEM_DOMAIN_VRAM,
                flags: AMDGPU_GEM_CREATE_NO_CPU_ACCESS,
                cpu: false,
                vm_flags: rwx,
            },
            u64::from(eop.alignment),
        ),
        gtt(FENCE_BO_SIZE, AMDGPU_GEM_CREATE_UNCACHED, rwx), // Q_FENCE
    ];
    for (spec, va_align) in specs {
        let bo = vm.create(spec, va_align)?;
        qbos.push(bo);
    }
    // Fresh GTT BOs are zeroed by the kernel; write the pointers anyway so a reused page
    // cannot start the queue at garbage.
    for i in [Q_WPTR, Q_RPTR, Q_FENCE] {
        if let Some(m) = &qbos[i].cpu {
            m.store_u64(0, 0).map_err(|e| Error::io(STEP_QUEUE_ACCESS, e))?;
        }
    }
    // The queue's buffers must be mapped in the page tables before the CP reads them.
    vm.wait_vm(config.vm_update_timeout)?;
    let va = |i: usize| qbos[i].va.unwrap_or(0);
    vm.dev.userq_create(CreateCompute {
        doorbell_handle: qbos[Q_DOORBELL].gem,
        doorbell_offset: config.doorbell_index,
        flags: config.priority,
        queue_va: va(Q_RING),
        queue_size: config.ring_bytes,
        rptr_va: va(Q_RPTR),
        wptr_va: va(Q_WPTR),
        eop_va: va(Q_EOP),
    })
}
