//! One test per packet kind: what each lands in memory / registers.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use pm4rt_core::pm4::{AcquireMem, CopyData, IndirectBuffer, Packet, ReleaseMem, WriteData};
use pm4rt_core::{Error, Result, Submitter};
use pm4rt_sim::engine::{DispatchContext, DispatchHook, Interrupt};
use rstest::rstest;

#[test]
fn nop_forms_are_accepted() {
    let mut rig = Rig::new();
    rig.run(&[
        Packet::Nop { payload: vec![] },
        Packet::Nop { payload: vec![1, 2, 3] },
        write_mem(DATA, &[0x1234_5678]),
    ])
    .unwrap();
    assert_eq!(rig.data_u32(0), 0x1234_5678);
    assert_eq!(rig.sim.engine().packets(), 3);
}

#[rstest]
#[case::tc_l2(2)]
#[case::memory(5)]
fn write_data_memory(#[case] dst_sel: u8) {
    let mut rig = Rig::new();
    let p = Packet::WriteData(WriteData {
        dst_sel,
        addr: DATA + 0x40,
        data: vec![0xAAAA_0001, 0xBBBB_0002, 0xCCCC_0003],
        ..Default::default()
    });
    rig.run(&[p]).unwrap();
    assert_eq!(rig.data_u32(0x40), 0xAAAA_0001);
    assert_eq!(rig.data_u32(0x44), 0xBBBB_0002);
    assert_eq!(rig.data_u32(0x48), 0xCCCC_0003);
    assert_eq!(rig.data_u32(0x4C), 0);
}

#[test]
fn write_data_no_increment_writes_one_address() {
    let mut rig = Rig::new();
    let p = Packet::WriteData(WriteData {
        dst_sel: 5,
        no_increment: true,
        addr: DATA + 8,
        data: vec![1, 2, 3],
        ..Default::default()
    });
    rig.run(&[p]).unwrap();
    assert_eq!(rig.data_u32(8), 3);
    assert_eq!(rig.data_u32(12), 0);
}

#[test]
fn write_data_register_lands_in_register_file() {
    let mut rig = Rig::new();
    // COMPUTE_USER_DATA_0 is register dword 0x2E40 (gc_11_0_0_offset.h regCOMPUTE_USER_DATA_0
    // 0x1BE0 + the GC segment base 0x1260).
    let p = Packet::WriteData(WriteData {
        dst_sel: 0,
        addr: 0x2E40,
        data: vec![0xDEAD, 0xBEEF],
        ..Default::default()
    });
    rig.run(&[p]).unwrap();
    let regs = rig.sim.engine().registers(pm4rt_sim::engine::QueueId::Direct);
    assert_eq!(regs.get(0x2E40), 0xDEAD);
    assert_eq!(regs.get(0x2E41), 0xBEEF);
}

#[test]
fn set_sh_reg_writes_consecutive_registers() {
    let mut rig = Rig::new();
    rig.run(&[Packet::SetShReg { offset: 0x240, values: vec![7, 8, 9] }]).unwrap();
    let regs = rig.sim.engine().registers(pm4rt_sim::engine::QueueId::Direct);
    assert_eq!(regs.get(0x2E40), 7);
    assert_eq!(regs.get(0x2E41), 8);
    assert_eq!(regs.get(0x2E42), 9);
    assert_eq!(regs.sh(0x242), 9);
}

#[rstest]
#[case::imm32(5, false, 0x1122_3344_5566_7788, 0x0000_0000_5566_7788)]
#[case::imm64(5, true, 0x1122_3344_5566_7788, 0x1122_3344_5566_7788)]
#[case::mem32(2, false, 0, 0x0000_0000_CAFE_0002)]
#[case::mem64(2, true, 0, 0xCAFE_0001_CAFE_0002)]
fn copy_data(#[case] src_sel: u8, #[case] count64: bool, #[case] imm: u64, #[case] want: u64) {
    let mut rig = Rig::new();
    rig.sim.write_bo(rig.data, 0x100, &0xCAFE_0001_CAFE_0002u64.to_le_bytes()).unwrap();
    // Pre-fill the destination so a 32-bit copy visibly leaves the high half alone.
    rig.sim.write_bo(rig.data, 0x200, &[0u8; 8]).unwrap();
    let src = if src_sel == 5 { imm } else { DATA + 0x100 };
    let p = Packet::CopyData(CopyData {
        src_sel,
        dst_sel: 5,
        count64,
        src,
        dst: DATA + 0x200,
        ..Default::default()
    });
    rig.run(&[p]).unwrap();
    assert_eq!(rig.data_u64(0x200), want);
}

