//! [`ExecMode::Both`](crate::isa::ExecMode::Both): saving and restoring a dispatch's output
//! bytes, and holding the native and ISA outputs of pm4rt's kernels to each kernel's bound.
//!
//! Bounds (two correct implementations of the same kernel on the same inputs):
//! - DMMV row `i`: `crate::kernels::dmmv` documents that any summation order of the `cols`
//!   products is within `(cols + 1) 2^-24 S_i` of the exact value, `S_i = sum_k |w_ik x_k|`,
//!   so two implementations are within twice that. F32, F16, BF16, Q4_0, Q5_0, Q8_0 and Q6_K
//!   weights dequantize exactly; Q4_1, Q5_1, Q4_K and Q5_K round once (the min/offset step,
//!   `crate::kernels::dmmv_blocks`), and a compiler may fuse that step into an FMA, so the
//!   two executors' weights may differ by one rounding, `2^-24 |w|`: one more `2^-24 S_i`.
//! - fused DMMV + argmax: the interpreter's row `j` agrees with the native row `i` when the
//!   native values of the two rows are within the sum of their DMMV bounds (a tie within the
//!   bounds) and the value each executor packed is within its row's bound of that row's
//!   native value.
//! - `rms_norm_f32`: the sum of squares errs by at most `(n + 1) 2^-24` relative in any order,
//!   halved by the square root, plus 6 roundings (`crate::kernels::norm`), so one
//!   implementation is within `rel = ((n + 1) / 2 + 6) 2^-24` relative of the exact value and
//!   two within `2 rel` of the larger magnitude.
//! - `argmax_f32` and `copy_u32`: exact (the maximum with the packing's NaN rule does not
//!   depend on the order).
//!
//! Each tolerance is widened by 2^-10 of itself (the f64 evaluation) and never below the
//! smallest normal f32. Two NaNs agree whatever their payloads.

use std::ops::Range;

use pm4rt_core::Result;
use pm4rt_kernels::KernelKind;

use super::{Args, Run};
use crate::kernels::{self, argmax};
use crate::memory::GpuMemory;

/// 2^-24, the unit roundoff of f32.
const ULP: f64 = 1.0 / (1u64 << 24) as f64;

/// The bytes of each range.
///
/// Errors: [`pm4rt_core::Error::Fault`] when a range is not mapped.
pub(super) fn save(mem: &GpuMemory, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
    ranges
        .iter()
        .map(|r| {
            let mut b = vec![0u8; (r.end - r.start) as usize];
            mem.read(r.start, &mut b)?;
            Ok(b)
        })
        .collect()
}

/// Write `saved[i]` back to `ranges[i]`.
///
/// Errors: as [`GpuMemory::write`].
pub(super) fn restore(mem: &GpuMemory, ranges: &[Range<u64>], saved: &[Vec<u8>]) -> Result<()> {
    for (r, b) in ranges.iter().zip(saved) {
        mem.write(r.start, b)?;
    }
    Ok(())
}

