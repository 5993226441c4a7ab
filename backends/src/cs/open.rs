//! Bring-up and release of a CS context: `INFO HW_IP_INFO(COMPUTE)`, `INFO DEV_INFO`,
//! `CTX ALLOC`, and [`Resources`], which releases whatever was acquired in reverse order, after
//! a failed step of `open` and on drop alike.

use std::sync::Arc;

use pm4rt_core::abi::drm::{
    InfoDevice, InfoHwIp, InfoQueryHwIp, AMDGPU_HW_IP_COMPUTE, AMDGPU_INFO_DEV_INFO,
    AMDGPU_INFO_HW_IP_INFO,
};
use pm4rt_core::{Driver, Error, GfxTarget, Result};

use super::config::CsConfig;
use super::ioctls::{STEP_INFO_DEV, STEP_INFO_HW_IP};
use crate::common::bo_table::BoTable;
use crate::common::va::VaAllocator;
use crate::drm;
use crate::drm::bo::Bo;
use crate::drm::ioctls::Dev;

/// Everything a CS submitter holds, released in reverse by `Drop`: the caller's BOs newest
/// first (`GEM_VA UNMAP` if mapped, munmap, `GEM_CLOSE`), `CTX FREE`, and last the render
/// node (closed by its descriptor). Errors are ignored; nothing here panics. The kernel keeps
/// BOs referenced by queued jobs alive itself.
pub(super) struct Resources {
    pub(super) dev: Dev,
    pub(super) va: VaAllocator,
    pub(super) ctx_id: u32,
    /// The caller's BOs.
    pub(super) bos: BoTable<Bo>,
}

impl Drop for Resources {
    fn drop(&mut self) {
        for bo in self.bos.drain_newest_first() {
            let _ = self.dev.release_bo(&mut self.va, bo);
        }
        let _ = self.dev.ctx_free(self.ctx_id);
    }
}

/// What `open` brings up.
pub(super) struct Opened {
    pub(super) res: Resources,
    pub(super) hw_ip: InfoHwIp,
    pub(super) dev_info: InfoDevice,
    pub(super) gfx: GfxTarget,
}

/// Open the render node of `config` and allocate a context; on failure the node is closed
/// (by `Drop` of its descriptor) before the error returns.
pub(super) fn open(driver: Arc<dyn Driver>, config: &CsConfig) -> Result<Opened> {
    let mut dev = Dev::open(driver, &config.path)?;
    let compute = InfoQueryHwIp { ip_type: AMDGPU_HW_IP_COMPUTE, ip_instance: 0 };
    let hw_ip: InfoHwIp = dev.info(STEP_INFO_HW_IP, AMDGPU_INFO_HW_IP_INFO, compute)?;
    if hw_ip.available_rings == 0 {
        return Err(Error::Unsupported(format!(
            "{}: no compute ring available (HW_IP_INFO COMPUTE available_rings = 0)",
            config.path
        )));
    }
    if config.ring >= 32 || hw_ip.available_rings & (1 << config.ring) == 0 {
        return Err(Error::Unsupported(format!(
            "{}: compute ring {} not available (available_rings {:#x})",
            config.path, config.ring, hw_ip.available_rings
        )));
    }
    let dev_info: InfoDevice = dev.info(
        STEP_INFO_DEV,
        AMDGPU_INFO_DEV_INFO,
        InfoQueryHwIp { ip_type: 0, ip_instance: 0 },
    )?;
    let va = drm::target::va_allocator(&config.path, &dev_info)?;
    let gfx = drm::target::gfx_target(
        &config.path,
        hw_ip.ip_discovery_version,
        config.gfx,
        "; set CsConfig::gfx if the kernel does not report it",
    )?;
    let ctx_id = dev.ctx_alloc(config.priority)?;
    Ok(Opened { res: Resources { dev, va, ctx_id, bos: BoTable::default() }, hw_ip, dev_info, gfx })
}
