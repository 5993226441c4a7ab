//! [`Preset`]: the machine an [`super::EmulatedDevice`] pretends to be.
//!
//! Every field is plain data so tests can describe new machines (`Preset { .., ..Preset::
//! r9700_gfx1201() }`). Later helpers (KFD, user queues) add fields here; keep the
//! constructors the single place that fills them.

use std::collections::BTreeMap;
use std::time::Duration;

use pm4rt_core::GfxTarget;

/// `AMDGPU_GMC_HOLE_START`: first VA of the canonical hole (amdgpu_gmc.h).
pub const GMC_HOLE_START: u64 = 0x0000_8000_0000_0000;
/// `AMDGPU_GMC_HOLE_END`: first VA after the canonical hole (amdgpu_gmc.h).
pub const GMC_HOLE_END: u64 = 0xFFFF_8000_0000_0000;
/// `AMDGPU_GMC_HOLE_MASK`: GEM_VA masks the address with it after the hole check.
pub const GMC_HOLE_MASK: u64 = 0x0000_FFFF_FFFF_FFFF;
/// `AMDGPU_VA_RESERVED_BOTTOM` (1 << 16, amdgpu_vm.h since Linux 6.9).
pub const VA_RESERVED_BOTTOM: u64 = 1 << 16;
/// `AMDGPU_VA_RESERVED_TOP` = TRAP (2 << 12) + SEQ64 (2 << 20) + CSA (2 << 20)
/// (amdgpu_vm.h, Linux 6.10+). A later patch adds TRAP_UQ (3 << 12); see
/// [`Preset::va_reserved_top`].
pub const VA_RESERVED_TOP: u64 = (2 << 12) + (2 << 20) + (2 << 20);

/// What the emulated device looks like. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// Human-readable name, e.g. `"R9700 (gfx1201), Linux 6.17"`.
    pub name: String,
    /// The GPU generation (engine dispatch hooks are told this).
    pub gfx: GfxTarget,
    /// Device nodes `open` accepts (anything else is `ENOENT`).
    pub render_nodes: Vec<String>,
    /// `uname -r`.
    pub kernel_release: String,
    /// PCI device id reported by DEV_INFO.
    pub device_id: u32,
    /// PCI revision reported by DEV_INFO.
    pub pci_rev: u32,
    /// `AMDGPU_FAMILY_*` reported by DEV_INFO.
    pub family: u32,
    /// GC IP version (major, minor, revision), e.g. (12, 0, 1) for gfx1201.
    pub gc_version: (u8, u8, u8),
    /// `vm_manager.max_pfn * AMDGPU_GPU_PAGE_SIZE`: the VM size (2^48 on GFX11/12:
    /// gmc_v11_0 / gmc_v12_0 call `amdgpu_vm_adjust_size(adev, 256 * 1024, 9, 3, 48)`).
    pub vm_size: u64,
    /// `AMDGPU_VA_RESERVED_BOTTOM` of the kernel version emulated.
    pub va_reserved_bottom: u64,
    /// `AMDGPU_VA_RESERVED_TOP` of the kernel version emulated.
    pub va_reserved_top: u64,
    /// Compute rings available (HW_IP_INFO `available_rings` has this many low bits set; CS
    /// accepts `ring < min(this, 4)`, 4 being `amdgpu_ctx_num_entities[COMPUTE]`).
    pub compute_rings: u32,
    /// HW_IP_INFO `ib_start_alignment` / `ib_size_alignment` for GFX and COMPUTE.
    pub ib_alignment: u32,
    /// Compute units (DEV_INFO `cu_active_number`).
    pub cu_count: u32,
    /// Wave size reported by DEV_INFO.
    pub wave_front_size: u32,
    /// Whether the process may create HIGH priority contexts (CAP_SYS_NICE or DRM master);
    /// without it `amdgpu_ctx_priority_permit` gives `EACCES`.
    pub cap_sys_nice: bool,
    /// Whether TMZ is enabled (`AMDGPU_GEM_CREATE_ENCRYPTED` is `EINVAL` without it).
    pub tmz: bool,
    /// Value of `/sys/module/amdgpu/parameters/user_queue` (-1 default, 0 off, 1/2 on).
    pub user_queue: i32,
    /// DEV_INFO `userq_ip_mask` (`1 << AMDGPU_HW_IP_*` of the IPs with user queues).
    pub userq_ip_mask: u32,
    /// HW_IP_INFO `userq_num_slots` for COMPUTE (0 = none / older kernel).
    pub userq_compute_slots: u32,
    /// Whether `INFO UQ_FW_AREAS` answers COMPUTE. Linux 6.17's `amdgpu_info_ioctl` handles
    /// only `AMDGPU_HW_IP_GFX` there and returns `EINVAL` for COMPUTE (false, every 6.17
    /// preset); the compute case (`amdgpu_userq_metadata_info_compute`, amdgpu_kms.c) came
    /// with a later kernel (true models that kernel).
    pub uq_fw_areas_compute: bool,
    /// Whether `/dev/kfd` exists (the KFD helper extends this).
    pub kfd_present: bool,
    /// Whether KFD queues retire work (an R9700 on 6.17 with the default user_queue=-1 creates them, never retires).
    pub kfd_queues_retire: bool,
    /// The KFD ioctl version (major, minor) `GET_VERSION` reports (`KFD_IOCTL_MAJOR_VERSION` /
    /// `KFD_IOCTL_MINOR_VERSION` of `include/uapi/linux/kfd_ioctl.h`). Ioctls newer than it
    /// are unknown to the emulated KFD (`RUNTIME_ENABLE` arrived with 1.13).
    pub kfd_version: (u32, u32),
    /// Longest a WAIT_CS with an "infinite" timeout blocks before reporting busy. The kernel
    /// blocks forever; the emulator bounds every wait.
    pub wait_cap: Duration,
    /// Extra sysfs / procfs files (`path -> contents`), on top of the generated ones.
    pub extra_files: BTreeMap<String, String>,
    /// Which executor the emulated GPU runs pm4rt's kernels with; `None`: `PM4RT_SIM_EXEC` at
    /// each dispatch, like the simulator tier (see [`crate::dispatch`]).
    pub exec: Option<crate::isa::ExecMode>,
}

