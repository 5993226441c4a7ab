//! Declarative PM4 tables: opcodes, SH registers, bit fields, event types and selectors.
//!
//! Every number here comes from the kernel's packet header `drivers/gpu/drm/amd/amdgpu/nvd.h`
//! (the `PACKET3_*` definitions that both `gfx_v11_0.c` and `gfx_v12_0.c` include), Mesa's
//! `src/amd/common/sid.h` and the register headers under
//! `drivers/gpu/drm/amd/include/asic_reg/gc/`. The encoder, decoder, builder and disassembler
//! all read these tables; none of them repeats a bit position.
//!
//! Cache-control (GCR) bits: gfx11 and gfx12 share one layout. The kernel's gfx12 ring code
//! sets GLM_WB, GLM_INV and GL1_INV in its own packets (`gfx_v12_0.c: gfx_v12_0_emit_mem_sync`),
//! so no GCR bit is reserved on either target and every stream the kernel emits decodes and
//! disassembles with each bit named.

/// A bit field inside one dword: `name` occupies bits `[lo + width - 1 : lo]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Field name as in the reference (upper case).
    pub name: &'static str,
    /// Lowest bit.
    pub lo: u8,
    /// Width in bits (1..=32).
    pub width: u8,
}

impl Field {
    /// A field named `name` at bits `[lo + width - 1 : lo]`.
    pub const fn new(name: &'static str, lo: u8, width: u8) -> Field {
        Field { name, lo, width }
    }

    /// The field's bits in place (e.g. `0x0000_0F00` for `\[11:8\]`).
    pub const fn mask(self) -> u32 {
        let ones = if self.width >= 32 { u32::MAX } else { (1u32 << self.width) - 1 };
        ones << self.lo
    }

    /// The largest value the field holds.
    pub const fn max(self) -> u32 {
        self.mask() >> self.lo
    }

    /// Extract the field from `dword`.
    pub const fn get(self, dword: u32) -> u32 {
        (dword & self.mask()) >> self.lo
    }

    /// `value` shifted into place, masked to the field's width.
    pub const fn put(self, value: u32) -> u32 {
        (value << self.lo) & self.mask()
    }

    /// True if `value` fits the field's width.
    pub const fn fits(self, value: u32) -> bool {
        value <= self.max()
    }
}

/// Union of the masks of `fields`.
pub const fn fields_mask(fields: &[Field]) -> u32 {
    let mut m = 0;
    let mut i = 0;
    while i < fields.len() {
        m |= fields[i].mask();
        i += 1;
    }
    m
}

/// The type-3 packet header.
pub mod header {
    use super::Field;

    /// Packet type \[31:30\] (3 for every packet this codec emits).
    pub const TYPE: Field = Field::new("TYPE", 30, 2);
    /// COUNT \[29:16\] = body dwords - 1.
    pub const COUNT: Field = Field::new("COUNT", 16, 14);
    /// IT_OPCODE \[15:8\].
    pub const OPCODE: Field = Field::new("OPCODE", 8, 8);
    /// RESET_FILTER_CAM (bit 2, gfx11+).
    pub const RESET_FILTER_CAM: Field = Field::new("RESET_FILTER_CAM", 2, 1);
    /// SHADER_TYPE (bit 1): 1 = compute. Set on every packet the encoder emits.
    pub const SHADER_TYPE: Field = Field::new("SHADER_TYPE", 1, 1);
    /// PREDICATE (bit 0). The decoder rejects predicated packets.
    pub const PREDICATE: Field = Field::new("PREDICATE", 0, 1);
    /// Bits \[7:3\], reserved.
    pub const RESERVED: Field = Field::new("RESERVED", 3, 5);
    /// Header-only NOP: COUNT = 0x3FFF on opcode NOP means the packet is the header alone.
    pub const NOP_HEADER_ONLY_COUNT: u32 = 0x3FFF;
    /// Type-2 filler dword (rejected by the decoder, never emitted).
    pub const TYPE2_FILLER: u32 = 0x8000_0000;
    /// Most body dwords a type-3 packet can carry (COUNT = 0x3FFF).
    pub const MAX_BODY: usize = 0x4000;
    /// Most payload dwords of a NOP (COUNT = 0x3FFE; 0x3FFF is the header-only form).
    pub const MAX_NOP_PAYLOAD: usize = 0x3FFF;

    /// The header of a compute type-3 packet with `body` body dwords (`body` >= 1).
    pub const fn pkt3(opcode: u8, body: usize) -> u32 {
        TYPE.put(3) | COUNT.put(body as u32 - 1) | OPCODE.put(opcode as u32) | SHADER_TYPE.put(1)
    }

    /// The header-only NOP.
    pub const fn nop_header_only() -> u32 {
        TYPE.put(3)
            | COUNT.put(NOP_HEADER_ONLY_COUNT)
            | OPCODE.put(super::op::NOP as u32)
            | SHADER_TYPE.put(1)
    }
}

