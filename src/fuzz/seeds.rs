//! The seed corpus of every target, built from real inputs: PM4 streams from pm4rt's
//! [`Builder`] and launcher (the packets pm4rt hands the kernel), the committed kernel code
//! objects, the headers of the committed GGUF fixtures and hand-built GGUF files, and ioctl
//! programs that replay the emulated device's own test flows (CS on mapped BOs, KFD memory).
//!
//! `tests/fuzz_corpus.rs` checks that `fuzz/corpus/<target>/` holds every seed (and writes
//! them when `PM4RT_WRITE_FUZZ_CORPUS=1`).

use pm4rt_core::abi::drm::*;
use pm4rt_core::abi::kfd::*;
use pm4rt_core::code_object::CodeObject;
use pm4rt_core::launch::{emit_dispatch, Launch};
use pm4rt_core::pm4::{Builder, FenceInterrupt};
use pm4rt_core::{GfxTarget, Tier};
use pm4rt_kernels::{ArgKind, KernelId, Target};

use super::emu_ioctl::{Ioctl, Patch, PatchValue, ProgramBuilder};
use super::engine::{CODE_VA, DATA_VA, IB_VA, KERNARG_BYTES, KERNARG_VA};

/// One seed: target name, file name, bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut v = Vec::new();
    v.extend(pm4_decode());
    v.extend(engine());
    v.extend(code_object());
    v.extend(gguf());
    v.extend(emu_ioctl());
    v.extend(isa());
    v
}

fn le(dw: &[u32]) -> Vec<u8> {
    dw.iter().flat_map(|d| d.to_le_bytes()).collect()
}

