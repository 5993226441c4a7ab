//! The user-queue capability probe: by feature, never by kernel version.
//!
//! Checks, in order (each is read-only and cheap, so all run and every failing one is
//! reported):
//!
//! 1. `/sys/module/amdgpu/parameters/user_queue` (through
//!    [`pm4rt_core::Driver::read_file`]): user queues on GFX11/12 need `1` or `2`; `-1` (the
//!    default, "auto", off for these parts) and `0` are off. A missing file means a kernel
//!    without user queues (before Linux 6.16).
//! 2. `INFO DEV_INFO`: `userq_ip_mask` must have bit `1 << AMDGPU_HW_IP_COMPUTE` (the kernel
//!    sets a bit per IP with user-queue functions, `amdgpu_userq_get_supported_ip_mask`).
//! 3. `INFO HW_IP_INFO(COMPUTE)`: `userq_num_slots` must be non-zero (0 = none, or a kernel
//!    that does not report it).
//! 4. `INFO UQ_FW_AREAS(COMPUTE)`: optional metadata, never required. Linux 6.17's
//!    `amdgpu_info_ioctl` answers `AMDGPU_INFO_UQ_FW_AREAS` for `AMDGPU_HW_IP_GFX` only and
//!    returns `EINVAL` for COMPUTE; the compute case (`amdgpu_userq_metadata_info_compute`,
//!    amdgpu_kms.c, from `get_gfx_shadow_info`'s `eop_size` / `eop_alignment`) came with a
//!    later kernel, and returns `EOPNOTSUPP` on parts without that callback. Either errno
//!    means "not reported": the EOP buffer is then sized and aligned as Mesa does
//!    ([`MESA_EOP_SIZE`], [`MESA_EOP_ALIGNMENT`]). Any other errno, or an answer with a zero
//!    size or a non-power-of-two alignment, is a failure.
//!
//! The EOP buffer used is [`UmqProbe::eop_layout`]: the kernel's size and alignment when it
//! answered, never below Mesa's (the newer kernels' `mes_userq_mqd_create` validates the EOP
//! VA over `max(PAGE_SIZE, AMDGPU_GPU_PAGE_SIZE)` whatever the reported size).
//!
//! A `USERQ CREATE` is attempted only when the probe found no failure.

use std::fmt;

use pm4rt_core::abi::drm::{
    InfoDevice, InfoHwIp, InfoQueryHwIp, InfoUqMetadataCompute, AMDGPU_HW_IP_COMPUTE,
    AMDGPU_INFO_DEV_INFO, AMDGPU_INFO_HW_IP_INFO, AMDGPU_INFO_UQ_FW_AREAS,
};
use pm4rt_core::{Errno, Error, Result};

use super::ioctls::{STEP_INFO_DEV, STEP_INFO_HW_IP, STEP_INFO_UQ_FW_AREAS};
use crate::drm::ioctls::Dev;

/// EOP buffer size when the kernel does not report one: Mesa's `amdgpu_userq_init`
/// (src/gallium/winsys/amdgpu/drm/amdgpu_userq.c) creates the compute `eop_bo` of
/// `aws->info.gart_page_size` bytes (one 4 KiB GART page).
pub const MESA_EOP_SIZE: u32 = 4096;
/// EOP buffer VA alignment when the kernel does not report one: Mesa's `amdgpu_userq_init`
/// creates the compute `eop_bo` with alignment 256 (also the kernel's `eop_alignment` in
/// `gfx_v11_0_get_gfx_shadow_info_nocheck` / gfx_v12_0's, where it exists).
pub const MESA_EOP_ALIGNMENT: u32 = 256;

/// The module parameter that enables amdgpu user queues.
pub const USER_QUEUE_PARAM: &str = "/sys/module/amdgpu/parameters/user_queue";

