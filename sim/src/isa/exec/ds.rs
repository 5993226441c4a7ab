//! DS: LDS loads and stores per lane and `ds_swizzle_b32`.

use super::{ExecError, Result, Step, VSrc};
use crate::isa::wave::{Wave, LANES};

impl Step<'_> {
    fn lds_range(&self, addr: u32, len: usize) -> Result<std::ops::Range<usize>> {
        let start = addr as usize;
        match start.checked_add(len) {
            Some(end) if end <= self.lds.len() => Ok(start..end),
            _ => Err(ExecError::LdsOutOfRange { va: self.va, addr, size: self.lds.len() }),
        }
    }

    pub(super) fn ds(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let name = inst.op.name;
        let (vdst, addr, data0) = (inst.bits(63, 56), inst.bits(39, 32), inst.bits(47, 40));
        let offset = inst.bits(15, 8) << 8 | inst.bits(7, 0);
        let exec = w.exec();
        if name == "ds_swizzle_b32" {
            // The source VGPR is in the ADDR field. Bit-mask mode (offset bit 15 clear): lane
            // `l` reads lane ((l & and) | or) ^ xor, whether that lane is active or not.
            if offset & 0x8000 != 0 {
                return Err(self.unimplemented());
            }
            let (and, or, xor) = (offset & 0x1f, offset >> 5 & 0x1f, offset >> 10 & 0x1f);
            let src = w.vgpr.get(addr as usize).copied().unwrap_or([0; LANES]);
            for lane in 0..LANES {
                if exec >> lane & 1 == 1 {
                    let from = ((lane as u32 & and) | or) ^ xor;
                    Self::set_v(w, vdst, lane, src[from as usize & (LANES - 1)]);
                }
            }
            return Ok(());
        }
        let (store, dwords) = match name {
            "ds_store_b32" => (true, 1),
            "ds_store_b64" => (true, 2),
            "ds_store_b128" => (true, 4),
            "ds_load_b32" => (false, 1),
            "ds_load_b64" => (false, 2),
            "ds_load_b128" => (false, 4),
            _ => return Err(self.unimplemented()),
        };
        let moved = u64::from(exec.count_ones()) * dwords as u64 * 4;
        if store {
            self.stats.lds.stores += 1;
            self.stats.lds.store_bytes += moved;
        } else {
            self.stats.lds.loads += 1;
            self.stats.lds.load_bytes += moved;
        }
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let a = Self::lane32(w, VSrc::Vgpr(addr as usize), lane).wrapping_add(offset);
            let range = self.lds_range(a, dwords * 4)?;
            for i in 0..dwords {
                let at = range.start + 4 * i;
                if store {
                    let v = Self::lane32(w, VSrc::Vgpr(data0 as usize + i), lane);
                    self.lds[at..at + 4].copy_from_slice(&v.to_le_bytes());
                } else {
                    let b = &self.lds[at..at + 4];
                    let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    Self::set_v(w, vdst + i as u32, lane, v);
                }
            }
        }
        Ok(())
    }
}
