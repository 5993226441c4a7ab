//! Compares: `v_cmp_*` / `v_cmpx_*` (VOPC and their VOP3 forms) and the condition table they
//! share with `s_cmp_*`.

use super::half::f16_to_f64;
use super::{Result, Step, VSrc};
use crate::isa::wave::{Wave, LANES};

/// Where a vector compare writes its lane mask.
#[derive(Clone, Copy)]
pub(super) enum CompareDst {
    /// `v_cmpx_*`: EXEC.
    Exec,
    /// `v_cmp_*`: VCC (VOPC) or the VOP3 SGPR destination.
    Sgpr(u32),
}

impl Step<'_> {
    /// `v_cmp[x]_<cond_ty>` over the active lanes: `srcs` are 64-bit when `wide`, else 32-bit
    /// with the VOP3 input modifiers `modify(operand index, bits)` applied. Disabled lanes
    /// get 0 in the mask.
    pub(super) fn vcmp(
        &self,
        w: &mut Wave,
        cond_ty: &str,
        [a, b]: [VSrc; 2],
        wide: bool,
        modify: impl Fn(u32, u32) -> u32,
        to: CompareDst,
    ) -> Result<()> {
        let exec = w.exec();
        let mut mask = 0u32;
        for lane in 0..LANES {
            if exec >> lane & 1 == 1 {
                let (x, y) = if wide {
                    (Self::lane64(w, a, lane), Self::lane64(w, b, lane))
                } else {
                    let x = modify(0, Self::lane32(w, a, lane));
                    (u64::from(x), u64::from(modify(1, Self::lane32(w, b, lane))))
                };
                let c = compare(cond_ty, x, y).ok_or_else(|| self.unimplemented())?;
                mask |= u32::from(c) << lane;
            }
        }
        match to {
            CompareDst::Exec => w.set_exec(mask),
            CompareDst::Sgpr(d) => w.set_s(d, mask),
        }
        Ok(())
    }
}

/// `cond_type` (e.g. `gt_u64`, `lg_u32`, `ge_i32`) applied to `a`, `b`; None if unknown.
pub(super) fn compare(cond_ty: &str, a: u64, b: u64) -> Option<bool> {
    let (cond, ty) = cond_ty.split_once('_')?;
    if ty == "f16" && cond != "class" {
        let h = |x: u64| f16_to_f64(x as u16) as f32;
        return fcompare(cond, h(a), h(b));
    }
    if ty == "f32" {
        return fcompare(cond, f32::from_bits(a as u32), f32::from_bits(b as u32));
    }
    let ord = match ty {
        "u32" | "u64" | "b32" | "b64" => a.cmp(&b),
        "i32" => (a as u32 as i32).cmp(&(b as u32 as i32)),
        "i64" => (a as i64).cmp(&(b as i64)),
        _ => return None,
    };
    use std::cmp::Ordering::*;
    Some(match cond {
        "eq" => ord == Equal,
        "lg" | "ne" => ord != Equal,
        "lt" => ord == Less,
        "le" => ord != Greater,
        "gt" => ord == Greater,
        "ge" => ord != Less,
        _ => return None,
    })
}

/// Float compares: the ordered conditions are false when either operand is NaN; the `n*`
/// forms are their negations (true on NaN); `o` / `u`: ordered / unordered; `class`: S1 is a
/// mask of the IEEE classes of S0 (llvm/lib/Target/AMDGPU/SIDefines.h
/// `SIInstrFlags::ClassFlags`: signaling NaN 1, quiet NaN 2, -inf 4, -normal 8, -denormal 16,
/// -0 32, +0 64, +denormal 128, +normal 256, +inf 512).
fn fcompare(cond: &str, a: f32, b: f32) -> Option<bool> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let ord = a.partial_cmp(&b);
    Some(match cond {
        "lt" => ord == Some(Less),
        "le" => matches!(ord, Some(Less | Equal)),
        "gt" => ord == Some(Greater),
        "ge" => matches!(ord, Some(Greater | Equal)),
        "eq" => ord == Some(Equal),
        "lg" => matches!(ord, Some(Less | Greater)),
        "o" => ord.is_some(),
        "u" => ord.is_none(),
        "nlt" => ord != Some(Less),
        "nle" => !matches!(ord, Some(Less | Equal)),
        "ngt" => ord != Some(Greater),
        "nge" => !matches!(ord, Some(Greater | Equal)),
        "neq" => ord != Some(Equal),
        "nlg" => !matches!(ord, Some(Less | Greater)),
        "class" => {
            let bits = a.to_bits();
            let neg = bits >> 31 == 1;
            let class = if a.is_nan() {
                // Quiet NaNs have the top mantissa bit set.
                if bits & 0x0040_0000 != 0 {
                    1
                } else {
                    0
                }
            } else if a.is_infinite() {
                if neg {
                    2
                } else {
                    9
                }
            } else if a == 0.0 {
                if neg {
                    5
                } else {
                    6
                }
            } else if a.is_subnormal() {
                if neg {
                    4
                } else {
                    7
                }
            } else if neg {
                3
            } else {
                8
            };
            (b.to_bits() >> class) & 1 == 1
        }
        _ => return None,
    })
}
