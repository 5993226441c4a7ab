//! The simulated GPU queue: a worker thread that executes PM4 work in order, asynchronously
//! to the host, against a shared [`GpuMemory`].
//!
//! Front-ends (the [`crate::SimSubmitter`], and the emulated amdgpu CS / KFD / user-queue
//! devices) hand the [`Engine`] [`Work`] items — "run the IB at VA x of n dwords" or "consume
//! the ring at VA x from its read pointer up to write pointer w" — and get back a sequence
//! number (1, 2, 3, ... per engine). [`Engine::wait`] blocks (bounded) until that item is done.
//!
//! # Error semantics (sticky, device-lost-like)
//!
//! The first item that fails (page fault, malformed or unsupported PM4, WAIT_REG_MEM deadline,
//! IB nesting, failed dispatch) halts the queue: that item and every later one report the same
//! error from [`Engine::wait`], later [`Engine::submit`] calls fail with
//! [`Error::DeviceLost`], and items queued behind it are never executed. Items before it
//! completed normally and report `Ok`. Writes done by the failing item before the failing
//! packet stay in memory, as on hardware.
//!
//! # Execution model
//!
//! - An IB is fetched whole before its first packet runs; an unmapped byte anywhere in it is a
//!   [`Error::Fault`] at that byte.
//! - The IB named by [`Work::Ib`] runs at nesting level 1; each non-chained
//!   `INDIRECT_BUFFER` runs its target one level deeper; a level above
//!   [`EngineConfig::ib_depth_limit`] is [`Error::IbDepth`]. A `CHAIN` IB replaces the rest of
//!   the current IB at the same level (no return). Ring packets are level 0; a `CHAIN` IB in
//!   a ring is run like a normal call.
//! - Each queue has its own register file ([`QueueId`]): the IBs of [`Work::Ib`] items share
//!   one (the kernel's compute ring, or the simulator tier's queue), and every ring-based queue
//!   has another, keyed by its ring VA, as every hardware queue descriptor holds its own
//!   state. A queue created at the address of an unmapped one starts with an empty file.
//! - Dispatch ordering is chosen by [`EngineConfig::order`] (see "Ordering" below).
//! - Timestamps (`RELEASE_MEM` DATA_SEL 3/4, `COPY_DATA` SRC_SEL 9) are nanoseconds since the
//!   engine was created, from a monotonic clock.
//!
//! # Ordering
//!
//! On a GPU, the CP launches a dispatch and goes on with the next packet: dispatches that no
//! barrier separates may run concurrently and finish in any order, and a shader may read stale
//! lines from its vector caches unless they were invalidated after another dispatch wrote the
//! data. What separates them, as Mesa's compute barriers do (`src/amd/vulkan/radv_cs.c`, the
//! gfx10+ cache flush: `RADV_CMD_FLAG_CS_PARTIAL_FLUSH` is `EVENT_WRITE CS_PARTIAL_FLUSH`,
//! `RADV_CMD_FLAG_INV_VCACHE` sets `GL1_INV | GLV_INV`):
//!
//! - **execution**: `EVENT_WRITE CS_PARTIAL_FLUSH` (the CP waits for the dispatches' waves);
//!   `RELEASE_MEM` and `WAIT_REG_MEM` also wait here, since the first writes only after the
//!   work before it and the second may wait for what a dispatch writes; so does the end of a
//!   work item;
//! - **visibility**: `ACQUIRE_MEM` (or a `RELEASE_MEM`) whose GCR_CNTL invalidates the vector
//!   L0 (`GLV_INV`) and, on gfx11, GL1 (`GL1_INV`).
//!
//! [`DispatchOrder::InOrder`] (the default) runs every dispatch when its packet is reached.
//! [`DispatchOrder::Strict`] (`PM4RT_SIM_ORDER=strict`, on in pm4rt's test suite) makes a
//! missing barrier show up as a wrong result: dispatches are held until the next execution
//! barrier and then run in reverse order, and a dispatch that reads bytes another dispatch of
//! the same work item wrote, with no visibility barrier in between, reads the bytes as they
//! were before that write (the stale cache line), when the [`DispatchHook`] reports the
//! dispatch's [`Footprint`]. Registers are captured when the `DISPATCH_DIRECT` is reached.
//! [`Engine::stale_reads`] counts the dispatches that read stale bytes.
//!
//! # Queue unmapping
//!
//! A queue front-end that destroys a ring-based queue calls [`Engine::unmap_ring`], as the
//! kernel unmaps (preempts) a hardware queue before `DESTROY_QUEUE` / `USERQ FREE` return: the
//! ring's packets stop at the next packet boundary (or `WAIT_REG_MEM` poll), queued items for
//! it are skipped, and the call returns once the engine has passed every item submitted
//! before it. Only then may the front-end release the ring's memory; without this, the
//! engine could still store the read pointer of a ring whose buffers were just freed.
//! [`Engine::map_ring`] lets a new queue use the same ring address.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pm4rt_core::pm4::regs::{
    self, COMPUTE_NUM_THREAD_X, COMPUTE_PGM_HI, COMPUTE_PGM_LO, COMPUTE_USER_DATA_0,
    COMPUTE_USER_DATA_COUNT,
};
use pm4rt_core::pm4::{
    decode_one, event, CopyData, DecodeError, DecodeErrorKind, IndirectBuffer, Packet, ReleaseMem,
    WaitRegMem, WriteData,
};
use pm4rt_core::{Errno, Error, Fence, GfxTarget, Result};

use crate::memory::GpuMemory;

/// Register dword address of SH register offset 0 (`SET_SH_REG` offsets are relative to it).
pub const SH_REG_BASE: u32 = regs::SH_REG_BASE_DWORD;

