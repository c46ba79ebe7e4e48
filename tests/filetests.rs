//! Upstream's filetest language: files with several `target` lines and `set` lines between them,
//! `test run` vs `test interpret`, libcalls, bare `; run`, `!=`, i128 literals, trap directives
//! and symbols only upstream's runner provides. `tests/filetests/` replays green on every target
//! (foreign ones under qemu; needs the tools `.ci/run` installs).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_clif-diff")
}

fn filetests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filetests")
}

/// `clif-diff replay` over the directory: (exit code, entries by "file [target]").
fn replay(dir: &Path) -> (i32, BTreeMap<String, Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("replay.json");
    let out = Command::new(exe())
        .arg("replay")
        .arg(dir)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let entries: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let by_name = entries
        .into_iter()
        .map(|e| {
            let file = Path::new(e["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let name = match e["target"].as_str() {
                Some(t) => format!("{file} [{t}]"),
                None => file,
            };
            (name, e)
        })
        .collect();
    (out.status.code().unwrap(), by_name)
}

fn run_json(file: &str) -> Value {
    let out = Command::new(exe())
        .arg("run")
        .arg(filetests().join(file))
        .arg("--json")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{file}: {e}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_filetest_directory_replays_green_on_every_target() {
    let (code, entries) = replay(&filetests());
    let failing: Vec<_> = entries
        .iter()
        .filter(|(_, e)| !matches!(e["status"].as_str(), Some("pass" | "skipped")))
        .collect();
    assert!(failing.is_empty(), "{failing:#?}");
    assert_eq!(code, 0);

    // Each target line is a configuration of its own, foreign ones included.
    for t in [
        "x86_64",
        "aarch64",
        "x86_64 has_avx has_bmi1",
        "riscv64 has_zbb",
        "s390x",
    ] {
        let e = &entries[&format!("multi-target-set-lines.clif [{t}]")];
        assert_eq!(e["status"], "pass", "{t}: {e}");
    }
    // What cannot run is skipped with its reason, never passed.
    let pulley = &entries["multi-target-set-lines.clif [pulley64]"];
    assert_eq!(pulley["status"], "skipped");
    assert!(
        pulley["why"].as_str().unwrap().contains("Pulley"),
        "{pulley}"
    );
    for t in ["x86_64", "aarch64"] {
        let e = &entries[&format!("undefined-runtime-symbol.clif [{t}]")];
        assert_eq!(e["status"], "skipped", "{e}");
        assert!(
            e["why"]
                .as_str()
                .unwrap()
                .contains("%__cranelift_runtime_only is a symbol of upstream's test runtime"),
            "{e}"
        );
    }
    // Every file of the directory ran on at least one target.
    for f in std::fs::read_dir(filetests()).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            entries.keys().any(|k| k.starts_with(&name)),
            "{name} was not replayed"
        );
    }
}

