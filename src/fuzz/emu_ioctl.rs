//! Target `emu_ioctl`: the emulated amdgpu / KFD device (`pm4rt_sim::emu`) driven through
//! [`Driver`] by a program of plausible system calls built from the input.
//!
//! Raw argument bytes almost never carry a valid handle or user pointer, so the input is read
//! as a program ([`Op`]), which reaches deep states (a CS on a context with mapped BOs, KFD
//! queues on allocated memory):
//! - every successful ioctl's argument dwords are appended to a value pool (handles, context
//!   ids, mmap offsets, queue ids), which later arguments can reference;
//! - an ioctl carries up to [`MAX_BUFFERS`] user buffers, and patches store into the argument
//!   or a buffer a user pointer to (an offset in) a buffer, a pool value, an open descriptor
//!   or an absolute CLOCK_MONOTONIC deadline;
//! - requests are picked from pm4rt's DRM and KFD ioctl tables, or taken raw (any number, any
//!   argument length).
//!
//! Byte 0 picks the device: gfx1201, gfx1100, or gfx1100 with user queues enabled; every
//! preset bounds waits at [`WAIT_CAP`].
//!
//! Checked: no call panics; at the end, once every mapping is dropped, every reservation
//! released and every descriptor closed, the device holds no live object ([`LiveHandles`] all
//! zero: the emulator frees what a closed file owned, as the kernel does).
//!
//! [`LiveHandles`]: pm4rt_sim::emu::LiveHandles

use std::time::Duration;

use pm4rt_core::abi::drm::{DRM_AMDGPU_GEM_CREATE, DRM_COMMAND_BASE, DRM_IOCTLS, DRM_IOCTL_BASE};
use pm4rt_core::abi::ioctl::{ioc_nr, ioc_size, ioc_type};
use pm4rt_core::abi::kfd::{AMDKFD_IOCTL_BASE, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, KFD_IOCTLS};
use pm4rt_core::driver::{user_ptr, Driver, Fd, MapAt, Mapping};
use pm4rt_sim::emu::{EmulatedDevice, Preset, KFD_PATH};

use super::input::{Input, Output};

/// Longest a WAIT_CS / WAIT_EVENTS of the fuzzed device blocks.
pub const WAIT_CAP: Duration = Duration::from_millis(20);
/// Most user buffers per ioctl.
pub const MAX_BUFFERS: usize = 4;
/// Largest user buffer (bytes).
pub const MAX_BUFFER_BYTES: usize = 4096;
/// Most patches per ioctl.
pub const MAX_PATCHES: usize = 16;
/// Most values the pool keeps.
pub const MAX_POOL: usize = 1024;
/// Most operations run per input.
pub const MAX_OPS: usize = 256;
/// Largest CPU mapping asked for (bytes).
pub const MAX_MMAP_BYTES: usize = 1 << 20;
/// Largest BO a program creates (bytes): GEM_CREATE `bo_size` and KFD ALLOC `size` are
/// reduced modulo this before the call. The emulator backs every BO byte with host memory
/// up to its own per-BO cap (4 GiB, as the kernel backs it with VRAM), so without this a
/// program of a few large BOs exceeds the fuzzer's 1 GiB RSS limit; the emulator's size
/// checks themselves are covered by its own tests.
pub const MAX_BO_BYTES: u64 = 1 << 20;

/// The operation codes of a program (the byte before each operation, modulo their count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// `u8` node (0: the first render node, 1: the KFD node, 2: a missing node).
    Open = 0,
    /// `u8` descriptor index.
    Close = 1,
    /// See [`Ioctl`].
    Ioctl = 2,
    /// `u8` fd index, `u8` offset source (even: pool index `u8`, odd: raw `u64`), `u8` pages
    /// - 1, `u8` placement (odd: at the last reservation).
    Mmap = 3,
    /// `u8` mapping index, `u8` access (0 write, 1 read, 2 store_u64, 3 load_u64), `u32`
    /// offset, then for a write `u8` length and the bytes, for a store a `u64`.
    Access = 4,
    /// `u8` mapping index to drop.
    Unmap = 5,
    /// `u8` 0: reserve (`u8` pages - 1, `u8` log2 of the alignment in pages), else release the
    /// reservation at index `u8`.
    Reserve = 6,
}

const OPS: usize = 7;

