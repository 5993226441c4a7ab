//! Encoding typed [`Packet`]s into dwords, and the validation every encoder path shares.

use super::packet::{AcquireMem, CopyData, IndirectBuffer, Packet, ReleaseMem, WaitRegMem};
use super::tables::{fields as f, fields_mask, header, op, opcode_info, regs, sel, BodyLen, Field};

/// A caller's dword buffer is too small for the next packet(s). The buffer is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("PM4 buffer out of space: need {needed} dwords, {available} available")]
pub struct OutOfSpace {
    /// Dwords the operation needed.
    pub needed: usize,
    /// Dwords left in the buffer.
    pub available: usize,
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is too small (nothing was written).
    #[error(transparent)]
    OutOfSpace(#[from] OutOfSpace),
    /// The packet cannot be represented (a field too wide for its bits, a misaligned address,
    /// a body too long or empty, a reserved selector, ...).
    #[error("{name}: {reason}")]
    Invalid {
        /// Packet name.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
}

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> EncodeError {
    EncodeError::Invalid { name, reason: reason.into() }
}

/// Required byte alignment of a RELEASE_MEM destination for DATA_SEL `data_sel`: 8 for the
/// 64-bit selectors (64-bit data, GPU clock, system clock), otherwise 4.
pub(crate) fn release_mem_align(data_sel: u8) -> u64 {
    match data_sel {
        sel::DATA_64 | sel::DATA_GPU_CLOCK | sel::DATA_SYSTEM_CLOCK => 8,
        _ => 4,
    }
}

/// Whether a WRITE_DATA / COPY_DATA destination selector addresses memory (so the address
/// must be 4-byte aligned) rather than a register.
pub(crate) fn dst_is_memory(dst_sel: u8) -> bool {
    dst_sel == sel::TC_L2 || dst_sel == sel::MEMORY
}

fn check_fits(name: &'static str, field: Field, value: u32) -> Result<(), EncodeError> {
    if field.fits(value) {
        Ok(())
    } else {
        Err(invalid(name, format!("{} = {value:#x} exceeds {} bits", field.name, field.width)))
    }
}

fn check_align(name: &'static str, what: &str, addr: u64, align: u64) -> Result<(), EncodeError> {
    if addr.is_multiple_of(align) {
        Ok(())
    } else {
        Err(invalid(name, format!("{what} {addr:#x} is not {align}-byte aligned")))
    }
}

fn check_body(name: &'static str, body: usize) -> Result<(), EncodeError> {
    if body == 0 || body > header::MAX_BODY {
        Err(invalid(name, format!("body of {body} dwords (must be 1..={})", header::MAX_BODY)))
    } else {
        Ok(())
    }
}

pub(crate) fn validate_set_sh_reg(offset: u16, n: usize) -> Result<(), EncodeError> {
    const N: &str = "SET_SH_REG";
    if n == 0 {
        return Err(invalid(N, "no register values"));
    }
    check_body(N, n + 1)?;
    if offset as usize + n > regs::SH_REG_SPACE_DWORDS as usize {
        return Err(invalid(
            N,
            format!(
                "registers {offset:#x}..{:#x} leave the SH register space (0..{:#x})",
                offset as usize + n,
                regs::SH_REG_SPACE_DWORDS
            ),
        ));
    }
    Ok(())
}

pub(crate) fn validate_release_mem(r: &ReleaseMem) -> Result<(), EncodeError> {
    const N: &str = "RELEASE_MEM";
    check_fits(N, f::RM_EVENT_TYPE, r.event_type.into())?;
    check_fits(N, f::RM_EVENT_INDEX, r.event_index.into())?;
    check_fits(N, f::RM_GCR_CNTL, r.gcr_cntl.into())?;
    check_fits(N, f::RM_CACHE_POLICY, r.cache_policy.into())?;
    let typed = fields_mask(f::RM_DW1_TYPED);
    if r.dw1_flags & typed != 0 {
        return Err(invalid(
            N,
            format!(
                "dw1_flags {:#010x} overlaps the typed dw1 fields ({typed:#010x})",
                r.dw1_flags
            ),
        ));
    }
    check_fits(N, f::RM_DST_SEL, r.dst_sel.into())?;
    check_fits(N, f::RM_INT_SEL, r.int_sel.into())?;
    check_fits(N, f::RM_DATA_SEL, r.data_sel.into())?;
    if r.data_sel > sel::DATA_SYSTEM_CLOCK {
        return Err(invalid(N, format!("DATA_SEL {} is reserved", r.data_sel)));
    }
    check_align(N, "address", r.addr, release_mem_align(r.data_sel))
}

pub(crate) fn validate_acquire_mem(a: &AcquireMem) -> Result<(), EncodeError> {
    let _ = a; // every field is a raw dword (or u16 poll interval): always representable
    Ok(())
}

pub(crate) fn validate_write_data(
    dst_sel: u8,
    cache_policy: u8,
    addr: u64,
    n: usize,
) -> Result<(), EncodeError> {
    const N: &str = "WRITE_DATA";
    check_fits(N, f::WD_DST_SEL, dst_sel.into())?;
    check_fits(N, f::WD_CACHE_POLICY, cache_policy.into())?;
    if n == 0 {
        return Err(invalid(N, "no data dwords"));
    }
    check_body(N, n + 3)?;
    if dst_is_memory(dst_sel) {
        check_align(N, "address", addr, 4)?;
    }
    Ok(())
}

pub(crate) fn validate_copy_data(c: &CopyData) -> Result<(), EncodeError> {
    const N: &str = "COPY_DATA";
    check_fits(N, f::CD_SRC_SEL, c.src_sel.into())?;
    check_fits(N, f::CD_DST_SEL, c.dst_sel.into())?;
    if c.src_sel == sel::TC_L2 {
        check_align(N, "source address", c.src, 4)?;
    }
    if dst_is_memory(c.dst_sel) {
        check_align(N, "destination address", c.dst, 4)?;
    }
    Ok(())
}

pub(crate) fn validate_wait_reg_mem(w: &WaitRegMem) -> Result<(), EncodeError> {
    const N: &str = "WAIT_REG_MEM";
    check_fits(N, f::WRM_FUNCTION, w.function.into())?;
    if w.function == 7 {
        return Err(invalid(N, "FUNCTION 7 is reserved"));
    }
    check_fits(N, f::WRM_MEM_SPACE, w.mem_space.into())?;
    check_fits(N, f::WRM_OPERATION, w.operation.into())?;
    if w.mem_space == sel::SPACE_MEMORY {
        check_align(N, "address", w.addr, 4)?;
    }
    Ok(())
}

pub(crate) fn validate_event_write(event_type: u8, event_index: u8) -> Result<(), EncodeError> {
    check_fits("EVENT_WRITE", f::EW_EVENT_TYPE, event_type.into())?;
    check_fits("EVENT_WRITE", f::EW_EVENT_INDEX, event_index.into())
}

pub(crate) fn validate_indirect_buffer(ib: &IndirectBuffer) -> Result<(), EncodeError> {
    const N: &str = "INDIRECT_BUFFER";
    check_align(N, "IB address", ib.va, 4)?;
    check_fits(N, f::IB_SIZE, ib.size_dw)?;
    check_fits(N, f::IB_VMID, ib.vmid.into())
}

fn validate_other(opcode: u8, body: usize) -> Result<(), EncodeError> {
    const N: &str = "Other";
    if let Some(info) = opcode_info(opcode) {
        if info.modelled {
            return Err(invalid(
                N,
                format!("opcode {opcode:#04x} is {} and must use its typed variant", info.name),
            ));
        }
        let ok = match info.body {
            BodyLen::Fixed(n) => body == n,
            BodyLen::Min(n) => body >= n,
            BodyLen::Any => true,
        };
        if !ok {
            return Err(invalid(
                N,
                format!("{} body of {body} dwords violates {:?}", info.name, info.body),
            ));
        }
    }
    check_body(N, body)
}

impl Packet {
    /// The packet's name as in the opcode table (e.g. `"RELEASE_MEM"`); `"UNKNOWN"` for an
    /// [`Packet::Other`] opcode that is not listed.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Other { opcode, .. } => opcode_info(*opcode).map_or("UNKNOWN", |i| i.name),
            p => opcode_info(p.opcode()).map_or("UNKNOWN", |i| i.name),
        }
    }

