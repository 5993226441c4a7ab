//! Decoding machine code into [`Inst`]s: the family from the fixed high bits of the first
//! dword, the opcode from the family's opcode field, the size from the family plus a trailing
//! literal dword when a source operand selects it (operand value 255, `AMDGPU::EncValues::
//! LITERAL_CONST` in llvm/lib/Target/AMDGPU/SIDefines.h) or the opcode always carries one
//! (`v_fmaak_f32`, `v_fmamk_f32` and their VOPD forms: shape token `l`).
//!
//! Family bits (llvm/lib/Target/AMDGPU/*Instructions.td, the `Inst{31-xx}` constants of each
//! encoding class): SOP1 `0b101111101` [31:23], SOPC `0b101111110`, SOPP `0b101111111`, SOPK
//! `0b1011` [31:28], SOP2 `0b10` [31:30], VOP1 `0b0111111` [31:25], VOPC `0b0111110`, VOP2
//! `0b0` [31], SMEM `0b111101` [31:26], VOP3 `0b110101`, VOP3P `0b11001100` [31:24], VOPD
//! `0b110010` [31:26], DS `0b110110`, FLAT (gfx11) `0b110111` with seg [17:16], VFLAT/VSCRATCH/
//! VGLOBAL (gfx12) `0b111011` [31:26] with seg [25:24], MUBUF (gfx11) `0b111000`.

use super::tables::{lookup, Table};
use super::{OpInfo, Target};
use thiserror::Error;

/// Why a code range does not decode.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// No instruction of the target has this encoding.
    #[error("unknown {target:?} encoding at offset {offset:#x}: dwords {dwords:08x?}")]
    Unknown {
        /// Target the code was decoded for.
        target: Target,
        /// Byte offset of the instruction in the code.
        offset: usize,
        /// The raw dwords at the offset (up to the longest encoding).
        dwords: Vec<u32>,
    },
    /// The code ends inside an instruction.
    #[error("truncated instruction at offset {offset:#x}: needs {need} bytes, {have} left")]
    Truncated {
        /// Byte offset of the instruction.
        offset: usize,
        /// Bytes the instruction needs.
        need: usize,
        /// Bytes left in the code.
        have: usize,
    },
    /// The code size is not a multiple of four bytes.
    #[error("code size {0} is not a multiple of 4")]
    Unaligned(usize),
}

/// Encoding family of a decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Scalar ALU, one source.
    Sop1,
    /// Scalar ALU, two sources.
    Sop2,
    /// Scalar ALU with a 16-bit immediate.
    Sopk,
    /// Scalar compare.
    Sopc,
    /// Scalar program control.
    Sopp,
    /// Scalar memory.
    Smem,
    /// Vector ALU, one source.
    Vop1,
    /// Vector ALU, two sources.
    Vop2,
    /// Vector compare.
    Vopc,
    /// Vector ALU, 64-bit encoding (VOP3 and VOP3B).
    Vop3,
    /// Packed / mixed-precision vector ALU.
    Vop3p,
    /// Dual-issue vector ALU (X and Y halves).
    Vopd,
    /// LDS (data share).
    Ds,
    /// FLAT address space.
    Flat,
    /// Scratch (private) segment.
    Scratch,
    /// Global segment.
    Global,
    /// Buffer memory (gfx11 MUBUF; only the operand-less cache controls are in the tables).
    Mubuf,
}

impl Family {
    /// Every family, in declaration order ([`Family::index`]).
    pub const ALL: [Family; 17] = [
        Family::Sop1,
        Family::Sop2,
        Family::Sopk,
        Family::Sopc,
        Family::Sopp,
        Family::Smem,
        Family::Vop1,
        Family::Vop2,
        Family::Vopc,
        Family::Vop3,
        Family::Vop3p,
        Family::Vopd,
        Family::Ds,
        Family::Flat,
        Family::Scratch,
        Family::Global,
        Family::Mubuf,
    ];

