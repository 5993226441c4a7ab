//! A PM4 ring queue in CPU-mapped memory, the submit and completion path of the kfd and umq
//! tiers (tinygrad shares the same queue mechanics between its kernel interfaces,
//! `runtime/support/hcq.py`).
//!
//! [`RingQueue`] holds the state (write pointer, sequence numbers, the space rule); the memory
//! it works on belongs to the tier's BOs and is lent for each call as a [`QueueMemory`], so the
//! tier alone decides when each mapping goes away.
//!
//! - Submit ([`RingQueue::push`]): wait, bounded by the queue's space timeout, until the
//!   packets fit ([`ring_space`](super::ring_space)); copy them in, wrapping at the ring end;
//!   publish the new write pointer: a release-ordered 64-bit store to the write-pointer BO, then
//!   the same value to the doorbell. A queue the scheduler (re)loads reads the write pointer
//!   from memory, a running one is woken by the doorbell, so both must hold it (Mesa
//!   `amdgpu_userq.c` stores `*wptr_bo_map` before the doorbell; kgd `hqd_load`: "a one-shot
//!   polling read from memory in the CP").
//! - Completion: every submission's last packet is a `RELEASE_MEM` writing its sequence number
//!   (1, 2, 3, ...) to the fence BO; fences retire in order, so the fence value is the newest
//!   retired sequence number ([`RingQueue::poll`]). A value beyond the last issued is not
//!   ours and counts only up to it.
//! - Waits poll with one backoff policy ([`Backoff`]: spin, then yield, then 20 µs sleeps) and
//!   end at their deadline.

use std::time::{Duration, Instant};

use pm4rt_core::{Error, Fence, Mapping, Result};

use super::ring::{publish, write_wrapped};
use super::ring_space::{free_by_rptr, InFlight};

/// The queue memory one call works on, lent by the tier's BOs.
#[derive(Clone, Copy)]
pub(crate) struct QueueMemory<'a> {
    /// The ring ([`RingQueue::ring_dwords`] dwords).
    pub(crate) ring: &'a dyn Mapping,
    /// The write-pointer BO (64-bit at offset 0).
    pub(crate) wptr: &'a dyn Mapping,
    /// The read-pointer BO the CP reports to (64-bit at offset 0).
    pub(crate) rptr: &'a dyn Mapping,
    /// The fence BO (64-bit sequence number at offset 0).
    pub(crate) fence: &'a dyn Mapping,
    /// The doorbell page.
    pub(crate) doorbell: &'a dyn Mapping,
    /// Byte offset of the queue's doorbell in that page.
    pub(crate) doorbell_offset: usize,
}

/// How the free space of the ring is bounded (see [`super::ring_space`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RingSpace {
    /// By the CP's read-pointer report, modulo the ring (kfd).
    CpReadPointer,
    /// By the retired fences of earlier submissions (umq).
    RetiredFences(InFlight),
}

/// Poll pacing shared by every wait: spin briefly, then yield, then sleep 20 µs per poll.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    polls: u32,
}

impl Backoff {
    /// Pause before the next poll.
    pub(crate) fn pause(&mut self) {
        self.polls = self.polls.saturating_add(1);
        if self.polls < 64 {
            std::hint::spin_loop();
        } else if self.polls < 256 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

/// The state of one ring queue. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct RingQueue {
    ring_dwords: u64,
    /// Dwords written so far (monotonic).
    wptr: u64,
    /// The newest sequence number issued (0: none).
    last_seq: u64,
    /// The newest sequence number seen retired.
    retired_seq: u64,
    space: RingSpace,
    space_timeout: Duration,
    /// The step named by an [`Error::Io`] of a failing queue-memory access.
    step: &'static str,
}

impl RingQueue {
    /// An empty queue over a ring of `ring_dwords` dwords; `submit` waits at most
    /// `space_timeout` for room; a failing memory access is [`Error::Io`] at `step`.
    pub(crate) fn new(
        ring_dwords: u64,
        space: RingSpace,
        space_timeout: Duration,
        step: &'static str,
    ) -> RingQueue {
        RingQueue { ring_dwords, wptr: 0, last_seq: 0, retired_seq: 0, space, space_timeout, step }
    }

    /// Dwords written so far.
    pub(crate) fn wptr(&self) -> u64 {
        self.wptr
    }