fn targets() -> [(GfxTarget, Target, &'static str); 2] {
    [
        (GfxTarget::Gfx1201, Target::Gfx1201, "gfx1201"),
        (GfxTarget::Gfx1100, Target::Gfx1100, "gfx1100"),
    ]
}

/// PM4 streams pm4rt builds: fences, cache control, writes, copies, waits, IB calls.
fn streams(gfx: GfxTarget, data_va: u64, ib_va: u64) -> Vec<(&'static str, Vec<u32>)> {
    let mut out = Vec::new();
    let mut put = |name, f: &dyn Fn(&mut Builder<'_>)| {
        let mut b = Builder::growable(gfx);
        f(&mut b);
        out.push((name, b.into_vec()));
    };
    put("fence", &|b| {
        b.acquire_mem_full().unwrap();
        b.release_mem_fence(data_va, 7, FenceInterrupt::None).unwrap();
    });
    put("fence_irq", &|b| {
        b.release_mem_fence(data_va + 8, 1, FenceInterrupt::AfterWrite { ctxid: 3 }).unwrap();
    });
    put("write_copy_wait", &|b| {
        b.write_data(data_va, &[1, 2, 3, 4]).unwrap();
        b.copy_mem_to_mem(data_va, data_va + 0x40, true).unwrap();
        b.copy_imm_to_mem(0xABCD, data_va + 0x80, false).unwrap();
        b.wait_mem_eq(data_va + 0x80, 0xABCD, 0xFFFF_FFFF, 10).unwrap();
        b.cs_partial_flush().unwrap();
        b.pad_ib().unwrap();
    });
    put("ib_call", &|b| {
        b.indirect_buffer(ib_va + 0x1000, 8, false).unwrap();
        b.nop(3).unwrap();
        b.indirect_buffer(ib_va + 0x2000, 8, true).unwrap();
    });
    put("sh_regs", &|b| {
        b.set_sh_reg(0x204, &[1, 2, 3]).unwrap();
        b.set_user_data_u64(0, KERNARG_VA).unwrap();
        b.dispatch_direct([1, 1, 1], 1).unwrap();
    });
    out
}

/// The dispatch of `id` as pm4rt's launcher emits it, image at [`CODE_VA`], and its kernarg
/// bytes (pointers into the data BO, counts of 64, eps 1e-5).
fn dispatch(gfx: GfxTarget, co: &CodeObject, id: KernelId) -> (Vec<u32>, Vec<u8>) {
    let kernel = co.kernel(id.name()).expect("kernel in the committed code object");
    let mut b = Builder::growable(gfx);
    let l = Launch {
        kernel,
        image_va: CODE_VA,
        grid: [1, 1, 1],
        workgroup: None,
        kernarg_va: KERNARG_VA,
        tier: Tier::Sim,
    };
    emit_dispatch(&mut b, gfx, &l).expect("launch of a committed kernel");
    b.release_mem_fence(DATA_VA + 0xF000, 1, FenceInterrupt::None).unwrap();
    let mut karg = vec![0u8; KERNARG_BYTES];
    for (i, a) in id.signature().iter().enumerate() {
        let v: u64 = match a.kind {
            ArgKind::Ptr => DATA_VA + 0x1000 * (i as u64 + 1),
            ArgKind::U32 => 64,
            ArgKind::F32 => u64::from(1e-5f32.to_bits()),
        };
        let at = a.offset as usize;
        let n = a.size as usize;
        if at + n <= karg.len() {
            karg[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
    }
    (b.into_vec(), karg)
}

fn pm4_decode() -> Vec<Seed> {
    let mut v = Vec::new();
    for (gfx, target, name) in targets() {
        let sel = u8::from(gfx == GfxTarget::Gfx1100);
        for (s, dw) in streams(gfx, DATA_VA, IB_VA) {
            v.push(("pm4_decode", format!("{name}_{s}"), [vec![sel], le(&dw)].concat()));
        }
        let co = CodeObject::load(pm4rt_kernels::code_object(target), gfx).unwrap();
        let (dw, _) = dispatch(gfx, &co, KernelId::CopyU32);
        v.push(("pm4_decode", format!("{name}_dispatch"), [vec![sel], le(&dw)].concat()));
    }
    v
}

fn engine() -> Vec<Seed> {
    let mut v = Vec::new();
    for (gfx, target, name) in targets() {
        let flag = u8::from(gfx == GfxTarget::Gfx1100);
        let zero = vec![0u8; KERNARG_BYTES];
        for (s, mut dw) in streams(gfx, DATA_VA, IB_VA) {
            if s == "ib_call" {
                // The called IBs: 8 dwords at IB_VA + 0x1000 and + 0x2000.
                for at in [0x1000 / 4, 0x2000 / 4] {
                    let mut sub = Builder::growable(gfx);
                    sub.write_data(DATA_VA + 4 * at as u64, &[at]).unwrap();
                    sub.pad_to(8).unwrap();
                    let sub = sub.into_vec();
                    dw.resize(at as usize, 0);
                    dw.extend(&sub);
                }
            }
            v.push(("engine", format!("{name}_{s}"), [vec![flag], zero.clone(), le(&dw)].concat()));
        }
        let (_, fence) = streams(gfx, DATA_VA, IB_VA).swap_remove(0);
        let ring = [vec![flag | 4], zero.clone(), le(&fence)].concat();
        v.push(("engine", format!("{name}_ring_fence"), ring));
        let co = CodeObject::load(pm4rt_kernels::code_object(target), gfx).unwrap();
        for id in KernelId::ALL {
            let (dw, karg) = dispatch(gfx, &co, id);
            v.push((
                "engine",
                format!("{name}_{}", id.name()),
                [vec![flag], karg, le(&dw)].concat(),
            ));
        }
        let (dw, karg) = dispatch(gfx, &co, KernelId::CopyU32);
        let strict = [vec![flag | 2], karg, le(&dw)].concat();
        v.push(("engine", format!("{name}_copy_strict"), strict));
    }
    v
}

fn code_object() -> Vec<Seed> {
    let mut v = Vec::new();
    for (i, (_, target, name)) in targets().into_iter().enumerate() {
        let bytes = pm4rt_kernels::code_object(target);
        v.push(("code_object", format!("{name}_raw"), [&[0u8][..], bytes].concat()));
        // Mode 1 / 2: the committed object itself, then one flipped byte in the note area.
        v.push(("code_object", format!("{name}_committed"), vec![i as u8 + 1, 0]));
        let mut patched = vec![i as u8 + 1, 0];
        patched.extend(0x300u32.to_le_bytes());
        patched.push(0x01);
        v.push(("code_object", format!("{name}_patched"), patched));
    }
    // MessagePack documents (msgpack.org front page example; nested arrays and maps).
    let front = b"\x82\xa7compact\xc3\xa6schema\x00";
    v.push(("code_object", "msgpack_front_page".into(), [&[3u8][..], front].concat()));
    let nested = b"\x81\xaeamdhsa.kernels\x91\x82\xa5.name\xa1k\xa5.args\x90";
    v.push(("code_object", "msgpack_kernels".into(), [&[3u8][..], nested].concat()));
    v
}

/// A GGUF v3 file with one KV of each value type and one F32 tensor (layout as in
/// `crate::gguf`'s module docs).
fn gguf_all_types() -> Vec<u8> {
    fn s(b: &mut Vec<u8>, x: &str) {
        b.extend((x.len() as u64).to_le_bytes());
        b.extend(x.as_bytes());
    }
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend(14u64.to_le_bytes());
    let scalars: [(u32, &[u8]); 11] = [
        (0, &[1]),
        (1, &[0xff]),
        (2, &[1, 0]),
        (3, &[0xff, 0xff]),
        (4, &[5, 0, 0, 0]),
        (5, &[0xfb, 0xff, 0xff, 0xff]),
        (6, &[0, 0, 0x80, 0x3f]),
        (7, &[1]),
        (10, &[9, 0, 0, 0, 0, 0, 0, 0]),
        (11, &[0xf7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        (12, &[0, 0, 0, 0, 0, 0, 0xf0, 0x3f]),
    ];
    for (ty, val) in scalars {
        s(&mut b, &format!("k.type{ty}"));
        b.extend(ty.to_le_bytes());
        b.extend(val);
    }
    s(&mut b, "k.string");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "hello");
    s(&mut b, "k.strings");
    b.extend(9u32.to_le_bytes());
    b.extend(8u32.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    s(&mut b, "a");
    s(&mut b, "bc");
    s(&mut b, "k.nested");
    b.extend(9u32.to_le_bytes());
    b.extend(9u32.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend(4u32.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend([1, 0, 0, 0, 2, 0, 0, 0]);
    s(&mut b, "t");
    b.extend(2u32.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    b.extend(1.5f32.to_le_bytes());
    b.extend((-2.0f32).to_le_bytes());
    b
}

fn gguf() -> Vec<Seed> {
    let mut v = vec![("gguf", "all_value_types".to_string(), gguf_all_types())];
    // The header, metadata and tensor infos of the committed fixtures (their data is
    // megabytes; the reader then reports the first tensor outside the file).
    for (name, bytes) in [
        ("dmmv_q4_0_header", &include_bytes!("../../tests/fixtures/dmmv_q4_0.gguf")[..4096]),
        ("dmmv_q8_0_header", &include_bytes!("../../tests/fixtures/dmmv_q8_0.gguf")[..4096]),
    ] {
        v.push(("gguf", name.to_string(), bytes.to_vec()));
    }
    v
}

fn pod<T: bytemuck::Pod>(t: &T) -> Vec<u8> {
    bytemuck::bytes_of(t).to_vec()
}

fn io(fd: u8, arg: Vec<u8>) -> Ioctl {
    Ioctl { fd, arg, ..Ioctl::default() }
}

const IB_BO_VA: u64 = 0x10_0000_0000;
const DATA_BO_VA: u64 = 0x10_0010_0000;

/// Open, context, two BOs mapped for the GPU and the CPU, an IB written, a CS with an IB
/// chunk and a BO_HANDLES chunk, WAIT_CS, then teardown through close.
fn drm_cs_program(preset: u8, gfx: GfxTarget) -> Vec<u8> {
    let mut p = ProgramBuilder::new(preset);
    p.open(0);
    let ctx = p.ioctl(
        DRM_IOCTL_AMDGPU_CTX,
        io(0, pod(&CtxIn { op: AMDGPU_CTX_OP_ALLOC_CTX, ..Default::default() })),
    );
    let create = GemCreateIn {
        bo_size: 4096,
        alignment: 4096,
        domains: AMDGPU_GEM_DOMAIN_GTT,
        domain_flags: 0,
    };
    let ib = p.ioctl(DRM_IOCTL_AMDGPU_GEM_CREATE, io(0, pod(&create)));
    let data = p.ioctl(DRM_IOCTL_AMDGPU_GEM_CREATE, io(0, pod(&create)));
    let handle = |i: usize| Patch { target: 0, offset: 0, value: PatchValue::Pool32(i as u16) };
    let mut mm = io(0, pod(&GemMmapIn { handle: 0, pad: 0 }));
    mm.patches.push(handle(ib));
    let mm_off = p.ioctl(DRM_IOCTL_AMDGPU_GEM_MMAP, mm);
    for (h, va) in [(ib, IB_BO_VA), (data, DATA_BO_VA)] {
        let a = GemVa {
            operation: AMDGPU_VA_OP_MAP,
            flags: AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE | AMDGPU_VM_PAGE_EXECUTABLE,
            va_address: va,
            map_size: 4096,
            ..Default::default()
        };
        let mut v = io(0, pod(&a));
        v.patches.push(handle(h));
        p.ioctl(DRM_IOCTL_AMDGPU_GEM_VA, v);
    }
    p.mmap(0, mm_off as u8, 1);
    let mut b = Builder::growable(gfx);
    b.write_data(DATA_BO_VA, &[0xDEAD_BEEF]).unwrap();
    b.release_mem_fence(DATA_BO_VA + 0x100, 7, FenceInterrupt::None).unwrap();
    b.pad_ib().unwrap();
    let ib_dw = b.into_vec();
    p.write(0, 0, &le(&ib_dw));
    // CS: buffer 0 = chunk pointer array, 1 = chunks, 2 = IB chunk data, 3 = BO list data
    // with its entries appended.
    let ib_chunk = CsChunkIb {
        va_start: IB_BO_VA,
        ib_bytes: 4 * ib_dw.len() as u32,
        ip_type: AMDGPU_HW_IP_COMPUTE,
        ..Default::default()
    };
    let list = BoListIn { bo_number: 2, bo_info_size: 8, ..Default::default() };
    let mut list_bytes = pod(&list);
    let list_len = list_bytes.len() as u16;
    list_bytes.extend([0u8; 16]);
    let chunks = [
        CsChunk { chunk_id: AMDGPU_CHUNK_ID_IB, length_dw: 8, chunk_data: 0 },
        CsChunk { chunk_id: AMDGPU_CHUNK_ID_BO_HANDLES, length_dw: 6, chunk_data: 0 },
    ];
    let chunk_bytes: Vec<u8> = chunks.iter().flat_map(pod).collect();
    let mut cs = io(0, pod(&CsIn { num_chunks: 2, ..Default::default() }));
    cs.buffers = vec![
        (16, vec![0; 16]),
        (chunk_bytes.len() as u16, chunk_bytes),
        (32, pod(&ib_chunk)),
        (list_bytes.len() as u16, list_bytes),
    ];
    let ptr = |target: u8, offset: u16, buffer: u8, at: u16| Patch {
        target,
        offset,
        value: PatchValue::UserPtr { buffer, offset: at },
    };
    cs.patches = vec![
        Patch { target: 0, offset: 0, value: PatchValue::Pool32(ctx as u16) },
        ptr(0, 16, 0, 0),
        ptr(1, 0, 1, 0),
        ptr(1, 8, 1, 16),
        ptr(2, 8, 2, 0),
        ptr(2, 24, 3, 0),
        ptr(4, 16, 3, list_len),
        Patch { target: 4, offset: list_len, value: PatchValue::Pool32(ib as u16) },
        Patch { target: 4, offset: list_len + 8, value: PatchValue::Pool32(data as u16) },
    ];
    let fence = p.ioctl(DRM_IOCTL_AMDGPU_CS, cs);
    let mut wait = io(0, pod(&WaitCsIn { ip_type: AMDGPU_HW_IP_COMPUTE, ..Default::default() }));
    wait.patches = vec![
        Patch { target: 0, offset: 0, value: PatchValue::Pool64(fence as u16) },
        Patch { target: 0, offset: 8, value: PatchValue::DeadlineMs(10) },
        Patch { target: 0, offset: 28, value: PatchValue::Pool32(ctx as u16) },
    ];
    p.ioctl(DRM_IOCTL_AMDGPU_WAIT_CS, wait);
    p.unmap(0);
    p.close(0);
    p.finish()
}

/// KFD: version, ACQUIRE_VM on a render node, apertures, a GTT allocation mapped to the GPU,
/// an event and a zero-timeout wait on it.
fn kfd_program() -> Vec<u8> {
    let mut p = ProgramBuilder::new(0);
    p.open(1);
    p.open(0);
    p.ioctl(AMDKFD_IOC_GET_VERSION, io(0, vec![]));
    let mut acquire = io(0, pod(&AcquireVmArgs { drm_fd: 0, gpu_id: pm4rt_sim::emu::EMU_GPU_ID }));
    acquire.patches.push(Patch { target: 0, offset: 0, value: PatchValue::Fd(1) });
    p.ioctl(AMDKFD_IOC_ACQUIRE_VM, acquire);
    let mut ap = io(0, pod(&GetProcessAperturesNewArgs { num_of_nodes: 1, ..Default::default() }));
    ap.buffers = vec![(56, vec![])];
    ap.patches.push(Patch {
        target: 0,
        offset: 0,
        value: PatchValue::UserPtr { buffer: 0, offset: 0 },
    });
    p.ioctl(AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, ap);
    let alloc = AllocMemoryOfGpuArgs {
        va_addr: pm4rt_sim::emu::GPUVM_BASE + 0x10_0000,
        size: 8192,
        gpu_id: pm4rt_sim::emu::EMU_GPU_ID,
        flags: KFD_IOC_ALLOC_MEM_FLAGS_GTT
            | KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE
            | KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE,
        ..Default::default()
    };
    let a = p.ioctl(AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, io(0, pod(&alloc)));
    let mut map = io(0, pod(&MapMemoryToGpuArgs { n_devices: 1, ..Default::default() }));
    map.buffers = vec![(4, pm4rt_sim::emu::EMU_GPU_ID.to_le_bytes().to_vec())];
    map.patches = vec![
        Patch { target: 0, offset: 0, value: PatchValue::Pool64((a + 4) as u16) },
        Patch { target: 0, offset: 8, value: PatchValue::UserPtr { buffer: 0, offset: 0 } },
    ];
    p.ioctl(AMDKFD_IOC_MAP_MEMORY_TO_GPU, map);
    // GTT memory is mapped through the render node (the DRM mmap offset KFD returns).
    p.mmap(1, (a + 6) as u8, 2);
    p.write(0, 0, &[1, 2, 3, 4]);
    let ev = p.ioctl(
        AMDKFD_IOC_CREATE_EVENT,
        io(0, pod(&CreateEventArgs { event_type: KFD_IOC_EVENT_SIGNAL, ..Default::default() })),
    );
    let mut wait = io(0, pod(&WaitEventsArgs { num_events: 1, ..Default::default() }));
    // One kfd_event_data (48 bytes, event_id at 40).
    wait.buffers = vec![(48, vec![])];
    wait.patches = vec![
        Patch { target: 0, offset: 0, value: PatchValue::UserPtr { buffer: 0, offset: 0 } },
        Patch { target: 1, offset: 40, value: PatchValue::Pool32((ev + 6) as u16) },
    ];
    p.ioctl(AMDKFD_IOC_WAIT_EVENTS, wait);
    p.unmap(0);
    p.finish()
}

/// INFO queries (device info, compute HW IP info, user-queue firmware areas).
fn info_program(preset: u8) -> Vec<u8> {
    let mut p = ProgramBuilder::new(preset);
    p.open(0);
    let mut queries = vec![AMDGPU_INFO_DEV_INFO, AMDGPU_INFO_HW_IP_INFO];
    if preset == 2 {
        queries.push(AMDGPU_INFO_UQ_FW_AREAS);
    }
    for query in queries {
        // data[0]: the IP type of HW_IP_INFO / UQ_FW_AREAS (compute).
        let data = [AMDGPU_HW_IP_COMPUTE, 0, 0, 0];
        let mut i = io(0, pod(&Info { return_size: 256, query, data, ..Default::default() }));
        i.buffers = vec![(256, vec![])];
        i.patches.push(Patch {
            target: 0,
            offset: 0,
            value: PatchValue::UserPtr { buffer: 0, offset: 0 },
        });
        p.ioctl(DRM_IOCTL_AMDGPU_INFO, i);
    }
    p.finish()
}

/// Every kernel's machine code from the committed code objects (user SGPRs pointing at the
/// data BO), and three snippets (encodings from `llvm-mc-19 -show-encoding`, identical on
/// gfx1100 and gfx1201): `s_endpgm`; `s_branch -1` (a loop the step bound stops); and
/// `v_sin_f32 v0, v1` then `s_endpgm` (an instruction the interpreter may lack).
fn isa() -> Vec<Seed> {
    const S_ENDPGM: u32 = 0xBFB0_0000;
    const S_BRANCH_BACK: u32 = 0xBFA0_FFFF;
    const V_SIN_F32: u32 = 0x7E00_6B01;
    let sgprs = vec![0u8; super::isa::USER_SGPR_BYTES];
    let mut v = Vec::new();
    for (gfx, target, name) in targets() {
        let flag = u8::from(gfx == GfxTarget::Gfx1100);
        let co = CodeObject::load(pm4rt_kernels::code_object(target), gfx).unwrap();
        for id in KernelId::ALL {
            let code = co.code_bytes(co.kernel(id.name()).unwrap());
            // Two waves, s[0:1] = the data BO.
            let bytes = [vec![flag | 2 | 8], sgprs.clone(), code.to_vec()].concat();
            v.push(("isa", format!("{name}_{}", id.name()), bytes));
        }
        for (snippet, code) in [
            ("endpgm", le(&[S_ENDPGM])),
            ("branch_loop", le(&[S_BRANCH_BACK])),
            ("sin_endpgm", le(&[V_SIN_F32, S_ENDPGM])),
        ] {
            v.push((
                "isa",
                format!("{name}_{snippet}"),
                [vec![flag], sgprs.clone(), code].concat(),
            ));
        }
    }
    v
}

fn emu_ioctl() -> Vec<Seed> {
    vec![
        ("emu_ioctl", "drm_cs_gfx1201".into(), drm_cs_program(0, GfxTarget::Gfx1201)),
        ("emu_ioctl", "drm_cs_gfx1100".into(), drm_cs_program(1, GfxTarget::Gfx1100)),
        ("emu_ioctl", "kfd_memory_event".into(), kfd_program()),
        ("emu_ioctl", "info_gfx1201".into(), info_program(0)),
        ("emu_ioctl", "info_userq".into(), info_program(2)),
    ]
}
