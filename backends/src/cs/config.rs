//! How to open a [`CsSubmitter`](super::CsSubmitter): [`CsConfig`] and its defaults.

use std::time::Duration;

use pm4rt_core::abi::drm::AMDGPU_CTX_PRIORITY_NORMAL;
use pm4rt_core::{Domain, GfxTarget, DEFAULT_RENDER_NODE};

use super::clock::{self, MonotonicClock};

/// How to open a [`CsSubmitter`](super::CsSubmitter).
#[derive(Debug, Clone)]
pub struct CsConfig {
    /// The render node, e.g. [`DEFAULT_RENDER_NODE`].
    pub path: String,
    /// The GPU target, used only when the kernel does not report the GC IP version (kernels
    /// without `ip_discovery_version`). When both are known they must agree.
    pub gfx: Option<GfxTarget>,
    /// Put every BO in this domain regardless of [`BoDesc::domain`](pm4rt_core::BoDesc::domain) (e.g. `Some(Domain::Gtt)`
    /// on a machine with little CPU-visible VRAM). `None` honours the descriptor.
    pub force_domain: Option<Domain>,
    /// Context priority (`AMDGPU_CTX_PRIORITY_*`; above NORMAL needs CAP_SYS_NICE).
    pub priority: i32,
    /// Compute ring index (must be set in HW_IP_INFO's `available_rings`).
    pub ring: u32,
    /// Set `AMDGPU_IB_FLAG_EMIT_MEM_SYNC` on every IB (cache flush/invalidate before it).
    pub mem_sync: bool,
    /// On drop, wait at most this long for the newest submission before releasing
    /// (`None`: do not wait, as the [`Submitter`](pm4rt_core::Submitter) contract describes).
    pub drain_on_drop: Option<Duration>,
    /// Report the device as emulated in [`SubmitterInfo::emulated`](pm4rt_core::SubmitterInfo::emulated).
    pub emulated: bool,
    /// The CLOCK_MONOTONIC source used for `WAIT_CS` deadlines.
    pub clock: MonotonicClock,
}

impl Default for CsConfig {
    fn default() -> Self {
        CsConfig {
            path: DEFAULT_RENDER_NODE.to_string(),
            gfx: None,
            force_domain: None,
            priority: AMDGPU_CTX_PRIORITY_NORMAL,
            ring: 0,
            mem_sync: true,
            drain_on_drop: None,
            emulated: false,
            clock: clock::monotonic_now_ns,
        }
    }
}

impl CsConfig {
    /// The default configuration for the render node at `path`.
    pub fn with_path(path: impl Into<String>) -> Self {
        CsConfig { path: path.into(), ..CsConfig::default() }
    }
}
