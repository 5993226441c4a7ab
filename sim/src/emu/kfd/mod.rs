//! The emulated `/dev/kfd`: KFD ioctls decoded from their raw argument bytes and validated the
//! way `kfd_chardev.c` / `kfd_queue.c` do, a fake topology tree, doorbells whose 64-bit stores
//! make the engine consume the ring up to the smaller of the stored value and the write
//! pointer at `write_pointer_address` (what a re-loaded queue's CP reads, see `doorbell.rs`),
//! and signal events woken by `RELEASE_MEM` INT_SEL 2.
//!
//! Model (documented deviations):
//! - One GPU node (`nodes/1`, gpu_id [`EMU_GPU_ID`]) behind a CPU node (`nodes/0`).
//! - ALLOC creates the VM mapping at `va_addr` (as `kfd_mem_attach` does); MAP makes the
//!   simulated memory reachable by the engine; a BO is a GEM object of the render file so the
//!   render node can mmap it at `mmap_offset`.
//! - CREATE_QUEUE checks `kfd_queue_acquire_buffers`: ring, wptr, rptr, EOP and CWSR addresses
//!   must each start an allocation of exactly the expected size; `ctl_stack_size` equal to the
//!   node's, `ctx_save_restore_size` at least the node's `cwsr_size`, the CWSR allocation
//!   exactly `ALIGN((cwsr + debug) * num_xcc, 4096)`. Only PM4 compute queues are modelled.
//! - Signal event ids are their slots; other events start at `KFD_FIRST_NONSIGNAL_EVENT_ID`.
//!   An engine fault signals every MEMORY event (with the VA); any other engine halt every
//!   HW_EXCEPTION event.
//! - [`Preset::kfd_queues_retire`] false: queues are created but doorbell writes are ignored
//!   (as measured on an R9700 with Linux 6.17).
//! - WAIT_EVENTS never blocks longer than [`Preset::wait_cap`].
//! - GET_VERSION reports [`Preset::kfd_version`]; RUNTIME_ENABLE exists from KFD 1.13 ("Add
//!   debugger API") and is `EINVAL` before, as an unknown ioctl nr. It follows
//!   `kfd_chardev.c: kfd_ioctl_runtime_enable`: `mode_mask` with ENABLE takes `runtime_enable`
//!   (`EBUSY` when the runtime is already enabled, `EEXIST` when the process has queues), any
//!   other mode `runtime_disable` (0: no debugger or MES debug mode is emulated). Nothing is
//!   written back.
//!
//! One file per concern, as in the backend's `kfd/`: `topology.rs` (the sysfs tree and the
//! node's queue sizes), `process.rs` (version, runtime enable, VM and apertures), `bo.rs`
//! (ALLOC / FREE / MAP / UNMAP), `events.rs` (events and WAIT_EVENTS), `queues.rs` (queues and
//! the doorbell page).

mod bo;
mod events;
mod process;
mod queues;
#[cfg(test)]
mod tests;
mod topology;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pm4rt_core::abi::ioctl::{decode_arg, decode_arg_zext, ioc_nr, ioc_size, update_arg};
use pm4rt_core::abi::kfd as k;
use pm4rt_core::driver::{Fd, Mapping};
use pm4rt_core::{Errno, Error};

use super::gem::GemObject;
use super::preset::Preset;
use super::state::{lowest_free, State};
use super::user::UserMem;
use super::{EmulatedDevice, IoctlFault};
use crate::engine::{Engine, Interrupt, RingWork, Work};
use crate::memory::Perms;

/// The gpu_id of the emulated GPU node (an arbitrary non-zero hash, as the kernel's are).
pub const EMU_GPU_ID: u32 = 0xD0B3;
/// The KFD device node.
pub const KFD_PATH: &str = "/dev/kfd";
/// The topology root the emulated device serves.
pub const TOPOLOGY_ROOT: &str = "/sys/devices/virtual/kfd/kfd/topology";
/// GPUVM aperture of the emulated process (47-bit user space above 4 GiB).
pub const GPUVM_BASE: u64 = 0x1_0000_0000;
/// Last byte of the GPUVM aperture.
pub const GPUVM_LIMIT: u64 = 0x7FFF_FFFF_FFFF;
/// `KFD_FIRST_NONSIGNAL_EVENT_ID` (kfd_events.h: `(INT_MAX >> 1) + 1`).
const FIRST_NONSIGNAL_EVENT_ID: u32 = (i32::MAX as u32 >> 1) + 1;
/// `UNSIGNALED_EVENT_SLOT`.
const UNSIGNALED: u64 = u64::MAX;
const PAGE: u64 = 4096;
const EVENT_DATA_SIZE: usize = 48;

