//! The emulated amdgpu device driven with raw ioctls built from `pm4rt_core::abi` structs.
//!
//! Expected errnos come from the kernel functions cited in sim/src/emu/drm.rs; expected memory
//! contents are the literal values the test's own packets write.

use bytemuck::Pod;
use pm4rt_core::abi::drm::*;
use pm4rt_core::abi::ioctl::{arg_for, decode_arg, iowr, slice_bytes};
use pm4rt_core::driver::{user_ptr, Driver, Errno, Fd, MapAt, Mapping};
use pm4rt_core::pm4::{encode_packet, Packet, ReleaseMem, WriteData};
use pm4rt_sim::emu::{EmulatedDevice, Preset};

const NODE: &str = "/dev/dri/renderD128";
const IB_VA: u64 = 0x10_0000_0000;
const DATA_VA: u64 = 0x10_0010_0000;

fn call<T: Pod>(
    dev: &EmulatedDevice,
    fd: Fd,
    req: u32,
    input: &T,
    user: &mut [&mut [u8]],
) -> Result<Vec<u8>, Errno> {
    let mut arg = arg_for(req, input);
    dev.ioctl(fd, req, &mut arg, user)?;
    Ok(arg)
}

fn alloc_ctx(dev: &EmulatedDevice, fd: Fd) -> u32 {
    let a = CtxIn { op: AMDGPU_CTX_OP_ALLOC_CTX, ..Default::default() };
    let out = call(dev, fd, DRM_IOCTL_AMDGPU_CTX, &a, &mut []).unwrap();
    decode_arg::<CtxOutAlloc>(&out).unwrap().ctx_id
}

fn query2(dev: &EmulatedDevice, fd: Fd, ctx: u32) -> u64 {
    let a = CtxIn { op: AMDGPU_CTX_OP_QUERY_STATE2, ctx_id: ctx, ..Default::default() };
    let out = call(dev, fd, DRM_IOCTL_AMDGPU_CTX, &a, &mut []).unwrap();
    decode_arg::<CtxOutState>(&out).unwrap().flags
}

fn free_ctx(dev: &EmulatedDevice, fd: Fd, ctx: u32) -> Result<(), Errno> {
    let a = CtxIn { op: AMDGPU_CTX_OP_FREE_CTX, ctx_id: ctx, ..Default::default() };
    call(dev, fd, DRM_IOCTL_AMDGPU_CTX, &a, &mut []).map(|_| ())
}

fn create_bo(dev: &EmulatedDevice, fd: Fd, size: u64, flags: u64) -> Result<u32, Errno> {
    let a = GemCreateIn {
        bo_size: size,
        alignment: 4096,
        domains: AMDGPU_GEM_DOMAIN_GTT,
        domain_flags: flags,
    };
    let out = call(dev, fd, DRM_IOCTL_AMDGPU_GEM_CREATE, &a, &mut [])?;
    Ok(decode_arg::<GemCreateOut>(&out).unwrap().handle)
}

fn mmap_bo(dev: &EmulatedDevice, fd: Fd, handle: u32, len: usize) -> Box<dyn Mapping> {
    let out =
        call(dev, fd, DRM_IOCTL_AMDGPU_GEM_MMAP, &GemMmapIn { handle, pad: 0 }, &mut []).unwrap();
    let off = decode_arg::<GemMmapOut>(&out).unwrap().addr_ptr;
    dev.mmap(fd, off, len, MapAt::Anywhere).unwrap()
}

fn va_op(
    dev: &EmulatedDevice,
    fd: Fd,
    op: u32,
    handle: u32,
    va: u64,
    size: u64,
) -> Result<(), Errno> {
    let a = GemVa {
        handle,
        operation: op,
        flags: AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE | AMDGPU_VM_PAGE_EXECUTABLE,
        va_address: va,
        map_size: size,
        ..Default::default()
    };
    call(dev, fd, DRM_IOCTL_AMDGPU_GEM_VA, &a, &mut []).map(|_| ())
}

fn gem_close(dev: &EmulatedDevice, fd: Fd, handle: u32) -> Result<(), Errno> {
    call(dev, fd, DRM_IOCTL_GEM_CLOSE, &GemClose { handle, pad: 0 }, &mut []).map(|_| ())
}

fn ib_bytes(data_va: u64) -> Vec<u8> {
    let mut dw = encode_packet(&Packet::WriteData(WriteData {
        dst_sel: 5,
        no_increment: false,
        wr_confirm: true,
        cache_policy: 0,
        addr: data_va,
        data: vec![0xDEAD_BEEF, 0x1234_5678],
    }));
    dw.extend(encode_packet(&Packet::ReleaseMem(ReleaseMem {
        event_type: 0x14,
        event_index: 5,
        data_sel: 1,
        addr: data_va + 0x100,
        data: 7,
        ..Default::default()
    })));
    dw.iter().flat_map(|d| d.to_le_bytes()).collect()
}

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Submit one IB (`ib_len` bytes at `va`) with the given BO handles; returns the fence.
fn submit(
    dev: &EmulatedDevice,
    fd: Fd,
    ctx: u32,
    va: u64,
    ib_len: u32,
    bos: &[u32],
) -> Result<u64, Errno> {
    let ib = CsChunkIb {
        va_start: va,
        ib_bytes: ib_len,
        ip_type: AMDGPU_HW_IP_COMPUTE,
        ..Default::default()
    };
    let entries: Vec<BoListEntry> =
        bos.iter().map(|&h| BoListEntry { bo_handle: h, bo_priority: 0 }).collect();
    let mut entry_bytes = slice_bytes(&entries).to_vec();
    let mut ib_data = bytemuck::bytes_of(&ib).to_vec();
    let list = BoListIn {
        bo_number: bos.len() as u32,
        bo_info_size: 8,
        bo_info_ptr: user_ptr(&entry_bytes),
        ..Default::default()
    };
    let mut list_data = bytemuck::bytes_of(&list).to_vec();
    let mut chunks = vec![CsChunk {
        chunk_id: AMDGPU_CHUNK_ID_IB,
        length_dw: 8,
        chunk_data: user_ptr(&ib_data),
    }];
    if !bos.is_empty() {
        chunks.push(CsChunk {
            chunk_id: AMDGPU_CHUNK_ID_BO_HANDLES,
            length_dw: 6,
            chunk_data: user_ptr(&list_data),
        });
    }
    let mut chunk_bytes = slice_bytes(&chunks).to_vec();
    let ptrs: Vec<u64> = (0..chunks.len()).map(|i| user_ptr(&chunk_bytes[i * 16..])).collect();
    let mut ptr_bytes = slice_bytes(&ptrs).to_vec();
    let cs = CsIn {
        ctx_id: ctx,
        num_chunks: chunks.len() as u32,
        chunks: user_ptr(&ptr_bytes),
        ..Default::default()
    };
    let out = call(
        dev,
        fd,
        DRM_IOCTL_AMDGPU_CS,
        &cs,
        &mut [&mut ptr_bytes, &mut chunk_bytes, &mut ib_data, &mut list_data, &mut entry_bytes],
    )?;
    Ok(decode_arg::<CsOut>(&out).unwrap().handle)
}

