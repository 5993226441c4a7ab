//! The umq tier against a mockall mock of `Driver` whose methods are answered by a small fake
//! amdgpu kept in the test (every ioctl decoded from its bytes, nested user pointers resolved
//! like copy_from_user, every call logged, any one call failable). Tests check the exact call
//! log, each probe failure, every error path of open, and the ring / doorbell protocol.
//!
//! Request numbers, flag values and packet fields below are literals from
//! include/uapi/drm/amdgpu_drm.h, drm.h, the PM4 packet headers and Mesa's amdgpu_userq.h —
//! not the constants of the code under test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockall::mock;
use pm4rt_backends::umq::{ProbeFailure, UmqConfig, UmqSubmitter};
use pm4rt_core::abi::drm::{
    GemClose, GemCreateIn, GemCreateOut, GemMmapIn, GemMmapOut, GemVa, Info, InfoDevice, InfoHwIp,
    InfoUqMetadataCompute, SyncobjCreate, SyncobjDestroy, SyncobjTimelineWait, UserqIn, UserqOut,
};
use pm4rt_core::abi::ioctl::{decode_arg, write_arg};
use pm4rt_core::driver::user_ptr;
use pm4rt_core::{BoDesc, Driver, Errno, Error, Fd, Fence, MapAt, Mapping, Submitter, Tier};

// Golden request numbers (include/uapi/drm/amdgpu_drm.h, drm.h).
const GEM_CREATE: u32 = 0xC020_6440;
const GEM_MMAP: u32 = 0xC008_6441;
const INFO: u32 = 0x4020_6445;
const GEM_VA: u32 = 0x4040_6448;
const USERQ: u32 = 0xC048_6456;
const GEM_CLOSE: u32 = 0x4008_6409;
// DRM core syncobj requests (include/uapi/drm/drm.h: DRM_IOWR(0xBF / 0xC0 / 0xCA, ...)).
const SYNCOBJ_CREATE: u32 = 0xC008_64BF;
const SYNCOBJ_DESTROY: u32 = 0xC008_64C0;
const SYNCOBJ_TIMELINE_WAIT: u32 = 0xC028_64CA;
/// DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | WAIT_FOR_SUBMIT (drm.h: 1 << 0, 1 << 1), Mesa's flags.
const WAIT_ALL_FOR_SUBMIT: u32 = 0x3;

// Golden constants (amdgpu_drm.h).
const INFO_HW_IP_INFO: u32 = 0x02;
const INFO_DEV_INFO: u32 = 0x16;
const INFO_UQ_FW_AREAS: u32 = 0x24;
const HW_IP_COMPUTE: u32 = 1;
const DOMAIN_GTT: u64 = 0x2;
const DOMAIN_VRAM: u64 = 0x4;
const DOMAIN_DOORBELL: u64 = 0x40;
const CREATE_NO_CPU_ACCESS: u64 = 1 << 1;
const CREATE_UNCACHED: u64 = 1 << 14;
const VA_OP_MAP: u32 = 1;
const VA_OP_UNMAP: u32 = 2;
/// AMDGPU_VM_PAGE_READABLE | WRITEABLE | EXECUTABLE (amdgpu_drm.h: 1 << 1, 1 << 2, 1 << 3).
const PAGE_RWX: u32 = (1 << 1) | (1 << 2) | (1 << 3);
/// AMDGPU_VM_MTYPE_UC (amdgpu_drm.h: 4 << 5).
const MTYPE_UC: u32 = 4 << 5;
const USERQ_OP_CREATE: u32 = 1;
const USERQ_OP_FREE: u32 = 2;
const PARAM: &str = "/sys/module/amdgpu/parameters/user_queue";
/// Mesa's AMDGPU_USERQ_RING_SIZE and AMDGPU_USERQ_DOORBELL_INDEX.
const MESA_RING: u64 = 0x10000;
const MESA_DOORBELL_INDEX: u32 = 4;

// The machine: gfx1201 (GC 12.0.1), VA 2 MiB .. 128 TiB, EOP 2048 aligned 256 (a kernel with
// amdgpu_userq_metadata_info_compute: GFX12_MEC_HPD_SIZE, 256).
const GC_12_0_1: u32 = 0x0C_00_01;
const VA_START: u64 = 0x20_0000;
const VA_MAX: u64 = 0x8000_0000_0000;
const NODE: &str = "/dev/dri/renderD128";

// ---------------------------------------------------------------------------------------------
// Host memory behind mappings (shared so the test can look at the ring and pointers).
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Mem(Mutex<Vec<u8>>);

