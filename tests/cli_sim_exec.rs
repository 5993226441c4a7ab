//! `--sim-exec` / `PM4RT_SIM_EXEC` on the command line: the executor of the simulator tier
//! and of the emulated machine's GPU in `compare`.

use std::process::Command;

fn compare(extra: &[&str], env: Option<&str>) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pm4rt"));
    c.args(["compare", "--emulate", "gfx1201", "--rows", "40", "--cols", "64", "--iters", "1"]);
    c.args(extra);
    match env {
        Some(v) => c.env("PM4RT_SIM_EXEC", v),
        None => c.env_remove("PM4RT_SIM_EXEC"),
    };
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compare_runs_and_agrees_in_every_sim_exec_mode() {
    // (flag, env, executor of the emulated rows, executor of the sim row): without either,
    // compare --emulate runs the emulated tiers on machine code and the simulator natively.
    for (flag, env, emulated, sim) in [
        (None, None, "isa", "native"),
        (Some("isa"), None, "isa", "isa"),
        (Some("both"), Some("isa"), "both", "both"),
        (None, Some("both"), "both", "both"),
    ] {
        let mut args = vec!["--json"];
        if let Some(f) = flag {
            args.extend(["--sim-exec", f]);
        }
        let (ok, out, err) = compare(&args, env);
        assert!(ok, "{flag:?} {env:?}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        for t in doc["tiers"].as_array().unwrap() {
            let want = if t["status"]["tier"] == "sim" { sim } else { emulated };
            assert_eq!(t["executor"], want, "{flag:?} {env:?}: {t}");
        }
        assert_eq!(doc["ok"], true, "{flag:?} {env:?}: {out}");
        assert_eq!(doc["tiers"].as_array().map(Vec::len), Some(4), "{out}");
    }
}

#[test]
fn an_unknown_sim_exec_mode_is_refused_naming_the_choices() {
    let (ok, _, err) = compare(&["--sim-exec", "fast"], None);
    assert!(!ok);
    assert!(err.contains("native") && err.contains("isa") && err.contains("both"), "{err}");
}