    /// The ring size in dwords.
    pub(crate) fn ring_dwords(&self) -> u64 {
        self.ring_dwords
    }

    /// The newest sequence number issued.
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The newest sequence number seen retired.
    pub(crate) fn retired_seq(&self) -> u64 {
        self.retired_seq
    }

    /// The sequence number the next submission gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    fn io(&self) -> impl Fn(pm4rt_core::Errno) -> Error {
        let step = self.step;
        move |e| Error::io(step, e)
    }

    /// The fence BO's value.
    ///
    /// Errors: [`Error::Io`] at the queue's step.
    pub(crate) fn fence_value(&self, mem: QueueMemory<'_>) -> Result<u64> {
        mem.fence.load_u64(0).map_err(self.io())
    }

    /// The CP's read-pointer report.
    ///
    /// Errors: [`Error::Io`] at the queue's step.
    pub(crate) fn rptr(&self, mem: QueueMemory<'_>) -> Result<u64> {
        mem.rptr.load_u64(0).map_err(self.io())
    }

    /// Read the fence and retire every submission up to it.
    ///
    /// Errors: [`Error::Io`] at the queue's step.
    pub(crate) fn poll(&mut self, mem: QueueMemory<'_>) -> Result<()> {
        let v = self.fence_value(mem)?.min(self.last_seq);
        self.retired_seq = self.retired_seq.max(v);
        if let RingSpace::RetiredFences(f) = &mut self.space {
            f.retire(self.retired_seq);
        }
        Ok(())
    }

    /// [`Error::UnknownFence`] unless `fence` was issued by this queue.
    pub(crate) fn check_issued(&self, fence: Fence) -> Result<()> {
        if fence.seq == 0 || fence.seq > self.last_seq {
            return Err(Error::UnknownFence(fence));
        }
        Ok(())
    }

    /// True when `seq` has retired (reading the fence only when not known already).
    ///
    /// Errors: [`Error::Io`] at the queue's step.
    pub(crate) fn is_retired(&mut self, mem: QueueMemory<'_>, seq: u64) -> Result<bool> {
        if seq > self.retired_seq {
            self.poll(mem)?;
        }
        Ok(seq <= self.retired_seq)
    }

    /// Poll until `seq` retires or `limit` has passed since `start`; true when it retired.
    ///
    /// Errors: [`Error::Io`] at the queue's step.
    pub(crate) fn poll_until(
        &mut self,
        mem: QueueMemory<'_>,
        seq: u64,
        start: Instant,
        limit: Duration,
    ) -> Result<bool> {
        let mut backoff = Backoff::default();
        loop {
            if self.is_retired(mem, seq)? {
                return Ok(true);
            }
            if start.elapsed() >= limit {
                return Ok(false);
            }
            backoff.pause();
        }
    }

    fn fits(&self, mem: QueueMemory<'_>, n: u64) -> Result<bool> {
        Ok(match &self.space {
            RingSpace::CpReadPointer => {
                free_by_rptr(self.wptr, self.rptr(mem)?, self.ring_dwords) >= n
            }
            RingSpace::RetiredFences(f) => f.fits(self.wptr, n, self.ring_dwords),
        })
    }