impl Default for Preset {
    fn default() -> Self {
        Preset::r9700_gfx1201()
    }
}

impl Preset {
    /// A healthy AMD Radeon AI PRO R9700 (Navi 48, gfx1201, PCI id 0x7551) on Linux 6.17 with
    /// the default `amdgpu.user_queue=-1`: CS works, no IP has user queues.
    pub fn r9700_gfx1201() -> Preset {
        Preset {
            name: "AMD Radeon AI PRO R9700 (gfx1201), Linux 6.17".into(),
            gfx: GfxTarget::Gfx1201,
            render_nodes: vec!["/dev/dri/renderD128".into()],
            kernel_release: "6.17.0".into(),
            device_id: 0x7551,
            pci_rev: 0xC0,
            // AMDGPU_FAMILY_GC_12_0_0 (amdgpu_drm.h).
            family: 152,
            gc_version: (12, 0, 1),
            vm_size: 1 << 48,
            va_reserved_bottom: VA_RESERVED_BOTTOM,
            va_reserved_top: VA_RESERVED_TOP,
            compute_rings: 4,
            ib_alignment: 32,
            cu_count: 64,
            wave_front_size: 32,
            cap_sys_nice: false,
            tmz: false,
            user_queue: -1,
            userq_ip_mask: 0,
            userq_compute_slots: 0,
            uq_fw_areas_compute: false,
            kfd_present: true,
            kfd_queues_retire: true,
            // KFD_IOCTL_MINOR_VERSION 18 ("Rename pad in set_memory_policy_args to
            // misc_process_flag").
            kfd_version: (1, 18),
            wait_cap: Duration::from_secs(10),
            extra_files: BTreeMap::new(),
            exec: None,
        }
    }

    /// A Radeon RX 7900 XTX (Navi 31, gfx1100, PCI id 0x744C) on Linux 6.17.
    pub fn rx7900xtx_gfx1100() -> Preset {
        Preset {
            name: "AMD Radeon RX 7900 XTX (gfx1100), Linux 6.17".into(),
            gfx: GfxTarget::Gfx1100,
            device_id: 0x744C,
            pci_rev: 0xC8,
            // AMDGPU_FAMILY_GC_11_0_0 (amdgpu_drm.h).
            family: 145,
            gc_version: (11, 0, 0),
            cu_count: 96,
            ..Preset::r9700_gfx1201()
        }
    }

    /// Lowest VA GEM_VA accepts (`dev_info.virtual_address_offset`).
    pub fn va_start(&self) -> u64 {
        self.va_reserved_bottom
    }

    /// `vm_size - AMDGPU_VA_RESERVED_TOP`: the end (exclusive, after masking with the hole
    /// mask) of what GEM_VA accepts.
    pub fn va_limit(&self) -> u64 {
        self.vm_size.saturating_sub(self.va_reserved_top)
    }

    /// `dev_info.virtual_address_max`: `min(vm_size - reserved top, AMDGPU_GMC_HOLE_START)`
    /// (amdgpu_info_ioctl).
    pub fn va_max(&self) -> u64 {
        self.va_limit().min(GMC_HOLE_START)
    }

    /// `ip_discovery_version` of GC: `major << 16 | minor << 8 | rev`.
    pub fn gc_ip_discovery_version(&self) -> u32 {
        let (a, b, c) = self.gc_version;
        (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c)
    }

    /// The text files the emulated sysfs holds (generated plus [`Preset::extra_files`]).
    pub fn files(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert(
            "/sys/module/amdgpu/parameters/user_queue".to_string(),
            format!("{}\n", self.user_queue),
        );
        f.insert("/proc/sys/kernel/osrelease".to_string(), format!("{}\n", self.kernel_release));
        for (k, v) in &self.extra_files {
            f.insert(k.clone(), v.clone());
        }
        f
    }
}
