//! The emulated amdgpu DRM device: a [`Driver`] that answers the render-node ioctls from their
//! raw argument bytes, validates them the way the kernel does (citing the kernel function
//! whose errno it reproduces) and runs command submissions on the simulator's [`Engine`](crate::engine::Engine).
//!
//! # Model
//!
//! - One device = one [`GpuMemory`](crate::memory::GpuMemory) and one engine (the compute ring). Every `open` of a render
//!   node is a `drm_file` with its own GEM handles, contexts, BO lists and GPU VM table.
//! - `ioctl` goes through a declarative table (`table.rs`), whose dispatcher copies the argument in and out exactly like
//!   `drm_ioctl` (match by nr, zero-extend / truncate size differences, direction bits).
//! - Pointer fields of arguments are resolved in the caller's `user` slices; a pointer into no
//!   slice fails with `EFAULT` where the kernel's `copy_from_user` would.
//! - `mmap` of a GEM_MMAP offset returns a [`Mapping`] onto the BO's simulated memory.
//!
//! # Strictness beyond the ioctl checks (documented deviations)
//!
//! - **Residency.** Every IB of a CS must lie, byte for byte, in GPU VA mappings of BOs that
//!   are in the submission's BO list (BO_HANDLES chunk or `bo_list_handle`) or were created
//!   `VM_ALWAYS_VALID`. Otherwise the submission is accepted (the kernel does not check) but
//!   behaves like a job whose BO was evicted: its fence fails with `ETIME` (the job timeout's
//!   error) and the context becomes guilty, so later CS on it return `ECANCELED`.
//! - **Faults.** A job that faults or hangs in the engine (page fault, bad PM4) is treated as a
//!   GPU reset: its fence fails with `ETIME`, its context is guilty, every context sees
//!   `AMDGPU_CTX_QUERY2_FLAGS_RESET`, jobs queued behind it fail with `ECANCELED`, and a fresh
//!   engine takes over.
//! - **IB length.** The kernel accepts any IB length; the ring's INDIRECT_BUFFER carries it in
//!   the 20-bit IB_SIZE field unmasked (`gfx_v12_0_ring_emit_ib_compute`). The emulated CP runs
//!   `length mod 2^20` dwords of an IB of 2^20 dwords or more (nothing for a multiple), and a
//!   length with bits \[27:24\] set (spilled into VMID) faults the job like an eviction.
//! - **One VM.** All files share one simulated address space (the kernel gives each its own).
//! - **Whole-BO mappings.** GEM_VA MAP with `offset_in_bo != 0`, a `map_size` other than the
//!   BO size, or a second mapping of the same BO is refused with `EINVAL` although the kernel
//!   accepts it (the simulated memory maps whole BOs); [`EmulatedDevice::last_error`] says so.
//! - **Bounded waits.** A WAIT_CS with an infinite timeout returns "busy" after
//!   [`Preset::wait_cap`] instead of blocking forever.
//! - **Page-table updates.** A GEM_VA MAP is in the file's VM at once but reaches the GPU
//!   only when its update completes: when a `SYNCOBJ_TIMELINE_WAIT` waits for its
//!   `vm_timeline_syncobj_out` point, or at the file's next CS (`syncobj.rs`). A user queue
//!   using a mapping nobody waited for faults.
//! - **Doorbells.** A KFD or user-queue doorbell runs the ring only up to the smaller of the
//!   value written and the write pointer in memory, what a re-mapped queue's CP reads
//!   (`doorbell.rs`); the engine reports the read pointer as the CP does, a 32-bit dword
//!   offset wrapped at the ring size.

mod doorbell;
mod drm;
mod gem;
mod kfd;
mod mapping;
mod preset;
mod state;
mod syncobj;
mod table;
mod user;
mod userq;

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use pm4rt_core::driver::{Driver, Fd, MapAt, Mapping};
use pm4rt_core::Errno;