/// Largest accepted [`EngineConfig::ib_depth_limit`] (bounds the executor's recursion).
pub const MAX_IB_DEPTH_LIMIT: u32 = 16;

/// How an [`Engine`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long one `WAIT_REG_MEM` may poll before the queue halts with
    /// [`Error::WaitRegMemDeadline`]. Default 2 s.
    pub wait_deadline: Duration,
    /// Deepest IB nesting level allowed (the submitted IB is level 1). Default 4; values above
    /// [`MAX_IB_DEPTH_LIMIT`] are clamped to it.
    pub ib_depth_limit: u32,
    /// The GPU generation dispatch hooks are told about. Default gfx1201.
    pub gfx: GfxTarget,
    /// How dispatches are ordered (module docs, "Ordering"). Default:
    /// [`DispatchOrder::from_env`], else [`DispatchOrder::InOrder`].
    pub order: DispatchOrder,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            wait_deadline: Duration::from_secs(2),
            ib_depth_limit: 4,
            gfx: GfxTarget::Gfx1201,
            order: DispatchOrder::from_env().ok().flatten().unwrap_or_default(),
        }
    }
}

/// The environment variable that selects [`DispatchOrder`]: `in-order` or `strict`.
pub const ORDER_ENV: &str = "PM4RT_SIM_ORDER";

/// How the engine orders dispatches that no barrier separates (module docs, "Ordering").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DispatchOrder {
    /// Every dispatch runs to completion when its packet is reached.
    #[default]
    InOrder,
    /// Dispatches run at the next execution barrier, in reverse order, and read stale bytes
    /// where no visibility barrier followed another dispatch's write.
    Strict,
}

impl DispatchOrder {
    /// The order named by [`ORDER_ENV`]: `None` when it is unset.
    ///
    /// Errors: [`Error::InvalidArgument`] naming the value when it is neither `in-order` nor
    /// `strict` ([`Engine::new`] reports it, so a typo is never silently ignored).
    pub fn from_env() -> Result<Option<DispatchOrder>> {
        std::env::var(ORDER_ENV).ok().map(|v| DispatchOrder::parse(&v)).transpose()
    }

    /// The order called `name` (`in-order` or `strict`).
    ///
    /// Errors: [`Error::InvalidArgument`] naming [`ORDER_ENV`] and the value otherwise.
    pub fn parse(name: &str) -> Result<DispatchOrder> {
        match name {
            "in-order" => Ok(DispatchOrder::InOrder),
            "strict" => Ok(DispatchOrder::Strict),
            _ => Err(Error::InvalidArgument(format!(
                "{ORDER_ENV}={name:?}: expected \"in-order\" or \"strict\""
            ))),
        }
    }
}

/// Which queue a work item runs on; each has its own [`RegisterFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueId {
    /// The queue of [`Work::Ib`] items (the kernel's compute ring, or the simulator tier's).
    Direct,
    /// The ring-based queue whose ring starts at this VA ([`Work::Ring`]).
    Ring(u64),
}

/// The memory a dispatch reads and writes, as a [`DispatchHook`] knows it from the kernel's
/// arguments (used by [`DispatchOrder::Strict`] to model stale caches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// VA ranges the dispatch reads.
    pub reads: Vec<Range<u64>>,
    /// VA ranges the dispatch writes.
    pub writes: Vec<Range<u64>>,
}

/// A ring buffer to consume, as a KFD or user-mode queue's doorbell asks.
///
/// The write pointer is the queue's 64-bit dword count (it only grows); its ring index is
/// `wptr % ring_dwords`. The read pointer is what the CP reports at the MQD's
/// `cp_hqd_pq_rptr_report_addr` for both KFD PM4 queues (kfd_mqd_manager_v11.c `update_mqd`:
/// `q->read_ptr`) and user queues (mes_userqueue.c `mes_userq_mqd_create`:
/// `userq_props->rptr_gpu_addr = rptr_va`, handed to the IP's `init_mqd`): a little-endian
/// **32-bit dword offset that wraps at the ring size** (ROCm kfdtest: "On PM4 queues Rptr is
/// always 32-bit in dword units and wraps at queue size"; the kernel reads its own compute
/// rings' report as `*(uint32_t *)ring->rptr_cpu_addr`, `gfx_v11_0_ring_get_rptr_compute`).
/// The engine reads that `u32` at `rptr_va`, executes the `(wptr - rptr) mod ring_dwords`
/// dwords queued (a packet may wrap around the ring end; `wptr == rptr` modulo the ring is an
/// empty ring), and stores `(rptr + consumed) mod ring_dwords` as a `u32` at `rptr_va` after
/// each packet completes; the 4 bytes after it are never written. A report outside the ring
/// halts the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingWork {
    /// GPU VA of the ring's first dword.
    pub ring_va: u64,
    /// Ring size in dwords (> 0).
    pub ring_dwords: u32,
    /// GPU VA of the 32-bit read-pointer report.
    pub rptr_va: u64,
    /// Write pointer to consume up to (exclusive).
    pub wptr: u64,
}

/// One unit of queue work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Execute the IB of `dwords` dwords at GPU VA `va` (4-byte aligned, `dwords` > 0).
    Ib {
        /// IB start VA.
        va: u64,
        /// IB length in dwords.
        dwords: u32,
    },
    /// Consume a ring buffer up to a write pointer.
    Ring(RingWork),
}

