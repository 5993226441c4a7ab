//! Builder throughput: a realistic kernel launch (ACQUIRE_MEM, SET_SH_REGs, DISPATCH_DIRECT,
//! EVENT_WRITE, RELEASE_MEM) recorded over and over into one IB, in dwords per second.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pm4rt_core::pm4::{regs, Builder, EncodeError, FenceInterrupt};
use pm4rt_core::GfxTarget;

/// Launches recorded per iteration.
const LAUNCHES: u64 = 64;

fn launch(b: &mut Builder<'_>, i: u64) -> Result<(), EncodeError> {
    b.acquire_mem_full()?;
    b.set_sh_reg(regs::COMPUTE_PGM_LO, &[0x1234_5600 >> 8, 0x7F])?;
    b.set_sh_reg(regs::COMPUTE_PGM_RSRC1, &[0x6000_0008, 0x0000_008C])?;
    b.set_sh_reg_one(regs::COMPUTE_PGM_RSRC3, 0)?;
    b.set_sh_reg_one(regs::COMPUTE_TMPRING_SIZE, 0)?;
    b.set_sh_reg(regs::COMPUTE_RESTART_X, &[0, 0, 0])?;
    b.set_sh_reg(regs::COMPUTE_USER_DATA_0, &[1, 2, 3, 4, 5, 6, 7, 8])?;
    b.set_sh_reg_one(regs::COMPUTE_RESOURCE_LIMITS, 0)?;
    b.set_sh_reg(regs::COMPUTE_START_X, &[0, 0, 0, 256, 1, 1])?;
    b.dispatch_direct([black_box(128), 1, 1], 0x8005)?;
    b.cs_partial_flush()?;
    b.release_mem_fence(0x10_0000, i, FenceInterrupt::None)
}

fn dwords_per_launch() -> u64 {
    let mut b = Builder::growable(GfxTarget::Gfx1201);
    launch(&mut b, 0).expect("launch fits");
    b.len() as u64
}

fn bench(c: &mut Criterion) {
    let per = dwords_per_launch();
    let mut g = c.benchmark_group("pm4_builder");
    g.throughput(Throughput::Elements(per * LAUNCHES));
    let mut buf = vec![0u32; (per * LAUNCHES) as usize];
    g.bench_function(format!("slice_{LAUNCHES}_launches_{per}dw_each"), |bn| {
        bn.iter(|| {
            let mut b = Builder::new(&mut buf, GfxTarget::Gfx1201);
            for i in 0..LAUNCHES {
                launch(&mut b, i).expect("fits");
            }
            black_box(b.len())
        })
    });
    g.bench_function(format!("growable_{LAUNCHES}_launches"), |bn| {
        bn.iter(|| {
            let mut b = Builder::with_capacity(GfxTarget::Gfx1201, (per * LAUNCHES) as usize);
            for i in 0..LAUNCHES {
                launch(&mut b, i).expect("fits");
            }
            black_box(b.into_vec())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