    /// The packet's IT_OPCODE.
    pub fn opcode(&self) -> u8 {
        match self {
            Packet::Nop { .. } => op::NOP,
            Packet::SetShReg { .. } => op::SET_SH_REG,
            Packet::DispatchDirect { .. } => op::DISPATCH_DIRECT,
            Packet::ReleaseMem(_) => op::RELEASE_MEM,
            Packet::AcquireMem(_) => op::ACQUIRE_MEM,
            Packet::WriteData(_) => op::WRITE_DATA,
            Packet::CopyData(_) => op::COPY_DATA,
            Packet::WaitRegMem(_) => op::WAIT_REG_MEM,
            Packet::EventWrite { .. } => op::EVENT_WRITE,
            Packet::IndirectBuffer(_) => op::INDIRECT_BUFFER,
            Packet::Other { opcode, .. } => *opcode,
        }
    }

    /// Total encoded length in dwords (header included).
    pub fn len_dwords(&self) -> usize {
        1 + match self {
            Packet::Nop { payload } => payload.len(),
            Packet::SetShReg { values, .. } => 1 + values.len(),
            Packet::DispatchDirect { .. } => 4,
            Packet::ReleaseMem(_) | Packet::AcquireMem(_) => 7,
            Packet::WriteData(w) => 3 + w.data.len(),
            Packet::CopyData(_) => 5,
            Packet::WaitRegMem(_) => 6,
            Packet::EventWrite { .. } => 1,
            Packet::IndirectBuffer(_) => 3,
            Packet::Other { body, .. } => body.len(),
        }
    }

