//! Ring-buffer arithmetic of a user queue (pure; no memory access). Writing and publishing is
//! shared with kfd in `crate::ring`; the read-pointer rule here differs from kfd's (a 64-bit
//! count checked against the write pointer, where kfd takes the report modulo the ring).
//!
//! Pointers count dwords and only grow (Mesa's `amdgpu_userq.h`: the ring index is
//! `wptr & AMDGPU_USERQ_RING_SIZE_DW_MASK` and `amdgpu_pkt_end` adds the dwords written to the
//! 64-bit `*wptr_bo_map`). The ring index of pointer `p` is `p % ring_dwords`.
//!
//! The read pointer the CP reports is used through its low 32 bits only, so a 32-bit or a
//! 64-bit report both work: the consumer is never more than a ring behind the producer.
//!
//! The ring is never filled completely: a write pointer equal to the read pointer modulo the
//! ring means "empty" to the CP, so at least one dword always stays free.

/// Why the reported read pointer cannot be right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadRptr {
    /// The raw value read.
    pub(crate) reported: u64,
    /// Our write pointer.
    pub(crate) wptr: u64,
}

/// The full read pointer given our write pointer `wptr` and the CP's report.
pub(crate) fn full_rptr(wptr: u64, reported: u64, ring_dwords: u64) -> Result<u64, BadRptr> {
    let pending = u64::from((wptr as u32).wrapping_sub(reported as u32));
    if pending > ring_dwords || pending > wptr {
        return Err(BadRptr { reported, wptr });
    }
    Ok(wptr - pending)
}

/// True when `n` more dwords fit after `wptr` without reaching `rptr` (one dword stays free).
pub(crate) fn fits(wptr: u64, rptr: u64, n: u64, ring_dwords: u64) -> bool {
    let used = wptr.saturating_sub(rptr);
    used.checked_add(n).is_some_and(|after| after < ring_dwords)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rptr_reconstruction() {
        // Reported as 64-bit.
        assert_eq!(full_rptr(100, 90, 1024), Ok(90));
        // Reported as 32-bit after the producer passed 2^32.
        let w = (1u64 << 32) + 10;
        assert_eq!(full_rptr(w, 0xFFFF_FFF0, 1024), Ok((1u64 << 32) - 16));
        assert_eq!(full_rptr(w, w, 1024), Ok(w));
        // More than a ring behind, or ahead of the producer: garbage.
        assert_eq!(full_rptr(5000, 10, 1024), Err(BadRptr { reported: 10, wptr: 5000 }));
        assert_eq!(full_rptr(10, 11, 1024), Err(BadRptr { reported: 11, wptr: 10 }));
    }

    #[test]
    fn space_keeps_one_dword_free() {
        assert!(fits(0, 0, 1023, 1024));
        assert!(!fits(0, 0, 1024, 1024));
        assert!(fits(2000, 1000, 23, 1024));
        assert!(!fits(2000, 1000, 24, 1024));
        assert!(!fits(0, 0, u64::MAX, 1024));
    }
}
