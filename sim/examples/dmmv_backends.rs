//! Compares the DMMV backends this CPU can run on the same Q4_0 and Q8_0 products.
//!
//! `cargo run --release -p pm4rt-sim --example dmmv_backends [ROWS [ROUNDS]]` (default 48 rows,
//! which stays in cache and runs on one thread; 65536 rows read 144 / 272 MiB from DRAM on
//! all threads). Columns: 4096. Each round times every backend once, alternating, and the
//! best time of all rounds is kept (the minimum is the least disturbed by other processes on
//! a small shared machine). A quick tool for trying kernel variants; the published figures
//! come from the criterion benchmark `cargo bench -p pm4rt-sim --bench dmmv`.

use pm4rt_sim::kernels::{dmmv_with, Backend, WeightType};
use std::time::Instant;

const COLS: usize = 4096;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let rows = match args.next() {
        Some(Ok(n)) if n > 0 => n,
        None => 48,
        _ => return eprintln!("usage: dmmv_backends [ROWS [ROUNDS]]"),
    };
    let rounds = match args.next() {
        Some(Ok(n)) if n > 0 => n,
        None => {
            if rows > 1000 {
                30
            } else {
                400
            }
        }
        _ => return eprintln!("usage: dmmv_backends [ROWS [ROUNDS]]"),
    };
    // Small products are repeated inside a timing so the clock's resolution does not matter.
    let inner = if rows > 1000 { 1 } else { 20 };
    let backends: Vec<Backend> = Backend::ALL.into_iter().filter(|b| b.is_available()).collect();
    let x: Vec<f32> = (0..COLS).map(|i| (i as f32 * 0.01).sin()).collect();
    let mut y = vec![0f32; rows];
    for ty in [WeightType::Q4_0, WeightType::Q8_0] {
        let w = weights(ty, rows);
        let mut best = vec![f64::MAX; backends.len()];
        for _ in 0..rounds {
            for (b, be) in best.iter_mut().zip(&backends) {
                let t = Instant::now();
                for _ in 0..inner {
                    if let Err(e) = dmmv_with(*be, ty, &w, &x, &mut y, rows, COLS) {
                        return eprintln!("{}: {e}", be.name());
                    }
                }
                *b = b.min(t.elapsed().as_secs_f64() / inner as f64);
            }
        }
        let gib = |t: f64| w.len() as f64 / t / f64::from(1u32 << 30);
        let line: Vec<String> = backends
            .iter()
            .zip(&best)
            .map(|(be, t)| format!("{} {:.2} GiB/s", be.name(), gib(*t)))
            .collect();
        println!("{ty:?} {rows}x{COLS}: {}", line.join(", "));
    }
}

/// Pseudo-random blocks with the scale of every block 1.0 (f16 0x3c00).
fn weights(ty: WeightType, rows: usize) -> Vec<u8> {
    let mut s = 12345u64;
    let n = rows * ty.row_bytes(COLS).unwrap_or(0);
    let mut w: Vec<u8> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    for b in w.chunks_exact_mut(ty.block_bytes()) {
        b[..2].copy_from_slice(&[0x00, 0x3c]);
    }
    w
}
