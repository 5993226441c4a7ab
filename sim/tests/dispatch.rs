//! Kernels dispatched through a plain SimSubmitter: the code object image uploaded into an
//! executable BO, a kernarg BO, data BOs, an IB built with `emit_dispatch` +
//! `release_mem_fence`. Expected values are hand-computed from the kernel contract
//! (kernels/README.md) and GGML's block layouts, not by the code under test.

use std::time::Duration;

use pm4rt_core::code_object::CodeObject;
use pm4rt_core::launch::{emit_barrier, emit_dispatch, Launch};
use pm4rt_core::pm4::{regs, Builder, FenceInterrupt};
use pm4rt_core::{BoDesc, BoHandle, Error, GfxTarget, Submitter};
use pm4rt_kernels::KernelId;
use pm4rt_sim::engine::EngineConfig;
use pm4rt_sim::{SimConfig, SimSubmitter};

const WAIT: Duration = Duration::from_secs(10);
const DATA: u64 = 0x10_0000_0000;
const DATA_SIZE: u64 = 1 << 20;
const UNMAPPED: u64 = 0x70_0000_0000;

struct Rig {
    sim: SimSubmitter,
    gfx: GfxTarget,
    co: CodeObject,
    image_va: u64,
    kernarg: BoHandle,
    kernarg_va: u64,
    ib: BoHandle,
    ib_va: u64,
    fence_va: u64,
    data: BoHandle,
    seq: u64,
}

/// One dispatch: kernel, kernarg values (by declared name), grid X.
struct Call<'a> {
    id: KernelId,
    args: &'a [(&'a str, u64)],
    groups: u32,
}

impl Rig {
    fn new(gfx: GfxTarget) -> Rig {
        let cfg = SimConfig {
            engine: EngineConfig { gfx, ..EngineConfig::default() },
            ..SimConfig::default()
        };
        let mut sim = SimSubmitter::with_config(cfg).unwrap();
        let target = match gfx {
            GfxTarget::Gfx1100 => pm4rt_kernels::Target::Gfx1100,
            GfxTarget::Gfx1201 => pm4rt_kernels::Target::Gfx1201,
        };
        let co = CodeObject::load(pm4rt_kernels::code_object(target), gfx).unwrap();
        let code = sim.alloc_bo(&BoDesc::code(co.image().len() as u64)).unwrap();
        let image_va = sim.map_va(code, None).unwrap();
        sim.write_bo(code, 0, co.image()).unwrap();
        let kernarg = sim.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let kernarg_va = sim.map_va(kernarg, None).unwrap();
        let ib = sim.alloc_bo(&BoDesc::gtt(65536)).unwrap();
        let ib_va = sim.map_va(ib, None).unwrap();
        let fence = sim.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let fence_va = sim.map_va(fence, None).unwrap();
        let data = sim.alloc_bo(&BoDesc::gtt(DATA_SIZE)).unwrap();
        assert_eq!(sim.map_va(data, Some(DATA)).unwrap(), DATA);
        Rig { sim, gfx, co, image_va, kernarg, kernarg_va, ib, ib_va, fence_va, data, seq: 0 }
    }

    fn put(&mut self, off: u64, bytes: &[u8]) {
        self.sim.write_bo(self.data, off, bytes).unwrap();
    }

    fn put_f32(&mut self, off: u64, v: &[f32]) {
        let b: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        self.put(off, &b);
    }

    fn get_f32(&self, off: u64, n: usize) -> Vec<f32> {
        let mut b = vec![0u8; 4 * n];
        self.sim.read_bo(self.data, off, &mut b).unwrap();
        b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }

