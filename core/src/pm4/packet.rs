//! Typed PM4 type-3 packets, as the builder emits them and the decoder returns them.
//!
//! Field values are the raw hardware encodings (see the constants in [`super::fields`]);
//! `decode(encode(p)) == p` holds for every packet.

/// One decoded PM4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `NOP` (0x10). An empty payload is the header-only form (COUNT = 0x3FFF).
    Nop {
        /// Body dwords (ignored by the CP).
        payload: Vec<u32>,
    },
    /// `SET_SH_REG` (0x76): write consecutive SH registers starting at `offset`
    /// (register dword address - 0x2C00).
    SetShReg {
        /// First register, as an SH offset (e.g. 0x240 = COMPUTE_USER_DATA_0).
        offset: u16,
        /// One value per consecutive register; at least one.
        values: Vec<u32>,
    },
    /// `DISPATCH_DIRECT` (0x15).
    DispatchDirect {
        /// Grid size in workgroups (or threads with USE_THREAD_DIMENSIONS) for X, Y, Z.
        dim: [u32; 3],
        /// COMPUTE_DISPATCH_INITIATOR value.
        initiator: u32,
    },
    /// `RELEASE_MEM` (0x49), 8 dwords: an end-of-pipe event that writes data / interrupts.
    ReleaseMem(ReleaseMem),
    /// `ACQUIRE_MEM` (0x58), 8 dwords: cache invalidation before dependent work.
    AcquireMem(AcquireMem),
    /// `WRITE_DATA` (0x37).
    WriteData(WriteData),
    /// `COPY_DATA` (0x40), 6 dwords.
    CopyData(CopyData),
    /// `WAIT_REG_MEM` (0x3C), 7 dwords.
    WaitRegMem(WaitRegMem),
    /// `EVENT_WRITE` (0x46), 2 dwords.
    EventWrite {
        /// EVENT_TYPE \[5:0\] (e.g. 0x07 CS_PARTIAL_FLUSH).
        event_type: u8,
        /// EVENT_INDEX \[11:8\] (4 for CS_PARTIAL_FLUSH).
        event_index: u8,
    },
    /// `INDIRECT_BUFFER` (0x3F), 4 dwords: run another command buffer.
    IndirectBuffer(IndirectBuffer),
    /// A well-formed type-3 packet of an opcode this codec does not model (kept raw so a
    /// disassembly can show it; the simulator refuses it).
    Other {
        /// The opcode byte.
        opcode: u8,
        /// The body dwords.
        body: Vec<u32>,
    },
}

/// `RELEASE_MEM` fields (dword numbers as in the reference: dw1 = first body dword).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReleaseMem {
    /// dw1 EVENT_TYPE \[5:0\] (0x14 CACHE_FLUSH_AND_INV_TS_EVENT for a compute fence).
    pub event_type: u8,
    /// dw1 EVENT_INDEX \[11:8\] (5 = end of pipe).
    pub event_index: u8,
    /// dw1 GCR_CNTL \[24:12\] (13 bits).
    pub gcr_cntl: u16,
    /// dw1 CACHE_POLICY / TEMPORAL \[26:25\].
    pub cache_policy: u8,
    /// dw1 WAIT_SYNC (bit 7), PQ_EXE_STATUS (bit 28), GLK_INV (bit 30) kept as raw bits: every
    /// dw1 bit outside EVENT_TYPE, EVENT_INDEX, GCR_CNTL and CACHE_POLICY lives here.
    pub dw1_flags: u32,
    /// dw2 DST_SEL \[17:16\]: 0 memory, 1 TC_L2.
    pub dst_sel: u8,
    /// dw2 INT_SEL \[26:24\]: 0 none, 1 interrupt, 2 interrupt after write confirm, 3 send data
    /// after write confirm.
    pub int_sel: u8,
    /// dw2 DATA_SEL \[31:29\]: 0 none, 1 low 32 bits, 2 64 bits, 3 GPU clock, 4 system clock.
    pub data_sel: u8,
    /// dw3/dw4 destination address.
    pub addr: u64,
    /// dw5/dw6 data.
    pub data: u64,
    /// dw7 INT_CTXID.
    pub int_ctxid: u32,
}