/// Type-3 opcodes (IT_OPCODE).
pub mod op {
    /// NOP.
    pub const NOP: u8 = 0x10;
    /// DISPATCH_DIRECT.
    pub const DISPATCH_DIRECT: u8 = 0x15;
    /// DISPATCH_INDIRECT (not modelled; decodes as `Other`).
    pub const DISPATCH_INDIRECT: u8 = 0x16;
    /// ATOMIC_MEM (not modelled).
    pub const ATOMIC_MEM: u8 = 0x1E;
    /// WRITE_DATA.
    pub const WRITE_DATA: u8 = 0x37;
    /// WAIT_REG_MEM.
    pub const WAIT_REG_MEM: u8 = 0x3C;
    /// INDIRECT_BUFFER.
    pub const INDIRECT_BUFFER: u8 = 0x3F;
    /// COPY_DATA.
    pub const COPY_DATA: u8 = 0x40;
    /// EVENT_WRITE.
    pub const EVENT_WRITE: u8 = 0x46;
    /// RELEASE_MEM.
    pub const RELEASE_MEM: u8 = 0x49;
    /// DMA_DATA (not modelled).
    pub const DMA_DATA: u8 = 0x50;
    /// ACQUIRE_MEM.
    pub const ACQUIRE_MEM: u8 = 0x58;
    /// SET_SH_REG.
    pub const SET_SH_REG: u8 = 0x76;
    /// SET_UCONFIG_REG (not modelled).
    pub const SET_UCONFIG_REG: u8 = 0x79;
    /// SET_SH_REG_PAIRS (gfx12, not modelled).
    pub const SET_SH_REG_PAIRS: u8 = 0xBA;
}

/// How many body dwords (after the header) a packet has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLen {
    /// Exactly this many.
    Fixed(usize),
    /// At least this many.
    Min(usize),
    /// Not constrained by this codec (opcode known by name only).
    Any,
}

/// One row of the opcode table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpcodeInfo {
    /// IT_OPCODE.
    pub opcode: u8,
    /// Packet name.
    pub name: &'static str,
    /// Body length rule.
    pub body: BodyLen,
    /// True if [`crate::pm4::Packet`] has a typed variant for it (else it decodes as `Other`).
    pub modelled: bool,
}

const fn opc(opcode: u8, name: &'static str, body: BodyLen, modelled: bool) -> OpcodeInfo {
    OpcodeInfo { opcode, name, body, modelled }
}

/// The opcode table (`nvd.h` `PACKET3_*` opcodes). Body = total dwords - 1.
pub const OPCODES: &[OpcodeInfo] = &[
    // NOP: COUNT+2 dwords, or the header alone (COUNT 0x3FFF).
    opc(op::NOP, "NOP", BodyLen::Min(0), true),
    // DISPATCH_DIRECT: 5 dwords.
    opc(op::DISPATCH_DIRECT, "DISPATCH_DIRECT", BodyLen::Fixed(4), true),
    opc(op::DISPATCH_INDIRECT, "DISPATCH_INDIRECT", BodyLen::Any, false),
    opc(op::ATOMIC_MEM, "ATOMIC_MEM", BodyLen::Any, false),
    // WRITE_DATA: 4 + n dwords, n >= 1.
    opc(op::WRITE_DATA, "WRITE_DATA", BodyLen::Min(4), true),
    // WAIT_REG_MEM: 7 dwords.
    opc(op::WAIT_REG_MEM, "WAIT_REG_MEM", BodyLen::Fixed(6), true),
    // INDIRECT_BUFFER: 4 dwords.
    opc(op::INDIRECT_BUFFER, "INDIRECT_BUFFER", BodyLen::Fixed(3), true),
    // COPY_DATA: 6 dwords.
    opc(op::COPY_DATA, "COPY_DATA", BodyLen::Fixed(5), true),
    // EVENT_WRITE: 2 dwords.
    opc(op::EVENT_WRITE, "EVENT_WRITE", BodyLen::Fixed(1), true),
    // RELEASE_MEM: 8 dwords.
    opc(op::RELEASE_MEM, "RELEASE_MEM", BodyLen::Fixed(7), true),
    opc(op::DMA_DATA, "DMA_DATA", BodyLen::Any, false),
    // ACQUIRE_MEM: 8 dwords.
    opc(op::ACQUIRE_MEM, "ACQUIRE_MEM", BodyLen::Fixed(7), true),
    // SET_SH_REG: 2 + n dwords, n >= 1.
    opc(op::SET_SH_REG, "SET_SH_REG", BodyLen::Min(2), true),
    opc(op::SET_UCONFIG_REG, "SET_UCONFIG_REG", BodyLen::Min(2), false),
    opc(op::SET_SH_REG_PAIRS, "SET_SH_REG_PAIRS", BodyLen::Any, false),
];

/// The opcode table row for `opcode`, if it is listed.
pub fn opcode_info(opcode: u8) -> Option<&'static OpcodeInfo> {
    OPCODES.iter().find(|o| o.opcode == opcode)
}

/// The name of `opcode`, or `None` if it is not in [`OPCODES`].
pub fn opcode_name(opcode: u8) -> Option<&'static str> {
    opcode_info(opcode).map(|o| o.name)
}

