//! End to end: real findings, reduced with the engines in sandboxed workers, and the written
//! reproducers replayed by the real binary in a fresh process.

use clif_diff::case::{Expect, load};
use clif_diff::harness::{Overrides, Plan, check};
use clif_diff::reduce::{ReduceOptions, count_insts, output, reduce_in};
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use std::path::{Path, PathBuf};
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_clif-diff");

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

fn sandbox() -> Sandbox {
    Sandbox::new(WorkerCommand { exe: EXE.into() })
}

/// `clif-diff run FILE`: (exit code, stdout).
fn replay(file: &Path) -> (i32, String) {
    let out = Command::new(EXE).arg("run").arg(file).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn far_call_panic_reduces_to_a_few_instructions_and_replays() {
    const BUCKET: &str = "panic:cranelift-jit/src/compiled_blob.rs:142";
    let src = cases().join("far-call-padded.clif");
    let case = load(&src).unwrap();
    let plan = Plan::for_case(&case, &Overrides::default()).unwrap();
    let mut sb = sandbox();
    assert_eq!(check(&mut sb, &case, &plan).unwrap().bucket, BUCKET);

    let reduced = reduce_in(&mut sb, &case, &plan, BUCKET, &ReduceOptions::default()).unwrap();
    let s = &reduced.stats;
    assert!(s.insts_before >= 40, "{s:?}");
    assert!(count_insts(&reduced.case) <= 15, "{}", reduced.case);
    assert_eq!(s.insts_after, count_insts(&reduced.case));
    assert_eq!(reduced.report.bucket, BUCKET);
    // What is left is the bug: a colocated call between two functions.
    let text = reduced.case.to_text();
    assert!(text.contains("colocated"), "{text}");
    assert_eq!(reduced.case.functions.len(), 2, "{text}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("far.clif");
    let written = output::render(&reduced, &plan, "far-call-padded.clif", "far.clif");
    std::fs::write(&out, &written).unwrap();
    // The directives carry the options: no flags needed to replay.
    assert!(
        written.contains("; clif-diff: jit-memory = far"),
        "{written}"
    );
    assert!(
        written.contains(&format!("; clif-diff: expect = {BUCKET}")),
        "{written}"
    );
    assert!(written.contains("\ntest run\n"), "{written}");
    // The interpreter is not a side of a JIT panic.
    assert!(!written.contains("test interpret"), "{written}");
    let (code, stdout) = replay(&out);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("bucket: {BUCKET}")), "{stdout}");
    // Expectations are the interpreter's results, so the file also passes `replay`.
    let back = load(&out).unwrap();
    assert!(back.runs.iter().all(|r| matches!(r.expect, Expect::Eq(_))));
}

#[test]
fn sarg_copy_mismatch_reduces_through_the_cli() {
    const BUCKET: &str = "mismatch:interp!=jit=object";
    let src = cases().join("sarg-copy-leak.clif");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("leak.clif");
    let run = Command::new(EXE)
        .args(["reduce", "--quiet"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains(&format!("bucket: {BUCKET}")), "{stdout}");

    let reduced = load(&out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(count_insts(&reduced) <= 15, "{text}");
    // The original writes every byte it reads, so the reproducer does too: it cannot have
    // slid into reading uninitialised stack memory (undefined, and a "mismatch" of its own).
    assert!(
        clif_diff::facts::memory::slots_initialized(&reduced.functions),
        "{text}"
    );
    assert!(
        clif_diff::facts::memory::accesses_in_bounds(&reduced),
        "{text}"
    );
    assert!(count_insts(&reduced) < count_insts(&load(&src).unwrap()));
    // The finding needs the sarg call and the caller's re-read after it.
    assert!(text.contains("sarg("), "{text}");
    assert!(
        text.contains("; clif-diff: fault = interp-skip-sarg-copy"),
        "{text}"
    );
    // The interpreter is a side, but upstream's plain interpreter does not copy `sarg`
    // structs: the file says `test run` for upstream and keeps clif-diff's interpreter by
    // directive, with its value as the expectation.
    assert!(
        text.contains("; clif-diff: engines = interp,jit,object"),
        "{text}"
    );
    assert!(
        text.contains("test run\n") && !text.contains("test interpret"),
        "{text}"
    );
    assert!(
        text.contains("; Finding: mismatch:interp!=jit=object"),
        "{text}"
    );
    let (code, replayed) = replay(&out);
    assert_eq!(code, 1, "{replayed}");
    assert!(
        replayed.contains(&format!("bucket: {BUCKET}")),
        "{replayed}"
    );
}

#[test]
fn nothing_to_reduce_is_bad_input() {
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions/seed-8852-sarg-call.clif");
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(EXE)
        .args(["reduce", "--quiet"])
        .arg(&seed)
        .arg("-o")
        .arg(dir.path().join("x.clif"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("nothing to reduce"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_bucket_the_case_does_not_show_is_refused() {
    let src = cases().join("sarg-copy-leak.clif");
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(EXE)
        .args(["reduce", "--quiet", "--bucket", "crash:jit:SIGSEGV"])
        .arg(&src)
        .arg("-o")
        .arg(dir.path().join("x.clif"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("does not reproduce"), "{stderr}");
}
