//! A one-line-per-packet disassembler that names every field, using the tables.

use std::fmt::{self, Write as _};

use super::decode::decode_one;
use super::packet::Packet;
use super::tables::{
    acquire_mem_gcr_fields, fields as f, lookup, release_mem_gcr_fields, sh_reg_fields,
    sh_reg_name, Field, COPY_SRC_SEL_NAMES, DST_SEL_NAMES, EVENT_NAMES, MEM_SPACE_NAMES,
    RELEASE_DATA_SEL_NAMES, RELEASE_DST_SEL_NAMES, RELEASE_INT_SEL_NAMES, WAIT_FUNCTION_NAMES,
};
use super::DecodeError;
use crate::submitter::GfxTarget;

/// Most data dwords a WRITE_DATA / NOP / unknown-packet line lists before eliding the rest.
const MAX_LISTED: usize = 16;

/// The result of [`disassemble`]: every packet decoded before the first error, and that
/// error (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disassembly {
    /// `(dword offset of the header, text)` per decoded packet, in stream order.
    pub lines: Vec<(usize, String)>,
    /// The decode error that stopped the disassembly (its `offset` is the bad header's dword).
    pub error: Option<DecodeError>,
}

impl Disassembly {
    /// The listing if the whole stream decoded.
    ///
    /// # Errors
    /// The [`DecodeError`] that stopped decoding (the partial lines are dropped; use the
    /// fields or `Display` to keep them).
    pub fn into_result(self) -> Result<String, DecodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.to_string()),
        }
    }
}

impl fmt::Display for Disassembly {
    /// One `0x{offset:04x}: {text}` line per packet, then `error: {error}` if there is one.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (off, text) in &self.lines {
            writeln!(out, "{off:#06x}: {text}")?;
        }
        if let Some(e) = &self.error {
            writeln!(out, "error: {e}")?;
        }
        Ok(())
    }
}

/// Disassemble `stream` for `gfx` (which selects the GCR and register field names): one line
/// per packet with its dword offset; decoding stops at the first malformed packet, whose
/// error is kept in [`Disassembly::error`] next to the lines decoded before it.
pub fn disassemble(stream: &[u32], gfx: GfxTarget) -> Disassembly {
    let mut lines = Vec::new();
    let mut off = 0;
    while off < stream.len() {
        match decode_one(stream, off) {
            Ok((p, n)) => {
                lines.push((off, format_packet(&p, gfx)));
                off += n;
            }
            Err(e) => return Disassembly { lines, error: Some(e) },
        }
    }
    Disassembly { lines, error: None }
}

