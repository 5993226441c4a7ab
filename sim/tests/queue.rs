//! Queue behaviour: faults, deadlines, nesting, malformed PM4, ordering, timeouts, rings, drop.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use pm4rt_core::pm4::{
    encode_packet, CopyData, DecodeErrorKind, IndirectBuffer, Packet, ReleaseMem,
};
use pm4rt_core::{BoDesc, Error, Fence, Submitter};
use pm4rt_sim::engine::{Engine, EngineConfig, RingWork, Work};
use pm4rt_sim::memory::GpuMemory;
use rstest::rstest;

fn expect_fault(r: Result<(), Error>, va: u64) {
    assert_eq!(r, Err(Error::Fault { va }));
}

#[test]
fn fault_on_write_data_destination() {
    let mut rig = Rig::new();
    expect_fault(rig.run(&[write_mem(UNMAPPED + 0x10, &[1])]), UNMAPPED + 0x10);
}

#[test]
fn fault_names_first_unmapped_byte_of_a_straddling_write() {
    let mut rig = Rig::new();
    // Two dwords starting 4 bytes before the end of the data BO: the second one faults.
    let r = rig.run(&[write_mem(DATA + DATA_SIZE - 4, &[1, 2])]);
    expect_fault(r, DATA + DATA_SIZE);
    assert_eq!(rig.data_u32(DATA_SIZE - 4), 0, "a faulting write writes nothing");
}

#[test]
fn fault_on_copy_data_source() {
    let mut rig = Rig::new();
    let p = Packet::CopyData(CopyData {
        src_sel: 2,
        dst_sel: 5,
        src: UNMAPPED + 0x40,
        dst: DATA,
        ..Default::default()
    });
    expect_fault(rig.run(&[p]), UNMAPPED + 0x40);
}

#[test]
fn fault_on_ib_fetch() {
    let mut rig = Rig::new();
    let f = rig.sim.submit_ib(UNMAPPED + 0x100, 8).unwrap();
    expect_fault(rig.sim.wait_fence(f, WAIT), UNMAPPED + 0x100);
}

#[test]
fn fault_on_nested_ib_fetch_past_the_bo_end() {
    let mut rig = Rig::new();
    // The nested IB starts 8 bytes before the end of the IB BO and is 4 dwords long.
    let ib = Packet::IndirectBuffer(IndirectBuffer {
        va: IB + IB_SIZE - 8,
        size_dw: 4,
        valid: true,
        ..Default::default()
    });
    expect_fault(rig.run(&[ib]), IB + IB_SIZE);
}

#[test]
fn fault_on_release_mem_address() {
    let mut rig = Rig::new();
    expect_fault(rig.run(&[fence32(UNMAPPED + 8, 1)]), UNMAPPED + 8);
}

#[test]
fn fault_after_unmap() {
    let mut rig = Rig::new();
    rig.run(&[write_mem(DATA, &[1])]).unwrap();
    rig.sim.unmap_va(rig.data).unwrap();
    expect_fault(rig.run(&[write_mem(DATA, &[2])]), DATA);
}

#[test]
fn fault_is_sticky_for_later_submissions() {
    let mut rig = Rig::new();
    // Hold the queue at a gate until all three are queued, so none is refused at submit.
    let ok = rig.submit(&[wait_eq(DATA + 0x100, 1), write_mem(DATA, &[1])]);
    let bad = rig.submit(&[write_mem(UNMAPPED, &[1])]);
    let later = rig.submit(&[write_mem(DATA + 4, &[2])]);
    rig.set_data_u32(0x100, 1);
    assert_eq!(rig.sim.wait_fence(ok, WAIT), Ok(()));
    expect_fault(rig.sim.wait_fence(later, WAIT), UNMAPPED);
    expect_fault(rig.sim.wait_fence(bad, WAIT), UNMAPPED);
    assert_eq!(rig.data_u32(4), 0, "work after the fault never ran");
    let (va, n) = rig.put(&[write_mem(DATA + 8, &[3])]);
    assert!(matches!(rig.sim.submit_ib(va, n), Err(Error::DeviceLost { .. })));
}

