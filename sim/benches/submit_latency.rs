//! Submit + wait latency of a trivial IB (one WRITE_DATA + one RELEASE_MEM) on the simulator.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pm4rt_core::pm4::{encode_packet, Packet, ReleaseMem, WriteData};
use pm4rt_core::{BoDesc, Submitter};
use pm4rt_sim::SimSubmitter;

fn submit_latency(c: &mut Criterion) {
    let mut sim = SimSubmitter::new().expect("simulator");
    let data = sim.alloc_bo(&BoDesc::gtt(4096)).expect("data BO");
    let ib = sim.alloc_bo(&BoDesc::gtt(4096)).expect("IB BO");
    let data_va = sim.map_va(data, None).expect("map data");
    let ib_va = sim.map_va(ib, None).expect("map IB");
    let pkts = [
        Packet::WriteData(WriteData {
            dst_sel: 5,
            addr: data_va,
            data: vec![1],
            ..Default::default()
        }),
        Packet::ReleaseMem(ReleaseMem {
            event_type: 0x14,
            event_index: 5,
            data_sel: 1,
            addr: data_va + 8,
            data: 1,
            ..Default::default()
        }),
    ];
    let dw: Vec<u32> = pkts.iter().flat_map(encode_packet).collect();
    let bytes: Vec<u8> = dw.iter().flat_map(|d| d.to_le_bytes()).collect();
    sim.write_bo(ib, 0, &bytes).expect("write IB");
    c.bench_function("sim submit+wait (WRITE_DATA + RELEASE_MEM)", |b| {
        b.iter(|| {
            let f = sim.submit_ib(ib_va, dw.len() as u32).expect("submit");
            sim.wait_fence(f, Duration::from_secs(5)).expect("wait");
        })
    });
}

criterion_group!(benches, submit_latency);
criterion_main!(benches);
