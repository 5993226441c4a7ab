//! Shared test rig: a SimSubmitter with a data BO and an IB BO at fixed VAs.
#![allow(dead_code)]

pub mod isa_rig;

use std::time::Duration;

use pm4rt_core::pm4::{encode_packet, Packet, ReleaseMem, WaitRegMem, WriteData};
use pm4rt_core::{BoDesc, BoHandle, Error, Fence, Submitter};
use pm4rt_sim::engine::EngineConfig;
use pm4rt_sim::{SimConfig, SimSubmitter};

/// VA of the 16 KiB data BO.
pub const DATA: u64 = 0x1_0000_0000;
/// VA of the 64 KiB IB BO.
pub const IB: u64 = 0x2_0000_0000;
/// A VA nothing is mapped at.
pub const UNMAPPED: u64 = 0x3_0000_0000;
/// Size of the data BO.
pub const DATA_SIZE: u64 = 16 * 1024;
/// Size of the IB BO.
pub const IB_SIZE: u64 = 64 * 1024;

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Rig {
    pub sim: SimSubmitter,
    pub data: BoHandle,
    pub ib: BoHandle,
    /// Next free byte in the IB BO.
    pub ib_off: u64,
}

impl Rig {
    pub fn new() -> Rig {
        Rig::with_deadline(Duration::from_secs(2))
    }

    pub fn with_deadline(wait_deadline: Duration) -> Rig {
        let cfg = SimConfig {
            engine: EngineConfig { wait_deadline, ..EngineConfig::default() },
            ..SimConfig::default()
        };
        let mut sim = SimSubmitter::with_config(cfg).unwrap();
        let data = sim.alloc_bo(&BoDesc::gtt(DATA_SIZE)).unwrap();
        let ib = sim.alloc_bo(&BoDesc::gtt(IB_SIZE)).unwrap();
        assert_eq!(sim.map_va(data, Some(DATA)).unwrap(), DATA);
        assert_eq!(sim.map_va(ib, Some(IB)).unwrap(), IB);
        Rig { sim, data, ib, ib_off: 0 }
    }

    /// Write raw dwords into the IB BO; returns their VA and length in dwords.
    pub fn put_dwords(&mut self, dw: &[u32]) -> (u64, u32) {
        let bytes: Vec<u8> = dw.iter().flat_map(|d| d.to_le_bytes()).collect();
        let va = IB + self.ib_off;
        self.sim.write_bo(self.ib, self.ib_off, &bytes).unwrap();
        self.ib_off += bytes.len() as u64;
        (va, dw.len() as u32)
    }

    /// Encode packets into the IB BO; returns (VA, dwords).
    pub fn put(&mut self, pkts: &[Packet]) -> (u64, u32) {
        let dw: Vec<u32> = pkts.iter().flat_map(encode_packet).collect();
        self.put_dwords(&dw)
    }

    pub fn submit(&mut self, pkts: &[Packet]) -> Fence {
        let (va, n) = self.put(pkts);
        self.sim.submit_ib(va, n).unwrap()
    }

    /// Submit and wait; the wait's result.
    pub fn run(&mut self, pkts: &[Packet]) -> Result<(), Error> {
        let f = self.submit(pkts);
        self.sim.wait_fence(f, WAIT)
    }

    pub fn data_u32(&self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.sim.read_bo(self.data, off, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    pub fn data_u64(&self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.sim.read_bo(self.data, off, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    pub fn set_data_u32(&mut self, off: u64, v: u32) {
        self.sim.write_bo(self.data, off, &v.to_le_bytes()).unwrap();
    }
}

/// WRITE_DATA of `data` to memory at `addr` (DST_SEL 5).
pub fn write_mem(addr: u64, data: &[u32]) -> Packet {
    Packet::WriteData(WriteData { dst_sel: 5, addr, data: data.to_vec(), ..Default::default() })
}

/// RELEASE_MEM end-of-pipe fence writing the low 32 bits of `value` at `addr`.
pub fn fence32(addr: u64, value: u32) -> Packet {
    Packet::ReleaseMem(ReleaseMem {
        event_type: 0x14,
        event_index: 5,
        data_sel: 1,
        addr,
        data: u64::from(value),
        ..Default::default()
    })
}

/// WAIT_REG_MEM on memory: (mem[addr] & mask) == reference.
pub fn wait_eq(addr: u64, reference: u32) -> Packet {
    Packet::WaitRegMem(WaitRegMem {
        function: 3,
        mem_space: 1,
        addr,
        reference,
        mask: 0xFFFF_FFFF,
        poll_interval: 10,
        ..Default::default()
    })
}
