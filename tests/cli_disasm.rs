//! `pm4rt disasm` on text and binary streams, and on broken ones. The input dwords are written
//! by hand from the kernel's nvd.h `PACKET3()` (type-3 header: [31:30] = 3, [29:16] = body dwords - 1,
//! [15:8] opcode, bit 1 SHADER_TYPE).

use std::process::Command;

fn disasm(name: &str, bytes: &[u8]) -> (Option<i32>, String, String) {
    let path = std::env::temp_dir().join(format!("pm4rt-disasm-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pm4rt")).arg("disasm").arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// SET_SH_REG COMPUTE_PGM_LO/HI (0x20C), DISPATCH_DIRECT 4x1x1 initiator 0x8005, and an
/// 8-dword RELEASE_MEM (event 0x14, index 5, DATA_SEL 2).
const STREAM: &str = "\
0xC0027602 0x0000020C 0x00001234 0x00000000  # SET_SH_REG, 2 values
0xC0031502 4 1 1 0x8005                       # DISPATCH_DIRECT
0xC0064902 0x00000514 0x40000000 0x1000 0 7 0 0 # RELEASE_MEM
";

#[test]
fn text_stream_names_every_packet_and_register() {
    let (code, out, err) = disasm("ok.txt", STREAM.as_bytes());
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].contains("SET_SH_REG") && lines[0].contains("COMPUTE_PGM_LO=0x00001234"),
        "{out}"
    );
    assert!(lines[0].contains("COMPUTE_PGM_HI"), "{out}");
    assert!(lines[1].contains("DISPATCH_DIRECT") && lines[1].contains("CS_W32_EN"), "{out}");
    assert!(
        lines[2].contains("RELEASE_MEM") && lines[2].contains("CACHE_FLUSH_AND_INV_TS_EVENT"),
        "{out}"
    );
}

#[test]
fn binary_stream_decodes_the_same() {
    let words: Vec<u32> = STREAM
        .lines()
        .flat_map(|l| {
            l.split('#').next().unwrap().split_whitespace().map(str::to_string).collect::<Vec<_>>()
        })
        .map(|t| {
            t.strip_prefix("0x")
                .map_or_else(|| t.parse().unwrap(), |h| u32::from_str_radix(h, 16).unwrap())
        })
        .collect();
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let (code, out, _) = disasm("ok.bin", &bytes);
    assert_eq!(code, Some(0));
    assert_eq!(out, disasm("ok2.txt", STREAM.as_bytes()).1);
}

#[test]
fn truncated_stream_prints_what_decoded_then_the_offset() {
    // The RELEASE_MEM header at dword 9 announces 8 dwords; only 3 follow.
    let cut = "0xC0027602 0x20C 0x1234 0\n0xC0031502 4 1 1 0x8005\n0xC0064902 0x514 0x40000000\n";
    let (code, out, err) = disasm("cut.txt", cut.as_bytes());
    assert_eq!(code, Some(1));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains("dword 9"), "{err}");
}

#[test]
fn corrupted_header_and_garbage_files_are_errors_not_panics() {
    let (code, _, err) = disasm("type0.txt", b"0x00010000 0 0\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("dword 0"), "{err}");
    let (code, _, err) = disasm("ragged.bin", &[0xFF, 0x00, 0x01]);
    assert_eq!(code, Some(1), "{err}");
    let (code, _, err) = disasm("bad.txt", b"0xC0001000 zz\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("line 1"), "{err}");
}

/// `pm4rt disasm big | head -1`: the reader goes away early; pm4rt exits as a tool killed by
/// SIGPIPE would (141), without a panic message.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let path = std::env::temp_dir().join(format!("pm4rt-disasm-{}-big.txt", std::process::id()));
    std::fs::write(&path, "0xC0001002 0\n".repeat(200_000)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pm4rt"))
        .arg("disasm")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(first.contains("NOP"), "{first}");
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
