//! The device state behind the lock: files, GEM objects, contexts, fences, the engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use pm4rt_core::driver::{Fd, MapAt, Mapping};
use pm4rt_core::{BoHandle, Errno};

use super::gem::GemObject;
use super::mapping::EmuMapping;
use super::preset::Preset;
use super::IoctlFault;
use crate::engine::{Engine, EngineConfig};
use crate::memory::{GpuMemory, PAGE_SIZE};

/// First fake mmap offset: `DRM_FILE_PAGE_OFFSET_START` on 64-bit
/// (`(0xFFFFFFFF >> PAGE_SHIFT) + 1` pages, drm_gem.c) in bytes.
const MMAP_OFFSET_START: u64 = 0x1_0000_0000;
/// Where `MapAt::Anywhere` mappings and reservations are placed (fake CPU addresses).
const CPU_VA_START: u64 = 0x7F00_0000_0000;

/// How a fence of a CS ended (or will end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FenceState {
    /// Queued on engine generation `gen` as engine items `first..=last`. A job without work
    /// has the empty range `last + 1..=last` and retires when item `last` does.
    Engine { gen: u64, first: u64, last: u64 },
    /// Retired.
    Done,
    /// Signalled with an error (`fence->error`).
    Error(Errno),
    /// Never retires (injected hang).
    Hung,
}

/// One scheduler entity of a context (`amdgpu_ctx_entity`): its fences by sequence.
#[derive(Debug)]
pub(crate) struct Entity {
    /// Next sequence number (`centity->sequence`, starts at 1).
    pub(crate) next_seq: u64,
    pub(crate) fences: BTreeMap<u64, FenceState>,
}

impl Default for Entity {
    fn default() -> Self {
        Entity { next_seq: 1, fences: BTreeMap::new() }
    }
}

/// A context (`amdgpu_ctx`).
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) reset_counter: u64,
    pub(crate) reset_counter_query: u64,
    pub(crate) generation: u64,
    pub(crate) guilty: bool,
    /// Entities by (ip_type, ring).
    pub(crate) entities: HashMap<(u32, u32), Entity>,
}

/// One GPU VA mapping of a file's VM.
#[derive(Debug)]
pub(crate) struct VaMap {
    pub(crate) handle: u32,
    pub(crate) gem: Arc<GemObject>,
    pub(crate) size: u64,
    /// The page permissions its GEM_VA flags give.
    pub(crate) perms: crate::memory::Perms,
}

/// An open render node (`drm_file`).
#[derive(Debug, Default)]
pub(crate) struct DrmFile {
    pub(crate) handles: HashMap<u32, Arc<GemObject>>,
    pub(crate) ctxs: HashMap<u32, Ctx>,
    /// BO lists hold references to the BOs (not handles), like `amdgpu_bo_list`.
    pub(crate) bo_lists: HashMap<u32, Vec<Arc<GemObject>>>,
    /// GPU VA (masked with the hole mask) -> mapping.
    pub(crate) vm: BTreeMap<u64, VaMap>,
    /// Page-table updates of `vm` the GPU does not see yet (see `syncobj.rs`).
    pub(crate) pt: super::syncobj::PtUpdates,
    /// DRM sync objects.
    pub(crate) syncobjs: super::syncobj::Syncobjs,
}

/// The lowest free id >= 1 of `map` (`idr_alloc(.., 1, 0, ..)`).
pub(crate) fn lowest_free<V>(map: &HashMap<u32, V>) -> Result<u32, Errno> {
    (1..=u32::MAX).find(|i| !map.contains_key(i)).ok_or(Errno::ENOSPC)
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) preset: Preset,
    pub(crate) mem: Arc<GpuMemory>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) engine_gen: u64,
    pub(crate) files: HashMap<i32, DrmFile>,
    pub(crate) next_fd: i32,
    /// The emulated /dev/kfd processes (see `emu::kfd`).
    pub(crate) kfd: super::kfd::KfdState,
    next_bo_id: u32,
    next_mmap_offset: u64,
    /// Every GEM object by mmap offset (weak: they die with their last reference).
    pub(crate) gems_by_offset: BTreeMap<u64, Weak<GemObject>>,
    pub(crate) faults: Vec<IoctlFault>,
    pub(crate) ioctl_counts: HashMap<u8, u64>,
    pub(crate) hang_after: Option<u64>,
    pub(crate) jobs: u64,
    pub(crate) gpu_reset_counter: u64,
    pub(crate) vram_lost_counter: u64,
    pub(crate) reservations: BTreeMap<u64, usize>,
    next_cpu_va: u64,
    pub(crate) live_gems: Arc<AtomicUsize>,
    pub(crate) live_mmaps: Arc<AtomicUsize>,
    pub(crate) last_error: Option<String>,
    /// User-mode queues and their doorbells (see `userq.rs`).
    pub(crate) userq: super::userq::Userqs,
}