#[test]
fn set_lines_apply_to_the_targets_below_them() {
    let configs = run_json("multi-target-set-lines.clif");
    let configs = configs.as_array().unwrap();
    assert_eq!(configs.len(), 6);
    assert_eq!(configs[5]["target"], "pulley64");
    assert!(configs[5]["skipped"].is_string());
    // Upstream's reading: a target runs with every `set` line above it, the last one winning.
    let settings = |i: usize| -> Vec<&str> {
        configs[i]["settings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect()
    };
    assert_eq!(settings(0), ["opt_level=none"]);
    assert_eq!(settings(1), ["opt_level=none"]);
    assert_eq!(settings(2), ["opt_level=none", "opt_level=speed"]);
    assert_eq!(settings(4), ["opt_level=none", "opt_level=speed"]);
}

#[test]
fn the_interpreter_models_libcalls_on_every_target() {
    let mut configs = run_json("libcalls.clif").as_array().unwrap().clone();
    configs.extend(
        run_json("libcalls-nearest-fma.clif")
            .as_array()
            .unwrap()
            .clone(),
    );
    for c in &configs {
        let report = &c["report"];
        let engines: Vec<&str> = report["engines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        let interp = engines.iter().position(|k| *k == "interp").unwrap();
        for run in report["runs"].as_array().unwrap() {
            let o = &run["outcomes"][interp];
            assert_eq!(o["kind"], "returned", "{}: {run}", c["target"]);
            assert_eq!(run["verdict"], "agree", "{}: {run}", c["target"]);
        }
    }
}

#[test]
fn a_run_only_file_does_not_consult_the_interpreter() {
    for c in run_json("run-only-native-oracle.clif").as_array().unwrap() {
        let kinds: Vec<&str> = c["report"]["engines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["jit", "object"], "{}", c["target"]);
    }
}

/// Interpreter outcomes of `file` as `clif-diff run --json` reports them (plus `extra` flags).
fn interp_outcomes(file: &Path, extra: &[&str]) -> Option<Vec<Value>> {
    let out = Command::new(exe())
        .arg("run")
        .arg(file)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).ok()?;
    let interp = report["engines"]
        .as_array()?
        .iter()
        .position(|e| e["kind"] == "interp")?;
    Some(
        report["runs"]
            .as_array()?
            .iter()
            .map(|r| r["outcomes"][interp].clone())
            .collect(),
    )
}

#[test]
fn the_regression_corpus_is_valid_for_upstreams_runners() {
    use clif_diff::case::{Expect, load};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions");
    let mut checked_interp = 0;
    for f in clif_diff::replay::corpus_files(&dir).unwrap() {
        let case = load(&f).unwrap();
        // Upstream's runners fail on any run or print line that traps: a trap is said by an
        // `expect-trap` directive in place of the line.
        let out = Command::new(exe())
            .arg("run")
            .arg(&f)
            .arg("--json")
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        for (i, r) in report["runs"].as_array().unwrap().iter().enumerate() {
            let traps = r["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["kind"] == "trap");
            if traps {
                assert!(
                    matches!(case.runs[i].expect, Expect::Trap(_)),
                    "{}: {} traps on a run or print line",
                    f.display(),
                    r["invocation"]
                );
            }
        }
        // `test interpret` promises that upstream's plain interpreter (no `sarg` copies)
        // agrees with the file.
        if case.commands.iter().any(|c| c == "interpret") {
            let ours = interp_outcomes(&f, &[]);
            let plain = interp_outcomes(&f, &["--faults", "interp-skip-sarg-copy"]);
            assert_eq!(ours, plain, "{}", f.display());
            checked_interp += 1;
        }
    }
    assert!(
        checked_interp > 10,
        "only {checked_interp} `test interpret` files"
    );
}

#[test]
fn a_wrong_vector_expectation_is_a_mismatch_on_every_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("wrong.clif");
    let text = std::fs::read_to_string(filetests().join("simd-lanes.clif"))
        .unwrap()
        .replace("== [5 12 21 -32]", "== [5 12 21 32]");
    std::fs::write(&f, text).unwrap();
    let out = Command::new(exe())
        .arg("run")
        .arg(&f)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let configs: Value = serde_json::from_slice(&out.stdout).unwrap();
    for c in configs.as_array().unwrap() {
        let run = c["report"]["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["invocation"]
                    .as_str()
                    .unwrap()
                    .starts_with("%mul_i32x4([1 2 3 4]")
            })
            .unwrap();
        // The engines that executed agree with each other and not with the file.
        assert!(
            run["bucket"]
                .as_str()
                .unwrap()
                .starts_with("mismatch:expected!=interp="),
            "{}: {run}",
            c["target"]
        );
    }
}

#[test]
fn exceptions_are_unsupported_in_the_interpreter_not_a_panic() {
    for c in run_json("exceptions-try-call.clif").as_array().unwrap() {
        let report = &c["report"];
        assert_eq!(report["verdict"], "agree", "{}: {report}", c["target"]);
        let o = &report["runs"][0]["outcomes"][0];
        assert_eq!(o["kind"], "unsupported", "{o}");
        assert!(o["reason"].as_str().unwrap().contains("`try_call`"), "{o}");
    }
}