/// SH register offsets for SET_SH_REG (register dword address - 0x2C00). Identical on
/// gfx10.3, gfx11 and gfx12.
pub mod regs {
    /// SH register space base (dword address); SET_SH_REG offsets are relative to it.
    pub const SH_REG_BASE_DWORD: u32 = 0x2C00;
    /// Size of the SH register space in dwords: Mesa `sid.h` SI_SH_REG_OFFSET 0xB000 ..
    /// SI_SH_REG_END 0xC000 (bytes) = 0x400 dwords. SET_SH_REG must stay below it.
    pub const SH_REG_SPACE_DWORDS: u16 = 0x400;
    /// COMPUTE_DISPATCH_INITIATOR.
    pub const COMPUTE_DISPATCH_INITIATOR: u16 = 0x200;
    /// COMPUTE_DIM_X.
    pub const COMPUTE_DIM_X: u16 = 0x201;
    /// COMPUTE_DIM_Y.
    pub const COMPUTE_DIM_Y: u16 = 0x202;
    /// COMPUTE_DIM_Z.
    pub const COMPUTE_DIM_Z: u16 = 0x203;
    /// COMPUTE_START_X.
    pub const COMPUTE_START_X: u16 = 0x204;
    /// COMPUTE_START_Y.
    pub const COMPUTE_START_Y: u16 = 0x205;
    /// COMPUTE_START_Z.
    pub const COMPUTE_START_Z: u16 = 0x206;
    /// COMPUTE_NUM_THREAD_X (workgroup size X).
    pub const COMPUTE_NUM_THREAD_X: u16 = 0x207;
    /// COMPUTE_NUM_THREAD_Y.
    pub const COMPUTE_NUM_THREAD_Y: u16 = 0x208;
    /// COMPUTE_NUM_THREAD_Z.
    pub const COMPUTE_NUM_THREAD_Z: u16 = 0x209;
    /// COMPUTE_PGM_LO (code VA >> 8).
    pub const COMPUTE_PGM_LO: u16 = 0x20C;
    /// COMPUTE_PGM_HI (code VA >> 40).
    pub const COMPUTE_PGM_HI: u16 = 0x20D;
    /// COMPUTE_DISPATCH_SCRATCH_BASE_LO.
    pub const COMPUTE_DISPATCH_SCRATCH_BASE_LO: u16 = 0x210;
    /// COMPUTE_DISPATCH_SCRATCH_BASE_HI.
    pub const COMPUTE_DISPATCH_SCRATCH_BASE_HI: u16 = 0x211;
    /// COMPUTE_PGM_RSRC1.
    pub const COMPUTE_PGM_RSRC1: u16 = 0x212;
    /// COMPUTE_PGM_RSRC2.
    pub const COMPUTE_PGM_RSRC2: u16 = 0x213;
    /// COMPUTE_RESOURCE_LIMITS.
    pub const COMPUTE_RESOURCE_LIMITS: u16 = 0x215;
    /// COMPUTE_STATIC_THREAD_MGMT_SE0.
    pub const COMPUTE_STATIC_THREAD_MGMT_SE0: u16 = 0x216;
    /// COMPUTE_STATIC_THREAD_MGMT_SE1.
    pub const COMPUTE_STATIC_THREAD_MGMT_SE1: u16 = 0x217;
    /// COMPUTE_TMPRING_SIZE.
    pub const COMPUTE_TMPRING_SIZE: u16 = 0x218;
    /// COMPUTE_STATIC_THREAD_MGMT_SE2.
    pub const COMPUTE_STATIC_THREAD_MGMT_SE2: u16 = 0x219;
    /// COMPUTE_STATIC_THREAD_MGMT_SE3.
    pub const COMPUTE_STATIC_THREAD_MGMT_SE3: u16 = 0x21A;
    /// COMPUTE_RESTART_X.
    pub const COMPUTE_RESTART_X: u16 = 0x21B;
    /// COMPUTE_RESTART_Y.
    pub const COMPUTE_RESTART_Y: u16 = 0x21C;
    /// COMPUTE_RESTART_Z.
    pub const COMPUTE_RESTART_Z: u16 = 0x21D;
    /// COMPUTE_PGM_RSRC3.
    pub const COMPUTE_PGM_RSRC3: u16 = 0x228;
    /// COMPUTE_USER_DATA_0; slots 1..=15 follow at consecutive offsets.
    pub const COMPUTE_USER_DATA_0: u16 = 0x240;
    /// Number of COMPUTE_USER_DATA slots.
    pub const COMPUTE_USER_DATA_COUNT: u16 = 16;
}

/// One row of the SH register table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShReg {
    /// SET_SH_REG offset.
    pub offset: u16,
    /// Register name.
    pub name: &'static str,
}

const fn sh(offset: u16, name: &'static str) -> ShReg {
    ShReg { offset, name }
}