    /// Check that the packet can be encoded so that [`super::decode_one`] returns it again.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] naming the packet and the offending field: a value wider than
    /// its bits, a misaligned address, an empty or over-long body (more than 0x4000 body
    /// dwords, or 0x3FFF NOP payload dwords), SH registers beyond the SH space, a reserved
    /// selector, or an [`Packet::Other`] that uses a modelled opcode.
    pub fn validate(&self) -> Result<(), EncodeError> {
        match self {
            Packet::Nop { payload } => {
                if payload.len() > header::MAX_NOP_PAYLOAD {
                    return Err(invalid(
                        "NOP",
                        format!(
                            "payload of {} dwords exceeds {}",
                            payload.len(),
                            header::MAX_NOP_PAYLOAD
                        ),
                    ));
                }
                Ok(())
            }
            Packet::SetShReg { offset, values } => validate_set_sh_reg(*offset, values.len()),
            Packet::DispatchDirect { .. } => Ok(()),
            Packet::ReleaseMem(r) => validate_release_mem(r),
            Packet::AcquireMem(a) => validate_acquire_mem(a),
            Packet::WriteData(w) => {
                validate_write_data(w.dst_sel, w.cache_policy, w.addr, w.data.len())
            }
            Packet::CopyData(c) => validate_copy_data(c),
            Packet::WaitRegMem(w) => validate_wait_reg_mem(w),
            Packet::EventWrite { event_type, event_index } => {
                validate_event_write(*event_type, *event_index)
            }
            Packet::IndirectBuffer(ib) => validate_indirect_buffer(ib),
            Packet::Other { opcode, body } => validate_other(*opcode, body.len()),
        }
    }