use self::bo::{alloc, free, map, unmap};
use self::events::{create_event, destroy_event, wait_events, EventHub};
use self::process::{acquire_vm, apertures, get_version, runtime_enable};
use self::queues::{create_queue, destroy_queue};
use self::topology::gfx_target_version;
pub use self::topology::{node_queue_sizes, topology_files};

impl Preset {
    /// An R9700 on Linux 6.17 as measured: KFD queues are created, but nothing
    /// submitted through them ever retires (doorbell writes are ignored).
    pub fn r9700_kfd_never_retires() -> Preset {
        Preset {
            name: "R9700 (gfx1201), KFD queue created but never retiring".into(),
            kfd_queues_retire: false,
            ..Preset::r9700_gfx1201()
        }
    }
}

/// Live KFD objects, for leak checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KfdLive {
    /// Open `/dev/kfd` descriptors.
    pub fds: usize,
    /// Allocations (ALLOC without FREE).
    pub allocations: usize,
    /// Allocations mapped to the GPU.
    pub gpu_mappings: usize,
    /// Events.
    pub events: usize,
    /// Queues.
    pub queues: usize,
    /// Doorbell mappings not yet dropped.
    pub doorbell_mmaps: usize,
}

impl KfdLive {
    /// True when nothing is alive.
    pub fn is_zero(&self) -> bool {
        *self == KfdLive::default()
    }
}

#[derive(Debug)]
struct Alloc {
    gem: Arc<GemObject>,
    render_fd: i32,
    gem_handle: u32,
    va: u64,
    size: u64,
    flags: u32,
    mapped: bool,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    ty: u32,
    auto_reset: bool,
}

#[derive(Debug, Clone, Copy)]
struct QueueRing {
    ring_va: u64,
    ring_dwords: u32,
    rptr_va: u64,
    /// `write_pointer_address`: what a (re)loaded queue's CP reads (`super::doorbell`).
    wptr_va: u64,
}

/// One open `/dev/kfd` (a KFD process).
#[derive(Debug, Default)]
pub(crate) struct KfdProcess {
    vm: Option<i32>,
    allocs: HashMap<u64, Alloc>,
    next_handle: u64,
    event_page: Option<u64>,
    events: BTreeMap<u32, Event>,
    queues: HashMap<u32, usize>,
    doorbells: Arc<Mutex<HashMap<usize, QueueRing>>>,
    /// `runtime_info.runtime_state == DEBUG_RUNTIME_STATE_ENABLED` and its `r_debug`.
    runtime: Option<u64>,
}

/// The KFD part of the device state.
#[derive(Debug, Default)]
pub(crate) struct KfdState {
    pub(crate) procs: HashMap<i32, KfdProcess>,
    hub: Arc<EventHub>,
    counts: HashMap<u8, u64>,
    faults: Vec<IoctlFault>,
    live_doorbells: Arc<AtomicUsize>,
    hooked_engine: usize,
}

impl KfdState {
    pub(crate) fn is_kfd(&self, fd: Fd) -> bool {
        self.procs.contains_key(&fd.0)
    }
}

impl State {
    /// Open `/dev/kfd` (a new KFD process).
    pub(crate) fn kfd_open(&mut self) -> Result<Fd, Errno> {
        let fd = self.next_fd;
        self.next_fd = fd.checked_add(1).ok_or(Errno::EMFILE)?;
        self.kfd.procs.insert(fd, KfdProcess { next_handle: 1, ..Default::default() });
        Ok(Fd(fd))
    }

    /// Close a `/dev/kfd`: the process's queues, events and memory go (kfd_process_release).
    pub(crate) fn kfd_close(&mut self, fd: Fd) -> Result<(), Errno> {
        let p = self.kfd.procs.remove(&fd.0).ok_or(Errno::EBADF)?;
        p.doorbells.lock().unwrap_or_else(|e| e.into_inner()).clear();
        for a in p.allocs.into_values() {
            self.drop_alloc(a);
        }
        Ok(())
    }
}

