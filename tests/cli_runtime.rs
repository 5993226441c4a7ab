//! The CLI's tier selection and comparison on the emulated presets, run as a user would.

use std::process::Command;
use std::time::{Duration, Instant};

use pm4rt::probe::ProbeOptions;
use pm4rt::runtime::{candidates, probe_all, select, Machine, Policy};
use pm4rt::Tier;

fn pm4rt(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pm4rt")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn r9700_selects_cs_quickly_with_both_reasons() {
    let machine = Machine::emulated("r9700").unwrap();
    let t0 = Instant::now();
    let sel = select(candidates(&machine, &Policy::default()), &ProbeOptions::default()).unwrap();
    let took = t0.elapsed();
    assert_eq!(sel.chosen.tier, Tier::Cs);
    assert!(took < Duration::from_secs(2), "probe took {took:?}");
    let reason = |t: Tier| {
        let s = sel.statuses.iter().find(|s| s.tier == t).unwrap();
        let r = s.rejection.as_ref().unwrap();
        format!("{}: {}", r.step, r.message)
    };
    let umq = reason(Tier::Umq);
    assert!(umq.contains("user_queue = -1") && umq.contains("userq_num_slots = 0"), "{umq}");
    let kfd = reason(Tier::Kfd);
    assert!(kfd.contains("queue created but the fence did not retire within"), "{kfd}");
    assert_eq!(sel.fallback.iter().map(|c| c.tier).collect::<Vec<_>>(), vec![Tier::Sim]);
}

#[test]
fn presets_choose_the_documented_tier() {
    for (preset, want) in [
        ("gfx1201", Tier::Umq),
        ("rdna3-userq", Tier::Umq),
        ("rx7900xtx", Tier::Kfd),
        ("nogpu", Tier::Sim),
    ] {
        let machine = Machine::emulated(preset).unwrap();
        let statuses =
            probe_all(&candidates(&machine, &Policy::default()), &ProbeOptions::default());
        let chosen = statuses.iter().find(|s| s.usable()).map(|s| s.tier);
        assert_eq!(chosen, Some(want), "{preset}");
    }
    let e = Machine::emulated("nonesuch").err().unwrap().to_string();
    assert!(e.contains("gfx1201") && e.contains("r9700"), "{e}");
}

#[test]
fn nothing_usable_lists_every_reason() {
    let machine = Machine::emulated("nogpu").unwrap();
    let policy = Policy { exclude_sim: true, ..Policy::default() };
    let e =
        select(candidates(&machine, &policy), &ProbeOptions::default()).err().unwrap().to_string();
    for t in ["umq", "kfd", "cs"] {
        assert!(e.contains(&format!("  {t} ")), "{e}");
    }
}

#[test]
fn smoke_on_every_tier_of_the_emulated_machine() {
    for tier in ["umq", "kfd", "cs", "sim"] {
        let (ok, out, err) = pm4rt(&["smoke", "--emulate", "--tier", tier, "--iterations", "8"]);
        assert!(ok && out.contains(&format!("smoke OK: tier {tier}")), "{tier}: {out}{err}");
    }
    let (ok, out, err) = pm4rt(&["smoke", "--emulate", "r9700", "--tier", "kfd"]);
    assert!(!ok && err.contains("did not retire within"), "{out}{err}");
}

#[test]
fn compare_json_is_one_document_with_four_agreeing_rows() {
    let (ok, out, err) = pm4rt(&[
        "compare",
        "--emulate",
        "gfx1201",
        "--rows",
        "300",
        "--cols",
        "256",
        "--iters",
        "2",
        "--json",
    ]);
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    let tiers = doc["tiers"].as_array().unwrap();
    let names: Vec<&str> = tiers.iter().map(|t| t["status"]["tier"].as_str().unwrap()).collect();
    assert_eq!(names, ["umq", "kfd", "cs", "sim"]);
    for t in tiers {
        assert!(t["error"].is_null(), "{t}");
        assert_eq!(t["ops"].as_array().unwrap().len(), 4, "{t}");
        if t["status"]["tier"] != "sim" {
            // The emulated GPU ran the kernels' machine code (compare's default), so it
            // agrees with the native reference within the bound but not bit for bit.
            assert_eq!(t["status"]["emulated"], true);
            assert_eq!(t["executor"], "isa", "{t}");
            assert_eq!(t["agreement"]["same_argmax"], true, "{t}");
            assert_eq!(t["agreement"]["ok"], true, "{t}");
            assert!(t["agreement"]["max_abs"].as_f64().unwrap() > 0.0, "{t}");
        } else {
            assert_eq!(t["executor"], "native", "{t}");
        }
    }
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["failures"].as_array().map(Vec::len), Some(0));
}

#[test]
fn compare_sim_exec_native_runs_the_reference_kernels_everywhere() {
    let (ok, out, err) = pm4rt(&[
        "compare",
        "--emulate",
        "rdna3-userq",
        "--rows",
        "70",
        "--cols",
        "64",
        "--sim-exec",
        "native",
        "--json",
    ]);
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["iters"], 20, "the default for native executors");
    for t in doc["tiers"].as_array().unwrap() {
        assert_eq!(t["executor"], "native", "{t}");
        if t["status"]["tier"] != "sim" {
            // The same Rust kernels as the reference: identical outputs.
            assert_eq!(t["agreement"]["max_abs"].as_f64(), Some(0.0), "{t}");
        }
    }
}

#[test]
fn compare_rejects_an_unknown_executor() {
    let (ok, _, err) =
        pm4rt(&["compare", "--emulate", "--rows", "8", "--cols", "32", "--sim-exec", "fpga"]);
    assert!(!ok && err.contains("--sim-exec") && err.contains("\"fpga\""), "{err}");
}

#[test]
fn compare_with_zero_iterations_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_pm4rt"))
        .args(["compare", "--emulate", "nogpu", "--rows", "8", "--cols", "32", "--iters", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--iters") && err.contains('0'), "{err}");
}

#[test]
fn compare_rejects_impossible_shapes_without_panicking() {
    // Each must be a one-line error and exit code 1, never a panic (exit code 101) or an
    // abort: rows beyond u32, cols not a multiple of 32, and a shape whose Q4_0 bytes
    // (4294967295 rows x 134217727 blocks x 18 bytes, about 1.04e19) exceed isize::MAX.
    let cases: [(&str, &str, &str); 3] = [
        ("4294967296", "32", "weight rows"),
        ("1", "33", "multiple of the block size"),
        ("4294967295", "4294967264", "host memory"),
    ];
    for (rows, cols, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_pm4rt"))
            .args(["compare", "--emulate", "nogpu", "--rows", rows, "--cols", cols])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--rows {rows} --cols {cols}: {err}");
        assert!(err.contains(want) && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn probing_leaves_nothing_alive_on_the_emulated_device() {
    // Every rejected or probed tier is dropped, even the KFD queue whose retire smoke timed
    // out (its buffers are released with the submitter, not before).
    for preset in ["r9700", "gfx1201"] {
        let machine = Machine::emulated(preset).unwrap();
        let statuses =
            probe_all(&candidates(&machine, &Policy::default()), &ProbeOptions::default());
        assert!(statuses.iter().any(|s| s.usable()), "{preset}");
        let Machine::Emulated(dev) = &machine else { unreachable!() };
        assert!(dev.live_handles().is_zero(), "{preset}: {:?}", dev.live_handles());
        assert!(dev.kfd_live_handles().is_zero(), "{preset}: {:?}", dev.kfd_live_handles());
    }
}
