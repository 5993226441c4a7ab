//! DS: LDS loads and stores per lane and `ds_swizzle_b32`.

use super::atomic::Atomic32;
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
        if name == "ds_bpermute_b32" {
            // Lane `l` reads DATA0 of lane ((ADDR[l] + offset) / 4) mod 32; an inactive source
            // lane reads 0.
            let src = w.vgpr.get(data0 as usize).copied().unwrap_or([0; LANES]);
            let idx = w.vgpr.get(addr as usize).copied().unwrap_or([0; LANES]);
            let mut out = [0u32; LANES];
            for (lane, o) in out.iter_mut().enumerate() {
                let from = (idx[lane].wrapping_add(offset) / 4) as usize % LANES;
                *o = if exec >> from & 1 == 1 { src[from] } else { 0 };
            }
            for (lane, v) in out.iter().enumerate() {
                if exec >> lane & 1 == 1 {
                    Self::set_v(w, vdst, lane, *v);
                }
            }
            return Ok(());
        }
        // LDS exchange and compare are ds_wrxchg / ds_cmpstore (other operand orders).
        let lds_atomic = name.replace("_rtn", "").strip_prefix("ds_").and_then(Atomic32::of);
        if let Some(op) = lds_atomic.filter(|op| !matches!(op, Atomic32::Swap | Atomic32::CmpSwap))
        {
            return self.ds_atomic(w, op, name.contains("_rtn_"), vdst, addr, data0, offset);
        }
        if let Some((store, dwords, stride)) = two_addr(name) {
            return self.ds_2addr(w, store, dwords, stride, [vdst, addr, data0, inst.bits(55, 48)]);
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

/// `ds_{load,store}_2addr[_stride64]_b{32,64}`: (store, dwords per element, offset scale in
/// elements).
fn two_addr(name: &str) -> Option<(bool, usize, u32)> {
    Some(match name {
        "ds_store_2addr_b32" => (true, 1, 1),
        "ds_store_2addr_stride64_b32" => (true, 1, 64),
        "ds_store_2addr_b64" => (true, 2, 1),
        "ds_store_2addr_stride64_b64" => (true, 2, 64),
        "ds_load_2addr_b32" => (false, 1, 1),
        "ds_load_2addr_stride64_b32" => (false, 1, 64),
        "ds_load_2addr_b64" => (false, 2, 1),
        "ds_load_2addr_stride64_b64" => (false, 2, 64),
        _ => return None,
    })
}

impl Step<'_> {
    /// An LDS atomic: the active lanes in lane order, each reading, combining and writing its
    /// dword (the `_rtn_` forms return the old value in VDST).
    #[allow(clippy::too_many_arguments)]
    fn ds_atomic(
        &mut self,
        w: &mut Wave,
        op: Atomic32,
        rtn: bool,
        vdst: u32,
        addr: u32,
        data0: u32,
        offset: u32,
    ) -> Result<()> {
        let exec = w.exec();
        self.stats.lds.stores += 1;
        self.stats.lds.store_bytes += u64::from(exec.count_ones()) * 4;
        for lane in (0..LANES).filter(|l| exec >> l & 1 == 1) {
            let a = Self::lane32(w, VSrc::Vgpr(addr as usize), lane).wrapping_add(offset);
            let r = self.lds_range(a, 4)?;
            let b = &self.lds[r.clone()];
            let old = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let v = Self::lane32(w, VSrc::Vgpr(data0 as usize), lane);
            self.lds[r].copy_from_slice(&op.apply(old, v, 0).to_le_bytes());
            if rtn {
                Self::set_v(w, vdst, lane, old);
            }
        }
        Ok(())
    }

    /// Two elements per lane at ADDR + OFFSET0 * scale and ADDR + OFFSET1 * scale (scale =
    /// element bytes * `stride`); stores take DATA0 and DATA1, loads fill VDST with the first
    /// element then the second.
    fn ds_2addr(
        &mut self,
        w: &mut Wave,
        store: bool,
        dwords: usize,
        stride: u32,
        [vdst, addr, data0, data1]: [u32; 4],
    ) -> Result<()> {
        let inst = self.inst;
        let exec = w.exec();
        let scale = 4 * dwords as u32 * stride;
        let offsets = [inst.bits(7, 0) * scale, inst.bits(15, 8) * scale];
        let moved = u64::from(exec.count_ones()) * 2 * dwords as u64 * 4;
        if store {
            self.stats.lds.stores += 1;
            self.stats.lds.store_bytes += moved;
        } else {
            self.stats.lds.loads += 1;
            self.stats.lds.load_bytes += moved;
        }
        for lane in (0..LANES).filter(|l| exec >> l & 1 == 1) {
            let base = Self::lane32(w, VSrc::Vgpr(addr as usize), lane);
            for (e, off) in offsets.iter().enumerate() {
                let r = self.lds_range(base.wrapping_add(*off), 4 * dwords)?;
                for i in 0..dwords {
                    let at = r.start + 4 * i;
                    if store {
                        let src = [data0, data1][e] as usize + i;
                        let v = Self::lane32(w, VSrc::Vgpr(src), lane);
                        self.lds[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    } else {
                        let b = &self.lds[at..at + 4];
                        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        Self::set_v(w, vdst + (e * dwords + i) as u32, lane, v);
                    }
                }
            }
        }
        Ok(())
    }
}