impl State {
    pub(crate) fn new(preset: Preset) -> Result<State, Errno> {
        let mem = Arc::new(GpuMemory::new());
        let engine = Self::start_engine(&mem, &preset)?;
        Ok(State {
            preset,
            mem,
            engine,
            engine_gen: 1,
            files: HashMap::new(),
            next_fd: 3,
            kfd: Default::default(),
            next_bo_id: 1,
            next_mmap_offset: MMAP_OFFSET_START,
            gems_by_offset: BTreeMap::new(),
            faults: Vec::new(),
            ioctl_counts: HashMap::new(),
            hang_after: None,
            jobs: 0,
            gpu_reset_counter: 0,
            vram_lost_counter: 0,
            reservations: BTreeMap::new(),
            next_cpu_va: CPU_VA_START,
            live_gems: Arc::new(AtomicUsize::new(0)),
            live_mmaps: Arc::new(AtomicUsize::new(0)),
            last_error: None,
            userq: super::userq::Userqs::default(),
        })
    }

    fn start_engine(mem: &Arc<GpuMemory>, preset: &Preset) -> Result<Arc<Engine>, Errno> {
        let config = EngineConfig { gfx: preset.gfx, ..EngineConfig::default() };
        let engine = Engine::new(Arc::clone(mem), config).map_err(|_| Errno::EAGAIN)?;
        // The emulated GPU runs pm4rt's kernels like the simulator tier does; a machine whose
        // kernel library does not load runs PM4 without kernels (dispatches then fail).
        if let Ok(registry) =
            crate::dispatch::KernelRegistry::shared_with_mode(preset.gfx, preset.exec)
        {
            engine.set_dispatch_hook(Some(registry));
        }
        Ok(Arc::new(engine))
    }

    /// Record why a request failed and return `errno`.
    pub(crate) fn fail(&mut self, errno: Errno, why: impl Into<String>) -> Errno {
        self.last_error = Some(format!("{}: {}", errno, why.into()));
        errno
    }

    pub(crate) fn file(&mut self, fd: Fd) -> Result<&mut DrmFile, Errno> {
        self.files.get_mut(&fd.0).ok_or(Errno::EBADF)
    }

    pub(crate) fn open(&mut self, path: &str) -> Result<Fd, Errno> {
        if path == super::kfd::KFD_PATH && self.preset.kfd_present {
            return self.kfd_open();
        }
        if !self.preset.render_nodes.iter().any(|p| p == path) {
            return Err(Errno::ENOENT);
        }
        let fd = self.next_fd;
        self.next_fd = fd.checked_add(1).ok_or(Errno::EMFILE)?;
        self.files.insert(fd, DrmFile::default());
        Ok(Fd(fd))
    }