impl Mem {
    fn u64_at(&self, off: usize) -> u64 {
        let b = self.0.lock().unwrap();
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }
    fn set_u64(&self, off: usize, v: u64) {
        self.0.lock().unwrap()[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn dword(&self, i: usize) -> u32 {
        let b = self.0.lock().unwrap();
        u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap())
    }
}

#[derive(Debug)]
struct FakeMapping {
    mem: Arc<Mem>,
    live: Arc<AtomicUsize>,
}

impl Drop for FakeMapping {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Mapping for FakeMapping {
    fn addr(&self) -> u64 {
        0x7000_0000
    }
    fn len(&self) -> usize {
        self.mem.0.lock().unwrap().len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        let b = self.mem.0.lock().unwrap();
        out.copy_from_slice(b.get(offset..offset + out.len()).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let mut b = self.mem.0.lock().unwrap();
        b.get_mut(offset..offset + data.len()).ok_or(Errno::EFAULT)?.copy_from_slice(data);
        Ok(())
    }
    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        let mut v = [0u8; 8];
        self.read(offset, &mut v)?;
        Ok(u64::from_le_bytes(v))
    }
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        self.write(offset, &value.to_le_bytes())
    }
}

// ---------------------------------------------------------------------------------------------
// The fake kernel behind the mock.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Open,
    ReadParam,
    Info(u32),
    GemCreate {
        size: u64,
        domains: u64,
        flags: u64,
    },
    GemMmap(u32),
    Mmap {
        handle: u32,
        len: usize,
    },
    /// GEM_VA MAP signalling `point` of syncobj `timeline` (0: none).
    VaMap {
        handle: u32,
        va: u64,
        size: u64,
        flags: u32,
        timeline: u32,
        point: u64,
    },
    VaUnmap {
        handle: u32,
        va: u64,
    },
    UserqCreate(Box<UserqIn>, u64),
    UserqFree(u32),
    GemClose(u32),
    SyncobjCreate,
    SyncobjDestroy(u32),
    /// SYNCOBJ_TIMELINE_WAIT of one point (WAIT_ALL | WAIT_FOR_SUBMIT, a future deadline).
    VmWait {
        handle: u32,
        point: u64,
    },
    Close,
}

struct Kernel {
    events: Vec<Ev>,
    /// Fail the call that would be event number `n` (0-based) with this errno.
    fail_at: Option<(usize, i32)>,
    param: Result<String, Errno>,
    dev_info: InfoDevice,
    hw_ip: InfoHwIp,
    eop: Result<InfoUqMetadataCompute, Errno>,
    /// INFO queries that fail, with their errno.
    info_errno: BTreeMap<u32, i32>,
    fds: BTreeSet<i32>,
    gems: BTreeMap<u32, GemCreateIn>,
    next_gem: u32,
    vas: BTreeSet<(u32, u64)>,
    queues: BTreeSet<u32>,
    syncobjs: BTreeSet<u32>,
    /// Memory of every CPU-mapped GEM handle.
    mems: BTreeMap<u32, Arc<Mem>>,
}

struct Fake {
    k: Mutex<Kernel>,
    live_maps: Arc<AtomicUsize>,
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

const MMAP_BASE: u64 = 0x1_0000_0000;

impl Fake {
    fn new() -> Arc<Fake> {
        Fake::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut Kernel)) -> Arc<Fake> {
        let mut k = Kernel {
            events: Vec::new(),
            fail_at: None,
            param: Ok("1\n".into()),
            dev_info: InfoDevice {
                device_id: 0x7551,
                virtual_address_offset: VA_START,
                virtual_address_max: VA_MAX,
                virtual_address_alignment: 4096,
                userq_ip_mask: 1 << HW_IP_COMPUTE,
                ..Default::default()
            },
            hw_ip: InfoHwIp {
                hw_ip_version_major: 12,
                available_rings: 0xF,
                ip_discovery_version: GC_12_0_1,
                userq_num_slots: 8,
                ..Default::default()
            },
            eop: Ok(InfoUqMetadataCompute { eop_size: 2048, eop_alignment: 256 }),
            info_errno: BTreeMap::new(),
            fds: BTreeSet::new(),
            gems: BTreeMap::new(),
            next_gem: 1,
            vas: BTreeSet::new(),
            queues: BTreeSet::new(),
            syncobjs: BTreeSet::new(),
            mems: BTreeMap::new(),
        };
        f(&mut k);
        Arc::new(Fake { k: Mutex::new(k), live_maps: Arc::new(AtomicUsize::new(0)) })
    }