    /// Position in [`Family::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name of the encoding (`sop1`, `vop3p`, `global`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Family::Sop1 => "sop1",
            Family::Sop2 => "sop2",
            Family::Sopk => "sopk",
            Family::Sopc => "sopc",
            Family::Sopp => "sopp",
            Family::Smem => "smem",
            Family::Vop1 => "vop1",
            Family::Vop2 => "vop2",
            Family::Vopc => "vopc",
            Family::Vop3 => "vop3",
            Family::Vop3p => "vop3p",
            Family::Vopd => "vopd",
            Family::Ds => "ds",
            Family::Flat => "flat",
            Family::Scratch => "scratch",
            Family::Global => "global",
            Family::Mubuf => "mubuf",
        }
    }

    /// True for the families that run per lane under EXEC.
    pub fn is_vector(self) -> bool {
        !matches!(
            self,
            Family::Sop1 | Family::Sop2 | Family::Sopk | Family::Sopc | Family::Sopp | Family::Smem
        ) && self != Family::Mubuf
    }
}

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inst {
    /// Byte offset in the code.
    pub offset: usize,
    /// Encoding family.
    pub family: Family,
    /// Table entry (for VOPD: the X half).
    pub op: &'static OpInfo,
    /// For VOPD: the Y half.
    pub op_y: Option<&'static OpInfo>,
    /// Raw dwords including a trailing literal (unused slots are 0).
    pub words: [u32; 4],
    /// Number of dwords the instruction occupies.
    pub len: usize,
    /// The literal constant, if one follows the encoding.
    pub literal: Option<u32>,
    /// Dwords of the destination and sources 0, 1, 2 (`d`, `a`, `b`, `c` of the opcode's
    /// shape; 1 when absent), read from the shape once at decode.
    pub widths: [u8; 4],
}

impl Inst {
    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.len * 4
    }

    /// The DPP selection of a VOP1/VOP2/VOPC instruction whose src0 is a DPP marker.
    pub fn dpp(&self) -> Option<Dpp> {
        if !matches!(self.family, Family::Vop1 | Family::Vop2 | Family::Vopc) {
            return None;
        }
        let ext = self.words[1];
        let b = |hi: u32, lo: u32| (ext >> lo) & ((1u32 << (hi - lo + 1)) - 1);
        match self.bits(8, 0) {
            SRC_DPP16 => Some(Dpp::Dpp16 {
                ctrl: b(16, 8),
                fi: b(18, 18) == 1,
                bound_ctrl: b(19, 19) == 1,
                row_mask: b(31, 28),
                bank_mask: b(27, 24),
            }),
            SRC_DPP8 | SRC_DPP8_FI => {
                Some(Dpp::Dpp8 { sel: b(31, 8), fi: self.bits(8, 0) == SRC_DPP8_FI })
            }
            _ => None,
        }
    }

    /// Bits `lo..=hi` of the instruction's 128-bit word (dword 0 = bits 0..31).
    pub fn bits(&self, hi: u32, lo: u32) -> u32 {
        let w = u128::from(self.words[0])
            | u128::from(self.words[1]) << 32
            | u128::from(self.words[2]) << 64
            | u128::from(self.words[3]) << 96;
        let width = hi - lo + 1;
        ((w >> lo) & ((1u128 << width) - 1)) as u32
    }
}

const LITERAL: u32 = 255;

/// src0 values of VOP1/VOP2/VOPC that announce a DPP dword (SIDefines.h
/// `AMDGPU::DPP::DppFiMode` / `EncValues`): DPP16 (0xFA), DPP8 (0xE9), DPP8 with FI (0xEA).
const SRC_DPP16: u32 = 0xFA;
const SRC_DPP8: u32 = 0xE9;
const SRC_DPP8_FI: u32 = 0xEA;