/// An interrupt raised by a `RELEASE_MEM` with INT_SEL != 0, after its data write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupt {
    /// Sequence number of the work item that raised it.
    pub seq: u64,
    /// INT_SEL (1 interrupt, 2 after write confirm, 3 send data after write confirm).
    pub int_sel: u8,
    /// EVENT_TYPE of the packet.
    pub event_type: u8,
    /// INT_CTXID (dw7).
    pub ctxid: u32,
    /// The packet's address.
    pub addr: u64,
    /// What was written at `addr` (0 when DATA_SEL is 0).
    pub data: u64,
}

/// Observer of [`Interrupt`]s, called on the queue thread. Must not block for long.
pub trait InterruptHook: Send + Sync {
    /// One interrupt was raised.
    fn interrupt(&self, irq: &Interrupt);
}

impl<F: Fn(&Interrupt) + Send + Sync> InterruptHook for F {
    fn interrupt(&self, irq: &Interrupt) {
        self(irq)
    }
}

/// The queue's register file: dword register address -> value (unset registers read 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterFile {
    regs: BTreeMap<u32, u32>,
}

impl RegisterFile {
    /// The value of the register at dword address `addr`.
    pub fn get(&self, addr: u32) -> u32 {
        self.regs.get(&addr).copied().unwrap_or(0)
    }

    /// Set the register at dword address `addr`.
    pub fn set(&mut self, addr: u32, value: u32) {
        self.regs.insert(addr, value);
    }

    /// The SH register at `SET_SH_REG` offset `offset` (address [`SH_REG_BASE`] + offset).
    pub fn sh(&self, offset: u16) -> u32 {
        self.get(SH_REG_BASE + u32::from(offset))
    }

    /// Set the SH register at offset `offset`.
    pub fn set_sh(&mut self, offset: u16, value: u32) {
        self.set(SH_REG_BASE + u32::from(offset), value)
    }
}

/// Everything a [`DispatchHook`] sees for one `DISPATCH_DIRECT`.
pub struct DispatchContext<'a> {
    /// The register file as programmed by the stream so far.
    pub regs: &'a RegisterFile,
    /// DISPATCH_DIRECT dim_x/y/z.
    pub dim: [u32; 3],
    /// DISPATCH_DIRECT initiator (COMPUTE_DISPATCH_INITIATOR).
    pub initiator: u32,
    /// The GPU memory (kernarg, code, buffers).
    pub memory: &'a GpuMemory,
    /// The configured GPU generation.
    pub gfx: GfxTarget,
    /// Set when the queue is being stopped (the engine is shut down or dropped): an executor
    /// that may run for long (the ISA interpreter on a kernel that never ends) polls it and
    /// gives up with an error, so stopping a queue never waits for a hung kernel.
    pub cancel: &'a AtomicBool,
}

impl DispatchContext<'_> {
    /// The code VA from COMPUTE_PGM_LO/HI: `LO << 8 | HI << 40`.
    pub fn pgm_va(&self) -> u64 {
        pgm_va(self.regs)
    }

    /// COMPUTE_USER_DATA_`i` (`i` < 16; others read 0).
    pub fn user_data(&self, i: u16) -> u32 {
        if i < COMPUTE_USER_DATA_COUNT {
            self.regs.sh(COMPUTE_USER_DATA_0 + i)
        } else {
            0
        }
    }

    /// COMPUTE_NUM_THREAD_X/Y/Z raw values.
    pub fn num_threads(&self) -> [u32; 3] {
        [0, 1, 2].map(|i| self.regs.sh(COMPUTE_NUM_THREAD_X + i))
    }
}

fn pgm_va(regs: &RegisterFile) -> u64 {
    (u64::from(regs.sh(COMPUTE_PGM_LO)) << 8) | (u64::from(regs.sh(COMPUTE_PGM_HI)) << 40)
}

/// Runs the kernels of `DISPATCH_DIRECT` packets. Installed with
/// [`Engine::set_dispatch_hook`]; called on the queue thread.
pub trait DispatchHook: Send + Sync {
    /// Run the dispatch described by `ctx` to completion.
    ///
    /// Errors: any [`Error`] halts the queue (typically [`Error::Dispatch`] for unknown code
    /// or bad arguments, [`Error::Fault`] for an unmapped access).
    fn dispatch(&self, ctx: &mut DispatchContext<'_>) -> Result<()>;

    /// The memory the dispatch described by `ctx` would read and write, when the hook knows
    /// it (`None`: unknown, so [`DispatchOrder::Strict`] models no stale reads for it). Called
    /// just before [`DispatchHook::dispatch`], in strict order only.
    ///
    /// Errors: as `dispatch` (an error here halts the queue the same way).
    fn footprint(&self, ctx: &DispatchContext<'_>) -> Result<Option<Footprint>> {
        let _ = ctx;
        Ok(None)
    }
}

#[derive(Debug, Default)]
struct Progress {
    submitted: u64,
    completed: u64,
    halted: Option<(u64, Error)>,
}

struct Shared {
    mem: Arc<GpuMemory>,
    config: EngineConfig,
    progress: Mutex<Progress>,
    done: Condvar,
    shutdown: AtomicBool,
    packets: AtomicU64,
    dispatches: AtomicU64,
    interrupts: AtomicU64,
    stale_reads: AtomicU64,
    regs: Mutex<HashMap<QueueId, RegisterFile>>,
    dispatch_hook: RwLock<Option<Arc<dyn DispatchHook>>>,
    interrupt_hook: RwLock<Option<Arc<dyn InterruptHook>>>,
    epoch: Instant,
    /// Ring VAs of unmapped queues (see [`Engine::unmap_ring`]).
    unmapped_rings: Mutex<HashSet<u64>>,
}

impl Shared {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unmapped_rings(&self) -> MutexGuard<'_, HashSet<u64>> {
        self.unmapped_rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn regs(&self) -> MutexGuard<'_, HashMap<QueueId, RegisterFile>> {
        self.regs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Job {
    seq: u64,
    work: Work,
}

/// A simulated compute queue running on its own thread. See the module documentation.
///
/// Dropping it stops the thread promptly (between packets, or out of a `WAIT_REG_MEM` poll)
/// and joins it; queued work is discarded.
pub struct Engine {
    shared: Arc<Shared>,
    tx: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .field("progress", &*self.shared.progress())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Start a queue thread executing against `mem`.
    ///
    /// Errors: [`Error::InvalidArgument`] when [`ORDER_ENV`] holds an unknown value;
    /// [`Error::Io`] (step `"spawn queue thread"`) when the thread cannot be created.
    pub fn new(mem: Arc<GpuMemory>, mut config: EngineConfig) -> Result<Engine> {
        DispatchOrder::from_env()?;
        config.ib_depth_limit = config.ib_depth_limit.min(MAX_IB_DEPTH_LIMIT);
        let shared = Arc::new(Shared {
            mem,
            config,
            progress: Mutex::new(Progress::default()),
            done: Condvar::new(),
            shutdown: AtomicBool::new(false),
            packets: AtomicU64::new(0),
            dispatches: AtomicU64::new(0),
            interrupts: AtomicU64::new(0),
            stale_reads: AtomicU64::new(0),
            regs: Mutex::new(HashMap::new()),
            dispatch_hook: RwLock::new(None),
            interrupt_hook: RwLock::new(None),
            epoch: Instant::now(),
            unmapped_rings: Mutex::new(HashSet::new()),
        });
        let (tx, rx) = channel();
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("pm4rt-sim-queue".into())
            .spawn(move || queue_thread(&worker, rx))
            .map_err(|e| {
                Error::io("spawn queue thread", e.raw_os_error().map_or(Errno::EAGAIN, Errno))
            })?;
        Ok(Engine { shared, tx: Some(tx), thread: Some(thread) })
    }

