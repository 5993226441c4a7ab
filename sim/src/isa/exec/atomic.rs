//! The 32-bit read-modify-write operations shared by LDS (`ds_<op>[_rtn]_<type>`) and global
//! memory (`global_atomic_<op>_<type>`) atomics (AMD RDNA3/RDNA4 ISA, DS and FLAT/GLOBAL
//! atomic opcodes): one table, keyed by the `<op>_<type>` part of the mnemonic.

/// One 32-bit atomic operation.
#[derive(Clone, Copy)]
pub(super) enum Atomic32 {
    Swap,
    CmpSwap,
    Add,
    Sub,
    MinU,
    MaxU,
    MinI,
    MaxI,
    And,
    Or,
    Xor,
}

impl Atomic32 {
    /// The operation named `op_type` (e.g. `add_u32`, `cmpswap_b32`).
    pub(super) fn of(op_type: &str) -> Option<Atomic32> {
        Some(match op_type {
            "swap_b32" => Atomic32::Swap,
            "cmpswap_b32" => Atomic32::CmpSwap,
            "add_u32" => Atomic32::Add,
            "sub_u32" => Atomic32::Sub,
            "min_u32" => Atomic32::MinU,
            "max_u32" => Atomic32::MaxU,
            "min_i32" => Atomic32::MinI,
            "max_i32" => Atomic32::MaxI,
            "and_b32" => Atomic32::And,
            "or_b32" => Atomic32::Or,
            "xor_b32" => Atomic32::Xor,
            _ => return None,
        })
    }

    /// The new memory value from the old one, DATA[0] `v` and (cmpswap) DATA[1] `cmp`:
    /// cmpswap stores `v` when the old value equals `cmp`.
    pub(super) fn apply(self, old: u32, v: u32, cmp: u32) -> u32 {
        match self {
            Atomic32::Swap => v,
            Atomic32::CmpSwap => {
                if old == cmp {
                    v
                } else {
                    old
                }
            }
            Atomic32::Add => old.wrapping_add(v),
            Atomic32::Sub => old.wrapping_sub(v),
            Atomic32::MinU => old.min(v),
            Atomic32::MaxU => old.max(v),
            Atomic32::MinI => (old as i32).min(v as i32) as u32,
            Atomic32::MaxI => (old as i32).max(v as i32) as u32,
            Atomic32::And => old & v,
            Atomic32::Or => old | v,
            Atomic32::Xor => old ^ v,
        }
    }
}