/// One failing probe check, carrying the value it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The `user_queue` parameter could not be read (no amdgpu module, or a kernel without
    /// user queues).
    ParamUnreadable {
        /// The path read.
        path: String,
        /// The errno of the read.
        errno: Errno,
    },
    /// The `user_queue` parameter is not an integer.
    ParamUnparsable {
        /// What the file held (trimmed).
        text: String,
    },
    /// `amdgpu.user_queue` is `-1` (default: off on GFX11/12) or `0` (off).
    ParamOff {
        /// The value read.
        value: i32,
    },
    /// DEV_INFO `userq_ip_mask` lacks `1 << AMDGPU_HW_IP_COMPUTE`.
    NoComputeInIpMask {
        /// The mask seen.
        mask: u32,
    },
    /// HW_IP_INFO(COMPUTE) `userq_num_slots` is 0.
    NoComputeSlots {
        /// The value seen (0).
        slots: u32,
    },
    /// `INFO UQ_FW_AREAS(COMPUTE)` failed with an errno other than the "not reported" ones
    /// (`EINVAL`, `EOPNOTSUPP`).
    FwAreasFailed {
        /// The errno.
        errno: Errno,
    },
    /// UQ_FW_AREAS(COMPUTE) reported an unusable EOP size or alignment (zero, or an alignment
    /// that is not a power of two).
    BadEop {
        /// `eop_size` seen.
        size: u32,
        /// `eop_alignment` seen.
        alignment: u32,
    },
    /// Another ioctl of the probe failed (DEV_INFO, HW_IP_INFO).
    Io {
        /// The step.
        step: &'static str,
        /// The errno.
        errno: Errno,
    },
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::ParamUnreadable { path, errno } => write!(
                f,
                "{path} unreadable ({} {}): kernel without amdgpu user queues",
                errno.name(),
                errno.0
            ),
            ProbeFailure::ParamUnparsable { text } => {
                write!(f, "amdgpu.user_queue = {text:?} is not an integer")
            }
            ProbeFailure::ParamOff { value } => write!(
                f,
                "amdgpu.user_queue = {value} (user queues off{}; boot with amdgpu.user_queue=1 or 2)",
                if *value == -1 { ", the default" } else { "" }
            ),
            ProbeFailure::NoComputeInIpMask { mask } => {
                write!(f, "DEV_INFO userq_ip_mask = {mask:#x} lacks COMPUTE (bit 1)")
            }
            ProbeFailure::NoComputeSlots { slots } => {
                write!(f, "HW_IP_INFO(COMPUTE) userq_num_slots = {slots}: no compute user-queue slots")
            }
            ProbeFailure::FwAreasFailed { errno } => write!(
                f,
                "INFO UQ_FW_AREAS(COMPUTE) failed with {errno}"
            ),
            ProbeFailure::BadEop { size, alignment } => write!(
                f,
                "UQ_FW_AREAS(COMPUTE) eop_size = {size}, eop_alignment = {alignment}: unusable"
            ),
            ProbeFailure::Io { step, errno } => {
                write!(f, "{step} failed with {errno}")
            }
        }
    }
}

/// What the probe saw, and every check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UmqProbe {
    /// `amdgpu.user_queue`, when readable and an integer.
    pub user_queue: Option<i32>,
    /// DEV_INFO, when the query worked.
    pub dev_info: Option<InfoDevice>,
    /// HW_IP_INFO(COMPUTE), when the query worked.
    pub hw_ip: Option<InfoHwIp>,
    /// UQ_FW_AREAS(COMPUTE), when the kernel answered it.
    pub eop: Option<InfoUqMetadataCompute>,
    /// The errno of UQ_FW_AREAS(COMPUTE) when the kernel does not report compute metadata
    /// (`EINVAL` on Linux 6.17, `EOPNOTSUPP`); the EOP layout is then Mesa's.
    pub eop_not_reported: Option<Errno>,
    /// Every failed check, in probe order. Empty = user queues usable.
    pub failures: Vec<ProbeFailure>,
}

/// Size and VA alignment of the compute EOP buffer, and where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EopLayout {
    /// Bytes (>= [`MESA_EOP_SIZE`]).
    pub size: u32,
    /// VA alignment in bytes (a power of two >= [`MESA_EOP_ALIGNMENT`]).
    pub alignment: u32,
    /// True when the kernel reported the values (UQ_FW_AREAS(COMPUTE)).
    pub from_kernel: bool,
}

impl UmqProbe {
    /// The EOP buffer to create: the kernel's size and alignment when UQ_FW_AREAS(COMPUTE)
    /// answered (raised to Mesa's values if smaller), else Mesa's.
    pub fn eop_layout(&self) -> EopLayout {
        match self.eop {
            Some(m) => EopLayout {
                size: m.eop_size.max(MESA_EOP_SIZE),
                alignment: m.eop_alignment.max(MESA_EOP_ALIGNMENT),
                from_kernel: true,
            },
            None => {
                EopLayout { size: MESA_EOP_SIZE, alignment: MESA_EOP_ALIGNMENT, from_kernel: false }
            }
        }
    }

    /// True when every check passed.
    pub fn supported(&self) -> bool {
        self.failures.is_empty()
    }

    /// The first failure, if any.
    pub fn first_failure(&self) -> Option<&ProbeFailure> {
        self.failures.first()
    }

    /// [`Error::Unsupported`] describing every failure (`None` when supported).
    pub fn error(&self, path: &str) -> Option<Error> {
        if self.supported() {
            return None;
        }
        Some(Error::Unsupported(format!("{path}: amdgpu user queues unusable: {self}")))
    }
}

