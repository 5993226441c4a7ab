//! Kernel `rms_norm_f32`: `y[i] = x[i] / sqrt(sum(x^2) / n + eps) * weight[i]`.
//!
//! Order: squares accumulate in 16 f32 lanes (lane `i % 16`, increasing `i`), reduced by the
//! same fixed tree as DMMV; `ms = sum / n` (f32 division), `r = sqrt(ms + eps)`, then
//! `y[i] = (x[i] / r) * weight[i]`. Bound against exact arithmetic: relative error of the sum
//! `<= (n / 16 + 5) * 2^-24`, plus a few roundings per element.

use super::KernelError;

fn need(
    buffer: &'static str,
    have: usize,
    n: usize,
    kernel: &'static str,
) -> Result<(), KernelError> {
    if have < n {
        return Err(KernelError::BufferTooShort {
            kernel,
            buffer,
            unit: "elements",
            need: n,
            have,
        });
    }
    Ok(())
}

/// Normalises `x[..n]` into `y[..n]`; `n == 0` writes nothing.
///
/// # Errors
/// [`KernelError::BufferTooShort`] naming `x`, `weight` or `y` when shorter than `n`.
pub fn rms_norm_f32(
    x: &[f32],
    weight: &[f32],
    y: &mut [f32],
    n: usize,
    eps: f32,
) -> Result<(), KernelError> {
    const KERNEL: &str = "rms_norm_f32";
    need("x", x.len(), n, KERNEL)?;
    need("weight", weight.len(), n, KERNEL)?;
    need("y", y.len(), n, KERNEL)?;
    if n == 0 {
        return Ok(());
    }
    let x = &x[..n];
    let mut acc = [0f32; 16];
    let full = n / 16 * 16;
    for c in x[..full].chunks_exact(16) {
        for l in 0..16 {
            acc[l] += c[l] * c[l];
        }
    }
    for (l, v) in x[full..].iter().enumerate() {
        acc[l] += v * v;
    }
    let s8: [f32; 8] = std::array::from_fn(|l| acc[l] + acc[l + 8]);
    let s4: [f32; 4] = std::array::from_fn(|l| s8[l] + s8[l + 4]);
    let s2: [f32; 2] = std::array::from_fn(|l| s4[l] + s4[l + 2]);
    let sum = s2[0] + s2[1];
    let r = (sum / n as f32 + eps).sqrt();
    for ((o, xv), wv) in y[..n].iter_mut().zip(x).zip(&weight[..n]) {
        *o = (xv / r) * wv;
    }
    Ok(())
}

/// Kernel `copy_u32`: `dst[i] = src[i]` for `i < n`.
///
/// # Errors
/// [`KernelError::BufferTooShort`] naming `src` or `dst` when shorter than `n`.
pub fn copy_u32(src: &[u32], dst: &mut [u32], n: usize) -> Result<(), KernelError> {
    const KERNEL: &str = "copy_u32";
    need("src", src.len(), n, KERNEL)?;
    need("dst", dst.len(), n, KERNEL)?;
    dst[..n].copy_from_slice(&src[..n]);
    Ok(())
}
