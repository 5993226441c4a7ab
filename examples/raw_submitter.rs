//! The `Submitter` trait without a session: allocate a BO, map it, build an IB with the PM4
//! builder, submit it and wait for its fence, then read what the GPU wrote. Runs on the
//! simulator; any tier's submitter takes the same calls.
//!
//! Run with `cargo run --example raw_submitter`.

use std::error::Error;
use std::time::Duration;

use pm4rt::pm4::Builder;
use pm4rt::{BoDesc, Submitter};
use pm4rt_sim::SimSubmitter;

fn main() -> Result<(), Box<dyn Error>> {
    let mut s = SimSubmitter::new()?;
    let data = s.alloc_bo(&BoDesc::gtt(4096))?;
    let data_va = s.map_va(data, None)?;

    let mut b = Builder::growable(s.info().gfx);
    b.write_data(data_va, &[0xC0FF_EE00, 0x0000_0042])?;
    let words = b.into_vec();
    let ib = s.alloc_bo(&BoDesc::gtt(4096))?;
    let ib_va = s.map_va(ib, None)?;
    s.write_bo(ib, 0, bytemuck::cast_slice(&words))?;

    let fence = s.submit_ib(ib_va, u32::try_from(words.len())?)?;
    s.wait_fence(fence, Duration::from_secs(5))?;
    let mut out = [0u8; 8];
    s.read_bo(data, 0, &mut out)?;
    println!("fence {fence} retired; the GPU wrote {:02x?}", out);
    println!("counters: {:?}", s.info().counters);
    s.free_bo(ib)?;
    s.free_bo(data)?;
    Ok(())
}