impl fmt::Display for UmqProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failures.is_empty() {
            let eop = self.eop_layout();
            return write!(
                f,
                "compute user queues available (user_queue = {}, slots = {}, EOP {} bytes aligned {}{})",
                self.user_queue.unwrap_or(0),
                self.hw_ip.map_or(0, |h| h.userq_num_slots),
                eop.size,
                eop.alignment,
                if eop.from_kernel { "" } else { ", Mesa's: UQ_FW_AREAS(COMPUTE) not reported" }
            );
        }
        for (i, fail) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{fail}")?;
        }
        Ok(())
    }
}

/// Parse the parameter file's text.
fn parse_param(text: &str) -> Result<i32, ProbeFailure> {
    let t = text.trim();
    t.parse::<i32>().map_err(|_| ProbeFailure::ParamUnparsable { text: t.to_string() })
}

/// Run every check on the open render node `dev` (reading the parameter at `param_path`).
pub(crate) fn probe(dev: &mut Dev, param_path: &str) -> UmqProbe {
    let mut p = UmqProbe::default();
    match dev.driver().read_file(param_path) {
        Ok(text) => match parse_param(&text) {
            Ok(v) => {
                p.user_queue = Some(v);
                if v <= 0 {
                    p.failures.push(ProbeFailure::ParamOff { value: v });
                }
            }
            Err(fail) => p.failures.push(fail),
        },
        Err(e) => p
            .failures
            .push(ProbeFailure::ParamUnreadable { path: param_path.to_string(), errno: e }),
    }
    let none = InfoQueryHwIp { ip_type: 0, ip_instance: 0 };
    let compute = InfoQueryHwIp { ip_type: AMDGPU_HW_IP_COMPUTE, ip_instance: 0 };
    match dev.info::<InfoDevice>(STEP_INFO_DEV, AMDGPU_INFO_DEV_INFO, none) {
        Ok(d) => {
            if d.userq_ip_mask & (1 << AMDGPU_HW_IP_COMPUTE) == 0 {
                p.failures.push(ProbeFailure::NoComputeInIpMask { mask: d.userq_ip_mask });
            }
            p.dev_info = Some(d);
        }
        Err(e) => p.failures.push(io_failure(e)),
    }
    match dev.info::<InfoHwIp>(STEP_INFO_HW_IP, AMDGPU_INFO_HW_IP_INFO, compute) {
        Ok(h) => {
            if h.userq_num_slots == 0 {
                p.failures.push(ProbeFailure::NoComputeSlots { slots: h.userq_num_slots });
            }
            p.hw_ip = Some(h);
        }
        Err(e) => p.failures.push(io_failure(e)),
    }
    match dev.info::<InfoUqMetadataCompute>(STEP_INFO_UQ_FW_AREAS, AMDGPU_INFO_UQ_FW_AREAS, compute)
    {
        Ok(m) => {
            if m.eop_size == 0 || !m.eop_alignment.is_power_of_two() {
                p.failures
                    .push(ProbeFailure::BadEop { size: m.eop_size, alignment: m.eop_alignment });
            }
            p.eop = Some(m);
        }
        Err(Error::Io { errno, .. }) if errno == Errno::EINVAL || errno == Errno::EOPNOTSUPP => {
            p.eop_not_reported = Some(errno);
        }
        Err(Error::Io { errno, .. }) => p.failures.push(ProbeFailure::FwAreasFailed { errno }),
        Err(e) => p.failures.push(io_failure(e)),
    }
    p
}

fn io_failure(e: Error) -> ProbeFailure {
    match e {
        Error::Io { step, errno } => ProbeFailure::Io { step, errno },
        // Dev::info only fails with Error::Io; keep the mapping total.
        _ => ProbeFailure::Io { step: "INFO", errno: Errno::EIO },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_parsing() {
        assert_eq!(parse_param("-1\n"), Ok(-1));
        assert_eq!(parse_param(" 2 "), Ok(2));
        assert_eq!(parse_param("Y\n"), Err(ProbeFailure::ParamUnparsable { text: "Y".into() }));
    }

    #[test]
    fn display_names_values() {
        let p = UmqProbe {
            failures: vec![
                ProbeFailure::ParamOff { value: -1 },
                ProbeFailure::NoComputeSlots { slots: 0 },
            ],
            ..UmqProbe::default()
        };
        let s = p.to_string();
        assert!(s.contains("amdgpu.user_queue = -1"), "{s}");
        assert!(s.contains("userq_num_slots = 0"), "{s}");
        assert!(!p.supported());
    }
}
