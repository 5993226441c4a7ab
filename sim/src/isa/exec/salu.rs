//! SOP1/SOP2/SOPC/SOPK: the scalar ALU (integer, 64-bit pairs, f32, EXEC masking, SCC).

use super::vopc::compare;
use super::{f, Result, Step};
use crate::isa::decode::Family;
use crate::isa::wave::Wave;

impl Step<'_> {
    pub(super) fn salu(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let fam = inst.family;
        let (wa, wb, wd) = (self.width('a'), self.width('b'), self.width('d'));
        let a = match fam {
            Family::Sopk => u64::from(inst.bits(15, 0)),
            _ => self.scalar_src(w, inst.bits(7, 0), wa)?,
        };
        let b = match fam {
            Family::Sop2 | Family::Sopc => self.scalar_src(w, inst.bits(15, 8), wb)?,
            _ => 0,
        };
        let d = inst.bits(22, 16);
        let (a32, b32) = (a as u32, b as u32);
        let name = inst.op.name;
        // (result, new SCC or None to keep it)
        let (r, scc): (u64, Option<bool>) = match name {
            "s_mov_b32" | "s_mov_b64" | "s_movk_i32" => (a, None),
            // gfx12 s_barrier_signal -1: the barrier is taken at s_barrier_wait.
            "s_barrier_signal" => return Ok(()),
            // gfx11 SOPK waits: every access completes at once.
            "s_waitcnt_vscnt" | "s_waitcnt_vmcnt" | "s_waitcnt_expcnt" | "s_waitcnt_lgkmcnt" => {
                return Ok(())
            }
            "s_not_b32" => (u64::from(!a32), Some(!a32 != 0)),
            "s_and_b32" => (u64::from(a32 & b32), Some(a32 & b32 != 0)),
            "s_or_b32" => (u64::from(a32 | b32), Some(a32 | b32 != 0)),
            "s_xor_b32" => (u64::from(a32 ^ b32), Some(a32 ^ b32 != 0)),
            "s_and_not1_b32" => (u64::from(a32 & !b32), Some(a32 & !b32 != 0)),
            "s_lshl_b32" => {
                let r = a32 << (b32 & 31);
                (u64::from(r), Some(r != 0))
            }
            "s_lshr_b32" => {
                let r = a32 >> (b32 & 31);
                (u64::from(r), Some(r != 0))
            }
            "s_lshl_b64" => {
                let r = a << (b32 & 63);
                (r, Some(r != 0))
            }
            "s_add_u32" | "s_add_co_u32" => {
                let (r, c) = a32.overflowing_add(b32);
                (u64::from(r), Some(c))
            }
            "s_addc_u32" | "s_add_co_ci_u32" => {
                let s = u64::from(a32) + u64::from(b32) + u64::from(w.scc);
                (s & 0xffff_ffff, Some(s >> 32 != 0))
            }
            "s_add_i32" | "s_add_co_i32" => {
                let (r, o) = (a32 as i32).overflowing_add(b32 as i32);
                (u64::from(r as u32), Some(o))
            }
            "s_sub_u32" | "s_sub_co_u32" => {
                let (r, c) = a32.overflowing_sub(b32);
                (u64::from(r), Some(c))
            }
            "s_sub_i32" | "s_sub_co_i32" => {
                let (r, o) = (a32 as i32).overflowing_sub(b32 as i32);
                (u64::from(r as u32), Some(o))
            }
            "s_min_u32" => (u64::from(a32.min(b32)), Some(a32 < b32)),
            "s_max_u32" => (u64::from(a32.max(b32)), Some(a32 > b32)),
            "s_min_i32" => {
                (u64::from((a32 as i32).min(b32 as i32) as u32), Some((a32 as i32) < (b32 as i32)))
            }
            "s_max_i32" => {
                (u64::from((a32 as i32).max(b32 as i32) as u32), Some((a32 as i32) > (b32 as i32)))
            }
            "s_bcnt1_i32_b32" => (u64::from(a32.count_ones()), Some(a32 != 0)),
            "s_ctz_i32_b32" => {
                (u64::from(if a32 == 0 { u32::MAX } else { a32.trailing_zeros() }), None)
            }
            "s_cvt_u32_f32" => (u64::from(f32::from_bits(a32) as u32), None),
            "s_cvt_i32_f32" => (u64::from(f32::from_bits(a32) as i32 as u32), None),
            "s_mul_i32" => (u64::from(a32.wrapping_mul(b32)), None),
            // S_MULK_I32: D = D * sign_extend(SIMM16), SCC unchanged.
            "s_mulk_i32" => {
                let k = i32::from(a as u16 as i16);
                (u64::from((w.s(d) as i32).wrapping_mul(k) as u32), None)
            }
            "s_add_f32" => (u64::from(f(a32, b32, |p, q| p + q)), None),
            "s_mul_f32" => (u64::from(f(a32, b32, |p, q| p * q)), None),
            "s_fmac_f32" => {
                let acc = f32::from_bits(w.s(d));
                (u64::from(f32::from_bits(a32).mul_add(f32::from_bits(b32), acc).to_bits()), None)
            }
            "s_cvt_f32_u32" => (u64::from((a32 as f32).to_bits()), None),
            "s_mul_hi_u32" => ((u64::from(a32) * u64::from(b32)) >> 32, None),
            "s_mul_u64" => (a.wrapping_mul(b), None),
            "s_add_nc_u64" => (a.wrapping_add(b), None),
            "s_cselect_b32" | "s_cselect_b64" => (if w.scc { a } else { b }, None),
            "s_and_saveexec_b32" => {
                let old = w.exec();
                let e = a32 & old;
                w.set_exec(e);
                (u64::from(old), Some(e != 0))
            }
            // S_AND_NOT1_SAVEEXEC_B32: D = EXEC; EXEC = S0 & ~EXEC; SCC = EXEC != 0.
            "s_and_not1_saveexec_b32" => {
                let old = w.exec();
                let e = a32 & !old;
                w.set_exec(e);
                (u64::from(old), Some(e != 0))
            }
            n if n.starts_with("s_cmp_") => {
                let c = compare(&n[6..], a, b).ok_or_else(|| self.unimplemented())?;
                w.scc = c;
                return Ok(());
            }
            _ => return Err(self.unimplemented()),
        };
        if wd == 2 {
            w.set_s64(d, r);
        } else {
            w.set_s(d, r as u32);
        }
        if let Some(s) = scc {
            w.scc = s;
        }
        Ok(())
    }
}
