//! pm4rt fence sequence numbers versus the kernel's CS fence handles.
//!
//! pm4rt hands out `Fence { seq }` with seq = 1, 2, 3, ... per submitter. The kernel returns
//! its own sequence number per scheduler entity (`drm_amdgpu_cs_out.handle`), which need not
//! start at 1 or match ours. All submissions go to one context / IP / ring, i.e. one entity,
//! so they retire in order: once a fence retires, every earlier one has too.

use std::collections::VecDeque;

/// What is known about a fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FenceState {
    /// Known retired: no ioctl needed.
    Retired,
    /// In flight with this kernel handle.
    Pending(u64),
    /// Never issued by this submitter (0, or beyond the last issued).
    Unknown,
}

/// The in-flight fences, oldest first, and the highest seq known retired.
#[derive(Debug, Clone, Default)]
pub(crate) struct FenceTracker {
    /// The last seq issued (0 before the first submission).
    last_seq: u64,
    /// Every seq <= this one is retired.
    retired_seq: u64,
    /// Kernel handles of seqs `retired_seq + 1 ..= last_seq`, in order.
    in_flight: VecDeque<u64>,
}

impl FenceTracker {
    /// Record a new submission with kernel handle `handle`; returns its seq.
    pub(crate) fn issue(&mut self, handle: u64) -> u64 {
        self.last_seq += 1;
        self.in_flight.push_back(handle);
        self.last_seq
    }

    /// What is known about `seq`.
    pub(crate) fn state(&self, seq: u64) -> FenceState {
        if seq == 0 || seq > self.last_seq {
            FenceState::Unknown
        } else if seq <= self.retired_seq {
            FenceState::Retired
        } else {
            let idx = (seq - self.retired_seq - 1) as usize;
            self.in_flight.get(idx).map_or(FenceState::Unknown, |&h| FenceState::Pending(h))
        }
    }

    /// Mark `seq` and every earlier fence retired; returns how many became retired now.
    pub(crate) fn retire_upto(&mut self, seq: u64) -> u64 {
        let seq = seq.min(self.last_seq);
        if seq <= self.retired_seq {
            return 0;
        }
        let n = seq - self.retired_seq;
        self.in_flight.drain(..n as usize);
        self.retired_seq = seq;
        n
    }

    /// The newest in-flight fence: (seq, kernel handle).
    pub(crate) fn newest_pending(&self) -> Option<(u64, u64)> {
        self.in_flight.back().map(|&h| (self.last_seq, h))
    }

    /// The newest sequence number issued.
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The newest sequence number known retired.
    pub(crate) fn retired_seq(&self) -> u64 {
        self.retired_seq
    }

    /// Number of submissions not yet known retired.
    pub(crate) fn pending(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_map_to_kernel_handles_and_retire_in_order() {
        let mut t = FenceTracker::default();
        assert_eq!(t.state(0), FenceState::Unknown);
        assert_eq!(t.state(1), FenceState::Unknown);
        assert_eq!(t.issue(41), 1);
        assert_eq!(t.issue(42), 2);
        assert_eq!(t.issue(43), 3);
        assert_eq!(t.state(2), FenceState::Pending(42));
        assert_eq!(t.newest_pending(), Some((3, 43)));
        assert_eq!(t.retire_upto(2), 2);
        assert_eq!(t.state(1), FenceState::Retired);
        assert_eq!(t.state(2), FenceState::Retired);
        assert_eq!(t.state(3), FenceState::Pending(43));
        assert_eq!(t.retire_upto(1), 0);
        assert_eq!(t.pending(), 1);
        assert_eq!(t.issue(44), 4);
        assert_eq!(t.state(4), FenceState::Pending(44));
        assert_eq!(t.retire_upto(9), 2); // clamps to the last issued
        assert_eq!(t.state(4), FenceState::Retired);
        assert_eq!(t.state(5), FenceState::Unknown);
        assert_eq!(t.newest_pending(), None);
    }
}