    fn k(&self) -> std::sync::MutexGuard<'_, Kernel> {
        self.k.lock().unwrap()
    }

    fn live(&self) -> usize {
        let k = self.k();
        k.fds.len()
            + k.gems.len()
            + k.vas.len()
            + k.queues.len()
            + k.syncobjs.len()
            + self.live_maps.load(Ordering::SeqCst)
    }

    fn events(&self) -> Vec<Ev> {
        self.k().events.clone()
    }

    fn mem(&self, handle: u32) -> Arc<Mem> {
        self.k().mems[&handle].clone()
    }

    /// Log `ev`; fail it if it is the injected one.
    fn log(k: &mut Kernel, ev: Ev) -> Result<(), Errno> {
        let n = k.events.len();
        k.events.push(ev);
        match k.fail_at {
            Some((at, errno)) if at == n => Err(Errno(errno)),
            _ => Ok(()),
        }
    }

    fn ioctl(&self, request: u32, arg: &mut [u8], user: &mut [&mut [u8]]) -> Result<(), Errno> {
        let mut k = self.k();
        match request {
            INFO => {
                let info: Info = dec(arg)?;
                Fake::log(&mut k, Ev::Info(info.query))?;
                if let Some(&e) = k.info_errno.get(&info.query) {
                    return Err(Errno(e));
                }
                let answer: Vec<u8> = match info.query {
                    INFO_DEV_INFO => bytemuck::bytes_of(&k.dev_info).to_vec(),
                    INFO_HW_IP_INFO if info.data[0] == HW_IP_COMPUTE => {
                        bytemuck::bytes_of(&k.hw_ip).to_vec()
                    }
                    INFO_UQ_FW_AREAS if info.data[0] == HW_IP_COMPUTE => {
                        let m = k.eop?;
                        let mut v = bytemuck::bytes_of(&m).to_vec();
                        v.resize(16, 0); // the 16-byte union
                        v
                    }
                    _ => return Err(Errno::EINVAL),
                };
                let n = (info.return_size as usize).min(answer.len());
                resolve_mut(user, info.return_pointer, n)?.copy_from_slice(&answer[..n]);
                Ok(())
            }
            GEM_CREATE => {
                let c: GemCreateIn = dec(arg)?;
                Fake::log(
                    &mut k,
                    Ev::GemCreate { size: c.bo_size, domains: c.domains, flags: c.domain_flags },
                )?;
                let h = k.next_gem;
                k.next_gem += 1;
                k.gems.insert(h, c);
                write_arg(arg, &GemCreateOut { handle: h, pad: 0 }).unwrap();
                Ok(())
            }
            GEM_MMAP => {
                let m: GemMmapIn = dec(arg)?;
                Fake::log(&mut k, Ev::GemMmap(m.handle))?;
                if !k.gems.contains_key(&m.handle) {
                    return Err(Errno::ENOENT);
                }
                write_arg(arg, &GemMmapOut { addr_ptr: MMAP_BASE * u64::from(m.handle) }).unwrap();
                Ok(())
            }
            GEM_VA => {
                let v: GemVa = dec(arg)?;
                match v.operation {
                    VA_OP_MAP => {
                        Fake::log(
                            &mut k,
                            Ev::VaMap {
                                handle: v.handle,
                                va: v.va_address,
                                size: v.map_size,
                                flags: v.flags,
                                timeline: v.vm_timeline_syncobj_out,
                                point: v.vm_timeline_point,
                            },
                        )?;
                        if !k.gems.contains_key(&v.handle) {
                            return Err(Errno::ENOENT);
                        }
                        let t = v.vm_timeline_syncobj_out;
                        if t != 0 && !k.syncobjs.contains(&t) {
                            return Err(Errno::ENOENT);
                        }
                        k.vas.insert((v.handle, v.va_address));
                    }
                    VA_OP_UNMAP => {
                        Fake::log(&mut k, Ev::VaUnmap { handle: v.handle, va: v.va_address })?;
                        if !k.vas.remove(&(v.handle, v.va_address)) {
                            return Err(Errno::ENOENT);
                        }
                    }
                    _ => return Err(Errno::EINVAL),
                }
                Ok(())
            }
            USERQ => {
                let q: UserqIn = dec(arg)?;
                match q.op {
                    USERQ_OP_CREATE => {
                        let mqd = resolve_mut(user, q.mqd, q.mqd_size as usize)?;
                        let eop_va = u64::from_le_bytes(mqd[..8].try_into().unwrap());
                        Fake::log(&mut k, Ev::UserqCreate(Box::new(q), eop_va))?;
                        k.queues.insert(3);
                        write_arg(arg, &UserqOut { queue_id: 3, pad: 0 }).unwrap();
                    }
                    USERQ_OP_FREE => {
                        Fake::log(&mut k, Ev::UserqFree(q.queue_id))?;
                        // amdgpu_userq_input_args_validate: everything but op / queue_id zero.
                        if arg[8..72].iter().any(|&b| b != 0) {
                            return Err(Errno::EINVAL);
                        }
                        if !k.queues.remove(&q.queue_id) {
                            return Err(Errno::ENOENT);
                        }
                    }
                    _ => return Err(Errno::EINVAL),
                }
                Ok(())
            }
            SYNCOBJ_CREATE => {
                let c: SyncobjCreate = dec(arg)?;
                Fake::log(&mut k, Ev::SyncobjCreate)?;
                if c.flags != 0 {
                    return Err(Errno::EINVAL);
                }
                let h = (1..).find(|h| !k.syncobjs.contains(h)).unwrap();
                k.syncobjs.insert(h);
                write_arg(arg, &SyncobjCreate { handle: h, flags: 0 }).unwrap();
                Ok(())
            }
            SYNCOBJ_DESTROY => {
                let d: SyncobjDestroy = dec(arg)?;
                Fake::log(&mut k, Ev::SyncobjDestroy(d.handle))?;
                if d.pad != 0 || !k.syncobjs.remove(&d.handle) {
                    return Err(Errno::EINVAL);
                }
                Ok(())
            }
            SYNCOBJ_TIMELINE_WAIT => {
                let w: SyncobjTimelineWait = dec(arg)?;
                assert_eq!(w.count_handles, 1);
                assert_eq!(w.flags, WAIT_ALL_FOR_SUBMIT);
                assert!(w.timeout_nsec > 0, "an absolute deadline");
                let h = u32::from_le_bytes(resolve_mut(user, w.handles, 4)?.try_into().unwrap());
                let p = u64::from_le_bytes(resolve_mut(user, w.points, 8)?.try_into().unwrap());
                Fake::log(&mut k, Ev::VmWait { handle: h, point: p })?;
                if !k.syncobjs.contains(&h) {
                    return Err(Errno::ENOENT);
                }
                Ok(())
            }
            GEM_CLOSE => {
                let c: GemClose = dec(arg)?;
                Fake::log(&mut k, Ev::GemClose(c.handle))?;
                if k.gems.remove(&c.handle).is_none() {
                    return Err(Errno::EINVAL);
                }
                let h = c.handle;
                k.vas.retain(|&(hh, _)| hh != h);
                Ok(())
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn mmap(&self, offset: u64, len: usize) -> Result<Box<dyn Mapping>, Errno> {
        let mut k = self.k();
        let handle = (offset / MMAP_BASE) as u32;
        Fake::log(&mut k, Ev::Mmap { handle, len })?;
        let size = k.gems.get(&handle).ok_or(Errno::EINVAL)?.bo_size as usize;
        let mem = Arc::new(Mem(Mutex::new(vec![0u8; size])));
        k.mems.insert(handle, mem.clone());
        self.live_maps.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(FakeMapping { mem, live: self.live_maps.clone() }))
    }
}

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

/// A mock whose every expected method is answered by `fake`. `reserve_va`, `release_va`,
/// `list_dir` and `kernel_release` have no expectation: the tier must never call them (the
/// probe goes by feature, never by kernel version).
fn driver(fake: &Arc<Fake>) -> Arc<dyn Driver> {
    let mut d = MockDrv::new();
    let f = fake.clone();
    d.expect_open().returning(move |p| {
        let mut k = f.k();
        assert_eq!(p, NODE);
        Fake::log(&mut k, Ev::Open)?;
        k.fds.insert(7);
        Ok(Fd(7))
    });
    let f = fake.clone();
    d.expect_close().returning(move |fd| {
        let mut k = f.k();
        assert_eq!(fd, Fd(7));
        Fake::log(&mut k, Ev::Close)?;
        k.fds.remove(&7);
        Ok(())
    });
    let f = fake.clone();
    d.expect_ioctl().returning(move |fd, req, arg, user| {
        assert_eq!(fd, Fd(7));
        f.ioctl(req, arg, user)
    });
    let f = fake.clone();
    d.expect_mmap().returning(move |fd, off, len, at| {
        assert_eq!((fd, at), (Fd(7), MapAt::Anywhere));
        f.mmap(off, len)
    });
    let f = fake.clone();
    d.expect_read_file().returning(move |p| {
        let mut k = f.k();
        assert_eq!(p, PARAM);
        Fake::log(&mut k, Ev::ReadParam)?;
        k.param.clone()
    });
    Arc::new(d)
}

fn config() -> UmqConfig {
    UmqConfig { space_timeout: Duration::from_millis(30), ..UmqConfig::with_path(NODE) }
}

// VAs the first-fit allocator hands out in creation order.
const RING_VA: u64 = VA_START;
const WPTR_VA: u64 = VA_START + MESA_RING;
const RPTR_VA: u64 = WPTR_VA + 0x1000;
const EOP_VA: u64 = RPTR_VA + 0x1000;
const FENCE_VA: u64 = EOP_VA + 0x1000;

fn expected_open() -> Vec<Ev> {
    let gtt = |size, flags| Ev::GemCreate { size, domains: DOMAIN_GTT, flags };
    // Every queue BO readable, writeable, executable (libdrm amdgpu_bo_va_op, Mesa
    // amdgpu_create_bo); ring, wptr and rptr also uncached (Mesa: RADEON_FLAG_GL2_BYPASS ->
    // AMDGPU_VM_MTYPE_UC).
    // Each map signals the next point of the VM timeline syncobj (handle 1), as Mesa does.
    let map = |handle, va, size, point| Ev::VaMap {
        handle,
        va,
        size,
        flags: PAGE_RWX,
        timeline: 1,
        point,
    };
    let map_uc = |handle, va, size, point| Ev::VaMap {
        handle,
        va,
        size,
        flags: PAGE_RWX | MTYPE_UC,
        timeline: 1,
        point,
    };
    vec![
        Ev::Open,
        Ev::ReadParam,
        Ev::Info(INFO_DEV_INFO),
        Ev::Info(INFO_HW_IP_INFO),
        Ev::Info(INFO_UQ_FW_AREAS),
        Ev::SyncobjCreate,
        // Doorbell: 4 KiB DOORBELL domain, CPU-mapped, no VA.
        Ev::GemCreate { size: 4096, domains: DOMAIN_DOORBELL, flags: 0 },
        Ev::GemMmap(1),
        Ev::Mmap { handle: 1, len: 4096 },
        // Ring 64 KiB.
        gtt(MESA_RING, 0),
        Ev::GemMmap(2),
        Ev::Mmap { handle: 2, len: MESA_RING as usize },
        map_uc(2, RING_VA, MESA_RING, 1),
        // wptr, rptr 4 KiB.
        gtt(4096, 0),
        Ev::GemMmap(3),
        Ev::Mmap { handle: 3, len: 4096 },
        map_uc(3, WPTR_VA, 4096, 2),
        gtt(4096, 0),
        Ev::GemMmap(4),
        Ev::Mmap { handle: 4, len: 4096 },
        map_uc(4, RPTR_VA, 4096, 3),
        // EOP: 2048 rounded to a page, VRAM, GPU only.
        Ev::GemCreate { size: 4096, domains: DOMAIN_VRAM, flags: CREATE_NO_CPU_ACCESS },
        map(5, EOP_VA, 4096, 4),
        // Fence.
        gtt(4096, CREATE_UNCACHED),
        Ev::GemMmap(6),
        Ev::Mmap { handle: 6, len: 4096 },
        map(6, FENCE_VA, 4096, 5),
        // The page tables of all five before the queue exists (Mesa's amdgpu_userq_init).
        Ev::VmWait { handle: 1, point: 5 },
        Ev::UserqCreate(
            Box::new(UserqIn {
                op: USERQ_OP_CREATE,
                queue_id: 0,
                ip_type: HW_IP_COMPUTE,
                doorbell_handle: 1,
                doorbell_offset: MESA_DOORBELL_INDEX,
                flags: 0,
                queue_va: RING_VA,
                queue_size: MESA_RING,
                rptr_va: RPTR_VA,
                wptr_va: WPTR_VA,
                mqd: 0, // compared separately (a user pointer)
                mqd_size: 8,
            }),
            EOP_VA,
        ),
    ]
}

fn expected_drop() -> Vec<Ev> {
    vec![
        Ev::UserqFree(3),
        Ev::VaUnmap { handle: 6, va: FENCE_VA },
        Ev::GemClose(6),
        Ev::VaUnmap { handle: 5, va: EOP_VA },
        Ev::GemClose(5),
        Ev::VaUnmap { handle: 4, va: RPTR_VA },
        Ev::GemClose(4),
        Ev::VaUnmap { handle: 3, va: WPTR_VA },
        Ev::GemClose(3),
        Ev::VaUnmap { handle: 2, va: RING_VA },
        Ev::GemClose(2),
        Ev::GemClose(1),
        Ev::SyncobjDestroy(1),
        Ev::Close,
    ]
}

/// The log with the MQD user pointer zeroed (it is a host address).
fn normalized(mut ev: Vec<Ev>) -> Vec<Ev> {
    for e in &mut ev {
        if let Ev::UserqCreate(q, _) = e {
            assert_ne!(q.mqd, 0, "the MQD pointer must be set");
            q.mqd = 0;
        }
    }
    ev
}

#[test]
fn open_and_drop_issue_exactly_the_expected_calls() {
    let fake = Fake::new();
    let s = UmqSubmitter::open(driver(&fake), config()).unwrap();
    assert_eq!(normalized(fake.events()), expected_open());
    let info = s.info();
    assert_eq!(info.tier, Tier::Umq);
    assert_eq!(info.gfx.name(), "gfx1201");
    assert_eq!(info.counters.ioctls, 3 + 1 + 6 + 5 + 5 + 1 + 1);
    assert_eq!(s.queue_id(), 3);
    assert!(s.probe_result().supported());
    drop(s);
    let mut all = expected_open();
    all.extend(expected_drop());
    assert_eq!(normalized(fake.events()), all);
    assert_eq!(fake.live(), 0);
}

// --- the probe -------------------------------------------------------------------------------

fn probe_failures(f: impl FnOnce(&mut Kernel)) -> (Vec<ProbeFailure>, Error, Vec<Ev>) {
    let fake = Fake::with(f);
    let d = driver(&fake);
    let p = UmqSubmitter::probe(d.clone(), &config()).unwrap();
    let e = UmqSubmitter::open(d, config()).unwrap_err();
    assert_eq!(fake.live(), 0);
    (p.failures, e, fake.events())
}

fn assert_no_queue(ev: &[Ev]) {
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Ev::UserqCreate(..) | Ev::GemCreate { .. } | Ev::UserqFree(_))),
        "nothing may be created once the probe said no: {ev:?}"
    );
}