    /// The memory this engine executes against.
    pub fn memory(&self) -> &Arc<GpuMemory> {
        &self.shared.mem
    }

    /// The configuration in effect (with the depth limit clamped).
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// Install (or with `None` remove) the hook that runs `DISPATCH_DIRECT` kernels.
    pub fn set_dispatch_hook(&self, hook: Option<Arc<dyn DispatchHook>>) {
        *self.shared.dispatch_hook.write().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    /// Install (or remove) the observer of `RELEASE_MEM` interrupts.
    pub fn set_interrupt_hook(&self, hook: Option<Arc<dyn InterruptHook>>) {
        *self.shared.interrupt_hook.write().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    /// Queue `work` and return its sequence number (1 for the first item, then +1 each).
    /// Does not wait.
    ///
    /// Errors: [`Error::InvalidArgument`] for an empty or misaligned IB or an empty ring;
    /// [`Error::DeviceLost`] once the queue has halted (the reason names the first error).
    pub fn submit(&self, work: Work) -> Result<u64> {
        match work {
            Work::Ib { va, dwords } => {
                if dwords == 0 || va & 3 != 0 {
                    return Err(Error::InvalidArgument(format!(
                        "IB at {va:#x} of {dwords} dwords (needs > 0 dwords, 4-byte alignment)"
                    )));
                }
                // The CP is handed an IB through INDIRECT_BUFFER's 20-bit IB_SIZE.
                pm4rt_core::check_ib_size(dwords)?;
            }
            Work::Ring(r) => {
                if r.ring_dwords == 0 || r.ring_va & 3 != 0 {
                    return Err(Error::InvalidArgument(format!(
                        "ring at {:#x} of {} dwords (needs > 0 dwords, 4-byte alignment)",
                        r.ring_va, r.ring_dwords
                    )));
                }
            }
        }
        let mut p = self.shared.progress();
        if let Some((seq, e)) = &p.halted {
            return Err(Error::DeviceLost { reason: format!("queue halted by work #{seq}: {e}") });
        }
        let seq = p.submitted + 1;
        let tx =
            self.tx.as_ref().ok_or_else(|| Error::DeviceLost { reason: "queue stopped".into() })?;
        tx.send(Job { seq, work })
            .map_err(|_| Error::DeviceLost { reason: "queue thread is gone".into() })?;
        p.submitted = seq;
        Ok(seq)
    }

    /// The outcome of item `seq` if known: `Some(Ok)` done, `Some(Err)` failed (or the queue
    /// halted before it), `None` still pending.
    ///
    /// Errors (inside `Some`): the halting error; [`Error::UnknownFence`] for a `seq` never
    /// issued.
    pub fn poll(&self, seq: u64) -> Option<Result<()>> {
        Self::outcome(&self.shared.progress(), seq)
    }

    fn outcome(p: &Progress, seq: u64) -> Option<Result<()>> {
        if seq == 0 || seq > p.submitted {
            return Some(Err(Error::UnknownFence(Fence { seq })));
        }
        if seq <= p.completed {
            return Some(Ok(()));
        }
        match &p.halted {
            Some((h, e)) if seq >= *h => Some(Err(e.clone())),
            _ => None,
        }
    }

    /// Wait up to `timeout` for item `seq` to finish.
    ///
    /// Errors: [`Error::Timeout`] (with `fence.seq == seq`); the halting error for a failed
    /// item or one queued after it; [`Error::UnknownFence`] for a `seq` never issued.
    pub fn wait(&self, seq: u64, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut p = self.shared.progress();
        loop {
            if let Some(r) = Self::outcome(&p, seq) {
                return r;
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Timeout { fence: Fence { seq }, waited });
            }
            p = self
                .shared
                .done
                .wait_timeout(p, timeout - waited)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Sequence number of the last item submitted (0 before the first).
    pub fn submitted(&self) -> u64 {
        self.shared.progress().submitted
    }

    /// Sequence number of the last item that completed successfully (0 before the first).
    pub fn completed(&self) -> u64 {
        self.shared.progress().completed
    }

    /// The item that halted the queue and its error, if it has halted.
    pub fn halted(&self) -> Option<(u64, Error)> {
        self.shared.progress().halted.clone()
    }

    /// PM4 packets executed so far (ring and IB packets, including nested ones).
    pub fn packets(&self) -> u64 {
        self.shared.packets.load(Ordering::Relaxed)
    }

    /// `DISPATCH_DIRECT` packets handed to the hook so far.
    pub fn dispatches(&self) -> u64 {
        self.shared.dispatches.load(Ordering::Relaxed)
    }

    /// Interrupts raised so far.
    pub fn interrupts(&self) -> u64 {
        self.shared.interrupts.load(Ordering::Relaxed)
    }

    /// Dispatches that read stale bytes under [`DispatchOrder::Strict`] (module docs).
    pub fn stale_reads(&self) -> u64 {
        self.shared.stale_reads.load(Ordering::Relaxed)
    }

    /// A copy of `queue`'s register file as its last finished work item left it (empty for a
    /// queue that never ran).
    pub fn registers(&self, queue: QueueId) -> RegisterFile {
        self.shared.regs().get(&queue).cloned().unwrap_or_default()
    }
}

impl Engine {
    /// Unmaps the ring-based queue whose ring starts at `ring_va` (module docs, "Queue
    /// unmapping"): its packets stop at the next packet boundary, its queued items are
    /// skipped, and this returns once every item submitted before the call has finished, been
    /// skipped, or the queue has halted. Skipped and stopped items count as completed.
    ///
    /// Errors: [`Error::Timeout`] when the engine has not passed those items within `timeout`
    /// (another queue's long item ahead of them); the ring stays unmapped either way.
    pub fn unmap_ring(&self, ring_va: u64, timeout: Duration) -> Result<()> {
        self.shared.unmapped_rings().insert(ring_va);
        let deadline = Instant::now() + timeout;
        let mut p = self.shared.progress();
        let target = p.submitted;
        while p.completed < target && p.halted.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout { fence: Fence { seq: target }, waited: timeout });
            }
            p = self
                .shared
                .done
                .wait_timeout(p, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(p);
        self.shared.regs().remove(&QueueId::Ring(ring_va));
        Ok(())
    }

    /// Lets the ring at `ring_va` execute again (a queue created at the address of an
    /// unmapped one), with an empty register file. Items submitted for it afterwards run
    /// normally.
    pub fn map_ring(&self, ring_va: u64) {
        self.shared.regs().remove(&QueueId::Ring(ring_va));
        self.shared.unmapped_rings().remove(&ring_va);
    }

    /// Stop the queue thread and join it: the packet running finishes (a `WAIT_REG_MEM` poll
    /// is abandoned), queued work is discarded, and later [`Engine::submit`] calls fail with
    /// [`Error::DeviceLost`]. Idempotent; [`Drop`] calls it.
    pub fn shutdown(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            // The thread cannot panic by construction; if it did, there is nothing to report.
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Why execution stopped early.
enum Stop {
    Fail(Error),
    Shutdown,
    /// The ring being executed was unmapped: the item ends without error.
    Unmapped,
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fail(e)
    }
}

type Flow<T = ()> = std::result::Result<T, Stop>;

fn queue_thread(sh: &Shared, rx: Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        if sh.shutdown.load(Ordering::SeqCst) {
            break;
        }
        if sh.progress().halted.is_some() {
            continue;
        }
        let queue = match job.work {
            Work::Ring(r) => QueueId::Ring(r.ring_va),
            Work::Ib { .. } => QueueId::Direct,
        };
        let regs = sh.regs().remove(&queue).unwrap_or_default();
        let mut ex =
            Executor { sh, seq: job.seq, queue, regs, held: Vec::new(), dirty: Vec::new() };
        let r = match job.work {
            Work::Ib { va, dwords } => ex.run_ib(va, dwords, 1),
            Work::Ring(r) => ex.run_ring(r),
        }
        .and_then(|()| ex.barrier());
        let unmapped = matches!(queue, QueueId::Ring(va) if sh.unmapped_rings().contains(&va));
        if !unmapped {
            sh.regs().insert(queue, ex.regs);
        }
        let mut p = sh.progress();
        match r {
            Ok(()) | Err(Stop::Unmapped) => p.completed = job.seq,
            Err(Stop::Fail(e)) => p.halted = Some((job.seq, e)),
            Err(Stop::Shutdown) => break,
        }
        drop(p);
        sh.done.notify_all();
    }
}

/// Where the packet being executed came from, for error reports.
#[derive(Clone, Copy)]
struct At {
    /// IB (or ring) VA.
    va: u64,
    /// Dword offset of the packet header (ring index for rings).
    off: usize,
}

fn bad_field(at: At, name: &'static str, reason: String) -> Error {
    Error::Pm4 {
        ib_va: at.va,
        source: DecodeError { offset: at.off, kind: DecodeErrorKind::BadField { name, reason } },
    }
}

/// What an executed packet asks of the stream it came from.
enum Next {
    Continue,
    Chain(IndirectBuffer),
}

/// A dispatch held by [`DispatchOrder::Strict`] until the next execution barrier.
struct Held {
    regs: RegisterFile,
    dim: [u32; 3],
    initiator: u32,
}

/// Bytes a dispatch of this work item overwrote since the last visibility barrier: what a
/// stale cache line still holds.
struct Dirty {
    va: u64,
    old: Vec<u8>,
}

/// ACQUIRE_MEM GCR_CNTL GLV_INV (bit 8) and GL1_INV (bit 9), and the same bits of the
/// RELEASE_MEM GCR_CNTL field (dw1 bits 14 and 15, i.e. field bits 2 and 3).
const AM_GLV_INV: u32 = 1 << 8;
const AM_GL1_INV: u32 = 1 << 9;
const RM_GLV_INV: u16 = 1 << 2;
const RM_GL1_INV: u16 = 1 << 3;

struct Executor<'a> {
    sh: &'a Shared,
    seq: u64,
    queue: QueueId,
    /// This queue's register file, taken out of [`Shared::regs`] for the item.
    regs: RegisterFile,
    /// Dispatches held until the next execution barrier (strict order only).
    held: Vec<Held>,
    /// Bytes overwritten by dispatches since the last visibility barrier (strict order only).
    dirty: Vec<Dirty>,
}

impl Executor<'_> {
    fn mem(&self) -> &GpuMemory {
        &self.sh.mem
    }

