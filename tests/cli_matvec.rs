//! `pm4rt matvec` end to end on the simulator tier: output against the fixtures, argmax
//! against the manifest, and the errors for unsupported tensors.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn f32s(p: &PathBuf) -> Vec<f32> {
    std::fs::read(p)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn matvec(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pm4rt"))
        .arg("matvec")
        .args(["--tier", "sim"])
        .args(args)
        .env_remove("PM4RT_TIER")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pm4rt-cli-matvec-{}-{name}", std::process::id()))
}

#[test]
fn matvec_output_matches_the_fixture() {
    let f = fixtures();
    let out = tmp("y.f32");
    let (ok, stdout, stderr) = matvec(&[
        "--gguf",
        f.join("dmmv_q8_0.gguf").to_str().unwrap(),
        "--tensor",
        "w_65x96",
        "--input",
        f.join("x_96.f32").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("Q8_0 65x96"), "{stdout}");
    let y = f32s(&out);
    let want = f32s(&f.join("y_q8_0_65x96.f32"));
    let absy = f32s(&f.join("absy_q8_0_65x96.f32"));
    assert_eq!(y.len(), 65);
    const U: f64 = 1.0 / 16_777_216.0;
    for i in 0..65 {
        let tol = (96.0 / 16.0 + 6.0) * U * f64::from(absy[i]) + f64::from(want[i]).abs() * U;
        assert!((f64::from(y[i]) - f64::from(want[i])).abs() <= tol, "row {i}");
    }
    // Manifest: dmmv q8_0 65 96 <argmax index> <packed>.
    let manifest = std::fs::read_to_string(f.join("manifest.txt")).unwrap();
    let line = manifest.lines().find(|l| l.starts_with("dmmv q8_0 65 96 ")).unwrap();
    let idx = line.split_whitespace().nth(4).unwrap();
    assert!(stdout.contains(&format!("argmax: index {idx} ")), "{stdout}");
    // Checksum line: FNV-1a 64 of the output bytes, computed here independently.
    let bytes = std::fs::read(&out).unwrap();
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    assert!(stdout.contains(&format!("fnv1a64(y) = {h:#018x}")), "{stdout}");
    let _ = std::fs::remove_file(out);

    // The fused path finds the same index.
    let (ok, stdout2, _) = matvec(&[
        "--gguf",
        f.join("dmmv_q8_0.gguf").to_str().unwrap(),
        "--tensor",
        "w_65x96",
        "--input",
        f.join("x_96.f32").to_str().unwrap(),
        "--argmax",
    ]);
    assert!(ok);
    assert!(stdout2.contains(&format!("argmax: index {idx} ")), "{stdout2}");
}

/// A GGUF v3 with no metadata and the given tensors `(name, dims, ggml type, data)`; data
/// aligned to 32 (the format's default).
fn gguf(tensors: &[(&str, &[u64], u32, &[u8])]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend(0u64.to_le_bytes());
    let mut offset = 0u64;
    for (name, dims, ty, data) in tensors {
        b.extend((name.len() as u64).to_le_bytes());
        b.extend(name.as_bytes());
        b.extend((dims.len() as u32).to_le_bytes());
        for d in *dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(ty.to_le_bytes());
        b.extend(offset.to_le_bytes());
        offset += (data.len() as u64).div_ceil(32) * 32;
    }
    for (_, _, _, data) in tensors {
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
        b.extend(*data);
    }
    b
}

#[test]
fn unsupported_tensors_are_named() {
    // Q8_1 (ggml type 9, no DMMV kernel) 2 x 32: 2 blocks of 36 bytes; F16 (type 1) 2 x 32:
    // 128 bytes; a 1-D F32 vector of 32.
    let file = tmp("types.gguf");
    std::fs::write(
        &file,
        gguf(&[
            ("q81", &[32, 2], 9, &[0u8; 72]),
            ("half", &[32, 2], 1, &[0u8; 128]),
            ("vec", &[32], 0, &[0u8; 128]),
        ]),
    )
    .unwrap();
    let (ok, _, err) = matvec(&["--gguf", file.to_str().unwrap(), "--tensor", "q81"]);
    assert!(!ok);
    assert!(err.contains("Q8_1"), "{err}");
    assert!(err.contains("supported: F32, Q4_0, Q8_0, F16, BF16, Q4_1, Q5_0, Q5_1, Q4_K"), "{err}");
    let (ok, out, err) = matvec(&["--gguf", file.to_str().unwrap(), "--tensor", "half"]);
    assert!(ok, "{err}");
    assert!(out.contains("F16 2x32"), "{out}");
    let (ok, _, err) = matvec(&["--gguf", file.to_str().unwrap(), "--tensor", "vec"]);
    assert!(!ok);
    assert!(err.contains("2-D"), "{err}");
    let (ok, _, err) = matvec(&["--gguf", file.to_str().unwrap(), "--tensor", "missing"]);
    assert!(!ok);
    assert!(err.contains("missing"), "{err}");
    let _ = std::fs::remove_file(file);
}