    /// `drm_release`: everything the file owns goes away.
    pub(crate) fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        if self.kfd.is_kfd(fd) {
            return self.kfd_close(fd);
        }
        let file = self.files.remove(&fd.0).ok_or(Errno::EBADF)?;
        self.userq.close_file(fd);
        for m in file.vm.values() {
            let _ = self.mem.unmap(m.gem.id);
        }
        Ok(())
    }

    /// Create a GEM object of `size` (page aligned) bytes.
    pub(crate) fn create_gem(
        &mut self,
        size: u64,
        domains: u64,
        flags: u64,
    ) -> Result<Arc<GemObject>, Errno> {
        let id = BoHandle(self.next_bo_id);
        let size = self.mem.create_bo(id, size).map_err(|_| Errno::ENOMEM)?;
        self.next_bo_id = self.next_bo_id.checked_add(1).ok_or(Errno::ENOMEM)?;
        let mmap_offset = self.next_mmap_offset;
        self.next_mmap_offset = mmap_offset.checked_add(size).ok_or(Errno::ENOMEM)?;
        self.live_gems.fetch_add(1, Ordering::SeqCst);
        let gem = Arc::new(GemObject {
            mem: Arc::clone(&self.mem),
            id,
            size,
            domains,
            flags,
            mmap_offset,
            live: Arc::clone(&self.live_gems),
        });
        self.gems_by_offset.retain(|_, w| w.strong_count() > 0);
        self.gems_by_offset.insert(mmap_offset, Arc::downgrade(&gem));
        Ok(gem)
    }

    /// `drm_gem_mmap` + `drm_gem_mmap_obj`.
    pub(crate) fn mmap(
        &mut self,
        fd: Fd,
        offset: u64,
        len: usize,
        at: MapAt,
    ) -> Result<Box<dyn Mapping>, Errno> {
        if self.kfd.is_kfd(fd) {
            return self.kfd_mmap(fd, offset, len);
        }
        self.file(fd)?;
        // mmap(2): zero length, misaligned offset or fixed address is EINVAL.
        if len == 0 || offset & (PAGE_SIZE - 1) != 0 {
            return Err(self.fail(Errno::EINVAL, "mmap: zero length or unaligned offset"));
        }
        // drm_vma_offset_exact_lookup_locked: the offset must be the start of an object.
        let gem = self.gems_by_offset.get(&offset).and_then(Weak::upgrade);
        let Some(gem) = gem else {
            return Err(self.fail(Errno::EINVAL, format!("mmap: no GEM object at {offset:#x}")));
        };
        // drm_vma_node_is_allowed: this file must hold a handle to it.
        let allowed = self.file(fd)?.handles.values().any(|g| Arc::ptr_eq(g, &gem));
        if !allowed {
            return Err(self.fail(Errno::EACCES, "mmap: the file holds no handle to the BO"));
        }
        // drm_gem_mmap_obj: obj_size < vma size is EINVAL.
        let pages = (len as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        if pages > gem.size {
            return Err(self.fail(Errno::EINVAL, "mmap: longer than the BO"));
        }
        let addr = match at {
            MapAt::Fixed(a) if a & (PAGE_SIZE - 1) != 0 => {
                return Err(self.fail(Errno::EINVAL, "mmap: MAP_FIXED address not page aligned"))
            }
            MapAt::Fixed(a) => a,
            MapAt::Anywhere => self.alloc_cpu_va(pages, PAGE_SIZE)?,
        };
        self.live_mmaps.fetch_add(1, Ordering::SeqCst);
        let plain =
            EmuMapping { gem: Arc::clone(&gem), addr, len, live: Arc::clone(&self.live_mmaps) };
        Ok(self.userq.wrap_mapping(&gem, plain))
    }

    fn alloc_cpu_va(&mut self, len: u64, align: u64) -> Result<u64, Errno> {
        let start = self.next_cpu_va.checked_next_multiple_of(align).ok_or(Errno::ENOMEM)?;
        // Leave a guard page between placements.
        self.next_cpu_va =
            start.checked_add(len).and_then(|e| e.checked_add(PAGE_SIZE)).ok_or(Errno::ENOMEM)?;
        Ok(start)
    }

    pub(crate) fn reserve_va(&mut self, len: usize, align: usize) -> Result<u64, Errno> {
        if len == 0 || !align.is_power_of_two() {
            return Err(Errno::EINVAL);
        }
        let len64 = (len as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let addr = self.alloc_cpu_va(len64, (align as u64).max(PAGE_SIZE))?;
        self.reservations.insert(addr, len);
        Ok(addr)
    }

    pub(crate) fn release_va(&mut self, addr: u64, len: usize) -> Result<(), Errno> {
        match self.reservations.get(&addr) {
            Some(&l) if l == len => {
                self.reservations.remove(&addr);
                Ok(())
            }
            _ => {
                Err(self.fail(Errno::EINVAL, format!("release_va: no reservation {addr:#x}+{len}")))
            }
        }
    }

    /// Apply a halt of the engine, if any: the GPU-reset model of the module docs.
    pub(crate) fn sync_engine(&mut self) -> Result<(), Errno> {
        let Some((hseq, err)) = self.engine.halted() else {
            return Ok(());
        };
        let gen = self.engine_gen;
        for file in self.files.values_mut() {
            for ctx in file.ctxs.values_mut() {
                for ent in ctx.entities.values_mut() {
                    for f in ent.fences.values_mut() {
                        if let FenceState::Engine { gen: g, first, last } = *f {
                            if g != gen {
                                continue;
                            }
                            *f = if last < hseq {
                                FenceState::Done
                            } else if first <= hseq {
                                ctx.guilty = true;
                                FenceState::Error(Errno::ETIME)
                            } else {
                                FenceState::Error(Errno::ECANCELED)
                            };
                        }
                    }
                }
            }
        }
        self.gpu_reset_counter += 1;
        self.last_error = Some(format!("GPU reset: job (engine item {hseq}) failed: {err}"));
        self.engine = Self::start_engine(&self.mem, &self.preset)?;
        self.engine_gen += 1;
        Ok(())
    }

    /// See [`super::EmulatedDevice::lose_device`].
    pub(crate) fn lose_device(&mut self, guilty: bool) {
        let _ = self.sync_engine();
        self.gpu_reset_counter += 1;
        self.vram_lost_counter += 1;
        for file in self.files.values_mut() {
            for ctx in file.ctxs.values_mut() {
                ctx.guilty |= guilty;
                for ent in ctx.entities.values_mut() {
                    for f in ent.fences.values_mut() {
                        if matches!(f, FenceState::Engine { .. } | FenceState::Hung) {
                            *f = FenceState::Error(Errno::ECANCELED);
                        }
                    }
                }
            }
        }
        self.last_error = Some("device lost (injected): GPU reset with VRAM loss".into());
        if let Ok(e) = Self::start_engine(&self.mem, &self.preset) {
            self.engine = e;
            self.engine_gen += 1;
        }
    }
}
