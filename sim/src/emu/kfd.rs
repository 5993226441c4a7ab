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

/// The kernel's node values (`kfd_queue_ctx_save_restore_size`, gfx10+ only):
/// (ctl_stack_size, cwsr_size, debug_memory_size, eop_buffer_size).
pub fn node_queue_sizes(gfx_target_version: u32, cu: u64) -> (u64, u64, u64, u64) {
    let waves = cu * 32;
    let al = |v: u64, a: u64| v.div_ceil(a) * a;
    let mut ctl = al(40 + waves * 12 + 8, PAGE);
    if gfx_target_version / 10000 * 10000 == 100000 {
        ctl = ctl.min(0x7000);
    }
    let vgpr = match gfx_target_version {
        110000 | 110001 | 120000 | 120001 => 0x60000,
        _ => 0x40000,
    };
    let wg = al(cu * (vgpr + 0x4000 + 0x10000 + 0x1000), PAGE);
    (ctl, ctl + wg, al(waves * 32, 64), 4096)
}

fn gfx_target_version(p: &Preset) -> u32 {
    let (a, b, c) = p.gc_version;
    u32::from(a) * 10000 + u32::from(b) * 100 + u32::from(c)
}

fn render_minor(p: &Preset) -> u32 {
    p.render_nodes
        .first()
        .and_then(|n| n.rsplit('/').next())
        .and_then(|n| n.strip_prefix("renderD"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(128)
}

/// The sysfs topology files of `preset` (empty when the preset has no KFD).
pub fn topology_files(p: &Preset) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    if !p.kfd_present {
        return f;
    }
    let n = format!("{TOPOLOGY_ROOT}/nodes");
    f.insert(format!("{n}/0/gpu_id"), "0\n".into());
    f.insert(format!("{n}/0/properties"), "cpu_cores_count 16\nsimd_count 0\n".into());
    f.insert(format!("{n}/1/gpu_id"), format!("{EMU_GPU_ID}\n"));
    f.insert(
        format!("{n}/1/properties"),
        format!(
            "cpu_cores_count 0\nsimd_count {}\nsimd_per_cu 2\nnum_xcc 1\ngfx_target_version {}\n\
             drm_render_minor {}\nmax_waves_per_simd 16\n",
            p.cu_count * 2,
            gfx_target_version(p),
            render_minor(p)
        ),
    );
    f
}

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

/// Signalled state shared with the engine's interrupt hook and the waiters.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    signaled: Mutex<HashMap<u32, Option<k::KfdEventData>>>,
    cv: Condvar,
}

impl EventHub {
    fn signal(&self, id: u32, data: Option<k::KfdEventData>) {
        let mut s = self.signaled.lock().unwrap_or_else(|e| e.into_inner());
        s.insert(id, data);
        self.cv.notify_all();
    }
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

/// The doorbell page: 64-bit stores at a queue's doorbell make the engine consume its ring.
#[derive(Debug)]
struct Doorbell {
    bytes: Mutex<Vec<u8>>,
    queues: Arc<Mutex<HashMap<usize, QueueRing>>>,
    engine: Arc<Engine>,
    retire: bool,
    addr: u64,
    live: Arc<AtomicUsize>,
}

impl Mapping for Doorbell {
    fn addr(&self) -> u64 {
        self.addr
    }
    fn len(&self) -> usize {
        k::KFD_DOORBELL_MAP_SIZE
    }
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        let b = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let end = offset.checked_add(out.len()).ok_or(Errno::EFAULT)?;
        out.copy_from_slice(b.get(offset..end).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let mut b = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let end = offset.checked_add(data.len()).ok_or(Errno::EFAULT)?;
        b.get_mut(offset..end).ok_or(Errno::EFAULT)?.copy_from_slice(data);
        Ok(())
    }
    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        let mut v = [0u8; 8];
        self.read(offset, &mut v)?;
        Ok(u64::from_le_bytes(v))
    }
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        if offset & 7 != 0 {
            return Err(Errno::EFAULT);
        }
        self.write(offset, &value.to_le_bytes())?;
        let q = self.queues.lock().unwrap_or_else(|e| e.into_inner()).get(&offset).copied();
        if let (Some(q), true) = (q, self.retire) {
            if let Some(wptr) = super::doorbell::cp_wptr(self.engine.memory(), value, q.wptr_va) {
                // A halted engine ignores the doorbell, like a hung CP.
                let _ = self.engine.submit(Work::Ring(RingWork {
                    ring_va: q.ring_va,
                    ring_dwords: q.ring_dwords,
                    rptr_va: q.rptr_va,
                    wptr,
                }));
            }
        }
        Ok(())
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
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