/// Format a `(value, name)` selector: `3(eq)` or `7(?)`.
fn named(table: &[(u8, &'static str)], v: u8) -> String {
    format!("{v}({})", lookup(table, v).unwrap_or("?"))
}

/// The non-zero fields of `value` named from `fields`: `{A B=3 ?=0x100}` (1-bit fields by
/// name only; bits outside every field as `?=`). Empty braces for 0.
pub fn format_fields(value: u32, fields: &[Field]) -> String {
    let mut s = String::from("{");
    let mut covered = 0u32;
    let mut first = true;
    for fl in fields {
        covered |= fl.mask();
        let v = fl.get(value);
        if v == 0 {
            continue;
        }
        if !first {
            s.push(' ');
        }
        first = false;
        if fl.width == 1 {
            s.push_str(fl.name);
        } else {
            let _ = write!(s, "{}={v:#x}", fl.name);
        }
    }
    let rest = value & !covered;
    if rest != 0 {
        if !first {
            s.push(' ');
        }
        let _ = write!(s, "?={rest:#x}");
    }
    s.push('}');
    s
}

fn list(words: &[u32]) -> String {
    let mut s = String::from("[");
    for (i, w) in words.iter().take(MAX_LISTED).enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{w:#010x}");
    }
    if words.len() > MAX_LISTED {
        let _ = write!(s, ",... {} dwords", words.len());
    }
    s.push(']');
    s
}

/// One packet as a single line (no offset), every field named.
pub fn format_packet(p: &Packet, gfx: GfxTarget) -> String {
    let mut s = String::from(p.name());
    match p {
        Packet::Nop { payload } => {
            if payload.is_empty() {
                s.push_str(" (header only)");
            } else {
                let _ = write!(s, " PAYLOAD={} dwords", payload.len());
            }
        }
        Packet::SetShReg { offset, values } => {
            for (i, v) in values.iter().enumerate() {
                let reg = offset + i as u16;
                match sh_reg_name(reg) {
                    Some(n) => {
                        let _ = write!(s, " {n}={v:#010x}");
                    }
                    None => {
                        let _ = write!(s, " SH_REG[{reg:#05x}]={v:#010x}");
                    }
                }
                if let Some(fields) = sh_reg_fields(reg, gfx) {
                    s.push_str(&format_fields(*v, fields));
                }
            }
        }
        Packet::DispatchDirect { dim, initiator } => {
            let fields = sh_reg_fields(super::regs::COMPUTE_DISPATCH_INITIATOR, gfx).unwrap_or(&[]);
            let _ = write!(
                s,
                " DIM_X={} DIM_Y={} DIM_Z={} INITIATOR={initiator:#010x}{}",
                dim[0],
                dim[1],
                dim[2],
                format_fields(*initiator, fields)
            );
        }
        Packet::ReleaseMem(r) => {
            let gcr_dw1 = u32::from(r.gcr_cntl) << f::RM_GCR_CNTL.lo;
            let _ = write!(
                s,
                " EVENT_TYPE={:#04x}({}) EVENT_INDEX={} GCR_CNTL={:#x}{} CACHE_POLICY={} FLAGS={} \
                 DST_SEL={} INT_SEL={} DATA_SEL={} ADDR={:#x} DATA={:#x} INT_CTXID={:#x}",
                r.event_type,
                lookup(EVENT_NAMES, r.event_type).unwrap_or("?"),
                r.event_index,
                r.gcr_cntl,
                format_fields(gcr_dw1, release_mem_gcr_fields(gfx)),
                r.cache_policy,
                format_fields(r.dw1_flags, f::RM_DW1_FLAGS),
                named(RELEASE_DST_SEL_NAMES, r.dst_sel),
                named(RELEASE_INT_SEL_NAMES, r.int_sel),
                named(RELEASE_DATA_SEL_NAMES, r.data_sel),
                r.addr,
                r.data,
                r.int_ctxid
            );
        }
        Packet::AcquireMem(a) => {
            let _ = write!(
                s,
                " COHER_SIZE={:#x} COHER_BASE={:#x} POLL_INTERVAL={:#x} GCR_CNTL={:#x}{}",
                a.coher_size,
                a.coher_base,
                a.poll_interval,
                a.gcr_cntl,
                format_fields(a.gcr_cntl, acquire_mem_gcr_fields(gfx))
            );
        }
        Packet::WriteData(w) => {
            let _ = write!(
                s,
                " DST_SEL={} ADDR_INCR={} WR_CONFIRM={} CACHE_POLICY={} ADDR={:#x} DATA={}",
                named(DST_SEL_NAMES, w.dst_sel),
                u8::from(w.no_increment),
                u8::from(w.wr_confirm),
                w.cache_policy,
                w.addr,
                list(&w.data)
            );
        }
        Packet::CopyData(c) => {
            let _ = write!(
                s,
                " SRC_SEL={} DST_SEL={} COUNT_SEL={} WR_CONFIRM={} SRC={:#x} DST={:#x}",
                named(COPY_SRC_SEL_NAMES, c.src_sel),
                named(DST_SEL_NAMES, c.dst_sel),
                if c.count64 { "1(64bit)" } else { "0(32bit)" },
                u8::from(c.wr_confirm),
                c.src,
                c.dst
            );
        }
        Packet::WaitRegMem(w) => {
            let _ = write!(
                s,
                " FUNCTION={} MEM_SPACE={} OPERATION={} ADDR={:#x} REFERENCE={:#x} MASK={:#x} \
                 POLL_INTERVAL={:#x}",
                named(WAIT_FUNCTION_NAMES, w.function),
                named(MEM_SPACE_NAMES, w.mem_space),
                w.operation,
                w.addr,
                w.reference,
                w.mask,
                w.poll_interval
            );
        }
        Packet::EventWrite { event_type, event_index } => {
            let _ = write!(
                s,
                " EVENT_TYPE={event_type:#04x}({}) EVENT_INDEX={event_index}",
                lookup(EVENT_NAMES, *event_type).unwrap_or("?")
            );
        }
        Packet::IndirectBuffer(ib) => {
            let _ = write!(
                s,
                " VA={:#x} IB_SIZE={} CHAIN={} VALID={} VMID={}",
                ib.va,
                ib.size_dw,
                u8::from(ib.chain),
                u8::from(ib.valid),
                ib.vmid
            );
        }
        Packet::Other { opcode, body } => {
            let _ = write!(s, "(opcode {opcode:#04x}) BODY={}", list(body));
        }
    }
    s
}
