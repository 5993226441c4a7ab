//! The cs tier against a mockall mock of `Driver` (exact open / drop sequences) and against a
//! counting fake amdgpu (every ioctl decoded from its bytes, nested user pointers resolved the
//! way the kernel's copy_from_user would see them, live handles counted, failures injected).
//!
//! Request numbers and flag values below are literals computed from include/uapi/drm/amdgpu_drm.h
//! (`DRM_IOWR(DRM_COMMAND_BASE + nr, struct)`), not the constants of the code under test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockall::{mock, predicate, Sequence};
use pm4rt_backends::cs::{CsConfig, CsSubmitter};
use pm4rt_core::abi::drm::{
    BoListEntry, BoListIn, CsChunk, CsChunkIb, CsIn, CsOut, CtxIn, CtxOutAlloc, CtxOutState,
    GemClose, GemCreateIn, GemCreateOut, GemMmapIn, GemMmapOut, GemVa, Info, InfoDevice, InfoHwIp,
    WaitCsIn, WaitCsOut,
};
use pm4rt_core::abi::ioctl::{decode_arg, decode_array, write_arg};
use pm4rt_core::driver::user_ptr;
use pm4rt_core::HostMapping;
use pm4rt_core::{
    BoDesc, BoHandle, Domain, Driver, Errno, Error, Fd, Fence, GfxTarget, MapAt, Mapping,
    Submitter, Tier,
};

// Golden request numbers (include/uapi/drm/amdgpu_drm.h, drm.h).
const GEM_CREATE: u32 = 0xC020_6440;
const GEM_MMAP: u32 = 0xC008_6441;
const CTX: u32 = 0xC010_6442;
const CS: u32 = 0xC018_6444;
const INFO: u32 = 0x4020_6445;
const GEM_VA: u32 = 0x4040_6448;
const WAIT_CS: u32 = 0xC020_6449;
const GEM_CLOSE: u32 = 0x4008_6409;

// Golden constants (amdgpu_drm.h).
const INFO_HW_IP_INFO: u32 = 0x02;
const INFO_DEV_INFO: u32 = 0x16;
const HW_IP_COMPUTE: u32 = 1;
const CTX_OP_ALLOC: u32 = 1;
const CTX_OP_FREE: u32 = 2;
const CTX_OP_QUERY_STATE2: u32 = 4;
const VA_OP_MAP: u32 = 1;
const VA_OP_UNMAP: u32 = 2;
const PAGE_R: u32 = 1 << 1;
const PAGE_W: u32 = 1 << 2;
const PAGE_X: u32 = 1 << 3;
const CHUNK_IB: u32 = 1;
const CHUNK_BO_HANDLES: u32 = 6;
const IB_FLAG_EMIT_MEM_SYNC: u32 = 1 << 6;
const DOMAIN_GTT: u64 = 2;
const DOMAIN_VRAM: u64 = 4;
const CREATE_CPU_ACCESS_REQUIRED: u64 = 1;
const CREATE_NO_CPU_ACCESS: u64 = 2;
const CREATE_UNCACHED: u64 = 1 << 14;
const QUERY2_RESET: u64 = 1;
const QUERY2_VRAMLOST: u64 = 2;
const QUERY2_GUILTY: u64 = 4;

// The machine the fake answers as: gfx1201 (GC 12.0.1), VA 2 MiB .. 128 TiB.
const GC_12_0_1: u32 = 0x0C_00_01;
const VA_START: u64 = 0x20_0000;
const VA_MAX: u64 = 0x8000_0000_0000;
const FIXED_NOW_NS: u64 = 1_000_000_000_000;

fn fixed_clock() -> u64 {
    FIXED_NOW_NS
}

fn config() -> CsConfig {
    CsConfig { clock: fixed_clock, ..CsConfig::with_path("/dev/dri/renderD128") }
}

fn hw_ip(rings: u32, gc: u32) -> InfoHwIp {
    InfoHwIp {
        hw_ip_version_major: 12,
        ib_start_alignment: 32,
        ib_size_alignment: 32,
        available_rings: rings,
        ip_discovery_version: gc,
        ..Default::default()
    }
}

fn dev_info() -> InfoDevice {
    InfoDevice {
        device_id: 0x7551,
        family: 152,
        virtual_address_offset: VA_START,
        virtual_address_max: VA_MAX,
        virtual_address_alignment: 4096,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The counting fake.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Open(String),
    Close,
    Mmap {
        offset: u64,
        len: usize,
    },
    /// An ioctl: request number and a detail (INFO query id, CTX op, GEM / VA handle, ...).
    Ioctl(u32, u64),
}

#[derive(Debug, Clone, Default)]
struct LastCs {
    ib: CsChunkIb,
    bo_handles: Vec<u32>,
    num_chunks: u32,
}

#[derive(Default)]
struct FakeState {
    events: Vec<Ev>,
    fds: BTreeSet<i32>,
    ctxs: BTreeSet<u32>,
    next_ctx: u32,
    gems: BTreeMap<u32, GemCreateIn>,
    next_gem: u32,
    /// (handle, va) -> (size, flags)
    vas: BTreeMap<(u32, u64), (u64, u32)>,
    next_cs_handle: u64,
    last_cs: Option<LastCs>,
    last_wait: Option<WaitCsIn>,
    /// (request, nth call of that request counting from 1, errno)
    fail: Option<(u32, usize, i32)>,
    calls: BTreeMap<u32, usize>,
    fail_open: Option<i32>,
    fail_mmap: Option<i32>,
    hw_ip: InfoHwIp,
    dev_info: InfoDevice,
    wait_busy: bool,
    wait_errno: Option<i32>,
    cs_errno: Option<i32>,
    ctx_flags: u64,
}

struct FakeAmdgpu {
    s: Mutex<FakeState>,
    live_maps: Arc<AtomicUsize>,
}

/// Find the user slice holding `[addr, addr + len)`; like copy_from_user, EFAULT otherwise.
fn resolve<'a>(user: &'a [&mut [u8]], addr: u64, len: usize) -> Result<&'a [u8], Errno> {
    for s in user {
        let base = user_ptr(s);
        if addr >= base && addr - base + len as u64 <= s.len() as u64 {
            let off = (addr - base) as usize;
            return Ok(&s[off..off + len]);
        }
    }
    Err(Errno::EFAULT)
}

