//! The caller's BOs of one submitter, by pm4rt handle.
//!
//! Handles count up from 1 in creation order and are never reused. Beside the records the
//! table keeps an index of the GPU mappings (start VA -> end VA, handle), which answers "is
//! `[va, va + len)` inside one mapped BO" in `O(log n)` and lists the mapped BOs in VA order.
//! The index is derived from the records ([`TableBo::gpu_span`]) and only changes through the
//! table ([`BoTable::insert_with`], [`BoTable::update`], [`BoTable::remove`]), so the two
//! cannot disagree. [`BoTable::drain_newest_first`] hands the records back in reverse creation
//! order, the order every tier releases them in.

use std::collections::BTreeMap;

use pm4rt_core::{BoHandle, Error, Mapping, Result};

use super::bo_access;

/// A BO record the table can index.
pub(crate) trait TableBo {
    /// `(start VA, bytes)` while the BO is mapped into the GPU VA space, else `None`.
    fn gpu_span(&self) -> Option<(u64, u64)>;
    /// Size in bytes (page-rounded).
    fn size(&self) -> u64;
    /// The CPU mapping, for a BO with CPU access.
    fn cpu(&self) -> Option<&dyn Mapping>;
}

/// The BOs of one submitter. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct BoTable<B> {
    bos: BTreeMap<u32, B>,
    next: u32,
    /// Mapped BOs: start VA -> (end VA, handle).
    by_va: BTreeMap<u64, (u64, u32)>,
}

impl<B> Default for BoTable<B> {
    fn default() -> Self {
        BoTable { bos: BTreeMap::new(), next: 1, by_va: BTreeMap::new() }
    }
}

impl<B: TableBo> BoTable<B> {
    /// Create a record with `make` under the next handle. `make` is not called when the
    /// handle space is exhausted.
    ///
    /// Errors: [`Error::Unsupported`] when no handle is left; whatever `make` returns.
    pub(crate) fn insert_with(&mut self, make: impl FnOnce() -> Result<B>) -> Result<BoHandle> {
        let id = self.next;
        let next = id
            .checked_add(1)
            .ok_or_else(|| Error::Unsupported("BO handle space exhausted".into()))?;
        let bo = make()?;
        self.index(id, &bo);
        self.bos.insert(id, bo);
        self.next = next;
        Ok(BoHandle(id))
    }

    /// The record of `bo`.
    ///
    /// Errors: [`Error::UnknownBo`].
    pub(crate) fn get(&self, bo: BoHandle) -> Result<&B> {
        self.bos.get(&bo.0).ok_or(Error::UnknownBo(bo))
    }

    /// Change the record of `bo` (e.g. record a new mapping); the VA index follows.
    ///
    /// Errors: [`Error::UnknownBo`].
    pub(crate) fn update<R>(&mut self, bo: BoHandle, f: impl FnOnce(&mut B) -> R) -> Result<R> {
        let b = self.bos.get_mut(&bo.0).ok_or(Error::UnknownBo(bo))?;
        if let Some((va, _)) = b.gpu_span() {
            self.by_va.remove(&va);
        }
        let r = f(b);
        let b = &self.bos[&bo.0];
        if let Some((va, len)) = b.gpu_span() {
            self.by_va.insert(va, (va + len, bo.0));
        }
        Ok(r)
    }

    /// Take the record of `bo` out of the table.
    ///
    /// Errors: [`Error::UnknownBo`].
    pub(crate) fn remove(&mut self, bo: BoHandle) -> Result<B> {
        let b = self.bos.remove(&bo.0).ok_or(Error::UnknownBo(bo))?;
        if let Some((va, _)) = b.gpu_span() {
            self.by_va.remove(&va);
        }
        Ok(b)
    }

    /// True when `[va, va + bytes)` lies inside one GPU-mapped BO.
    pub(crate) fn mapped_contains(&self, va: u64, bytes: u64) -> bool {
        let Some(end) = va.checked_add(bytes) else { return false };
        self.by_va.range(..=va).next_back().is_some_and(|(_, &(e, _))| end <= e)
    }

    /// The GPU-mapped BOs in VA order.
    pub(crate) fn mapped(&self) -> impl Iterator<Item = &B> {
        self.by_va.values().filter_map(|(_, id)| self.bos.get(id))
    }