    fn drop_alloc(&mut self, a: Alloc) {
        if a.mapped {
            let _ = self.mem.unmap(a.gem.id);
        }
        if let Some(f) = self.files.get_mut(&a.render_fd) {
            f.handles.remove(&a.gem_handle);
        }
    }

    /// mmap of `/dev/kfd`: only the doorbell page of this process's GPU.
    pub(crate) fn kfd_mmap(
        &mut self,
        fd: Fd,
        offset: u64,
        len: usize,
    ) -> Result<Box<dyn Mapping>, Errno> {
        let retire = self.preset.kfd_queues_retire;
        let engine = Arc::clone(&self.engine);
        let live = Arc::clone(&self.kfd.live_doorbells);
        let p = self.kfd.procs.get(&fd.0).ok_or(Errno::EBADF)?;
        // kfd_mmap: the type bits pick the handler; kfd_doorbell_mmap wants exactly the
        // doorbell process page size of that GPU.
        if offset & k::KFD_MMAP_TYPE_MASK != k::KFD_MMAP_TYPE_DOORBELL
            || k::mmap_gpu_id(offset) != EMU_GPU_ID
            || len != k::KFD_DOORBELL_MAP_SIZE
            || offset & (k::KFD_DOORBELL_MAP_SIZE as u64 - 1) != 0
        {
            return Err(self.fail(Errno::EINVAL, format!("kfd mmap: offset {offset:#x} len {len}")));
        }
        let queues = Arc::clone(&p.doorbells);
        live.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Doorbell {
            bytes: Mutex::new(vec![0; k::KFD_DOORBELL_MAP_SIZE]),
            queues,
            engine,
            retire,
            addr: 0x7E00_0000_0000,
            live,
        }))
    }

    fn hook_engine(&mut self) {
        let key = Arc::as_ptr(&self.engine) as usize;
        if self.kfd.hooked_engine == key {
            return;
        }
        self.kfd.hooked_engine = key;
        let hub = Arc::clone(&self.kfd.hub);
        // kfd_signal_event_interrupt: INT_CTXID names the event; the slot must have been
        // written (no longer UNSIGNALED_EVENT_SLOT) for the partial-id lookup to accept it.
        self.engine.set_interrupt_hook(Some(Arc::new(move |irq: &Interrupt| {
            if irq.int_sel >= 2 && irq.ctxid < k::KFD_SIGNAL_EVENT_LIMIT && irq.data != UNSIGNALED {
                hub.signal(irq.ctxid, None);
            }
        })));
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
        let c = s.kfd.counts.entry(nr).or_insert(0);
        *c += 1;
        let c = *c;
        if let Some(f) = s.kfd.faults.iter().find(|f| f.nr == nr && f.nth == c) {
            let e = f.errno;
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

fn get_version(dev: &EmulatedDevice, _: Fd, a: &mut [u8], _: &mut UserMem) -> Result<(), Errno> {
    let (major_version, minor_version) = dev.lock().preset.kfd_version;
    update_arg(a, &k::GetVersionArgs { major_version, minor_version }).map_err(|_| Errno::EFAULT)
}

/// `kfd_ioctl_runtime_enable` (see the module docs).
fn runtime_enable(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let args: k::RuntimeEnableArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    if s.preset.kfd_version < RUNTIME_ENABLE_SINCE {
        let (ma, mi) = s.preset.kfd_version;
        return Err(einval(
            &mut s,
            format!("kfd_ioctl: no RUNTIME_ENABLE (nr 0x25) in KFD {ma}.{mi}"),
        ));
    }
    let p = proc_of(&mut s, fd)?;
    if args.mode_mask & k::KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK == 0 {
        // runtime_disable.
        p.runtime = None;
        return Ok(());
    }
    if p.runtime.is_some() {
        return Err(s.fail(Errno::EBUSY, "runtime_enable: runtime_state is not DISABLED"));
    }
    if !p.queues.is_empty() {
        return Err(s.fail(Errno::EEXIST, "runtime_enable: the process already has queues"));
    }
    p.runtime = Some(args.r_debug);
    Ok(())
}

fn proc_of(s: &mut State, fd: Fd) -> Result<&mut KfdProcess, Errno> {
    s.kfd.procs.get_mut(&fd.0).ok_or(Errno::EBADF)
}

fn acquire_vm(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], _: &mut UserMem) -> Result<(), Errno> {
    let args: k::AcquireVmArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    if args.gpu_id != EMU_GPU_ID {
        return Err(einval(&mut s, format!("ACQUIRE_VM: unknown gpu_id {:#x}", args.gpu_id)));
    }
    let drm = args.drm_fd as i32;
    if !s.files.contains_key(&drm) {
        return Err(s.fail(Errno::EBADF, "ACQUIRE_VM: drm_fd is not an open render node"));
    }
    let p = proc_of(&mut s, fd)?;
    match p.vm {
        Some(d) if d != drm => Err(s.fail(Errno::EBUSY, "ACQUIRE_VM: another drm file")),
        _ => {
            p.vm = Some(drm);
            Ok(())
        }
    }
}

fn apertures(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], u: &mut UserMem) -> Result<(), Errno> {
    let mut args: k::GetProcessAperturesNewArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    proc_of(&mut s, fd)?;
    if args.num_of_nodes == 0 {
        args.num_of_nodes = 1;
    } else {
        let ap = k::ProcessDeviceApertures {
            gpuvm_base: GPUVM_BASE,
            gpuvm_limit: GPUVM_LIMIT,
            gpu_id: EMU_GPU_ID,
            ..Default::default()
        };
        u.write(args.kfd_process_device_apertures_ptr, bytemuck::bytes_of(&ap))?;
        args.num_of_nodes = 1;
    }
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}

