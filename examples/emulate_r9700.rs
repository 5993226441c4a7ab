//! Probe every tier of an emulated R9700 (gfx1201) on Linux 6.17 with the default
//! `amdgpu.user_queue=-1`, whose KFD queues are created but never retire: umq is refused (user
//! queues off), kfd fails its retire smoke, and cs is chosen.
//!
//! Run with `cargo run --example emulate_r9700`.

use std::error::Error;
use std::sync::Arc;

use pm4rt::runtime::{candidates, presets, select, Machine, Policy};
use pm4rt_sim::emu::EmulatedDevice;

fn main() -> Result<(), Box<dyn Error>> {
    let preset = presets().into_iter().find(|p| p.name == "r9700").ok_or("no r9700 preset")?;
    println!("{}: {}", preset.name, preset.description);
    let dev = Arc::new(EmulatedDevice::new((preset.make)())?);
    let policy = Policy::default();
    let sel = select(candidates(&Machine::Emulated(dev), &policy), &policy.probe)?;
    for st in &sel.statuses {
        match &st.rejection {
            None => println!("{:<4} {} usable", st.tier, st.device),
            Some(r) => {
                println!("{:<4} {} refused at {}: {}", st.tier, st.device, r.step, r.message)
            }
        }
    }
    println!("chosen: {}", sel.chosen.tier);
    Ok(())
}
