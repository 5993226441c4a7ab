//! Ring-buffer arithmetic of a KFD PM4 queue. (Writing and publishing is shared with umq in
//! `crate::ring`; this read-pointer rule differs from umq's, see there.)
//!
//! The write pointer is a 64-bit count of dwords that only grows; the ring index of a pointer
//! `p` is `p % ring_dwords` (tinygrad `ops_amd.py: amd_push`). The read pointer the CP reports
//! at `read_pointer_address`
//! (kfd_mqd_manager_v11.c `update_mqd`: `cp_hqd_pq_rptr_report_addr`) is a 32-bit dword
//! offset that wraps at the ring size (ROCm kfdtest: "On PM4 queues Rptr is always 32-bit in
//! dword units and wraps at queue size"); it is used only modulo the ring size. One dword is
//! always left free so that a full ring and an empty one differ.

/// Dwords queued but not yet consumed: `(wptr - rptr) mod ring_dwords`.
pub fn pending(wptr: u64, rptr: u64, ring_dwords: u64) -> u64 {
    wptr.wrapping_sub(rptr) % ring_dwords
}

/// Dwords that may be written without overrunning the read pointer.
pub fn free(wptr: u64, rptr: u64, ring_dwords: u64) -> u64 {
    ring_dwords - 1 - pending(wptr, rptr, ring_dwords)
}

pub use crate::ring::split;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_and_wrap() {
        let n = 1024;
        assert_eq!(free(0, 0, n), 1023);
        assert_eq!(free(1000, 0, n), 23);
        assert_eq!(free(1000, 1000, n), 1023);
        // A monotonic 64-bit read pointer and the same pointer reported modulo the ring agree.
        assert_eq!(free(5000, 4990, n), free(5000, 4990 % n, n));
        assert_eq!(pending(5000, 4990, n), 10);
    }
}