/// The SH register table (`gc_11_0_0_offset.h` / `gc_12_0_0_offset.h` `regCOMPUTE_*` minus
/// `PACKET3_SET_SH_REG_START`).
pub const SH_REGS: &[ShReg] = &[
    sh(regs::COMPUTE_DISPATCH_INITIATOR, "COMPUTE_DISPATCH_INITIATOR"),
    sh(regs::COMPUTE_DIM_X, "COMPUTE_DIM_X"),
    sh(regs::COMPUTE_DIM_Y, "COMPUTE_DIM_Y"),
    sh(regs::COMPUTE_DIM_Z, "COMPUTE_DIM_Z"),
    sh(regs::COMPUTE_START_X, "COMPUTE_START_X"),
    sh(regs::COMPUTE_START_Y, "COMPUTE_START_Y"),
    sh(regs::COMPUTE_START_Z, "COMPUTE_START_Z"),
    sh(regs::COMPUTE_NUM_THREAD_X, "COMPUTE_NUM_THREAD_X"),
    sh(regs::COMPUTE_NUM_THREAD_Y, "COMPUTE_NUM_THREAD_Y"),
    sh(regs::COMPUTE_NUM_THREAD_Z, "COMPUTE_NUM_THREAD_Z"),
    sh(regs::COMPUTE_PGM_LO, "COMPUTE_PGM_LO"),
    sh(regs::COMPUTE_PGM_HI, "COMPUTE_PGM_HI"),
    sh(regs::COMPUTE_DISPATCH_SCRATCH_BASE_LO, "COMPUTE_DISPATCH_SCRATCH_BASE_LO"),
    sh(regs::COMPUTE_DISPATCH_SCRATCH_BASE_HI, "COMPUTE_DISPATCH_SCRATCH_BASE_HI"),
    sh(regs::COMPUTE_PGM_RSRC1, "COMPUTE_PGM_RSRC1"),
    sh(regs::COMPUTE_PGM_RSRC2, "COMPUTE_PGM_RSRC2"),
    sh(regs::COMPUTE_RESOURCE_LIMITS, "COMPUTE_RESOURCE_LIMITS"),
    sh(regs::COMPUTE_STATIC_THREAD_MGMT_SE0, "COMPUTE_STATIC_THREAD_MGMT_SE0"),
    sh(regs::COMPUTE_STATIC_THREAD_MGMT_SE1, "COMPUTE_STATIC_THREAD_MGMT_SE1"),
    sh(regs::COMPUTE_TMPRING_SIZE, "COMPUTE_TMPRING_SIZE"),
    sh(regs::COMPUTE_STATIC_THREAD_MGMT_SE2, "COMPUTE_STATIC_THREAD_MGMT_SE2"),
    sh(regs::COMPUTE_STATIC_THREAD_MGMT_SE3, "COMPUTE_STATIC_THREAD_MGMT_SE3"),
    sh(regs::COMPUTE_RESTART_X, "COMPUTE_RESTART_X"),
    sh(regs::COMPUTE_RESTART_Y, "COMPUTE_RESTART_Y"),
    sh(regs::COMPUTE_RESTART_Z, "COMPUTE_RESTART_Z"),
    sh(regs::COMPUTE_PGM_RSRC3, "COMPUTE_PGM_RSRC3"),
    sh(regs::COMPUTE_USER_DATA_0, "COMPUTE_USER_DATA_0"),
    sh(regs::COMPUTE_USER_DATA_0 + 1, "COMPUTE_USER_DATA_1"),
    sh(regs::COMPUTE_USER_DATA_0 + 2, "COMPUTE_USER_DATA_2"),
    sh(regs::COMPUTE_USER_DATA_0 + 3, "COMPUTE_USER_DATA_3"),
    sh(regs::COMPUTE_USER_DATA_0 + 4, "COMPUTE_USER_DATA_4"),
    sh(regs::COMPUTE_USER_DATA_0 + 5, "COMPUTE_USER_DATA_5"),
    sh(regs::COMPUTE_USER_DATA_0 + 6, "COMPUTE_USER_DATA_6"),
    sh(regs::COMPUTE_USER_DATA_0 + 7, "COMPUTE_USER_DATA_7"),
    sh(regs::COMPUTE_USER_DATA_0 + 8, "COMPUTE_USER_DATA_8"),
    sh(regs::COMPUTE_USER_DATA_0 + 9, "COMPUTE_USER_DATA_9"),
    sh(regs::COMPUTE_USER_DATA_0 + 10, "COMPUTE_USER_DATA_10"),
    sh(regs::COMPUTE_USER_DATA_0 + 11, "COMPUTE_USER_DATA_11"),
    sh(regs::COMPUTE_USER_DATA_0 + 12, "COMPUTE_USER_DATA_12"),
    sh(regs::COMPUTE_USER_DATA_0 + 13, "COMPUTE_USER_DATA_13"),
    sh(regs::COMPUTE_USER_DATA_0 + 14, "COMPUTE_USER_DATA_14"),
    sh(regs::COMPUTE_USER_DATA_0 + 15, "COMPUTE_USER_DATA_15"),
];

/// The name of the SH register at `offset`, if it is in [`SH_REGS`].
pub fn sh_reg_name(offset: u16) -> Option<&'static str> {
    SH_REGS.iter().find(|r| r.offset == offset).map(|r| r.name)
}

/// Event types (EVENT_TYPE values) used on compute queues.
pub mod event {
    /// CACHE_FLUSH_TS.
    pub const CACHE_FLUSH_TS: u8 = 0x04;
    /// CS_PARTIAL_FLUSH (EVENT_WRITE with index 4).
    pub const CS_PARTIAL_FLUSH: u8 = 0x07;
    /// CACHE_FLUSH_AND_INV_TS_EVENT: the compute end-of-pipe fence event.
    pub const CACHE_FLUSH_AND_INV_TS_EVENT: u8 = 0x14;
    /// BOTTOM_OF_PIPE_TS.
    pub const BOTTOM_OF_PIPE_TS: u8 = 0x28;
    /// CS_DONE.
    pub const CS_DONE: u8 = 0x2F;
    /// EVENT_INDEX for CS_PARTIAL_FLUSH in EVENT_WRITE.
    pub const INDEX_CS_PARTIAL_FLUSH: u8 = 4;
    /// EVENT_INDEX for an end-of-pipe RELEASE_MEM.
    pub const INDEX_END_OF_PIPE: u8 = 5;
}

/// Event type names.
pub const EVENT_NAMES: &[(u8, &str)] = &[
    (event::CACHE_FLUSH_TS, "CACHE_FLUSH_TS"),
    (event::CS_PARTIAL_FLUSH, "CS_PARTIAL_FLUSH"),
    (event::CACHE_FLUSH_AND_INV_TS_EVENT, "CACHE_FLUSH_AND_INV_TS_EVENT"),
    (event::BOTTOM_OF_PIPE_TS, "BOTTOM_OF_PIPE_TS"),
    (event::CS_DONE, "CS_DONE"),
];