    /// Copy `data` into `bo` at byte `offset` through its CPU mapping; a failing access is
    /// [`Error::Io`] at `step`.
    ///
    /// Errors: [`Error::UnknownBo`], and those of [`bo_access::write()`].
    pub(crate) fn write(
        &self,
        bo: BoHandle,
        offset: u64,
        data: &[u8],
        step: &'static str,
    ) -> Result<()> {
        let b = self.get(bo)?;
        bo_access::write(bo, b.cpu(), b.size(), offset, data, step)
    }

    /// Copy `out.len()` bytes of `bo` from byte `offset` into `out`; errors as
    /// [`BoTable::write`].
    pub(crate) fn read(
        &self,
        bo: BoHandle,
        offset: u64,
        out: &mut [u8],
        step: &'static str,
    ) -> Result<()> {
        let b = self.get(bo)?;
        bo_access::read(bo, b.cpu(), b.size(), offset, out, step)
    }

    /// Number of BOs.
    pub(crate) fn len(&self) -> usize {
        self.bos.len()
    }

    /// Every record, newest first, leaving the table empty (handles are still not reused).
    pub(crate) fn drain_newest_first(&mut self) -> impl Iterator<Item = B> {
        self.by_va.clear();
        std::mem::take(&mut self.bos).into_values().rev()
    }

    fn index(&mut self, id: u32, bo: &B) {
        if let Some((va, len)) = bo.gpu_span() {
            self.by_va.insert(va, (va + len, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Rec(Option<(u64, u64)>);

    impl TableBo for Rec {
        fn gpu_span(&self) -> Option<(u64, u64)> {
            self.0
        }
        fn size(&self) -> u64 {
            0x1000
        }
        fn cpu(&self) -> Option<&dyn Mapping> {
            None
        }
    }

    #[test]
    fn handles_grow_and_lookups_are_typed() {
        let mut t = BoTable::default();
        assert_eq!(t.insert_with(|| Ok(Rec(None))), Ok(BoHandle(1)));
        assert_eq!(t.insert_with(|| Ok(Rec(None))), Ok(BoHandle(2)));
        let e = t.insert_with(|| Err(Error::InvalidArgument("no".into())));
        assert!(matches!(e, Err(Error::InvalidArgument(_))));
        // A failed creation does not use up a handle.
        assert_eq!(t.insert_with(|| Ok(Rec(None))), Ok(BoHandle(3)));
        assert_eq!(t.get(BoHandle(9)).unwrap_err(), Error::UnknownBo(BoHandle(9)));
        assert_eq!(t.remove(BoHandle(2)).unwrap(), Rec(None));
        assert_eq!(t.remove(BoHandle(2)).unwrap_err(), Error::UnknownBo(BoHandle(2)));
        assert_eq!(t.insert_with(|| Ok(Rec(None))), Ok(BoHandle(4)), "handles are not reused");
    }

    #[test]
    fn containment_follows_every_mapping_change() {
        let mut t = BoTable::default();
        let a = t.insert_with(|| Ok(Rec(Some((0x1000, 0x2000))))).unwrap();
        let b = t.insert_with(|| Ok(Rec(None))).unwrap();
        assert!(t.mapped_contains(0x1000, 0x2000));
        assert!(t.mapped_contains(0x2ffc, 4));
        assert!(!t.mapped_contains(0x2ffc, 8), "runs past the end");
        assert!(!t.mapped_contains(0xffc, 8), "starts before");
        assert!(!t.mapped_contains(u64::MAX, 2), "overflow");
        t.update(b, |r| r.0 = Some((0x3000, 0x1000))).unwrap();
        assert!(t.mapped_contains(0x3000, 0x1000));
        assert!(!t.mapped_contains(0x2ffc, 8), "two BOs side by side are not one");
        assert_eq!(t.mapped().count(), 2);
        t.update(a, |r| r.0 = None).unwrap();
        assert!(!t.mapped_contains(0x1000, 4));
        t.remove(b).unwrap();
        assert!(!t.mapped_contains(0x3000, 4));
        assert_eq!(t.mapped().count(), 0);
    }

    #[test]
    fn drain_releases_newest_first() {
        let mut t = BoTable::default();
        for i in 0..4 {
            t.insert_with(|| Ok(Rec(Some((0x1000 * (i + 1), 0x1000))))).unwrap();
        }
        let order: Vec<u64> = t.drain_newest_first().map(|r| r.0.unwrap().0).collect();
        assert_eq!(order, [0x4000, 0x3000, 0x2000, 0x1000]);
        assert_eq!(t.len(), 0);
        assert!(!t.mapped_contains(0x1000, 4));
    }
}