/// One ioctl of a program, as encoded.
#[derive(Debug, Clone, Default)]
pub struct Ioctl {
    /// Descriptor index (into the open descriptors, modulo their count).
    pub fd: u8,
    /// `Some(i)`: entry `i` of the DRM then KFD tables; `None`: `raw_request`.
    pub table_index: Option<u8>,
    /// Request number used when `table_index` is `None`.
    pub raw_request: u32,
    /// `Some(n)`: an `n`-byte argument (n < 128) instead of `_IOC_SIZE(request)`.
    pub arg_len: Option<u8>,
    /// Argument bytes (zero-extended to the argument length).
    pub arg: Vec<u8>,
    /// User buffers: (length, initial bytes).
    pub buffers: Vec<(u16, Vec<u8>)>,
    /// Patches applied after the buffers exist.
    pub patches: Vec<Patch>,
}

/// A value stored into the argument (target 0) or a buffer (target `b + 1`) at `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Patch {
    /// 0: the argument; `b + 1`: buffer `b`.
    pub target: u8,
    /// Byte offset (clamped so the value fits).
    pub offset: u16,
    /// What is stored.
    pub value: PatchValue,
}

/// What a [`Patch`] stores.
#[derive(Debug, Clone, Copy)]
pub enum PatchValue {
    /// `u64`: the user address of `offset` bytes into buffer `buffer`.
    UserPtr {
        /// Buffer index.
        buffer: u8,
        /// Offset into it.
        offset: u16,
    },
    /// `u32`: pool value `index`.
    Pool32(u16),
    /// `u64`: pool values `index` (low) and `index + 1` (high).
    Pool64(u16),
    /// `u32`: the number of open descriptor `index`.
    Fd(u8),
    /// `u64`: CLOCK_MONOTONIC now plus this many milliseconds, in ns.
    DeadlineMs(u16),
}

/// Every request number of the tables a program can name by index.
fn table_requests() -> impl Iterator<Item = u32> {
    DRM_IOCTLS.iter().chain(KFD_IOCTLS.iter()).map(|d| d.request)
}

fn table_request(i: u8) -> u32 {
    let n = table_requests().count();
    table_requests().nth(usize::from(i) % n).unwrap_or(0)
}

/// Index of `request` in the DRM-then-KFD tables (for building seeds).
pub fn table_index(request: u32) -> Option<u8> {
    table_requests().position(|r| r == request).and_then(|i| u8::try_from(i).ok())
}

/// Counts of what a program did (for tests that check seeds reach deep states).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations run.
    pub ops: usize,
    /// Ioctls that succeeded.
    pub ioctls_ok: usize,
    /// Ioctls that failed (any errno).
    pub ioctls_failed: usize,
    /// Successful mmaps.
    pub mmaps: usize,
}

/// Runs the target on one input; panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let _ = run_program(data);
}

/// Runs one program and returns what it did.
///
/// # Panics
/// When the device keeps live objects after everything was closed.
pub fn run_program(data: &[u8]) -> Stats {
    let mut inp = Input::new(data);
    let mut preset = match inp.choose(3) {
        0 => Preset::r9700_gfx1201(),
        1 => Preset::rx7900xtx_gfx1100(),
        _ => {
            // amdgpu.user_queue=1 with compute user queues (AMDGPU_HW_IP_COMPUTE = 1), on a
            // kernel that also answers UQ_FW_AREAS for compute, so the seed programs reach that query.
            Preset {
                user_queue: 1,
                userq_ip_mask: 1 << 1,
                userq_compute_slots: 8,
                uq_fw_areas_compute: true,
                ..Preset::rx7900xtx_gfx1100()
            }
        }
    };
    preset.wait_cap = WAIT_CAP;
    let node = preset.render_nodes.first().cloned().unwrap_or_default();
    let Ok(dev) = EmulatedDevice::new(preset) else { return Stats::default() };
    let mut st = State { dev: &dev, node, fds: Vec::new(), maps: Vec::new(), res: Vec::new() };
    let mut stats = Stats::default();
    let mut pool: Vec<u32> = Vec::new();
    while !inp.is_empty() && stats.ops < MAX_OPS {
        stats.ops += 1;
        st.step(&mut inp, &mut pool, &mut stats);
    }
    st.maps.clear();
    for (addr, len) in std::mem::take(&mut st.res) {
        let _ = dev.release_va(addr, len);
    }
    for fd in std::mem::take(&mut st.fds) {
        let _ = dev.close(fd);
    }
    let live = dev.live_handles();
    assert!(live.is_zero(), "live objects after every descriptor was closed: {live:?}");
    stats
}

