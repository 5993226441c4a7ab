//! ISA interpreter speed: pm4rt's fused Q4_0 DMMV + argmax (`dmmv_q4_0_argmax`) on the LM-head
//! shape 32000 x 4096, interpreted (`ExecMode::Isa`) through the engine like any dispatch,
//! on gfx1201. Criterion's throughput is the lane-instructions the interpreter executed per
//! second (`ExecStats::lane_instructions`: a scalar instruction counts 1, a vector instruction
//! its active lanes); the time per iteration is the LM head's interpreted time.
//!
//! `PM4RT_BENCH_ISA_ROWS` overrides the rows (a multiple of 8, the rows per workgroup).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pm4rt_core::code_object::CodeObject;
use pm4rt_core::launch::{emit_dispatch, Launch};
use pm4rt_core::pm4::{Builder, FenceInterrupt};
use pm4rt_core::{BoDesc, BoHandle, GfxTarget, Submitter};
use pm4rt_kernels::KernelId;
use pm4rt_sim::dispatch::KernelRegistry;
use pm4rt_sim::engine::EngineConfig;
use pm4rt_sim::isa::ExecMode;
use pm4rt_sim::kernels::WeightType;
use pm4rt_sim::{SimConfig, SimSubmitter};

const COLS: u64 = 4096;
const GFX: GfxTarget = GfxTarget::Gfx1201;

struct Rig {
    sim: SimSubmitter,
    ib: BoHandle,
    ib_va: u64,
    fence_va: u64,
    seq: u64,
    words: Vec<u32>,
    out_va: u64,
}

fn rows() -> u64 {
    std::env::var("PM4RT_BENCH_ISA_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(32000)
}

fn rig(registry: KernelRegistry, rows: u64) -> Rig {
    let cfg = SimConfig {
        engine: EngineConfig { gfx: GFX, ..EngineConfig::default() },
        ..SimConfig::default()
    };
    let mut sim = SimSubmitter::with_config(cfg).expect("simulator");
    sim.set_dispatch_hook(Some(Arc::new(registry)));
    let co = CodeObject::load(pm4rt_kernels::code_object(pm4rt_kernels::Target::Gfx1201), GFX)
        .expect("committed code object");
    let alloc = |sim: &mut SimSubmitter, desc: BoDesc| {
        let bo = sim.alloc_bo(&desc).expect("bo");
        (bo, sim.map_va(bo, None).expect("map"))
    };
    let (code, image_va) = alloc(&mut sim, BoDesc::code(co.image().len() as u64));
    sim.write_bo(code, 0, co.image()).expect("code");
    // Weights: Q4_0 blocks with the f16 scale 2^-10 and random nibbles; x random in [-1, 1).
    let row_bytes = WeightType::Q4_0.row_bytes(COLS as usize).expect("row bytes") as u64;
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut w: Vec<u8> = (0..rows * row_bytes).map(|_| (next() >> 24) as u8).collect();
    for b in w.chunks_exact_mut(18) {
        b[0] = 0x00;
        b[1] = 0x14;
    }
    let x: Vec<u8> =
        (0..COLS).flat_map(|_| ((next() >> 40) as f32 / 8_388_608.0 - 1.0).to_le_bytes()).collect();
    let (wbo, w_va) = alloc(&mut sim, BoDesc::gtt(w.len() as u64));
    sim.write_bo(wbo, 0, &w).expect("weights");
    let (xbo, x_va) = alloc(&mut sim, BoDesc::gtt(x.len() as u64 + 4096));
    sim.write_bo(xbo, 0, &x).expect("x");
    let out_va = x_va + x.len() as u64;
    let (kbo, kernarg_va) = alloc(&mut sim, BoDesc::gtt(4096));
    let id = KernelId::DmmvQ4_0Argmax;
    let mut kernarg = vec![0u8; id.kernarg_size() as usize];
    for (name, v) in [("w", w_va), ("x", x_va), ("out", out_va), ("rows", rows), ("cols", COLS)] {
        let a = id.signature().iter().find(|a| a.name == name).expect("argument");
        let o = a.offset as usize;
        kernarg[o..o + a.size as usize].copy_from_slice(&v.to_le_bytes()[..a.size as usize]);
    }
    sim.write_bo(kbo, 0, &kernarg).expect("kernarg");
    let (ib, ib_va) = alloc(&mut sim, BoDesc::gtt(65536));
    let (_, fence_va) = alloc(&mut sim, BoDesc::gtt(4096));
    let mut b = Builder::growable(GFX);
    let l = Launch {
        kernel: co.kernel(id.name()).expect("kernel"),
        image_va,
        grid: [(rows / 8) as u32, 1, 1],
        workgroup: None,
        kernarg_va,
        tier: pm4rt_core::Tier::Sim,
    };
    emit_dispatch(&mut b, GFX, &l).expect("dispatch");
    let words = b.into_vec();
    Rig { sim, ib, ib_va, fence_va, seq: 0, words, out_va }
}

impl Rig {
    fn run(&mut self) -> u64 {
        self.sim.memory().write_u64(self.out_va, 0).expect("out");
        self.seq += 1;
        let mut words = self.words.clone();
        let mut b = Builder::growable(GFX);
        b.release_mem_fence(self.fence_va, self.seq, FenceInterrupt::None).expect("fence");
        words.extend(b.into_vec());
        let bytes: Vec<u8> = words.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.sim.write_bo(self.ib, 0, &bytes).expect("ib");
        let f = self.sim.submit_ib(self.ib_va, words.len() as u32).expect("submit");
        self.sim.wait_fence(f, Duration::from_secs(600)).expect("dispatch");
        self.sim.memory().read_u64(self.out_va).expect("out")
    }
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    let registry = KernelRegistry::new(GFX).expect("registry").with_exec_mode(ExecMode::Isa);
    let mut r = rig(registry.clone(), rows);
    // One run to count the lane-instructions of a dispatch (the same every run).
    r.run();
    let stats = registry.last_stats().expect("interpreted").stats;
    let mut g = c.benchmark_group("isa");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(stats.lane_instructions()));
    g.bench_function(format!("dmmv_q4_0_argmax_{rows}x{COLS}_lane_instructions"), |b| {
        b.iter(|| r.run())
    });
    g.finish();
    println!(
        "isa: {rows}x{COLS} Q4_0 dmmv+argmax: {} instructions, {} lane-instructions, active \
         lanes {:.3}, global loads {} ({} bytes)",
        stats.instructions(),
        stats.lane_instructions(),
        stats.active_lane_fraction(),
        stats.global.loads,
        stats.global.load_bytes
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