fn alloc(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], _: &mut UserMem) -> Result<(), Errno> {
    let mut args: k::AllocMemoryOfGpuArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    let Some(render_fd) = proc_of(&mut s, fd)?.vm else {
        return Err(einval(&mut s, "ALLOC_MEMORY_OF_GPU before ACQUIRE_VM".into()));
    };
    if args.gpu_id != EMU_GPU_ID {
        return Err(einval(&mut s, format!("ALLOC: unknown gpu_id {:#x}", args.gpu_id)));
    }
    let end = args.va_addr.checked_add(args.size);
    let overlaps = proc_of(&mut s, fd)?
        .allocs
        .values()
        .any(|o| end.is_some_and(|e| args.va_addr < o.va + o.size && o.va < e));
    if args.size == 0
        || !args.va_addr.is_multiple_of(PAGE)
        || !args.size.is_multiple_of(PAGE)
        || args.va_addr < GPUVM_BASE
        || end.is_none_or(|e| e - 1 > GPUVM_LIMIT)
        || overlaps
    {
        return Err(einval(
            &mut s,
            format!(
                "ALLOC: va {:#x} size {:#x} outside the aperture, unaligned or overlapping",
                args.va_addr, args.size
            ),
        ));
    }
    let gem = s.create_gem(args.size, 0, 0)?;
    let file = s.file(Fd(render_fd))?;
    let gem_handle = lowest_free(&file.handles)?;
    file.handles.insert(gem_handle, Arc::clone(&gem));
    let p = proc_of(&mut s, fd)?;
    let handle = (u64::from(EMU_GPU_ID) << 32) | p.next_handle;
    p.next_handle += 1;
    args.handle = handle;
    args.mmap_offset = gem.mmap_offset;
    p.allocs.insert(
        handle,
        Alloc {
            gem,
            render_fd,
            gem_handle,
            va: args.va_addr,
            size: args.size,
            flags: args.flags,
            mapped: false,
        },
    );
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}

fn free(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], _: &mut UserMem) -> Result<(), Errno> {
    let args: k::FreeMemoryOfGpuArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    let p = proc_of(&mut s, fd)?;
    if p.event_page == Some(args.handle) {
        // The kernel keeps the page kmapped for the process; freeing it while events use it
        // would pull memory from under the interrupt handler.
        if !p.events.is_empty() {
            return Err(einval(&mut s, "FREE: the event page is still in use".into()));
        }
        p.event_page = None;
    }
    let Some(al) = p.allocs.remove(&args.handle) else {
        return Err(einval(&mut s, format!("FREE: unknown handle {:#x}", args.handle)));
    };
    s.drop_alloc(al);
    Ok(())
}