    /// Encode into the front of `out`, returning the number of dwords written.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] if [`Packet::validate`] fails; [`EncodeError::OutOfSpace`] if
    /// `out` is shorter than [`Packet::len_dwords`]. On error `out` is unchanged.
    pub fn encode_into(&self, out: &mut [u32]) -> Result<usize, EncodeError> {
        self.validate()?;
        let n = self.len_dwords();
        if out.len() < n {
            return Err(OutOfSpace { needed: n, available: out.len() }.into());
        }
        write_unchecked(self, &mut out[..n]);
        Ok(n)
    }
}

/// Encode one packet into a new vector (SHADER_TYPE set in the header; an empty NOP payload
/// gives the header-only NOP `0xFFFF1002`).
///
/// Infallible by design: a packet that [`Packet::validate`] rejects is encoded with every
/// field masked to its width and the body length masked to COUNT's 14 bits — such output does
/// not decode back to `p`. Use [`try_encode_packet`] or [`Packet::encode_into`] to be told.
pub fn encode_packet(p: &Packet) -> Vec<u32> {
    let mut out = vec![0; p.len_dwords()];
    write_unchecked(p, &mut out);
    out
}

/// Encode one packet into a new vector, checking it first.
///
/// # Errors
/// [`EncodeError::Invalid`] if [`Packet::validate`] fails.
pub fn try_encode_packet(p: &Packet) -> Result<Vec<u32>, EncodeError> {
    p.validate()?;
    Ok(encode_packet(p))
}

/// Header for a packet of `body` dwords (masked; `body` >= 1).
fn hdr(opcode: u8, body: usize) -> u32 {
    header::pkt3(opcode, body.max(1))
}

pub(crate) fn lo(v: u64) -> u32 {
    v as u32
}

pub(crate) fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

/// Write `p` into `out`, which is exactly `p.len_dwords()` long. Fields are masked.
pub(crate) fn write_unchecked(p: &Packet, out: &mut [u32]) {
    match p {
        Packet::Nop { payload } => write_nop(out, payload),
        Packet::SetShReg { offset, values } => write_set_sh_reg(out, *offset, values),
        Packet::DispatchDirect { dim, initiator } => {
            out[0] = hdr(op::DISPATCH_DIRECT, 4);
            out[1..4].copy_from_slice(dim);
            out[4] = *initiator;
        }
        Packet::ReleaseMem(r) => write_release_mem(out, r),
        Packet::AcquireMem(a) => write_acquire_mem(out, a),
        Packet::WriteData(w) => write_write_data(
            out,
            w.dst_sel,
            w.no_increment,
            w.wr_confirm,
            w.cache_policy,
            w.addr,
            &w.data,
        ),
        Packet::CopyData(c) => write_copy_data(out, c),
        Packet::WaitRegMem(w) => write_wait_reg_mem(out, w),
        Packet::EventWrite { event_type, event_index } => {
            out[0] = hdr(op::EVENT_WRITE, 1);
            out[1] = f::EW_EVENT_TYPE.put((*event_type).into())
                | f::EW_EVENT_INDEX.put((*event_index).into());
        }
        Packet::IndirectBuffer(ib) => write_indirect_buffer(out, ib),
        Packet::Other { opcode, body } => {
            out[0] = hdr(*opcode, body.len());
            out[1..].copy_from_slice(body);
        }
    }
}

pub(crate) fn write_nop(out: &mut [u32], payload: &[u32]) {
    if payload.is_empty() {
        out[0] = header::nop_header_only();
    } else {
        out[0] = hdr(op::NOP, payload.len());
        out[1..].copy_from_slice(payload);
    }
}

pub(crate) fn write_set_sh_reg(out: &mut [u32], offset: u16, values: &[u32]) {
    out[0] = hdr(op::SET_SH_REG, values.len() + 1);
    out[1] = f::SET_SH_REG_OFFSET.put(offset.into());
    out[2..].copy_from_slice(values);
}