    /// Between packets and polls: stop on shutdown, or when the ring being executed was
    /// unmapped.
    fn check_shutdown(&self) -> Flow {
        if self.sh.shutdown.load(Ordering::Relaxed) {
            return Err(Stop::Shutdown);
        }
        if let QueueId::Ring(va) = self.queue {
            if self.sh.unmapped_rings().contains(&va) {
                return Err(Stop::Unmapped);
            }
        }
        Ok(())
    }

    fn strict(&self) -> bool {
        self.sh.config.order == DispatchOrder::Strict
    }

    /// An execution barrier: run the held dispatches, last first (strict order).
    fn barrier(&mut self) -> Flow {
        let held = std::mem::take(&mut self.held);
        for h in held.into_iter().rev() {
            self.check_shutdown()?;
            self.run_dispatch(&h.regs, h.dim, h.initiator)?;
        }
        Ok(())
    }

    /// A cache invalidate: later dispatches see every earlier write (strict order).
    fn invalidate(&mut self, glv: bool, gl1: bool) {
        let gl1_needed = self.sh.config.gfx == GfxTarget::Gfx1100;
        if glv && (gl1 || !gl1_needed) {
            self.dirty.clear();
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.sh.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Run an IB (and whatever it chains to) at nesting `level`.
    fn run_ib(&mut self, va: u64, dwords: u32, level: u32) -> Flow {
        let (mut va, mut dwords) = (va, dwords);
        'chain: loop {
            let stream = self.mem().read_dwords(va, dwords as usize)?;
            let mut off = 0;
            while off < stream.len() {
                self.check_shutdown()?;
                let (pkt, len) =
                    decode_at(&stream, off).map_err(|source| Error::Pm4 { ib_va: va, source })?;
                let at = At { va, off };
                off += len;
                match self.packet(pkt, at, level)? {
                    Next::Continue => {}
                    Next::Chain(ib) => {
                        va = ib.va;
                        dwords = ib.size_dw;
                        continue 'chain;
                    }
                }
            }
            return Ok(());
        }
    }

    fn run_ring(&mut self, r: RingWork) -> Flow {
        self.check_shutdown()?;
        // The CP's form of the read pointer: a u32 dword offset inside the ring (RingWork).
        let rptr = u64::from(self.mem().read_u32(r.rptr_va)?);
        let n = r.ring_dwords as u64;
        if rptr >= n {
            return Err(Error::InvalidArgument(format!(
                "read pointer report {rptr} is outside the ring of {n} dwords"
            ))
            .into());
        }
        let pending = (r.wptr % n + n - rptr) % n;
        // Linearise [rptr, wptr) so packets wrapping the ring end decode as one.
        let start = (rptr % n) as usize;
        let mut stream = Vec::with_capacity(pending as usize);
        let first = (pending as usize).min(n as usize - start);
        let start_va =
            r.ring_va.checked_add(4 * start as u64).ok_or(Error::Fault { va: u64::MAX })?;
        stream.extend(self.mem().read_dwords(start_va, first)?);
        stream.extend(self.mem().read_dwords(r.ring_va, pending as usize - first)?);
        let ring_off = |off: usize| (start + off) % n as usize;
        let mut off = 0;
        while off < stream.len() {
            self.check_shutdown()?;
            let (pkt, len) = decode_at(&stream, off).map_err(|mut source| {
                source.offset = ring_off(source.offset);
                Error::Pm4 { ib_va: r.ring_va, source }
            })?;
            let at = At { va: r.ring_va, off: ring_off(off) };
            off += len;
            if let Next::Chain(ib) = self.packet(pkt, at, 0)? {
                self.run_ib(ib.va, ib.size_dw, 1)?;
            }
            self.mem().write_u32(r.rptr_va, ((rptr + off as u64) % n) as u32)?;
        }
        Ok(())
    }

    fn packet(&mut self, pkt: Packet, at: At, level: u32) -> Flow<Next> {
        self.sh.packets.fetch_add(1, Ordering::Relaxed);
        match pkt {
            Packet::Nop { .. } => {}
            Packet::AcquireMem(a) => {
                self.invalidate(a.gcr_cntl & AM_GLV_INV != 0, a.gcr_cntl & AM_GL1_INV != 0)
            }
            Packet::EventWrite { event_type, .. } => {
                if event_type == event::CS_PARTIAL_FLUSH {
                    self.barrier()?;
                }
            }
            Packet::SetShReg { offset, values } => {
                for (i, v) in values.into_iter().enumerate() {
                    self.regs.set(SH_REG_BASE + u32::from(offset) + i as u32, v);
                }
            }
            Packet::WriteData(w) => self.write_data(&w, at)?,
            Packet::CopyData(c) => self.copy_data(&c, at)?,
            Packet::ReleaseMem(r) => {
                self.barrier()?;
                self.release_mem(&r, at)?;
                self.invalidate(r.gcr_cntl & RM_GLV_INV != 0, r.gcr_cntl & RM_GL1_INV != 0);
            }
            Packet::WaitRegMem(w) => {
                self.barrier()?;
                self.wait_reg_mem(&w, at)?
            }
            Packet::IndirectBuffer(ib) => {
                if ib.size_dw == 0 || ib.va & 3 != 0 {
                    return Err(bad_field(
                        at,
                        "INDIRECT_BUFFER",
                        format!("IB at {:#x} of {} dwords", ib.va, ib.size_dw),
                    )
                    .into());
                }
                if ib.chain {
                    return Ok(Next::Chain(ib));
                }
                if level + 1 > self.sh.config.ib_depth_limit {
                    return Err(Error::IbDepth {
                        ib_va: at.va,
                        limit: self.sh.config.ib_depth_limit,
                    }
                    .into());
                }
                self.run_ib(ib.va, ib.size_dw, level + 1)?;
            }
            Packet::DispatchDirect { dim, initiator } => self.dispatch(dim, initiator)?,
            Packet::Other { opcode, .. } => {
                return Err(bad_field(
                    at,
                    "PM4",
                    format!("opcode {opcode:#04x} is not executed by the simulator"),
                )
                .into())
            }
        }
        Ok(Next::Continue)
    }

    fn write_data(&mut self, w: &WriteData, at: At) -> Flow {
        match w.dst_sel {
            0 => {
                for (i, &v) in w.data.iter().enumerate() {
                    let inc = if w.no_increment { 0 } else { i as u64 };
                    let addr = w.addr.checked_add(inc).and_then(|a| u32::try_from(a).ok());
                    let addr = addr.ok_or_else(|| {
                        bad_field(at, "WRITE_DATA", format!("register {:#x}", w.addr))
                    })?;
                    self.regs.set(addr, v);
                }
            }
            2 | 5 => {
                if w.no_increment {
                    for &v in &w.data {
                        self.mem().write_u32(w.addr, v)?;
                    }
                } else {
                    let bytes: Vec<u8> = w.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                    self.mem().write(w.addr, &bytes)?;
                }
            }
            s => {
                return Err(bad_field(at, "WRITE_DATA", format!("DST_SEL {s} not supported")).into())
            }
        }
        Ok(())
    }

    fn read_reg64(&self, addr: u64, at: At, name: &'static str) -> Flow<u64> {
        let a = u32::try_from(addr)
            .ok()
            .filter(|a| a.checked_add(1).is_some())
            .ok_or_else(|| bad_field(at, name, format!("register {addr:#x}")))?;
        Ok(u64::from(self.regs.get(a)) | (u64::from(self.regs.get(a + 1)) << 32))
    }

    fn copy_data(&mut self, c: &CopyData, at: At) -> Flow {
        let value = match c.src_sel {
            0 => self.read_reg64(c.src, at, "COPY_DATA")?,
            2 => {
                if c.count64 {
                    self.mem().read_u64(c.src)?
                } else {
                    u64::from(self.mem().read_u32(c.src)?)
                }
            }
            5 => c.src,
            9 => self.now_ns(),
            s => {
                return Err(bad_field(at, "COPY_DATA", format!("SRC_SEL {s} not supported")).into())
            }
        };
        match c.dst_sel {
            0 => {
                let a = u32::try_from(c.dst)
                    .ok()
                    .filter(|a| a.checked_add(1).is_some())
                    .ok_or_else(|| bad_field(at, "COPY_DATA", format!("register {:#x}", c.dst)))?;
                self.regs.set(a, value as u32);
                if c.count64 {
                    self.regs.set(a + 1, (value >> 32) as u32);
                }
            }
            2 | 5 => {
                if c.count64 {
                    self.mem().write_u64(c.dst, value)?
                } else {
                    self.mem().write_u32(c.dst, value as u32)?
                }
            }
            s => {
                return Err(bad_field(at, "COPY_DATA", format!("DST_SEL {s} not supported")).into())
            }
        }
        Ok(())
    }

    fn release_mem(&mut self, r: &ReleaseMem, at: At) -> Flow {
        let data = match r.data_sel {
            0 => 0,
            1 => {
                self.mem().write_u32(r.addr, r.data as u32)?;
                u64::from(r.data as u32)
            }
            2 => {
                self.mem().write_u64(r.addr, r.data)?;
                r.data
            }
            3 | 4 => {
                let t = self.now_ns();
                self.mem().write_u64(r.addr, t)?;
                t
            }
            s => {
                return Err(
                    bad_field(at, "RELEASE_MEM", format!("DATA_SEL {s} not supported")).into()
                )
            }
        };
        if r.int_sel != 0 {
            self.sh.interrupts.fetch_add(1, Ordering::Relaxed);
            let hook = self.sh.interrupt_hook.read().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(h) = hook {
                h.interrupt(&Interrupt {
                    seq: self.seq,
                    int_sel: r.int_sel,
                    event_type: r.event_type,
                    ctxid: r.int_ctxid,
                    addr: r.addr,
                    data,
                });
            }
        }
        Ok(())
    }

    fn wait_reg_mem(&mut self, w: &WaitRegMem, at: At) -> Flow {
        let (function, cmp): (&'static str, fn(u32, u32) -> bool) = match w.function {
            0 => ("always", |_, _| true),
            1 => ("<", |a, b| a < b),
            2 => ("<=", |a, b| a <= b),
            3 => ("==", |a, b| a == b),
            4 => ("!=", |a, b| a != b),
            5 => (">=", |a, b| a >= b),
            6 => (">", |a, b| a > b),
            f => {
                return Err(
                    bad_field(at, "WAIT_REG_MEM", format!("FUNCTION {f} is reserved")).into()
                )
            }
        };
        let read = |ex: &Self| -> Flow<u32> {
            match w.mem_space {
                0 => Ok(ex.read_reg64(w.addr, at, "WAIT_REG_MEM")? as u32),
                _ => Ok(ex.mem().read_u32(w.addr)?),
            }
        };
        if w.mem_space > 1 {
            return Err(bad_field(at, "WAIT_REG_MEM", format!("MEM_SPACE {}", w.mem_space)).into());
        }
        let deadline = Instant::now() + self.sh.config.wait_deadline;
        let mut polls = 0u32;
        loop {
            let v = read(self)?;
            if cmp(v & w.mask, w.reference) {
                return Ok(());
            }
            self.check_shutdown()?;
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::WaitRegMemDeadline {
                    va: w.addr,
                    reference: w.reference,
                    mask: w.mask,
                    function,
                    last: v,
                }
                .into());
            }
            polls = polls.saturating_add(1);
            if polls < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep((deadline - now).min(Duration::from_micros(100)));
            }
        }
    }

