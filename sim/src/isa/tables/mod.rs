//! Opcode tables per target, generated from LLVM 19 by `gen.py` (see the generated files).

#[rustfmt::skip]
pub(crate) mod gfx11;
#[rustfmt::skip]
pub(crate) mod gfx12;

use super::{OpInfo, Target};

/// An encoding family with its own opcode table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Sop1,
    Sop2,
    Sopk,
    Sopc,
    Sopp,
    Smem,
    Vop1,
    Vop2,
    Vopc,
    Vop3,
    Vop3p,
    VopdX,
    VopdY,
    Ds,
    Flat,
    Scratch,
    Global,
    Mubuf,
}

/// The table entry of `code` in `table` for `target`.
pub(crate) fn lookup(target: Target, table: Table, code: u32) -> Option<&'static OpInfo> {
    let rows: &[OpInfo] = match target {
        Target::Gfx11 => rows_gfx11(table),
        Target::Gfx12 => rows_gfx12(table),
    };
    let code = u16::try_from(code).ok()?;
    rows.binary_search_by_key(&code, |r| r.code).ok().map(|i| &rows[i])
}

macro_rules! rows_of {
    ($name:ident, $m:ident) => {
        fn $name(table: Table) -> &'static [OpInfo] {
            match table {
                Table::Sop1 => $m::SOP1,
                Table::Sop2 => $m::SOP2,
                Table::Sopk => $m::SOPK,
                Table::Sopc => $m::SOPC,
                Table::Sopp => $m::SOPP,
                Table::Smem => $m::SMEM,
                Table::Vop1 => $m::VOP1,
                Table::Vop2 => $m::VOP2,
                Table::Vopc => $m::VOPC,
                Table::Vop3 => $m::VOP3,
                Table::Vop3p => $m::VOP3P,
                Table::VopdX => $m::VOPDX,
                Table::VopdY => $m::VOPDY,
                Table::Ds => $m::DS,
                Table::Flat => $m::FLAT,
                Table::Scratch => $m::SCRATCH,
                Table::Global => $m::GLOBAL,
                Table::Mubuf => $m::MUBUF,
            }
        }
    };
}
rows_of!(rows_gfx11, gfx11);
rows_of!(rows_gfx12, gfx12);
