//! The engine's queues and dispatch ordering: one register file per queue, and the strict
//! order that makes a missing execution or visibility barrier show up as a wrong result.

use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::pm4::{encode_packet, event, AcquireMem, CopyData, Packet, ReleaseMem};
use pm4rt_core::{BoHandle, GfxTarget, Result};
use pm4rt_sim::engine::{
    DispatchContext, DispatchHook, DispatchOrder, Engine, EngineConfig, Footprint, QueueId,
    RingWork, Work,
};
use pm4rt_sim::memory::{GpuMemory, Perms};

const IB: u64 = 0x1_0000_0000;
const DATA: u64 = 0x2_0000_0000;
const RING: u64 = 0x3_0000_0000;
const RPTR: u64 = 0x3_0000_2000;
const WAIT: Duration = Duration::from_secs(5);

/// Test kernel "increment": `*dst = *src + 1` (u32), with src at USER_DATA_0/1 and dst at
/// USER_DATA_2/3. It knows its footprint, as pm4rt's kernel registry does.
struct Increment;

fn user_va(ctx: &DispatchContext<'_>, i: u16) -> u64 {
    u64::from(ctx.user_data(i)) | (u64::from(ctx.user_data(i + 1)) << 32)
}

impl DispatchHook for Increment {
    fn dispatch(&self, ctx: &mut DispatchContext<'_>) -> Result<()> {
        let v = ctx.memory.read_u32(user_va(ctx, 0))?;
        ctx.memory.write_u32(user_va(ctx, 2), v + 1)
    }

    fn footprint(&self, ctx: &DispatchContext<'_>) -> Result<Option<Footprint>> {
        let (src, dst) = (user_va(ctx, 0), user_va(ctx, 2));
        let (reads, writes) = (std::iter::once(src..src + 4), std::iter::once(dst..dst + 4));
        Ok(Some(Footprint { reads: reads.collect(), writes: writes.collect() }))
    }
}

struct Rig {
    mem: Arc<GpuMemory>,
    engine: Engine,
    ib_off: u64,
}

impl Rig {
    fn new(order: DispatchOrder, gfx: GfxTarget) -> Rig {
        let mem = Arc::new(GpuMemory::new());
        for (id, va) in [(1, IB), (2, DATA), (3, RING)] {
            mem.create_bo(BoHandle(id), 0x4000).unwrap();
            mem.map(BoHandle(id), va, Perms::ALL).unwrap();
        }
        let config = EngineConfig { order, gfx, ..EngineConfig::default() };
        let engine = Engine::new(Arc::clone(&mem), config).unwrap();
        engine.set_dispatch_hook(Some(Arc::new(Increment)));
        Rig { mem, engine, ib_off: 0 }
    }

    /// Run `pkts` as one IB and wait for it.
    fn run(&mut self, pkts: &[Packet]) {
        let dw: Vec<u32> = pkts.iter().flat_map(encode_packet).collect();
        let va = IB + self.ib_off;
        for (i, d) in dw.iter().enumerate() {
            self.mem.write_u32(va + 4 * i as u64, *d).unwrap();
        }
        self.ib_off += 4 * dw.len() as u64;
        let seq = self.engine.submit(Work::Ib { va, dwords: dw.len() as u32 }).unwrap();
        self.engine.wait(seq, WAIT).unwrap();
    }

    fn data(&self, i: u64) -> u32 {
        self.mem.read_u32(DATA + 4 * i).unwrap()
    }
}

/// SET_SH_REG USER_DATA_0..3 = src, dst, then DISPATCH_DIRECT (1, 1, 1).
fn increment(src: u64, dst: u64) -> [Packet; 2] {
    let (s, d) = (DATA + 4 * src, DATA + 4 * dst);
    [
        Packet::SetShReg {
            offset: 0x240,
            values: vec![s as u32, (s >> 32) as u32, d as u32, (d >> 32) as u32],
        },
        Packet::DispatchDirect { dim: [1, 1, 1], initiator: 1 },
    ]
}

fn cs_partial_flush() -> Packet {
    Packet::EventWrite {
        event_type: event::CS_PARTIAL_FLUSH,
        event_index: event::INDEX_CS_PARTIAL_FLUSH,
    }
}

/// ACQUIRE_MEM of the whole range with GCR_CNTL `gcr`.
fn acquire(gcr: u32) -> Packet {
    Packet::AcquireMem(AcquireMem {
        coher_size: 0xFF_FFFF_FFFF,
        coher_base: 0,
        poll_interval: 10,
        gcr_cntl: gcr,
    })
}

/// GLV_INV | GL1_INV (Mesa's INV_VCACHE, radv_cs.c).
const INV_VMEM: u32 = (1 << 8) | (1 << 9);
const GLV_INV_ONLY: u32 = 1 << 8;

/// data[0] = 10; increment 0 -> 1, then 1 -> 2, with `between` the two dispatches.
fn chain(order: DispatchOrder, gfx: GfxTarget, between: &[Packet]) -> (u32, u64) {
    let mut rig = Rig::new(order, gfx);
    rig.mem.write_u32(DATA, 10).unwrap();
    let mut pkts: Vec<Packet> = increment(0, 1).into();
    pkts.extend_from_slice(between);
    pkts.extend(increment(1, 2));
    rig.run(&pkts);
    (rig.data(2), rig.engine.stale_reads())
}

