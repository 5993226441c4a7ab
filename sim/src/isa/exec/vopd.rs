//! VOPD: dual-issue pairs of simple f32/integer operations.

use super::{f, ExecError, Result, Step};
use crate::isa::wave::{Wave, LANES};

impl Step<'_> {
    /// VOPD: both halves read their sources before either writes.
    pub(super) fn vopd(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        let Some(op_y) = inst.op_y else { return Err(self.unimplemented()) };
        let vdst_x = inst.bits(63, 56);
        let vdst_y = inst.bits(55, 49) << 1 | (!vdst_x & 1);
        let halves = [
            (inst.op.name, vdst_x, inst.bits(8, 0), inst.bits(16, 9) + 256),
            (op_y.name, vdst_y, inst.bits(40, 32), inst.bits(48, 41) + 256),
        ];
        let exec = w.exec();
        let vcc = w.vcc();
        let mut out = [[0u32; LANES]; 2];
        for (h, &(name, dst, s0, s1)) in halves.iter().enumerate() {
            let a = self.vsrc(w, s0, 1)?;
            let b = self.vsrc(w, s1, 1)?;
            let k = inst.literal.unwrap_or(0);
            let op =
                Dual::of(name).ok_or(ExecError::Unimplemented { mnemonic: name, va: self.va })?;
            for lane in 0..LANES {
                if exec >> lane & 1 == 0 {
                    continue;
                }
                let x = Self::lane32(w, a, lane);
                let y = Self::lane32(w, b, lane);
                let d = w.vgpr.get(dst as usize).map_or(0, |r| r[lane]);
                let (fx, fy) = (f32::from_bits(x), f32::from_bits(y));
                out[h][lane] = match op {
                    Dual::MovB32 => x,
                    Dual::CndmaskB32 => {
                        if vcc >> lane & 1 == 1 {
                            y
                        } else {
                            x
                        }
                    }
                    Dual::AndB32 => x & y,
                    Dual::AddNcU32 => x.wrapping_add(y),
                    Dual::LshlrevB32 => y << (x & 31),
                    Dual::AddF32 => f(x, y, |p, q| p + q),
                    Dual::MulF32 => f(x, y, |p, q| p * q),
                    Dual::SubF32 => f(x, y, |p, q| p - q),
                    Dual::FmacF32 => fx.mul_add(fy, f32::from_bits(d)).to_bits(),
                    Dual::FmaakF32 => fx.mul_add(fy, f32::from_bits(k)).to_bits(),
                    Dual::FmamkF32 => fx.mul_add(f32::from_bits(k), fy).to_bits(),
                };
            }
        }
        for (values, &(_, dst, _, _)) in out.iter().zip(&halves) {
            for (lane, &v) in values.iter().enumerate() {
                if exec >> lane & 1 == 1 {
                    Self::set_v(w, dst, lane, v);
                }
            }
        }
        Ok(())
    }
}

/// The VOPD operations, resolved from the mnemonic once per half.
#[derive(Clone, Copy)]
enum Dual {
    MovB32,
    CndmaskB32,
    AndB32,
    AddNcU32,
    LshlrevB32,
    AddF32,
    MulF32,
    SubF32,
    FmacF32,
    FmaakF32,
    FmamkF32,
}

impl Dual {
    fn of(name: &str) -> Option<Dual> {
        Some(match name {
            "v_dual_mov_b32" => Dual::MovB32,
            "v_dual_cndmask_b32" => Dual::CndmaskB32,
            "v_dual_and_b32" => Dual::AndB32,
            "v_dual_add_nc_u32" => Dual::AddNcU32,
            "v_dual_lshlrev_b32" => Dual::LshlrevB32,
            "v_dual_add_f32" => Dual::AddF32,
            "v_dual_mul_f32" => Dual::MulF32,
            "v_dual_sub_f32" => Dual::SubF32,
            "v_dual_fmac_f32" => Dual::FmacF32,
            "v_dual_fmaak_f32" => Dual::FmaakF32,
            "v_dual_fmamk_f32" => Dual::FmamkF32,
            _ => return None,
        })
    }
}
