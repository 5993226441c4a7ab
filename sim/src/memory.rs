//! The simulated GPU's memory: buffer objects (host byte buffers) bound into a GPU virtual
//! address space of 4 KiB pages.
//!
//! [`GpuMemory`] is shared (behind an `Arc`) by the host side (the submitter, the emulated
//! kernel device) and the queue thread. Locking is two-level so large kernels do not serialise
//! everything:
//!
//! - the VA map (which BO sits at which page-aligned VA) is one `RwLock`, held only while a
//!   range is translated, never while bytes are touched;
//! - every BO's bytes have their own `RwLock`, held for the duration of one access.
//!
//! An access that touches any byte without a mapping fails with
//! [`Error::Fault`] naming the first unmapped byte; nothing is read or written in that case.
//!
//! Page permissions: every mapping carries the [`Perms`] its page-table entries would have
//! (`AMDGPU_PTE_READABLE`, `_WRITEABLE`, `_EXECUTABLE`, from the `GEM_VA` flags or the KFD
//! allocation flags). GPU reads need `read`, writes need `write`, and an instruction fetch
//! ([`GpuMemory::with_code`]) needs `execute`; an access the first byte of a mapping forbids
//! faults there like an unmapped byte, as the GPU's VM raises a permission fault. CPU access
//! to a BO ([`GpuMemory::read_bo`], [`GpuMemory::write_bo`]) goes through the BO, not the
//! GPU page tables, and is not restricted.
//!
//! Borrowing: [`GpuMemory::with_slice`] / [`GpuMemory::with_slice_mut`] hand a closure the
//! bytes of a range without copying when the range lies inside one BO (the common case for
//! weights). While such a closure runs, the calling thread holds that BO's lock; touching the
//! *same* BO again from inside the closure (through any method of this type) is refused with
//! [`Error::InvalidArgument`] instead of deadlocking. Borrowing *other* BOs inside is fine.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pm4rt_core::{BoHandle, Errno, Error, Result};

/// The GPU page size: mappings start and end on multiples of it.
pub use pm4rt_core::PAGE_SIZE;

/// Round `size` up to a whole number of pages; `None` on overflow.
pub fn page_round_up(size: u64) -> Option<u64> {
    size.checked_add(PAGE_SIZE - 1).map(|s| s & !(PAGE_SIZE - 1))
}

/// One BO's storage.
#[derive(Debug)]
struct Bo {
    id: BoHandle,
    bytes: RwLock<Vec<u8>>,
}

/// What the GPU may do with the pages of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Reads allowed (`AMDGPU_VM_PAGE_READABLE`; always on for KFD allocations).
    pub read: bool,
    /// Writes allowed (`AMDGPU_VM_PAGE_WRITEABLE`, `KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE`).
    pub write: bool,
    /// Instruction fetch allowed (`AMDGPU_VM_PAGE_EXECUTABLE`,
    /// `KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE`).
    pub execute: bool,
}

impl Perms {
    /// Read, write and execute: what the reference clients map every BO with.
    pub const ALL: Perms = Perms { read: true, write: true, execute: true };
    /// Read and write, no instruction fetch.
    pub const READ_WRITE: Perms = Perms { read: true, write: true, execute: false };
    /// Read only.
    pub const READ_ONLY: Perms = Perms { read: true, write: false, execute: false };

    fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::ReadWrite => self.read && self.write,
            Access::Execute => self.execute,
        }
    }
}

/// The kind of a GPU access, checked against [`Perms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    ReadWrite,
    Execute,
}

/// One mapping of the VA space: `len` bytes (whole pages) of `bo` from offset 0.
#[derive(Debug, Clone)]
struct MapEntry {
    bo: Arc<Bo>,
    len: u64,
    perms: Perms,
}

/// A piece of a translated VA range that lies inside one BO.
struct Segment {
    bo: Arc<Bo>,
    /// Byte offset inside the BO.
    offset: usize,
    /// Bytes in this piece.
    len: usize,
}