fn map_op(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    u: &mut UserMem,
    on: bool,
) -> Result<(), Errno> {
    let mut args: k::MapMemoryToGpuArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    // kfd_ioctl_map/unmap_memory_*_gpu: an empty device list or n_success beyond it is
    // EINVAL before the list is read.
    if args.n_devices == 0 || args.n_success > args.n_devices {
        return Err(einval(
            &mut dev.lock(),
            format!("MAP/UNMAP: n_devices {} n_success {}", args.n_devices, args.n_success),
        ));
    }
    let ids = u.read(args.device_ids_array_ptr, args.n_devices as usize * 4)?;
    let mut s = dev.lock();
    if ids.chunks(4).any(|c| c != EMU_GPU_ID.to_le_bytes()) {
        return Err(einval(
            &mut s,
            "MAP/UNMAP: device list must name only the emulated GPU".into(),
        ));
    }
    let mem = Arc::clone(&s.mem);
    let p = proc_of(&mut s, fd)?;
    let Some(al) = p.allocs.get_mut(&args.handle) else {
        return Err(einval(&mut s, format!("MAP/UNMAP: unknown handle {:#x}", args.handle)));
    };
    if on && !al.mapped {
        // amdgpu_amdkfd_gpuvm.c: get_pte_flags: always readable; writable and executable
        // as the allocation flags ask.
        let perms = Perms {
            read: true,
            write: al.flags & k::KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE != 0,
            execute: al.flags & k::KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE != 0,
        };
        mem.map(al.gem.id, al.va, perms).map_err(|_| Errno::EINVAL)?;
        al.mapped = true;
    } else if !on && al.mapped {
        let _ = mem.unmap(al.gem.id);
        al.mapped = false;
    } else if !on {
        return Err(einval(&mut s, "UNMAP: not mapped".into()));
    }
    args.n_success = args.n_devices;
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}

fn map(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], u: &mut UserMem) -> Result<(), Errno> {
    map_op(dev, fd, a, u, true)
}

fn unmap(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], u: &mut UserMem) -> Result<(), Errno> {
    map_op(dev, fd, a, u, false)
}

fn create_event(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], _: &mut UserMem) -> Result<(), Errno> {
    let mut args: k::CreateEventArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    let p = proc_of(&mut s, fd)?;
    if args.event_page_offset != 0 {
        // kfd_kmap_event_page: once per process, a GTT BO of this process on this GPU.
        let ok = p.event_page.is_none()
            && (args.event_page_offset >> 32) as u32 == EMU_GPU_ID
            && p.allocs.get(&args.event_page_offset).is_some_and(|al| {
                al.flags & k::KFD_IOC_ALLOC_MEM_FLAGS_GTT != 0
                    && al.size >= k::KFD_EVENT_PAGE_SIZE as u64
            });
        if !ok {
            return Err(einval(&mut s, "CREATE_EVENT: bad or second event page".into()));
        }
        p.event_page = Some(args.event_page_offset);
    }
    let id = match args.event_type {
        k::KFD_IOC_EVENT_SIGNAL => {
            (0..k::KFD_SIGNAL_EVENT_LIMIT).find(|i| !p.events.contains_key(i))
        }
        k::KFD_IOC_EVENT_HW_EXCEPTION | k::KFD_IOC_EVENT_MEMORY => {
            (FIRST_NONSIGNAL_EVENT_ID..i32::MAX as u32).find(|i| !p.events.contains_key(i))
        }
        t => return Err(einval(&mut s, format!("CREATE_EVENT: type {t} not modelled"))),
    };
    let Some(id) = id else { return Err(s.fail(Errno::ENOSPC, "CREATE_EVENT: no free id")) };
    p.events.insert(id, Event { ty: args.event_type, auto_reset: args.auto_reset != 0 });
    args.event_id = id;
    if args.event_type == k::KFD_IOC_EVENT_SIGNAL {
        args.event_slot_index = id;
        args.event_trigger_data = id;
        // The slot starts unsignalled.
        let page = p.event_page.and_then(|h| p.allocs.get(&h)).map(|al| al.gem.id);
        if let Some(bo) = page {
            let _ = s.mem.write_bo(bo, u64::from(id) * 8, &UNSIGNALED.to_le_bytes());
        }
    }
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}

fn destroy_event(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], _: &mut UserMem) -> Result<(), Errno> {
    let args: k::DestroyEventArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    if proc_of(&mut s, fd)?.events.remove(&args.event_id).is_none() {
        return Err(einval(&mut s, format!("DESTROY_EVENT: unknown event {}", args.event_id)));
    }
    s.kfd.hub.signaled.lock().unwrap_or_else(|e| e.into_inner()).remove(&args.event_id);
    Ok(())
}