/// A change to the fake kernel before a test.
type Setup = Box<dyn FnOnce(&mut Kernel)>;

#[test]
fn probe_reports_each_failing_check_with_its_value() {
    let cases: Vec<(Setup, Vec<ProbeFailure>)> = vec![
        (Box::new(|k| k.param = Ok("-1\n".into())), vec![ProbeFailure::ParamOff { value: -1 }]),
        (Box::new(|k| k.param = Ok("0\n".into())), vec![ProbeFailure::ParamOff { value: 0 }]),
        (
            Box::new(|k| k.param = Err(Errno::ENOENT)),
            vec![ProbeFailure::ParamUnreadable { path: PARAM.into(), errno: Errno::ENOENT }],
        ),
        (
            Box::new(|k| k.param = Ok("auto\n".into())),
            vec![ProbeFailure::ParamUnparsable { text: "auto".into() }],
        ),
        (
            Box::new(|k| k.dev_info.userq_ip_mask = 1 << 0),
            vec![ProbeFailure::NoComputeInIpMask { mask: 1 }],
        ),
        (
            Box::new(|k| k.hw_ip.userq_num_slots = 0),
            vec![ProbeFailure::NoComputeSlots { slots: 0 }],
        ),
        // EINVAL / EOPNOTSUPP mean "not reported" (see below); any other errno fails.
        (
            Box::new(|k| k.eop = Err(Errno::EIO)),
            vec![ProbeFailure::FwAreasFailed { errno: Errno::EIO }],
        ),
        (
            Box::new(|k| k.eop = Ok(InfoUqMetadataCompute { eop_size: 0, eop_alignment: 256 })),
            vec![ProbeFailure::BadEop { size: 0, alignment: 256 }],
        ),
        (
            Box::new(|k| k.eop = Ok(InfoUqMetadataCompute { eop_size: 2048, eop_alignment: 0 })),
            vec![ProbeFailure::BadEop { size: 2048, alignment: 0 }],
        ),
        (
            Box::new(|k| {
                k.info_errno.insert(INFO_DEV_INFO, 5);
            }),
            vec![ProbeFailure::Io { step: "INFO DEV_INFO", errno: Errno::EIO }],
        ),
        (
            // An R9700 on 6.17: default parameter, no IP with user queues, no slots.
            Box::new(|k| {
                k.param = Ok("-1\n".into());
                k.dev_info.userq_ip_mask = 0;
                k.hw_ip.userq_num_slots = 0;
            }),
            vec![
                ProbeFailure::ParamOff { value: -1 },
                ProbeFailure::NoComputeInIpMask { mask: 0 },
                ProbeFailure::NoComputeSlots { slots: 0 },
            ],
        ),
    ];
    for (setup, want) in cases {
        let (got, err, ev) = probe_failures(setup);
        assert_eq!(got, want);
        assert_no_queue(&ev);
        match err {
            Error::Unsupported(msg) => {
                for w in &want {
                    assert!(msg.contains(&w.to_string()), "{msg:?} lacks {w}");
                }
            }
            e => panic!("expected Unsupported, got {e:?}"),
        }
    }
}