#[derive(Debug, Default)]
struct Tables {
    bos: HashMap<BoHandle, Arc<Bo>>,
    /// VA -> mapping, keyed by the mapping's first VA.
    maps: BTreeMap<u64, MapEntry>,
    /// BO -> its VA, for the mapped ones.
    bo_va: HashMap<BoHandle, u64>,
}

thread_local! {
    /// BOs whose lock this thread holds inside a `with_slice*` closure.
    static BORROWED: RefCell<Vec<BoHandle>> = const { RefCell::new(Vec::new()) };
}

/// Marks a BO as borrowed by this thread until dropped.
struct BorrowMark(BoHandle);

impl BorrowMark {
    fn new(id: BoHandle) -> Self {
        BORROWED.with(|b| b.borrow_mut().push(id));
        BorrowMark(id)
    }
}

impl Drop for BorrowMark {
    fn drop(&mut self) {
        BORROWED.with(|b| {
            let mut b = b.borrow_mut();
            if let Some(i) = b.iter().rposition(|x| *x == self.0) {
                b.remove(i);
            }
        });
    }
}

fn check_not_borrowed(id: BoHandle) -> Result<()> {
    if BORROWED.with(|b| b.borrow().contains(&id)) {
        return Err(Error::InvalidArgument(format!(
            "{id} accessed again inside a with_slice closure that borrows it"
        )));
    }
    Ok(())
}

fn read_guard(bo: &Bo) -> Result<RwLockReadGuard<'_, Vec<u8>>> {
    check_not_borrowed(bo.id)?;
    // A poisoned lock only means a closure panicked while holding it; the bytes are still
    // plain bytes, so keep going.
    Ok(bo.bytes.read().unwrap_or_else(|e| e.into_inner()))
}

fn write_guard(bo: &Bo) -> Result<RwLockWriteGuard<'_, Vec<u8>>> {
    check_not_borrowed(bo.id)?;
    Ok(bo.bytes.write().unwrap_or_else(|e| e.into_inner()))
}

/// A GPU virtual address space over BO storage. See the module documentation.
#[derive(Debug, Default)]
pub struct GpuMemory {
    tables: RwLock<Tables>,
}