/// The lane selection of a DPP instruction (its second dword).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dpp {
    /// DPP16: `dpp_ctrl` [16:8], fetch-inactive [18], bound_ctrl [19], row_mask [31:28],
    /// bank_mask [27:24] of the DPP dword.
    Dpp16 {
        /// The lane-selection control.
        ctrl: u32,
        /// Fetch inactive lanes.
        fi: bool,
        /// Out-of-range or invalid source lanes read 0 (else the lane is not written).
        bound_ctrl: bool,
        /// Rows (16 lanes) that are written.
        row_mask: u32,
        /// Banks (4 lanes of each row) that are written.
        bank_mask: u32,
    },
    /// DPP8: lane `l` reads lane `(l & !7) | sel[l & 7]` (3 bits each).
    Dpp8 {
        /// The eight 3-bit lane selects.
        sel: u32,
        /// Fetch inactive lanes.
        fi: bool,
    },
}

/// Decode `code` (a kernel's machine code) into instructions, in order.
pub fn decode_all(target: Target, code: &[u8]) -> Result<Vec<Inst>, DecodeError> {
    if !code.len().is_multiple_of(4) {
        return Err(DecodeError::Unaligned(code.len()));
    }
    let dwords: Vec<u32> =
        code.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < dwords.len() {
        let inst = decode_one(target, &dwords[i..], i * 4)?;
        i += inst.len;
        out.push(inst);
    }
    Ok(out)
}

/// Decode the instruction at the start of `dw` (at byte `offset`).
///
/// Errors: [`DecodeError::Truncated`] when `dw` is empty or ends inside the instruction;
/// [`DecodeError::Unknown`] for an encoding the target does not have.
pub fn decode_one(target: Target, dw: &[u32], offset: usize) -> Result<Inst, DecodeError> {
    let Some(&w0) = dw.first() else {
        return Err(DecodeError::Truncated { offset, need: 4, have: 0 });
    };
    let unknown =
        || DecodeError::Unknown { target, offset, dwords: dw.iter().take(3).copied().collect() };
    let (family, table, code, base_len) = classify(target, w0).ok_or_else(unknown)?;
    if base_len > dw.len() {
        return Err(DecodeError::Truncated { offset, need: base_len * 4, have: dw.len() * 4 });
    }
    let op = lookup(target, table, code).ok_or_else(unknown)?;
    let mut words = [0u32; 4];
    words[..base_len].copy_from_slice(&dw[..base_len]);
    let widths = ['d', 'a', 'b', 'c'].map(|role| shape_width(op.shape, role));
    let mut inst =
        Inst { offset, family, op, op_y: None, words, len: base_len, literal: None, widths };
    if family == Family::Vopd {
        let y = lookup(target, Table::VopdY, inst.bits(21, 17)).ok_or_else(unknown)?;
        inst.op_y = Some(y);
    }
    if inst.dpp().is_some() {
        // DPP16 / DPP8: one more dword with the real src0 VGPR and the lane selection.
        let Some(&ext) = dw.get(base_len) else {
            return Err(DecodeError::Truncated {
                offset,
                need: (base_len + 1) * 4,
                have: dw.len() * 4,
            });
        };
        inst.words[base_len] = ext;
        inst.len += 1;
        return Ok(inst);
    }
    if needs_literal(&inst) {
        let Some(&lit) = dw.get(base_len) else {
            return Err(DecodeError::Truncated {
                offset,
                need: (base_len + 1) * 4,
                have: dw.len() * 4,
            });
        };
        inst.words[base_len] = lit;
        inst.literal = Some(lit);
        inst.len += 1;
    }
    Ok(inst)
}