    fn get_u64(&self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.sim.read_bo(self.data, off, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    /// The kernarg segment of `c`, laid out at the declared offsets (kernels/README.md).
    fn kernarg_bytes(c: &Call<'_>) -> Vec<u8> {
        let mut b = vec![0u8; c.id.kernarg_size() as usize];
        for (name, v) in c.args {
            let a = c.id.signature().iter().find(|a| a.name == *name).unwrap();
            let o = a.offset as usize;
            b[o..o + a.size as usize].copy_from_slice(&v.to_le_bytes()[..a.size as usize]);
        }
        b
    }

    /// Emit the calls (64-byte kernarg slots, barriers between them) into one IB ending
    /// with a RELEASE_MEM fence, submit it, wait. `tweak` packets are inserted just before
    /// each DISPATCH_DIRECT (negative tests only); `kernarg_va` overrides every call's.
    fn run_with(
        &mut self,
        calls: &[Call<'_>],
        image_va: u64,
        kernarg_va: Option<u64>,
        tweak: &[u32],
    ) -> Result<(), Error> {
        let mut ib: Vec<u32> = Vec::new();
        for (i, c) in calls.iter().enumerate() {
            let slot = 64 * i as u64;
            self.sim.write_bo(self.kernarg, slot, &Self::kernarg_bytes(c)).unwrap();
            let mut b = Builder::growable(self.gfx);
            if i > 0 {
                emit_barrier(&mut b).unwrap();
            }
            let kernel = self.co.kernel(c.id.name()).unwrap();
            let l = Launch {
                kernel,
                image_va,
                grid: [c.groups, 1, 1],
                workgroup: None,
                kernarg_va: kernarg_va.unwrap_or(self.kernarg_va + slot),
                tier: pm4rt_core::Tier::Sim,
            };
            emit_dispatch(&mut b, self.gfx, &l).unwrap();
            let mut stream = b.into_vec();
            // DISPATCH_DIRECT (5 dwords) and its CS partial flush (2) end the dispatch.
            let dispatch = stream.split_off(stream.len() - 7);
            ib.extend(stream);
            ib.extend_from_slice(tweak);
            ib.extend(dispatch);
        }
        self.seq += 1;
        let mut f = Builder::growable(self.gfx);
        f.release_mem_fence(self.fence_va, self.seq, FenceInterrupt::None).unwrap();
        ib.extend(f.into_vec());
        let bytes: Vec<u8> = ib.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.sim.write_bo(self.ib, 0, &bytes).unwrap();
        let fence = self.sim.submit_ib(self.ib_va, ib.len() as u32)?;
        self.sim.wait_fence(fence, WAIT)
    }

    fn run(&mut self, calls: &[Call<'_>]) -> Result<(), Error> {
        self.run_with(calls, self.image_va, None, &[])
    }
}

fn a(off: u64) -> u64 {
    DATA + off
}

/// `key(f)` of kernels/README.md: bits ^ 0x80000000 for a clear sign bit, else !bits.
fn packed(value_bits: u32, index: u32) -> u64 {
    let key = if value_bits & 0x8000_0000 == 0 { value_bits ^ 0x8000_0000 } else { !value_bits };
    (u64::from(key) << 32) | u64::from(0xFFFF_FFFF - index)
}

#[test]
fn dmmv_f32_small_and_grid_limit() {
    for gfx in [GfxTarget::Gfx1201, GfxTarget::Gfx1100] {
        let mut r = Rig::new(gfx);
        // W is 10 x 3: row i = [i, 1, -2]; x = [1, 2, 3] -> y[i] = i + 2 - 6 = i - 4.
        let w: Vec<f32> = (0..10).flat_map(|i| [i as f32, 1.0, -2.0]).collect();
        r.put_f32(0, &w);
        r.put_f32(0x1000, &[1.0, 2.0, 3.0]);
        r.put_f32(0x2000, &[99.0; 10]);
        let args = [("w", a(0)), ("x", a(0x1000)), ("y", a(0x2000)), ("rows", 10), ("cols", 3)];
        // One workgroup = 8 rows: rows 8 and 9 stay untouched.
        r.run(&[Call { id: KernelId::DmmvF32, args: &args, groups: 1 }]).unwrap();
        let want1: Vec<f32> = (0..10).map(|i| if i < 8 { i as f32 - 4.0 } else { 99.0 }).collect();
        assert_eq!(r.get_f32(0x2000, 10), want1, "{gfx}");
        r.run(&[Call { id: KernelId::DmmvF32, args: &args, groups: 2 }]).unwrap();
        let want2: Vec<f32> = (0..10).map(|i| i as f32 - 4.0).collect();
        assert_eq!(r.get_f32(0x2000, 10), want2, "{gfx}");
    }
}

#[test]
fn dmmv_q4_0_one_block() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    // GGML block_q4_0 {f16 d; u8 qs[16]}: element j = (qs[j] & 15) - 8, element j + 16 =
    // (qs[j] >> 4) - 8. d = 2.0 (f16 0x4000); qs = 0x98: low 8 -> 0, high 9 -> 1.
    let mut blk = vec![0x00, 0x40];
    blk.extend([0x98u8; 16]);
    // Row 1: d = 1.0 (0x3C00), qs = 0x0F: low 15 -> 7, high 0 -> -8.
    blk.extend([0x00, 0x3C]);
    blk.extend([0x0Fu8; 16]);
    r.put(0, &blk);
    let x: Vec<f32> = (0..32).map(|k| k as f32).collect();
    r.put_f32(0x1000, &x);
    let args = [("w", a(0)), ("x", a(0x1000)), ("y", a(0x2000)), ("rows", 2), ("cols", 32)];
    r.run(&[Call { id: KernelId::DmmvQ4_0, args: &args, groups: 1 }]).unwrap();
    // Row 0: 2 * sum_{k=16..31} k = 2 * 376 = 752.
    // Row 1: 7 * sum_{0..15} k - 8 * sum_{16..31} k = 7 * 120 - 8 * 376 = -2168.
    assert_eq!(r.get_f32(0x2000, 2), vec![752.0, -2168.0]);
}

#[test]
fn dmmv_q8_0_and_fused_argmax() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    // GGML block_q8_0 {f16 d; i8 qs[32]}; value k = qs[k] * d. Three rows, x = 1:
    // row 0: d 1.0, qs[k] = k - 16 -> sum = -16; row 1: d 0.5 (0x3800), qs = 3 -> 48;
    // row 2: d 1.0, qs = -1 -> -32.
    let mut w = vec![0x00, 0x3C];
    w.extend((0..32).map(|k| (k as i8 - 16) as u8));
    w.extend([0x00, 0x38]);
    w.extend([3u8; 32]);
    w.extend([0x00, 0x3C]);
    w.extend([0xFFu8; 32]);
    r.put(0, &w);
    r.put_f32(0x1000, &[1.0; 32]);
    let args = [("w", a(0)), ("x", a(0x1000)), ("y", a(0x2000)), ("rows", 3), ("cols", 32)];
    r.run(&[Call { id: KernelId::DmmvQ8_0, args: &args, groups: 1 }]).unwrap();
    assert_eq!(r.get_f32(0x2000, 3), vec![-16.0, 48.0, -32.0]);
    // Fused: argmax is row 1, value 48.0 (bits 0x42400000).
    r.put(0x3000, &[0; 8]); // the caller zeroes the output first
    let fargs = [("w", a(0)), ("x", a(0x1000)), ("out", a(0x3000)), ("rows", 3), ("cols", 32)];
    r.run(&[Call { id: KernelId::DmmvQ8_0Argmax, args: &fargs, groups: 1 }]).unwrap();
    assert_eq!(r.get_u64(0x3000), packed(0x4240_0000, 1));
}

#[test]
fn argmax_grid_limit_ties_and_atomic_merge() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    let mut x = vec![0.0f32; 300];
    x[1] = 5.0;
    x[3] = 5.0; // tie: the lowest index wins
    x[280] = 9.0; // beyond one workgroup of 256 lanes
    r.put_f32(0, &x);
    r.put(0x2000, &[0; 8]);
    let args = [("x", a(0)), ("n", 300), ("out", a(0x2000))];
    r.run(&[Call { id: KernelId::ArgmaxF32, args: &args, groups: 1 }]).unwrap();
    assert_eq!(r.get_u64(0x2000), packed(0x40A0_0000, 1), "5.0 at 1 (0x40A00000)");
    r.run(&[Call { id: KernelId::ArgmaxF32, args: &args, groups: 2 }]).unwrap();
    assert_eq!(r.get_u64(0x2000), packed(0x4110_0000, 280), "9.0 at 280 (0x41100000)");
    // Atomic max: a larger value already there stays.
    r.put(0x2000, &u64::MAX.to_le_bytes());
    r.run(&[Call { id: KernelId::ArgmaxF32, args: &args, groups: 2 }]).unwrap();
    assert_eq!(r.get_u64(0x2000), u64::MAX);
}

#[test]
fn rms_norm_and_copy_chained_in_one_ib() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    // x = [2, 2, 2, 2], eps 0: mean square 4, sqrt 2, y = x / 2 * w = w.
    r.put_f32(0, &[2.0; 4]);
    r.put_f32(0x1000, &[1.0, 2.0, -3.0, 0.5]);
    r.put_f32(0x3000, &[7.0; 300]);
    let rms = [("x", a(0)), ("weight", a(0x1000)), ("y", a(0x2000)), ("n", 4), ("eps", 0)];
    let copy = [("src", a(0x2000)), ("dst", a(0x2800)), ("n", 4)];
    let big = [("src", a(0x3000)), ("dst", a(0x4000)), ("n", 300)];
    r.run(&[
        Call { id: KernelId::RmsNormF32, args: &rms, groups: 1 },
        Call { id: KernelId::CopyU32, args: &copy, groups: 1 },
        Call { id: KernelId::CopyU32, args: &big, groups: 1 },
    ])
    .unwrap();
    assert_eq!(r.get_f32(0x2000, 4), vec![1.0, 2.0, -3.0, 0.5]);
    assert_eq!(r.get_f32(0x2800, 4), vec![1.0, 2.0, -3.0, 0.5], "copy saw rms_norm's output");
    let got = r.get_f32(0x4000, 300);
    assert!(got[..256].iter().all(|v| *v == 7.0), "first workgroup copied");
    assert!(got[256..].iter().all(|v| *v == 0.0), "elements >= 256 need a second workgroup");
    // eps = 1e-6 (f32 bits 0x358637BD) over x = [3, 4]: s = sqrt(12.5 + 1e-6).
    r.put_f32(0, &[3.0, 4.0]);
    let eps_bits = u64::from(0x3586_37BDu32);
    let rms2 = [("x", a(0)), ("weight", a(0x1000)), ("y", a(0x2000)), ("n", 2), ("eps", eps_bits)];
    r.run(&[Call { id: KernelId::RmsNormF32, args: &rms2, groups: 1 }]).unwrap();
    let s = (12.5f64 + 1e-6).sqrt();
    let y = r.get_f32(0x2000, 2);
    for (i, (xv, wv)) in [(3.0, 1.0), (4.0, 2.0)].iter().enumerate() {
        let want = xv / s * wv;
        assert!((f64::from(y[i]) - want).abs() <= want.abs() * 1e-6, "{i}: {} vs {want}", y[i]);
    }
}

