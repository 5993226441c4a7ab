//! The ISA decoder's text equals LLVM 19's disassembly (`llvm-objdump-19 -d --mcpu=<target>`)
//! for every instruction of every kernel of the committed code objects: pm4rt's kernels and the
//! interpreter's test corpus (sim/tests/isa_kernels), on both targets.
//!
//! The reference text is the committed `fixtures/isa/<target>.dis` and
//! `fixtures/isa/corpus-<target>.dis`, produced by
//! `fixtures/isa/gen.sh`. When llvm-objdump-19 is installed the test also re-runs it and
//! requires the fixture to be byte-identical; without it the test says so and compares with
//! the fixture alone, unless `PM4RT_REQUIRE_LLVM` is set (as CI does): then it fails.

use pm4rt_core::code_object::CodeObject;
use pm4rt_core::GfxTarget;
use pm4rt_sim::isa::{decode_all, text, Target};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const TARGETS: [(&str, GfxTarget, Target); 2] = [
    ("gfx1201", GfxTarget::Gfx1201, Target::Gfx12),
    ("gfx1100", GfxTarget::Gfx1100, Target::Gfx11),
];

/// A committed code object: fixture name, directory of `<target>/<file>` relative to the
/// crate, file name.
const OBJECTS: [(&str, &str, &str); 2] =
    [("", "../kernels", "pm4rt.hsaco"), ("corpus-", "tests/isa_kernels", "corpus.hsaco")];

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/isa/{name}.dis"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Instruction lines of an objdump listing: address -> text (mnemonic and operands, without
/// the encoding comment).
fn parse_listing(listing: &str) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for line in listing.lines().filter(|l| l.starts_with('\t')) {
        let Some((text, comment)) = line.split_once("//") else { continue };
        let addr = comment.trim().split(':').next().unwrap_or("");
        let addr = u64::from_str_radix(addr, 16).expect("address column");
        out.insert(addr, text.trim().to_string());
    }
    out
}

#[test]
fn decoder_text_equals_llvm_objdump_for_every_committed_instruction() {
    let mut compared = 0usize;
    let mut mismatches = Vec::new();
    for ((mcpu, gfx, target), (prefix, dir, file)) in
        TARGETS.into_iter().flat_map(|t| OBJECTS.map(|o| (t, o)))
    {
        let reference = parse_listing(&fixture(&format!("{prefix}{mcpu}")));
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(mcpu).join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let co = CodeObject::load(&bytes, gfx).expect("committed code object loads");
        for kernel in co.kernels() {
            let insts = match decode_all(target, co.code_bytes(kernel)) {
                Ok(insts) => insts,
                Err(e) => {
                    mismatches.push(format!("{mcpu} {}: {e}", kernel.name));
                    continue;
                }
            };
            assert!(!insts.is_empty(), "{mcpu} {}: no instructions", kernel.name);
            for inst in &insts {
                let addr = kernel.entry_offset + inst.offset as u64;
                let ours = text::format(target, inst);
                let want = reference.get(&addr).unwrap_or_else(|| {
                    panic!("{mcpu} {}: no objdump line at {addr:#x}", kernel.name)
                });
                compared += 1;
                if &ours != want {
                    mismatches.push(format!(
                        "{mcpu} {} {addr:#x}: ours {ours:?}, llvm {want:?}",
                        kernel.name
                    ));
                }
            }
        }
    }
    assert!(compared > 1000, "only {compared} instructions compared");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} instructions differ from llvm-objdump-19:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    eprintln!("{compared} instructions equal llvm-objdump-19's text");
}

#[test]
fn fixtures_are_what_llvm_objdump_19_prints() {
    for ((mcpu, _, _), (prefix, dir, file)) in
        TARGETS.into_iter().flat_map(|t| OBJECTS.map(|o| (t, o)))
    {
        let run = Command::new("llvm-objdump-19")
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
            .args(["-d", &format!("--mcpu={mcpu}"), &format!("{mcpu}/{file}")])
            .output();
        let Ok(out) = run else {
            assert!(
                std::env::var_os("PM4RT_REQUIRE_LLVM").is_none(),
                "llvm-objdump-19 not found and PM4RT_REQUIRE_LLVM is set"
            );
            eprintln!("skipping: llvm-objdump-19 not installed (apt-get install -y llvm-19)");
            return;
        };
        assert!(
            out.status.success(),
            "llvm-objdump-19 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        assert_eq!(
            text,
            fixture(&format!("{prefix}{mcpu}")),
            "{prefix}{mcpu}: fixture is stale (run sim/tests/fixtures/isa/gen.sh)"
        );
    }
}

#[test]
fn opcode_tables_are_what_llvm_mc_19_decodes() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/isa/tables/gen.py");
    let have_llvm = Command::new("llvm-mc-19").arg("--version").output().is_ok();
    if !have_llvm {
        assert!(
            std::env::var_os("PM4RT_REQUIRE_LLVM").is_none(),
            "llvm-mc-19 not found and PM4RT_REQUIRE_LLVM is set"
        );
        eprintln!("skipping: llvm-mc-19 not installed (apt-get install -y llvm-19)");
        return;
    }
    let out = Command::new("python3").arg(&script).arg("--check").output().expect("python3 runs");
    assert!(
        out.status.success(),
        "sim/src/isa/tables differ from LLVM 19 (run {}): {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
