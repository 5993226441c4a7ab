//! The memory operations of a ring in CPU-mapped memory: copying packets in with the wrap at
//! the ring end, and publishing the new write pointer (pure functions over [`Mapping`]s;
//! [`super::ring_queue`] holds the state).
//!
//! Pointers count dwords and only grow; the ring index of pointer `p` is `p % ring_dwords`.

use pm4rt_core::{Errno, Mapping};

/// Where `len` dwords written at pointer `wptr` land: (first ring index, dwords before the ring
/// end, dwords wrapped to ring index 0).
pub(crate) fn split(wptr: u64, len: u64, ring_dwords: u64) -> (u64, u64, u64) {
    let start = wptr % ring_dwords;
    let first = len.min(ring_dwords - start);
    (start, first, len - first)
}

/// Copy `packet` into `ring` (a mapping of `ring_dwords` dwords) at pointer `wptr`, wrapping
/// at the ring end. The caller has checked that the read pointer leaves room.
///
/// Errors: the mapping's `EFAULT` when the ring mapping is shorter than `ring_dwords`.
pub(crate) fn write_wrapped(
    ring: &dyn Mapping,
    wptr: u64,
    ring_dwords: u64,
    packet: &[u32],
) -> Result<(), Errno> {
    let (start, first, rest) = split(wptr, packet.len() as u64, ring_dwords);
    let (a, b) = packet.split_at(first as usize);
    ring.write(start as usize * 4, bytemuck::cast_slice(a))?;
    if rest > 0 {
        ring.write(0, bytemuck::cast_slice(b))?;
    }
    Ok(())
}

/// Publish write pointer `wptr`: a release-ordered store to the write-pointer page (so the
/// ring contents are visible first), then the same value to the doorbell at byte
/// `doorbell_offset` (so the CP sees the pointer before it is woken).
///
/// Errors: the mapping's `EFAULT` for an offset outside either mapping.
pub(crate) fn publish(
    wptr_page: &dyn Mapping,
    doorbell: &dyn Mapping,
    doorbell_offset: usize,
    wptr: u64,
) -> Result<(), Errno> {
    wptr_page.store_u64(0, wptr)?;
    doorbell.store_u64(doorbell_offset, wptr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_segments() {
        assert_eq!(split(0, 20, 1024), (0, 20, 0));
        assert_eq!(split(1020, 20, 1024), (1020, 4, 16));
        assert_eq!(split(2048 + 1004, 20, 1024), (1004, 20, 0));
        assert_eq!(split(1024, 20, 1024), (0, 20, 0));
        assert_eq!(split(1020, 8, 1024), (1020, 4, 4));
        assert_eq!(split(1016, 8, 1024), (1016, 8, 0));
    }
}
