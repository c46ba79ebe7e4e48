//! The cargo-fuzz `differential` target turns each kind of failure into a libFuzzer artifact
//! whose printed `.clif` (`cargo fuzz fmt`'s output) replays the same finding with
//! `clif-diff run`. The failures are planted with `CLIF_DIFF_FUZZ_FAULTS`: an interpreter
//! miscompile stand-in, a JIT crash and a Cranelift panic.
//!
//! `#[ignore]`d for a bare `cargo test`: it needs the cargo-fuzz build, which `scripts/test.sh`
//! makes (`scripts/fuzz-smoke.sh`) before running it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn target() -> PathBuf {
    let p = clif_diff::coverage::default_instrumented_binary(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(
        p.exists(),
        "{} is missing: build it with scripts/fuzz-smoke.sh",
        p.display()
    );
    p
}

/// Fuzzes from the shipped seeds with `fault` planted until the target stops; returns the
/// artifact and what the target printed.
fn artifact_of(fault: &str, dir: &Path) -> (PathBuf, String) {
    let corpus = dir.join("corpus");
    let artifacts = dir.join("artifacts");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::create_dir_all(&artifacts).unwrap();
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/fuzz-seeds");
    let out = Command::new(target())
        .env("CLIF_DIFF_FUZZ_FAULTS", fault)
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .arg(&corpus)
        .arg(&seeds)
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-runs=300", "-seed=1", "-entropic=0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "{fault}: the target did not stop\n{stderr}"
    );
    let found: Vec<PathBuf> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("crash-")
        })
        .collect();
    assert_eq!(found.len(), 1, "{fault}: artifacts {found:?}\n{stderr}");
    (found[0].clone(), stderr)
}

/// What `cargo fuzz fmt` does: the target writes the input's `Debug` (the `.clif`) to
/// `RUST_LIBFUZZER_DEBUG_PATH` instead of running it. A planted fault lives in the environment,
/// so formatting needs it as fuzzing did (for real bugs there is nothing to pass).
fn fmt(artifact: &Path, fault: &str, out: &Path) -> String {
    let status = Command::new(target())
        .env("CLIF_DIFF_FUZZ_FAULTS", fault)
        .env("RUST_LIBFUZZER_DEBUG_PATH", out)
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .arg(artifact)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(out).unwrap()
}

fn replay(clif: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clif-diff"))
        .arg("run")
        .arg(clif)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn check(fault: &str, bucket_prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (artifact, stderr) = artifact_of(fault, dir.path());
    assert!(
        stderr.contains(&format!("clif-diff finding: {bucket_prefix}")),
        "{fault}: {stderr}"
    );
    let clif = dir.path().join("case.clif");
    let text = fmt(&artifact, fault, &clif);
    assert!(
        text.contains(&format!("; clif-diff: fault = {fault}")),
        "{fault}: the printed case lacks its fault\n{text}"
    );
    let (code, stdout) = replay(&clif);
    assert_eq!(code, Some(1), "{fault}: replay did not find it\n{stdout}");
    assert!(
        stdout.contains(&format!("bucket: {bucket_prefix}")),
        "{fault}: {stdout}"
    );
}

#[test]
#[ignore = "needs the cargo-fuzz build (scripts/test.sh runs it after scripts/fuzz-smoke.sh)"]
fn a_planted_interpreter_jit_mismatch_becomes_a_replayable_artifact() {
    check("interp-swap:bxor>bor", "mismatch:");
}

#[test]
#[ignore = "needs the cargo-fuzz build (scripts/test.sh runs it after scripts/fuzz-smoke.sh)"]
fn a_planted_jit_crash_becomes_a_replayable_artifact() {
    check("jit-crash-on:iadd", "crash:jit:SIGSEGV");
}

#[test]
#[ignore = "needs the cargo-fuzz build (scripts/test.sh runs it after scripts/fuzz-smoke.sh)"]
fn a_planted_cranelift_panic_becomes_a_replayable_artifact() {
    check("jit-compile-panic-on:iadd", "panic:");
}
