//! GLOBAL (gfx11 FLAT-global / gfx12 VGLOBAL): per-lane loads, stores and the 64-bit atomic max.

use super::atomic::Atomic32;
use super::{sign_extend, Result, Step, VSrc};
use crate::isa::wave::{Wave, LANES, NULL};
use crate::isa::Target;
use std::sync::Mutex;

/// Widest byte span a load's lanes may cover to be read with one borrow.
const LOAD_SPAN: u64 = 64 * 1024;

/// Serialises the global atomics of every wave on every thread.
static ATOMIC_RMW: Mutex<()> = Mutex::new(());

impl Step<'_> {
    /// A global address: the 64-bit VGPR pair `vaddr` when `saddr` is off (null), else the
    /// SGPR pair `saddr` plus the 32-bit VGPR `vaddr`; plus the signed immediate offset.
    fn flat_addr(&self, w: &Wave, saddr: u32, vaddr: u32, offset: i32, lane: usize) -> u64 {
        let base = if saddr == NULL {
            Self::lane64(w, VSrc::Vgpr(vaddr as usize), lane)
        } else {
            w.s64(saddr).wrapping_add(u64::from(Self::lane32(w, VSrc::Vgpr(vaddr as usize), lane)))
        };
        base.wrapping_add(offset as i64 as u64)
    }

    pub(super) fn global(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let target = self.program.target();
        let (saddr, vaddr, vdata, vdst, offset) = match target {
            Target::Gfx11 => (
                inst.bits(54, 48),
                inst.bits(39, 32),
                inst.bits(47, 40),
                inst.bits(63, 56),
                sign_extend(inst.bits(12, 0), 13),
            ),
            Target::Gfx12 => (
                inst.bits(6, 0),
                inst.bits(71, 64),
                inst.bits(62, 55),
                inst.bits(39, 32),
                sign_extend(inst.bits(95, 72), 24),
            ),
        };
        let name = inst.op.name;
        if matches!(name, "global_wb" | "global_inv" | "global_wbinv") {
            // Caches are coherent in the simulator: write-back / invalidate have no effect.
            return Ok(());
        }
        if name == "global_atomic_max_u64" {
            let exec = w.exec();
            self.stats.global.atomics += 1;
            // Workgroups run on several threads: each read-modify-write is one critical
            // section, as the GPU's atomic is one indivisible operation at the memory.
            let _atomic = ATOMIC_RMW.lock().unwrap_or_else(|e| e.into_inner());
            for lane in 0..LANES {
                if exec >> lane & 1 == 0 {
                    continue;
                }
                let addr = self.flat_addr(w, saddr, vaddr, offset, lane);
                let v = Self::lane64(w, VSrc::Vgpr(vdata as usize), lane);
                let old = self.mem.read_u64(addr)?;
                self.mem.write_u64(addr, old.max(v))?;
            }
            return Ok(());
        }
        if let Some(high) = match name {
            "global_load_d16_b16" => Some(false),
            "global_load_d16_hi_b16" => Some(true),
            _ => None,
        } {
            return self.load_d16(w, [saddr, vaddr, vdst], offset, high);
        }
        if let Some(op) = name.strip_prefix("global_atomic_").and_then(Atomic32::of) {
            let rtn = crate::isa::text::atomic_returns(target, inst);
            let exec = w.exec();
            self.stats.global.atomics += 1;
            let _atomic = ATOMIC_RMW.lock().unwrap_or_else(|e| e.into_inner());
            for lane in (0..LANES).filter(|l| exec >> l & 1 == 1) {
                let addr = self.flat_addr(w, saddr, vaddr, offset, lane);
                let v = Self::lane32(w, VSrc::Vgpr(vdata as usize), lane);
                let cmp = Self::lane32(w, VSrc::Vgpr(vdata as usize + 1), lane);
                let mut b = [0u8; 4];
                self.mem.read(addr, &mut b)?;
                let old = u32::from_le_bytes(b);
                self.mem.write(addr, &op.apply(old, v, cmp).to_le_bytes())?;
                if rtn {
                    Self::set_v(w, vdst, lane, old);
                }
            }
            return Ok(());
        }
        let (load, bytes) = match name {
            "global_load_b32" => (true, 4),
            "global_load_b64" => (true, 8),
            "global_load_b128" => (true, 16),
            "global_load_u16" => (true, 2),
            "global_store_b32" => (false, 4),
            "global_store_b64" => (false, 8),
            "global_store_b128" => (false, 16),
            _ => return Err(self.unimplemented()),
        };
        let exec = w.exec();
        let moved = u64::from(exec.count_ones()) * bytes as u64;
        if load {
            self.stats.global.loads += 1;
            self.stats.global.load_bytes += moved;
        } else {
            self.stats.global.stores += 1;
            self.stats.global.store_bytes += moved;
        }
        if load && self.load_in_one_range(w, [saddr, vaddr, vdst], offset, bytes)? {
            return Ok(());
        }
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let base = if saddr == NULL {
                Self::lane64(w, VSrc::Vgpr(vaddr as usize), lane)
            } else {
                w.s64(saddr).wrapping_add(u64::from(Self::lane32(
                    w,
                    VSrc::Vgpr(vaddr as usize),
                    lane,
                )))
            };
            let addr = base.wrapping_add(offset as i64 as u64);
            if load {
                let mut buf = [0u8; 16];
                self.mem.read(addr, &mut buf[..bytes])?;
                for i in 0..bytes.div_ceil(4) {
                    let v = u32::from_le_bytes([
                        buf[4 * i],
                        buf[4 * i + 1],
                        buf[4 * i + 2],
                        buf[4 * i + 3],
                    ]);
                    Self::set_v(w, vdst + i as u32, lane, v);
                }
            } else {
                let mut buf = [0u8; 16];
                for i in 0..bytes / 4 {
                    let v = Self::lane32(w, VSrc::Vgpr((vdata + i as u32) as usize), lane);
                    buf[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
                }
                self.mem.write(addr, &buf[..bytes])?;
            }
        }
        Ok(())
    }

    /// GLOBAL_LOAD_D16_B16 / GLOBAL_LOAD_D16_HI_B16: 16 bits from memory into the low
    /// (`high` false) or high half of each active lane's VDST, the other half kept (AMD
    /// RDNA3/RDNA4 ISA, FLAT/GLOBAL chapter; the "d16" loads write half a VGPR).
    fn load_d16(
        &mut self,
        w: &mut Wave,
        [saddr, vaddr, vdst]: [u32; 3],
        offset: i32,
        high: bool,
    ) -> Result<()> {
        let exec = w.exec();
        self.stats.global.loads += 1;
        self.stats.global.load_bytes += u64::from(exec.count_ones()) * 2;
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let addr = self.flat_addr(w, saddr, vaddr, offset, lane);
            let mut b = [0u8; 2];
            self.mem.read(addr, &mut b)?;
            let v = u32::from(u16::from_le_bytes(b));
            let old = Self::lane32(w, VSrc::Vgpr(vdst as usize), lane);
            let new = if high { (old & 0xffff) | v << 16 } else { (old & 0xffff_0000) | v };
            Self::set_v(w, vdst, lane, new);
        }
        Ok(())
    }

    /// A load whose active lanes' bytes all lie within [`LOAD_SPAN`] bytes of one mapping,
    /// done with one borrow of that span (the same values as lane by lane); `false` (nothing
    /// done) when the lanes are spread wider or the span is not mapped as a whole, for the
    /// lane-by-lane path, which also finds the exact faulting lane.
    fn load_in_one_range(
        &self,
        w: &mut Wave,
        [saddr, vaddr, vdst]: [u32; 3],
        offset: i32,
        bytes: usize,
    ) -> Result<bool> {
        let exec = w.exec();
        let mut addrs = [0u64; LANES];
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for (lane, a) in addrs.iter_mut().enumerate() {
            if exec >> lane & 1 == 1 {
                *a = self.flat_addr(w, saddr, vaddr, offset, lane);
                lo = lo.min(*a);
                hi = hi.max(a.saturating_add(bytes as u64));
            }
        }
        if lo >= hi || hi - lo > LOAD_SPAN {
            return Ok(false);
        }
        let mut values = [[0u32; 4]; LANES];
        let loaded = self.mem.with_slice(lo, (hi - lo) as usize, |span| {
            for (lane, a) in addrs.iter().enumerate() {
                if exec >> lane & 1 == 1 {
                    let at = (a - lo) as usize;
                    let mut buf = [0u8; 16];
                    buf[..bytes].copy_from_slice(&span[at..at + bytes]);
                    for (i, v) in values[lane].iter_mut().enumerate() {
                        *v = u32::from_le_bytes([
                            buf[4 * i],
                            buf[4 * i + 1],
                            buf[4 * i + 2],
                            buf[4 * i + 3],
                        ]);
                    }
                }
            }
        });
        if loaded.is_err() {
            return Ok(false);
        }
        for i in 0..bytes.div_ceil(4) {
            if let Some(reg) = w.vgpr.get_mut((vdst + i as u32) as usize) {
                for (lane, v) in values.iter().enumerate() {
                    if exec >> lane & 1 == 1 {
                        reg[lane] = v[i];
                    }
                }
            }
        }
        Ok(true)
    }
}