fn resolve_mut<'a>(
    user: &'a mut [&mut [u8]],
    addr: u64,
    len: usize,
) -> Result<&'a mut [u8], Errno> {
    for s in user.iter_mut() {
        let base = user_ptr(s);
        if addr >= base && addr - base + len as u64 <= s.len() as u64 {
            let off = (addr - base) as usize;
            return Ok(&mut s[off..off + len]);
        }
    }
    Err(Errno::EFAULT)
}

fn dec<T: bytemuck::Pod>(b: &[u8]) -> Result<T, Errno> {
    decode_arg(b).map_err(|_| Errno::EINVAL)
}

impl FakeAmdgpu {
    fn new() -> Arc<FakeAmdgpu> {
        let s = FakeState {
            next_ctx: 5,
            next_gem: 1,
            next_cs_handle: 1000,
            hw_ip: hw_ip(0b1111, GC_12_0_1),
            dev_info: dev_info(),
            ..Default::default()
        };
        Arc::new(FakeAmdgpu { s: Mutex::new(s), live_maps: Arc::new(AtomicUsize::new(0)) })
    }

    fn with(f: impl FnOnce(&mut FakeState)) -> Arc<FakeAmdgpu> {
        let d = FakeAmdgpu::new();
        f(&mut d.s.lock().unwrap());
        d
    }

    fn st(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.s.lock().unwrap()
    }

    /// Every kernel object and mapping still alive.
    fn live(&self) -> usize {
        let s = self.st();
        s.fds.len()
            + s.ctxs.len()
            + s.gems.len()
            + s.vas.len()
            + self.live_maps.load(Ordering::SeqCst)
    }

    fn events(&self) -> Vec<Ev> {
        self.st().events.clone()
    }

    fn clear_events(&self) {
        self.st().events.clear();
    }