struct State<'d> {
    dev: &'d EmulatedDevice,
    node: String,
    fds: Vec<Fd>,
    maps: Vec<Box<dyn Mapping>>,
    res: Vec<(u64, usize)>,
}

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
}

impl State<'_> {
    fn fd(&self, i: u8) -> Fd {
        pick(&self.fds, i).unwrap_or(Fd(i32::from(i)))
    }

    fn step(&mut self, inp: &mut Input<'_>, pool: &mut Vec<u32>, stats: &mut Stats) {
        match inp.choose(OPS) {
            0 => {
                let path = match inp.choose(3) {
                    0 => self.node.clone(),
                    1 => KFD_PATH.to_string(),
                    _ => "/dev/dri/renderD200".to_string(),
                };
                if let Ok(fd) = self.dev.open(&path) {
                    self.fds.push(fd);
                }
            }
            1 => {
                let i = inp.u8();
                let fd = self.fd(i);
                if self.dev.close(fd).is_ok() {
                    self.fds.retain(|&f| f != fd);
                }
            }
            2 => {
                let io = read_ioctl(inp);
                match self.ioctl(&io, pool) {
                    Ok(()) => stats.ioctls_ok += 1,
                    Err(()) => stats.ioctls_failed += 1,
                }
            }
            3 => {
                let fd = self.fd(inp.u8());
                let offset =
                    if inp.u8() & 1 == 0 { pool64(pool, inp.u8().into()) } else { inp.u64() };
                let len = ((usize::from(inp.u8()) + 1) * 4096).min(MAX_MMAP_BYTES);
                let at = match (inp.u8() & 1, self.res.last()) {
                    (1, Some(&(addr, _))) => MapAt::Fixed(addr),
                    _ => MapAt::Anywhere,
                };
                if let Ok(m) = self.dev.mmap(fd, offset, len, at) {
                    stats.mmaps += 1;
                    self.maps.push(m);
                }
            }
            4 => {
                let i = usize::from(inp.u8());
                let access = inp.u8() % 4;
                let off = inp.u32() as usize;
                let m = if self.maps.is_empty() { None } else { Some(i % self.maps.len()) };
                match access {
                    0 => {
                        let n = usize::from(inp.u8());
                        let bytes = inp.bytes(n);
                        if let Some(m) = m {
                            let _ = self.maps[m].write(off, bytes);
                        }
                    }
                    1 => {
                        let mut buf = [0u8; 64];
                        if let Some(m) = m {
                            let _ = self.maps[m].read(off, &mut buf);
                        }
                    }
                    2 => {
                        let v = inp.u64();
                        if let Some(m) = m {
                            let _ = self.maps[m].store_u64(off, v);
                        }
                    }
                    _ => {
                        if let Some(m) = m {
                            let _ = self.maps[m].load_u64(off);
                        }
                    }
                }
            }
            5 => {
                let i = usize::from(inp.u8());
                if !self.maps.is_empty() {
                    let n = self.maps.len();
                    drop(self.maps.remove(i % n));
                }
            }
            _ => {
                if inp.u8() == 0 {
                    let len = (usize::from(inp.u8()) + 1) * 4096;
                    let align = 4096usize << (inp.u8() % 10);
                    if let Ok(addr) = self.dev.reserve_va(len, align) {
                        self.res.push((addr, len));
                    }
                } else {
                    let i = usize::from(inp.u8());
                    if !self.res.is_empty() {
                        let n = self.res.len();
                        let (addr, len) = self.res[i % n];
                        if self.dev.release_va(addr, len).is_ok() {
                            self.res.remove(i % n);
                        }
                    }
                }
            }
        }
    }

    fn ioctl(&mut self, io: &Ioctl, pool: &mut Vec<u32>) -> Result<(), ()> {
        let fd = self.fd(io.fd);
        let request = io.table_index.map_or(io.raw_request, table_request);
        let len = io.arg_len.map_or(ioc_size(request), usize::from);
        let mut arg = vec![0u8; len];
        let n = io.arg.len().min(len);
        arg[..n].copy_from_slice(&io.arg[..n]);
        let mut bufs: Vec<Vec<u8>> = io
            .buffers
            .iter()
            .map(|(l, init)| {
                let mut b = vec![0u8; usize::from(*l).min(MAX_BUFFER_BYTES)];
                let n = init.len().min(b.len());
                b[..n].copy_from_slice(&init[..n]);
                b
            })
            .collect();
        let addrs: Vec<(u64, usize)> = bufs.iter().map(|b| (user_ptr(b), b.len())).collect();
        for p in &io.patches {
            let value: Vec<u8> = match p.value {
                PatchValue::UserPtr { buffer, offset } => {
                    let (base, blen) = pick(&addrs, buffer).unwrap_or((0, 0));
                    let off = u64::from(offset) % (blen as u64 + 1);
                    base.wrapping_add(off).to_le_bytes().to_vec()
                }
                PatchValue::Pool32(i) => pool32(pool, i.into()).to_le_bytes().to_vec(),
                PatchValue::Pool64(i) => pool64(pool, i.into()).to_le_bytes().to_vec(),
                PatchValue::Fd(i) => (self.fd(i).0 as u32).to_le_bytes().to_vec(),
                PatchValue::DeadlineMs(ms) => {
                    let t = monotonic_ns().saturating_add(u64::from(ms) * 1_000_000);
                    t.to_le_bytes().to_vec()
                }
            };
            let target: &mut Vec<u8> = match p.target {
                0 => &mut arg,
                t => {
                    if bufs.is_empty() {
                        continue;
                    }
                    let n = bufs.len();
                    &mut bufs[usize::from(t - 1) % n]
                }
            };
            if target.len() >= value.len() {
                let at = usize::from(p.offset) % (target.len() - value.len() + 1);
                target[at..at + value.len()].copy_from_slice(&value);
            }
        }
        limit_bo_size(request, &mut arg);
        let mut user: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let r = self.dev.ioctl(fd, request, &mut arg, &mut user);
        if r.is_ok() {
            for c in arg.chunks_exact(4) {
                if pool.len() < MAX_POOL {
                    pool.push(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                }
            }
        }
        if std::env::var_os("PM4RT_FUZZ_TRACE").is_some() {
            eprintln!("ioctl {request:#x}: {r:?} {:?}", self.dev.last_error());
        }
        r.map_err(|_| ())
    }
}