/// Family, opcode table, opcode value and length in dwords (without a literal) of `w0`.
fn classify(target: Target, w0: u32) -> Option<(Family, Table, u32, usize)> {
    let b = |hi: u32, lo: u32| (w0 >> lo) & ((1u32 << (hi - lo + 1)) - 1);
    Some(match b(31, 23) {
        0x17D => (Family::Sop1, Table::Sop1, b(15, 8), 1),
        0x17E => (Family::Sopc, Table::Sopc, b(22, 16), 1),
        0x17F => (Family::Sopp, Table::Sopp, b(22, 16), 1),
        _ if b(31, 28) == 0xB => (Family::Sopk, Table::Sopk, b(27, 23), 1),
        _ if b(31, 30) == 0b10 => (Family::Sop2, Table::Sop2, b(29, 23), 1),
        _ if b(31, 25) == 0x3F => (Family::Vop1, Table::Vop1, b(16, 9), 1),
        _ if b(31, 25) == 0x3E => (Family::Vopc, Table::Vopc, b(24, 17), 1),
        _ if b(31, 31) == 0 => (Family::Vop2, Table::Vop2, b(30, 25), 1),
        _ if b(31, 26) == 0x3D => match target {
            Target::Gfx11 => (Family::Smem, Table::Smem, b(25, 18), 2),
            Target::Gfx12 => (Family::Smem, Table::Smem, b(18, 13), 2),
        },
        _ if b(31, 26) == 0x35 => (Family::Vop3, Table::Vop3, b(25, 16), 2),
        _ if b(31, 24) == 0xCC => (Family::Vop3p, Table::Vop3p, b(22, 16), 2),
        _ if b(31, 26) == 0x32 => (Family::Vopd, Table::VopdX, b(25, 22), 2),
        _ if b(31, 26) == 0x36 => (Family::Ds, Table::Ds, b(25, 18), 2),
        _ if b(31, 26) == 0x37 && target == Target::Gfx11 => match b(17, 16) {
            0 => (Family::Flat, Table::Flat, b(24, 18), 2),
            1 => (Family::Scratch, Table::Scratch, b(24, 18), 2),
            2 => (Family::Global, Table::Global, b(24, 18), 2),
            _ => return None,
        },
        _ if b(31, 26) == 0x38 && target == Target::Gfx11 => {
            (Family::Mubuf, Table::Mubuf, b(25, 18), 2)
        }
        _ if b(31, 26) == 0x3B && target == Target::Gfx12 => match b(25, 24) {
            0 => (Family::Flat, Table::Flat, b(21, 14), 3),
            1 => (Family::Scratch, Table::Scratch, b(21, 14), 3),
            2 => (Family::Global, Table::Global, b(21, 14), 3),
            _ => return None,
        },
        _ => return None,
    })
}

/// Whether a literal dword follows the encoding of `inst`.
fn needs_literal(inst: &Inst) -> bool {
    let shape_has_l = |o: &OpInfo| o.shape.split(' ').any(|t| t == "l");
    let src_fields: &[(u32, u32)] = match inst.family {
        Family::Sop1 => &[(7, 0)],
        Family::Sop2 | Family::Sopc => &[(7, 0), (15, 8)],
        Family::Vop1 | Family::Vop2 | Family::Vopc => &[(8, 0)],
        Family::Vop3 | Family::Vop3p => &[(40, 32), (49, 41), (58, 50)],
        Family::Vopd => &[(8, 0), (40, 32)],
        _ => &[],
    };
    let used = |i: usize| {
        // Only the sources the opcode prints (a, b, c) select a literal.
        let role = ['a', 'b', 'c'][i];
        inst.op.shape.split(' ').any(|t| t.starts_with(role)) || matches!(inst.family, Family::Vopd)
    };
    src_fields.iter().enumerate().any(|(i, &(hi, lo))| used(i) && inst.bits(hi, lo) == LITERAL)
        || shape_has_l(inst.op)
        || inst.op_y.is_some_and(shape_has_l)
}

/// Dwords of operand `role` in an opcode shape (1 when absent).
pub fn shape_width(shape: &str, role: char) -> u8 {
    shape.split(' ').find(|t| t.starts_with(role)).and_then(|t| t[1..].parse().ok()).unwrap_or(1)
}