pub use kfd::{
    node_queue_sizes, topology_files, KfdLive, EMU_GPU_ID, GPUVM_BASE, GPUVM_LIMIT, KFD_PATH,
    TOPOLOGY_ROOT,
};
pub use preset::{
    Preset, GMC_HOLE_END, GMC_HOLE_MASK, GMC_HOLE_START, VA_RESERVED_BOTTOM, VA_RESERVED_TOP,
};
pub use table::{ioctl_names, EMULATED_IOCTLS};

use state::State;

/// Live kernel objects of an [`EmulatedDevice`], for leak checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveHandles {
    /// Open file descriptors.
    pub fds: usize,
    /// Contexts (CTX ALLOC without FREE).
    pub contexts: usize,
    /// GEM handles (GEM_CREATE without GEM_CLOSE).
    pub gem_handles: usize,
    /// GEM objects still alive (a handle, VA mapping or CPU mmap keeps one alive).
    pub bos: usize,
    /// BO lists (BO_LIST CREATE without DESTROY).
    pub bo_lists: usize,
    /// GPU VA mappings (GEM_VA MAP without UNMAP).
    pub va_mappings: usize,
    /// CPU mappings not yet dropped.
    pub mmaps: usize,
    /// CPU address reservations not yet released.
    pub va_reservations: usize,
    /// User-mode queues (USERQ CREATE without FREE).
    pub user_queues: usize,
    /// DRM sync objects (SYNCOBJ_CREATE without DESTROY).
    pub syncobjs: usize,
}

impl LiveHandles {
    /// True when nothing is alive.
    pub fn is_zero(&self) -> bool {
        *self == LiveHandles::default()
    }
}

/// An injected ioctl failure: the `nth` call (1-based) with command number `nr` fails with
/// `errno` before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoctlFault {
    /// `_IOC_NR` of the request (sizes and directions of the same command all count).
    pub nr: u8,
    /// Which call fails: 1-based, counted over the device's whole life (see
    /// [`EmulatedDevice::ioctl_count`] to arm "the next but one").
    pub nth: u64,
    /// The errno returned.
    pub errno: Errno,
}

impl IoctlFault {
    /// Count one call of the ioctl numbered `nr` in `counts` and return the call's 1-based
    /// number with the injected failure of that call in `faults`, if one is armed.
    pub(crate) fn count_call(
        counts: &mut std::collections::HashMap<u8, u64>,
        faults: &[IoctlFault],
        nr: u8,
    ) -> (u64, Option<Errno>) {
        let count = counts.entry(nr).or_insert(0);
        *count += 1;
        let nth = *count;
        (nth, faults.iter().find(|f| f.nr == nr && f.nth == nth).map(|f| f.errno))
    }
}

/// The emulated amdgpu device. See the module documentation.
#[derive(Debug)]
pub struct EmulatedDevice {
    state: Mutex<State>,
}

impl EmulatedDevice {
    /// A device behaving like `preset`.
    ///
    /// Errors: `EAGAIN` when the engine thread cannot be started.
    pub fn new(preset: Preset) -> Result<EmulatedDevice, Errno> {
        Ok(EmulatedDevice { state: Mutex::new(State::new(preset)?) })
    }

