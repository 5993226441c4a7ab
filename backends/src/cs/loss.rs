//! How the cs tier recognises a lost context and says why.
//!
//! `CS` and `WAIT_CS` fail with `ECANCELED` or `ETIME` when the context was reset, VRAM was
//! lost or the job timed out, and with `ENODEV` once the device is removed; the reason then
//! comes from the flags of `CTX QUERY_STATE2` (`amdgpu_ctx.c: amdgpu_ctx_query2` sets RESET,
//! VRAMLOST and GUILTY).

use pm4rt_core::abi::drm::{
    CtxOutState, AMDGPU_CTX_QUERY2_FLAGS_GUILTY, AMDGPU_CTX_QUERY2_FLAGS_RESET,
    AMDGPU_CTX_QUERY2_FLAGS_VRAMLOST,
};
use pm4rt_core::Errno;

/// True for the errnos that mean the context (or device) is gone.
pub(crate) fn is_loss(errno: Errno) -> bool {
    matches!(errno, Errno::ECANCELED | Errno::ETIME | Errno::ENODEV)
}

/// The reset flags of `CTX QUERY_STATE2`, in words.
pub(crate) fn describe_state(st: &CtxOutState) -> String {
    let mut parts = Vec::new();
    if st.flags & AMDGPU_CTX_QUERY2_FLAGS_RESET != 0 {
        parts.push("GPU reset");
    }
    if st.flags & AMDGPU_CTX_QUERY2_FLAGS_VRAMLOST != 0 {
        parts.push("VRAM lost");
    }
    if st.flags & AMDGPU_CTX_QUERY2_FLAGS_GUILTY != 0 {
        parts.push("this context is guilty");
    }
    let what = if parts.is_empty() { "no reset flag set".to_string() } else { parts.join(", ") };
    format!("{what} (QUERY_STATE2 flags {:#x}, hangs {})", st.flags, st.hangs)
}