pub(crate) fn write_release_mem(out: &mut [u32], r: &ReleaseMem) {
    out[0] = hdr(op::RELEASE_MEM, 7);
    out[1] = f::RM_EVENT_TYPE.put(r.event_type.into())
        | f::RM_EVENT_INDEX.put(r.event_index.into())
        | f::RM_GCR_CNTL.put(r.gcr_cntl.into())
        | f::RM_CACHE_POLICY.put(r.cache_policy.into())
        | (r.dw1_flags & !fields_mask(f::RM_DW1_TYPED));
    out[2] = f::RM_DST_SEL.put(r.dst_sel.into())
        | f::RM_INT_SEL.put(r.int_sel.into())
        | f::RM_DATA_SEL.put(r.data_sel.into());
    out[3] = lo(r.addr);
    out[4] = hi(r.addr);
    out[5] = lo(r.data);
    out[6] = hi(r.data);
    out[7] = r.int_ctxid;
}

pub(crate) fn write_acquire_mem(out: &mut [u32], a: &AcquireMem) {
    out[0] = hdr(op::ACQUIRE_MEM, 7);
    out[1] = 0;
    out[2] = lo(a.coher_size);
    out[3] = hi(a.coher_size);
    out[4] = lo(a.coher_base);
    out[5] = hi(a.coher_base);
    out[6] = f::AM_POLL_INTERVAL.put(a.poll_interval.into());
    out[7] = a.gcr_cntl;
}

pub(crate) fn write_write_data(
    out: &mut [u32],
    dst_sel: u8,
    no_increment: bool,
    wr_confirm: bool,
    cache_policy: u8,
    addr: u64,
    data: &[u32],
) {
    out[0] = hdr(op::WRITE_DATA, data.len() + 3);
    out[1] = f::WD_DST_SEL.put(dst_sel.into())
        | f::WD_ADDR_INCR.put(no_increment.into())
        | f::WD_WR_CONFIRM.put(wr_confirm.into())
        | f::WD_CACHE_POLICY.put(cache_policy.into());
    out[2] = lo(addr);
    out[3] = hi(addr);
    out[4..].copy_from_slice(data);
}

pub(crate) fn write_copy_data(out: &mut [u32], c: &CopyData) {
    out[0] = hdr(op::COPY_DATA, 5);
    out[1] = f::CD_SRC_SEL.put(c.src_sel.into())
        | f::CD_DST_SEL.put(c.dst_sel.into())
        | f::CD_COUNT_SEL.put(c.count64.into())
        | f::CD_WR_CONFIRM.put(c.wr_confirm.into());
    out[2] = lo(c.src);
    out[3] = hi(c.src);
    out[4] = lo(c.dst);
    out[5] = hi(c.dst);
}

pub(crate) fn write_wait_reg_mem(out: &mut [u32], w: &WaitRegMem) {
    out[0] = hdr(op::WAIT_REG_MEM, 6);
    out[1] = f::WRM_FUNCTION.put(w.function.into())
        | f::WRM_MEM_SPACE.put(w.mem_space.into())
        | f::WRM_OPERATION.put(w.operation.into());
    out[2] = lo(w.addr);
    out[3] = hi(w.addr);
    out[4] = w.reference;
    out[5] = w.mask;
    out[6] = f::WRM_POLL_INTERVAL.put(w.poll_interval.into());
}

pub(crate) fn write_indirect_buffer(out: &mut [u32], ib: &IndirectBuffer) {
    out[0] = hdr(op::INDIRECT_BUFFER, 3);
    out[1] = lo(ib.va);
    out[2] = hi(ib.va);
    out[3] = f::IB_SIZE.put(ib.size_dw)
        | f::IB_CHAIN.put(ib.chain.into())
        | f::IB_VALID.put(ib.valid.into())
        | f::IB_VMID.put(ib.vmid.into());
}