#[test]
fn wait_reg_mem_deadline_halts_the_queue() {
    let mut rig = Rig::with_deadline(Duration::from_millis(50));
    rig.set_data_u32(0, 3);
    let t = Instant::now();
    let r = rig.run(&[wait_eq(DATA, 7)]);
    assert_eq!(
        r,
        Err(Error::WaitRegMemDeadline {
            va: DATA,
            reference: 7,
            mask: 0xFFFF_FFFF,
            function: "==",
            last: 3
        })
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn wait_reg_mem_released_by_a_later_host_write() {
    let mut rig = Rig::new();
    let f = rig.submit(&[wait_eq(DATA, 0xC0DE), write_mem(DATA + 4, &[1])]);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(rig.data_u32(4), 0, "the queue must still be blocked");
    rig.set_data_u32(0, 0xC0DE);
    rig.sim.wait_fence(f, WAIT).unwrap();
    assert_eq!(rig.data_u32(4), 1);
}

#[rstest]
#[case::within_limit(4, Ok(()))]
#[case::over_limit(5, Err(()))]
fn ib_depth_limit(#[case] levels: u32, #[case] want: Result<(), ()>) {
    let mut rig = Rig::new();
    // Build levels-1 nested IBs under the submitted one; the innermost writes a marker.
    let (mut va, mut n) = rig.put(&[write_mem(DATA, &[9])]);
    let mut parents = vec![];
    for _ in 1..levels - 1 {
        let p = Packet::IndirectBuffer(IndirectBuffer {
            va,
            size_dw: n,
            valid: true,
            ..Default::default()
        });
        (va, n) = rig.put(&[p]);
        parents.push(va);
    }
    let top = Packet::IndirectBuffer(IndirectBuffer {
        va,
        size_dw: n,
        valid: true,
        ..Default::default()
    });
    let r = rig.run(&[top]);
    match want {
        Ok(()) => {
            assert_eq!(r, Ok(()));
            assert_eq!(rig.data_u32(0), 9);
        }
        Err(()) => {
            // Level 4 (the first parent built) holds the packet that would open level 5.
            assert_eq!(r, Err(Error::IbDepth { ib_va: parents[0], limit: 4 }));
            assert_eq!(rig.data_u32(0), 0);
        }
    }
}

#[test]
fn malformed_pm4_names_the_dword_offset() {
    let mut rig = Rig::new();
    let mut dw = encode_packet(&write_mem(DATA, &[1])); // 5 dwords: offsets 0..5
    dw.push(0x0000_1234); // a type-0 header at dword 5
    let (va, n) = rig.put_dwords(&dw);
    let f = rig.sim.submit_ib(va, n).unwrap();
    match rig.sim.wait_fence(f, WAIT) {
        Err(Error::Pm4 { ib_va, source }) => {
            assert_eq!(ib_va, va);
            assert_eq!(source.offset, 5);
            assert!(matches!(source.kind, DecodeErrorKind::BadType { ptype: 0, .. }));
        }
        other => panic!("expected Pm4 error, got {other:?}"),
    }
    assert_eq!(rig.data_u32(0), 1, "the packet before the bad one ran");
}

#[test]
fn truncated_packet_is_malformed() {
    let mut rig = Rig::new();
    let dw = encode_packet(&write_mem(DATA, &[1, 2, 3]));
    let (va, _) = rig.put_dwords(&dw);
    let f = rig.sim.submit_ib(va, 4).unwrap(); // cut the 7-dword packet short
    assert!(matches!(
        rig.sim.wait_fence(f, WAIT),
        Err(Error::Pm4 { source, .. }) if source.offset == 0
    ));
}

#[test]
fn unsupported_opcode_stops_the_queue() {
    let mut rig = Rig::new();
    let r = rig.run(&[write_mem(DATA, &[1]), Packet::Other { opcode: 0x16, body: vec![0, 0] }]);
    assert!(matches!(&r, Err(Error::Pm4 { source, .. }) if source.offset == 5), "{r:?}");
}

#[test]
fn thousand_submissions_in_flight_retire_in_order() {
    let mut rig = Rig::new();
    let mut fences = Vec::new();
    for i in 0..1000u32 {
        // Each submission writes its index to its own slot and bumps a shared "last" word.
        let pkts =
            [write_mem(DATA + 4 * u64::from(i), &[i + 1]), fence32(DATA + 0x1000 * 3, i + 1)];
        fences.push(rig.submit(&pkts));
    }
    let seqs: Vec<u64> = fences.iter().map(|f| f.seq).collect();
    assert_eq!(seqs, (1..=1000).collect::<Vec<u64>>());
    rig.sim.wait_fence(*fences.last().unwrap(), WAIT).unwrap();
    for f in &fences {
        rig.sim.wait_fence(*f, Duration::ZERO).unwrap();
    }
    for i in 0..1000u64 {
        assert_eq!(rig.data_u32(4 * i), i as u32 + 1);
    }
    assert_eq!(rig.data_u32(0x3000), 1000);
    let c = rig.sim.info().counters;
    assert_eq!((c.submissions, c.retired, c.ioctls), (1000, 1000, 0));
}

#[test]
fn wait_times_out_then_completes() {
    let mut rig = Rig::new();
    let f = rig.submit(&[wait_eq(DATA, 1), fence32(DATA + 4, 2)]);
    let t = Instant::now();
    match rig.sim.wait_fence(f, Duration::from_millis(10)) {
        Err(Error::Timeout { fence, waited }) => {
            assert_eq!(fence, f);
            assert!(waited >= Duration::from_millis(10));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1));
    rig.set_data_u32(0, 1);
    rig.sim.wait_fence(f, WAIT).unwrap();
    assert_eq!(rig.data_u32(4), 2);
}

#[test]
fn unknown_fence() {
    let mut rig = Rig::new();
    assert_eq!(
        rig.sim.wait_fence(Fence { seq: 1 }, WAIT),
        Err(Error::UnknownFence(Fence { seq: 1 }))
    );
}

#[test]
fn drop_with_work_in_flight_does_not_hang() {
    let mut rig = Rig::with_deadline(Duration::from_secs(30));
    for _ in 0..10 {
        rig.submit(&[wait_eq(DATA, 1)]);
    }
    std::thread::sleep(Duration::from_millis(5));
    let t = Instant::now();
    drop(rig);
    assert!(t.elapsed() < Duration::from_secs(1), "drop took {:?}", t.elapsed());
}

#[test]
fn submit_rejects_empty_or_misaligned_ib() {
    let mut rig = Rig::new();
    assert!(matches!(rig.sim.submit_ib(IB, 0), Err(Error::InvalidArgument(_))));
    assert!(matches!(rig.sim.submit_ib(IB + 2, 4), Err(Error::InvalidArgument(_))));
}

const RING: u64 = 0x1_0000_0000;
const RPTR: u64 = 0x1_0000_1000;
const OUT: u64 = 0x1_0000_2000;

/// An engine over one 12 KiB BO mapped at [`RING`]: the ring at `RING`, its 64-bit read
/// pointer at [`RPTR`], free space from [`OUT`]; packets are pushed at a host write pointer.
struct RingRig {
    mem: Arc<GpuMemory>,
    engine: Engine,
    ring_dwords: u32,
    wptr: u64,
}

impl RingRig {
    /// Read and write pointers both at `start`.
    fn new(config: EngineConfig, ring_dwords: u32, start: u64) -> RingRig {
        let mem = Arc::new(GpuMemory::new());
        let bo = pm4rt_core::BoHandle(1);
        mem.create_bo(bo, 0x3000).unwrap();
        mem.map(bo, RING, pm4rt_sim::memory::Perms::ALL).unwrap();
        mem.write_u64(RPTR, start).unwrap();
        let engine = Engine::new(Arc::clone(&mem), config).unwrap();
        RingRig { mem, engine, ring_dwords, wptr: start }
    }

    /// Writes `p` at the write pointer (wrapping) and returns the new write pointer.
    fn push(&mut self, p: &Packet) -> u64 {
        for d in encode_packet(p) {
            let at = RING + 4 * (self.wptr % u64::from(self.ring_dwords));
            self.mem.write_u32(at, d).unwrap();
            self.wptr += 1;
        }
        self.wptr
    }

    /// The work item consuming the ring up to `wptr`.
    fn work(&self, wptr: u64) -> Work {
        Work::Ring(RingWork { ring_va: RING, ring_dwords: self.ring_dwords, rptr_va: RPTR, wptr })
    }
}

/// A ring of 64 dwords driven straight through the engine.
#[test]
fn ring_consumes_up_to_wptr_wrapping_and_updates_rptr() {
    // Start near the end so the second packet wraps: rptr = wptr = 60 (ring index 60).
    let mut rig = RingRig::new(EngineConfig::default(), 64, 60);
    // The CP reads and writes only the 32-bit report; the dword after it is someone else's.
    rig.mem.write_u32(RPTR + 4, 0xDEAD_BEEF).unwrap();
    rig.push(&write_mem(OUT, &[0x11])); // 5 dwords: indices 60..63, 0
    let wptr = rig.push(&Packet::ReleaseMem(ReleaseMem {
        event_type: 0x14,
        event_index: 5,
        data_sel: 1,
        addr: OUT + 4,
        data: 0x22,
        ..Default::default()
    }));
    let seq = rig.engine.submit(rig.work(wptr)).unwrap();
    rig.engine.wait(seq, WAIT).unwrap();
    assert_eq!(rig.mem.read_u32(OUT).unwrap(), 0x11);
    assert_eq!(rig.mem.read_u32(OUT + 4).unwrap(), 0x22);
    // The CP's report: a 32-bit dword offset wrapped at the ring size, (60 + 5 + 8) % 64;
    // the dword after it is not written.
    assert_eq!(rig.mem.read_u32(RPTR).unwrap(), 9);
    assert_eq!(rig.mem.read_u32(RPTR + 4).unwrap(), 0xDEAD_BEEF);
    assert_eq!(rig.engine.packets(), 2);
}

#[test]
fn submitter_bookkeeping_errors() {
    let mut rig = Rig::new();
    let bo = rig.sim.alloc_bo(&BoDesc::gtt(100)).unwrap();
    // Misaligned, outside the range, overlapping.
    assert!(matches!(rig.sim.map_va(bo, Some(DATA + DATA_SIZE + 1)), Err(Error::BadVa { .. })));
    assert!(matches!(rig.sim.map_va(bo, Some(0x1000)), Err(Error::BadVa { .. })));
    assert!(matches!(rig.sim.map_va(bo, Some(DATA + 0x1000)), Err(Error::BadVa { .. })));
    // Tier-chosen VA: page aligned, inside the range, not overlapping DATA or IB.
    let va = rig.sim.map_va(bo, None).unwrap();
    assert_eq!(va % 4096, 0);
    assert!(rig.sim.info().va_range.contains(&va));
    assert!(!(DATA..DATA + DATA_SIZE).contains(&va) && !(IB..IB + IB_SIZE).contains(&va));
    assert!(matches!(rig.sim.map_va(bo, None), Err(Error::BadVa { .. })), "mapped twice");
    // Bounds: the BO is rounded up to one page.
    let mut out = [0u8; 8];
    assert!(rig.sim.read_bo(bo, 4092, &mut out[..4]).is_ok());
    assert_eq!(
        rig.sim.read_bo(bo, 4090, &mut out),
        Err(Error::OutOfBounds { bo, offset: 4090, len: 8, size: 4096 })
    );
    rig.sim.unmap_va(bo).unwrap();
    assert!(matches!(rig.sim.unmap_va(bo), Err(Error::BadVa { .. })));
    rig.sim.free_bo(bo).unwrap();
    assert_eq!(rig.sim.free_bo(bo), Err(Error::UnknownBo(bo)));
    assert!(matches!(rig.sim.alloc_bo(&BoDesc::gtt(0)), Err(Error::InvalidArgument(_))));
    let nocpu = rig.sim.alloc_bo(&BoDesc { cpu_access: false, ..BoDesc::gtt(4096) }).unwrap();
    assert!(matches!(rig.sim.write_bo(nocpu, 0, &[1]), Err(Error::Unsupported(_))));
    let info = rig.sim.info();
    assert_eq!(info.tier, pm4rt_core::Tier::Sim);
    assert_eq!(info.gfx, pm4rt_core::GfxTarget::Gfx1201);
}

/// A ring blocked in WAIT_REG_MEM (deadline far away) is unmapped: `unmap_ring` returns long
/// before the deadline, the item counts as completed (no halt, no write after the wait), a
/// later item for the same ring is skipped, other work still runs, and `map_ring` re-enables
/// the ring address.
#[test]
fn unmapping_a_ring_stops_it_between_packets_and_skips_its_later_items() {
    const IB: u64 = 0x1_0000_2800;
    let config = EngineConfig { wait_deadline: Duration::from_secs(30), ..Default::default() };
    let mut rig = RingRig::new(config, 256, 0);
    rig.push(&wait_eq(OUT, 0xC0DE));
    let blocked = rig.push(&write_mem(OUT + 4, &[1]));
    let (mem, engine) = (&rig.mem, &rig.engine);
    let first = engine.submit(rig.work(blocked)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(engine.poll(first), None, "the ring must be blocked in WAIT_REG_MEM");

    let t = Instant::now();
    engine.unmap_ring(RING, WAIT).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "unmap took {:?}", t.elapsed());
    assert_eq!(engine.poll(first), Some(Ok(())));
    assert_eq!(engine.halted(), None);
    assert_eq!(mem.read_u32(OUT + 4).unwrap(), 0, "nothing after the wait ran");

    // A later doorbell for the unmapped ring is skipped; an IB still runs.
    mem.write_u32(OUT, 0xC0DE).unwrap();
    let skipped = engine.submit(rig.work(blocked)).unwrap();
    for (i, d) in encode_packet(&write_mem(OUT + 8, &[2])).into_iter().enumerate() {
        mem.write_u32(IB + 4 * i as u64, d).unwrap();
    }
    let ib = engine.submit(Work::Ib { va: IB, dwords: 5 }).unwrap();
    engine.wait(ib, WAIT).unwrap();
    assert_eq!(engine.poll(skipped), Some(Ok(())));
    assert_eq!(mem.read_u32(OUT + 4).unwrap(), 0, "the skipped item ran");
    assert_eq!(mem.read_u32(OUT + 8).unwrap(), 2);

    // Mapped again (a new queue at the same address): the ring runs from its read pointer.
    engine.map_ring(RING);
    let again = engine.submit(rig.work(blocked)).unwrap();
    engine.wait(again, WAIT).unwrap();
    assert_eq!(mem.read_u32(OUT + 4).unwrap(), 1);
}

/// `unmap_ring` is bounded: with a long item of another queue ahead of it, it reports a
/// Timeout instead of waiting past its limit.
#[test]
fn unmapping_behind_a_long_item_times_out() {
    let mut rig = Rig::with_deadline(Duration::from_secs(30));
    let f = rig.submit(&[wait_eq(DATA, 0xC0DE)]);
    std::thread::sleep(Duration::from_millis(10));
    let engine = rig.sim.engine();
    let t = Instant::now();
    let r = engine.unmap_ring(0x7_0000_0000, Duration::from_millis(50));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    rig.set_data_u32(0, 0xC0DE);
    rig.sim.wait_fence(f, WAIT).unwrap();
}

/// The shared IB-size rule (`pm4rt_core::check_ib_size`): the simulator tier refuses an IB of
/// 2^20 dwords like the hardware tiers (INDIRECT_BUFFER's IB_SIZE is 20 bits).
#[test]
fn sim_submitter_refuses_an_ib_of_2_pow_20_dwords() {
    let mut s = pm4rt_sim::SimSubmitter::new().unwrap();
    let dwords = 1u32 << 20;
    let bo = s.alloc_bo(&BoDesc::gtt(u64::from(dwords) * 4)).unwrap();
    let va = s.map_va(bo, None).unwrap();
    match s.submit_ib(va, dwords) {
        Err(Error::InvalidArgument(m)) => assert_eq!(
            m,
            "IB of 1048576 dwords exceeds the 1048575 dwords one INDIRECT_BUFFER can run \
             (IB_SIZE is a 20-bit field)"
        ),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(s.info().counters.submissions, 0);
}

/// The engine is the CP: an IB reaches it through INDIRECT_BUFFER's 20-bit IB_SIZE, so a
/// `Work::Ib` of 2^20 dwords is refused before it is queued.
#[test]
fn engine_refuses_an_ib_the_ib_size_field_cannot_hold() {
    let engine = Engine::new(Arc::new(GpuMemory::new()), EngineConfig::default()).unwrap();
    let e = engine.submit(Work::Ib { va: 0x1000, dwords: 1 << 20 }).unwrap_err();
    assert!(matches!(&e, Error::InvalidArgument(m) if m.contains("1048575")), "{e}");
    assert_eq!(engine.submitted(), 0);
}