/// Selector values.
pub mod sel {
    /// RELEASE_MEM DST_SEL: memory.
    pub const RM_DST_MEMORY: u8 = 0;
    /// RELEASE_MEM DST_SEL: TC_L2.
    pub const RM_DST_TC_L2: u8 = 1;
    /// RELEASE_MEM INT_SEL: none.
    pub const INT_NONE: u8 = 0;
    /// RELEASE_MEM INT_SEL: interrupt only.
    pub const INT_ONLY: u8 = 1;
    /// RELEASE_MEM INT_SEL: interrupt after write confirm.
    pub const INT_AFTER_WRITE_CONFIRM: u8 = 2;
    /// RELEASE_MEM INT_SEL: send data after write confirm.
    pub const INT_SEND_DATA_AFTER_WRITE_CONFIRM: u8 = 3;
    /// RELEASE_MEM DATA_SEL: none.
    pub const DATA_NONE: u8 = 0;
    /// RELEASE_MEM DATA_SEL: low 32 bits.
    pub const DATA_32: u8 = 1;
    /// RELEASE_MEM DATA_SEL: 64 bits.
    pub const DATA_64: u8 = 2;
    /// RELEASE_MEM DATA_SEL: GPU clock counter.
    pub const DATA_GPU_CLOCK: u8 = 3;
    /// RELEASE_MEM DATA_SEL: system clock.
    pub const DATA_SYSTEM_CLOCK: u8 = 4;
    /// WRITE_DATA / COPY_DATA DST_SEL, COPY_DATA SRC_SEL: register.
    pub const REGISTER: u8 = 0;
    /// WRITE_DATA / COPY_DATA DST_SEL, COPY_DATA SRC_SEL: TC_L2.
    pub const TC_L2: u8 = 2;
    /// WRITE_DATA / COPY_DATA DST_SEL: memory.
    pub const MEMORY: u8 = 5;
    /// COPY_DATA SRC_SEL: immediate.
    pub const SRC_IMMEDIATE: u8 = 5;
    /// COPY_DATA SRC_SEL: GPU clock.
    pub const SRC_GPU_CLOCK: u8 = 9;
    /// WAIT_REG_MEM MEM_SPACE: register.
    pub const SPACE_REGISTER: u8 = 0;
    /// WAIT_REG_MEM MEM_SPACE: memory.
    pub const SPACE_MEMORY: u8 = 1;
}

/// Names of the RELEASE_MEM DATA_SEL values.
pub const RELEASE_DATA_SEL_NAMES: &[(u8, &str)] =
    &[(0, "none"), (1, "data32"), (2, "data64"), (3, "gpu_clock"), (4, "system_clock")];
/// Names of the RELEASE_MEM INT_SEL values.
pub const RELEASE_INT_SEL_NAMES: &[(u8, &str)] =
    &[(0, "none"), (1, "int"), (2, "int_after_write_confirm"), (3, "data_after_write_confirm")];
/// Names of the RELEASE_MEM DST_SEL values.
pub const RELEASE_DST_SEL_NAMES: &[(u8, &str)] = &[(0, "memory"), (1, "tc_l2")];
/// Names of the COPY_DATA SRC_SEL values.
pub const COPY_SRC_SEL_NAMES: &[(u8, &str)] =
    &[(0, "register"), (2, "tc_l2"), (5, "immediate"), (9, "gpu_clock")];
/// Names of the WRITE_DATA / COPY_DATA DST_SEL values.
pub const DST_SEL_NAMES: &[(u8, &str)] = &[(0, "register"), (2, "tc_l2"), (5, "memory")];
/// Names of the WAIT_REG_MEM FUNCTION values.
pub const WAIT_FUNCTION_NAMES: &[(u8, &str)] =
    &[(0, "always"), (1, "lt"), (2, "le"), (3, "eq"), (4, "ne"), (5, "ge"), (6, "gt")];
/// Names of the WAIT_REG_MEM MEM_SPACE values.
pub const MEM_SPACE_NAMES: &[(u8, &str)] = &[(0, "register"), (1, "memory")];