    /// A healthy R9700 (gfx1201), [`Preset::r9700_gfx1201`].
    ///
    /// Errors: as [`EmulatedDevice::new`].
    pub fn r9700() -> Result<EmulatedDevice, Errno> {
        Self::new(Preset::r9700_gfx1201())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The preset in effect.
    pub fn preset(&self) -> Preset {
        self.lock().preset.clone()
    }

    /// The simulated memory (tests read any GPU VA directly).
    pub fn memory(&self) -> std::sync::Arc<crate::memory::GpuMemory> {
        self.lock().mem.clone()
    }

    /// Fail the `nth` ioctl (1-based, counted since the device was created) whose command
    /// number is that of `request` with `errno`.
    pub fn fail_ioctl(&self, request: u32, nth: u64, errno: Errno) {
        let nr = pm4rt_core::abi::ioctl::ioc_nr(request);
        self.lock().faults.push(IoctlFault { nr, nth, errno });
    }

    /// How many ioctls with the command number of `request` were made so far.
    pub fn ioctl_count(&self, request: u32) -> u64 {
        let nr = pm4rt_core::abi::ioctl::ioc_nr(request);
        self.lock().ioctl_counts.get(&nr).copied().unwrap_or(0)
    }

    /// Every CS job numbered above `n` (jobs are counted from 1 over the device's life) is
    /// accepted but never retires: WAIT_CS reports busy until its timeout.
    pub fn hang_after(&self, n: u64) {
        self.lock().hang_after = Some(n);
    }

    /// Simulate a GPU reset with VRAM loss: every existing context sees
    /// `RESET | VRAMLOST` (and `GUILTY` when `guilty`), its later CS fail with `ECANCELED`,
    /// and unfinished fences fail with `ECANCELED`. Contexts created afterwards work.
    pub fn lose_device(&self, guilty: bool) {
        self.lock().lose_device(guilty);
    }

    /// Why the last request was refused or the last job failed, in words (kernel function
    /// and condition), if any.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// How many 64-bit stores the user-queue doorbell pages have received.
    pub fn doorbell_rings(&self) -> u64 {
        self.lock().userq.doorbell_rings()
    }

    /// Live kernel objects (see [`LiveHandles`]).
    pub fn live_handles(&self) -> LiveHandles {
        let s = self.lock();
        let mut h = LiveHandles {
            fds: s.files.len(),
            bos: s.live_gems.load(Ordering::SeqCst),
            mmaps: s.live_mmaps.load(Ordering::SeqCst),
            va_reservations: s.reservations.len(),
            user_queues: s.userq.count(),
            ..LiveHandles::default()
        };
        for f in s.files.values() {
            h.contexts += f.ctxs.len();
            h.gem_handles += f.handles.len();
            h.bo_lists += f.bo_lists.len();
            h.va_mappings += f.vm.len();
            h.syncobjs += f.syncobjs.count();
        }
        h
    }
}

impl Driver for EmulatedDevice {
    fn open(&self, path: &str) -> Result<Fd, Errno> {
        self.lock().open(path)
    }

    fn close(&self, fd: Fd) -> Result<(), Errno> {
        self.lock().close(fd)
    }

    fn ioctl(
        &self,
        fd: Fd,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<(), Errno> {
        table::dispatch(self, fd, request, arg, user)
    }

    fn mmap(&self, fd: Fd, offset: u64, len: usize, at: MapAt) -> Result<Box<dyn Mapping>, Errno> {
        self.lock().mmap(fd, offset, len, at)
    }

    fn reserve_va(&self, len: usize, align: usize) -> Result<u64, Errno> {
        self.lock().reserve_va(len, align)
    }

    fn release_va(&self, addr: u64, len: usize) -> Result<(), Errno> {
        self.lock().release_va(addr, len)
    }

    fn read_file(&self, path: &str) -> Result<String, Errno> {
        let preset = self.lock().preset.clone();
        let mut files = preset.files();
        files.extend(kfd::topology_files(&preset));
        files.get(path).cloned().ok_or(Errno::ENOENT)
    }

    fn list_dir(&self, path: &str) -> Result<Vec<String>, Errno> {
        let preset = self.lock().preset.clone();
        let mut files = preset.files();
        files.extend(kfd::topology_files(&preset));
        if files.contains_key(path) {
            // ENOTDIR (20): opendir of a regular file.
            return Err(Errno::ENOTDIR);
        }
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut names: Vec<String> = files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('/').next())
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(Errno::ENOENT);
        }
        Ok(names)
    }

    fn kernel_release(&self) -> Result<String, Errno> {
        Ok(self.lock().preset.kernel_release.clone())
    }
}