    fn dispatch(&mut self, dim: [u32; 3], initiator: u32) -> Flow {
        if self.strict() {
            self.held.push(Held { regs: self.regs.clone(), dim, initiator });
            return Ok(());
        }
        let regs = std::mem::take(&mut self.regs);
        let r = self.run_dispatch(&regs, dim, initiator);
        self.regs = regs;
        r
    }

    /// Run one dispatch with the registers `regs` (strict order: with stale reads modelled).
    fn run_dispatch(&mut self, regs: &RegisterFile, dim: [u32; 3], initiator: u32) -> Flow {
        let sh = self.sh;
        sh.dispatches.fetch_add(1, Ordering::Relaxed);
        let hook = sh.dispatch_hook.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(hook) = hook else {
            let pgm_va = pgm_va(regs);
            return Err(Error::Dispatch {
                pgm_va,
                reason: format!("no kernel registered for code at {pgm_va:#x}"),
            }
            .into());
        };
        let mut ctx = DispatchContext {
            regs,
            dim,
            initiator,
            memory: &sh.mem,
            gfx: sh.config.gfx,
            cancel: &sh.shutdown,
        };
        let footprint = if self.strict() { hook.footprint(&ctx)? } else { None };
        let Some(fp) = footprint else {
            hook.dispatch(&mut ctx)?;
            return Ok(());
        };
        let mem = ctx.memory;
        // What the dispatch overwrites, as it was before (the stale bytes of later readers).
        let before: Vec<Dirty> = fp
            .writes
            .iter()
            .filter_map(|r| snapshot(mem, r.clone()).map(|old| Dirty { va: r.start, old }))
            .collect();
        // Present stale bytes where the dispatch reads what an earlier one wrote; newest
        // first, so the oldest bytes win where several writes overlap.
        let mut swapped: Vec<Dirty> = Vec::new();
        for d in self.dirty.iter().rev() {
            let dr = d.va..d.va + d.old.len() as u64;
            for r in &fp.reads {
                let Some(o) = intersect(&dr, r) else { continue };
                let Some(cur) = snapshot(mem, o.clone()) else { continue };
                let from = (o.start - d.va) as usize;
                mem.write(o.start, &d.old[from..from + cur.len()])?;
                swapped.push(Dirty { va: o.start, old: cur });
            }
        }
        if !swapped.is_empty() {
            sh.stale_reads.fetch_add(1, Ordering::Relaxed);
        }
        let result = hook.dispatch(&mut ctx);
        // Put back the current bytes, except where this dispatch wrote.
        for s in swapped.iter().rev() {
            let sr = s.va..s.va + s.old.len() as u64;
            for piece in subtract(sr, &fp.writes) {
                let from = (piece.start - s.va) as usize;
                let to = (piece.end - s.va) as usize;
                mem.write(piece.start, &s.old[from..to])?;
            }
        }
        result?;
        self.dirty.extend(before);
        Ok(())
    }
}

