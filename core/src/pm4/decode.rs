//! Decoding dword streams into typed [`Packet`]s.
//!
//! Policy (mirrors [`Packet::validate`], so `decode(encode(p)) == p` for every valid `p`):
//! - Only type-3 headers are accepted. Type 0/1 (register writes) and type 2 — including the
//!   type-2 filler `0x80000000` — are rejected with [`DecodeErrorKind::BadType`]: the encoder
//!   never emits them (it pads with type-3 NOPs, like the kernel's gfx11/12 rings), so a type-2
//!   dword in one of our streams means corruption.
//! - Header bits: SHADER_TYPE and RESET_FILTER_CAM are accepted either way (not part of the
//!   [`Packet`]); PREDICATE and the reserved bits \[7:3\] are rejected.
//! - Fixed-size packets must have exactly their body length; variable ones at least their
//!   minimum. Bits outside a packet's known fields must be zero (except RELEASE_MEM dw1, whose
//!   other bits are kept in `dw1_flags`). Addresses must be aligned as the reference requires.
//! - Selector values are kept raw, except RELEASE_MEM DATA_SEL 5..7 and WAIT_REG_MEM FUNCTION 7
//!   (reserved) which are rejected.
//! - Opcodes without a typed variant decode to [`Packet::Other`].

use super::encode::{dst_is_memory, release_mem_align};
use super::packet::{
    AcquireMem, CopyData, IndirectBuffer, Packet, ReleaseMem, WaitRegMem, WriteData,
};
use super::tables::{fields as f, fields_mask, header, op, opcode_info, regs, sel, BodyLen, Field};
use super::{DecodeError, DecodeErrorKind};

fn bad_field(offset: usize, name: &'static str, reason: String) -> DecodeError {
    DecodeError { offset, kind: DecodeErrorKind::BadField { name, reason } }
}

fn u64_of(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

/// Decode the packet whose header is at `stream[offset]`.
///
/// Returns the packet and its total length in dwords (header included), so the next packet
/// starts at `offset + len`.
///
/// # Errors
/// [`DecodeError`] with `offset` = the header's dword offset: [`DecodeErrorKind::Truncated`]
/// if the packet runs past the end of `stream` (or `offset` is at/after the end),
/// [`DecodeErrorKind::BadType`] for a non-type-3 header, [`DecodeErrorKind::BadLength`] for a
/// body length the opcode does not allow, [`DecodeErrorKind::BadField`] for reserved bits,
/// reserved selectors, misaligned addresses or registers outside the SH space.
pub fn decode_one(stream: &[u32], offset: usize) -> Result<(Packet, usize), DecodeError> {
    let Some(&h) = stream.get(offset) else {
        return Err(DecodeError {
            offset,
            kind: DecodeErrorKind::Truncated { opcode: 0, needed: 1, available: 0 },
        });
    };
    let ptype = header::TYPE.get(h) as u8;
    if ptype != 3 {
        return Err(DecodeError { offset, kind: DecodeErrorKind::BadType { ptype, header: h } });
    }
    let opcode = header::OPCODE.get(h) as u8;
    let name = opcode_info(opcode).map_or("UNKNOWN", |i| i.name);
    if header::PREDICATE.get(h) != 0 {
        return Err(bad_field(
            offset,
            name,
            "PREDICATE set: predicated packets are not supported".into(),
        ));
    }
    if header::RESERVED.get(h) != 0 {
        return Err(bad_field(
            offset,
            name,
            format!("reserved header bits [7:3] set in {h:#010x}"),
        ));
    }
    let count = header::COUNT.get(h);
    if opcode == op::NOP && count == header::NOP_HEADER_ONLY_COUNT {
        return Ok((Packet::Nop { payload: Vec::new() }, 1));
    }
    let total = count as usize + 2;
    let available = stream.len() - offset;
    if total > available {
        return Err(DecodeError {
            offset,
            kind: DecodeErrorKind::Truncated { opcode, needed: total, available },
        });
    }
    let body = &stream[offset + 1..offset + total];
    if let Some(info) = opcode_info(opcode) {
        let ok = match info.body {
            BodyLen::Fixed(n) => body.len() == n,
            BodyLen::Min(n) => body.len() >= n,
            BodyLen::Any => true,
        };
        if !ok {
            let expected = match info.body {
                BodyLen::Fixed(n) | BodyLen::Min(n) => n,
                BodyLen::Any => 0,
            };
            return Err(DecodeError {
                offset,
                kind: DecodeErrorKind::BadLength { name: info.name, expected, got: body.len() },
            });
        }
    }
    let p = decode_body(opcode, body).map_err(|(n, reason)| bad_field(offset, n, reason))?;
    Ok((p, total))
}

/// Decode a whole stream: every packet with the dword offset of its header.
///
/// # Errors
/// The first [`DecodeError`] (see [`decode_one`]); nothing after it is decoded.
pub fn decode(stream: &[u32]) -> Result<Vec<(usize, Packet)>, DecodeError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < stream.len() {
        let (p, n) = decode_one(stream, off)?;
        out.push((off, p));
        off += n;
    }
    Ok(out)
}

