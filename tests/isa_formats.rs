//! Every weight format's DMMV and fused DMMV + argmax on the simulator's ISA interpreter, on
//! gfx1201 and gfx1100: in `both` mode (the dispatch fails when the native and ISA outputs
//! disagree beyond the kernel's bound) on random shapes and inputs, and the gguf/numpy fixtures
//! of tests/fixtures/ in `isa` mode against the reference values numpy computed (not the
//! simulator). Block layouts (where the f16 scales sit) from ggml's `ggml-common.h`
//! (`block_q4_0` ... `block_q6_K`).

mod common;
use common::{f32s, fixture, manifest};
use pm4rt::gguf::Gguf;
use pm4rt::session::{Session, WeightFormat};
use pm4rt_core::GfxTarget;
use pm4rt_sim::engine::EngineConfig;
use pm4rt_sim::isa::ExecMode;
use pm4rt_sim::{SimConfig, SimSubmitter};

const TARGETS: [GfxTarget; 2] = [GfxTarget::Gfx1201, GfxTarget::Gfx1100];

fn session(gfx: GfxTarget, exec: ExecMode) -> Session {
    let cfg =
        SimConfig { engine: EngineConfig { gfx, ..EngineConfig::default() }, exec: Some(exec) };
    Session::new(Box::new(SimSubmitter::with_config(cfg).unwrap())).unwrap()
}

/// A deterministic pseudo-random sequence (64-bit LCG, Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next() >> 8) as f32 / 8_388_608.0 - 1.0
    }

    /// A finite f16 with exponent field 1..=20 (magnitudes 2^-14 .. 2^5) and random sign and
    /// mantissa (IEEE binary16: 1 sign, 5 exponent bits biased by 15, 10 mantissa bits).
    fn f16(&mut self) -> [u8; 2] {
        let r = self.next();
        let bits = ((r & 1) << 15) | ((1 + (r >> 1) % 20) << 10) | ((r >> 8) & 0x3ff);
        (bits as u16).to_le_bytes()
    }

    /// A positive finite f16 scale in [2^-10, 2^-9) (exponent field 5).
    fn scale(&mut self) -> [u8; 2] {
        ((5u16 << 10) | (self.next() & 0x3ff) as u16).to_le_bytes()
    }
}

/// Block bytes and the byte offsets of its f16 scales (ggml-common.h), or `None` for the
/// element formats.
fn layout(f: WeightFormat) -> Option<(usize, &'static [usize])> {
    Some(match f {
        WeightFormat::Q4_0 => (18, &[0]),
        WeightFormat::Q8_0 => (34, &[0]),
        WeightFormat::Q4_1 => (20, &[0, 2]),
        WeightFormat::Q5_0 => (22, &[0]),
        WeightFormat::Q5_1 => (24, &[0, 2]),
        WeightFormat::Q4K => (144, &[0, 2]),
        WeightFormat::Q5K => (176, &[0, 2]),
        WeightFormat::Q6K => (210, &[208]),
        _ => return None,
    })
}

/// Random weights of `rows x cols` in format `f`, every value finite.
fn weights(f: WeightFormat, rows: usize, cols: usize, r: &mut Lcg) -> Vec<u8> {
    let n = rows * cols;
    match f {
        WeightFormat::F32 => (0..n).flat_map(|_| r.f32().to_le_bytes()).collect(),
        WeightFormat::F16 => (0..n).flat_map(|_| r.f16()).collect(),
        // bf16: the upper half of a finite f32.
        WeightFormat::Bf16 => {
            (0..n).flat_map(|_| ((r.f32().to_bits() >> 16) as u16).to_le_bytes()).collect()
        }
        _ => {
            let (bytes, scales) = layout(f).unwrap();
            let blocks = n / f.block_values();
            let mut w = Vec::with_capacity(blocks * bytes);
            for _ in 0..blocks {
                let mut b: Vec<u8> = (0..bytes).map(|_| r.next() as u8).collect();
                for &o in scales {
                    b[o..o + 2].copy_from_slice(&r.scale());
                }
                w.extend(b);
            }
            w
        }
    }
}

#[test]
fn both_mode_agrees_for_every_format_on_random_shapes_and_inputs() {
    for gfx in TARGETS {
        let mut s = session(gfx, ExecMode::Both);
        let mut r = Lcg(0x5eed_0015 ^ gfx as u64);
        for f in WeightFormat::ALL {
            for _ in 0..2 {
                let block = f.block_values().max(32);
                let rows = 1 + r.next() as usize % 37;
                let cols = block * (1 + r.next() as usize % 3);
                let case = format!("{gfx} {} {rows}x{cols}", f.name());
                let w = weights(f, rows, cols, &mut r);
                let x: Vec<f32> = (0..cols).map(|_| r.f32()).collect();
                let wh = s.upload_weights(f, rows, cols, &w).unwrap();
                let xh = s.alloc_vec(cols).unwrap();
                s.write_vec(xh, &x).unwrap();
                let yh = s.alloc_vec(rows).unwrap();
                s.dmmv(wh, xh, yh).unwrap_or_else(|e| panic!("{case} dmmv: {e}"));
                s.dmmv_argmax(wh, xh).unwrap_or_else(|e| panic!("{case} dmmv_argmax: {e}"));
            }
        }
    }
}

#[test]
fn gguf_fixtures_pass_on_the_isa_interpreter() {
    const U: f64 = 1.0 / 16_777_216.0;
    let cases = manifest("dmmv");
    for gfx in TARGETS {
        let mut s = session(gfx, ExecMode::Isa);
        for f in WeightFormat::ALL {
            let ty = f.name().to_ascii_lowercase();
            let file = fixture(&format!("dmmv_{ty}.gguf"));
            let g = Gguf::parse(&file).unwrap();
            let mine: Vec<_> = cases.iter().filter(|c| c[1] == ty).collect();
            assert!(!mine.is_empty(), "no {ty} fixture");
            for c in mine {
                let (rows, cols): (usize, usize) = (c[2].parse().unwrap(), c[3].parse().unwrap());
                let case = format!("{gfx} {ty} {rows}x{cols}");
                let m = g.matrix(&format!("w_{rows}x{cols}")).unwrap();
                let x = f32s(&format!("x_{cols}.f32"));
                let want = f32s(&format!("y_{ty}_{rows}x{cols}.f32"));
                let absy = f32s(&format!("absy_{ty}_{rows}x{cols}.f32"));
                let wh = s.upload_weights(f, rows, cols, m.bytes).unwrap();
                let xh = s.alloc_vec(cols).unwrap();
                s.write_vec(xh, &x).unwrap();
                let yh = s.alloc_vec(rows).unwrap();
                s.dmmv(wh, xh, yh).unwrap_or_else(|e| panic!("{case}: {e}"));
                let y = s.read_vec(yh).unwrap();
                // Bound of tests/fixtures/README.md (any summation order of the products).
                let depth = (cols / 16 + 6) as f64;
                for row in 0..rows {
                    let err = (f64::from(y[row]) - f64::from(want[row])).abs();
                    let tol =
                        depth * U * f64::from(absy[row]) + f64::from(want[row]).abs() * U + 1e-30;
                    assert!(err <= tol, "{case} row {row}: got {} want {}", y[row], want[row]);
                }
                let packed = u64::from_str_radix(c[5].trim_start_matches("0x"), 16).unwrap();
                let (index, _) = s.dmmv_argmax(wh, xh).unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(u64::from(index), 0xFFFF_FFFF - (packed & 0xFFFF_FFFF), "{case} argmax");
            }
        }
    }
}
