//! A first-fit allocator of GPU (= CPU) virtual addresses inside the reserved window.

use std::collections::BTreeMap;
use std::ops::Range;

/// First-fit over `range`; `used` maps start -> end (exclusive).
#[derive(Debug, Clone)]
pub(crate) struct VaWindow {
    range: Range<u64>,
    used: BTreeMap<u64, u64>,
}

const PAGE: u64 = 4096;

impl VaWindow {
    /// An allocator over `range` (page aligned).
    pub(crate) fn new(range: Range<u64>) -> VaWindow {
        VaWindow { range, used: BTreeMap::new() }
    }

    /// The window.
    pub(crate) fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// Reserve `size` bytes (a multiple of 4 KiB) at the lowest free address; `None` when no
    /// hole is large enough.
    pub(crate) fn alloc(&mut self, size: u64) -> Option<u64> {
        let size = size.max(1).checked_next_multiple_of(PAGE)?;
        let mut cursor = self.range.start;
        for (&s, &e) in &self.used {
            if s >= cursor && s - cursor >= size {
                break;
            }
            cursor = cursor.max(e);
        }
        let end = cursor.checked_add(size)?;
        if end > self.range.end {
            return None;
        }
        self.used.insert(cursor, end);
        Some(cursor)
    }

    /// Release the allocation at `va`.
    pub(crate) fn free(&mut self, va: u64) {
        self.used.remove(&va);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit() {
        let mut w = VaWindow::new(0x10_0000..0x10_0000 + 4 * PAGE);
        assert_eq!(w.alloc(1), Some(0x10_0000));
        assert_eq!(w.alloc(2 * PAGE), Some(0x10_1000));
        w.free(0x10_0000);
        assert_eq!(w.alloc(2 * PAGE), None);
        assert_eq!(w.alloc(PAGE), Some(0x10_0000));
        assert_eq!(w.alloc(PAGE), Some(0x10_3000));
        assert_eq!(w.alloc(PAGE), None);
        assert_eq!(w.alloc(u64::MAX), None);
    }
}