/// CLOCK_MONOTONIC in ns: the clock of WAIT_CS's absolute timeout (`amdgpu_gem_timeout`
/// compares it with `ktime_get`).
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// Applies [`MAX_BO_BYTES`] to the size field of GEM_CREATE (`bo_size`, offset 0) and KFD
/// ALLOC_MEMORY_OF_GPU (`size`, offset 8), whatever the request's size bits say.
fn limit_bo_size(request: u32, arg: &mut [u8]) {
    let (ty, nr) = (ioc_type(request), ioc_nr(request));
    let at = if ty == DRM_IOCTL_BASE && nr == DRM_COMMAND_BASE + DRM_AMDGPU_GEM_CREATE {
        0
    } else if ty == AMDKFD_IOCTL_BASE && nr == ioc_nr(AMDKFD_IOC_ALLOC_MEMORY_OF_GPU) {
        8
    } else {
        return;
    };
    if let Some(field) = arg.get_mut(at..at + 8) {
        let size = u64::from_le_bytes(field.try_into().unwrap_or([0; 8]));
        let limited = if size > MAX_BO_BYTES { size % MAX_BO_BYTES } else { size };
        field.copy_from_slice(&limited.to_le_bytes());
    }
}

fn pool32(pool: &[u32], i: usize) -> u32 {
    if pool.is_empty() {
        0
    } else {
        pool[i % pool.len()]
    }
}

fn pool64(pool: &[u32], i: usize) -> u64 {
    if pool.is_empty() {
        return 0;
    }
    let lo = pool[i % pool.len()];
    let hi = pool.get(i % pool.len() + 1).copied().unwrap_or(0);
    u64::from(lo) | (u64::from(hi) << 32)
}

