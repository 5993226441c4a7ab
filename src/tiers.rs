//! The candidates the probe tries on this machine, in selection order (umq, kfd, cs, sim).

use pm4rt_core::Tier;
use pm4rt_sim::SimSubmitter;

use crate::probe::{Candidate, Rejection};

/// The default DRM render node.
pub const DEFAULT_RENDER_NODE: &str = "/dev/dri/renderD128";

/// Every candidate for this machine, fastest tier first.
///
/// The hardware tiers are listed with the device they would use; until their backends are
/// built into this version they report why they cannot run (no device, or no backend).
pub fn candidates(render_node: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for tier in [Tier::Umq, Tier::Kfd, Tier::Cs] {
        let device = if tier == Tier::Kfd { "/dev/kfd" } else { render_node }.to_string();
        let dev = device.clone();
        out.push(Candidate {
            tier,
            device,
            emulated: false,
            open: Box::new(move || {
                if !std::path::Path::new(&dev).exists() {
                    return Err(Rejection {
                        step: format!("open {dev}"),
                        errno: Some(2),
                        message: format!("{dev} does not exist: no AMD GPU driver on this machine"),
                    });
                }
                Err(Rejection::new("backend", format!("the {tier} backend is not built yet")))
            }),
        });
    }
    out.push(sim_candidate());
    out
}

/// The simulator candidate: always present.
pub fn sim_candidate() -> Candidate {
    Candidate {
        tier: Tier::Sim,
        device: "in-process".to_string(),
        emulated: false,
        open: Box::new(|| match SimSubmitter::new() {
            Ok(s) => Ok(Box::new(s) as Box<dyn pm4rt_core::Submitter>),
            Err(e) => Err(Rejection::new("create simulator", e.to_string())),
        }),
    }
}
