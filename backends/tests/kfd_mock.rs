//! KfdSubmitter against a mockall mock of the Driver: the exact call sequence of open and drop,
//! zero-ioctl submission, exception and timeout handling, and every open error path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockall::mock;
use pm4rt_backends::kfd::{self, KfdConfig, KfdSubmitter};
use pm4rt_core::abi::ioctl::{decode_arg, update_arg, write_arg};
use pm4rt_core::abi::kfd::*;
use pm4rt_core::{BoDesc, Driver, Errno, Error, Fd, MapAt, Mapping, Submitter};

mock! {
    Drv {}
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

const GPU_ID: u32 = 0x5E1A;
const WINDOW: u64 = 0x7F00_0000_0000;
const ROOT: &str = "/fake/topology";

/// Host memory behind a mock mmap; records every 64-bit store.
#[derive(Debug)]
struct Mem {
    name: String,
    bytes: Mutex<Vec<u8>>,
    log: Arc<Mutex<Vec<String>>>,
    stores: Mutex<Vec<(usize, u64)>>,
}

#[derive(Debug)]
struct MemMapping(Arc<Mem>, u64);

impl Mapping for MemMapping {
    fn addr(&self) -> u64 {
        self.1
    }
    fn len(&self) -> usize {
        self.0.bytes.lock().unwrap().len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        let b = self.0.bytes.lock().unwrap();
        out.copy_from_slice(b.get(offset..offset + out.len()).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let mut b = self.0.bytes.lock().unwrap();
        b.get_mut(offset..offset + data.len()).ok_or(Errno::EFAULT)?.copy_from_slice(data);
        Ok(())
    }
    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        let mut v = [0u8; 8];
        self.read(offset, &mut v)?;
        Ok(u64::from_le_bytes(v))
    }
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        self.0.stores.lock().unwrap().push((offset, value));
        self.write(offset, &value.to_le_bytes())
    }
}

impl Drop for MemMapping {
    fn drop(&mut self) {
        self.0.log.lock().unwrap().push(format!("munmap {}", self.0.name));
    }
}

/// What WAIT_EVENTS answers: the wait result and memory-exception data, if any.
type WaitAnswer = Box<dyn FnMut() -> (u32, Option<MemoryExceptionData>) + Send>;

/// The fake kernel behind the mock: answers, logs and counts.
#[derive(Default)]
struct Kernel {
    log: Arc<Mutex<Vec<String>>>,
    /// Fail the n-th (1-based) call of the log entry kind (e.g. "ALLOC_MEMORY_OF_GPU").
    fail: Option<(String, usize, Errno)>,
    counts: BTreeMap<String, usize>,
    next_handle: u64,
    allocs: BTreeMap<u64, (u64, u64)>, // handle -> (va, size)
    maps: BTreeMap<u64, Arc<Mem>>,     // va -> memory
    doorbell: Option<Arc<Mem>>,
    queue: Option<CreateQueueArgs>,
    first_event: Option<CreateEventArgs>,
    next_event: u32,
    wait_answer: Option<WaitAnswer>,
    live: i64,
}

impl Kernel {
    fn step(&mut self, kind: &str) -> Result<(), Errno> {
        self.log.lock().unwrap().push(kind.to_string());
        let n = self.counts.entry(kind.to_string()).or_insert(0);
        *n += 1;
        match &self.fail {
            Some((k, nth, e)) if k == kind && *nth == *n => Err(*e),
            _ => Ok(()),
        }
    }

