//! The fuzz targets on stable, without libFuzzer: every committed corpus input
//! (`fuzz/corpus/<target>/`) and crash regression (`fuzz/regressions/<target>/`) goes through
//! the target's body (`pm4rt::fuzz`), which panics on a bug. Also checks that the committed
//! seed corpus holds every seed `pm4rt::fuzz::seeds` builds (set `PM4RT_WRITE_FUZZ_CORPUS=1`
//! to write them) and that the structured seeds reach the states they were written for.

use std::path::{Path, PathBuf};

use pm4rt::fuzz::{emu_ioctl, engine, seeds, TARGETS};
use pm4rt_core::Error;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

#[test]
fn seed_corpus_is_committed() {
    let write = std::env::var("PM4RT_WRITE_FUZZ_CORPUS").is_ok_and(|v| v == "1");
    for (target, name, bytes) in seeds::all() {
        let path = fuzz_dir().join("corpus").join(target).join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (PM4RT_WRITE_FUZZ_CORPUS=1 writes it)", path.display())
        });
        assert!(committed == bytes, "{} differs from the seed built now", path.display());
    }
}

#[test]
fn every_corpus_and_regression_input_runs() {
    let mut total = 0;
    for (target, body) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(target));
        assert!(!corpus.is_empty(), "no corpus for {target}");
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            eprintln!("{target}: {}", path.display());
            body(&data);
            total += 1;
        }
    }
    assert!(total >= TARGETS.len());
}

#[test]
fn emu_ioctl_seeds_reach_their_states() {
    for (target, name, bytes) in seeds::all() {
        if target != "emu_ioctl" {
            continue;
        }
        let stats = emu_ioctl::run_program(&bytes);
        assert_eq!(stats.ioctls_failed, 0, "{name}: {stats:?}");
        assert!(stats.ioctls_ok >= 2, "{name}: {stats:?}");
    }
}

#[test]
fn engine_seeds_run_to_completion() {
    for (target, name, bytes) in seeds::all() {
        if target != "engine" {
            continue;
        }
        let outcome = engine::execute(&bytes).expect("non-empty seed");
        if name.ends_with("_sh_regs") {
            // A dispatch with no program address: the registry's typed "unknown code" error.
            assert!(matches!(outcome, Err(Error::Dispatch { .. })), "{name}: {outcome:?}");
        } else {
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
        }
    }
}

#[test]
fn isa_seeds_reach_their_outcomes() {
    use pm4rt::fuzz::isa;
    use pm4rt_sim::isa::ExecError;
    for (target, name, bytes) in seeds::all() {
        if target != "isa" {
            continue;
        }
        let outcome = isa::execute(&bytes).unwrap_or_else(|| panic!("{name}: does not decode"));
        if name.ends_with("_endpgm") && !name.ends_with("sin_endpgm") {
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
        } else if name.ends_with("_branch_loop") {
            assert!(matches!(outcome, Err(ExecError::StepLimit(isa::MAX_STEPS))), "{name}");
        } else if name.ends_with("_sin_endpgm") {
            let named = matches!(&outcome, Err(ExecError::Unimplemented { mnemonic, .. })
                if mnemonic.starts_with("v_sin_f32"));
            assert!(outcome.is_ok() || named, "{name}: {outcome:?}");
        } else {
            // pm4rt's kernels: the interpreter implements every instruction; with zeroed
            // kernel arguments they end or fault on a null pointer.
            let ok = matches!(outcome, Ok(()) | Err(ExecError::Memory(_)));
            assert!(ok, "{name}: {outcome:?}");
        }
    }
}

/// The engine input the CI fuzz run found: a dispatch of unknown code whose
/// COMPUTE_NUM_THREAD_X/Y/Z make a workgroup of billions of work-items aborted the process on
/// a 55 GB allocation of waves; it is now refused before any wave is built.
#[test]
fn an_oversized_workgroup_is_a_dispatch_error() {
    let path = fuzz_dir().join("regressions/engine/crash-279a7ea67132944c5b4e0837584b2cabf5c43a76");
    let bytes = std::fs::read(&path).expect("committed regression input");
    let outcome = engine::execute(&bytes).expect("non-empty input");
    let Err(Error::Dispatch { reason, .. }) = &outcome else {
        panic!("expected a dispatch error, got {outcome:?}");
    };
    assert!(reason.contains("a workgroup has 1 to 1024"), "{reason}");
}