#[test]
fn r9700_probe_message_names_the_reasons() {
    let (_, err, _) = probe_failures(|k| {
        k.param = Ok("-1\n".into());
        k.dev_info.userq_ip_mask = 0;
        k.hw_ip.userq_num_slots = 0;
    });
    let msg = err.to_string();
    assert!(msg.contains("amdgpu.user_queue = -1"), "{msg}");
    assert!(msg.contains("userq_num_slots = 0"), "{msg}");
}

#[test]
fn probe_never_asks_for_the_kernel_version() {
    // The mock has no kernel_release / list_dir expectation: calling them would panic.
    let fake = Fake::new();
    let p = UmqSubmitter::probe(driver(&fake), &config()).unwrap();
    assert!(p.supported(), "{p}");
    assert_eq!(p.eop, Some(InfoUqMetadataCompute { eop_size: 2048, eop_alignment: 256 }));
}

/// Linux 6.17 answers UQ_FW_AREAS(COMPUTE) with EINVAL (amdgpu_info_ioctl handles only
/// AMDGPU_HW_IP_GFX there); EOPNOTSUPP comes from a later kernel without the callback. The
/// queue is still created, with Mesa's EOP buffer: one 4 KiB page, 256-aligned
/// (amdgpu_userq.c: amdgpu_userq_init).
#[test]
fn compute_fw_areas_not_reported_opens_with_mesas_eop() {
    for errno in [Errno::EINVAL, Errno::EOPNOTSUPP] {
        let fake = Fake::with(|k| k.eop = Err(errno));
        let s = UmqSubmitter::open(driver(&fake), config()).unwrap();
        let p = s.probe_result();
        assert!(p.supported(), "{p}");
        assert_eq!((p.eop, p.eop_not_reported), (None, Some(errno)));
        let eop = p.eop_layout();
        assert_eq!((eop.size, eop.alignment, eop.from_kernel), (4096, 256, false));
        // The same calls as with the metadata: the EOP BO is one page either way.
        assert_eq!(normalized(fake.events()), expected_open());
        drop(s);
        assert_eq!(fake.live(), 0);
    }
}