fn widen(t: f64) -> f64 {
    (t * (1.0 + 1.0 / 1024.0)).max(f64::from(f32::MIN_POSITIVE))
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn u64_of(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Whether `a` and `b` agree within `tol` (NaN only with NaN).
fn close(a: f32, b: f32, tol: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (f64::from(a) - f64::from(b)).abs() <= tol
}

/// The outputs of one dispatch, checked against each other.
pub(super) struct Check<'a, 'b> {
    /// The dispatch (memory, kernel, grid).
    pub run: &'a Run<'b>,
    /// Its arguments.
    pub args: &'a Args<'a>,
}

impl Check<'_, '_> {
    /// Compare the native and ISA bytes of each output range (in [`Run::footprint`] order);
    /// the first disagreement, naming the output and element, as the error.
    pub fn outputs(&self, native: &[Vec<u8>], isa: &[Vec<u8>]) -> std::result::Result<(), String> {
        let (Some(n), Some(i)) = (native.first(), isa.first()) else { return Ok(()) };
        let a = self.args;
        match self.run.id.kind() {
            KernelKind::Dmmv { .. } => {
                let (yn, yi) = (f32s(n), f32s(i));
                for (row, (&p, &q)) in yn.iter().zip(&yi).enumerate() {
                    if p.to_bits() == q.to_bits() {
                        continue;
                    }
                    let tol = self.dmmv_tolerance(row).map_err(|e| e.to_string())?;
                    if !close(p, q, tol) {
                        return Err(disagree(&format!("y[{row}]"), p, q, tol));
                    }
                }
                Ok(())
            }
            KernelKind::DmmvArgmax { .. } => {
                self.fused_argmax(u64_of(n), u64_of(i)).map_err(|e| e.to_string())?
            }
            KernelKind::RmsNormF32 => {
                let count = a.u32("n") as f64;
                let rel = 2.0 * ((count + 1.0) / 2.0 + 6.0) * ULP;
                for (k, (&p, &q)) in f32s(n).iter().zip(&f32s(i)).enumerate() {
                    let tol = widen(rel * f64::from(p.abs().max(q.abs())));
                    if !close(p, q, tol) {
                        return Err(disagree(&format!("y[{k}]"), p, q, tol));
                    }
                }
                Ok(())
            }
            KernelKind::ArgmaxF32 => {
                let (p, q) = (u64_of(n), u64_of(i));
                if p == q {
                    return Ok(());
                }
                let ((ri, vi), (rj, vj)) = (argmax::unpack(p), argmax::unpack(q));
                Err(format!(
                    "native and ISA executors disagree at out: native picks element {ri} \
                     ({vi:e}), ISA element {rj} ({vj:e}); argmax_f32 must agree exactly"
                ))
            }
            KernelKind::CopyU32 => match n.iter().zip(i).position(|(p, q)| p != q) {
                None => Ok(()),
                Some(b) => Err(format!(
                    "native and ISA executors disagree at dst[{}]: copy_u32 must agree exactly",
                    b / 4
                )),
            },
        }
    }

    /// Native value of DMMV row `row` and its tolerance between two implementations.
    fn dmmv_row(&self, row: usize) -> Result<(f32, f64)> {
        let s = self.run.dmmv_shape(self.args);
        let rb = s.ty.row_bytes(s.cols).map_err(|e| self.run.fail(e))?;
        let x = self.run.read_f32s(self.args.ptr("x"), s.cols)?;
        let w = self.args.ptr("w").wrapping_add((row * rb) as u64);
        let mut deq = vec![0f32; s.cols];
        let mut y = [0f32; 1];
        self.run
            .borrow(w, rb, |b| -> std::result::Result<(), kernels::KernelError> {
                kernels::dequantize_row(s.ty, b, s.cols, &mut deq)?;
                kernels::dmmv(s.ty, b, &x, &mut y, 1, s.cols)
            })?
            .map_err(|e| self.run.fail(e))?;
        let sum: f64 = deq.iter().zip(&x).map(|(&p, &q)| (f64::from(p) * f64::from(q)).abs()).sum();
        Ok((y[0], widen((2.0 * (s.cols as f64 + 1.0) + 1.0) * ULP * sum)))
    }

    fn dmmv_tolerance(&self, row: usize) -> Result<f64> {
        Ok(self.dmmv_row(row)?.1)
    }

    /// The fused kernels' packed outputs: the same, or a tie within the bounds.
    fn fused_argmax(&self, native: u64, isa: u64) -> Result<std::result::Result<(), String>> {
        if native == isa {
            return Ok(Ok(()));
        }
        let rows = self.run.dmmv_shape(self.args).rows;
        let (ri, vi) = argmax::unpack(native);
        let (rj, vj) = argmax::unpack(isa);
        let differ = |why: String| {
            Ok(Err(format!(
                "native and ISA executors disagree at out: native picks row {ri} ({vi:e}), ISA \
                 row {rj} ({vj:e}): {why}"
            )))
        };
        if ri as usize >= rows || rj as usize >= rows {
            return differ(format!("a row outside the {rows} rows computed"));
        }
        let (yi, ti) = self.dmmv_row(ri as usize)?;
        let (yj, tj) = self.dmmv_row(rj as usize)?;
        for (row, v, y, t) in [(ri, vi, yi, ti), (rj, vj, yj, tj)] {
            if !close(v, y, t) {
                return differ(format!("row {row}'s value is {y:e}, bound {t:e}"));
            }
        }
        if (f64::from(yi) - f64::from(yj)).abs() > ti + tj {
            return differ(format!("not a tie within the bounds ({:e})", ti + tj));
        }
        Ok(Ok(()))
    }
}

fn disagree(at: &str, native: f32, isa: f32, tol: f64) -> String {
    format!(
        "native and ISA executors disagree at {at}: native {native:e}, ISA {isa:e}, bound {tol:e}"
    )
}