    /// Wait (bounded by the space timeout) until `n` dwords fit.
    fn wait_space(&mut self, mem: QueueMemory<'_>, n: u64) -> Result<()> {
        let start = Instant::now();
        let mut backoff = Backoff::default();
        loop {
            if self.fits(mem, n)? {
                return Ok(());
            }
            self.poll(mem)?;
            if self.fits(mem, n)? {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= self.space_timeout {
                // The oldest submission still holding ring space.
                return Err(Error::Timeout { fence: Fence { seq: self.retired_seq + 1 }, waited });
            }
            backoff.pause();
        }
    }

    /// Append `packets` (one submission, ending with the `RELEASE_MEM` of
    /// [`RingQueue::next_seq`]) and publish the write pointer; returns that fence.
    ///
    /// Errors: [`Error::Timeout`] naming the oldest unretired fence when the ring stays full
    /// past the space timeout (nothing is written); [`Error::Io`] at the queue's step.
    pub(crate) fn push(&mut self, mem: QueueMemory<'_>, packets: &[u32]) -> Result<Fence> {
        let n = packets.len() as u64;
        self.wait_space(mem, n)?;
        write_wrapped(mem.ring, self.wptr, self.ring_dwords, packets).map_err(self.io())?;
        let wptr = self.wptr + n;
        publish(mem.wptr, mem.doorbell, mem.doorbell_offset, wptr).map_err(self.io())?;
        let seq = self.next_seq();
        self.wptr = wptr;
        self.last_seq = seq;
        if let RingSpace::RetiredFences(f) = &mut self.space {
            f.push(seq, wptr);
        }
        Ok(Fence { seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm4rt_core::HostMapping;

    struct Queue {
        ring: HostMapping,
        wptr: HostMapping,
        rptr: HostMapping,
        fence: HostMapping,
        doorbell: HostMapping,
    }

    impl Queue {
        fn new(ring_dwords: usize) -> Queue {
            Queue {
                ring: HostMapping::new(ring_dwords * 4, 0),
                wptr: HostMapping::new(8, 0),
                rptr: HostMapping::new(8, 0),
                fence: HostMapping::new(8, 0),
                doorbell: HostMapping::new(64, 0),
            }
        }
        fn mem(&self) -> QueueMemory<'_> {
            QueueMemory {
                ring: &self.ring,
                wptr: &self.wptr,
                rptr: &self.rptr,
                fence: &self.fence,
                doorbell: &self.doorbell,
                doorbell_offset: 32,
            }
        }
        fn ring_dword(&self, i: usize) -> u32 {
            let mut b = [0u8; 4];
            self.ring.read(i * 4, &mut b).unwrap();
            u32::from_le_bytes(b)
        }
    }

    #[test]
    fn push_wraps_and_publishes_wptr_then_doorbell() {
        let q = Queue::new(16);
        let mut r = RingQueue::new(16, RingSpace::CpReadPointer, Duration::ZERO, "queue");
        assert_eq!(r.push(q.mem(), &[1; 10]).unwrap(), Fence { seq: 1 });
        // The CP consumed the first submission: 6 dwords before the end, 4 wrap to index 0.
        q.rptr.store_u64(0, 10).unwrap();
        assert_eq!(r.push(q.mem(), &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).unwrap(), Fence { seq: 2 });
        assert_eq!((q.ring_dword(10), q.ring_dword(15)), (2, 7));
        assert_eq!((q.ring_dword(0), q.ring_dword(3)), (8, 11));
        assert_eq!(q.wptr.load_u64(0).unwrap(), 20);
        assert_eq!(q.doorbell.load_u64(32).unwrap(), 20);
        assert_eq!(r.wptr(), 20);
    }

    #[test]
    fn a_full_ring_times_out_naming_the_oldest_unretired_fence() {
        let q = Queue::new(16);
        let space = RingSpace::RetiredFences(InFlight::default());
        let mut r = RingQueue::new(16, space, Duration::from_millis(2), "queue");
        r.push(q.mem(), &[0; 8]).unwrap();
        r.push(q.mem(), &[0; 7]).unwrap();
        // 15 of 16 dwords used: nothing more fits until fence 1 retires.
        let e = r.push(q.mem(), &[0; 1]).unwrap_err();
        assert!(matches!(e, Error::Timeout { fence: Fence { seq: 1 }, .. }), "{e}");
        assert_eq!(r.wptr(), 15, "nothing was written");
        q.fence.store_u64(0, 1).unwrap();
        assert_eq!(r.push(q.mem(), &[0; 8]).unwrap(), Fence { seq: 3 });
        assert_eq!(r.retired_seq(), 1);
    }

    #[test]
    fn fences_retire_in_order_and_never_past_the_last_issued() {
        let q = Queue::new(16);
        let mut r = RingQueue::new(16, RingSpace::CpReadPointer, Duration::ZERO, "queue");
        assert_eq!(r.check_issued(Fence { seq: 1 }), Err(Error::UnknownFence(Fence { seq: 1 })));
        r.push(q.mem(), &[0; 4]).unwrap();
        r.push(q.mem(), &[0; 4]).unwrap();
        assert_eq!(r.check_issued(Fence { seq: 0 }), Err(Error::UnknownFence(Fence { seq: 0 })));
        assert!(!r.poll_until(q.mem(), 1, Instant::now(), Duration::from_millis(1)).unwrap());
        q.fence.store_u64(0, 99).unwrap();
        assert!(r.is_retired(q.mem(), 2).unwrap());
        assert_eq!(r.retired_seq(), 2, "a value beyond the last issued counts up to it");
    }
}