/// The bytes of `r` (`None` when any of it is unreadable: the dispatch will fault there
/// itself, or the range is empty).
fn snapshot(mem: &GpuMemory, r: Range<u64>) -> Option<Vec<u8>> {
    let len = usize::try_from(r.end.checked_sub(r.start)?).ok().filter(|&n| n > 0)?;
    let mut v = vec![0u8; len];
    mem.read(r.start, &mut v).ok()?;
    Some(v)
}

fn intersect(a: &Range<u64>, b: &Range<u64>) -> Option<Range<u64>> {
    let r = a.start.max(b.start)..a.end.min(b.end);
    (r.start < r.end).then_some(r)
}

/// `r` minus every range of `cut`, as ordered pieces.
fn subtract(r: Range<u64>, cut: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut pieces = vec![r];
    for c in cut {
        pieces = pieces
            .into_iter()
            .flat_map(|p| {
                let mut out = Vec::with_capacity(2);
                if c.start > p.start {
                    out.push(p.start..c.start.min(p.end));
                }
                if c.end < p.end {
                    out.push(c.end.max(p.start)..p.end);
                }
                if c.end <= p.start || c.start >= p.end {
                    out = vec![p];
                }
                out.into_iter().filter(|q| q.start < q.end).collect::<Vec<_>>()
            })
            .collect();
    }
    pieces
}

/// Decode the packet at `off`; returns it and its length in dwords.
fn decode_at(stream: &[u32], off: usize) -> std::result::Result<(Packet, usize), DecodeError> {
    decode_one(stream, off)
}