type BodyResult = Result<Packet, (&'static str, String)>;

fn only_fields(
    name: &'static str,
    dw: &str,
    v: u32,
    fields: &[Field],
) -> Result<(), (&'static str, String)> {
    let extra = v & !fields_mask(fields);
    if extra != 0 {
        Err((name, format!("{dw} {v:#010x} has reserved bits {extra:#010x} set")))
    } else {
        Ok(())
    }
}

fn aligned(
    name: &'static str,
    what: &str,
    addr: u64,
    align: u64,
) -> Result<(), (&'static str, String)> {
    if !addr.is_multiple_of(align) {
        Err((name, format!("{what} {addr:#x} is not {align}-byte aligned")))
    } else {
        Ok(())
    }
}

fn decode_body(opcode: u8, b: &[u32]) -> BodyResult {
    Ok(match opcode {
        op::NOP => Packet::Nop { payload: b.to_vec() },
        op::SET_SH_REG => {
            const N: &str = "SET_SH_REG";
            only_fields(N, "dw1", b[0], &[f::SET_SH_REG_OFFSET])?;
            let offset = f::SET_SH_REG_OFFSET.get(b[0]) as u16;
            let n = b.len() - 1;
            if offset as usize + n > regs::SH_REG_SPACE_DWORDS as usize {
                return Err((
                    N,
                    format!(
                        "registers {offset:#x}..{:#x} leave the SH register space (0..{:#x})",
                        offset as usize + n,
                        regs::SH_REG_SPACE_DWORDS
                    ),
                ));
            }
            Packet::SetShReg { offset, values: b[1..].to_vec() }
        }
        op::DISPATCH_DIRECT => Packet::DispatchDirect { dim: [b[0], b[1], b[2]], initiator: b[3] },
        op::RELEASE_MEM => {
            const N: &str = "RELEASE_MEM";
            only_fields(N, "dw2", b[1], f::RM_DW2)?;
            let r = ReleaseMem {
                event_type: f::RM_EVENT_TYPE.get(b[0]) as u8,
                event_index: f::RM_EVENT_INDEX.get(b[0]) as u8,
                gcr_cntl: f::RM_GCR_CNTL.get(b[0]) as u16,
                cache_policy: f::RM_CACHE_POLICY.get(b[0]) as u8,
                dw1_flags: b[0] & !fields_mask(f::RM_DW1_TYPED),
                dst_sel: f::RM_DST_SEL.get(b[1]) as u8,
                int_sel: f::RM_INT_SEL.get(b[1]) as u8,
                data_sel: f::RM_DATA_SEL.get(b[1]) as u8,
                addr: u64_of(b[2], b[3]),
                data: u64_of(b[4], b[5]),
                int_ctxid: b[6],
            };
            if r.data_sel > sel::DATA_SYSTEM_CLOCK {
                return Err((N, format!("DATA_SEL {} is reserved", r.data_sel)));
            }
            aligned(N, "address", r.addr, release_mem_align(r.data_sel))?;
            Packet::ReleaseMem(r)
        }
        op::ACQUIRE_MEM => {
            const N: &str = "ACQUIRE_MEM";
            if b[0] != 0 {
                return Err((N, format!("dw1 {:#010x} must be 0 on a compute (MEC) queue", b[0])));
            }
            only_fields(N, "dw6", b[5], &[f::AM_POLL_INTERVAL])?;
            Packet::AcquireMem(AcquireMem {
                coher_size: u64_of(b[1], b[2]),
                coher_base: u64_of(b[3], b[4]),
                poll_interval: f::AM_POLL_INTERVAL.get(b[5]) as u16,
                gcr_cntl: b[6],
            })
        }
        op::WRITE_DATA => {
            const N: &str = "WRITE_DATA";
            only_fields(N, "dw1", b[0], f::WD_DW1)?;
            let w = WriteData {
                dst_sel: f::WD_DST_SEL.get(b[0]) as u8,
                no_increment: f::WD_ADDR_INCR.get(b[0]) != 0,
                wr_confirm: f::WD_WR_CONFIRM.get(b[0]) != 0,
                cache_policy: f::WD_CACHE_POLICY.get(b[0]) as u8,
                addr: u64_of(b[1], b[2]),
                data: b[3..].to_vec(),
            };
            if dst_is_memory(w.dst_sel) {
                aligned(N, "address", w.addr, 4)?;
            }
            Packet::WriteData(w)
        }
        op::COPY_DATA => {
            const N: &str = "COPY_DATA";
            only_fields(N, "dw1", b[0], f::CD_DW1)?;
            let c = CopyData {
                src_sel: f::CD_SRC_SEL.get(b[0]) as u8,
                dst_sel: f::CD_DST_SEL.get(b[0]) as u8,
                count64: f::CD_COUNT_SEL.get(b[0]) != 0,
                wr_confirm: f::CD_WR_CONFIRM.get(b[0]) != 0,
                src: u64_of(b[1], b[2]),
                dst: u64_of(b[3], b[4]),
            };
            if c.src_sel == sel::TC_L2 {
                aligned(N, "source address", c.src, 4)?;
            }
            if dst_is_memory(c.dst_sel) {
                aligned(N, "destination address", c.dst, 4)?;
            }
            Packet::CopyData(c)
        }
        op::WAIT_REG_MEM => {
            const N: &str = "WAIT_REG_MEM";
            only_fields(N, "dw1", b[0], f::WRM_DW1)?;
            only_fields(N, "dw6", b[5], &[f::WRM_POLL_INTERVAL])?;
            let w = WaitRegMem {
                function: f::WRM_FUNCTION.get(b[0]) as u8,
                mem_space: f::WRM_MEM_SPACE.get(b[0]) as u8,
                operation: f::WRM_OPERATION.get(b[0]) as u8,
                addr: u64_of(b[1], b[2]),
                reference: b[3],
                mask: b[4],
                poll_interval: f::WRM_POLL_INTERVAL.get(b[5]) as u16,
            };
            if w.function == 7 {
                return Err((N, "FUNCTION 7 is reserved".into()));
            }
            if w.mem_space == sel::SPACE_MEMORY {
                aligned(N, "address", w.addr, 4)?;
            }
            Packet::WaitRegMem(w)
        }
        op::EVENT_WRITE => {
            only_fields("EVENT_WRITE", "dw1", b[0], f::EW_DW1)?;
            Packet::EventWrite {
                event_type: f::EW_EVENT_TYPE.get(b[0]) as u8,
                event_index: f::EW_EVENT_INDEX.get(b[0]) as u8,
            }
        }
        op::INDIRECT_BUFFER => {
            const N: &str = "INDIRECT_BUFFER";
            only_fields(N, "dw3", b[2], f::IB_DW3)?;
            let ib = IndirectBuffer {
                va: u64_of(b[0], b[1]),
                size_dw: f::IB_SIZE.get(b[2]),
                chain: f::IB_CHAIN.get(b[2]) != 0,
                valid: f::IB_VALID.get(b[2]) != 0,
                vmid: f::IB_VMID.get(b[2]) as u8,
            };
            aligned(N, "IB address", ib.va, 4)?;
            Packet::IndirectBuffer(ib)
        }
        _ => Packet::Other { opcode, body: b.to_vec() },
    })
}
