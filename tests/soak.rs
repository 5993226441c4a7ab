//! A short soak run on every emulation preset: random batches checked against the kernels'
//! bounds, raw IBs on small wrapping rings, injected ioctl failures, hangs and device losses;
//! nothing may panic, hang, give a wrong result or leak. (CI also runs `pm4rt soak` for 60 s.)

use std::time::Duration;

use pm4rt::soak::{run, SoakOptions};

#[test]
fn soak_every_preset_briefly() {
    let mut total = pm4rt::soak::SoakReport::default();
    // Two rounds of each preset (the seed fixes every choice), then a few mixed seconds.
    let names = pm4rt::runtime::presets().into_iter().map(|p| Some(p.name.to_string()));
    for (i, preset) in names.chain([None]).enumerate() {
        let duration = if preset.is_none() { Duration::from_secs(2) } else { Duration::ZERO };
        for round in 0..2 {
            let opts =
                SoakOptions { preset: preset.clone(), duration, seed: (i * 2 + round) as u64 };
            let r = run(&opts).unwrap();
            assert!(r.ok(), "{preset:?}: {r}\n{}", r.failures.join("\n"));
            total.batches_checked += r.batches_checked;
            total.raw_ibs_checked += r.raw_ibs_checked;
            total.faults_injected += r.faults_injected;
            total.ring_wraps += r.ring_wraps;
        }
    }
    assert!(total.batches_checked > 0 && total.raw_ibs_checked > 0, "{total}");
    assert!(total.faults_injected > 0 && total.ring_wraps > 0, "{total}");
}

#[test]
fn an_unknown_preset_is_an_error() {
    let opts = SoakOptions { preset: Some("nope".into()), duration: Duration::ZERO, seed: 1 };
    let e = run(&opts).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
}