/// A kernel that reports the metadata is followed (never below Mesa's page / 256).
#[test]
fn reported_compute_eop_size_and_alignment_are_used() {
    let fake = Fake::with(|k| {
        k.eop = Ok(InfoUqMetadataCompute { eop_size: 8192, eop_alignment: 0x10000 })
    });
    let s = UmqSubmitter::open(driver(&fake), config()).unwrap();
    let eop = s.probe_result().eop_layout();
    assert_eq!((eop.size, eop.alignment, eop.from_kernel), (8192, 0x10000, true));
    let vas = s.queue_vas();
    assert_eq!(vas.eop % 0x10000, 0);
    let ev = fake.events();
    assert!(ev.contains(&Ev::GemCreate {
        size: 8192,
        domains: DOMAIN_VRAM,
        flags: CREATE_NO_CPU_ACCESS
    }));
    drop(s);
    assert_eq!(fake.live(), 0);
}

// --- error paths of open ---------------------------------------------------------------------

#[test]
fn every_failing_step_of_open_is_reported_and_nothing_leaks() {
    let base = expected_open();
    for (i, ev) in base.iter().enumerate() {
        let want_step = match ev {
            Ev::Open => "open",
            Ev::ReadParam | Ev::Info(_) => continue, // probe failures: tested above
            Ev::GemCreate { .. } => "GEM_CREATE",
            Ev::GemMmap(_) => "GEM_MMAP",
            Ev::Mmap { .. } => "mmap",
            Ev::VaMap { .. } => "GEM_VA MAP",
            Ev::SyncobjCreate => "SYNCOBJ_CREATE",
            Ev::VmWait { .. } => "SYNCOBJ_TIMELINE_WAIT (GEM_VA update)",
            Ev::UserqCreate(..) => "USERQ CREATE",
            _ => unreachable!(),
        };
        let fake = Fake::with(|k| k.fail_at = Some((i, 12)));
        let err = UmqSubmitter::open(driver(&fake), config()).unwrap_err();
        assert_eq!(
            err,
            Error::Io { step: want_step, errno: Errno::ENOMEM },
            "failing event {i} {ev:?}"
        );
        assert_eq!(fake.live(), 0, "leak after failing event {i} {ev:?}: {:?}", fake.events());
        // Released in reverse order: every GEM_CLOSE after the failure is for a lower handle.
        let closes: Vec<u32> = fake.events()[i + 1..]
            .iter()
            .filter_map(|e| if let Ev::GemClose(h) = e { Some(*h) } else { None })
            .collect();
        assert!(closes.windows(2).all(|w| w[0] > w[1]), "{closes:?}");
        assert!(!fake.events()[i + 1..].iter().any(|e| matches!(e, Ev::UserqCreate(..))));
    }
}