    fn handle_ioctl(
        s: &mut FakeState,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<u64, Errno> {
        match request {
            INFO => {
                let info: Info = dec(arg)?;
                let answer: Vec<u8> = match info.query {
                    INFO_HW_IP_INFO => {
                        if info.query_hw_ip().ip_type != HW_IP_COMPUTE {
                            return Err(Errno::EINVAL);
                        }
                        bytemuck::bytes_of(&s.hw_ip).to_vec()
                    }
                    INFO_DEV_INFO => bytemuck::bytes_of(&s.dev_info).to_vec(),
                    _ => return Err(Errno::EINVAL),
                };
                let n = (info.return_size as usize).min(answer.len());
                let out = resolve_mut(user, info.return_pointer, n)?;
                out.copy_from_slice(&answer[..n]);
                Ok(u64::from(info.query))
            }
            CTX => {
                let c: CtxIn = dec(arg)?;
                match c.op {
                    CTX_OP_ALLOC => {
                        let id = s.next_ctx;
                        s.next_ctx += 1;
                        s.ctxs.insert(id);
                        write_arg(arg, &CtxOutAlloc { ctx_id: id, pad: 0 }).unwrap();
                    }
                    CTX_OP_FREE => {
                        if !s.ctxs.remove(&c.ctx_id) {
                            return Err(Errno::EINVAL);
                        }
                    }
                    CTX_OP_QUERY_STATE2 => {
                        if !s.ctxs.contains(&c.ctx_id) {
                            return Err(Errno::EINVAL);
                        }
                        let st = CtxOutState { flags: s.ctx_flags, hangs: 1, reset_status: 0 };
                        write_arg(arg, &st).unwrap();
                    }
                    _ => return Err(Errno::EINVAL),
                }
                Ok(u64::from(c.op))
            }
            GEM_CREATE => {
                let c: GemCreateIn = dec(arg)?;
                if c.bo_size == 0 {
                    return Err(Errno::EINVAL);
                }
                let h = s.next_gem;
                s.next_gem += 1;
                s.gems.insert(h, c);
                write_arg(arg, &GemCreateOut { handle: h, pad: 0 }).unwrap();
                Ok(u64::from(h))
            }
            GEM_MMAP => {
                let m: GemMmapIn = dec(arg)?;
                if !s.gems.contains_key(&m.handle) {
                    return Err(Errno::ENOENT);
                }
                write_arg(arg, &GemMmapOut { addr_ptr: u64::from(m.handle) << 32 }).unwrap();
                Ok(u64::from(m.handle))
            }
            GEM_VA => {
                let v: GemVa = dec(arg)?;
                let Some(gem) = s.gems.get(&v.handle) else { return Err(Errno::ENOENT) };
                match v.operation {
                    VA_OP_MAP => {
                        let end = v.va_address.checked_add(v.map_size).ok_or(Errno::EINVAL)?;
                        if v.va_address < s.dev_info.virtual_address_offset
                            || end > s.dev_info.virtual_address_max
                            || !v.va_address.is_multiple_of(4096)
                            || v.map_size > gem.bo_size
                            || v.flags & !(PAGE_R | PAGE_W | PAGE_X) != 0
                            || s.vas
                                .iter()
                                .any(|(&(_, va), &(sz, _))| va < end && v.va_address < va + sz)
                        {
                            return Err(Errno::EINVAL);
                        }
                        s.vas.insert((v.handle, v.va_address), (v.map_size, v.flags));
                    }
                    VA_OP_UNMAP => {
                        if s.vas.remove(&(v.handle, v.va_address)).is_none() {
                            return Err(Errno::ENOENT);
                        }
                    }
                    _ => return Err(Errno::EINVAL),
                }
                Ok(u64::from(v.handle))
            }
            GEM_CLOSE => {
                let c: GemClose = dec(arg)?;
                if s.gems.remove(&c.handle).is_none() {
                    return Err(Errno::EINVAL);
                }
                // The kernel drops the BO's VA mappings with its last handle.
                s.vas.retain(|&(h, _), _| h != c.handle);
                Ok(u64::from(c.handle))
            }
            CS => {
                let c: CsIn = dec(arg)?;
                if !s.ctxs.contains(&c.ctx_id) {
                    return Err(Errno::EINVAL);
                }
                if let Some(e) = s.cs_errno {
                    return Err(Errno(e));
                }
                let ptrs: Vec<u64> = decode_array(
                    resolve(user, c.chunks, 8 * c.num_chunks as usize)?,
                    c.num_chunks as usize,
                )
                .map_err(|_| Errno::EFAULT)?;
                let mut last = LastCs { num_chunks: c.num_chunks, ..Default::default() };
                let mut ibs = 0;
                for p in ptrs {
                    let chunk: CsChunk = dec(resolve(user, p, 16)?)?;
                    let data = resolve(user, chunk.chunk_data, 4 * chunk.length_dw as usize)?;
                    match chunk.chunk_id {
                        CHUNK_IB => {
                            last.ib = dec(data)?;
                            ibs += 1;
                        }
                        CHUNK_BO_HANDLES => {
                            let l: BoListIn = dec(data)?;
                            if l.bo_info_size != 8 {
                                return Err(Errno::EINVAL);
                            }
                            let entries: Vec<BoListEntry> = decode_array(
                                resolve(user, l.bo_info_ptr, 8 * l.bo_number as usize)?,
                                l.bo_number as usize,
                            )
                            .map_err(|_| Errno::EFAULT)?;
                            for e in &entries {
                                if !s.gems.contains_key(&e.bo_handle) {
                                    return Err(Errno::ENOENT);
                                }
                            }
                            last.bo_handles = entries.iter().map(|e| e.bo_handle).collect();
                        }
                        _ => return Err(Errno::EINVAL),
                    }
                }
                if ibs == 0 {
                    return Err(Errno::EINVAL);
                }
                s.last_cs = Some(last);
                let h = s.next_cs_handle;
                s.next_cs_handle += 1;
                write_arg(arg, &CsOut { handle: h }).unwrap();
                Ok(h)
            }
            WAIT_CS => {
                let w: WaitCsIn = dec(arg)?;
                if !s.ctxs.contains(&w.ctx_id) || w.handle >= s.next_cs_handle {
                    return Err(Errno::EINVAL);
                }
                s.last_wait = Some(w);
                if let Some(e) = s.wait_errno {
                    return Err(Errno(e));
                }
                write_arg(arg, &WaitCsOut { status: u64::from(s.wait_busy) }).unwrap();
                Ok(w.handle)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}

impl Driver for FakeAmdgpu {
    fn open(&self, path: &str) -> Result<Fd, Errno> {
        let mut s = self.st();
        s.events.push(Ev::Open(path.to_string()));
        if let Some(e) = s.fail_open {
            return Err(Errno(e));
        }
        let fd = 3 + s.fds.len() as i32;
        s.fds.insert(fd);
        Ok(Fd(fd))
    }
    fn close(&self, fd: Fd) -> Result<(), Errno> {
        let mut s = self.st();
        s.events.push(Ev::Close);
        if s.fds.remove(&fd.0) {
            Ok(())
        } else {
            Err(Errno::EBADF)
        }
    }
    fn ioctl(
        &self,
        fd: Fd,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<(), Errno> {
        let mut s = self.st();
        if !s.fds.contains(&fd.0) {
            return Err(Errno::EBADF);
        }
        let n = {
            let c = s.calls.entry(request).or_insert(0);
            *c += 1;
            *c
        };
        if let Some((r, nth, e)) = s.fail {
            if r == request && nth == n {
                // Log the detail the call would have had: decode what identifies it.
                s.events.push(Ev::Ioctl(request, u64::MAX));
                return Err(Errno(e));
            }
        }
        let r = Self::handle_ioctl(&mut s, request, arg, user);
        let detail = *r.as_ref().unwrap_or(&u64::MAX);
        s.events.push(Ev::Ioctl(request, detail));
        r.map(|_| ())
    }
    fn mmap(&self, fd: Fd, offset: u64, len: usize, at: MapAt) -> Result<Box<dyn Mapping>, Errno> {
        let mut s = self.st();
        s.events.push(Ev::Mmap { offset, len });
        if let Some(e) = s.fail_mmap {
            return Err(Errno(e));
        }
        if !s.fds.contains(&fd.0) || at != MapAt::Anywhere {
            return Err(Errno::EINVAL);
        }
        let handle = (offset >> 32) as u32;
        let size = s.gems.get(&handle).ok_or(Errno::EINVAL)?.bo_size;
        if len as u64 > size || offset & 0xFFFF_FFFF != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(Box::new(HostMapping::new(len, offset).counted(self.live_maps.clone())))
    }
    fn reserve_va(&self, _len: usize, _align: usize) -> Result<u64, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    fn release_va(&self, _addr: u64, _len: usize) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    fn read_file(&self, _path: &str) -> Result<String, Errno> {
        Err(Errno::ENOENT)
    }
    fn list_dir(&self, _path: &str) -> Result<Vec<String>, Errno> {
        Err(Errno::ENOENT)
    }
    fn kernel_release(&self) -> Result<String, Errno> {
        Ok("6.17.0".into())
    }
}

fn open(fake: &Arc<FakeAmdgpu>) -> CsSubmitter {
    CsSubmitter::open(fake.clone(), config()).expect("open")
}

fn ioctls(s: &CsSubmitter) -> u64 {
    s.info().counters.ioctls
}

/// A GTT BO holding `dwords` PM4 NOPs-worth of data, mapped; returns (bo, va).
fn ib_bo(s: &mut CsSubmitter) -> (BoHandle, u64) {
    let bo = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let va = s.map_va(bo, None).unwrap();
    (bo, va)
}

// ---------------------------------------------------------------------------------------------
// mockall: exact open and drop sequences.
// ---------------------------------------------------------------------------------------------

mock! {
    pub Drv {}
    impl Driver for Drv {
        fn open(&self, path: &str) -> Result<Fd, Errno>;
        fn close(&self, fd: Fd) -> Result<(), Errno>;
        fn ioctl<'a, 'b>(&self, fd: Fd, request: u32, arg: &mut [u8], user: &'a mut [&'b mut [u8]]) -> Result<(), Errno>;
        fn mmap(&self, fd: Fd, offset: u64, len: usize, at: MapAt) -> Result<Box<dyn Mapping>, Errno>;
        fn reserve_va(&self, len: usize, align: usize) -> Result<u64, Errno>;
        fn release_va(&self, addr: u64, len: usize) -> Result<(), Errno>;
        fn read_file(&self, path: &str) -> Result<String, Errno>;
        fn list_dir(&self, path: &str) -> Result<Vec<String>, Errno>;
        fn kernel_release(&self) -> Result<String, Errno>;
    }
}

fn answer_info(arg: &[u8], user: &mut [&mut [u8]], answer: &[u8]) {
    let info: Info = decode_arg(arg).unwrap();
    let n = (info.return_size as usize).min(answer.len());
    resolve_mut(user, info.return_pointer, n).unwrap().copy_from_slice(&answer[..n]);
}

#[test]
fn mock_open_and_drop_issue_exactly_the_expected_calls() {
    let mut d = MockDrv::new();
    let mut seq = Sequence::new();
    d.expect_open()
        .with(predicate::eq("/dev/dri/renderD128"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(Fd(7)));
    d.expect_ioctl()
        .withf(|fd, req, arg, _| {
            *fd == Fd(7)
                && *req == INFO
                && decode_arg::<Info>(arg).is_ok_and(|i| {
                    i.query == INFO_HW_IP_INFO && i.data[0] == HW_IP_COMPUTE && i.return_size >= 32
                })
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, arg, user| {
            answer_info(arg, user, bytemuck::bytes_of(&hw_ip(1, GC_12_0_1)));
            Ok(())
        });
    d.expect_ioctl()
        .withf(|_, req, arg, _| {
            *req == INFO
                && decode_arg::<Info>(arg)
                    .is_ok_and(|i| i.query == INFO_DEV_INFO && i.return_size == 448)
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, arg, user| {
            answer_info(arg, user, bytemuck::bytes_of(&dev_info()));
            Ok(())
        });
    d.expect_ioctl()
        .withf(|_, req, arg, user| {
            *req == CTX
                && user.is_empty()
                && decode_arg::<CtxIn>(arg).is_ok_and(|c| c.op == CTX_OP_ALLOC && c.priority == 0)
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, arg, _| {
            write_arg(arg, &CtxOutAlloc { ctx_id: 9, pad: 0 }).unwrap();
            Ok(())
        });
    d.expect_ioctl()
        .withf(|fd, req, arg, _| {
            *fd == Fd(7)
                && *req == CTX
                && decode_arg::<CtxIn>(arg).is_ok_and(|c| c.op == CTX_OP_FREE && c.ctx_id == 9)
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _, _| Ok(()));
    d.expect_close()
        .with(predicate::eq(Fd(7)))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));

    let s = CsSubmitter::open(Arc::new(d), config()).unwrap();
    let info = s.info();
    assert_eq!(info.tier, Tier::Cs);
    assert_eq!(info.gfx, GfxTarget::Gfx1201);
    assert_eq!(info.va_range, VA_START..VA_MAX);
    assert!(!info.emulated);
    assert!(info.device.contains("/dev/dri/renderD128"), "{}", info.device);
    assert_eq!(info.counters.ioctls, 3);
    assert_eq!(info.counters.submissions, 0);
    assert_eq!(s.ctx_id(), 9);
    drop(s); // CTX FREE, close: checked by the mock's expectations
}

#[test]
fn mock_ctx_alloc_failure_closes_the_node() {
    let mut d = MockDrv::new();
    let mut seq = Sequence::new();
    d.expect_open().times(1).in_sequence(&mut seq).returning(|_| Ok(Fd(4)));
    d.expect_ioctl().times(1).in_sequence(&mut seq).returning(|_, _, arg, user| {
        answer_info(arg, user, bytemuck::bytes_of(&hw_ip(1, GC_12_0_1)));
        Ok(())
    });
    d.expect_ioctl().times(1).in_sequence(&mut seq).returning(|_, _, arg, user| {
        answer_info(arg, user, bytemuck::bytes_of(&dev_info()));
        Ok(())
    });
    d.expect_ioctl()
        .withf(|_, req, _, _| *req == CTX)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _, _| Err(Errno::ENOMEM));
    d.expect_close()
        .with(predicate::eq(Fd(4)))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    let e = CsSubmitter::open(Arc::new(d), config()).unwrap_err();
    assert_eq!(e, Error::Io { step: "CTX ALLOC", errno: Errno::ENOMEM });
}

// ---------------------------------------------------------------------------------------------
// The fake: sequences, contents, counts.
// ---------------------------------------------------------------------------------------------

#[test]
fn whole_life_issues_the_expected_ioctls_in_order() {
    let fake = FakeAmdgpu::new();
    let mut s = open(&fake);
    let bo = s.alloc_bo(&BoDesc::gtt(100)).unwrap();
    let va = s.map_va(bo, None).unwrap();
    assert_eq!(va, VA_START);
    s.write_bo(bo, 0, &[0u8; 32]).unwrap();
    let f = s.submit_ib(va, 8).unwrap();
    s.wait_fence(f, Duration::from_secs(1)).unwrap();
    s.free_bo(bo).unwrap();
    drop(s);
    assert_eq!(
        fake.events(),
        vec![
            Ev::Open("/dev/dri/renderD128".into()),
            Ev::Ioctl(INFO, u64::from(INFO_HW_IP_INFO)),
            Ev::Ioctl(INFO, u64::from(INFO_DEV_INFO)),
            Ev::Ioctl(CTX, u64::from(CTX_OP_ALLOC)),
            Ev::Ioctl(GEM_CREATE, 1),
            Ev::Ioctl(GEM_MMAP, 1),
            Ev::Mmap { offset: 1 << 32, len: 4096 },
            Ev::Ioctl(GEM_VA, 1),
            Ev::Ioctl(CS, 1000),
            Ev::Ioctl(WAIT_CS, 1000),
            Ev::Ioctl(GEM_VA, 1),
            Ev::Ioctl(GEM_CLOSE, 1),
            Ev::Ioctl(CTX, u64::from(CTX_OP_FREE)),
            Ev::Close,
        ]
    );
    assert_eq!(fake.live(), 0);
}

#[test]
fn submit_builds_ib_and_bo_handles_chunks_and_wait_uses_absolute_deadline() {
    let fake = FakeAmdgpu::new();
    let mut s = open(&fake);
    let (ib, va) = ib_bo(&mut s);
    let data = s.alloc_bo(&BoDesc::gtt(8192)).unwrap();
    let data_va = s.map_va(data, None).unwrap();
    assert_eq!(data_va, VA_START + 4096);
    let unmapped = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let f = s.submit_ib(va + 64, 12).unwrap();
    assert_eq!(f, Fence { seq: 1 });
    let last = fake.st().last_cs.clone().unwrap();
    assert_eq!(last.num_chunks, 2);
    assert_eq!(last.ib.va_start, va + 64);
    assert_eq!(last.ib.ib_bytes, 48);
    assert_eq!(last.ib.ip_type, HW_IP_COMPUTE);
    assert_eq!(last.ib.flags, IB_FLAG_EMIT_MEM_SYNC);
    assert_eq!((last.ib.ip_instance, last.ib.ring), (0, 0));
    let mut handles = last.bo_handles.clone();
    handles.sort();
    let expect = vec![s.gem_handle(ib).unwrap(), s.gem_handle(data).unwrap()];
    assert_eq!(handles, expect, "every mapped BO, and only those");
    assert!(!handles.contains(&s.gem_handle(unmapped).unwrap()));

    s.wait_fence(f, Duration::from_millis(250)).unwrap();
    let w = fake.st().last_wait.unwrap();
    assert_eq!(w.handle, 1000);
    assert_eq!(w.timeout, FIXED_NOW_NS + 250_000_000);
    assert_eq!((w.ip_type, w.ip_instance, w.ring, w.ctx_id), (HW_IP_COMPUTE, 0, 0, s.ctx_id()));

    // Unmapping a BO removes it from the next submission's list.
    s.unmap_va(data).unwrap();
    s.submit_ib(va, 8).unwrap();
    assert_eq!(fake.st().last_cs.clone().unwrap().bo_handles, vec![s.gem_handle(ib).unwrap()]);
}

#[test]
fn one_ioctl_per_submit_at_most_one_per_wait_and_many_in_flight() {
    let fake = FakeAmdgpu::new();
    let mut s = open(&fake);
    let (_, va) = ib_bo(&mut s);
    let before = ioctls(&s);
    let f1 = s.submit_ib(va, 8).unwrap();
    let f2 = s.submit_ib(va + 32, 8).unwrap();
    let f3 = s.submit_ib(va + 64, 8).unwrap();
    assert_eq!((f1.seq, f2.seq, f3.seq), (1, 2, 3));
    assert_eq!(ioctls(&s) - before, 3, "one CS per submit");
    assert_eq!(s.pending(), 3);

    let before = ioctls(&s);
    s.wait_fence(f2, Duration::from_secs(1)).unwrap();
    assert_eq!(ioctls(&s) - before, 1, "one WAIT_CS");
    assert_eq!(fake.st().last_wait.unwrap().handle, 1001, "seq 2 is the kernel's 1001");
    assert_eq!(s.info().counters.retired, 2, "f1 retired with f2 (in-order ring)");

    let before = ioctls(&s);
    s.wait_fence(f1, Duration::from_secs(1)).unwrap();
    s.wait_fence(f2, Duration::from_secs(1)).unwrap();
    assert_eq!(ioctls(&s), before, "known-retired fences cost no ioctl");
    s.wait_fence(f3, Duration::ZERO).unwrap();
    assert_eq!(ioctls(&s) - before, 1);
    let c = s.info().counters;
    assert_eq!((c.submissions, c.retired), (3, 3));
    assert_eq!(s.pending(), 0);
}

#[test]
fn busy_fence_times_out_with_the_waited_duration() {
    let fake = FakeAmdgpu::with(|s| s.wait_busy = true);
    let mut s = open(&fake);
    let (_, va) = ib_bo(&mut s);
    let f = s.submit_ib(va, 8).unwrap();
    let e = s.wait_fence(f, Duration::from_millis(5)).unwrap_err();
    assert_eq!(e, Error::Timeout { fence: f, waited: Duration::from_millis(5) });
    assert_eq!(fake.st().last_wait.unwrap().timeout, FIXED_NOW_NS + 5_000_000);
    assert_eq!(s.info().counters.retired, 0);
    fake.st().wait_busy = false;
    s.wait_fence(f, Duration::from_millis(5)).unwrap();
}

#[test]
fn wait_ecanceled_queries_the_context_and_reports_device_lost() {
    let fake = FakeAmdgpu::with(|s| {
        s.wait_errno = Some(125);
        s.ctx_flags = QUERY2_RESET | QUERY2_VRAMLOST | QUERY2_GUILTY;
    });
    let mut s = open(&fake);
    let (_, va) = ib_bo(&mut s);
    let f = s.submit_ib(va, 8).unwrap();
    fake.clear_events();
    let Error::DeviceLost { reason } = s.wait_fence(f, Duration::from_secs(1)).unwrap_err() else {
        panic!("expected DeviceLost")
    };
    assert!(reason.contains("ECANCELED"), "{reason}");
    assert!(reason.contains("GPU reset"), "{reason}");
    assert!(reason.contains("VRAM lost"), "{reason}");
    assert!(reason.contains("guilty"), "{reason}");
    assert_eq!(
        fake.events(),
        vec![Ev::Ioctl(WAIT_CS, u64::MAX), Ev::Ioctl(CTX, u64::from(CTX_OP_QUERY_STATE2))]
    );
    // Later submissions fail the same way without an ioctl.
    let before = ioctls(&s);
    assert!(matches!(s.submit_ib(va, 8), Err(Error::DeviceLost { .. })));
    assert!(matches!(s.wait_fence(f, Duration::ZERO), Err(Error::DeviceLost { .. })));
    assert_eq!(ioctls(&s), before);
    drop(s);
    assert_eq!(fake.live(), 0, "drop still releases everything after a loss");
}

#[test]
fn cs_ecanceled_is_device_lost_too() {
    let fake = FakeAmdgpu::with(|s| {
        s.cs_errno = Some(125);
        s.ctx_flags = QUERY2_VRAMLOST;
    });
    let mut s = open(&fake);
    let (_, va) = ib_bo(&mut s);
    let Error::DeviceLost { reason } = s.submit_ib(va, 8).unwrap_err() else { panic!() };
    assert!(reason.starts_with("CS failed"), "{reason}");
    assert!(reason.contains("VRAM lost") && !reason.contains("guilty"), "{reason}");
    assert_eq!(s.info().counters.submissions, 0);
}

#[test]
fn drop_releases_in_reverse_order() {
    let fake = FakeAmdgpu::new();
    let mut s = open(&fake);
    let a = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let b = s.alloc_bo(&BoDesc::code(4096)).unwrap();
    let c = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    s.map_va(a, None).unwrap();
    s.map_va(b, None).unwrap();
    let (ga, gb, gc) =
        (s.gem_handle(a).unwrap(), s.gem_handle(b).unwrap(), s.gem_handle(c).unwrap());
    fake.clear_events();
    drop(s);
    assert_eq!(
        fake.events(),
        vec![
            Ev::Ioctl(GEM_CLOSE, u64::from(gc)),
            Ev::Ioctl(GEM_VA, u64::from(gb)),
            Ev::Ioctl(GEM_CLOSE, u64::from(gb)),
            Ev::Ioctl(GEM_VA, u64::from(ga)),
            Ev::Ioctl(GEM_CLOSE, u64::from(ga)),
            Ev::Ioctl(CTX, u64::from(CTX_OP_FREE)),
            Ev::Close,
        ]
    );
    assert_eq!(fake.live(), 0);
}

#[test]
fn drain_on_drop_waits_once_for_the_newest_submission() {
    let fake = FakeAmdgpu::new();
    let cfg = CsConfig { drain_on_drop: Some(Duration::from_millis(100)), ..config() };
    let mut s = CsSubmitter::open(fake.clone(), cfg).unwrap();
    let (_, va) = ib_bo(&mut s);
    s.submit_ib(va, 8).unwrap();
    s.submit_ib(va, 8).unwrap();
    fake.clear_events();
    drop(s);
    let ev = fake.events();
    assert_eq!(ev[0], Ev::Ioctl(WAIT_CS, 1001));
    assert_eq!(fake.st().last_wait.unwrap().timeout, FIXED_NOW_NS + 100_000_000);
    assert_eq!(ev.iter().filter(|e| matches!(e, Ev::Ioctl(WAIT_CS, _))).count(), 1);
    assert_eq!(fake.live(), 0);
}

#[test]
fn gem_create_flags_follow_the_descriptor() {
    let fake = FakeAmdgpu::new();
    let mut s = open(&fake);
    // Every mapping is readable, writable and executable, as Mesa's ac_drm_bo_va_op and
    // libdrm's amdgpu_bo_va_op map every BO.
    const RWX: u32 = PAGE_R | PAGE_W | PAGE_X;
    let cases: [(BoDesc, u64, u64, u32, bool); 5] = [
        (BoDesc::gtt(1), DOMAIN_GTT, 0, RWX, true),
        (BoDesc::code(5000), DOMAIN_GTT, 0, RWX, true),
        (BoDesc { uncached: true, ..BoDesc::gtt(4096) }, DOMAIN_GTT, CREATE_UNCACHED, RWX, true),
        (
            BoDesc { domain: Domain::Vram, ..BoDesc::gtt(4096) },
            DOMAIN_VRAM,
            CREATE_CPU_ACCESS_REQUIRED,
            RWX,
            true,
        ),
        (
            BoDesc { domain: Domain::Vram, cpu_access: false, ..BoDesc::gtt(4096) },
            DOMAIN_VRAM,
            CREATE_NO_CPU_ACCESS,
            RWX,
            false,
        ),
    ];
    for (desc, domain, flags, vm_flags, mmapped) in cases {
        fake.clear_events();
        let bo = s.alloc_bo(&desc).unwrap();
        let gem = s.gem_handle(bo).unwrap();
        let created = fake.st().gems[&gem];
        assert_eq!(created.bo_size, desc.size.div_ceil(4096) * 4096, "{desc:?}");
        assert_eq!(created.alignment, 4096);
        assert_eq!(created.domains, domain, "{desc:?}");
        assert_eq!(created.domain_flags, flags, "{desc:?}");
        let mmaps = fake.events().iter().filter(|e| matches!(e, Ev::Mmap { .. })).count();
        assert_eq!(mmaps, usize::from(mmapped), "{desc:?}");
        let va = s.map_va(bo, None).unwrap();
        assert_eq!(fake.st().vas[&(gem, va)], (created.bo_size, vm_flags), "{desc:?}");
    }
    let forced = CsConfig { force_domain: Some(Domain::Gtt), ..config() };
    let mut g = CsSubmitter::open(fake.clone(), forced).unwrap();
    let bo = g.alloc_bo(&BoDesc { domain: Domain::Vram, ..BoDesc::gtt(4096) }).unwrap();
    assert_eq!(fake.st().gems[&g.gem_handle(bo).unwrap()].domains, DOMAIN_GTT);
}

#[test]
fn cpu_access_is_bounds_checked_and_typed() {
    let fake = FakeAmdgpu::new();
    let mut s = open(&fake);
    let bo = s.alloc_bo(&BoDesc::gtt(100)).unwrap(); // rounded to 4096
    s.write_bo(bo, 4092, &[1, 2, 3, 4]).unwrap();
    assert_eq!(pm4rt_core::submitter::read_u32(&s, bo, 4092).unwrap(), 0x0403_0201);
    assert_eq!(
        s.write_bo(bo, 4093, &[0; 4]),
        Err(Error::OutOfBounds { bo, offset: 4093, len: 4, size: 4096 })
    );
    let mut out = [0u8; 8];
    assert_eq!(
        s.read_bo(bo, u64::MAX, &mut out),
        Err(Error::OutOfBounds { bo, offset: u64::MAX, len: 8, size: 4096 })
    );
    let hidden =
        s.alloc_bo(&BoDesc { domain: Domain::Vram, cpu_access: false, ..BoDesc::gtt(1) }).unwrap();
    assert!(matches!(s.write_bo(hidden, 0, &[0]), Err(Error::Unsupported(_))));
    assert!(matches!(s.read_bo(hidden, 0, &mut out), Err(Error::Unsupported(_))));
    assert_eq!(s.read_bo(BoHandle(99), 0, &mut out), Err(Error::UnknownBo(BoHandle(99))));
    assert!(matches!(s.alloc_bo(&BoDesc::gtt(0)), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.alloc_bo(&BoDesc::gtt(u64::MAX)), Err(Error::InvalidArgument(_))));
}

#[test]
fn va_requests_are_checked_before_the_kernel_sees_them() {
    let fake = FakeAmdgpu::new();
    let mut s = open(&fake);
    let a = s.alloc_bo(&BoDesc::gtt(8192)).unwrap();
    let b = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let before = ioctls(&s);
    let bad = |r: Result<u64, Error>| match r {
        Err(Error::BadVa { reason, .. }) => reason,
        other => panic!("expected BadVa, got {other:?}"),
    };
    bad(s.map_va(a, Some(0x30_0800)));
    bad(s.map_va(a, Some(0x1000))); // below virtual_address_offset
    bad(s.map_va(a, Some(VA_MAX - 4096))); // crosses the top
    assert_eq!(ioctls(&s), before, "refused without an ioctl");
    assert_eq!(s.map_va(a, Some(0x40_0000)).unwrap(), 0x40_0000);
    bad(s.map_va(b, Some(0x40_1000))); // overlaps a
    bad(s.map_va(a, None)); // already mapped
    assert_eq!(s.map_va(b, Some(0x40_2000)).unwrap(), 0x40_2000);
    s.unmap_va(b).unwrap();
    assert!(matches!(s.unmap_va(b), Err(Error::BadVa { reason: "not mapped", .. })));
    assert_eq!(s.map_va(BoHandle(77), None), Err(Error::UnknownBo(BoHandle(77))));
    assert_eq!(s.unmap_va(BoHandle(77)), Err(Error::UnknownBo(BoHandle(77))));
    assert_eq!(s.free_bo(BoHandle(77)), Err(Error::UnknownBo(BoHandle(77))));
    assert_eq!(s.map_va(b, None).unwrap(), VA_START, "first fit from the device's offset");
}

#[test]
fn bad_submissions_and_fences_are_refused_without_ioctls() {
    let fake = FakeAmdgpu::new();
    let mut s = open(&fake);
    let (_, va) = ib_bo(&mut s);
    let before = ioctls(&s);
    assert!(matches!(s.submit_ib(va, 0), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.submit_ib(va + 2, 8), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.submit_ib(va + 4096 - 16, 8), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.submit_ib(0x7000_0000, 8), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.submit_ib(va, u32::MAX), Err(Error::InvalidArgument(_))));
    assert_eq!(
        s.wait_fence(Fence { seq: 0 }, Duration::ZERO),
        Err(Error::UnknownFence(Fence { seq: 0 }))
    );
    assert_eq!(
        s.wait_fence(Fence { seq: 1 }, Duration::ZERO),
        Err(Error::UnknownFence(Fence { seq: 1 }))
    );
    assert_eq!(ioctls(&s), before);
}

#[test]
fn gfx_target_comes_from_the_gc_ip_version_or_the_config() {
    let gfx11 = FakeAmdgpu::with(|s| s.hw_ip = hw_ip(1, 0x0B_00_00));
    assert_eq!(open(&gfx11).info().gfx, GfxTarget::Gfx1100);

    let unreported = FakeAmdgpu::with(|s| s.hw_ip = hw_ip(1, 0));
    let e = CsSubmitter::open(unreported.clone(), config()).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
    assert_eq!(unreported.live(), 0);
    let cfg = CsConfig { gfx: Some(GfxTarget::Gfx1100), ..config() };
    assert_eq!(CsSubmitter::open(unreported.clone(), cfg).unwrap().info().gfx, GfxTarget::Gfx1100);

    let gfx1201 = FakeAmdgpu::new();
    let cfg = CsConfig { gfx: Some(GfxTarget::Gfx1100), ..config() };
    assert!(matches!(CsSubmitter::open(gfx1201.clone(), cfg), Err(Error::Unsupported(_))));
    assert_eq!(gfx1201.live(), 0);

    let other = FakeAmdgpu::with(|s| s.hw_ip = hw_ip(1, 0x0A_03_00)); // gfx1030
    assert!(matches!(CsSubmitter::open(other.clone(), config()), Err(Error::Unsupported(_))));
    assert_eq!(other.live(), 0);
}

#[test]
fn open_without_compute_rings_or_va_range_is_unsupported_and_leaks_nothing() {
    let none = FakeAmdgpu::with(|s| s.hw_ip = hw_ip(0, GC_12_0_1));
    assert!(matches!(CsSubmitter::open(none.clone(), config()), Err(Error::Unsupported(_))));
    assert_eq!(none.live(), 0);
    let ring2 = FakeAmdgpu::with(|s| s.hw_ip = hw_ip(0b011, GC_12_0_1));
    let cfg = CsConfig { ring: 2, ..config() };
    assert!(matches!(CsSubmitter::open(ring2.clone(), cfg), Err(Error::Unsupported(_))));
    assert_eq!(ring2.live(), 0);
    let novm = FakeAmdgpu::with(|s| s.dev_info.virtual_address_max = 0);
    assert!(matches!(CsSubmitter::open(novm.clone(), config()), Err(Error::Unsupported(_))));
    assert_eq!(novm.live(), 0);
}

// ---------------------------------------------------------------------------------------------
// Every ioctl failing: the right step and errno, and nothing leaked.
// ---------------------------------------------------------------------------------------------

#[test]
fn open_step_failures_name_the_step_and_release_everything() {
    let cases: [(u32, usize, i32, &str); 3] = [
        (INFO, 1, 22, "INFO HW_IP_INFO"),
        (INFO, 2, 14, "INFO DEV_INFO"),
        (CTX, 1, 12, "CTX ALLOC"),
    ];
    for (req, nth, errno, step) in cases {
        let fake = FakeAmdgpu::with(|s| s.fail = Some((req, nth, errno)));
        let e = CsSubmitter::open(fake.clone(), config()).unwrap_err();
        assert_eq!(e, Error::Io { step, errno: Errno(errno) });
        assert_eq!(fake.live(), 0, "{step}");
        assert_eq!(fake.events().last(), Some(&Ev::Close), "{step}");
    }
    let fake = FakeAmdgpu::with(|s| s.fail_open = Some(13));
    assert_eq!(
        CsSubmitter::open(fake.clone(), config()).unwrap_err(),
        Error::Io { step: "open", errno: Errno::EACCES }
    );
    assert_eq!(fake.live(), 0);
}

/// Run `f` on a fresh submitter whose `nth` call of `req` fails with `errno`; return the
/// error and the live-handle count after drop.
fn failing<T: std::fmt::Debug>(
    req: u32,
    nth: usize,
    errno: i32,
    f: impl FnOnce(&mut CsSubmitter) -> Result<T, Error>,
) -> (Error, usize) {
    let fake = FakeAmdgpu::with(|s| s.fail = Some((req, nth, errno)));
    let mut s = open(&fake);
    let e = f(&mut s).unwrap_err();
    drop(s);
    (e, fake.live())
}

#[test]
fn alloc_map_submit_wait_free_failures_name_the_step_and_leak_nothing() {
    let io = |step, errno| Error::Io { step, errno: Errno(errno) };
    assert_eq!(
        failing(GEM_CREATE, 1, 12, |s| s.alloc_bo(&BoDesc::gtt(4096))),
        (io("GEM_CREATE", 12), 0)
    );
    assert_eq!(
        failing(GEM_MMAP, 1, 22, |s| s.alloc_bo(&BoDesc::gtt(4096))),
        (io("GEM_MMAP", 22), 0)
    );
    assert_eq!(
        failing(GEM_VA, 1, 28, |s| {
            let bo = s.alloc_bo(&BoDesc::gtt(4096))?;
            s.map_va(bo, None)
        }),
        (io("GEM_VA MAP", 28), 0)
    );
    assert_eq!(
        failing(GEM_VA, 2, 22, |s| {
            let (bo, _) = ib_bo(s);
            s.unmap_va(bo)
        }),
        (io("GEM_VA UNMAP", 22), 0)
    );
    assert_eq!(
        failing(CS, 1, 12, |s| {
            let (_, va) = ib_bo(s);
            s.submit_ib(va, 8)
        }),
        (io("CS", 12), 0)
    );
    assert_eq!(
        failing(WAIT_CS, 1, 22, |s| {
            let (_, va) = ib_bo(s);
            let f = s.submit_ib(va, 8)?;
            s.wait_fence(f, Duration::from_millis(1))
        }),
        (io("WAIT_CS", 22), 0)
    );
    // free_bo: an UNMAP failure is reported but the BO is still closed.
    assert_eq!(
        failing(GEM_VA, 2, 5, |s| {
            let (bo, _) = ib_bo(s);
            s.free_bo(bo)?;
            Ok(())
        }),
        (io("GEM_VA UNMAP", 5), 0)
    );
    // A refused GEM_CLOSE is reported; the kernel kept that one handle (nothing else leaks).
    assert_eq!(
        failing(GEM_CLOSE, 1, 22, |s| {
            let bo = s.alloc_bo(&BoDesc::gtt(4096))?;
            s.free_bo(bo)
        }),
        (io("GEM_CLOSE", 22), 1)
    );
}

#[test]
fn mmap_failure_closes_the_gem_handle() {
    let fake = FakeAmdgpu::with(|s| s.fail_mmap = Some(12));
    let mut s = open(&fake);
    assert_eq!(
        s.alloc_bo(&BoDesc::gtt(4096)),
        Err(Error::Io { step: "mmap", errno: Errno::ENOMEM })
    );
    assert!(fake.st().gems.is_empty());
    drop(s);
    assert_eq!(fake.live(), 0);
}

#[test]
fn failed_map_returns_its_va_to_the_allocator() {
    let fake = FakeAmdgpu::with(|s| s.fail = Some((GEM_VA, 1, 22)));
    let mut s = open(&fake);
    let bo = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    assert!(s.map_va(bo, None).is_err());
    assert_eq!(s.map_va(bo, None).unwrap(), VA_START);
}
