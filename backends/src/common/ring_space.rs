//! The two rules that bound a ring's free space (pure; no memory access).
//!
//! Pointers count dwords and only grow; the ring index of pointer `p` is `p % ring_dwords`
//! (tinygrad `ops_amd.py: amd_push`; Mesa `amdgpu_userq.h`: the index is
//! `next_wptr & AMDGPU_USERQ_RING_SIZE_DW_MASK`). The ring is never filled completely: a write
//! pointer equal to the read pointer modulo the ring means "empty" to the CP, so at least one
//! dword always stays free.
//!
//! The CP reports its read pointer as a 32-bit dword offset that wraps at the ring size
//! (ROCm kfdtest: "On PM4 queues Rptr is always 32-bit in dword units and wraps at queue
//! size"; `kfd_mqd_manager_v11.c: update_mqd` programs `cp_hqd_pq_rptr_report_addr`). The tiers
//! use it differently, and each keeps its rule:
//!
//! - **kfd, [`free_by_rptr`]**: the report taken modulo the ring. While one dword stays free,
//!   `(wptr - rptr) mod ring` is the exact number of dwords queued, so the modulo loses
//!   nothing; a stale report only makes the writer wait longer.
//! - **umq, [`InFlight`]**: the report is not used, because nothing orders its update with the
//!   fence a user queue polls. Like Mesa, space is bounded by the fences instead: every
//!   submission ends with a `RELEASE_MEM` writing its sequence number, and once that fence has
//!   retired the CP has read all of the submission's dwords, so they are free. Mesa keeps at
//!   most `AMDGPU_FENCE_RING_SIZE` submissions in flight per queue and waits for the oldest
//!   fence before adding one (amdgpu_cs.cpp `amdgpu_cs_submit_ib`), its ring being sized for
//!   that many ("ring size should be power of 2 and enough to hold AMDGPU_FENCE_RING_SIZE
//!   ibs", amdgpu_userq.h); here the wait is for as many of the oldest fences as the new
//!   submission needs room for.

use std::collections::VecDeque;

/// Submissions written to the ring whose fences have not been seen retired, and the write
/// pointer up to which the ring is free.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct InFlight {
    /// `(sequence number, write pointer after the submission)`, oldest first.
    pending: VecDeque<(u64, u64)>,
    /// Write pointer after the newest retired submission: dwords before it are free.
    freed_to: u64,
}

impl InFlight {
    /// Record submission `seq` ending at write pointer `end`.
    pub(crate) fn push(&mut self, seq: u64, end: u64) {
        self.pending.push_back((seq, end));
    }

    /// Every submission up to and including `retired_seq` has retired: free its dwords.
    pub(crate) fn retire(&mut self, retired_seq: u64) {
        while let Some(&(seq, end)) = self.pending.front() {
            if seq > retired_seq {
                break;
            }
            self.freed_to = end;
            self.pending.pop_front();
        }
    }

    /// True when `n` more dwords fit after `wptr` without reaching unretired dwords (one
    /// dword stays free).
    pub(crate) fn fits(&self, wptr: u64, n: u64, ring_dwords: u64) -> bool {
        let used = wptr.saturating_sub(self.freed_to);
        used.checked_add(n).is_some_and(|after| after < ring_dwords)
    }
}

/// Dwords that may be written after `wptr` without overrunning the CP's read pointer report
/// `rptr` (either a dword count or the count modulo the ring: only `rptr % ring_dwords`
/// matters); one dword stays free.
pub(crate) fn free_by_rptr(wptr: u64, rptr: u64, ring_dwords: u64) -> u64 {
    ring_dwords - 1 - wptr.wrapping_sub(rptr) % ring_dwords
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_pointer_space_and_wrap() {
        let n = 1024;
        assert_eq!(free_by_rptr(0, 0, n), 1023);
        assert_eq!(free_by_rptr(1000, 0, n), 23);
        assert_eq!(free_by_rptr(1000, 1000, n), 1023);
        // A monotonic 64-bit read pointer and the same pointer reported modulo the ring agree.
        assert_eq!(free_by_rptr(5000, 4990, n), free_by_rptr(5000, 4990 % n, n));
        assert_eq!(free_by_rptr(5000, 4990, n), 1013);
    }

    #[test]
    fn space_keeps_one_dword_free() {
        let f = InFlight::default();
        assert!(f.fits(0, 1023, 1024));
        assert!(!f.fits(0, 1024, 1024));
        assert!(!f.fits(0, u64::MAX, 1024));
    }

    #[test]
    fn retired_fences_free_their_dwords_in_order() {
        let mut f = InFlight::default();
        // Three submissions of 400 dwords in a ring of 1024.
        f.push(1, 400);
        f.push(2, 800);
        assert!(!f.fits(800, 400, 1024), "224 dwords left");
        f.retire(0);
        assert!(!f.fits(800, 400, 1024), "nothing retired yet");
        f.retire(1);
        assert!(f.fits(800, 400, 1024), "400 + 400 used after seq 1 retired");
        f.push(3, 1200);
        assert!(!f.fits(1200, 400, 1024));
        f.retire(3);
        assert!(f.fits(1200, 1023, 1024));
        assert!(!f.fits(1200, 1024, 1024));
    }
}
