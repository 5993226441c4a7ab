//! INFO queries: HW_IP_INFO, HW_IP_COUNT, DEV_INFO and the other requests the backends make
//! (`amdgpu_kms.c: amdgpu_info_ioctl`).

use super::*;

/// `amdgpu_info_ioctl` (HW_IP_INFO, DEV_INFO).
pub(crate) fn info(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: Info = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    if a.return_size == 0 || a.return_pointer == 0 {
        return Err(s.fail(Errno::EINVAL, "amdgpu_info_ioctl: return_size or return_pointer is 0"));
    }
    let p = &s.preset;
    let bytes: Vec<u8> = match a.query {
        AMDGPU_INFO_HW_IP_INFO => {
            let q = a.query_hw_ip();
            if q.ip_instance >= HW_IP_INSTANCE_MAX_COUNT {
                return Err(s.fail(Errno::EINVAL, "amdgpu_hw_ip_info: ip_instance"));
            }
            let rings = match q.ip_type {
                AMDGPU_HW_IP_GFX => 1,
                AMDGPU_HW_IP_COMPUTE => (1u32 << p.compute_rings.min(31)) - 1,
                t => return Err(s.fail(Errno::EINVAL, format!("HW_IP_INFO type {t} not emulated"))),
            };
            let ip = InfoHwIp {
                hw_ip_version_major: u32::from(p.gc_version.0),
                hw_ip_version_minor: u32::from(p.gc_version.1),
                capabilities_flags: 0,
                ib_start_alignment: p.ib_alignment,
                ib_size_alignment: p.ib_alignment,
                available_rings: rings,
                ip_discovery_version: p.gc_ip_discovery_version(),
                userq_num_slots: if q.ip_type == AMDGPU_HW_IP_COMPUTE {
                    p.userq_compute_slots
                } else {
                    0
                },
                pad: 0,
            };
            bytemuck::bytes_of(&ip).to_vec()
        }
        AMDGPU_INFO_DEV_INFO => {
            let mut d = InfoDevice {
                device_id: p.device_id,
                pci_rev: p.pci_rev,
                family: p.family,
                cu_active_number: p.cu_count,
                wave_front_size: p.wave_front_size,
                virtual_address_offset: p.va_start(),
                virtual_address_max: p.va_max(),
                virtual_address_alignment: PAGE_SIZE as u32,
                gart_page_size: PAGE_SIZE as u32,
                userq_ip_mask: p.userq_ip_mask,
                ..InfoDevice::default()
            };
            if p.va_limit() > GMC_HOLE_START {
                // amdgpu_info_ioctl: the high range mirrors the low one above the hole.
                d.high_va_offset = GMC_HOLE_END;
                d.high_va_max = GMC_HOLE_END | p.va_limit();
            }
            bytemuck::bytes_of(&d).to_vec()
        }
        AMDGPU_INFO_UQ_FW_AREAS => match crate::emu::userq::uq_fw_areas(p, a.query_hw_ip()) {
            Ok(b) => b,
            Err(e) => return Err(s.fail(e, "amdgpu_info_ioctl: UQ_FW_AREAS for this IP")),
        },
        q => {
            return Err(s.fail(Errno::EINVAL, format!("amdgpu_info_ioctl: invalid request {q:#x}")))
        }
    };
    // copy_to_user(out, &x, min(size, sizeof(x))).
    let n = (a.return_size as usize).min(bytes.len());
    user.write(a.return_pointer, &bytes[..n])
        .map_err(|e| s.fail(e, "amdgpu_info_ioctl: return_pointer not writable"))
}
