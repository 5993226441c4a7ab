//! pm4rt's kernels dispatched through a SimSubmitter whose KernelRegistry runs the machine
//! code on the ISA interpreter (`ExecMode::Isa`, what `PM4RT_SIM_EXEC=isa` selects): the same
//! IB, registers and memory as the native path, on both targets. Expected values are
//! hand-computed from the kernel contract (kernels/README.md).

use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::code_object::CodeObject;
use pm4rt_core::launch::{emit_barrier, emit_dispatch, Launch};
use pm4rt_core::pm4::{Builder, FenceInterrupt};
use pm4rt_core::{BoDesc, BoHandle, Error, GfxTarget, Submitter};
use pm4rt_kernels::KernelId;
use pm4rt_sim::dispatch::KernelRegistry;
use pm4rt_sim::engine::EngineConfig;
use pm4rt_sim::isa::ExecMode;
use pm4rt_sim::{SimConfig, SimSubmitter};

/// One dispatch: kernel, kernarg values by declared name, workgroups in X.
type Dispatch<'a> = (KernelId, &'a [(&'a str, u64)], u32);

const WAIT: Duration = Duration::from_secs(30);
const DATA: u64 = 0x10_0000_0000;

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

impl Rig {
    fn new(gfx: GfxTarget) -> Rig {
        let cfg = SimConfig {
            engine: EngineConfig { gfx, ..EngineConfig::default() },
            ..SimConfig::default()
        };
        let mut sim = SimSubmitter::with_config(cfg).unwrap();
        let registry = KernelRegistry::new(gfx).unwrap().with_exec_mode(ExecMode::Isa);
        sim.set_dispatch_hook(Some(Arc::new(registry)));
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
        let data = sim.alloc_bo(&BoDesc::gtt(1 << 20)).unwrap();
        assert_eq!(sim.map_va(data, Some(DATA)).unwrap(), DATA);
        Rig { sim, gfx, co, image_va, kernarg, kernarg_va, ib, ib_va, fence_va, data, seq: 0 }
    }

    fn put_f32(&mut self, off: u64, v: &[f32]) {
        let b: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        self.sim.write_bo(self.data, off, &b).unwrap();
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

    /// Dispatch `calls` (kernel, arguments by declared name, workgroups) in one IB with
    /// barriers between them and a RELEASE_MEM fence; wait.
    fn run(&mut self, calls: &[Dispatch<'_>]) -> Result<(), Error> {
        let mut b = Builder::growable(self.gfx);
        for (i, (id, args, groups)) in calls.iter().enumerate() {
            let slot = 64 * i as u64;
            let mut bytes = vec![0u8; id.kernarg_size() as usize];
            for (name, v) in args.iter() {
                let a = id.signature().iter().find(|a| a.name == *name).unwrap();
                let o = a.offset as usize;
                bytes[o..o + a.size as usize].copy_from_slice(&v.to_le_bytes()[..a.size as usize]);
            }
            self.sim.write_bo(self.kernarg, slot, &bytes).unwrap();
            if i > 0 {
                emit_barrier(&mut b).unwrap();
            }
            let l = Launch {
                kernel: self.co.kernel(id.name()).unwrap(),
                image_va: self.image_va,
                grid: [*groups, 1, 1],
                workgroup: None,
                kernarg_va: self.kernarg_va + slot,
                tier: pm4rt_core::Tier::Sim,
            };
            emit_dispatch(&mut b, self.gfx, &l).unwrap();
        }
        self.seq += 1;
        b.release_mem_fence(self.fence_va, self.seq, FenceInterrupt::None).unwrap();
        let ib = b.into_vec();
        let bytes: Vec<u8> = ib.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.sim.write_bo(self.ib, 0, &bytes).unwrap();
        let fence = self.sim.submit_ib(self.ib_va, ib.len() as u32)?;
        self.sim.wait_fence(fence, WAIT)
    }
}

fn a(off: u64) -> u64 {
    DATA + off
}

#[test]
fn isa_mode_runs_rms_norm_copy_argmax_and_dmmv_through_the_engine_on_both_targets() {
    for gfx in [GfxTarget::Gfx1201, GfxTarget::Gfx1100] {
        let mut r = Rig::new(gfx);
        // rms_norm: x = [2, 2, 2, 2], eps 0: mean square 4, sqrt 2, y = x / 2 * w = w.
        r.put_f32(0, &[2.0; 4]);
        r.put_f32(0x1000, &[1.0, 2.0, -3.0, 0.5]);
        // copy of 300 elements with one workgroup: only the first 256 are copied.
        r.put_f32(0x3000, &[7.0; 300]);
        // argmax over 300: maximum 9.5 at index 260 (second workgroup), ties at 5.0 earlier.
        let mut xs = vec![5.0f32; 300];
        xs[260] = 9.5;
        r.put_f32(0x5000, &xs);
        // dmmv_f32: 3 x 32 weights, row r = (r + 1) everywhere; x = 1: y = 32 (r + 1).
        let w: Vec<f32> = (0..3).flat_map(|row| vec![(row + 1) as f32; 32]).collect();
        r.put_f32(0x6000, &w);
        r.put_f32(0x7000, &[1.0; 32]);
        let rms = [("x", a(0)), ("weight", a(0x1000)), ("y", a(0x2000)), ("n", 4), ("eps", 0)];
        let copy = [("src", a(0x2000)), ("dst", a(0x2800)), ("n", 4)];
        let big = [("src", a(0x3000)), ("dst", a(0x4000)), ("n", 300)];
        let argmax = [("x", a(0x5000)), ("n", 300), ("out", a(0x5800))];
        let dmmv =
            [("w", a(0x6000)), ("x", a(0x7000)), ("y", a(0x8000)), ("rows", 3), ("cols", 32)];
        r.run(&[
            (KernelId::RmsNormF32, &rms, 1),
            (KernelId::CopyU32, &copy, 1),
            (KernelId::CopyU32, &big, 1),
            (KernelId::ArgmaxF32, &argmax, 2),
            (KernelId::DmmvF32, &dmmv, 1),
        ])
        .unwrap_or_else(|e| panic!("{gfx:?}: {e}"));
        assert_eq!(r.get_f32(0x2000, 4), vec![1.0, 2.0, -3.0, 0.5], "{gfx:?} rms_norm");
        assert_eq!(r.get_f32(0x2800, 4), vec![1.0, 2.0, -3.0, 0.5], "{gfx:?} copy");
        let got = r.get_f32(0x4000, 300);
        assert!(got[..256].iter().all(|v| *v == 7.0), "{gfx:?}: first workgroup copied");
        assert!(got[256..].iter().all(|v| *v == 0.0), "{gfx:?}: one workgroup only");
        // Packed: key(9.5) << 32 | (0xFFFFFFFF - 260); key of a positive float sets bit 31.
        let want =
            (u64::from(9.5f32.to_bits() ^ 0x8000_0000) << 32) | u64::from(0xFFFF_FFFFu32 - 260);
        assert_eq!(r.get_u64(0x5800), want, "{gfx:?} argmax");
        assert_eq!(r.get_f32(0x8000, 3), vec![32.0, 64.0, 96.0], "{gfx:?} dmmv_f32");
    }
}

#[test]
fn exec_mode_names() {
    assert_eq!(ExecMode::parse("native").unwrap(), ExecMode::Native);
    assert_eq!(ExecMode::parse("isa").unwrap(), ExecMode::Isa);
    let err = ExecMode::parse("fast").unwrap_err();
    assert!(err.to_string().contains("PM4RT_SIM_EXEC=\"fast\""), "{err}");
}