#[test]
fn bad_configs_are_refused_before_any_call() {
    for c in [
        UmqConfig { ring_bytes: 2048, ..config() },
        UmqConfig { ring_bytes: 0x3000, ..config() },
        UmqConfig { doorbell_index: 512, ..config() },
        UmqConfig { priority: 4, ..config() },
    ] {
        let fake = Fake::new();
        let e = UmqSubmitter::open(driver(&fake), c).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
        assert!(fake.events().is_empty());
    }
}

#[test]
fn a_failing_free_in_drop_still_releases_everything_else() {
    let n = expected_open().len();
    let fake = Fake::with(|k| k.fail_at = Some((n, 5))); // USERQ FREE fails
    let s = UmqSubmitter::open(driver(&fake), config()).unwrap();
    drop(s);
    let ev = fake.events();
    assert_eq!(ev[n], Ev::UserqFree(3));
    assert_eq!(ev.last(), Some(&Ev::Close));
    // The queue itself is the only thing the fake still counts (its FREE failed).
    assert_eq!(fake.live(), 1);
}

// --- submission ------------------------------------------------------------------------------

struct Q {
    fake: Arc<Fake>,
    s: UmqSubmitter,
    ib_va: u64,
}

fn open_with_ib(ring_bytes: u64) -> Q {
    let fake = Fake::new();
    let mut s = UmqSubmitter::open(driver(&fake), UmqConfig { ring_bytes, ..config() }).unwrap();
    let ib = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let ib_va = s.map_va(ib, None).unwrap();
    Q { fake, s, ib_va }
}

fn header(opcode: u32, count: u32, h: u32) {
    assert_eq!(h >> 30, 3, "{h:#x}");
    assert_eq!((h >> 16) & 0x3FFF, count, "{h:#x}");
    assert_eq!((h >> 8) & 0xFF, opcode, "{h:#x}");
}

#[test]
fn submit_writes_ring_wptr_and_doorbell_with_no_ioctl() {
    let mut q = open_with_ib(MESA_RING);
    let before = q.fake.events().len();
    let ioctls = q.s.info().counters.ioctls;
    let f = q.s.submit_ib(q.ib_va, 16).unwrap();
    assert_eq!(f, Fence { seq: 1 });
    assert_eq!(q.fake.events().len(), before, "a submission issues no call");
    assert_eq!(q.s.info().counters.ioctls, ioctls);

    let ring = q.fake.mem(2);
    // ACQUIRE_MEM (0x58, 8 dwords), INDIRECT_BUFFER (0x3F, 4), RELEASE_MEM (0x49, 8).
    header(0x58, 6, ring.dword(0));
    header(0x3F, 2, ring.dword(8));
    assert_eq!(ring.dword(9), q.ib_va as u32);
    assert_eq!(ring.dword(10), (q.ib_va >> 32) as u32);
    assert_eq!(ring.dword(11), 16 | (1 << 23), "IB_SIZE and VALID");
    header(0x49, 6, ring.dword(12));
    assert_eq!(ring.dword(13) & 0x3F, 0x14, "CACHE_FLUSH_AND_INV_TS_EVENT");
    assert_eq!((ring.dword(13) >> 8) & 0xF, 5, "end of pipe");
    assert_eq!(ring.dword(14) >> 29, 2, "DATA_SEL 64-bit");
    assert_eq!(ring.dword(15), FENCE_VA as u32);
    assert_eq!(ring.dword(16), (FENCE_VA >> 32) as u32);
    assert_eq!((ring.dword(17), ring.dword(18)), (1, 0), "fence value = seq 1");
    // wptr in dwords (Mesa: *wptr_bo_map += dwords written), doorbell at index 4 * 8 bytes.
    assert_eq!(q.fake.mem(3).u64_at(0), 20);
    assert_eq!(q.fake.mem(1).u64_at(4 * 8), 20);
    assert_eq!(q.s.wptr(), 20);

    // Completion: the fence BO reaching 1.
    assert!(matches!(
        q.s.wait_fence(f, Duration::from_millis(5)),
        Err(Error::Timeout { fence: Fence { seq: 1 }, .. })
    ));
    q.fake.mem(6).set_u64(0, 1);
    q.s.wait_fence(f, Duration::from_millis(5)).unwrap();
    assert_eq!(q.s.info().counters.retired, 1);
    assert_eq!(q.fake.events().len(), before, "waiting issues no call either");
    assert!(matches!(
        q.s.wait_fence(Fence { seq: 2 }, Duration::ZERO),
        Err(Error::UnknownFence(Fence { seq: 2 }))
    ));
}

