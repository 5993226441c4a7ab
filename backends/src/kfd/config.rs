//! How to open a [`KfdSubmitter`](super::KfdSubmitter): [`KfdConfig`], its defaults and the
//! limits KFD checks (`kfd_chardev.c: set_queue_properties_from_user`).

use std::time::Duration;

use pm4rt_core::abi::kfd::{KFD_MAX_QUEUE_PERCENTAGE, KFD_MAX_QUEUE_PRIORITY};
use pm4rt_core::{Domain, Error, Result};

use super::topology::DEFAULT_TOPOLOGY_ROOT;

/// The KFD device node.
pub const DEFAULT_KFD_PATH: &str = "/dev/kfd";
/// Default ring size in bytes (a power of two).
pub const DEFAULT_RING_BYTES: u64 = 64 * 1024;
/// Smallest ring KFD accepts without rounding (`KFD_MIN_QUEUE_RING_SIZE`, bytes).
pub const MIN_RING_BYTES: u64 = 1024;
/// Ring dwords one submission takes: ACQUIRE_MEM 8 + INDIRECT_BUFFER 4 + 2 x RELEASE_MEM 8.
pub const SUBMIT_DWORDS: usize = 28;
/// Minimum KFD major version.
pub const MIN_KFD_MAJOR: u32 = 1;
/// The first KFD version (major, minor) at which `open` calls `RUNTIME_ENABLE`: tinygrad's
/// `KFDIface.__init__` calls it when `kfd_ver >= (1, 14)`.
pub const RUNTIME_ENABLE_SINCE: (u32, u32) = (1, 14);

/// How to open a [`KfdSubmitter`](super::KfdSubmitter).
#[derive(Debug, Clone)]
pub struct KfdConfig {
    /// The KFD node ([`DEFAULT_KFD_PATH`]).
    pub kfd_path: String,
    /// The render node. `None`: the node of [`KfdConfig::gpu_id`] in the topology, else
    /// [`DEFAULT_RENDER_NODE`](pm4rt_core::DEFAULT_RENDER_NODE).
    pub render_path: Option<String>,
    /// Choose the GPU by KFD `gpu_id` instead of by the render node's minor.
    pub gpu_id: Option<u32>,
    /// The sysfs topology root ([`DEFAULT_TOPOLOGY_ROOT`]; tests point it at a fake tree).
    pub topology_root: String,
    /// Ring size in bytes: a power of two, at least [`MIN_RING_BYTES`], room for one
    /// submission, and at most `u32::MAX` (`kfd_ioctl_create_queue_args.ring_size` is 32-bit).
    pub ring_bytes: u64,
    /// Bytes of address space reserved for the queue and every BO (page multiple).
    pub va_window: u64,
    /// Put every user BO in this domain regardless of [`BoDesc::domain`](pm4rt_core::BoDesc::domain).
    pub force_domain: Option<Domain>,
    /// How long `wait_fence` spins on the fence before blocking in `WAIT_EVENTS`.
    pub poll: Duration,
    /// Longest `submit_ib` waits for ring space (the CP's read pointer) before failing with
    /// [`Error::Timeout`].
    pub space_timeout: Duration,
    /// `queue_priority` (0..=15).
    pub queue_priority: u32,
    /// `queue_percentage` (0..=100).
    pub queue_percentage: u32,
    /// Report the device as emulated in [`SubmitterInfo::emulated`](pm4rt_core::SubmitterInfo::emulated).
    pub emulated: bool,
}

impl Default for KfdConfig {
    fn default() -> Self {
        KfdConfig {
            kfd_path: DEFAULT_KFD_PATH.to_string(),
            render_path: None,
            gpu_id: None,
            topology_root: DEFAULT_TOPOLOGY_ROOT.to_string(),
            ring_bytes: DEFAULT_RING_BYTES,
            va_window: 16 << 30,
            force_domain: None,
            poll: Duration::from_micros(50),
            space_timeout: Duration::from_secs(2),
            // libhsakmt's HSA_QUEUE_PRIORITY_NORMAL maps to the middle of 0..=15.
            queue_priority: 7,
            queue_percentage: KFD_MAX_QUEUE_PERCENTAGE,
            emulated: false,
        }
    }
}

impl KfdConfig {
    /// Check the ring size and queue priority / percentage before anything is opened.
    ///
    /// Errors: [`Error::InvalidArgument`] naming the bad field.
    pub(crate) fn check(&self) -> Result<()> {
        let ring_bytes = self.ring_bytes;
        if !ring_bytes.is_power_of_two()
            || ring_bytes < MIN_RING_BYTES
            || ring_bytes > u64::from(u32::MAX)
            || (ring_bytes / 4) <= SUBMIT_DWORDS as u64
        {
            return Err(Error::InvalidArgument(format!(
                "ring_bytes {ring_bytes} must be a power of two >= {MIN_RING_BYTES} bytes"
            )));
        }
        if self.queue_priority > KFD_MAX_QUEUE_PRIORITY
            || self.queue_percentage > KFD_MAX_QUEUE_PERCENTAGE
        {
            return Err(Error::InvalidArgument(format!(
                "queue_priority {} (max {KFD_MAX_QUEUE_PRIORITY}) / queue_percentage {} (max \
                 {KFD_MAX_QUEUE_PERCENTAGE})",
                self.queue_priority, self.queue_percentage
            )));
        }
        Ok(())
    }
}