#[test]
fn copy_data_register_to_memory() {
    let mut rig = Rig::new();
    let p = Packet::CopyData(CopyData {
        src_sel: 0,
        dst_sel: 5,
        count64: false,
        src: 0x2E40,
        dst: DATA,
        ..Default::default()
    });
    rig.run(&[Packet::SetShReg { offset: 0x240, values: vec![0x55AA] }, p]).unwrap();
    assert_eq!(rig.data_u32(0), 0x55AA);
}

#[test]
fn release_mem_data_sel_32_and_64() {
    let mut rig = Rig::new();
    rig.sim.write_bo(rig.data, 0, &[0xFF; 16]).unwrap();
    let r64 = Packet::ReleaseMem(ReleaseMem {
        event_type: 0x14,
        event_index: 5,
        data_sel: 2,
        addr: DATA + 8,
        data: 0x0102_0304_0506_0708,
        ..Default::default()
    });
    rig.run(&[fence32(DATA, 0xABCD_0001), r64]).unwrap();
    assert_eq!(rig.data_u32(0), 0xABCD_0001);
    assert_eq!(rig.data_u32(4), 0xFFFF_FFFF, "32-bit fence must not touch the next dword");
    assert_eq!(rig.data_u64(8), 0x0102_0304_0506_0708);
}

