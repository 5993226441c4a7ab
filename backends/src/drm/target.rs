//! What the DRM tiers (cs and umq) derive from `INFO` at open: the GPU target and the usable
//! GPU VA range.

use pm4rt_core::abi::drm::InfoDevice;
use pm4rt_core::{Error, GfxTarget, Result, PAGE_SIZE};

use crate::common::va::VaAllocator;

/// The [`GfxTarget`] for a GC IP version as HW_IP_INFO reports it (`ip_discovery_version`:
/// bits 23:16 major, 15:8 minor, 7:0 revision). The kernel fills it for COMPUTE from the GC
/// IP (`amdgpu_hw_ip_info`: COMPUTE maps to `AMD_IP_BLOCK_TYPE_GFX`,
/// `IP_VERSION_MAJ_MIN_REV(GC_HWIP)`), and KFD derives `gfx_target_version` from the same GC
/// version (`kfd_device.c`: `IP_VERSION(12, 0, 1)` -> 120001), so the KFD mapping applies.
/// `None` for 0 (not reported) or an unsupported target.
pub fn gfx_from_ip_discovery_version(v: u32) -> Option<GfxTarget> {
    let (major, minor, rev) = ((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF);
    if v == 0 {
        return None;
    }
    GfxTarget::from_kfd_target_version(major * 10000 + minor * 100 + rev)
}

/// The allocator over DEV_INFO's `[virtual_address_offset, virtual_address_max)` at the
/// device's VA alignment (at least a page).
///
/// Errors: [`Error::Unsupported`] naming `path` when the range is empty.
pub(crate) fn va_allocator(path: &str, dev_info: &InfoDevice) -> Result<VaAllocator> {
    let range = dev_info.virtual_address_offset..dev_info.virtual_address_max;
    let align = PAGE_SIZE.max(u64::from(dev_info.virtual_address_alignment));
    let va = VaAllocator::new(range.clone(), align);
    if va.range().is_empty() {
        return Err(Error::Unsupported(format!(
            "{path}: DEV_INFO reports an empty VA range {:#x}..{:#x}",
            range.start, range.end
        )));
    }
    Ok(va)
}

/// The target: the one HW_IP_INFO's `ip_discovery_version` names, else `configured`.
///
/// Errors: [`Error::Unsupported`] naming `path` when both are known and disagree, or neither
/// is (then `hint` is appended to the message).
pub(crate) fn gfx_target(
    path: &str,
    ip_discovery_version: u32,
    configured: Option<GfxTarget>,
    hint: &str,
) -> Result<GfxTarget> {
    match (gfx_from_ip_discovery_version(ip_discovery_version), configured) {
        (Some(d), Some(c)) if d != c => Err(Error::Unsupported(format!(
            "{path}: configured for {c} but the kernel reports GC IP {ip_discovery_version:#08x} \
             ({d})"
        ))),
        (Some(d), _) => Ok(d),
        (None, Some(c)) => Ok(c),
        (None, None) => Err(Error::Unsupported(format!(
            "{path}: GC IP version {ip_discovery_version:#08x} is not a supported target \
             (gfx1100, gfx1201){hint}"
        ))),
    }
}