fn create_queue(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], _: &mut UserMem) -> Result<(), Errno> {
    let mut q: k::CreateQueueArgs = decode_arg_zext(a);
    let mut s = dev.lock();
    let gfxv = gfx_target_version(&s.preset);
    let cu = u64::from(s.preset.cu_count);
    let (ctl, cwsr, debug, eop) = node_queue_sizes(gfxv, cu);
    // set_queue_properties_from_user
    if q.gpu_id != EMU_GPU_ID {
        return Err(einval(&mut s, format!("CREATE_QUEUE: unknown gpu_id {:#x}", q.gpu_id)));
    }
    if q.queue_percentage & 0xFF > k::KFD_MAX_QUEUE_PERCENTAGE
        || q.queue_priority > k::KFD_MAX_QUEUE_PRIORITY
    {
        return Err(einval(&mut s, "CREATE_QUEUE: percentage > 100 or priority > 15".into()));
    }
    if q.ring_size != 0 && !q.ring_size.is_power_of_two() {
        return Err(einval(&mut s, "Ring size must be a power of 2 or 0".into()));
    }
    if q.queue_type != k::KFD_IOC_QUEUE_TYPE_COMPUTE {
        return Err(einval(&mut s, "CREATE_QUEUE: only PM4 compute queues are emulated".into()));
    }
    let ring_size = u64::from(q.ring_size.max(1024));
    // kfd_queue_acquire_buffers / kfd_queue_buffer_get: start of a mapping of exactly `size`.
    let p = proc_of(&mut s, fd)?;
    // In GPU pages, as the kernel compares: `size >> PAGE_SHIFT == 0` skips the size check.
    let exact = |va: u64, size: u64| {
        p.allocs
            .values()
            .any(|al| al.va == va && (size / PAGE == 0 || al.size == size / PAGE * PAGE))
    };
    let mut why = None;
    if !exact(q.write_pointer_address, PAGE) {
        why = Some("wptr is not the start of a one-page mapping");
    } else if !exact(q.read_pointer_address, PAGE) {
        why = Some("rptr is not the start of a one-page mapping");
    } else if !exact(q.ring_base_address, ring_size) {
        why = Some("ring mapping size differs from ring_size");
    } else if q.eop_buffer_address != 0 && q.eop_buffer_size != eop {
        why = Some("eop_buffer_size differs from the node's");
    } else if q.eop_buffer_address != 0 && !exact(q.eop_buffer_address, eop) {
        why = Some("EOP mapping size differs from the node's eop_buffer_size");
    } else if u64::from(q.ctl_stack_size) != ctl {
        why = Some("ctl_stack_size differs from the node's");
    } else if u64::from(q.ctx_save_restore_size) < cwsr {
        why = Some("ctx_save_restore_size is below the node's cwsr_size");
    } else if !exact(q.ctx_save_restore_address, (cwsr + debug).div_ceil(PAGE) * PAGE) {
        why = Some("CWSR mapping is not exactly ALIGN((cwsr_size + debug_memory_size) * num_xcc)");
    }
    if let Some(w) = why {
        return Err(einval(&mut s, format!("CREATE_QUEUE: {w}")));
    }
    let Some(qid) = (0..1024u32).find(|i| !p.queues.contains_key(i)) else {
        return Err(s.fail(Errno::ENOSPC, "CREATE_QUEUE: no queue slot"));
    };
    let byte = qid as usize * 8;
    // If an earlier queue's fault halted the emulator's one engine, the GPU was reset (the
    // faulting process's queues were evicted, kfd_process_vm_fault / kfd_signal_vm_fault_event):
    // the new queue starts on a working engine.
    s.sync_engine()?;
    s.engine.map_ring(q.ring_base_address);
    let p = proc_of(&mut s, fd)?;
    p.queues.insert(qid, byte);
    p.doorbells.lock().unwrap_or_else(|e| e.into_inner()).insert(
        byte,
        QueueRing {
            ring_va: q.ring_base_address,
            ring_dwords: (ring_size / 4) as u32,
            rptr_va: q.read_pointer_address,
            wptr_va: q.write_pointer_address,
        },
    );
    s.hook_engine();
    q.queue_id = qid;
    q.doorbell_offset = k::doorbell_offset_for(EMU_GPU_ID, byte as u64);
    update_arg(a, &q).map_err(|_| Errno::EFAULT)
}

