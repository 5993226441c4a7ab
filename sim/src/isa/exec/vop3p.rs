//! VOP3P: packed and mixed-precision math.

use super::half::{f16_from_f64, f16_to_f64};
use super::{Result, Step};
use crate::isa::wave::{Wave, LANES};

impl Step<'_> {
    /// VOP3P: `v_fma_mix_f32` only. Source `i` is an f16 (low half, or high half when
    /// op_sel[i]) converted exactly to f32 when op_sel_hi[i], else an f32; neg_lo negates and
    /// neg_hi takes the absolute value (AMD RDNA3/RDNA4 ISA, V_FMA_MIX_F32).
    pub(super) fn vop3p(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        if inst.op.name == "v_pk_lshrrev_b16" {
            return self.pk_lshrrev_b16(w);
        }
        if inst.bits(15, 15) != 0 {
            return Err(self.unimplemented());
        }
        if let Some(op) = Packed::of(inst.op.name) {
            return self.packed(w, op);
        }
        if inst.op.name != "v_fma_mix_f32" {
            return Err(self.unimplemented());
        }
        let op_sel = inst.bits(13, 11);
        let op_sel_hi = inst.bits(60, 59) | inst.bits(14, 14) << 2;
        let (neg, abs) = (inst.bits(63, 61), inst.bits(10, 8));
        let dst = inst.bits(7, 0);
        let srcs = [
            self.vsrc(w, inst.bits(40, 32), 1)?,
            self.vsrc(w, inst.bits(49, 41), 1)?,
            self.vsrc(w, inst.bits(58, 50), 1)?,
        ];
        let exec = w.exec();
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let mut v = [0f32; 3];
            for (i, src) in srcs.iter().enumerate() {
                let raw = Self::lane32(w, *src, lane);
                let mut x = if op_sel_hi >> i & 1 == 1 {
                    let half = if op_sel >> i & 1 == 1 { raw >> 16 } else { raw & 0xffff };
                    crate::kernels::f16::f16_to_f32(half as u16)
                } else {
                    f32::from_bits(raw)
                };
                if abs >> i & 1 == 1 {
                    x = x.abs();
                }
                if neg >> i & 1 == 1 {
                    x = -x;
                }
                v[i] = x;
            }
            Self::set_v(w, dst, lane, v[0].mul_add(v[1], v[2]).to_bits());
        }
        Ok(())
    }

    /// V_PK_LSHRREV_B16: each 16-bit half of the result is the matching half of S1 shifted
    /// right (logical) by bits [3:0] of the matching half of S0; op_sel[i] picks the source
    /// half for the low result half, op_sel_hi[i] for the high one. Clamp and neg (not
    /// meaningful for this integer op) are refused.
    fn pk_lshrrev_b16(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        if inst.bits(15, 15) != 0 || inst.bits(63, 61) != 0 || inst.bits(10, 8) != 0 {
            return Err(self.unimplemented());
        }
        let op_sel = inst.bits(12, 11);
        let op_sel_hi = inst.bits(60, 59);
        let dst = inst.bits(7, 0);
        let srcs = [self.vsrc(w, inst.bits(40, 32), 1)?, self.vsrc(w, inst.bits(49, 41), 1)?];
        let half = |x: u32, hi: bool| if hi { x >> 16 } else { x & 0xffff };
        let exec = w.exec();
        for lane in 0..LANES {
            if exec >> lane & 1 == 0 {
                continue;
            }
            let (s0, s1) = (Self::lane32(w, srcs[0], lane), Self::lane32(w, srcs[1], lane));
            let lo = half(s1, op_sel >> 1 & 1 == 1) >> (half(s0, op_sel & 1 == 1) & 15);
            let hi = half(s1, op_sel_hi >> 1 & 1 == 1) >> (half(s0, op_sel_hi & 1 == 1) & 15);
            Self::set_v(w, dst, lane, lo | hi << 16);
        }
        Ok(())
    }
}

/// Two-operand packed 16-bit operations.
#[derive(Clone, Copy)]
enum Packed {
    AddF16,
    MulF16,
    AddU16,
    SubU16,
    MulLoU16,
}

impl Packed {
    fn of(name: &str) -> Option<Packed> {
        Some(match name {
            "v_pk_add_f16" => Packed::AddF16,
            "v_pk_mul_f16" => Packed::MulF16,
            "v_pk_add_u16" => Packed::AddU16,
            "v_pk_sub_u16" => Packed::SubU16,
            "v_pk_mul_lo_u16" => Packed::MulLoU16,
            _ => return None,
        })
    }

    fn is_float(self) -> bool {
        matches!(self, Packed::AddF16 | Packed::MulF16)
    }

    /// One 16-bit result; f16 results are computed exactly in f64 and rounded once.
    fn apply(self, x: u16, y: u16) -> u16 {
        let f = |op: fn(f64, f64) -> f64| f16_from_f64(op(f16_to_f64(x), f16_to_f64(y)));
        match self {
            Packed::AddF16 => f(|p, q| p + q),
            Packed::MulF16 => f(|p, q| p * q),
            Packed::AddU16 => x.wrapping_add(y),
            Packed::SubU16 => x.wrapping_sub(y),
            Packed::MulLoU16 => x.wrapping_mul(y),
        }
    }
}

impl Step<'_> {
    /// A two-operand VOP3P operation: the low result takes source i's high half when
    /// op_sel[i] (else its low half), negated by neg_lo[i]; the high result likewise with
    /// op_sel_hi and neg_hi (AMD RDNA3/RDNA4 ISA, VOP3P). Negation applies to f16 only.
    fn packed(&mut self, w: &mut Wave, op: Packed) -> Result<()> {
        let inst = self.inst;
        let op_sel = inst.bits(12, 11);
        let op_sel_hi = inst.bits(60, 59);
        let (neg_lo, neg_hi) = (inst.bits(62, 61), inst.bits(9, 8));
        if !op.is_float() && (neg_lo | neg_hi) != 0 {
            return Err(self.unimplemented());
        }
        let dst = inst.bits(7, 0);
        let srcs = [self.vsrc(w, inst.bits(40, 32), 1)?, self.vsrc(w, inst.bits(49, 41), 1)?];
        let exec = w.exec();
        for lane in (0..LANES).filter(|l| exec >> l & 1 == 1) {
            let raw = srcs.map(|s| Self::lane32(w, s, lane));
            let pick = |i: usize, sel: u32, neg: u32| {
                let h = if sel >> i & 1 == 1 { raw[i] >> 16 } else { raw[i] } as u16;
                if neg >> i & 1 == 1 {
                    h ^ 0x8000
                } else {
                    h
                }
            };
            let lo = op.apply(pick(0, op_sel, neg_lo), pick(1, op_sel, neg_lo));
            let hi = op.apply(pick(0, op_sel_hi, neg_hi), pick(1, op_sel_hi, neg_hi));
            Self::set_v(w, dst, lane, u32::from(lo) | u32::from(hi) << 16);
        }
        Ok(())
    }
}
