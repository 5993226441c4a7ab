//! `pm4rt launch` and `pm4rt inspect` on the user-kernel corpus: results checked against host
//! values computed here from the kernel source; bad arguments are clear errors, never panics.

use std::path::PathBuf;
use std::process::Command;

fn corpus(gfx: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/user_kernels/{gfx}/user.hsaco"))
        .display()
        .to_string()
}

fn pm4rt(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pm4rt"))
        .args(args)
        .env_remove("PM4RT_TIER")
        .env_remove("PM4RT_SIM_EXEC")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pm4rt-cli-launch-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn launch_scale_add_on_sim_and_emulated_umq() {
    let n = 700usize;
    let x: Vec<u8> = (0..n).flat_map(|i| (i as f32 - 300.0).to_le_bytes()).collect();
    let xp = tmp("x.bin");
    std::fs::write(&xp, &x).unwrap();
    for (gfx, extra) in [
        ("gfx1201", vec!["--tier", "sim"]),
        ("gfx1201", vec!["--emulate", "--tier", "umq"]),
        ("gfx1100", vec!["--emulate", "rx7900xtx", "--tier", "kfd"]),
    ] {
        let yp = tmp(&format!("y-{gfx}-{}.bin", extra.len()));
        let out_arg = format!("out:{}:{}", 4 * n, yp.display());
        let in_arg = format!("in:{}", xp.display());
        let co = corpus(gfx);
        let mut args = vec!["launch", &co, "scale_add", "--grid", "3", "--block", "256"];
        args.extend(extra.iter().copied());
        args.extend(["--arg", &out_arg, "--arg", &in_arg, "--arg", "f32:0.5", "--arg", "u32:700"]);
        let (ok, stdout, stderr) = pm4rt(&args);
        assert!(ok, "{gfx} {extra:?}: {stdout}{stderr}");
        assert!(
            stdout.contains("launch: scale_add grid [3, 1, 1] x block [256, 1, 1]"),
            "{stdout}"
        );
        let y = std::fs::read(&yp).unwrap();
        for i in 0..n {
            let got = f32::from_le_bytes(y[4 * i..4 * i + 4].try_into().unwrap());
            assert_eq!(got, (i as f32 - 300.0) * 0.5 + i as f32, "{gfx} {extra:?} y[{i}]");
        }
    }
}

#[test]
fn launch_errors_name_the_problem() {
    let co = corpus("gfx1201");
    let base = ["launch", co.as_str()];
    let cases: &[(&[&str], &str)] = &[
        (&["nope", "--tier", "sim", "--grid", "1", "--block", "64"], "no kernel named nope"),
        (&["scale_add", "--tier", "sim", "--grid", "1"], "declares no reqd_work_group_size"),
        (
            &["scale_add", "--tier", "sim", "--grid", "1", "--block", "64", "--arg", "u32:1"],
            "4 explicit arguments (#0 out, #1 in, #2 k, #3 n), 1 given",
        ),
        (
            &[
                "scale_add",
                "--tier",
                "sim",
                "--grid",
                "1",
                "--block",
                "64",
                "--arg",
                "u32:1",
                "--arg",
                "u32:1",
                "--arg",
                "f32:1",
                "--arg",
                "u32:1",
            ],
            "argument #0 out is a global buffer but a u32 was given",
        ),
    ];
    for (extra, want) in cases {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let (ok, stdout, stderr) = pm4rt(&args);
        assert!(!ok, "{args:?} succeeded: {stdout}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (ok, _, stderr) = pm4rt(&["launch", &co, "scale_add", "--grid", "0"]);
    assert!(!ok && stderr.contains("dimension 0 is 0"), "{stderr}");
}

#[test]
fn inspect_lists_kernels_arguments_and_hidden_arguments() {
    let (ok, stdout, stderr) = pm4rt(&["inspect", &corpus("gfx1100"), "--json"]);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["target"], "gfx1100");
    let k = doc["kernels"].as_array().unwrap().iter().find(|k| k["name"] == "scale_add").unwrap();
    // llvm-readelf-19 --notes: out@0 (8), in@8 (8), k@16 (4), n@20 (4); hidden from 24.
    let args: Vec<(String, u64)> = k["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["offset"].as_u64().unwrap()))
        .collect();
    assert_eq!(args, [("out".into(), 0), ("in".into(), 8), ("k".into(), 16), ("n".into(), 20)]);
    assert_eq!(k["hidden_args"][0]["kind"], "hidden_block_count_x");
    assert_eq!(k["hidden_args"][0]["offset"], 24);
    assert_eq!(k["launchable"], true);
    assert_eq!(k["wavefront_size"], 32);
    let (ok, stdout, _) = pm4rt(&["inspect", &corpus("gfx1201")]);
    assert!(ok && stdout.contains("kernel read_dispatch") && stdout.contains("dispatch ptr"));
    let (ok, _, stderr) = pm4rt(&["inspect", "Cargo.toml"]);
    assert!(!ok && stderr.contains("not an ELF file"), "{stderr}");
}