fn wait(dev: &EmulatedDevice, fd: Fd, ctx: u32, handle: u64, ms: u64) -> Result<u64, Errno> {
    let a = WaitCsIn {
        handle,
        timeout: now_ns() + ms * 1_000_000,
        ip_type: AMDGPU_HW_IP_COMPUTE,
        ctx_id: ctx,
        ..Default::default()
    };
    let out = call(dev, fd, DRM_IOCTL_AMDGPU_WAIT_CS, &a, &mut [])?;
    Ok(decode_arg::<WaitCsOut>(&out).unwrap().status)
}

/// Open, a context, an IB BO and a data BO mapped at IB_VA / DATA_VA, the IB written.
struct Setup {
    dev: EmulatedDevice,
    fd: Fd,
    ctx: u32,
    ib: u32,
    data: u32,
    ib_map: Box<dyn Mapping>,
    data_map: Box<dyn Mapping>,
    ib_len: u32,
}

fn setup() -> Setup {
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(NODE).unwrap();
    let ctx = alloc_ctx(&dev, fd);
    let ib = create_bo(&dev, fd, 4096, 0).unwrap();
    let data = create_bo(&dev, fd, 4096, 0).unwrap();
    let ib_map = mmap_bo(&dev, fd, ib, 4096);
    let data_map = mmap_bo(&dev, fd, data, 4096);
    va_op(&dev, fd, AMDGPU_VA_OP_MAP, ib, IB_VA, 4096).unwrap();
    va_op(&dev, fd, AMDGPU_VA_OP_MAP, data, DATA_VA, 4096).unwrap();
    let bytes = ib_bytes(DATA_VA);
    ib_map.write(0, &bytes).unwrap();
    Setup { dev, fd, ctx, ib, data, ib_map, data_map, ib_len: bytes.len() as u32 }
}

