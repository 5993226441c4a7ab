//! A first-fit GPU virtual-address allocator, shared by every tier: over the range DEV_INFO
//! reports (cs, umq) or over the CPU window reserved inside the GPUVM aperture (kfd, which only
//! asks for tier-chosen VAs).

use std::collections::BTreeMap;
use std::ops::Range;

/// Why a VA request was refused (becomes [`pm4rt_core::Error::BadVa`]'s reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VaRefusal {
    /// Not a multiple of the alignment.
    Misaligned,
    /// Outside the usable range.
    OutOfRange,
    /// Overlaps an existing allocation.
    Overlap,
    /// No free hole is large enough.
    Exhausted,
}

impl VaRefusal {
    /// The reason text.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            VaRefusal::Misaligned => "not aligned to the VA alignment (4 KiB or the device's)",
            VaRefusal::OutOfRange => "outside the device VA range",
            VaRefusal::Overlap => "overlaps another mapping",
            VaRefusal::Exhausted => "no free VA range large enough",
        }
    }
}

/// First-fit allocator: `used` maps start -> end (exclusive) of every allocation.
#[derive(Debug, Clone)]
pub(crate) struct VaAllocator {
    range: Range<u64>,
    align: u64,
    used: BTreeMap<u64, u64>,
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    v.checked_add(align - 1).map(|x| x / align * align)
}

impl VaAllocator {
    /// An allocator over `range` (its start is rounded up to `align`, a power of two).
    pub(crate) fn new(range: Range<u64>, align: u64) -> VaAllocator {
        let align = align.max(1).next_power_of_two();
        let start = align_up(range.start, align).unwrap_or(range.end).min(range.end);
        VaAllocator { range: start..range.end, align, used: BTreeMap::new() }
    }

    /// The usable range.
    pub(crate) fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// Reserve `size` bytes (already a multiple of the alignment) at `at`, or at the lowest
    /// free address when `at` is `None`.
    pub(crate) fn alloc(&mut self, size: u64, at: Option<u64>) -> Result<u64, VaRefusal> {
        let size = align_up(size.max(1), self.align).ok_or(VaRefusal::Exhausted)?;
        match at {
            Some(va) => {
                if !va.is_multiple_of(self.align) {
                    return Err(VaRefusal::Misaligned);
                }
                let end = va.checked_add(size).ok_or(VaRefusal::OutOfRange)?;
                if va < self.range.start || end > self.range.end {
                    return Err(VaRefusal::OutOfRange);
                }
                if self.overlaps(va, end) {
                    return Err(VaRefusal::Overlap);
                }
                self.used.insert(va, end);
                Ok(va)
            }
            None => {
                let mut cursor = self.range.start;
                for (&s, &e) in &self.used {
                    if s >= cursor && s - cursor >= size {
                        break;
                    }
                    cursor = cursor.max(e);
                }
                let end = cursor.checked_add(size).ok_or(VaRefusal::Exhausted)?;
                if end > self.range.end {
                    return Err(VaRefusal::Exhausted);
                }
                self.used.insert(cursor, end);
                Ok(cursor)
            }
        }
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        // The last allocation starting before `end` is the only one that can overlap.
        self.used.range(..end).next_back().is_some_and(|(_, &e)| e > start)
    }

    /// Release the allocation starting at `va` (no-op when there is none).
    pub(crate) fn free(&mut self, va: u64) {
        self.used.remove(&va);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K4: u64 = 0x1000;

    #[test]
    fn first_fit_reuses_holes_and_respects_range() {
        let mut a = VaAllocator::new(0x20_0000..0x20_0000 + 8 * K4, K4);
        assert_eq!(a.alloc(K4, None), Ok(0x20_0000));
        assert_eq!(a.alloc(2 * K4, None), Ok(0x20_1000));
        assert_eq!(a.alloc(1, None), Ok(0x20_3000)); // rounded to one page
        a.free(0x20_1000);
        assert_eq!(a.alloc(K4, None), Ok(0x20_1000)); // first hole
        assert_eq!(a.alloc(2 * K4, None), Ok(0x20_4000)); // hole of 1 page left at 0x202000
        assert_eq!(a.alloc(K4, None), Ok(0x20_2000));
        assert_eq!(a.alloc(2 * K4, None), Ok(0x20_6000));
        assert_eq!(a.alloc(K4, None), Err(VaRefusal::Exhausted));
        assert_eq!(a.alloc(u64::MAX, None), Err(VaRefusal::Exhausted));
    }

    #[test]
    fn requested_va_is_checked() {
        let mut a = VaAllocator::new(0x20_0000..0x40_0000, K4);
        assert_eq!(a.alloc(K4, Some(0x20_0800)), Err(VaRefusal::Misaligned));
        assert_eq!(a.alloc(K4, Some(0x1F_F000)), Err(VaRefusal::OutOfRange));
        assert_eq!(a.alloc(2 * K4, Some(0x3F_F000)), Err(VaRefusal::OutOfRange));
        assert_eq!(a.alloc(K4, Some(u64::MAX - 0xFFF)), Err(VaRefusal::OutOfRange));
        assert_eq!(a.alloc(2 * K4, Some(0x30_0000)), Ok(0x30_0000));
        assert_eq!(a.alloc(K4, Some(0x30_1000)), Err(VaRefusal::Overlap));
        assert_eq!(a.alloc(2 * K4, Some(0x2F_F000)), Err(VaRefusal::Overlap));
        assert_eq!(a.alloc(K4, Some(0x30_2000)), Ok(0x30_2000));
        assert_eq!(a.alloc(K4, Some(0x2F_F000)), Ok(0x2F_F000));
        // The tier-chosen VA skips the requested ones.
        assert_eq!(a.alloc(K4, None), Ok(0x20_0000));
    }

    #[test]
    fn device_alignment_is_honoured() {
        let mut a = VaAllocator::new(0x1234..0x100_0000, 0x10000);
        assert_eq!(a.range().start, 0x10000);
        assert_eq!(a.alloc(K4, None), Ok(0x10000));
        assert_eq!(a.alloc(K4, None), Ok(0x20000));
        assert_eq!(a.alloc(K4, Some(0x31000)), Err(VaRefusal::Misaligned));
    }
}
