//! User kernels (the OpenCL C corpus in tests/user_kernels) run on the simulator's ISA
//! interpreter through the real launch path: kernarg segment built from the metadata
//! (explicit + hidden arguments), dispatch packet block, PM4 from `emit_dispatch_with`.
//! Expected outputs are computed on the host here from the kernels' source semantics.

use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::code_object::dispatch_packet::{dispatch_packet, DispatchPacketFields};
use pm4rt_core::code_object::hidden::LaunchGeometry;
use pm4rt_core::code_object::kernargs::ArgValue;
use pm4rt_core::code_object::CodeObject;
use pm4rt_core::launch::{emit_dispatch_with, DispatchInputs, Launch};
use pm4rt_core::pm4::{Builder, FenceInterrupt};
use pm4rt_core::{BoDesc, BoHandle, GfxTarget, Submitter};
use pm4rt_sim::dispatch::KernelRegistry;
use pm4rt_sim::engine::EngineConfig;
use pm4rt_sim::{SimConfig, SimSubmitter};

static GFX1201: &[u8] = include_bytes!("../../tests/user_kernels/gfx1201/user.hsaco");
static GFX1100: &[u8] = include_bytes!("../../tests/user_kernels/gfx1100/user.hsaco");

const WAIT: Duration = Duration::from_secs(60);
const DATA: u64 = 0x10_0000_0000;

struct Rig {
    sim: SimSubmitter,
    gfx: GfxTarget,
    co: CodeObject,
    image_va: u64,
    scratch: BoHandle,
    scratch_va: u64,
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
        sim.set_dispatch_hook(Some(Arc::new(KernelRegistry::new(gfx).unwrap())));
        let bytes = if gfx == GfxTarget::Gfx1201 { GFX1201 } else { GFX1100 };
        let co = CodeObject::load(bytes, gfx).unwrap();
        let code = sim.alloc_bo(&BoDesc::code(co.image().len() as u64)).unwrap();
        let image_va = sim.map_va(code, None).unwrap();
        sim.write_bo(code, 0, co.image()).unwrap();
        // kernargs at 0, dispatch packet at 0x1000, IB at 0x2000, fence at 0xf000.
        let scratch = sim.alloc_bo(&BoDesc::gtt(0x10000)).unwrap();
        let scratch_va = sim.map_va(scratch, None).unwrap();
        let data = sim.alloc_bo(&BoDesc::gtt(1 << 20)).unwrap();
        assert_eq!(sim.map_va(data, Some(DATA)).unwrap(), DATA);
        Rig { sim, gfx, co, image_va, scratch, scratch_va, data, seq: 0 }
    }

    fn run(&mut self, name: &str, args: &[ArgValue], g: LaunchGeometry) {
        let k = self.co.kernel(name).unwrap();
        let ka = k.build_kernargs(args, &g).unwrap();
        self.sim.write_bo(self.scratch, 0, &ka).unwrap();
        let packet = dispatch_packet(
            &g,
            &DispatchPacketFields {
                kernel_object: k.descriptor_va(self.image_va),
                kernarg_address: self.scratch_va,
                group_segment_size: k.descriptor.group_segment_fixed_size + g.dynamic_lds,
                private_segment_size: k.descriptor.private_segment_fixed_size,
            },
        );
        self.sim.write_bo(self.scratch, 0x1000, &packet).unwrap();
        let mut b = Builder::growable(self.gfx);
        let l = Launch {
            kernel: k,
            image_va: self.image_va,
            grid: g.workgroups(),
            workgroup: Some(g.local),
            kernarg_va: self.scratch_va,
            tier: pm4rt_core::Tier::Sim,
        };
        let inputs =
            DispatchInputs { dispatch_packet_va: Some(self.scratch_va + 0x1000), dispatch_id: 0 };
        emit_dispatch_with(&mut b, self.gfx, &l, &inputs).unwrap();
        self.seq += 1;
        b.release_mem_fence(self.scratch_va + 0xf000, self.seq, FenceInterrupt::None).unwrap();
        let ib = b.into_vec();
        let bytes: Vec<u8> = ib.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.sim.write_bo(self.scratch, 0x2000, &bytes).unwrap();
        let fence = self.sim.submit_ib(self.scratch_va + 0x2000, ib.len() as u32).unwrap();
        self.sim.wait_fence(fence, WAIT).unwrap();
    }

    fn put(&mut self, off: u64, b: &[u8]) {
        self.sim.write_bo(self.data, off, b).unwrap();
    }

    fn get_u32(&self, off: u64, n: usize) -> Vec<u32> {
        let mut b = vec![0u8; 4 * n];
        self.sim.read_bo(self.data, off, &mut b).unwrap();
        b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }
}