#[test]
fn in_place_copy_and_shared_bo_inputs() {
    // Weights, x and y all in the same BO: inputs sharing the output's BO are fine.
    let mut r = Rig::new(GfxTarget::Gfx1201);
    r.put_f32(0, &[1.0, 2.0, 3.0, 4.0]);
    let args = [("w", a(0)), ("x", a(0)), ("y", a(8)), ("rows", 2), ("cols", 2)];
    r.run(&[Call { id: KernelId::DmmvF32, args: &args, groups: 1 }]).unwrap();
    // y[0] = [1,2].[1,2] = 5, y[1] = [3,4].[1,2] = 11 (x read before y is written).
    assert_eq!(r.get_f32(0, 4), vec![1.0, 2.0, 5.0, 11.0]);
}

#[test]
fn unknown_code_is_a_typed_dispatch_error_through_the_fence() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    let args = [("src", a(0)), ("dst", a(0x100)), ("n", 1)];
    // The image shifted by 256 bytes: the entry now points at other bytes.
    let shifted = r.image_va + 256;
    let e = r
        .run_with(&[Call { id: KernelId::CopyU32, args: &args, groups: 1 }], shifted, None, &[])
        .unwrap_err();
    match e {
        Error::Dispatch { pgm_va, reason } => {
            let k = r.co.kernel("copy_u32").unwrap();
            assert_eq!(pgm_va, k.entry_va(shifted));
            assert!(reason.starts_with("unknown code"), "{reason}");
        }
        other => panic!("expected Dispatch, got {other:?}"),
    }
    // The queue is halted: the next submission is refused.
    let e2 = r.run(&[Call { id: KernelId::CopyU32, args: &args, groups: 1 }]).unwrap_err();
    assert!(matches!(e2, Error::DeviceLost { .. }), "{e2:?}");
}

