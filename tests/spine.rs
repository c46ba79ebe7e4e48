//! End-to-end behaviour of the spine through the real binary: verdicts, exit codes, replay.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clif-diff"))
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/regressions")
        .join(name)
}

fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = bin().args(args).output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn seed_case_agrees_on_42() {
    let seed = corpus("seed-8852-sarg-call.clif");
    let (code, out, _) = run(&["run", seed.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verdict"], "agree");
    for o in report["runs"][0]["outcomes"].as_array().unwrap() {
        assert_eq!(o["kind"], "returned");
        assert_eq!(o["values"][0]["I32"], 42);
    }
}

#[test]
fn seed_case_under_far_memory_is_the_jit_relocation_panic() {
    let seed = corpus("seed-8852-sarg-call.clif");
    let (code, out, _) = run(&[
        "run",
        seed.to_str().unwrap(),
        "--jit-memory",
        "far",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["bucket"],
        "panic:cranelift-jit/src/compiled_blob.rs:142"
    );
    let outcomes = report["runs"][0]["outcomes"].as_array().unwrap();
    assert_eq!(outcomes[0]["values"][0]["I32"], 42, "interpreter");
    assert_eq!(outcomes[1]["kind"], "panic");
    assert_eq!(outcomes[1]["phase"], "finalize");
    assert_eq!(outcomes[2]["values"][0]["I32"], 42, "object");
}

#[test]
fn malformed_file_is_one_line_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.clif");
    std::fs::write(
        &f,
        "test run\ntarget x86_64\n\nfunction %f() {\nblock0:\n    bogus\n}\n",
    )
    .unwrap();
    let (code, out, err) = run(&["run", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{}:6:", f.display())), "{err}");
}

#[test]
fn unknown_target_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.clif");
    std::fs::write(
        &f,
        "test run\ntarget mips64\n\nfunction %f() {\nblock0:\n    return\n}\n",
    )
    .unwrap();
    let (code, _, err) = run(&["run", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn segfault_is_a_classified_outcome_and_the_harness_goes_on() {
    let f = corpus("segfault-notrap-load.clif");
    let (code, out, err) = run(&["run", f.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for o in report["runs"][0]["outcomes"].as_array().unwrap() {
        assert_eq!(o["kind"], "crash");
        assert_eq!(o["signal"], "SIGSEGV");
    }
}

#[test]
fn replay_passes_on_the_regression_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions");
    let (code, out, err) = run(&["replay", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let n = clif_diff::replay::corpus_files(&dir).unwrap().len();
    assert!(out.contains(&format!("{n} cases: {n} pass")), "{out}");
}

#[test]
fn replay_fails_when_an_expectation_changes() {
    let dir = tempfile::tempdir().unwrap();
    for (name, from, to, status) in [
        // A bug case that now "expects" agreement: the panic is a regression.
        (
            "a.clif",
            "expect = panic:cranelift-jit/src/compiled_blob.rs:142",
            "expect = agree",
            "REGRESSION",
        ),
        // An agreeing case that "expects" a known bug: reported as fixed.
        (
            "b.clif",
            "expect = agree",
            "expect = panic:cranelift-jit/src/compiled_blob.rs:142",
            "FIXED",
        ),
    ] {
        let src = if name == "a.clif" {
            corpus("jit-far-colocated-call.clif")
        } else {
            corpus("seed-8852-sarg-call.clif")
        };
        let text = std::fs::read_to_string(src).unwrap();
        assert!(text.contains(from));
        let sub = dir.path().join(name.trim_end_matches(".clif"));
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join(name), text.replace(from, to)).unwrap();
        let (code, out, _) = run(&["replay", sub.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(status), "{out}");
    }
}

/// A hand-written file the verifier rejects is bad input (exit 2, one line naming the verifier
/// error), not an `error:jit:compile:…` finding.
#[test]
fn a_file_the_verifier_rejects_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.clif");
    std::fs::write(
        &file,
        "test run\ntarget x86_64\n\nfunction %f(i32) -> i64 system_v {\nblock0(v0: i32):\n    return v0\n}\n; run: %f(1) == 1\n",
    )
    .unwrap();
    let (code, out, err) = run(&["run", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("invalid case: verifier: %f:"), "{err}");
    assert!(out.is_empty(), "{out}");
}

/// A line every engine runs out of time on is a hang of the case, said as such: not a
/// `timeout:interp` finding.
#[test]
fn a_case_that_loops_everywhere_is_a_hang_not_a_finding() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/loop-forever.clif");
    let (code, out, _) = run(&[
        "run",
        file.to_str().unwrap(),
        "--timeout-ms",
        "300",
        "--fuel",
        "100000",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: hang"), "{out}");
    assert!(!out.contains("bucket:"), "{out}");
}

/// Data objects replay from the file alone: each run line starts from the initial bytes on
/// every engine (the JIT and the object program run both lines in one process), a call goes
/// through the pointer table and a pointer in data is followed. Under `far` memory the data
/// lies more than 4 GiB from the code: the colocated `symbol_value` is the known JIT panic,
/// and the interpreter and the object path still agree on the value.
#[test]
fn data_objects_agree_and_every_run_line_starts_afresh() {
    let f =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/data-run-lines-start-afresh.clif");
    let want = 0x0807_0605_0403_8a7f_i64;
    let (code, out, err) = run(&["run", f.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for r in report["runs"].as_array().unwrap() {
        let outcomes = r["outcomes"].as_array().unwrap();
        assert_eq!(outcomes.len(), 3);
        for o in outcomes {
            assert_eq!(o["values"][0]["I64"], want, "{o}");
        }
    }
    let (_, out, _) = run(&["run", f.to_str().unwrap(), "--json", "--jit-memory", "far"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["bucket"],
        "panic:cranelift-jit/src/compiled_blob.rs:142"
    );
    for r in report["runs"].as_array().unwrap() {
        let o = r["outcomes"].as_array().unwrap();
        assert_eq!(o[0]["values"][0]["I64"], want, "{r}");
        assert_eq!(o[1]["kind"], "panic", "{r}");
        assert_eq!(o[2]["values"][0]["I64"], want, "{r}");
    }
}

/// A malformed data directive is one line naming file and line; a relocation to nothing the
/// case defines is bad input too.
#[test]
fn bad_data_objects_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let body = "test run\ntarget x86_64\n\nfunction %f() -> i8 {\nblock0:\n    v0 = iconst.i8 0\n    return v0\n}\n; run: %f() == 0\n";
    for (directive, what) in [
        ("%d0 writable align=3 bytes=00", ":1: data %d0: `align=3`"),
        (
            "%d0 writable align=8 bytes=0000000000000000 fn@0=%nope",
            "names nothing the case defines",
        ),
        (
            "%d0 readonly tls bytes=00",
            ":1: data %d0: a thread-local object is writable",
        ),
        (
            "%t0 writable tls bytes=00\n; clif-diff: data = %d1 readonly align=8 bytes=0000000000000000 data@0=%t0",
            ":2: data %d1: points at thread-local %t0",
        ),
    ] {
        let f = dir.path().join("d.clif");
        std::fs::write(&f, format!("; clif-diff: data = {directive}\n{body}")).unwrap();
        let (code, _, err) = run(&["run", f.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(what), "{err}");
    }
}

/// An emulator that crashes on its own (qemu-riscv64 7.2 asserts translating this RVV code) ran
/// nothing: the object engine is skipped with the reason, never a Cranelift crash; a qemu
/// without the bug runs it and agrees.
#[test]
fn an_emulator_crash_is_a_skip_not_a_finding() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases/qemu-riscv64-rvv-decoder-assertion.clif");
    let (code, out, err) = run(&["run", f.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let object = &report["runs"][0]["outcomes"][1];
    match object["kind"].as_str().unwrap() {
        "skipped" => assert!(
            object["reason"]
                .as_str()
                .unwrap()
                .contains("the emulator crashed"),
            "{object}"
        ),
        "returned" => assert_eq!(report["verdict"], "agree", "{report}"),
        other => panic!("object: {other}: {object}"),
    }
}

/// The object program sets its own limits (the harness spawns it without a fork): no core
/// dumps, a 1 GiB address space, and death with the process that started it.
#[test]
fn object_programs_run_limited_and_die_with_their_parent() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/loop-forever.clif");
    let mut cli = bin()
        .args(["run", file.to_str().unwrap(), "--engines", "object"])
        .args(["--timeout-ms", "20000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = |pid: u32, key: &str| -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        Some(line[key.len()..].trim().to_string())
    };
    let descends_from = |mut pid: u32, root: u32| {
        while pid > 1 {
            if pid == root {
                return true;
            }
            pid = match status(pid, "PPid:").and_then(|p| p.parse().ok()) {
                Some(p) => p,
                None => return false,
            };
        }
        false
    };
    let program = (0..200).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::read_dir("/proc").unwrap().find_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = cmd.trim_end_matches('\0');
            (cmd.contains("/obj-") && cmd.ends_with("/cases") && descends_from(pid, cli.id()))
                .then_some(pid)
        })
    });
    let Some(program) = program else {
        cli.kill().unwrap();
        panic!("the object program never started");
    };
    let limit = |limits: &str, name: &str| {
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // The program sets its limits first thing in `main`; between its exec and then it still has
    // its parent's (a CI run saw the worker's 4 GiB there), so give it a moment to get there.
    let read = || std::fs::read_to_string(format!("/proc/{program}/limits")).unwrap();
    let mut limits = read();
    for _ in 0..100 {
        if limit(&limits, "Max address space") == ["1073741824", "1073741824"] {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        limits = read();
    }
    assert_eq!(limit(&limits, "Max core file size"), ["0", "0"], "{limits}");
    assert_eq!(
        limit(&limits, "Max address space"),
        ["1073741824", "1073741824"],
        "{limits}"
    );
    let parent: i32 = status(program, "PPid:").unwrap().parse().unwrap();
    // SAFETY: a process of this test's own tree.
    unsafe { libc::kill(parent, libc::SIGKILL) };
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        status(program, "State:").is_none_or(|s| s.starts_with('Z'))
    });
    cli.kill().ok();
    cli.wait().unwrap();
    assert!(gone, "the object program outlived its parent");
}