fn read_ioctl(inp: &mut Input<'_>) -> Ioctl {
    let fd = inp.u8();
    let sel = inp.u8();
    let (table_index, raw_request) = if sel == 0xFF { (None, inp.u32()) } else { (Some(sel), 0) };
    let m = inp.u8();
    let arg_len = (m & 0x80 != 0).then_some(m & 0x7F);
    let arg_bytes = usize::from(inp.u8());
    let arg = inp.bytes(arg_bytes).to_vec();
    let nbuf = inp.choose(MAX_BUFFERS + 1);
    let buffers = (0..nbuf)
        .map(|_| {
            let len = inp.u16() % (MAX_BUFFER_BYTES as u16 + 1);
            let init = usize::from(inp.u16());
            (len, inp.bytes(init.min(usize::from(len))).to_vec())
        })
        .collect();
    let npatch = inp.choose(MAX_PATCHES + 1);
    let patches = (0..npatch)
        .map(|_| {
            let target = inp.u8();
            let offset = inp.u16();
            let value = match inp.choose(5) {
                0 => PatchValue::UserPtr { buffer: inp.u8(), offset: inp.u16() },
                1 => PatchValue::Pool32(inp.u16()),
                2 => PatchValue::Pool64(inp.u16()),
                3 => PatchValue::Fd(inp.u8()),
                _ => PatchValue::DeadlineMs(inp.u16()),
            };
            Patch { target, offset, value }
        })
        .collect();
    Ioctl { fd, table_index, raw_request, arg_len, arg, buffers, patches }
}

/// Builds programs for this target (seed corpus, tests), mirroring what [`run_program`]
/// reads.
#[derive(Debug, Clone, Default)]
pub struct ProgramBuilder {
    out: Output,
    pool_len: usize,
}

impl ProgramBuilder {
    /// A program for device `preset` (0: gfx1201, 1: gfx1100, 2: gfx1100 with user queues).
    pub fn new(preset: u8) -> Self {
        let mut b = ProgramBuilder::default();
        b.out.u8(preset);
        b
    }

    /// Appends an [`Op::Open`] of `node`.
    pub fn open(&mut self, node: u8) -> &mut Self {
        self.out.u8(Op::Open as u8).u8(node);
        self
    }

    /// Appends an [`Op::Close`].
    pub fn close(&mut self, fd: u8) -> &mut Self {
        self.out.u8(Op::Close as u8).u8(fd);
        self
    }

    /// Appends an [`Op::Ioctl`] of a table request; returns the pool index of its first
    /// argument dword (valid if it succeeds; success is assumed for later indices).
    pub fn ioctl(&mut self, request: u32, io: Ioctl) -> usize {
        let index = table_index(request).expect("request in pm4rt's tables");
        let first = self.pool_len;
        let o = &mut self.out;
        o.u8(Op::Ioctl as u8).u8(io.fd).u8(index).u8(0);
        o.u8(io.arg.len() as u8).raw(&io.arg);
        o.u8(io.buffers.len() as u8);
        for (len, init) in &io.buffers {
            o.u16(*len).u16(init.len() as u16).raw(init);
        }
        o.u8(io.patches.len() as u8);
        for p in &io.patches {
            o.u8(p.target).u16(p.offset);
            match p.value {
                PatchValue::UserPtr { buffer, offset } => o.u8(0).u8(buffer).u16(offset),
                PatchValue::Pool32(i) => o.u8(1).u16(i),
                PatchValue::Pool64(i) => o.u8(2).u16(i),
                PatchValue::Fd(i) => o.u8(3).u8(i),
                PatchValue::DeadlineMs(ms) => o.u8(4).u16(ms),
            };
        }
        self.pool_len += ioc_size(request) / 4;
        first
    }

    /// Appends an [`Op::Mmap`] at the offset held in pool values `pool_index` (low, high).
    pub fn mmap(&mut self, fd: u8, pool_index: u8, pages: u8) -> &mut Self {
        self.out.u8(Op::Mmap as u8).u8(fd).u8(0).u8(pool_index).u8(pages - 1).u8(0);
        self
    }

    /// Appends an [`Op::Access`] writing `bytes` (at most 255) at `offset` of mapping `map`.
    pub fn write(&mut self, map: u8, offset: u32, bytes: &[u8]) -> &mut Self {
        self.out.u8(Op::Access as u8).u8(map).u8(0).u32(offset).u8(bytes.len() as u8).raw(bytes);
        self
    }

    /// Appends an [`Op::Unmap`].
    pub fn unmap(&mut self, map: u8) -> &mut Self {
        self.out.u8(Op::Unmap as u8).u8(map);
        self
    }

    /// The program bytes.
    pub fn finish(&self) -> Vec<u8> {
        self.out.bytes.clone()
    }
}