#[rstest]
#[case::gpu_clock(3)]
#[case::system_clock(4)]
fn release_mem_timestamps_increase(#[case] data_sel: u8) {
    let mut rig = Rig::new();
    let ts = |addr| {
        Packet::ReleaseMem(ReleaseMem {
            event_type: 0x14,
            event_index: 5,
            data_sel,
            addr,
            ..Default::default()
        })
    };
    rig.run(&[ts(DATA)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    rig.run(&[ts(DATA + 8)]).unwrap();
    let (a, b) = (rig.data_u64(0), rig.data_u64(8));
    assert!(a > 0 && b > a, "timestamps {a} then {b}");
}

#[test]
fn release_mem_interrupt_reaches_hook() {
    let mut rig = Rig::new();
    let seen: Arc<Mutex<Vec<Interrupt>>> = Arc::default();
    let s2 = Arc::clone(&seen);
    rig.sim.set_interrupt_hook(Some(Arc::new(move |i: &Interrupt| s2.lock().unwrap().push(*i))));
    let p = Packet::ReleaseMem(ReleaseMem {
        event_type: 0x14,
        event_index: 5,
        int_sel: 2,
        data_sel: 1,
        addr: DATA + 4,
        data: 77,
        int_ctxid: 0x5151,
        ..Default::default()
    });
    let f = rig.submit(&[fence32(DATA, 1), p]);
    rig.sim.wait_fence(f, WAIT).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "only the INT_SEL packet interrupts");
    assert_eq!(seen[0].ctxid, 0x5151);
    assert_eq!(seen[0].int_sel, 2);
    assert_eq!(seen[0].addr, DATA + 4);
    assert_eq!(seen[0].data, 77);
    assert_eq!(seen[0].seq, f.seq);
    assert_eq!(rig.sim.engine().interrupts(), 1);
    assert_eq!(rig.data_u32(4), 77);
}

#[test]
fn acquire_mem_and_event_write_are_accepted() {
    let mut rig = Rig::new();
    rig.run(&[
        Packet::AcquireMem(AcquireMem {
            coher_size: 0xFF_FFFF_FFFF,
            poll_interval: 10,
            ..Default::default()
        }),
        Packet::EventWrite { event_type: 7, event_index: 4 },
        write_mem(DATA, &[5]),
    ])
    .unwrap();
    assert_eq!(rig.data_u32(0), 5);
}

#[test]
fn wait_reg_mem_already_true_passes() {
    let mut rig = Rig::new();
    rig.set_data_u32(0, 9);
    rig.run(&[wait_eq(DATA, 9), write_mem(DATA + 4, &[1])]).unwrap();
    assert_eq!(rig.data_u32(4), 1);
}

#[test]
fn indirect_buffer_nested_runs_and_returns() {
    let mut rig = Rig::new();
    let (inner, n) = rig.put(&[write_mem(DATA + 4, &[2])]);
    let call = |va, size_dw| {
        Packet::IndirectBuffer(IndirectBuffer { va, size_dw, valid: true, ..Default::default() })
    };
    let (mid, m) = rig.put(&[call(inner, n), write_mem(DATA + 8, &[3])]);
    rig.run(&[write_mem(DATA, &[1]), call(mid, m), write_mem(DATA + 12, &[4])]).unwrap();
    assert_eq!([0, 4, 8, 12].map(|o| rig.data_u32(o)), [1, 2, 3, 4]);
}

#[test]
fn indirect_buffer_chain_does_not_return() {
    let mut rig = Rig::new();
    let (target, n) = rig.put(&[write_mem(DATA + 4, &[2])]);
    let chain = Packet::IndirectBuffer(IndirectBuffer {
        va: target,
        size_dw: n,
        chain: true,
        valid: true,
        ..Default::default()
    });
    rig.run(&[write_mem(DATA, &[1]), chain, write_mem(DATA + 8, &[3])]).unwrap();
    assert_eq!(rig.data_u32(0), 1);
    assert_eq!(rig.data_u32(4), 2);
    assert_eq!(rig.data_u32(8), 0, "packets after a CHAIN are not executed");
}

#[test]
fn dispatch_without_hook_names_the_code_va() {
    let mut rig = Rig::new();
    let code = 0x1_2345_6700u64;
    let r = rig.run(&[
        // PGM_LO = VA >> 8, PGM_HI = VA >> 40 (tinygrad ops_amd.py: AMDComputeQueue.exec).
        Packet::SetShReg { offset: 0x20C, values: vec![(code >> 8) as u32, (code >> 40) as u32] },
        Packet::DispatchDirect { dim: [1, 1, 1], initiator: 5 },
    ]);
    match r {
        Err(Error::Dispatch { pgm_va, reason }) => {
            assert_eq!(pgm_va, code);
            assert!(reason.contains("no kernel registered"), "{reason}");
        }
        other => panic!("expected Dispatch error, got {other:?}"),
    }
}

/// Records the context and writes user_data_1 to the VA held in user_data_0.
/// One recorded dispatch: (PGM VA, grid, initiator, workgroup size).
type Dispatched = (u64, [u32; 3], u32, [u32; 3]);

struct Recorder(Mutex<Vec<Dispatched>>);

impl DispatchHook for Recorder {
    fn dispatch(&self, ctx: &mut DispatchContext<'_>) -> Result<()> {
        self.0.lock().unwrap().push((ctx.pgm_va(), ctx.dim, ctx.initiator, ctx.num_threads()));
        ctx.memory.write_u32(u64::from(ctx.user_data(0)) | (1 << 32), ctx.user_data(1))
    }
}

#[test]
fn dispatch_direct_calls_hook_with_registers() {
    let mut rig = Rig::new();
    let hook = Arc::new(Recorder(Mutex::new(vec![])));
    rig.sim.set_dispatch_hook(Some(hook.clone()));
    let code = 0x1_0000_1000u64;
    rig.run(&[
        Packet::SetShReg { offset: 0x20C, values: vec![(code >> 8) as u32, (code >> 40) as u32] },
        Packet::SetShReg { offset: 0x207, values: vec![64, 1, 1] },
        // user_data_0 = low 32 bits of DATA + 0x20 (the hook adds 1 << 32), user_data_1 = 42.
        Packet::SetShReg { offset: 0x240, values: vec![0x20, 42] },
        Packet::DispatchDirect { dim: [3, 2, 1], initiator: 0x8005 },
    ])
    .unwrap();
    let calls = hook.0.lock().unwrap();
    assert_eq!(calls.as_slice(), &[(code, [3, 2, 1], 0x8005, [64, 1, 1])]);
    assert_eq!(rig.data_u32(0x20), 42);
    assert_eq!(rig.sim.engine().dispatches(), 1);
}
