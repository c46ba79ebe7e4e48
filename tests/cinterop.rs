//! C interop end to end through `clif-diff abi`: Cranelift against `cc`, both directions.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn abi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clif-diff"))
        .arg("abi")
        .args(args)
        .output()
        .unwrap()
}

/// Runs `abi` with `--json` and returns the exit code and the per-case rows.
fn abi_json(args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("abi.json");
    let out = abi(&[args, &["--json", json.to_str().unwrap()]].concat());
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "no JSON; stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), serde_json::from_str(&text).unwrap())
}

const SIG: &str = "(i8 sext, i64, f32, i64 sarg(24), i16 uext, i128) -> i32, f64";

#[test]
fn a_broken_c_expectation_is_a_mismatch_naming_the_argument() {
    for (arg, item) in [
        (0, "arg 0 (i8 sext)"),
        (2, "arg 2 (f32)"),
        (3, "arg 3 (i64 sarg(24)) word 0"),
        (5, "arg 5 (i128)"),
    ] {
        let (code, rows) = abi_json(&["--sig", SIG, "--fault-c-arg", &arg.to_string()]);
        assert_eq!(code, Some(1), "a mismatch is a finding");
        let outcome = &rows[0]["outcome"];
        assert_eq!(outcome["verdict"], "mismatch", "{outcome:#}");
        let m = outcome["mismatches"].as_array().unwrap();
        // Exactly the broken expectation, in the direction whose C side holds it.
        assert_eq!(m.len(), 1, "{outcome:#}");
        assert_eq!(m[0]["direction"], "clif->c");
        assert_eq!(m[0]["item"], item);
        assert_ne!(m[0]["expected"], m[0]["got"]);
    }
    // Without the fault the same signature agrees, with every value checked.
    let (code, rows) = abi_json(&["--sig", SIG]);
    assert_eq!(code, Some(0));
    let checks = rows[0]["outcome"]["checks"].as_u64().unwrap();
    // 6 args (+3 struct words -1, +1 i16 extension) and 2 results, both directions, plus the
    // struct-copy checks: anything much smaller means values went unchecked.
    assert!(checks >= 20, "{checks} checks");
}

#[test]
fn the_regression_signatures_keep_their_buckets() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/abi/regressions.txt");
    for settings in [
        &[][..],
        &["--set", "opt_level=none"],
        &["--set", "regalloc_algorithm=single_pass"],
    ] {
        let out = abi(&[&["--replay", file.to_str().unwrap()], settings].concat());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{settings:?}: {stdout}");
        assert!(stdout.contains(", 0 changed"), "{stdout}");
    }
}

#[test]
fn the_known_divergences_are_seen_in_both_directions() {
    for (target, sig, item) in [
        (
            "x86_64",
            "(i64, i64, i64, i64, i64, i128, i64) -> i64",
            "arg 6 (i64)",
        ),
        (
            "aarch64",
            "(i64, i64, i64, i64, i64, i64, i64, i128, i64) -> i64",
            "arg 8 (i64)",
        ),
        (
            "riscv64",
            "(f64, f64, f64, f64, f64, f64, f64, f64, i64, i64, i64, i64, i64, i64, i64, f64) -> i64",
            "arg 15 (f64)",
        ),
        (
            "riscv64",
            "(i64, i64, i64, i64, i64, i64, i64, i64, i64, i128) -> i64",
            "arg 9 (i128)",
        ),
    ] {
        let (code, rows) = abi_json(&["--target", target, "--sig", sig]);
        assert_eq!(code, Some(0), "{target}: a known bug is not a new finding");
        let m = rows[0]["outcome"]["mismatches"].as_array().unwrap();
        for dir in ["c->clif", "clif->c"] {
            assert!(
                m.iter().any(|m| m["direction"] == dir && m["item"] == item),
                "{target} {dir}: {m:?}"
            );
        }
    }
}

#[test]
fn aarch64_under_qemu_checks_and_names_arguments_too() {
    let sig = "(i8, i128, f32, i64, f64) -> f64, f64";
    let (code, rows) = abi_json(&["--target", "aarch64", "--sig", sig]);
    assert_eq!(code, Some(0), "{rows:?}");
    assert_eq!(rows[0]["outcome"]["verdict"], "agree");
    let (code, rows) = abi_json(&["--target", "aarch64", "--sig", sig, "--fault-c-arg", "1"]);
    assert_eq!(code, Some(1));
    let m = rows[0]["outcome"]["mismatches"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["item"], "arg 1 (i128)");
    // Signatures outside AAPCS64's C-expressible domain are refused as bad input.
    let out = abi(&["--target", "aarch64", "--sig", "(i8 sext)"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn random_signatures_agree_or_hit_a_known_divergence() {
    for target in ["x86_64", "aarch64", "riscv64", "s390x"] {
        let (code, rows) = abi_json(&[
            "--target", target, "--cases", "120", "--seed", "42", "--batch", "60",
        ]);
        assert_eq!(code, Some(0), "{target}: no new finding");
        assert_eq!(rows.len(), 120);
        let agree = rows
            .iter()
            .filter(|r| r["outcome"]["verdict"] == "agree")
            .count();
        assert!(agree > 100, "{target}: {agree} of 120 agree");
    }
}

#[test]
fn bad_signatures_are_bad_input() {
    for sig in ["(i64 sarg(16))", "() -> i64, i64, i64", "(i7)"] {
        let out = abi(&["--sig", sig]);
        assert_eq!(out.status.code(), Some(2), "{sig}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn generator_signatures_run_through_c_too() {
    let (code, rows) = abi_json(&["--from-generator", "--cases", "60", "--seed", "3"]);
    assert_eq!(code, Some(0), "no new finding");
    assert_eq!(rows.len(), 60);
    // The generator's lists are long: stack arguments must be common.
    let long = rows
        .iter()
        .filter(|r| r["case"]["sig"]["params"].as_array().unwrap().len() > 8)
        .count();
    assert!(long > 10, "{long} of 60 have more than 8 params");
}

/// Cranelift compiles interop cases in a sandbox worker: a crash inside it (planted: an abort
/// while compiling one case) costs that case alone, and the rest of its batch is still tested.
#[test]
fn a_worker_that_dies_compiling_one_case_loses_only_that_case() {
    let sigs = [
        "(i64, i32) -> i64",
        "(i8 sext, f64) -> i32",
        "(i16 uext) -> i16",
        "(f32, f32) -> f32",
        "(i64 sarg(24)) -> i64",
    ];
    let victim = sigs[1];
    let mut args = vec!["--fault-worker-dies-on", victim];
    for s in &sigs {
        args.extend(["--sig", s]);
    }
    let (code, rows) = abi_json(&args);
    assert_eq!(code, Some(1), "a crash is a finding");
    assert_eq!(rows.len(), sigs.len());
    for row in &rows {
        let outcome = &row["outcome"];
        if row["signature"] == victim {
            assert_eq!(outcome["verdict"], "crash", "{row:#}");
            let detail = outcome["detail"].as_str().unwrap();
            assert!(
                detail.contains("worker died") && detail.contains("SIGABRT"),
                "{detail}"
            );
        } else {
            assert_eq!(outcome["verdict"], "agree", "{row:#}");
            assert!(outcome["checks"].as_u64().unwrap() > 0);
        }
    }
}
