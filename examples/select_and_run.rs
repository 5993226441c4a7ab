//! Select the fastest tier that really retires work on this machine (umq, kfd, cs, then the
//! simulator), open a session that falls back to the next tier at run time, and run one
//! matrix-vector product on it.
//!
//! `PM4RT_TIER` forces a tier and `PM4RT_RENDER_NODE` picks the render node, as for the CLI.
//! Run with `cargo run --example select_and_run`.

use std::error::Error;

use pm4rt::probe::ProbeOptions;
use pm4rt::runtime::{candidates, reasons, select, Machine, Policy};
use pm4rt::session::{Session, WeightFormat};

fn main() -> Result<(), Box<dyn Error>> {
    let policy = Policy::from_env()?;
    let sel = select(candidates(&Machine::Host, &policy), &policy.probe)?;
    println!("chosen: {} on {}", sel.chosen.tier, sel.chosen.device);
    let why = reasons(&sel.statuses);
    if !why.is_empty() {
        println!("passed over:\n{why}");
    }
    let mut s = Session::with_fallback(sel, ProbeOptions::default())?;

    // y = W x for a 4 x 64 F32 matrix whose row r holds the value r + 1 everywhere.
    let (rows, cols) = (4, 64);
    let w: Vec<f32> = (0..rows).flat_map(|r| vec![r as f32 + 1.0; cols]).collect();
    let w = s.upload_weights(WeightFormat::F32, rows, cols, bytemuck::cast_slice(&w))?;
    let (x, y) = (s.alloc_vec(cols)?, s.alloc_vec(rows)?);
    s.write_vec(x, &vec![0.5; cols])?;
    s.dmmv(w, x, y)?;
    println!("y = {:?} on {} (demotions: {:?})", s.read_vec(y)?, s.tier(), s.demotions());
    Ok(())
}