fn teardown(s: Setup) {
    let Setup { dev, fd, ctx, ib, data, ib_map, data_map, .. } = s;
    va_op(&dev, fd, AMDGPU_VA_OP_UNMAP, ib, IB_VA, 4096).unwrap();
    va_op(&dev, fd, AMDGPU_VA_OP_UNMAP, data, DATA_VA, 4096).unwrap();
    free_ctx(&dev, fd, ctx).unwrap();
    gem_close(&dev, fd, ib).unwrap();
    gem_close(&dev, fd, data).unwrap();
    drop((ib_map, data_map));
    dev.close(fd).unwrap();
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

#[test]
fn submit_executes_and_retires() {
    let s = setup();
    let h = dev_submit(&s).unwrap();
    assert_eq!(h, 1);
    assert_eq!(wait(&s.dev, s.fd, s.ctx, h, 5000).unwrap(), AMDGPU_WAIT_CS_RETIRED);
    let mut out = [0u8; 8];
    s.data_map.read(0, &mut out).unwrap();
    assert_eq!(out, [0xEF, 0xBE, 0xAD, 0xDE, 0x78, 0x56, 0x34, 0x12]);
    assert_eq!(s.data_map.load_u64(0x100).unwrap(), 7);
    // Second submission: fence 2; CPU writes through the mapping are what the engine sees.
    s.data_map.write(0x100, &[0; 8]).unwrap();
    let h2 = dev_submit(&s).unwrap();
    assert_eq!(h2, 2);
    assert_eq!(wait(&s.dev, s.fd, s.ctx, h2, 5000).unwrap(), AMDGPU_WAIT_CS_RETIRED);
    assert_eq!(s.data_map.load_u64(0x100).unwrap(), 7);
    // A future fence is EINVAL (amdgpu_ctx_get_fence).
    assert_eq!(wait(&s.dev, s.fd, s.ctx, 3, 10), Err(Errno::EINVAL));
    assert_eq!(s.dev.live_handles().va_mappings, 2);
    teardown(s);
}

fn dev_submit(s: &Setup) -> Result<u64, Errno> {
    submit(&s.dev, s.fd, s.ctx, IB_VA, s.ib_len, &[s.ib, s.data])
}

#[test]
fn drm_ioctl_size_and_number_rules() {
    let s = setup();
    // Legacy 40-byte GEM_VA request: zero-extended to the kernel's 64 bytes.
    let legacy = pm4rt_core::abi::ioctl::iow(b'd', 0x48, 40);
    let extra = create_bo(&s.dev, s.fd, 4096, 0).unwrap();
    let a = GemVa {
        handle: extra,
        operation: AMDGPU_VA_OP_MAP,
        va_address: 0x20_0000_0000,
        map_size: 4096,
        ..Default::default()
    };
    let mut arg = bytemuck::bytes_of(&a)[..40].to_vec();
    s.dev.ioctl(s.fd, legacy, &mut arg, &mut []).unwrap();
    va_op(&s.dev, s.fd, AMDGPU_VA_OP_UNMAP, extra, 0x20_0000_0000, 4096).unwrap();
    gem_close(&s.dev, s.fd, extra).unwrap();
    // A CTX request encoding 8 bytes: only op/flags arrive, the rest is zero (ALLOC works).
    let short = iowr(b'd', 0x42, 8);
    let mut arg = vec![0u8; 8];
    arg[..4].copy_from_slice(&AMDGPU_CTX_OP_ALLOC_CTX.to_le_bytes());
    s.dev.ioctl(s.fd, short, &mut arg, &mut []).unwrap();
    let id = u32::from_le_bytes(arg[..4].try_into().unwrap());
    free_ctx(&s.dev, s.fd, id).unwrap();
    // Argument shorter than _IOC_SIZE: copy_from_user faults.
    let mut arg = vec![0u8; 8];
    assert_eq!(s.dev.ioctl(s.fd, DRM_IOCTL_AMDGPU_CTX, &mut arg, &mut []), Err(Errno::EFAULT));
    // Unknown nr: EINVAL; not a DRM type: ENOTTY; bad fd: EBADF.
    let mut arg = vec![0u8; 8];
    assert_eq!(s.dev.ioctl(s.fd, iowr(b'd', 0x5F, 8), &mut arg, &mut []), Err(Errno::EINVAL));
    assert_eq!(s.dev.ioctl(s.fd, iowr(b'K', 0x01, 8), &mut arg, &mut []), Err(Errno::ENOTTY));
    assert_eq!(
        s.dev.ioctl(Fd(999), DRM_IOCTL_AMDGPU_GEM_MMAP, &mut arg, &mut []),
        Err(Errno::EBADF)
    );
    teardown(s);
}

#[test]
fn gem_errors() {
    let s = setup();
    let (dev, fd) = (&s.dev, s.fd);
    assert_eq!(create_bo(dev, fd, 0, 0), Err(Errno::ENOSPC));
    assert_eq!(create_bo(dev, fd, 4096, AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS), Err(Errno::EINVAL));
    let bad_domain = GemCreateIn { bo_size: 4096, domains: 0x100, ..Default::default() };
    assert_eq!(
        call(dev, fd, DRM_IOCTL_AMDGPU_GEM_CREATE, &bad_domain, &mut []).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        call(dev, fd, DRM_IOCTL_AMDGPU_GEM_MMAP, &GemMmapIn { handle: 77, pad: 0 }, &mut []).err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(gem_close(dev, fd, 77), Err(Errno::EINVAL));
    let hidden = create_bo(dev, fd, 4096, AMDGPU_GEM_CREATE_NO_CPU_ACCESS).unwrap();
    assert_eq!(
        call(dev, fd, DRM_IOCTL_AMDGPU_GEM_MMAP, &GemMmapIn { handle: hidden, pad: 0 }, &mut [])
            .err(),
        Some(Errno::EPERM)
    );
    gem_close(dev, fd, hidden).unwrap();
    // mmap of an offset that is no object's start, and from a file without a handle.
    assert!(matches!(dev.mmap(fd, 0x1234_5000, 4096, MapAt::Anywhere), Err(Errno::EINVAL)));
    let out =
        call(dev, fd, DRM_IOCTL_AMDGPU_GEM_MMAP, &GemMmapIn { handle: s.data, pad: 0 }, &mut [])
            .unwrap();
    let off = decode_arg::<GemMmapOut>(&out).unwrap().addr_ptr;
    assert!(matches!(dev.mmap(fd, off, 8192, MapAt::Anywhere), Err(Errno::EINVAL)));
    let fd2 = dev.open(NODE).unwrap();
    assert!(matches!(dev.mmap(fd2, off, 4096, MapAt::Anywhere), Err(Errno::EACCES)));
    dev.close(fd2).unwrap();
    // Injected failure of the 2nd GEM_CREATE from now (count includes the calls above).
    let n = dev.ioctl_count(DRM_IOCTL_AMDGPU_GEM_CREATE);
    dev.fail_ioctl(DRM_IOCTL_AMDGPU_GEM_CREATE, n + 2, Errno::ENOMEM);
    let a = create_bo(dev, fd, 4096, 0).unwrap();
    assert_eq!(create_bo(dev, fd, 4096, 0), Err(Errno::ENOMEM));
    let b = create_bo(dev, fd, 4096, 0).unwrap();
    gem_close(dev, fd, a).unwrap();
    gem_close(dev, fd, b).unwrap();
    teardown(s);
}

#[test]
fn gem_va_errors() {
    let s = setup();
    let (dev, fd) = (&s.dev, s.fd);
    let bo = create_bo(dev, fd, 8192, 0).unwrap();
    let map = |va, size| va_op(dev, fd, AMDGPU_VA_OP_MAP, bo, va, size);
    assert_eq!(map(0x8000, 8192), Err(Errno::EINVAL), "below AMDGPU_VA_RESERVED_BOTTOM");
    assert_eq!(map(0x0000_8000_0000_0000, 8192), Err(Errno::EINVAL), "in the canonical hole");
    assert_eq!(map(0x0000_FFFF_FFFF_E000, 8192), Err(Errno::EINVAL), "in the top reserved area");
    assert_eq!(map(0x30_0000_1000 + 1, 8192), Err(Errno::EINVAL), "misaligned VA");
    assert_eq!(map(0x30_0000_0000, 4095), Err(Errno::EINVAL), "misaligned size");
    assert_eq!(map(0x30_0000_0000, 3 * 4096), Err(Errno::EINVAL), "beyond the BO");
    assert_eq!(map(IB_VA - 4096, 8192), Err(Errno::EINVAL), "overlaps the IB mapping");
    let bad_flags = GemVa {
        handle: bo,
        operation: AMDGPU_VA_OP_MAP,
        flags: 1 << 20,
        va_address: 0x30_0000_0000,
        map_size: 8192,
        ..Default::default()
    };
    assert_eq!(
        call(dev, fd, DRM_IOCTL_AMDGPU_GEM_VA, &bad_flags, &mut []).err(),
        Some(Errno::EINVAL)
    );
    let bad_op = GemVa { operation: 9, ..bad_flags };
    assert_eq!(
        call(dev, fd, DRM_IOCTL_AMDGPU_GEM_VA, &GemVa { flags: 0, ..bad_op }, &mut []).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(va_op(dev, fd, AMDGPU_VA_OP_MAP, 99, 0x30_0000_0000, 8192), Err(Errno::ENOENT));
    assert_eq!(va_op(dev, fd, AMDGPU_VA_OP_UNMAP, bo, 0x30_0000_0000, 8192), Err(Errno::ENOENT));
    // The high half above the hole is accepted (masked with AMDGPU_GMC_HOLE_MASK).
    map(0xFFFF_8000_1000_0000, 8192).unwrap();
    // GEM_CLOSE drops the BO's mappings.
    gem_close(dev, fd, bo).unwrap();
    assert_eq!(dev.live_handles().va_mappings, 2);
    teardown(s);
}

#[test]
fn cs_errors() {
    let s = setup();
    let (dev, fd) = (&s.dev, s.fd);
    // Unknown context.
    assert_eq!(submit(dev, fd, 42, IB_VA, s.ib_len, &[s.ib]), Err(Errno::EINVAL));
    // num_chunks 0.
    let cs = CsIn { ctx_id: s.ctx, ..Default::default() };
    assert_eq!(call(dev, fd, DRM_IOCTL_AMDGPU_CS, &cs, &mut []).err(), Some(Errno::EINVAL));
    // Chunk array pointer into no user buffer: EFAULT.
    let cs = CsIn { ctx_id: s.ctx, num_chunks: 1, chunks: 0xDEAD_0000, ..Default::default() };
    assert_eq!(call(dev, fd, DRM_IOCTL_AMDGPU_CS, &cs, &mut []).err(), Some(Errno::EFAULT));
    // Only a BO_HANDLES chunk: no IB, EINVAL. An IB chunk of 7 dwords: EINVAL. Unknown id.
    for (id, len) in [(AMDGPU_CHUNK_ID_BO_HANDLES, 6u32), (AMDGPU_CHUNK_ID_IB, 7), (0x99, 8)] {
        let mut data = vec![0u8; 32];
        let chunk = CsChunk { chunk_id: id, length_dw: len, chunk_data: user_ptr(&data) };
        let mut cb = bytemuck::bytes_of(&chunk).to_vec();
        let mut pb = user_ptr(&cb).to_le_bytes().to_vec();
        let cs = CsIn { ctx_id: s.ctx, num_chunks: 1, chunks: user_ptr(&pb), ..Default::default() };
        let r = call(dev, fd, DRM_IOCTL_AMDGPU_CS, &cs, &mut [&mut pb, &mut cb, &mut data]);
        assert_eq!(r.err(), Some(Errno::EINVAL), "chunk id {id} len {len}");
    }
    // Ring 4 of COMPUTE does not exist (amdgpu_ctx_get_entity).
    let ib = CsChunkIb {
        va_start: IB_VA,
        ib_bytes: s.ib_len,
        ip_type: AMDGPU_HW_IP_COMPUTE,
        ring: 4,
        ..Default::default()
    };
    let mut data = bytemuck::bytes_of(&ib).to_vec();
    let chunk = CsChunk { chunk_id: AMDGPU_CHUNK_ID_IB, length_dw: 8, chunk_data: user_ptr(&data) };
    let mut cb = bytemuck::bytes_of(&chunk).to_vec();
    let mut pb = user_ptr(&cb).to_le_bytes().to_vec();
    let cs = CsIn { ctx_id: s.ctx, num_chunks: 1, chunks: user_ptr(&pb), ..Default::default() };
    assert_eq!(
        call(dev, fd, DRM_IOCTL_AMDGPU_CS, &cs, &mut [&mut pb, &mut cb, &mut data]).err(),
        Some(Errno::EINVAL)
    );
    // Chunk data not supplied in `user`: EFAULT.
    let cs2 = CsIn { ctx_id: s.ctx, num_chunks: 1, chunks: user_ptr(&pb), ..Default::default() };
    assert_eq!(
        call(dev, fd, DRM_IOCTL_AMDGPU_CS, &cs2, &mut [&mut pb, &mut cb]).err(),
        Some(Errno::EFAULT)
    );
    // Nothing above created a fence.
    assert_eq!(dev_submit(&s).unwrap(), 1);
    assert_eq!(wait(dev, fd, s.ctx, 1, 5000).unwrap(), AMDGPU_WAIT_CS_RETIRED);
    teardown(s);
}

#[test]
fn non_resident_ib_faults_and_poisons_the_context() {
    let s = setup();
    let (dev, fd) = (&s.dev, s.fd);
    // No BO_HANDLES: the CS is accepted, the job fails like an evicted BO.
    let h = submit(dev, fd, s.ctx, IB_VA, s.ib_len, &[]).unwrap();
    assert_eq!(wait(dev, fd, s.ctx, h, 1000), Err(Errno::ETIME));
    assert_ne!(query2(dev, fd, s.ctx) & AMDGPU_CTX_QUERY2_FLAGS_GUILTY, 0);
    assert_eq!(dev_submit(&s), Err(Errno::ECANCELED));
    assert!(dev.last_error().unwrap().contains("ECANCELED"));
    // Only the data BO listed, not the IB's: same.
    let ctx2 = alloc_ctx(dev, fd);
    let h = submit(dev, fd, ctx2, IB_VA, s.ib_len, &[s.data]).unwrap();
    assert_eq!(wait(dev, fd, ctx2, h, 1000), Err(Errno::ETIME));
    free_ctx(dev, fd, ctx2).unwrap();
    let mut out = [0u8; 4];
    s.data_map.read(0, &mut out).unwrap();
    assert_eq!(out, [0; 4], "nothing executed");
    teardown(s);
}

/// amdgpu_gem.c: amdgpu_gem_va_map_flags puts a PTE permission bit only where the GEM_VA flag
/// asks for it; the GPU faults an access the page forbids like an unmapped one.
#[test]
fn page_flags_of_gem_va_are_enforced() {
    let s = setup();
    let (dev, fd) = (&s.dev, s.fd);
    // Remap the data BO readable only: the IB's WRITE_DATA into it faults (a GPU reset).
    va_op(dev, fd, AMDGPU_VA_OP_UNMAP, s.data, DATA_VA, 4096).unwrap();
    let ro = GemVa {
        handle: s.data,
        operation: AMDGPU_VA_OP_MAP,
        flags: AMDGPU_VM_PAGE_READABLE,
        va_address: DATA_VA,
        map_size: 4096,
        ..Default::default()
    };
    call(dev, fd, DRM_IOCTL_AMDGPU_GEM_VA, &ro, &mut []).unwrap();
    let h = dev_submit(&s).unwrap();
    assert_eq!(wait(dev, fd, s.ctx, h, 5000), Err(Errno::ETIME));
    assert_eq!(
        query2(dev, fd, s.ctx),
        AMDGPU_CTX_QUERY2_FLAGS_RESET | AMDGPU_CTX_QUERY2_FLAGS_GUILTY
    );
    let mut out = [0u8; 4];
    s.data_map.read(0, &mut out).unwrap();
    assert_eq!(out, [0; 4], "nothing written through a read-only page");
    // Writable again, but the IB's own mapping without READABLE: the CP cannot fetch it.
    va_op(dev, fd, AMDGPU_VA_OP_UNMAP, s.data, DATA_VA, 4096).unwrap();
    va_op(dev, fd, AMDGPU_VA_OP_MAP, s.data, DATA_VA, 4096).unwrap();
    va_op(dev, fd, AMDGPU_VA_OP_UNMAP, s.ib, IB_VA, 4096).unwrap();
    let unreadable =
        GemVa { handle: s.ib, flags: AMDGPU_VM_PAGE_WRITEABLE, va_address: IB_VA, ..ro };
    call(dev, fd, DRM_IOCTL_AMDGPU_GEM_VA, &unreadable, &mut []).unwrap();
    let ctx2 = alloc_ctx(dev, fd);
    let h = submit(dev, fd, ctx2, IB_VA, s.ib_len, &[s.ib, s.data]).unwrap();
    assert_eq!(wait(dev, fd, ctx2, h, 5000), Err(Errno::ETIME));
    s.data_map.read(0, &mut out).unwrap();
    assert_eq!(out, [0; 4]);
    free_ctx(dev, fd, ctx2).unwrap();
    va_op(dev, fd, AMDGPU_VA_OP_UNMAP, s.ib, IB_VA, 4096).unwrap();
    va_op(dev, fd, AMDGPU_VA_OP_MAP, s.ib, IB_VA, 4096).unwrap();
    teardown(s);
}

#[test]
fn engine_fault_is_a_gpu_reset() {
    let s = setup();
    let (dev, fd) = (&s.dev, s.fd);
    // An IB writing to an unmapped VA.
    let bad = ib_bytes(0x40_0000_0000);
    s.ib_map.write(0, &bad).unwrap();
    let h = dev_submit(&s).unwrap();
    assert_eq!(wait(dev, fd, s.ctx, h, 5000), Err(Errno::ETIME));
    let flags = query2(dev, fd, s.ctx);
    assert_eq!(flags, AMDGPU_CTX_QUERY2_FLAGS_RESET | AMDGPU_CTX_QUERY2_FLAGS_GUILTY);
    assert_eq!(dev_submit(&s), Err(Errno::ECANCELED));
    // A new context on the reset device works.
    s.ib_map.write(0, &ib_bytes(DATA_VA)).unwrap();
    let ctx2 = alloc_ctx(dev, fd);
    assert_eq!(query2(dev, fd, ctx2), 0);
    let h = submit(dev, fd, ctx2, IB_VA, s.ib_len, &[s.ib, s.data]).unwrap();
    assert_eq!(wait(dev, fd, ctx2, h, 5000).unwrap(), AMDGPU_WAIT_CS_RETIRED);
    free_ctx(dev, fd, ctx2).unwrap();
    teardown(s);
}

#[test]
fn hang_and_device_lost_injection() {
    let s = setup();
    let (dev, fd) = (&s.dev, s.fd);
    let h1 = dev_submit(&s).unwrap();
    assert_eq!(wait(dev, fd, s.ctx, h1, 5000).unwrap(), AMDGPU_WAIT_CS_RETIRED);
    dev.hang_after(1);
    let h2 = dev_submit(&s).unwrap();
    assert_eq!(wait(dev, fd, s.ctx, h2, 30).unwrap(), AMDGPU_WAIT_CS_BUSY);
    // A timeout already in the past polls.
    let past = WaitCsIn {
        handle: h2,
        timeout: 1,
        ip_type: AMDGPU_HW_IP_COMPUTE,
        ctx_id: s.ctx,
        ..Default::default()
    };
    let out = call(dev, fd, DRM_IOCTL_AMDGPU_WAIT_CS, &past, &mut []).unwrap();
    assert_eq!(decode_arg::<WaitCsOut>(&out).unwrap().status, AMDGPU_WAIT_CS_BUSY);
    dev.lose_device(true);
    assert_eq!(
        query2(dev, fd, s.ctx),
        AMDGPU_CTX_QUERY2_FLAGS_RESET
            | AMDGPU_CTX_QUERY2_FLAGS_VRAMLOST
            | AMDGPU_CTX_QUERY2_FLAGS_GUILTY
    );
    assert_eq!(wait(dev, fd, s.ctx, h2, 30), Err(Errno::ECANCELED));
    assert_eq!(dev_submit(&s), Err(Errno::ECANCELED));
    // QUERY_STATE (v1) reports the reset once.
    let q = CtxIn { op: AMDGPU_CTX_OP_QUERY_STATE, ctx_id: s.ctx, ..Default::default() };
    let st = |dev| {
        decode_arg::<CtxOutState>(&call(dev, fd, DRM_IOCTL_AMDGPU_CTX, &q, &mut []).unwrap())
            .unwrap()
            .reset_status
    };
    assert_eq!(st(dev), AMDGPU_CTX_UNKNOWN_RESET);
    assert_eq!(st(dev), AMDGPU_CTX_NO_RESET);
    teardown(s);
}

#[test]
fn ctx_errors() {
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(NODE).unwrap();
    assert_eq!(free_ctx(&dev, fd, 5), Err(Errno::EINVAL));
    let q = CtxIn { op: AMDGPU_CTX_OP_QUERY_STATE2, ctx_id: 5, ..Default::default() };
    assert_eq!(call(&dev, fd, DRM_IOCTL_AMDGPU_CTX, &q, &mut []).err(), Some(Errno::EINVAL));
    let hi = CtxIn {
        op: AMDGPU_CTX_OP_ALLOC_CTX,
        priority: AMDGPU_CTX_PRIORITY_HIGH,
        ..Default::default()
    };
    assert_eq!(call(&dev, fd, DRM_IOCTL_AMDGPU_CTX, &hi, &mut []).err(), Some(Errno::EACCES));
    let flags = CtxIn { op: AMDGPU_CTX_OP_ALLOC_CTX, flags: 1, ..Default::default() };
    assert_eq!(call(&dev, fd, DRM_IOCTL_AMDGPU_CTX, &flags, &mut []).err(), Some(Errno::EINVAL));
    // Garbage priority is NORMAL (accepted); ids are the lowest free.
    let junk = CtxIn { op: AMDGPU_CTX_OP_ALLOC_CTX, priority: 77, ..Default::default() };
    let id =
        decode_arg::<CtxOutAlloc>(&call(&dev, fd, DRM_IOCTL_AMDGPU_CTX, &junk, &mut []).unwrap())
            .unwrap()
            .ctx_id;
    assert_eq!(id, 1);
    assert_eq!(dev.live_handles().contexts, 1);
    // close() releases what the file owned.
    dev.close(fd).unwrap();
    assert!(dev.live_handles().is_zero());
    assert_eq!(dev.close(fd), Err(Errno::EBADF));
}

#[test]
fn info_queries() {
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(NODE).unwrap();
    let mut buf = vec![0xAAu8; 512];
    let q = Info {
        return_pointer: user_ptr(&buf),
        return_size: 448,
        query: AMDGPU_INFO_DEV_INFO,
        data: [0; 4],
    };
    call(&dev, fd, DRM_IOCTL_AMDGPU_INFO, &q, &mut [&mut buf]).unwrap();
    let di: InfoDevice = decode_arg(&buf).unwrap();
    assert_eq!(di.device_id, 0x7551);
    assert_eq!(di.family, 152);
    assert_eq!(di.virtual_address_offset, 0x1_0000);
    assert_eq!(di.virtual_address_max, 0x0000_8000_0000_0000);
    assert_eq!(di.high_va_offset, 0xFFFF_8000_0000_0000);
    assert_eq!(di.high_va_max, 0xFFFF_FFFF_FFBF_E000);
    assert_eq!(buf[448], 0xAA, "nothing beyond return_size");
    // A short return_size copies only that many bytes.
    let mut small = vec![0xAAu8; 16];
    let q8 = Info { return_pointer: user_ptr(&small), return_size: 8, ..q };
    call(&dev, fd, DRM_IOCTL_AMDGPU_INFO, &q8, &mut [&mut small]).unwrap();
    assert_eq!(&small[..4], &0x7551u32.to_le_bytes());
    assert_eq!(&small[8..], &[0xAA; 8]);
    // HW_IP_INFO COMPUTE.
    let mut ipb = vec![0u8; 40];
    let qi = Info::with_hw_ip(
        AMDGPU_INFO_HW_IP_INFO,
        InfoQueryHwIp { ip_type: AMDGPU_HW_IP_COMPUTE, ip_instance: 0 },
        user_ptr(&ipb),
        40,
    );
    call(&dev, fd, DRM_IOCTL_AMDGPU_INFO, &qi, &mut [&mut ipb]).unwrap();
    let ip: InfoHwIp = decode_arg(&ipb).unwrap();
    assert_eq!(
        (ip.hw_ip_version_major, ip.available_rings, ip.ip_discovery_version),
        (12, 0xF, 0x0C_0001)
    );
    // Errors: return_size 0 -> EINVAL; pointer outside `user` -> EFAULT; unknown query.
    let q0 = Info { return_size: 0, ..q };
    assert_eq!(
        call(&dev, fd, DRM_IOCTL_AMDGPU_INFO, &q0, &mut [&mut buf]).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(call(&dev, fd, DRM_IOCTL_AMDGPU_INFO, &q, &mut []).err(), Some(Errno::EFAULT));
    let qx = Info { query: 0x7F, ..q };
    assert_eq!(
        call(&dev, fd, DRM_IOCTL_AMDGPU_INFO, &qx, &mut [&mut buf]).err(),
        Some(Errno::EINVAL)
    );
    dev.close(fd).unwrap();
}

#[test]
fn files_nodes_and_presets() {
    let dev = EmulatedDevice::new(Preset::rx7900xtx_gfx1100()).unwrap();
    assert_eq!(dev.open("/dev/dri/renderD129"), Err(Errno::ENOENT));
    assert_eq!(dev.read_file("/sys/module/amdgpu/parameters/user_queue").unwrap(), "-1\n");
    assert_eq!(dev.list_dir("/sys/module/amdgpu").unwrap(), vec!["parameters".to_string()]);
    assert_eq!(dev.read_file("/sys/nope"), Err(Errno::ENOENT));
    assert_eq!(dev.kernel_release().unwrap(), "6.17.0");
    assert_eq!(dev.preset().device_id, 0x744C);
    let a = dev.reserve_va(1 << 20, 1 << 16).unwrap();
    assert_eq!(a % (1 << 16), 0);
    assert_eq!(dev.live_handles().va_reservations, 1);
    assert_eq!(dev.release_va(a, 4096), Err(Errno::EINVAL));
    dev.release_va(a, 1 << 20).unwrap();
    assert!(dev.live_handles().is_zero());
}

#[test]
fn mmap_keeps_the_bo_alive_after_close() {
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(NODE).unwrap();
    let bo = create_bo(&dev, fd, 4096, 0).unwrap();
    let m = mmap_bo(&dev, fd, bo, 4096);
    gem_close(&dev, fd, bo).unwrap();
    dev.close(fd).unwrap();
    m.store_u64(8, 0x55).unwrap();
    assert_eq!(m.load_u64(8).unwrap(), 0x55);
    assert!(m.write(4090, &[0; 8]).is_err());
    assert_eq!(dev.live_handles().bos, 1);
    assert_eq!(dev.live_handles().mmaps, 1);
    drop(m);
    assert!(dev.live_handles().is_zero());
}

#[test]
fn bo_list_longer_than_the_kernel_cap_is_einval() {
    // amdgpu_bo_create_list_entry_array: bo_number > AMDGPU_BO_LIST_MAX_ENTRIES (128 * 1024)
    // is EINVAL before anything is copied, whatever bo_info_size says (with size 0 every
    // entry is read from the same address: u32::MAX of them must not be built).
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(NODE).unwrap();
    let mut entries = vec![0u8; 8];
    for (n, size) in [(128 * 1024 + 1, 0u32), (u32::MAX, 0), (u32::MAX, 8)] {
        let list = BoListIn {
            operation: AMDGPU_BO_LIST_OP_CREATE,
            bo_number: n,
            bo_info_size: size,
            bo_info_ptr: user_ptr(&entries),
            ..Default::default()
        };
        let r = call(&dev, fd, DRM_IOCTL_AMDGPU_BO_LIST, &list, &mut [&mut entries]);
        assert_eq!(r.err(), Some(Errno::EINVAL), "bo_number {n} bo_info_size {size}");
    }
    dev.close(fd).unwrap();
}

#[test]
fn userq_mqd_size_is_the_ips_struct() {
    // mes_userq_mqd_create: mqd_size must be sizeof the IP's MQD (compute 8, GFX
    // drm_amdgpu_userq_mqd_gfx11 16, SDMA 8) and GFX / SDMA need a pointer (EINVAL);
    // memdup_user failing is ENOMEM.
    const RING: u64 = 0x20_0000_0000;
    const RPTR: u64 = 0x20_0010_0000;
    const WPTR: u64 = 0x20_0020_0000;
    const EOP: u64 = 0x20_0030_0000;
    let dev = EmulatedDevice::new(Preset::rx7900xtx_userq()).unwrap();
    let fd = dev.open(NODE).unwrap();
    for va in [RING, RPTR, WPTR, EOP] {
        let bo = create_bo(&dev, fd, 4096, 0).unwrap();
        va_op(&dev, fd, AMDGPU_VA_OP_MAP, bo, va, 4096).unwrap();
    }
    let db = GemCreateIn { bo_size: 4096, alignment: 4096, domains: 0x40, domain_flags: 0 };
    let out = call(&dev, fd, DRM_IOCTL_AMDGPU_GEM_CREATE, &db, &mut []).unwrap();
    let doorbell = decode_arg::<GemCreateOut>(&out).unwrap().handle;
    let mut mqd = [EOP.to_le_bytes(), 0u64.to_le_bytes()].concat();
    let q = UserqIn {
        op: AMDGPU_USERQ_OP_CREATE,
        ip_type: AMDGPU_HW_IP_COMPUTE,
        doorbell_handle: doorbell,
        queue_va: RING,
        queue_size: 4096,
        rptr_va: RPTR,
        wptr_va: WPTR,
        mqd: user_ptr(&mqd),
        mqd_size: 8,
        ..Default::default()
    };
    let create = |q: UserqIn, mqd: &mut [u8]| {
        call(&dev, fd, DRM_IOCTL_AMDGPU_USERQ, &q, &mut [mqd]).map(|_| ())
    };
    let gfx = UserqIn { ip_type: AMDGPU_HW_IP_GFX, ..q };
    let dma = UserqIn { ip_type: AMDGPU_HW_IP_DMA, ..q };
    for bad in [gfx, UserqIn { mqd: 0, mqd_size: 16, ..gfx }, UserqIn { mqd_size: 16, ..dma }] {
        assert_eq!(create(bad, &mut mqd), Err(Errno::EINVAL), "{bad:?}");
        let why = dev.last_error().unwrap();
        assert!(why.contains("mes_userq_mqd_create"), "{why}");
    }
    assert_eq!(create(UserqIn { mqd: 0, ..dma }, &mut mqd), Err(Errno::EINVAL));
    assert_eq!(create(UserqIn { mqd: 0xDEAD_0000, ..q }, &mut mqd), Err(Errno::ENOMEM));
    assert_eq!(create(UserqIn { mqd_size: 16, ..gfx }, &mut mqd), Ok(()));
    assert_eq!(create(dma, &mut mqd), Ok(()));
    assert_eq!(create(q, &mut mqd), Ok(()));
    assert_eq!(dev.live_handles().user_queues, 3);
    dev.close(fd).unwrap();
}

/// `amdgpu_cs.c: amdgpu_cs_p2_ib` takes any `ib_bytes`; `gfx_v12_0.c:
/// gfx_v12_0_ring_emit_ib_compute` ORs the length unmasked into the ring's INDIRECT_BUFFER dw3,
/// whose IB_SIZE \[19:0\] is all the CP reads: an IB of 2^20 + n dwords runs its first n only.
#[test]
fn an_ib_of_2_pow_20_plus_n_dwords_runs_only_its_first_n_dwords() {
    const BIG_VA: u64 = 0x20_0000_0000;
    let s = setup();
    let (dev, fd) = (&s.dev, s.fd);
    // Head: WRITE_DATA 0xDEADBEEF, 0x12345678 to DATA_VA and a RELEASE_MEM of 7 to DATA_VA+0x100.
    let head: Vec<u32> = ib_bytes(DATA_VA)
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    // Tail: WRITE_DATA 0xBAD to DATA_VA + 0x200, the IB's last packet.
    let tail = encode_packet(&Packet::WriteData(WriteData {
        dst_sel: 5,
        wr_confirm: true,
        addr: DATA_VA + 0x200,
        data: vec![0xBAD],
        ..Default::default()
    }));
    let total = (1usize << 20) + head.len();
    let mut nops = pm4rt_core::pm4::Builder::growable(pm4rt_core::GfxTarget::Gfx1201);
    nops.nop(total - head.len() - tail.len() - 1).unwrap();
    let mut ib = head.clone();
    ib.extend(nops.into_vec());
    ib.extend(&tail);
    assert_eq!(ib.len(), total);
    let size = (total as u64 * 4).next_multiple_of(4096);
    let big = create_bo(dev, fd, size, 0).unwrap();
    let map = mmap_bo(dev, fd, big, size as usize);
    map.write(0, bytemuck::cast_slice(&ib)).unwrap();
    va_op(dev, fd, AMDGPU_VA_OP_MAP, big, BIG_VA, size).unwrap();
    let h = submit(dev, fd, s.ctx, BIG_VA, total as u32 * 4, &[big, s.data]).unwrap();
    assert_eq!(wait(dev, fd, s.ctx, h, 5000).unwrap(), AMDGPU_WAIT_CS_RETIRED);
    let mut out = [0u8; 4];
    s.data_map.read(0, &mut out).unwrap();
    assert_eq!(u32::from_le_bytes(out), 0xDEAD_BEEF, "the first n dwords ran");
    assert_eq!(s.data_map.load_u64(0x100).unwrap(), 7);
    s.data_map.read(0x200, &mut out).unwrap();
    assert_eq!(u32::from_le_bytes(out), 0, "IB_SIZE is 20 bits: the tail never ran");
    va_op(dev, fd, AMDGPU_VA_OP_UNMAP, big, BIG_VA, size).unwrap();
    gem_close(dev, fd, big).unwrap();
    drop(map);
    teardown(s);
}

/// INFO UQ_FW_AREAS(COMPUTE): Linux 6.17's `amdgpu_info_ioctl` handles only
/// `AMDGPU_HW_IP_GFX` there (EINVAL for COMPUTE); a later kernel's
/// `amdgpu_userq_metadata_info_compute` answers `{eop_size 2048, eop_alignment 256}`
/// (`GFX11_MEC_HPD_SIZE` / `GFX12_MEC_HPD_SIZE`, 256).
#[test]
fn uq_fw_areas_compute_is_einval_on_6_17_and_answered_by_a_newer_kernel() {
    let query = |preset: Preset| {
        let dev = EmulatedDevice::new(preset).unwrap();
        let fd = dev.open(NODE).unwrap();
        let mut buf = vec![0xAAu8; 16];
        let q = Info::with_hw_ip(
            AMDGPU_INFO_UQ_FW_AREAS,
            InfoQueryHwIp { ip_type: AMDGPU_HW_IP_COMPUTE, ip_instance: 0 },
            user_ptr(&buf),
            16,
        );
        let r = call(&dev, fd, DRM_IOCTL_AMDGPU_INFO, &q, &mut [&mut buf]).map(|_| ());
        dev.close(fd).unwrap();
        r.map(|()| (buf[..4].to_vec(), buf[4..8].to_vec()))
    };
    for p in [Preset::r9700_gfx1201(), Preset::rx7900xtx_gfx1100(), Preset::rx7900xtx_userq()] {
        assert_eq!(p.kernel_release, "6.17.0");
        assert_eq!(query(p.clone()), Err(Errno::EINVAL), "{}", p.name);
    }
    let newer = Preset { uq_fw_areas_compute: true, ..Preset::rx7900xtx_userq() };
    assert_eq!(query(newer), Ok((2048u32.to_le_bytes().to_vec(), 256u32.to_le_bytes().to_vec())));
}

fn syncobj_create(dev: &EmulatedDevice, fd: Fd, flags: u32) -> Result<u32, Errno> {
    let out =
        call(dev, fd, DRM_IOCTL_SYNCOBJ_CREATE, &SyncobjCreate { handle: 0, flags }, &mut [])?;
    Ok(decode_arg::<SyncobjCreate>(&out).unwrap().handle)
}

fn syncobj_destroy(dev: &EmulatedDevice, fd: Fd, handle: u32, pad: u32) -> Result<(), Errno> {
    call(dev, fd, DRM_IOCTL_SYNCOBJ_DESTROY, &SyncobjDestroy { handle, pad }, &mut []).map(|_| ())
}

/// TIMELINE_WAIT of one (handle, point) with flags, `timeout_ns` from now (0: a poll).
fn timeline_wait(
    dev: &EmulatedDevice,
    fd: Fd,
    handle: u32,
    point: u64,
    flags: u32,
    timeout_ns: u64,
) -> Result<(), Errno> {
    let mut h = handle.to_le_bytes();
    let mut p = point.to_le_bytes();
    let deadline = if timeout_ns == 0 { 0 } else { now_ns() + timeout_ns };
    let w = SyncobjTimelineWait {
        handles: user_ptr(&h),
        points: user_ptr(&p),
        timeout_nsec: deadline as i64,
        count_handles: 1,
        flags,
        ..Default::default()
    };
    call(dev, fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &w, &mut [&mut h[..], &mut p[..]]).map(|_| ())
}

fn va_map_signalling(
    dev: &EmulatedDevice,
    fd: Fd,
    handle: u32,
    va: u64,
    syncobj: u32,
    point: u64,
) -> Result<(), Errno> {
    let a = GemVa {
        handle,
        operation: AMDGPU_VA_OP_MAP,
        flags: AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE | AMDGPU_VM_PAGE_EXECUTABLE,
        va_address: va,
        map_size: 4096,
        vm_timeline_point: point,
        vm_timeline_syncobj_out: syncobj,
        ..Default::default()
    };
    call(dev, fd, DRM_IOCTL_AMDGPU_GEM_VA, &a, &mut []).map(|_| ())
}

/// drm_syncobj.c: create / destroy / timeline-wait argument checks, and live-handle counting.
#[test]
fn syncobj_ioctls_are_strict_and_counted() {
    const ALL_SUBMIT: u32 =
        DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(NODE).unwrap();
    // drm_syncobj_create_ioctl: unknown flags.
    assert_eq!(syncobj_create(&dev, fd, 2), Err(Errno::EINVAL));
    let a = syncobj_create(&dev, fd, 0).unwrap();
    let b = syncobj_create(&dev, fd, DRM_SYNCOBJ_CREATE_SIGNALED).unwrap();
    assert_eq!((a, b), (1, 2), "idr_alloc from 1");
    assert_eq!(dev.live_handles().syncobjs, 2);
    // drm_syncobj_timeline_wait_ioctl: unknown flags; no handles is a success; an unknown
    // handle is ENOENT; a point without a fence is EINVAL, or ETIME with WAIT_FOR_SUBMIT.
    assert_eq!(timeline_wait(&dev, fd, a, 1, 1 << 4, 1_000_000), Err(Errno::EINVAL));
    let none = SyncobjTimelineWait { count_handles: 0, ..Default::default() };
    assert!(call(&dev, fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &none, &mut []).is_ok());
    assert_eq!(timeline_wait(&dev, fd, 9, 1, ALL_SUBMIT, 1_000_000), Err(Errno::ENOENT));
    assert_eq!(
        timeline_wait(&dev, fd, a, 1, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, 1_000_000),
        Err(Errno::EINVAL)
    );
    assert_eq!(timeline_wait(&dev, fd, a, 1, ALL_SUBMIT, 1_000_000), Err(Errno::ETIME));
    // A handle array outside the caller's memory: EFAULT.
    let bad = SyncobjTimelineWait { handles: 0x10, count_handles: 1, ..Default::default() };
    assert_eq!(
        call(&dev, fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &bad, &mut []).err(),
        Some(Errno::EFAULT)
    );
    // The created-signalled one: point 0 is its (signalled) fence.
    assert_eq!(timeline_wait(&dev, fd, b, 0, ALL_SUBMIT, 0), Ok(()));
    // GEM_VA with a syncobj that does not exist: ENOENT.
    let bo = create_bo(&dev, fd, 4096, 0).unwrap();
    assert_eq!(va_map_signalling(&dev, fd, bo, DATA_VA, 7, 1), Err(Errno::ENOENT));
    assert_eq!(dev.live_handles().va_mappings, 0);
    // drm_syncobj_destroy_ioctl: pad != 0 and unknown handles are EINVAL.
    assert_eq!(syncobj_destroy(&dev, fd, a, 1), Err(Errno::EINVAL));
    assert_eq!(syncobj_destroy(&dev, fd, 9, 0), Err(Errno::EINVAL));
    syncobj_destroy(&dev, fd, a, 0).unwrap();
    assert_eq!(syncobj_destroy(&dev, fd, a, 0), Err(Errno::EINVAL));
    assert_eq!(dev.live_handles().syncobjs, 1);
    // Closing the file releases the rest (drm_syncobj_release).
    dev.close(fd).unwrap();
    assert!(dev.live_handles().is_zero(), "{:?}", dev.live_handles());
}

/// A GEM_VA mapping is in the VM at once but the GPU sees it only once its page-table update
/// completed: when its timeline point is waited for (a poll does not wait), or at a CS.
#[test]
fn gem_va_mapping_is_invisible_to_the_gpu_until_its_update_is_waited() {
    const ALL_SUBMIT: u32 =
        DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
    let s = setup(); // IB and data BOs mapped without a syncobj
    let (dev, fd) = (&s.dev, s.fd);
    let mem = dev.memory();
    assert!(mem.read_u32(IB_VA).is_err(), "update not done yet");
    let sync = syncobj_create(dev, fd, 0).unwrap();
    let bo = create_bo(dev, fd, 4096, 0).unwrap();
    const VA: u64 = DATA_VA + 0x10_0000;
    va_map_signalling(dev, fd, bo, VA, sync, 1).unwrap();
    assert!(mem.read_u32(VA).is_err(), "the GPU does not see the new mapping yet");
    // A poll (deadline already passed) reports it unsignalled and does not complete it.
    assert_eq!(timeline_wait(dev, fd, sync, 1, ALL_SUBMIT, 0), Err(Errno::ETIME));
    assert!(mem.read_u32(VA).is_err());
    // Waiting for the point completes it and every earlier update (updates are in order).
    timeline_wait(dev, fd, sync, 1, ALL_SUBMIT, 1_000_000_000).unwrap();
    assert_eq!(mem.read_u32(VA), Ok(0));
    assert!(mem.read_u32(IB_VA).is_ok(), "an earlier update completed with it");
    // WAIT_AVAILABLE only waits for the fence to exist.
    let bo2 = create_bo(dev, fd, 4096, 0).unwrap();
    va_map_signalling(dev, fd, bo2, VA + 0x1000, sync, 2).unwrap();
    timeline_wait(dev, fd, sync, 2, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE, 1_000_000).unwrap();
    assert!(mem.read_u32(VA + 0x1000).is_err());
    // A CS waits for every update of the VM (amdgpu_cs_vm_handling).
    let h = dev_submit(&s).unwrap();
    assert_eq!(wait(dev, fd, s.ctx, h, 5000).unwrap(), AMDGPU_WAIT_CS_RETIRED);
    assert_eq!(mem.read_u32(VA + 0x1000), Ok(0));
    // Unmapping a mapping whose update is pending forgets it; closing its handle too.
    let bo3 = create_bo(dev, fd, 4096, 0).unwrap();
    va_map_signalling(dev, fd, bo3, VA + 0x2000, sync, 3).unwrap();
    va_op(dev, fd, AMDGPU_VA_OP_UNMAP, bo3, VA + 0x2000, 4096).unwrap();
    timeline_wait(dev, fd, sync, 3, ALL_SUBMIT, 1_000_000).unwrap();
    assert!(mem.read_u32(VA + 0x2000).is_err());
    for h in [bo, bo2, bo3] {
        gem_close(dev, fd, h).unwrap();
    }
    syncobj_destroy(dev, fd, sync, 0).unwrap();
    teardown(s);
}