#[test]
fn ring_space_is_bounded_by_retired_fences() {
    // 4 KiB ring = 1024 dwords, 20 dwords per submission: 51 fit (1020 < 1024).
    let mut q = open_with_ib(4096);
    for _ in 0..51 {
        q.s.submit_ib(q.ib_va, 8).unwrap();
    }
    assert_eq!(q.s.wptr(), 1020);
    // No fence retired: the 52nd waits for the oldest (seq 1), then times out.
    let e = q.s.submit_ib(q.ib_va, 8).unwrap_err();
    assert!(matches!(e, Error::Timeout { fence: Fence { seq: 1 }, .. }), "{e:?}");
    assert_eq!(q.s.wptr(), 1020, "nothing written on a refused submission");
    // The CP's read-pointer report is not what frees space: a report of everything consumed
    // (wrapped, 1020 % 1024) changes nothing while no fence retired.
    q.fake.mem(4).set_u64(0, 1020);
    assert!(matches!(q.s.submit_ib(q.ib_va, 8), Err(Error::Timeout { .. })));
    // Fence 1 retired: its 20 dwords are free, exactly one more submission fits.
    q.fake.mem(6).set_u64(0, 1);
    q.s.submit_ib(q.ib_va, 8).unwrap();
    assert_eq!(q.s.wptr(), 1040);
    let ring = q.fake.mem(2);
    // ACQUIRE_MEM fills ring indices 1020..1024 and 0..4; the IB follows at index 4.
    header(0x58, 6, ring.dword(1020));
    header(0x3F, 2, ring.dword(4));
    header(0x49, 6, ring.dword(8));
    assert_eq!((ring.dword(13), ring.dword(14)), (52, 0), "fence value 52");
    assert_eq!(q.fake.mem(1).u64_at(32), 1040);
    assert!(matches!(
        q.s.submit_ib(q.ib_va, 8),
        Err(Error::Timeout { fence: Fence { seq: 2 }, .. })
    ));
    // Every fence retired (a garbage report is ignored): the whole ring is free again.
    q.fake.mem(4).set_u64(0, 5000);
    q.fake.mem(6).set_u64(0, 52);
    for _ in 0..51 {
        q.s.submit_ib(q.ib_va, 8).unwrap();
    }
    assert_eq!(q.s.wptr(), 1040 + 1020);
    assert_eq!(q.s.info().counters.retired, 52);
}

#[test]
fn submit_rejects_bad_ibs_without_touching_the_ring() {
    let mut q = open_with_ib(MESA_RING);
    for (va, n) in [(q.ib_va, 0), (q.ib_va + 2, 4), (q.ib_va + 4092, 2), (0x1000, 4)] {
        let e = q.s.submit_ib(va, n).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    }
    assert_eq!(q.s.wptr(), 0);
    assert_eq!(q.fake.mem(1).u64_at(32), 0);
}

#[test]
fn caller_bos_are_released_before_the_queue_bos() {
    let q = open_with_ib(MESA_RING);
    let n = q.fake.events().len();
    let Q { fake, s, .. } = q;
    drop(s);
    let ev = fake.events();
    assert_eq!(ev[n], Ev::UserqFree(3));
    assert_eq!(ev[n + 1], Ev::VaUnmap { handle: 7, va: FENCE_VA + 0x1000 });
    assert_eq!(ev[n + 2], Ev::GemClose(7));
    assert_eq!(&ev[n + 3..], &expected_drop()[1..]);
    assert_eq!(fake.live(), 0);
}

/// A caller's GEM_VA MAP signals the next VM timeline point and `map_va` waits for it before
/// returning (nothing orders a user queue's doorbell with the page-table update); a failing
/// wait undoes the mapping.
#[test]
fn caller_mappings_wait_for_their_page_table_update() {
    let fake = Fake::new();
    let mut s = UmqSubmitter::open(driver(&fake), config()).unwrap();
    let bo = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let n = fake.events().len();
    let va = s.map_va(bo, None).unwrap();
    assert_eq!(
        &fake.events()[n..],
        &[
            // Every mapping is READABLE | WRITEABLE | EXECUTABLE, as Mesa's ac_drm_bo_va_op.
            Ev::VaMap { handle: 7, va, size: 4096, flags: PAGE_RWX, timeline: 1, point: 6 },
            Ev::VmWait { handle: 1, point: 6 },
        ]
    );
    s.unmap_va(bo).unwrap();
    // The wait fails (the event after the next MAP): the mapping is undone.
    let n = fake.events().len();
    fake.k().fail_at = Some((n + 1, 62));
    let e = s.map_va(bo, None).unwrap_err();
    assert_eq!(e, Error::Io { step: "SYNCOBJ_TIMELINE_WAIT (GEM_VA update)", errno: Errno::ETIME });
    assert!(matches!(fake.events()[n + 2], Ev::VaUnmap { handle: 7, .. }));
    drop(s);
    assert_eq!(fake.live(), 0);
}