    fn ioctl(&mut self, request: u32, arg: &mut [u8], user: &mut [&mut [u8]]) -> Result<(), Errno> {
        let name = find_ioctl(request).map(|d| d.name).unwrap_or("?");
        let kind = name.trim_start_matches("AMDKFD_IOC_").to_string();
        self.step(&kind)?;
        match request {
            AMDKFD_IOC_GET_VERSION => {
                write_arg(arg, &GetVersionArgs { major_version: 1, minor_version: 14 }).unwrap()
            }
            AMDKFD_IOC_ACQUIRE_VM => {}
            AMDKFD_IOC_RUNTIME_ENABLE => {
                // tinygrad's KFDIface: RUNTIME_ENABLE(mode_mask=0), r_debug left 0.
                assert_eq!(arg, &[0u8; 16], "RUNTIME_ENABLE with r_debug 0, mode_mask 0");
            }
            AMDKFD_IOC_GET_PROCESS_APERTURES_NEW => {
                let mut a: GetProcessAperturesNewArgs = decode_arg(arg).unwrap();
                if a.num_of_nodes == 0 {
                    a.num_of_nodes = 1;
                } else {
                    let ap = ProcessDeviceApertures {
                        gpuvm_base: 0x1_0000_0000,
                        gpuvm_limit: 0x7FFF_FFFF_FFFF,
                        gpu_id: GPU_ID,
                        ..Default::default()
                    };
                    user[0][..56].copy_from_slice(bytemuck::bytes_of(&ap));
                    a.num_of_nodes = 1;
                }
                update_arg(arg, &a).unwrap();
            }
            AMDKFD_IOC_ALLOC_MEMORY_OF_GPU => {
                let mut a: AllocMemoryOfGpuArgs = decode_arg(arg).unwrap();
                self.next_handle += 1;
                a.handle = (u64::from(GPU_ID) << 32) | self.next_handle;
                a.mmap_offset = self.next_handle << 20;
                self.allocs.insert(a.handle, (a.va_addr, a.size));
                self.live += 1;
                self.log.lock().unwrap().push(format!("  alloc {:#x} {:#x}", a.size, a.flags));
                update_arg(arg, &a).unwrap();
            }
            AMDKFD_IOC_FREE_MEMORY_OF_GPU => {
                self.live -= 1;
            }
            AMDKFD_IOC_MAP_MEMORY_TO_GPU | AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU => {
                let mut a: MapMemoryToGpuArgs = decode_arg(arg).unwrap();
                assert_eq!(a.n_devices, 1);
                assert_eq!(&user[0][..4], &GPU_ID.to_le_bytes());
                a.n_success = 1;
                self.live += if request == AMDKFD_IOC_MAP_MEMORY_TO_GPU { 1 } else { -1 };
                update_arg(arg, &a).unwrap();
            }
            AMDKFD_IOC_CREATE_EVENT => {
                let mut a: CreateEventArgs = decode_arg(arg).unwrap();
                if self.first_event.is_none() {
                    self.first_event = Some(a);
                }
                self.next_event += 1;
                a.event_id = self.next_event;
                a.event_slot_index = self.next_event;
                self.live += 1;
                update_arg(arg, &a).unwrap();
            }
            AMDKFD_IOC_DESTROY_EVENT | AMDKFD_IOC_DESTROY_QUEUE => self.live -= 1,
            AMDKFD_IOC_CREATE_QUEUE => {
                let mut a: CreateQueueArgs = decode_arg(arg).unwrap();
                self.queue = Some(a);
                a.queue_id = 3;
                a.doorbell_offset = doorbell_offset_for(GPU_ID, 0x2008);
                self.live += 1;
                update_arg(arg, &a).unwrap();
            }
            AMDKFD_IOC_WAIT_EVENTS => {
                let mut a: WaitEventsArgs = decode_arg(arg).unwrap();
                let (result, mem) = match self.wait_answer.as_mut() {
                    Some(f) => f(),
                    None => (KFD_IOC_WAIT_RESULT_TIMEOUT, None),
                };
                if let Some(m) = mem {
                    let mut e: KfdEventData = decode_arg(&user[0][48..96]).unwrap();
                    e.set_memory_exception(&m);
                    user[0][48..96].copy_from_slice(bytemuck::bytes_of(&e));
                }
                a.wait_result = result;
                update_arg(arg, &a).unwrap();
            }
            _ => panic!("unexpected ioctl {request:#x}"),
        }
        Ok(())
    }
}

struct Fixture {
    k: Arc<Mutex<Kernel>>,
    drv: Arc<MockDrv>,
}

const PROPS: &str = "simd_count 128\nsimd_per_cu 2\ngfx_target_version 120001\n\
    drm_render_minor 128\nnum_xcc 1\n";

