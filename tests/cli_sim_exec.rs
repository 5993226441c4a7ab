//! `--sim-exec` / `PM4RT_SIM_EXEC` on the command line: the simulator's executor for a whole
//! `compare` (every tier of the emulated machine runs through the same executor).

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
    for (flag, env, want) in [
        (None, None, "native"),
        (Some("isa"), None, "isa"),
        (Some("both"), Some("isa"), "both"),
        (None, Some("both"), "both"),
    ] {
        let mut args = vec!["--json"];
        if let Some(f) = flag {
            args.extend(["--sim-exec", f]);
        }
        let (ok, out, err) = compare(&args, env);
        assert!(ok, "{flag:?} {env:?}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        assert_eq!(doc["sim_exec"], want, "{flag:?} {env:?}");
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