#[test]
fn corrupted_code_is_unknown() {
    // Code that is not one of pm4rt's kernels runs on the ISA interpreter; 0xffffffff is no
    // gfx1201 instruction (`llvm-mc-19 --disassemble -mcpu=gfx1201` rejects it as an invalid
    // encoding), so the dispatch fails naming the unknown code and the raw dword.
    let mut r = Rig::new(GfxTarget::Gfx1201);
    let k = r.co.kernel("copy_u32").unwrap().clone();
    r.sim.memory().write_u32(k.entry_va(r.image_va), 0xffff_ffff).unwrap();
    let args = [("src", a(0)), ("dst", a(0x100)), ("n", 1)];
    let e = r.run(&[Call { id: KernelId::CopyU32, args: &args, groups: 1 }]).unwrap_err();
    assert!(
        matches!(&e, Error::Dispatch { reason, .. }
            if reason.contains("unknown code") && reason.contains("ffffffff")),
        "{e}"
    );
}

#[test]
fn unmapped_kernarg_or_buffer_faults() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    let args = [("src", a(0)), ("dst", a(0x100)), ("n", 4)];
    let call = [Call { id: KernelId::CopyU32, args: &args, groups: 1 }];
    let e = r.run_with(&call, r.image_va, Some(UNMAPPED), &[]).unwrap_err();
    assert_eq!(e, Error::Fault { va: UNMAPPED });

    let mut r = Rig::new(GfxTarget::Gfx1201);
    let args = [("src", UNMAPPED + 0x40), ("dst", a(0x100)), ("n", 4)];
    let e = r.run(&[Call { id: KernelId::CopyU32, args: &args, groups: 1 }]).unwrap_err();
    assert_eq!(e, Error::Fault { va: UNMAPPED + 0x40 });

    // An output running past the end of the data BO faults at the first unmapped byte.
    let mut r = Rig::new(GfxTarget::Gfx1201);
    let args = [("w", a(0)), ("x", a(0)), ("y", a(DATA_SIZE - 8)), ("rows", 4), ("cols", 1)];
    let e = r.run(&[Call { id: KernelId::DmmvF32, args: &args, groups: 1 }]).unwrap_err();
    assert_eq!(e, Error::Fault { va: DATA + DATA_SIZE });
}