/// Live KFD objects of `dev`.
impl EmulatedDevice {
    /// Live KFD objects (see [`KfdLive`]).
    pub fn kfd_live_handles(&self) -> KfdLive {
        let s = self.lock();
        let mut l = KfdLive {
            fds: s.kfd.procs.len(),
            doorbell_mmaps: s.kfd.live_doorbells.load(Ordering::SeqCst),
            ..KfdLive::default()
        };
        for p in s.kfd.procs.values() {
            l.allocations += p.allocs.len();
            l.gpu_mappings += p.allocs.values().filter(|a| a.mapped).count();
            l.events += p.events.len();
            l.queues += p.queues.len();
        }
        l
    }

    /// Fail the `nth` (1-based) KFD ioctl with the command number of `request` with `errno`.
    pub fn fail_kfd_ioctl(&self, request: u32, nth: u64, errno: Errno) {
        self.lock().kfd.faults.push(IoctlFault { nr: ioc_nr(request), nth, errno });
    }

    /// How many KFD ioctls with the command number of `request` were made so far.
    pub fn kfd_ioctl_count(&self, request: u32) -> u64 {
        self.lock().kfd.counts.get(&ioc_nr(request)).copied().unwrap_or(0)
    }
}

type KHandler = fn(&EmulatedDevice, Fd, &mut [u8], &mut UserMem<'_, '_>) -> Result<(), Errno>;

const KFD_TABLE: &[(u32, KHandler)] = &[
    (k::AMDKFD_IOC_GET_VERSION, get_version),
    (k::AMDKFD_IOC_CREATE_QUEUE, create_queue),
    (k::AMDKFD_IOC_DESTROY_QUEUE, destroy_queue),
    (k::AMDKFD_IOC_CREATE_EVENT, create_event),
    (k::AMDKFD_IOC_DESTROY_EVENT, destroy_event),
    (k::AMDKFD_IOC_WAIT_EVENTS, wait_events),
    (k::AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, apertures),
    (k::AMDKFD_IOC_ACQUIRE_VM, acquire_vm),
    (k::AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, alloc),
    (k::AMDKFD_IOC_FREE_MEMORY_OF_GPU, free),
    (k::AMDKFD_IOC_MAP_MEMORY_TO_GPU, map),
    (k::AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU, unmap),
    (k::AMDKFD_IOC_RUNTIME_ENABLE, runtime_enable),
];

/// The KFD version that added `AMDKFD_IOC_RUNTIME_ENABLE` (kfd_ioctl.h: "1.13 - Add debugger
/// API").
const RUNTIME_ENABLE_SINCE: (u32, u32) = (1, 13);

/// `kfd_ioctl`: match by nr, copy `max(user size, kernel size)` zero-extended in, run, copy the
/// user's size back.
pub(crate) fn dispatch(
    dev: &EmulatedDevice,
    fd: Fd,
    request: u32,
    arg: &mut [u8],
    user: &mut [&mut [u8]],
) -> Result<(), Errno> {
    let nr = ioc_nr(request);
    {
        let mut s = dev.lock();
        if pm4rt_core::abi::ioctl::ioc_type(request) != k::AMDKFD_IOCTL_BASE {
            return Err(s.fail(Errno::ENOTTY, format!("{request:#x} is not a KFD ioctl")));
        }
        let kfd = &mut s.kfd;
        if let (c, Some(e)) = IoctlFault::count_call(&mut kfd.counts, &kfd.faults, nr) {
            return Err(s.fail(e, format!("injected failure of KFD ioctl nr {nr:#x} call {c}")));
        }
    }
    let Some(&(cmd, handler)) = KFD_TABLE.iter().find(|(c, _)| ioc_nr(*c) == nr) else {
        return Err(dev.lock().fail(Errno::EINVAL, format!("no KFD ioctl nr {nr:#x}")));
    };
    let usize_ = ioc_size(request);
    if arg.len() < usize_ {
        return Err(dev.lock().fail(Errno::EFAULT, "argument shorter than _IOC_SIZE"));
    }
    let mut kdata = vec![0u8; usize_.max(ioc_size(cmd))];
    kdata[..usize_].copy_from_slice(&arg[..usize_]);
    let mut mem = UserMem::new(user);
    let r = handler(dev, fd, &mut kdata, &mut mem);
    if r.is_ok() {
        arg[..usize_].copy_from_slice(&kdata[..usize_]);
    }
    r
}

fn einval(s: &mut State, why: String) -> Errno {
    s.fail(Errno::EINVAL, why)
}

fn proc_of(s: &mut State, fd: Fd) -> Result<&mut KfdProcess, Errno> {
    s.kfd.procs.get_mut(&fd.0).ok_or(Errno::EBADF)
}