fn fixture(fail: Option<(&str, usize, Errno)>) -> Fixture {
    let k = Arc::new(Mutex::new(Kernel {
        fail: fail.map(|(s, n, e)| (s.to_string(), n, e)),
        ..Default::default()
    }));
    let log = k.lock().unwrap().log.clone();
    let mut m = MockDrv::new();
    let kk = k.clone();
    m.expect_open().returning(move |p| {
        kk.lock().unwrap().step(&format!("open {p}"))?;
        kk.lock().unwrap().live += 1;
        Ok(if p == "/dev/kfd" { Fd(3) } else { Fd(4) })
    });
    let kk = k.clone();
    m.expect_close().returning(move |fd| {
        kk.lock().unwrap().live -= 1;
        kk.lock().unwrap().step(&format!("close {}", fd.0))
    });
    let kk = k.clone();
    m.expect_ioctl().returning(move |fd, req, arg, user| {
        assert_eq!(fd, Fd(3), "every KFD ioctl goes to /dev/kfd");
        kk.lock().unwrap().ioctl(req, arg, user)
    });
    let kk = k.clone();
    m.expect_mmap().returning(move |fd, off, len, at| {
        let mut g = kk.lock().unwrap();
        let (name, va) = match at {
            MapAt::Fixed(va) => {
                assert_eq!(fd, Fd(4), "BOs are mmapped from the render node");
                (format!("bo@{va:#x}"), va)
            }
            MapAt::Anywhere => {
                assert_eq!(fd, Fd(3));
                assert_eq!(off, doorbell_mmap_offset(doorbell_offset_for(GPU_ID, 0x2008)));
                assert_eq!(len, 8192);
                ("doorbell".to_string(), 0)
            }
        };
        g.step(&format!("mmap {}", if va == 0 { "doorbell" } else { "bo" }))?;
        let mem = Arc::new(Mem {
            name,
            bytes: Mutex::new(vec![0; len]),
            log: g.log.clone(),
            stores: Mutex::new(Vec::new()),
        });
        if va == 0 {
            g.doorbell = Some(mem.clone());
        } else {
            g.maps.insert(va, mem.clone());
        }
        Ok(Box::new(MemMapping(mem, va)) as Box<dyn Mapping>)
    });
    let kk = k.clone();
    m.expect_reserve_va().returning(move |len, _| {
        kk.lock().unwrap().step("reserve_va")?;
        kk.lock().unwrap().live += 1;
        assert_eq!(len as u64, KfdConfig::default().va_window);
        Ok(WINDOW)
    });
    let kk = k.clone();
    m.expect_release_va().returning(move |addr, _| {
        assert_eq!(addr, WINDOW);
        kk.lock().unwrap().live -= 1;
        kk.lock().unwrap().step("release_va")
    });
    m.expect_list_dir().returning(|p| {
        assert_eq!(p, format!("{ROOT}/nodes"));
        Ok(vec!["0".into(), "1".into()])
    });
    m.expect_read_file().returning(|p| match p.strip_prefix(ROOT) {
        Some("/nodes/0/gpu_id") => Ok("0\n".into()),
        Some("/nodes/1/gpu_id") => Ok(format!("{GPU_ID}\n")),
        Some("/nodes/1/properties") => Ok(PROPS.into()),
        _ => Err(Errno::ENOENT),
    });
    m.expect_kernel_release().returning(|| Ok("6.17.0".into()));
    let _ = log;
    Fixture { k, drv: Arc::new(m) }
}

fn config() -> KfdConfig {
    KfdConfig { topology_root: ROOT.into(), ..Default::default() }
}

fn open(f: &Fixture) -> pm4rt_core::Result<KfdSubmitter> {
    KfdSubmitter::open(f.drv.clone() as Arc<dyn Driver>, config())
}

fn log(f: &Fixture) -> Vec<String> {
    f.k.lock()
        .unwrap()
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !l.starts_with("  "))
        .cloned()
        .collect()
}

const BO_ALLOC: [&str; 3] = ["ALLOC_MEMORY_OF_GPU", "mmap bo", "MAP_MEMORY_TO_GPU"];