fn targets() -> [GfxTarget; 2] {
    [GfxTarget::Gfx1201, GfxTarget::Gfx1100]
}

#[test]
fn scale_add_1d_with_a_partial_last_workgroup() {
    for gfx in targets() {
        let mut r = Rig::new(gfx);
        let n = 1000u32;
        let input: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 7.0).collect();
        r.put(0, &input.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>());
        // Sentinel after the end: the 24 extra work-items of the last workgroup must not write.
        r.put(0x10000 + 4 * u64::from(n), &0xdead_beefu32.to_le_bytes());
        let args = [
            ArgValue::Pointer(DATA + 0x10000),
            ArgValue::Pointer(DATA),
            ArgValue::F32(3.0),
            ArgValue::U32(n),
        ];
        r.run("scale_add", &args, LaunchGeometry::new([n, 1, 1], [256, 1, 1]));
        let out = r.get_u32(0x10000, n as usize + 1);
        for i in 0..n as usize {
            let want = input[i] * 3.0 + i as f32;
            assert_eq!(f32::from_bits(out[i]), want, "{gfx:?} out[{i}]");
        }
        assert_eq!(out[n as usize], 0xdead_beef, "{gfx:?}: wrote past n");
    }
}

#[test]
fn coords3_covers_a_partial_3d_grid_exactly() {
    for gfx in targets() {
        let mut r = Rig::new(gfx);
        let (w, h, d) = (10u32, 5u32, 3u32);
        let outs = [
            ArgValue::Pointer(DATA),
            ArgValue::Pointer(DATA + 0x4000),
            ArgValue::Pointer(DATA + 0x8000),
        ];
        r.run("coords3", &outs, LaunchGeometry::new([w, h, d], [4, 2, 2]));
        // o?[z * 256 + y * 16 + x] = the coordinate inside the grid, 0 (never written) outside
        // it: the extra work-items of the partial workgroups write nothing.
        let [ox, oy, oz] = [0, 0x4000, 0x8000].map(|o| r.get_u32(o, 16 * 16 * 16));
        for z in 0..16 {
            for y in 0..16 {
                for x in 0..16 {
                    let inside = x < w && y < h && z < d;
                    let i = (z * 256 + y * 16 + x) as usize;
                    let want = if inside { [x, y, z] } else { [0, 0, 0] };
                    assert_eq!([ox[i], oy[i], oz[i]], want, "{gfx:?} ({x},{y},{z})");
                }
            }
        }
    }
}

#[test]
fn read_dispatch_sees_the_packet_grid_and_workgroup_sizes() {
    for gfx in targets() {
        let mut r = Rig::new(gfx);
        r.run(
            "read_dispatch",
            &[ArgValue::Pointer(DATA)],
            LaunchGeometry::new([96, 3, 1], [32, 1, 1]),
        );
        let out = r.get_u32(0, 11);
        let got: Vec<u32> = out.iter().step_by(2).copied().collect();
        assert_eq!(got, [32, 1, 1, 96, 3, 1], "{gfx:?}");
    }
}