#[test]
fn launch_register_mismatch_is_named() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    let args = [("src", a(0)), ("dst", a(0x100)), ("n", 4)];
    let call = [Call { id: KernelId::CopyU32, args: &args, groups: 1 }];
    // SET_SH_REG NUM_THREAD_X = 128 before the dispatch.
    let mut b = Builder::growable(GfxTarget::Gfx1201);
    b.set_sh_reg_one(regs::COMPUTE_NUM_THREAD_X, 128).unwrap();
    let tweak = b.into_vec();
    let e = r.run_with(&call, r.image_va, None, &tweak).unwrap_err();
    assert!(
        matches!(&e, Error::Dispatch { reason, .. } if reason.contains("NUM_THREAD") && reason.contains("128")),
        "{e}"
    );
    // RSRC1 changed.
    let mut r = Rig::new(GfxTarget::Gfx1201);
    let mut b = Builder::growable(GfxTarget::Gfx1201);
    b.set_sh_reg_one(regs::COMPUTE_PGM_RSRC1, 0).unwrap();
    let tweak = b.into_vec();
    let e = r.run_with(&call, r.image_va, None, &tweak).unwrap_err();
    assert!(
        matches!(&e, Error::Dispatch { reason, .. } if reason.contains("COMPUTE_PGM_RSRC1")),
        "{e}"
    );
}