fn expected_open() -> Vec<String> {
    let mut v: Vec<&str> = vec![
        "open /dev/kfd",
        "GET_VERSION",
        "open /dev/dri/renderD128",
        "ACQUIRE_VM",
        "RUNTIME_ENABLE",
        "GET_PROCESS_APERTURES_NEW",
        "GET_PROCESS_APERTURES_NEW",
        "reserve_va",
        // event page: no CPU mapping
        "ALLOC_MEMORY_OF_GPU",
        "MAP_MEMORY_TO_GPU",
    ];
    for _ in 0..4 {
        v.extend(BO_ALLOC); // fence, ring, wptr, rptr
    }
    v.extend(["ALLOC_MEMORY_OF_GPU", "MAP_MEMORY_TO_GPU"]); // EOP
    v.extend(["ALLOC_MEMORY_OF_GPU", "MAP_MEMORY_TO_GPU"]); // CWSR
    v.extend(["CREATE_EVENT", "CREATE_EVENT", "CREATE_EVENT", "CREATE_QUEUE", "mmap doorbell"]);
    v.into_iter().map(String::from).collect()
}

#[test]
fn open_and_drop_follow_the_exact_sequence() {
    let f = fixture(None);
    let s = open(&f).unwrap();
    assert_eq!(log(&f), expected_open());
    {
        let k = f.k.lock().unwrap();
        let q = k.queue.unwrap();
        assert_eq!(q.queue_type, KFD_IOC_QUEUE_TYPE_COMPUTE);
        assert_eq!(q.ring_size, 65536);
        assert_eq!(q.gpu_id, GPU_ID);
        assert_eq!(q.eop_buffer_size, 4096);
        assert_eq!(q.ctx_save_restore_size, 0x1D4_7000);
        assert_eq!(q.ctl_stack_size, 0x7000);
        // Each queue address starts an allocation of exactly the size the kernel checks.
        let by_va: BTreeMap<u64, u64> = k.allocs.values().copied().collect();
        assert_eq!(by_va[&q.ring_base_address], 65536);
        assert_eq!(by_va[&q.write_pointer_address], 4096);
        assert_eq!(by_va[&q.read_pointer_address], 4096);
        assert_eq!(by_va[&q.eop_buffer_address], 4096);
        assert_eq!(by_va[&q.ctx_save_restore_address], 0x1D5_7000);
        // The first CREATE_EVENT carries the 32 KiB event page's ALLOC handle.
        let ev = k.first_event.unwrap();
        assert_eq!(ev.event_type, KFD_IOC_EVENT_SIGNAL);
        let (va, size) = k.allocs[&ev.event_page_offset];
        assert_eq!(size, 32768);
        assert!(va >= WINDOW);
    }
    // GET_VERSION, ACQUIRE_VM, RUNTIME_ENABLE, 2 x APERTURES, 7 x (ALLOC + MAP),
    // 3 x CREATE_EVENT, CREATE_QUEUE.
    assert_eq!(s.info().counters.ioctls, 23);
    let n = log(&f).len();
    drop(s);
    let tail: Vec<String> = log(&f)[n..].to_vec();
    let mut expect: Vec<&str> =
        vec!["munmap doorbell", "DESTROY_QUEUE", "DESTROY_EVENT", "DESTROY_EVENT", "DESTROY_EVENT"];
    expect.extend(["UNMAP_MEMORY_FROM_GPU", "FREE_MEMORY_OF_GPU"]); // CWSR
    expect.extend(["UNMAP_MEMORY_FROM_GPU", "FREE_MEMORY_OF_GPU"]); // EOP
    for _ in 0..4 {
        expect.extend(["UNMAP_MEMORY_FROM_GPU", "munmap", "FREE_MEMORY_OF_GPU"]);
    }
    expect.extend([
        "UNMAP_MEMORY_FROM_GPU",
        "FREE_MEMORY_OF_GPU",
        "release_va",
        "close 4",
        "close 3",
    ]);
    let tail: Vec<String> = tail
        .into_iter()
        .map(|l| if l.starts_with("munmap bo") { "munmap".into() } else { l })
        .collect();
    assert_eq!(tail, expect);
    assert_eq!(f.k.lock().unwrap().live, 0);
}