/// Look `value` up in a `(value, name)` table.
pub fn lookup(table: &[(u8, &'static str)], value: u8) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

/// Per-packet dword fields. `DWn` is body dword n (dw1 = first dword after the header).
pub mod fields {
    use super::Field;

    /// SET_SH_REG dw1 REG_OFFSET \[15:0\] (bits \[31:16\] must be zero).
    pub const SET_SH_REG_OFFSET: Field = Field::new("REG_OFFSET", 0, 16);

    /// RELEASE_MEM dw1 EVENT_TYPE \[5:0\].
    pub const RM_EVENT_TYPE: Field = Field::new("EVENT_TYPE", 0, 6);
    /// RELEASE_MEM dw1 WAIT_SYNC (bit 7).
    pub const RM_WAIT_SYNC: Field = Field::new("WAIT_SYNC", 7, 1);
    /// RELEASE_MEM dw1 EVENT_INDEX \[11:8\].
    pub const RM_EVENT_INDEX: Field = Field::new("EVENT_INDEX", 8, 4);
    /// RELEASE_MEM dw1 GCR_CNTL \[24:12\].
    pub const RM_GCR_CNTL: Field = Field::new("GCR_CNTL", 12, 13);
    /// RELEASE_MEM dw1 CACHE_POLICY / TEMPORAL \[26:25\].
    pub const RM_CACHE_POLICY: Field = Field::new("CACHE_POLICY", 25, 2);
    /// RELEASE_MEM dw1 PQ_EXE_STATUS (bit 28).
    pub const RM_PQ_EXE_STATUS: Field = Field::new("PQ_EXE_STATUS", 28, 1);
    /// RELEASE_MEM dw1 GLK_INV (bit 30).
    pub const RM_GLK_INV: Field = Field::new("GLK_INV", 30, 1);
    /// RELEASE_MEM dw1 fields with their own struct member (everything else of dw1 is
    /// `ReleaseMem::dw1_flags`).
    pub const RM_DW1_TYPED: &[Field] =
        &[RM_EVENT_TYPE, RM_EVENT_INDEX, RM_GCR_CNTL, RM_CACHE_POLICY];
    /// RELEASE_MEM dw1 single-bit flags that live in `ReleaseMem::dw1_flags`.
    pub const RM_DW1_FLAGS: &[Field] = &[RM_WAIT_SYNC, RM_PQ_EXE_STATUS, RM_GLK_INV];
    /// RELEASE_MEM dw2 DST_SEL \[17:16\].
    pub const RM_DST_SEL: Field = Field::new("DST_SEL", 16, 2);
    /// RELEASE_MEM dw2 INT_SEL \[26:24\].
    pub const RM_INT_SEL: Field = Field::new("INT_SEL", 24, 3);
    /// RELEASE_MEM dw2 DATA_SEL \[31:29\].
    pub const RM_DATA_SEL: Field = Field::new("DATA_SEL", 29, 3);
    /// RELEASE_MEM dw2 fields (other bits must be zero).
    pub const RM_DW2: &[Field] = &[RM_DST_SEL, RM_INT_SEL, RM_DATA_SEL];

    /// RELEASE_MEM GCR bits as dw1 bit positions, the same on gfx11 and gfx12 (`nvd.h`
    /// `PACKET3_RELEASE_MEM_GCR_*`; the kernel's gfx11 fence sets GLM_WB | GLM_INV | GL2_WB |
    /// SEQ, tinygrad's gfx11/gfx12 signal adds GLV_INV | GL1_INV | GL2_INV).
    pub const RM_GCR: &[Field] = &[
        Field::new("GLM_WB", 12, 1),
        Field::new("GLM_INV", 13, 1),
        Field::new("GLV_INV", 14, 1),
        Field::new("GL1_INV", 15, 1),
        Field::new("GL2_US", 16, 1),
        Field::new("GL2_RANGE", 17, 2),
        Field::new("GL2_DISCARD", 19, 1),
        Field::new("GL2_INV", 20, 1),
        Field::new("GL2_WB", 21, 1),
        Field::new("SEQ", 22, 2),
        Field::new("GLK_WB", 24, 1),
    ];

    /// ACQUIRE_MEM dw6 POLL_INTERVAL \[15:0\] (bits \[31:16\] must be zero).
    pub const AM_POLL_INTERVAL: Field = Field::new("POLL_INTERVAL", 0, 16);
    /// ACQUIRE_MEM dw7 GCR_CNTL bits, the same on gfx11 and gfx12 (`nvd.h`
    /// `PACKET3_ACQUIRE_MEM_GCR_CNTL_*` and `PACKET3_ACQUIRE_MEM_GCR_RANGE_IS_PA`; GCR_CNTL is
    /// \[18:0\]). The kernel's gfx11 and gfx12 `emit_mem_sync` both write 0xC3B1 = GLI_INV=1 |
    /// GLM_WB | GLM_INV | GLK_INV | GLV_INV | GL1_INV | GL2_INV | GL2_WB.
    pub const AM_GCR: &[Field] = &[
        Field::new("GLI_INV", 0, 2),
        Field::new("GL1_RANGE", 2, 2),
        Field::new("GLM_WB", 4, 1),
        Field::new("GLM_INV", 5, 1),
        Field::new("GLK_WB", 6, 1),
        Field::new("GLK_INV", 7, 1),
        Field::new("GLV_INV", 8, 1),
        Field::new("GL1_INV", 9, 1),
        Field::new("GL2_US", 10, 1),
        Field::new("GL2_RANGE", 11, 2),
        Field::new("GL2_DISCARD", 13, 1),
        Field::new("GL2_INV", 14, 1),
        Field::new("GL2_WB", 15, 1),
        Field::new("SEQ", 16, 2),
        Field::new("RANGE_IS_PA", 18, 1),
    ];

    /// WRITE_DATA dw1 DST_SEL \[11:8\].
    pub const WD_DST_SEL: Field = Field::new("DST_SEL", 8, 4);
    /// WRITE_DATA dw1 ADDR_INCR (bit 16; 1 = do not increment).
    pub const WD_ADDR_INCR: Field = Field::new("ADDR_INCR", 16, 1);
    /// WRITE_DATA dw1 WR_CONFIRM (bit 20).
    pub const WD_WR_CONFIRM: Field = Field::new("WR_CONFIRM", 20, 1);
    /// WRITE_DATA dw1 CACHE_POLICY \[26:25\].
    pub const WD_CACHE_POLICY: Field = Field::new("CACHE_POLICY", 25, 2);
    /// WRITE_DATA dw1 fields (other bits must be zero).
    pub const WD_DW1: &[Field] = &[WD_DST_SEL, WD_ADDR_INCR, WD_WR_CONFIRM, WD_CACHE_POLICY];

    /// COPY_DATA dw1 SRC_SEL \[3:0\].
    pub const CD_SRC_SEL: Field = Field::new("SRC_SEL", 0, 4);
    /// COPY_DATA dw1 DST_SEL \[11:8\].
    pub const CD_DST_SEL: Field = Field::new("DST_SEL", 8, 4);
    /// COPY_DATA dw1 COUNT_SEL (bit 16; 1 = 64-bit).
    pub const CD_COUNT_SEL: Field = Field::new("COUNT_SEL", 16, 1);
    /// COPY_DATA dw1 WR_CONFIRM (bit 20).
    pub const CD_WR_CONFIRM: Field = Field::new("WR_CONFIRM", 20, 1);
    /// COPY_DATA dw1 fields (other bits must be zero).
    pub const CD_DW1: &[Field] = &[CD_SRC_SEL, CD_DST_SEL, CD_COUNT_SEL, CD_WR_CONFIRM];

    /// WAIT_REG_MEM dw1 FUNCTION \[2:0\].
    pub const WRM_FUNCTION: Field = Field::new("FUNCTION", 0, 3);
    /// WAIT_REG_MEM dw1 MEM_SPACE \[5:4\].
    pub const WRM_MEM_SPACE: Field = Field::new("MEM_SPACE", 4, 2);
    /// WAIT_REG_MEM dw1 OPERATION \[7:6\].
    pub const WRM_OPERATION: Field = Field::new("OPERATION", 6, 2);
    /// WAIT_REG_MEM dw1 fields (other bits must be zero).
    pub const WRM_DW1: &[Field] = &[WRM_FUNCTION, WRM_MEM_SPACE, WRM_OPERATION];
    /// WAIT_REG_MEM dw6 POLL_INTERVAL \[15:0\] (bits \[31:16\] must be zero).
    pub const WRM_POLL_INTERVAL: Field = Field::new("POLL_INTERVAL", 0, 16);

    /// EVENT_WRITE dw1 EVENT_TYPE \[5:0\].
    pub const EW_EVENT_TYPE: Field = Field::new("EVENT_TYPE", 0, 6);
    /// EVENT_WRITE dw1 EVENT_INDEX \[11:8\].
    pub const EW_EVENT_INDEX: Field = Field::new("EVENT_INDEX", 8, 4);
    /// EVENT_WRITE dw1 fields (other bits must be zero).
    pub const EW_DW1: &[Field] = &[EW_EVENT_TYPE, EW_EVENT_INDEX];

    /// INDIRECT_BUFFER dw3 IB_SIZE \[19:0\] (dwords).
    pub const IB_SIZE: Field = Field::new("IB_SIZE", 0, 20);
    /// INDIRECT_BUFFER dw3 CHAIN (bit 20).
    pub const IB_CHAIN: Field = Field::new("CHAIN", 20, 1);
    /// INDIRECT_BUFFER dw3 VALID (bit 23).
    pub const IB_VALID: Field = Field::new("VALID", 23, 1);
    /// INDIRECT_BUFFER dw3 VMID \[27:24\].
    pub const IB_VMID: Field = Field::new("VMID", 24, 4);
    /// INDIRECT_BUFFER dw3 fields (other bits must be zero).
    pub const IB_DW3: &[Field] = &[IB_SIZE, IB_CHAIN, IB_VALID, IB_VMID];
}

/// SH register value fields, per target where they differ (`gc_11_0_0_sh_mask.h` /
/// `gc_12_0_0_sh_mask.h`).
pub mod reg_fields {
    use super::Field;

    /// COMPUTE_DISPATCH_INITIATOR bits common to gfx11 and gfx12.
    pub const DISPATCH_INITIATOR_GFX11: &[Field] = &[
        Field::new("COMPUTE_SHADER_EN", 0, 1),
        Field::new("PARTIAL_TG_EN", 1, 1),
        Field::new("FORCE_START_AT_000", 2, 1),
        Field::new("USE_THREAD_DIMENSIONS", 5, 1),
        Field::new("ORDER_MODE", 6, 1),
        Field::new("CS_W32_EN", 15, 1),
    ];
    /// COMPUTE_DISPATCH_INITIATOR bits on gfx12 (adds INTERLEAVE_2D_EN).
    pub const DISPATCH_INITIATOR_GFX12: &[Field] = &[
        Field::new("COMPUTE_SHADER_EN", 0, 1),
        Field::new("PARTIAL_TG_EN", 1, 1),
        Field::new("FORCE_START_AT_000", 2, 1),
        Field::new("USE_THREAD_DIMENSIONS", 5, 1),
        Field::new("ORDER_MODE", 6, 1),
        Field::new("CS_W32_EN", 15, 1),
        Field::new("INTERLEAVE_2D_EN", 18, 1),
    ];
    /// COMPUTE_PGM_RSRC1 on gfx11.
    pub const RSRC1_GFX11: &[Field] = &[
        Field::new("VGPRS", 0, 6),
        Field::new("SGPRS", 6, 4),
        Field::new("PRIORITY", 10, 2),
        Field::new("FLOAT_MODE", 12, 8),
        Field::new("PRIV", 20, 1),
        Field::new("DX10_CLAMP", 21, 1),
        Field::new("IEEE_MODE", 23, 1),
        Field::new("FP16_OVFL", 26, 1),
        Field::new("WGP_MODE", 29, 1),
        Field::new("MEM_ORDERED", 30, 1),
        Field::new("FWD_PROGRESS", 31, 1),
    ];
    /// COMPUTE_PGM_RSRC1 on gfx12.
    pub const RSRC1_GFX12: &[Field] = &[
        Field::new("VGPRS", 0, 6),
        Field::new("SGPRS", 6, 4),
        Field::new("PRIORITY", 10, 2),
        Field::new("FLOAT_MODE", 12, 8),
        Field::new("PRIV", 20, 1),
        Field::new("WG_RR_EN", 21, 1),
        Field::new("DISABLE_PERF", 23, 1),
        Field::new("FP16_OVFL", 26, 1),
        Field::new("WGP_MODE", 29, 1),
        Field::new("MEM_ORDERED", 30, 1),
        Field::new("FWD_PROGRESS", 31, 1),
    ];
    /// COMPUTE_PGM_RSRC2 on gfx11.
    pub const RSRC2_GFX11: &[Field] = &[
        Field::new("SCRATCH_EN", 0, 1),
        Field::new("USER_SGPR", 1, 5),
        Field::new("TRAP_PRESENT", 6, 1),
        Field::new("TGID_X_EN", 7, 1),
        Field::new("TGID_Y_EN", 8, 1),
        Field::new("TGID_Z_EN", 9, 1),
        Field::new("TG_SIZE_EN", 10, 1),
        Field::new("TIDIG_COMP_CNT", 11, 2),
        Field::new("LDS_SIZE", 15, 9),
        Field::new("EXCP_EN", 24, 7),
    ];
    /// COMPUTE_PGM_RSRC2 on gfx12.
    pub const RSRC2_GFX12: &[Field] = &[
        Field::new("SCRATCH_EN", 0, 1),
        Field::new("USER_SGPR", 1, 5),
        Field::new("DYNAMIC_VGPR", 6, 1),
        Field::new("TGID_X_EN", 7, 1),
        Field::new("TGID_Y_EN", 8, 1),
        Field::new("TGID_Z_EN", 9, 1),
        Field::new("TG_SIZE_EN", 10, 1),
        Field::new("TIDIG_COMP_CNT", 11, 2),
        Field::new("LDS_SIZE", 15, 9),
        Field::new("EXCP_EN", 24, 7),
    ];
    /// COMPUTE_PGM_RSRC3 on gfx11.
    pub const RSRC3_GFX11: &[Field] =
        &[Field::new("SHARED_VGPR_CNT", 0, 4), Field::new("INST_PREF_SIZE", 4, 6)];
    /// COMPUTE_PGM_RSRC3 on gfx12.
    pub const RSRC3_GFX12: &[Field] =
        &[Field::new("SHARED_VGPR_CNT", 0, 4), Field::new("INST_PREF_SIZE", 4, 8)];
    /// COMPUTE_RESOURCE_LIMITS.
    pub const RESOURCE_LIMITS: &[Field] = &[
        Field::new("WAVES_PER_SH", 0, 10),
        Field::new("TG_PER_CU", 12, 4),
        Field::new("LOCK_THRESHOLD", 16, 6),
    ];
    /// COMPUTE_TMPRING_SIZE on gfx11.
    pub const TMPRING_SIZE_GFX11: &[Field] =
        &[Field::new("WAVES", 0, 12), Field::new("WAVESIZE", 12, 15)];
    /// COMPUTE_TMPRING_SIZE on gfx12.
    pub const TMPRING_SIZE_GFX12: &[Field] =
        &[Field::new("WAVES", 0, 12), Field::new("WAVESIZE", 12, 18)];
}

use crate::submitter::GfxTarget;

/// The value fields of SH register `offset` on `gfx`, if the table describes them.
pub fn sh_reg_fields(offset: u16, gfx: GfxTarget) -> Option<&'static [Field]> {
    use reg_fields::*;
    let g12 = gfx.is_gfx12();
    Some(match offset {
        regs::COMPUTE_DISPATCH_INITIATOR => {
            if g12 {
                DISPATCH_INITIATOR_GFX12
            } else {
                DISPATCH_INITIATOR_GFX11
            }
        }
        regs::COMPUTE_PGM_RSRC1 => {
            if g12 {
                RSRC1_GFX12
            } else {
                RSRC1_GFX11
            }
        }
        regs::COMPUTE_PGM_RSRC2 => {
            if g12 {
                RSRC2_GFX12
            } else {
                RSRC2_GFX11
            }
        }
        regs::COMPUTE_PGM_RSRC3 => {
            if g12 {
                RSRC3_GFX12
            } else {
                RSRC3_GFX11
            }
        }
        regs::COMPUTE_RESOURCE_LIMITS => RESOURCE_LIMITS,
        regs::COMPUTE_TMPRING_SIZE => {
            if g12 {
                TMPRING_SIZE_GFX12
            } else {
                TMPRING_SIZE_GFX11
            }
        }
        _ => return None,
    })
}

/// RELEASE_MEM GCR bit fields (dw1 positions) on `gfx`: [`fields::RM_GCR`] on both targets.
pub fn release_mem_gcr_fields(gfx: GfxTarget) -> &'static [Field] {
    let _ = gfx; // one layout on gfx11 and gfx12 (see the module docs)
    fields::RM_GCR
}

/// ACQUIRE_MEM GCR_CNTL bit fields on `gfx`: [`fields::AM_GCR`] on both targets.
pub fn acquire_mem_gcr_fields(gfx: GfxTarget) -> &'static [Field] {
    let _ = gfx; // one layout on gfx11 and gfx12 (see the module docs)
    fields::AM_GCR
}