#[test]
fn in_order_runs_dependent_dispatches_in_stream_order_even_without_barriers() {
    assert_eq!(chain(DispatchOrder::InOrder, GfxTarget::Gfx1201, &[]), (12, 0));
}

#[test]
fn strict_order_with_flush_and_invalidate_gives_the_right_result() {
    let full = [cs_partial_flush(), acquire(INV_VMEM)];
    assert_eq!(chain(DispatchOrder::Strict, GfxTarget::Gfx1201, &full), (12, 0));
    assert_eq!(chain(DispatchOrder::Strict, GfxTarget::Gfx1100, &full), (12, 0));
}

#[test]
fn strict_order_without_an_execution_barrier_runs_the_consumer_first() {
    // The consumer reads data[1] before the producer wrote it: 0 + 1.
    assert_eq!(chain(DispatchOrder::Strict, GfxTarget::Gfx1201, &[acquire(INV_VMEM)]).0, 1);
}

#[test]
fn strict_order_without_an_invalidate_reads_stale_bytes() {
    // Waited for, but the vector caches were not invalidated: data[1] reads as before (0).
    let (v, stale) = chain(DispatchOrder::Strict, GfxTarget::Gfx1201, &[cs_partial_flush()]);
    assert_eq!((v, stale), (1, 1));
    // gfx11 has a GL1 cache too: GLV_INV alone is not enough there, but is on gfx12.
    let only_glv = [cs_partial_flush(), acquire(GLV_INV_ONLY)];
    assert_eq!(chain(DispatchOrder::Strict, GfxTarget::Gfx1100, &only_glv), (1, 1));
    assert_eq!(chain(DispatchOrder::Strict, GfxTarget::Gfx1201, &only_glv), (12, 0));
}

#[test]
fn stale_bytes_are_put_back_after_the_reading_dispatch() {
    let mut rig = Rig::new(DispatchOrder::Strict, GfxTarget::Gfx1201);
    rig.mem.write_u32(DATA, 10).unwrap();
    let mut pkts: Vec<Packet> = increment(0, 1).into();
    pkts.push(cs_partial_flush());
    pkts.extend(increment(1, 2));
    rig.run(&pkts);
    // The producer's result stays in memory; only the consumer saw the old bytes.
    assert_eq!((rig.data(1), rig.data(2)), (11, 1));
}

#[test]
fn a_release_mem_waits_for_held_dispatches_before_writing() {
    let mut rig = Rig::new(DispatchOrder::Strict, GfxTarget::Gfx1201);
    rig.mem.write_u32(DATA, 10).unwrap();
    let mut pkts: Vec<Packet> = increment(0, 1).into();
    // COPY_DATA of data[1] to data[3] before any barrier sees the old value; the fence after
    // the dispatch sees it done.
    pkts.push(Packet::CopyData(CopyData {
        src_sel: 2,
        dst_sel: 5,
        src: DATA + 4,
        dst: DATA + 12,
        ..Default::default()
    }));
    pkts.push(Packet::ReleaseMem(ReleaseMem {
        event_type: 0x14,
        event_index: 5,
        data_sel: 1,
        addr: DATA + 16,
        data: 7,
        ..Default::default()
    }));
    rig.run(&pkts);
    assert_eq!((rig.data(1), rig.data(3), rig.data(4)), (11, 0, 7));
}

#[test]
fn order_names_parse_and_a_typo_is_an_error() {
    assert_eq!(DispatchOrder::parse("strict").unwrap(), DispatchOrder::Strict);
    assert_eq!(DispatchOrder::parse("in-order").unwrap(), DispatchOrder::InOrder);
    let e = DispatchOrder::parse("stritc").unwrap_err().to_string();
    assert!(e.contains("PM4RT_SIM_ORDER") && e.contains("stritc"), "{e}");
}

#[test]
fn every_queue_has_its_own_register_file() {
    let mut rig = Rig::new(DispatchOrder::InOrder, GfxTarget::Gfx1201);
    // The direct queue sets COMPUTE_USER_DATA_0 (dword 0x2E40).
    rig.run(&[Packet::SetShReg { offset: 0x240, values: vec![0x1234] }]);
    // A ring queue copies its own COMPUTE_USER_DATA_0 to memory: it was never set there.
    rig.mem.write_u32(DATA + 64, 0xFFFF_FFFF).unwrap();
    let copy = encode_packet(&Packet::CopyData(CopyData {
        src_sel: 0,
        dst_sel: 5,
        src: 0x2E40,
        dst: DATA + 64,
        ..Default::default()
    }));
    for (i, d) in copy.iter().enumerate() {
        rig.mem.write_u32(RING + 4 * i as u64, *d).unwrap();
    }
    rig.mem.write_u64(RPTR, 0).unwrap();
    let ring =
        RingWork { ring_va: RING, ring_dwords: 1024, rptr_va: RPTR, wptr: copy.len() as u64 };
    let seq = rig.engine.submit(Work::Ring(ring)).unwrap();
    rig.engine.wait(seq, WAIT).unwrap();
    assert_eq!(rig.data(16), 0);
    assert_eq!(rig.engine.registers(QueueId::Direct).get(0x2E40), 0x1234);
    assert_eq!(rig.engine.registers(QueueId::Ring(RING)).get(0x2E40), 0);
}
