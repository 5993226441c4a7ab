//! The IB rule of every tier's `submit_ib`, checked before anything reaches a kernel or a ring.
//!
//! An IB is non-empty, at most [`pm4rt_core::MAX_IB_DWORDS`] dwords
//! ([`pm4rt_core::check_ib_size`]: IB_SIZE of `INDIRECT_BUFFER` is 20 bits), starts 4-byte
//! aligned (the packet's IB_BASE_LO holds bits 31:2, `gfx_v12_0.c:
//! gfx_v12_0_ring_emit_ib_compute` writes `lower_32_bits(ib->gpu_addr)` with the low bits
//! clear) and lies inside one BO mapped into the GPU VA space: the CP fetches it through the
//! page tables, and a range crossing into an unmapped page or another BO is a page fault
//! pm4rt refuses up front.

use pm4rt_core::{Error, Result};

use super::bo_table::{BoTable, TableBo};

/// Check the IB of `dwords` dwords at `ib_va` against the rule; returns its size in bytes.
///
/// Errors: [`Error::InvalidArgument`] naming what is wrong (empty, too large, misaligned, not
/// inside one mapped BO).
pub(crate) fn check<B: TableBo>(bos: &BoTable<B>, ib_va: u64, dwords: u32) -> Result<u64> {
    if dwords == 0 {
        return Err(Error::InvalidArgument(format!("IB at {ib_va:#x} is empty (0 dwords)")));
    }
    pm4rt_core::check_ib_size(dwords)?;
    if !ib_va.is_multiple_of(4) {
        return Err(Error::InvalidArgument(format!("IB VA {ib_va:#x} is not 4-byte aligned")));
    }
    let bytes = u64::from(dwords) * 4;
    if !bos.mapped_contains(ib_va, bytes) {
        return Err(Error::InvalidArgument(format!(
            "IB {ib_va:#x}..{:#x} is not inside one GPU-mapped BO",
            ib_va.saturating_add(bytes)
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mapped;

    impl TableBo for Mapped {
        fn gpu_span(&self) -> Option<(u64, u64)> {
            Some((0x10_0000, 0x1000))
        }
        fn size(&self) -> u64 {
            0x1000
        }
        fn cpu(&self) -> Option<&dyn pm4rt_core::Mapping> {
            None
        }
    }

    fn message(r: Result<u64>) -> String {
        match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn one_rule_one_message_each() {
        let mut t = BoTable::default();
        t.insert_with(|| Ok(Mapped)).unwrap();
        assert_eq!(check(&t, 0x10_0000, 1024), Ok(4096));
        assert_eq!(message(check(&t, 0x10_0000, 0)), "IB at 0x100000 is empty (0 dwords)");
        assert_eq!(message(check(&t, 0x10_0002, 4)), "IB VA 0x100002 is not 4-byte aligned");
        assert_eq!(
            message(check(&t, 0x10_0ffc, 2)),
            "IB 0x100ffc..0x101004 is not inside one GPU-mapped BO"
        );
        assert_eq!(
            message(check(&t, 0x10_0000, 1 << 20)),
            "IB of 1048576 dwords exceeds the 1048575 dwords one INDIRECT_BUFFER can run \
             (IB_SIZE is a 20-bit field)"
        );
    }
}