impl GpuMemory {
    /// An empty address space with no BOs.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn tables_mut(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    fn bo(&self, id: BoHandle) -> Result<Arc<Bo>> {
        self.tables().bos.get(&id).cloned().ok_or(Error::UnknownBo(id))
    }

    /// Create a zero-filled BO with id `id` of `size` bytes rounded up to whole pages.
    ///
    /// The caller chooses the id (the submitter's handle, or the emulated device's own).
    ///
    /// Errors: [`Error::InvalidArgument`] for a zero size or an id already in use;
    /// [`Error::Io`] (`ENOMEM`) when the host cannot provide the memory.
    pub fn create_bo(&self, id: BoHandle, size: u64) -> Result<u64> {
        if size == 0 {
            return Err(Error::InvalidArgument("BO size 0".into()));
        }
        let rounded = page_round_up(size)
            .and_then(|s| usize::try_from(s).ok())
            .ok_or(Error::io("alloc_bo", Errno::ENOMEM))?;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(rounded).map_err(|_| Error::io("alloc_bo", Errno::ENOMEM))?;
        bytes.resize(rounded, 0);
        let mut t = self.tables_mut();
        if t.bos.contains_key(&id) {
            return Err(Error::InvalidArgument(format!("{id} already exists")));
        }
        t.bos.insert(id, Arc::new(Bo { id, bytes: RwLock::new(bytes) }));
        Ok(rounded as u64)
    }

    /// Destroy a BO, unmapping it first if mapped. Accesses already holding its bytes finish
    /// on the old storage.
    ///
    /// Errors: [`Error::UnknownBo`].
    pub fn destroy_bo(&self, id: BoHandle) -> Result<()> {
        let mut t = self.tables_mut();
        t.bos.remove(&id).ok_or(Error::UnknownBo(id))?;
        if let Some(va) = t.bo_va.remove(&id) {
            t.maps.remove(&va);
        }
        Ok(())
    }

    /// The size in bytes (whole pages) of BO `id`.
    ///
    /// Errors: [`Error::UnknownBo`].
    pub fn bo_size(&self, id: BoHandle) -> Result<u64> {
        let bo = self.bo(id)?;
        let len = read_guard(&bo)?.len() as u64;
        Ok(len)
    }

    /// The VA BO `id` is mapped at, if any.
    ///
    /// Errors: [`Error::UnknownBo`].
    pub fn bo_va(&self, id: BoHandle) -> Result<Option<u64>> {
        let t = self.tables();
        if !t.bos.contains_key(&id) {
            return Err(Error::UnknownBo(id));
        }
        Ok(t.bo_va.get(&id).copied())
    }

    /// Map the whole of BO `id` at `va` (page aligned) with page permissions `perms`. The
    /// mapping must not overlap another one, and a BO is mapped at most once. No range policy
    /// is applied here (see the submitter for that).
    ///
    /// Errors: [`Error::UnknownBo`]; [`Error::BadVa`] when `va` is misaligned, the range
    /// wraps, overlaps a mapping, or the BO is already mapped.
    pub fn map(&self, id: BoHandle, va: u64, perms: Perms) -> Result<()> {
        let bad = |reason| Error::BadVa { bo: id, va, reason };
        let mut t = self.tables_mut();
        let bo = t.bos.get(&id).cloned().ok_or(Error::UnknownBo(id))?;
        if va & (PAGE_SIZE - 1) != 0 {
            return Err(bad("not 4 KiB aligned"));
        }
        if t.bo_va.contains_key(&id) {
            return Err(bad("BO already mapped"));
        }
        let len = read_guard(&bo)?.len() as u64;
        let end = va.checked_add(len).ok_or(bad("range wraps the address space"))?;
        if Self::overlaps(&t.maps, va..end) {
            return Err(bad("overlaps an existing mapping"));
        }
        t.maps.insert(va, MapEntry { bo, len, perms });
        t.bo_va.insert(id, va);
        Ok(())
    }

    fn overlaps(maps: &BTreeMap<u64, MapEntry>, r: Range<u64>) -> bool {
        if let Some((&start, e)) = maps.range(..r.end).next_back() {
            // The last mapping starting before r.end overlaps iff it ends after r.start.
            return start + e.len > r.start;
        }
        false
    }

    /// Remove BO `id`'s mapping and return the VA it had.
    ///
    /// Errors: [`Error::UnknownBo`]; [`Error::BadVa`] when it is not mapped.
    pub fn unmap(&self, id: BoHandle) -> Result<u64> {
        let mut t = self.tables_mut();
        if !t.bos.contains_key(&id) {
            return Err(Error::UnknownBo(id));
        }
        let va = t.bo_va.remove(&id).ok_or(Error::BadVa { bo: id, va: 0, reason: "not mapped" })?;
        t.maps.remove(&va);
        Ok(va)
    }

    /// The lowest page-aligned VA inside `range` where `size` bytes fit without overlapping a
    /// mapping, or `None`.
    pub fn find_free(&self, range: Range<u64>, size: u64) -> Option<u64> {
        let size = page_round_up(size)?;
        let t = self.tables();
        let mut cand = page_round_up(range.start)?;
        for (&start, e) in t.maps.range(..range.end) {
            let end = start + e.len;
            if end <= cand {
                continue;
            }
            if start >= cand && start - cand >= size {
                break;
            }
            cand = page_round_up(end)?;
        }
        let end = cand.checked_add(size)?;
        (end <= range.end).then_some(cand)
    }

    /// The permissions of the mapping holding `va`, if any.
    pub fn perms_at(&self, va: u64) -> Option<Perms> {
        let t = self.tables();
        let (s, e) = t.maps.range(..=va).next_back()?;
        (va - *s < e.len).then_some(e.perms)
    }

    /// Translate `len` bytes at `va` into BO pieces for `access`. Fails on the first byte
    /// that is unmapped or whose mapping forbids the access.
    fn translate(&self, va: u64, len: u64, access: Access) -> Result<Vec<Segment>> {
        let t = self.tables();
        let mut segs = Vec::new();
        let mut cur = va;
        let mut left = len;
        while left > 0 {
            let hit = t.maps.range(..=cur).next_back().filter(|(s, e)| cur - **s < e.len);
            let Some((&start, e)) = hit.filter(|(_, e)| e.perms.allows(access)) else {
                return Err(Error::Fault { va: cur });
            };
            let off = cur - start;
            let n = left.min(e.len - off);
            segs.push(Segment { bo: e.bo.clone(), offset: off as usize, len: n as usize });
            left -= n;
            match cur.checked_add(n) {
                Some(c) => cur = c,
                None if left == 0 => break,
                // Running off the top of the 64-bit space: nothing is mapped there.
                None => return Err(Error::Fault { va: 0 }),
            }
        }
        Ok(segs)
    }

    fn check_len(len: usize) -> Result<u64> {
        u64::try_from(len).map_err(|_| Error::InvalidArgument("length exceeds u64".into()))
    }

    /// Copy `out.len()` bytes from GPU VA `va` into `out`.
    ///
    /// Errors: [`Error::Fault`] at the first unmapped or unreadable byte (nothing is
    /// copied); [`Error::InvalidArgument`] for a re-entrant borrow (see the module docs).
    pub fn read(&self, va: u64, out: &mut [u8]) -> Result<()> {
        let segs = self.translate(va, Self::check_len(out.len())?, Access::Read)?;
        let mut pos = 0;
        for s in segs {
            let g = read_guard(&s.bo)?;
            out[pos..pos + s.len].copy_from_slice(&g[s.offset..s.offset + s.len]);
            pos += s.len;
        }
        Ok(())
    }

    /// Copy `data` to GPU VA `va`.
    ///
    /// Errors: [`Error::Fault`] at the first unmapped or read-only byte (nothing is
    /// written); [`Error::InvalidArgument`] for a re-entrant borrow.
    pub fn write(&self, va: u64, data: &[u8]) -> Result<()> {
        let segs = self.translate(va, Self::check_len(data.len())?, Access::Write)?;
        let mut pos = 0;
        for s in segs {
            let mut g = write_guard(&s.bo)?;
            g[s.offset..s.offset + s.len].copy_from_slice(&data[pos..pos + s.len]);
            pos += s.len;
        }
        Ok(())
    }

    /// Read a little-endian `u32` at `va` (any alignment). Errors: as [`GpuMemory::read`].
    pub fn read_u32(&self, va: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Read a little-endian `u64` at `va`. Errors: as [`GpuMemory::read`].
    pub fn read_u64(&self, va: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Write a little-endian `u32` at `va`. Errors: as [`GpuMemory::write`].
    pub fn write_u32(&self, va: u64, v: u32) -> Result<()> {
        self.write(va, &v.to_le_bytes())
    }

    /// Write a little-endian `u64` at `va`. Errors: as [`GpuMemory::write`].
    pub fn write_u64(&self, va: u64, v: u64) -> Result<()> {
        self.write(va, &v.to_le_bytes())
    }

    /// Read `count` little-endian dwords at `va`. Errors: as [`GpuMemory::read`].
    pub fn read_dwords(&self, va: u64, count: usize) -> Result<Vec<u32>> {
        let bytes = count
            .checked_mul(4)
            .ok_or_else(|| Error::InvalidArgument(format!("{count} dwords overflow")))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(bytes)
            .map_err(|_| Error::InvalidArgument(format!("cannot buffer {count} dwords")))?;
        buf.resize(bytes, 0);
        self.read(va, &mut buf)?;
        Ok(buf.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// Run `f` on the `len` bytes at `va`. When the range lies inside one BO, `f` borrows
    /// them in place (no copy; the BO is read-locked meanwhile); when it spans BOs, `f` gets
    /// a temporary copy.
    ///
    /// Errors: [`Error::Fault`] at the first unmapped or unreadable byte (`f` is not called);
    /// [`Error::InvalidArgument`] for a re-entrant borrow of the same BO.
    pub fn with_slice<R>(&self, va: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.borrow(va, len, Access::Read, f)
    }

    /// [`GpuMemory::with_slice`] for an instruction fetch: every byte must be executable.
    ///
    /// Errors: [`Error::Fault`] at the first unmapped or non-executable byte; as
    /// `with_slice` otherwise.
    pub fn with_code<R>(&self, va: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.borrow(va, len, Access::Execute, f)
    }

    fn borrow<R>(
        &self,
        va: u64,
        len: usize,
        access: Access,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let mut segs = self.translate(va, Self::check_len(len)?, access)?;
        if segs.len() == 1 {
            let s = segs.remove(0);
            let g = read_guard(&s.bo)?;
            let _mark = BorrowMark::new(s.bo.id);
            return Ok(f(&g[s.offset..s.offset + s.len]));
        }
        let mut tmp = vec![0u8; len];
        let mut pos = 0;
        for s in segs {
            let g = read_guard(&s.bo)?;
            tmp[pos..pos + s.len].copy_from_slice(&g[s.offset..s.offset + s.len]);
            pos += s.len;
        }
        Ok(f(&tmp))
    }

    /// Run `f` on the `len` bytes at `va`, mutably. In place when the range lies inside one
    /// BO (write-locked meanwhile); otherwise on a copy that is written back after `f`.
    ///
    /// Errors: as [`GpuMemory::with_slice`]; the bytes must be readable and writable.
    pub fn with_slice_mut<R>(
        &self,
        va: u64,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R> {
        let mut segs = self.translate(va, Self::check_len(len)?, Access::ReadWrite)?;
        if segs.len() == 1 {
            let s = segs.remove(0);
            let mut g = write_guard(&s.bo)?;
            let _mark = BorrowMark::new(s.bo.id);
            return Ok(f(&mut g[s.offset..s.offset + s.len]));
        }
        let mut tmp = vec![0u8; len];
        self.read(va, &mut tmp)?;
        let r = f(&mut tmp);
        self.write(va, &tmp)?;
        Ok(r)
    }

    fn bo_range(id: BoHandle, size: u64, offset: u64, len: usize) -> Result<Range<usize>> {
        let oob = || Error::OutOfBounds { bo: id, offset, len: len as u64, size };
        let end = offset.checked_add(len as u64).ok_or_else(oob)?;
        if end > size {
            return Err(oob());
        }
        Ok(offset as usize..end as usize)
    }

    /// Copy `out.len()` bytes of BO `id` from byte `offset` (CPU access; no mapping needed).
    ///
    /// Errors: [`Error::UnknownBo`], [`Error::OutOfBounds`], [`Error::InvalidArgument`] for a
    /// re-entrant borrow.
    pub fn read_bo(&self, id: BoHandle, offset: u64, out: &mut [u8]) -> Result<()> {
        let bo = self.bo(id)?;
        let g = read_guard(&bo)?;
        let r = Self::bo_range(id, g.len() as u64, offset, out.len())?;
        out.copy_from_slice(&g[r]);
        Ok(())
    }

    /// Copy `data` into BO `id` at byte `offset` (CPU access; no mapping needed).
    ///
    /// Errors: as [`GpuMemory::read_bo`].
    pub fn write_bo(&self, id: BoHandle, offset: u64, data: &[u8]) -> Result<()> {
        let bo = self.bo(id)?;
        let mut g = write_guard(&bo)?;
        let r = Self::bo_range(id, g.len() as u64, offset, data.len())?;
        g[r].copy_from_slice(data);
        Ok(())
    }

    /// Number of live BOs (for leak checks).
    pub fn bo_count(&self) -> usize {
        self.tables().bos.len()
    }
}