/// Every allocation, the queue's and the caller's, asks for writable and executable pages as
/// tinygrad's `KFDIface.alloc` does (KFD pages are always readable: `amdgpu_amdkfd_gpuvm.c:
/// get_pte_flags`). Literals from include/uapi/linux/kfd_ioctl.h.
#[test]
fn every_allocation_is_writable_and_executable() {
    const WRITABLE: u32 = 1 << 31;
    const EXECUTABLE: u32 = 1 << 30;
    let f = fixture(None);
    let mut s = open(&f).unwrap();
    s.alloc_bo(&pm4rt_core::BoDesc::gtt(4096)).unwrap();
    let allocs: Vec<u32> = f
        .k
        .lock()
        .unwrap()
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix("  alloc "))
        .map(|l| {
            u32::from_str_radix(l.rsplit(' ').next().unwrap().trim_start_matches("0x"), 16).unwrap()
        })
        .collect();
    assert_eq!(allocs.len(), 8, "7 queue buffers and the caller's");
    for flags in allocs {
        assert_eq!(flags & (WRITABLE | EXECUTABLE), WRITABLE | EXECUTABLE, "{flags:#x}");
    }
}

#[test]
fn submit_rings_the_doorbell_without_ioctls_and_retired_fences_cost_none() {
    let f = fixture(None);
    let mut s = open(&f).unwrap();
    let bo = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let va = s.map_va(bo, None).unwrap();
    let before = s.info().counters.ioctls;
    let f1 = s.submit_ib(va, 8).unwrap();
    let f2 = s.submit_ib(va, 8).unwrap();
    assert_eq!((f1.seq, f2.seq), (1, 2));
    assert_eq!(s.info().counters.ioctls, before);
    let k = f.k.lock().unwrap();
    let q = k.queue.unwrap();
    let wptr = &k.maps[&q.write_pointer_address];
    assert_eq!(*wptr.stores.lock().unwrap(), vec![(0, 28), (0, 56)]);
    let db = k.doorbell.as_ref().unwrap();
    assert_eq!(*db.stores.lock().unwrap(), vec![(8, 28), (8, 56)]);
    let ring = k.maps[&q.ring_base_address].bytes.lock().unwrap().clone();
    let dw = |i: usize| u32::from_le_bytes(ring[i * 4..i * 4 + 4].try_into().unwrap());
    // INDIRECT_BUFFER after the 8-dword ACQUIRE_MEM: header, VA lo, VA hi, size | VALID.
    assert_eq!(dw(8) >> 8 & 0xFF, 0x3F);
    assert_eq!(dw(9), va as u32);
    assert_eq!(dw(11) & 0xFFFFF, 8);
    // Second RELEASE_MEM: INT_SEL 2, DATA_SEL 1, data = event id 1, ctxid = 1.
    assert_eq!(dw(20) >> 8 & 0xFF, 0x49);
    assert_eq!(dw(22) >> 24 & 7, 2);
    assert_eq!(dw(22) >> 29, 1);
    assert_eq!((dw(25), dw(27)), (1, 1));
    // The GPU writes fence 2: both retire with no ioctl.
    let fence_mem = k
        .maps
        .iter()
        .find(|(v, _)| **v == (u64::from(dw(15)) | (u64::from(dw(16)) << 32)))
        .map(|(_, m)| m.clone())
        .unwrap();
    drop(k);
    fence_mem.bytes.lock().unwrap()[..8].copy_from_slice(&2u64.to_le_bytes());
    s.wait_fence(f2, Duration::from_millis(10)).unwrap();
    s.wait_fence(f1, Duration::from_millis(10)).unwrap();
    assert_eq!(s.info().counters.ioctls, before);
    assert_eq!(s.info().counters.retired, 2);
}