fn destroy_queue(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], _: &mut UserMem) -> Result<(), Errno> {
    let args: k::DestroyQueueArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    let p = proc_of(&mut s, fd)?;
    let Some(byte) = p.queues.remove(&args.queue_id) else {
        return Err(einval(&mut s, format!("DESTROY_QUEUE: unknown queue {}", args.queue_id)));
    };
    let ring = p.doorbells.lock().unwrap_or_else(|e| e.into_inner()).remove(&byte);
    // destroy_queue_cpsch unmaps (preempts) the queue before returning; the wait happens
    // without the device lock (the engine's interrupt hook signals events).
    let (engine, cap) = (Arc::clone(&s.engine), s.preset.wait_cap);
    drop(s);
    if let Some(q) = ring {
        if let Err(e) = engine.unmap_ring(q.ring_va, cap) {
            dev.lock().last_error = Some(format!("DESTROY_QUEUE: queue unmap: {e}"));
        }
    }
    Ok(())
}

fn wait_events(dev: &EmulatedDevice, fd: Fd, a: &mut [u8], u: &mut UserMem) -> Result<(), Errno> {
    let mut args: k::WaitEventsArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let n = args.num_events as usize;
    let raw = u.read(args.events_ptr, n.checked_mul(EVENT_DATA_SIZE).ok_or(Errno::EINVAL)?)?;
    let mut data: Vec<k::KfdEventData> =
        pm4rt_core::abi::ioctl::decode_array(&raw, n).map_err(|_| Errno::EFAULT)?;
    let (hub, events, cap, engine) = {
        let mut s = dev.lock();
        let p = proc_of(&mut s, fd)?;
        let mut evs = Vec::new();
        for d in &data {
            match p.events.get(&d.event_id) {
                Some(e) => evs.push(*e),
                None => {
                    return Err(einval(
                        &mut s,
                        format!("WAIT_EVENTS: unknown event {}", d.event_id),
                    ))
                }
            }
        }
        (Arc::clone(&s.kfd.hub), evs, s.preset.wait_cap, Arc::clone(&s.engine))
    };
    let timeout = Duration::from_millis(u64::from(args.timeout)).min(cap);
    let start = Instant::now();
    let mut sig = hub.signaled.lock().unwrap_or_else(|e| e.into_inner());
    let result = loop {
        // Engine halts become exceptions (the emulator's interrupt source for faults).
        if let Some((_, err)) = engine.halted() {
            for (d, e) in data.iter().zip(&events) {
                if sig.contains_key(&d.event_id) {
                    continue;
                }
                let mut ed = k::KfdEventData::for_event(d.event_id);
                match (e.ty, &err) {
                    (k::KFD_IOC_EVENT_MEMORY, Error::Fault { va }) => {
                        ed.set_memory_exception(&k::MemoryExceptionData {
                            not_present: 1,
                            va: *va,
                            gpu_id: EMU_GPU_ID,
                            ..Default::default()
                        });
                        sig.insert(d.event_id, Some(ed));
                    }
                    (k::KFD_IOC_EVENT_HW_EXCEPTION, e2) if !matches!(e2, Error::Fault { .. }) => {
                        ed.set_hw_exception(&k::HwExceptionData {
                            gpu_id: EMU_GPU_ID,
                            ..Default::default()
                        });
                        sig.insert(d.event_id, Some(ed));
                    }
                    _ => {}
                }
            }
        }
        let hit: Vec<usize> = (0..n).filter(|&i| sig.contains_key(&data[i].event_id)).collect();
        // test_event_condition: with wait_for_all every event must be signalled, otherwise
        // any one will do; no events at all is complete either way.
        let complete = hit.len() == n || (args.wait_for_all == 0 && !hit.is_empty());
        let timed_out = !complete && start.elapsed() >= timeout;
        if complete || timed_out {
            for i in hit {
                let id = data[i].event_id;
                if complete {
                    if let Some(Some(ed)) = sig.get(&id) {
                        data[i].payload = ed.payload;
                    }
                }
                // init_event_waiter / set_event: a waiter consumes an auto-reset signal
                // whether or not the wait completes.
                if events[i].auto_reset {
                    sig.remove(&id);
                }
            }
            break if complete {
                k::KFD_IOC_WAIT_RESULT_COMPLETE
            } else {
                k::KFD_IOC_WAIT_RESULT_TIMEOUT
            };
        }
        let slice = timeout.saturating_sub(start.elapsed()).min(Duration::from_millis(2));
        sig = hub.cv.wait_timeout(sig, slice).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
    };
    drop(sig);
    u.write(args.events_ptr, pm4rt_core::abi::ioctl::slice_bytes(&data))?;
    args.wait_result = result;
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm4rt_core::abi::ioctl::arg_for;
    use pm4rt_core::driver::Driver;

    fn signal_event(dev: &EmulatedDevice, fd: Fd, auto_reset: bool) -> u32 {
        let c = k::CreateEventArgs {
            event_type: k::KFD_IOC_EVENT_SIGNAL,
            auto_reset: u32::from(auto_reset),
            ..Default::default()
        };
        let mut arg = arg_for(k::AMDKFD_IOC_CREATE_EVENT, &c);
        dev.ioctl(fd, k::AMDKFD_IOC_CREATE_EVENT, &mut arg, &mut []).unwrap();
        decode_arg::<k::CreateEventArgs>(&arg).unwrap().event_id
    }

    /// WAIT_EVENTS with a zero timeout: the `wait_result`.
    fn wait(dev: &EmulatedDevice, fd: Fd, ids: &[u32], all: bool) -> u32 {
        let data: Vec<k::KfdEventData> =
            ids.iter().map(|&i| k::KfdEventData::for_event(i)).collect();
        let mut buf = pm4rt_core::abi::ioctl::slice_bytes(&data).to_vec();
        let w = k::WaitEventsArgs {
            events_ptr: pm4rt_core::driver::user_ptr(&buf),
            num_events: ids.len() as u32,
            wait_for_all: u32::from(all),
            timeout: 0,
            wait_result: u32::MAX,
        };
        let mut arg = arg_for(k::AMDKFD_IOC_WAIT_EVENTS, &w);
        dev.ioctl(fd, k::AMDKFD_IOC_WAIT_EVENTS, &mut arg, &mut [&mut buf]).unwrap();
        decode_arg::<k::WaitEventsArgs>(&arg).unwrap().wait_result
    }

    #[test]
    fn wait_for_all_needs_every_event() {
        // kfd_events.c test_event_condition: `all` completes only when every waiter is
        // activated; otherwise one suffices; no events at all is complete.
        let dev = EmulatedDevice::r9700().unwrap();
        let fd = dev.open(KFD_PATH).unwrap();
        let (a, b) = (signal_event(&dev, fd, false), signal_event(&dev, fd, false));
        let hub = Arc::clone(&dev.lock().kfd.hub);
        hub.signal(a, None);
        assert_eq!(wait(&dev, fd, &[a, b], true), k::KFD_IOC_WAIT_RESULT_TIMEOUT);
        assert_eq!(wait(&dev, fd, &[a, b], false), k::KFD_IOC_WAIT_RESULT_COMPLETE);
        hub.signal(b, None);
        assert_eq!(wait(&dev, fd, &[a, b], true), k::KFD_IOC_WAIT_RESULT_COMPLETE);
        assert_eq!(wait(&dev, fd, &[], false), k::KFD_IOC_WAIT_RESULT_COMPLETE);
        dev.close(fd).unwrap();
    }

    #[test]
    fn a_waiter_consumes_an_auto_reset_signal_even_on_timeout() {
        // init_event_waiter: `ev->signaled = ev->signaled && !ev->auto_reset`.
        let dev = EmulatedDevice::r9700().unwrap();
        let fd = dev.open(KFD_PATH).unwrap();
        let (a, b) = (signal_event(&dev, fd, true), signal_event(&dev, fd, false));
        let hub = Arc::clone(&dev.lock().kfd.hub);
        hub.signal(a, None);
        assert_eq!(wait(&dev, fd, &[a, b], true), k::KFD_IOC_WAIT_RESULT_TIMEOUT);
        assert_eq!(wait(&dev, fd, &[a], false), k::KFD_IOC_WAIT_RESULT_TIMEOUT);
        dev.close(fd).unwrap();
    }

    #[test]
    fn map_refuses_n_success_beyond_n_devices() {
        // kfd_ioctl_map_memory_to_gpu: `n_success > n_devices` is EINVAL.
        let dev = EmulatedDevice::r9700().unwrap();
        let render = dev.open("/dev/dri/renderD128").unwrap();
        let fd = dev.open(KFD_PATH).unwrap();
        let acq = k::AcquireVmArgs { drm_fd: render.0 as u32, gpu_id: EMU_GPU_ID };
        let mut arg = arg_for(k::AMDKFD_IOC_ACQUIRE_VM, &acq);
        dev.ioctl(fd, k::AMDKFD_IOC_ACQUIRE_VM, &mut arg, &mut []).unwrap();
        let al = k::AllocMemoryOfGpuArgs {
            va_addr: GPUVM_BASE,
            size: PAGE,
            gpu_id: EMU_GPU_ID,
            flags: k::KFD_IOC_ALLOC_MEM_FLAGS_GTT,
            ..Default::default()
        };
        let mut arg = arg_for(k::AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &al);
        dev.ioctl(fd, k::AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &mut arg, &mut []).unwrap();
        let handle = decode_arg::<k::AllocMemoryOfGpuArgs>(&arg).unwrap().handle;
        let mut ids = EMU_GPU_ID.to_le_bytes().to_vec();
        let map = |n_success: u32, ids: &mut Vec<u8>| {
            let m = k::MapMemoryToGpuArgs {
                handle,
                device_ids_array_ptr: pm4rt_core::driver::user_ptr(ids),
                n_devices: 1,
                n_success,
            };
            let mut arg = arg_for(k::AMDKFD_IOC_MAP_MEMORY_TO_GPU, &m);
            dev.ioctl(fd, k::AMDKFD_IOC_MAP_MEMORY_TO_GPU, &mut arg, &mut [&mut ids[..]])
                .map(|()| decode_arg::<k::MapMemoryToGpuArgs>(&arg).unwrap().n_success)
        };
        assert_eq!(map(2, &mut ids), Err(Errno::EINVAL));
        assert_eq!(map(0, &mut ids), Ok(1));
        dev.close(fd).unwrap();
        dev.close(render).unwrap();
    }

    fn runtime_enable_call(dev: &EmulatedDevice, fd: Fd, mode_mask: u32) -> Result<(), Errno> {
        let r = k::RuntimeEnableArgs { r_debug: 0x1000, mode_mask, capabilities_mask: 0 };
        let mut arg = arg_for(k::AMDKFD_IOC_RUNTIME_ENABLE, &r);
        dev.ioctl(fd, k::AMDKFD_IOC_RUNTIME_ENABLE, &mut arg, &mut [])
    }

    #[test]
    fn runtime_enable_follows_kfd_ioctl_runtime_enable() {
        // kfd_chardev.c: runtime_enable is EBUSY unless DISABLED and EEXIST with queues;
        // runtime_disable (mode_mask without ENABLE) always succeeds.
        let dev = EmulatedDevice::r9700().unwrap();
        let fd = dev.open(KFD_PATH).unwrap();
        let enable = k::KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK;
        assert_eq!(runtime_enable_call(&dev, fd, 0), Ok(()));
        assert_eq!(runtime_enable_call(&dev, fd, enable), Ok(()));
        assert_eq!(runtime_enable_call(&dev, fd, enable), Err(Errno::EBUSY));
        assert_eq!(runtime_enable_call(&dev, fd, 0), Ok(()));
        dev.lock().kfd.procs.get_mut(&fd.0).unwrap().queues.insert(1, 0);
        assert_eq!(runtime_enable_call(&dev, fd, enable), Err(Errno::EEXIST));
        assert_eq!(runtime_enable_call(&dev, fd, 0), Ok(()));
        dev.lock().kfd.procs.get_mut(&fd.0).unwrap().queues.clear();
        // Another process (another open) has its own state.
        let fd2 = dev.open(KFD_PATH).unwrap();
        assert_eq!(runtime_enable_call(&dev, fd2, enable), Ok(()));
        dev.close(fd2).unwrap();
        dev.close(fd).unwrap();
    }

    #[test]
    fn runtime_enable_is_unknown_before_kfd_1_13() {
        let preset = Preset { kfd_version: (1, 12), ..Preset::r9700_gfx1201() };
        let dev = EmulatedDevice::new(preset).unwrap();
        let fd = dev.open(KFD_PATH).unwrap();
        assert_eq!(runtime_enable_call(&dev, fd, 0), Err(Errno::EINVAL));
        let mut arg = arg_for(k::AMDKFD_IOC_GET_VERSION, &k::GetVersionArgs::default());
        dev.ioctl(fd, k::AMDKFD_IOC_GET_VERSION, &mut arg, &mut []).unwrap();
        let v = decode_arg::<k::GetVersionArgs>(&arg).unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 12));
        dev.close(fd).unwrap();
    }

    #[test]
    fn node_sizes_match_the_reference() {
        // kfd_queue.c: kfd_queue_ctx_save_restore_size for gfx1201 with 64 CUs (the formulas
        // in backends/src/kfd/cwsr.rs): cwsr 0x1D47000, debug 0x10000.
        let (ctl, cwsr, debug, eop) = node_queue_sizes(120001, 64);
        assert_eq!((ctl, cwsr, debug, eop), (0x7000, 0x1D4_7000, 0x1_0000, 4096));
    }
}
