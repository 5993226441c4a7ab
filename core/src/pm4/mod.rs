//! PM4 type-3 packets for gfx11 / gfx12 compute queues: a typed builder ([`Builder`]), a
//! decoder ([`decode`]) and a disassembler ([`disassemble`]), over declarative opcode, register
//! and field tables ([`tables`]).
//!
//! - [`encode_packet`] / [`try_encode_packet`] / [`Packet::encode_into`]: typed [`Packet`] ->
//!   dwords. Every header sets SHADER_TYPE (bit 1); an empty NOP is the 1-dword header-only
//!   NOP (COUNT 0x3FFF).
//! - [`decode_one`] / [`decode`]: dwords -> typed packets; malformed input is a [`DecodeError`]
//!   naming the dword offset. Type-0/1/2 headers (including the type-2 filler 0x80000000) are
//!   rejected: the encoder never emits them, so `decode(encode(p)) == p` for every valid `p`.
//! - [`Builder`]: bounds-checked writer into a caller's `&mut [u32]` or a growable vector, with
//!   per-target fence / cache-control helpers and Mesa's compute IB padding
//!   ([`Builder::pad_ib`], [`IB_PAD_DWORDS`]); never writes past the buffer.
//! - [`disassemble`]: one named-field line per packet, keeping the lines decoded before an error.

mod builder;
mod decode;
mod disasm;
mod encode;
mod packet;
pub mod tables;
#[cfg(test)]
mod tests;

pub use builder::{
    Builder, FenceInterrupt, ACQUIRE_FULL_GCR_GFX11, ACQUIRE_FULL_GCR_GFX12, ACQUIRE_POLL_INTERVAL,
    COHER_SIZE_ALL, FENCE_CACHE_POLICY, FENCE_GCR_GFX11, FENCE_GCR_GFX12, IB_PAD_DWORDS,
};
pub use decode::{decode, decode_one};
pub use disasm::{disassemble, format_fields, format_packet, Disassembly};
pub use encode::{encode_packet, try_encode_packet, EncodeError, OutOfSpace};
pub use packet::{AcquireMem, CopyData, IndirectBuffer, Packet, ReleaseMem, WaitRegMem, WriteData};
pub use tables::{event, regs, sel, Field};
/// Why a dword stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at dword {offset}: {kind}")]
pub struct DecodeError {
    /// Dword offset of the offending packet's header within the stream.
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// The kinds of malformed PM4 the decoder rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The packet header announces more dwords than the stream holds.
    #[error("packet {opcode:#04x} needs {needed} dwords but only {available} remain")]
    Truncated {
        /// The opcode.
        opcode: u8,
        /// Total dwords the header announces.
        needed: usize,
        /// Dwords left in the stream from the header on.
        available: usize,
    },
    /// A header of packet type 0 or 1 (register writes not allowed on compute queues), or a
    /// reserved type.
    #[error("unsupported packet type {ptype} in header {header:#010x}")]
    BadType {
        /// Bits \[31:30\].
        ptype: u8,
        /// The whole header.
        header: u32,
    },
    /// A known opcode with the wrong body length.
    #[error("{name} must have {expected} body dwords, header says {got}")]
    BadLength {
        /// Packet name.
        name: &'static str,
        /// Required body dwords (minimum for variable-length packets).
        expected: usize,
        /// Body dwords announced.
        got: usize,
    },
    /// A field holds a value the packet does not allow (misaligned address, reserved selector).
    #[error("{name}: {reason}")]
    BadField {
        /// Packet name.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
}