#[test]
fn memory_exception_is_a_fault_and_sticks() {
    let f = fixture(None);
    let mut s = open(&f).unwrap();
    let bo = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let va = s.map_va(bo, None).unwrap();
    let fence = s.submit_ib(va, 4).unwrap();
    f.k.lock().unwrap().wait_answer = Some(Box::new(|| {
        (
            KFD_IOC_WAIT_RESULT_COMPLETE,
            Some(MemoryExceptionData { va: 0xDEAD_0000, gpu_id: GPU_ID, ..Default::default() }),
        )
    }));
    let e = s.wait_fence(fence, Duration::from_secs(1)).unwrap_err();
    assert_eq!(e, Error::Fault { va: 0xDEAD_0000 });
    assert!(matches!(s.submit_ib(va, 4), Err(Error::DeviceLost { .. })));
    assert_eq!(s.wait_fence(fence, Duration::from_millis(1)), Err(e));
}

#[test]
fn timeout_is_bounded_and_typed() {
    let f = fixture(None);
    let mut s = open(&f).unwrap();
    let bo = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
    let va = s.map_va(bo, None).unwrap();
    let fence = s.submit_ib(va, 4).unwrap();
    let t = std::time::Instant::now();
    let e = s.wait_fence(fence, Duration::from_millis(20)).unwrap_err();
    assert!(matches!(e, Error::Timeout { fence: f, .. } if f == fence), "{e}");
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(f.k.lock().unwrap().counts["WAIT_EVENTS"] >= 1);
    let e = s.smoke(va, 4, Duration::from_millis(5)).unwrap_err().to_string();
    assert!(e.contains("queue 3 created but the fence did not retire within"), "{e}");
}

#[test]
fn every_open_step_failure_is_typed_and_leaks_nothing() {
    // Every call kind of open, each failing at each of its occurrences.
    let full = expected_open();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for k in &full {
        *kinds.entry(k.clone()).or_insert(0) += 1;
    }
    let steps: BTreeMap<&str, &str> = [
        ("open /dev/kfd", kfd::STEP_OPEN_KFD),
        ("GET_VERSION", kfd::STEP_GET_VERSION),
        ("open /dev/dri/renderD128", kfd::STEP_OPEN_RENDER),
        ("ACQUIRE_VM", kfd::STEP_ACQUIRE_VM),
        ("RUNTIME_ENABLE", kfd::STEP_RUNTIME_ENABLE),
        ("GET_PROCESS_APERTURES_NEW", kfd::STEP_APERTURES),
        ("reserve_va", kfd::STEP_RESERVE_VA),
        ("ALLOC_MEMORY_OF_GPU", kfd::STEP_ALLOC),
        ("mmap bo", kfd::STEP_MMAP),
        ("MAP_MEMORY_TO_GPU", kfd::STEP_MAP),
        ("CREATE_EVENT", kfd::STEP_CREATE_EVENT),
        ("CREATE_QUEUE", kfd::STEP_CREATE_QUEUE),
        ("mmap doorbell", kfd::STEP_MMAP_DOORBELL),
    ]
    .into_iter()
    .collect();
    let mut cases = 0;
    for (kind, n) in kinds {
        for nth in 1..=n {
            let f = fixture(Some((&kind, nth, Errno::ENOMEM)));
            let e = open(&f).err().unwrap_or_else(|| panic!("{kind} #{nth} did not fail"));
            assert_eq!(
                e,
                Error::Io { step: steps[kind.as_str()], errno: Errno::ENOMEM },
                "{kind} #{nth}"
            );
            assert_eq!(f.k.lock().unwrap().live, 0, "{kind} #{nth} leaked: {:?}", log(&f));
            cases += 1;
        }
    }
    assert_eq!(cases, full.len());
}

#[test]
fn old_kfd_and_missing_node_are_unsupported() {
    let f = fixture(None);
    let cfg = KfdConfig { gpu_id: Some(0x1234), ..config() };
    let e = KfdSubmitter::open(f.drv.clone() as Arc<dyn Driver>, cfg).unwrap_err();
    assert!(matches!(&e, Error::Unsupported(m) if m.contains("no KFD GPU node")), "{e}");
    assert_eq!(f.k.lock().unwrap().live, 0);
    let cfg = KfdConfig { ring_bytes: 3000, ..config() };
    assert!(matches!(
        KfdSubmitter::open(f.drv.clone() as Arc<dyn Driver>, cfg),
        Err(Error::InvalidArgument(_))
    ));
}