/// `nb = cols / 32u` in kernels/src/dmmv.cl: a tail of `cols % 32` columns is ignored, for
/// the row stride and for x alike (the Session refuses such shapes before submitting).
#[test]
fn quantized_dmmv_ignores_a_column_tail_as_the_gpu_kernel_does() {
    for gfx in [GfxTarget::Gfx1201, GfxTarget::Gfx1100] {
        let mut r = Rig::new(gfx);
        // Two Q4_0 rows of one block each (18 bytes: f16 d, 16 bytes of nibbles): every
        // nibble 9, i.e. 9 - 8 = 1; d = 1.0 (0x3C00) and 2.0 (0x4000).
        let mut w = Vec::new();
        for d in [0x3C00u16, 0x4000] {
            w.extend(d.to_le_bytes());
            w.extend([0x99u8; 16]);
        }
        r.put(0, &w);
        // x: 32 ones, then 8 values the kernel never reads.
        let mut x = vec![1.0f32; 32];
        x.extend([1000.0f32; 8]);
        r.put_f32(0x1000, &x);
        let args = [("w", a(0)), ("x", a(0x1000)), ("y", a(0x2000)), ("rows", 2), ("cols", 40)];
        r.run(&[Call { id: KernelId::DmmvQ4_0, args: &args, groups: 1 }]).unwrap();
        assert_eq!(r.get_f32(0x2000, 2), [32.0, 64.0], "{gfx}");
    }
}

#[test]
fn code_in_a_non_executable_bo_faults_at_the_entry() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    let data = r.sim.alloc_bo(&BoDesc::gtt(r.co.image().len() as u64)).unwrap();
    let va = r.sim.map_va(data, None).unwrap();
    r.sim.write_bo(data, 0, r.co.image()).unwrap();
    let args = [("src", a(0)), ("dst", a(0x100)), ("n", 4)];
    let call = Call { id: KernelId::CopyU32, args: &args, groups: 1 };
    let e = r.run_with(&[call], va, None, &[]).unwrap_err();
    let entry = r.co.kernel("copy_u32").unwrap().entry_va(va);
    assert!(matches!(e, Error::Fault { va } if va == entry), "{e}");
}

#[test]
fn without_the_hook_nothing_runs() {
    let mut r = Rig::new(GfxTarget::Gfx1201);
    r.sim.set_dispatch_hook(None);
    let args = [("src", a(0)), ("dst", a(0x100)), ("n", 4)];
    let e = r.run(&[Call { id: KernelId::CopyU32, args: &args, groups: 1 }]).unwrap_err();
    assert!(matches!(&e, Error::Dispatch { reason, .. } if reason.contains("no kernel")), "{e}");
}