/// `ACQUIRE_MEM` fields (gfx10+ 8-dword form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcquireMem {
    /// dw2 COHER_SIZE (low 32 bits) and dw3 COHER_SIZE_HI (high 32 bits), in 256-byte units as
    /// the CP reads it; 0xFF_FFFF_FFFF = everything. The CP reads COHER_SIZE_HI \[7:0\], but
    /// the whole of dw3 is kept so streams like Mesa's (dw3 = 0x01FFFFFF) round-trip.
    pub coher_size: u64,
    /// dw4 BASE_LO (low 32 bits) and dw5 BASE_HI (high 32 bits; the CP reads \[23:0\]), kept
    /// whole like `coher_size`.
    pub coher_base: u64,
    /// dw6 POLL_INTERVAL \[15:0\].
    pub poll_interval: u16,
    /// dw7 GCR_CNTL.
    pub gcr_cntl: u32,
}

/// `WRITE_DATA` fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteData {
    /// dw1 DST_SEL \[11:8\]: 0 register, 2 TC_L2, 5 memory.
    pub dst_sel: u8,
    /// dw1 ADDR_INCR (bit 16): true = write every dword to the same address.
    pub no_increment: bool,
    /// dw1 WR_CONFIRM (bit 20).
    pub wr_confirm: bool,
    /// dw1 CACHE_POLICY \[26:25\].
    pub cache_policy: u8,
    /// dw2/dw3 destination (a byte address, 4-byte aligned; a register dword address when
    /// `dst_sel` is 0).
    pub addr: u64,
    /// The data dwords (at least one).
    pub data: Vec<u32>,
}

/// `COPY_DATA` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyData {
    /// dw1 SRC_SEL \[3:0\]: 0 register, 2 TC_L2, 5 immediate, 9 GPU clock.
    pub src_sel: u8,
    /// dw1 DST_SEL \[11:8\]: 0 register, 2 TC_L2, 5 memory.
    pub dst_sel: u8,
    /// dw1 COUNT_SEL (bit 16): true = 64 bits.
    pub count64: bool,
    /// dw1 WR_CONFIRM (bit 20).
    pub wr_confirm: bool,
    /// dw2/dw3: the source address, or the immediate value when `src_sel` is 5.
    pub src: u64,
    /// dw4/dw5: the destination address.
    pub dst: u64,
}

/// `WAIT_REG_MEM` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WaitRegMem {
    /// dw1 FUNCTION \[2:0\]: 0 always, 1 <, 2 <=, 3 ==, 4 !=, 5 >=, 6 >.
    pub function: u8,
    /// dw1 MEM_SPACE \[5:4\]: 0 register, 1 memory.
    pub mem_space: u8,
    /// dw1 OPERATION \[7:6\].
    pub operation: u8,
    /// dw2/dw3 polled address (4-byte aligned).
    pub addr: u64,
    /// dw4 reference.
    pub reference: u32,
    /// dw5 mask.
    pub mask: u32,
    /// dw6 POLL_INTERVAL \[15:0\].
    pub poll_interval: u16,
}

/// `INDIRECT_BUFFER` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndirectBuffer {
    /// dw1/dw2 IB base VA (4-byte aligned).
    pub va: u64,
    /// dw3 IB_SIZE \[19:0\] in dwords.
    pub size_dw: u32,
    /// dw3 CHAIN (bit 20).
    pub chain: bool,
    /// dw3 VALID (bit 23); set on compute queues.
    pub valid: bool,
    /// dw3 VMID \[27:24\].
    pub vmid: u8,
}
