//! One LM-head step as a single batch on the simulator: RMS norm of the hidden state, the
//! product with a Q4_0 vocabulary matrix and the argmax of the logits, recorded into one IB
//! and submitted once.
//!
//! Run with `cargo run --example lm_head_batch`.

use std::error::Error;
use std::time::Duration;

use pm4rt::compare::Workload;
use pm4rt::session::Session;
use pm4rt_sim::SimSubmitter;

fn main() -> Result<(), Box<dyn Error>> {
    let mut s = Session::new(Box::new(SimSubmitter::new()?))?;
    // A synthetic Q4_0 LM head of 512 tokens over a 256-wide hidden state.
    let wl = Workload::synthetic_q4_0(512, 256, 7)?;
    let w = s.upload_weights(wl.format, wl.rows, wl.cols, &wl.weights)?;
    let (h, g, n) = (s.alloc_vec(wl.cols)?, s.alloc_vec(wl.cols)?, s.alloc_vec(wl.cols)?);
    let logits = s.alloc_vec(wl.rows)?;
    s.write_vec(h, &wl.x)?;
    s.write_vec(g, &wl.norm_weight)?;

    let mut b = s.batch();
    b.rms_norm(h, g, wl.eps, n)?;
    b.dmmv(w, n, logits)?;
    let top = b.argmax(logits)?;
    let (token, logit) = b.submit_and_wait(Duration::from_secs(30))?.argmax(top);
    println!("next token {token} (logit {logit})");
    Ok(())
}
