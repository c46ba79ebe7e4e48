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

/// `clif-diff run --json FILE` (plus `extra` flags), parsed.
fn run_file_json(file: &Path, extra: &[&str]) -> Value {
    let out = Command::new(exe())
        .arg("run")
        .arg(file)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; stderr {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn run_json(file: &str) -> Value {
    run_file_json(&filetests().join(file), &[])
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

/// Every run line of every configuration in `configs` returned on the interpreter and agrees.
fn interpreter_returns_and_agrees(configs: &[Value]) {
    for c in configs {
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
fn the_interpreter_models_libcalls_on_every_target() {
    let mut configs = run_json("libcalls.clif").as_array().unwrap().clone();
    configs.extend(
        run_json("libcalls-nearest-fma.clif")
            .as_array()
            .unwrap()
            .clone(),
    );
    interpreter_returns_and_agrees(&configs);
}

/// `memory-libcalls.clif` is `test run` (upstream's interpreter cannot run it); with the
/// interpreter added, clif-diff's model of `memmove`, `memcpy`, `memset` and `memcmp` gives the
/// expected values on every target, as libc does in the JIT and the linked program.
#[test]
fn the_interpreter_models_memory_libcalls_on_every_target() {
    let file = filetests().join("memory-libcalls.clif");
    let configs = run_file_json(&file, &["--engines", "interp,jit,object"]);
    let configs = configs.as_array().unwrap();
    assert_eq!(configs.len(), 4);
    interpreter_returns_and_agrees(configs);
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

/// `clif-diff run --json FILE` (plus `extra` flags): one `(target, report)` per configuration
/// that ran (a single-target file prints its report alone).
fn reports(file: &Path, extra: &[&str]) -> Vec<(String, Value)> {
    let json = run_file_json(file, extra);
    match json {
        Value::Array(configs) => configs
            .into_iter()
            .filter(|c| c["report"].is_object())
            .map(|c| {
                (
                    c["target"].as_str().unwrap().to_string(),
                    c["report"].clone(),
                )
            })
            .collect(),
        report => vec![("-".to_string(), report)],
    }
}

fn interp_outcomes(report: &Value) -> Option<Vec<Value>> {
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

/// What makes a file fail upstream's runners although clif-diff passes it.
fn upstream_problems(file: &Path) -> Vec<String> {
    use clif_diff::case::Expect;
    use clif_diff::value::Val;
    let mut problems = Vec::new();
    let configs = clif_diff::filetest::load(file).unwrap();
    let cases: Vec<_> = configs.iter().filter_map(|c| c.run.as_ref().ok()).collect();
    let ours = reports(file, &[]);
    assert_eq!(cases.len(), ours.len(), "{}", file.display());
    let interprets = cases
        .iter()
        .any(|c| c.commands.iter().any(|x| x == "interpret"));
    let plain = if interprets {
        reports(file, &["--faults", "interp-skip-sarg-copy"])
    } else {
        Vec::new()
    };
    for (case, (target, report)) in cases.iter().zip(&ours) {
        let interpret = case.commands.iter().any(|c| c == "interpret");
        for (i, r) in report["runs"].as_array().unwrap().iter().enumerate() {
            let run = &case.runs[i];
            let outcomes = r["outcomes"].as_array().unwrap();
            // Upstream's runners fail on any run or print line that traps — which is what a
            // reproducer of a wrong trap shows: there the trap is the line's mismatch, and the
            // file expects one.
            let trap_is_the_finding = r["verdict"] == "mismatch"
                && case
                    .directive("expect")
                    .is_some_and(|e| e.starts_with("mismatch:"));
            if outcomes.iter().any(|o| o["kind"] == "trap")
                && !matches!(run.expect, Expect::Trap(_))
                && !trap_is_the_finding
            {
                problems.push(format!(
                    "[{target}] {}: traps on a run line",
                    r["invocation"]
                ));
            }
            // Upstream's interpreter cannot run a bare `; run` (it looks for `%default`).
            if interpret && matches!(run.expect, Expect::True) {
                problems.push(format!("[{target}] bare `; run` under `test interpret`"));
            }
            // clif-diff takes every NaN as equal (Cranelift does not specify NaN bits); upstream
            // compares the bits, so an expected NaN must be the NaN the engines return.
            if let Expect::Eq(expected) = &run.expect {
                for o in outcomes.iter().filter(|o| o["kind"] == "returned") {
                    let got: Vec<Val> = serde_json::from_value(o["values"].clone()).unwrap();
                    for (g, e) in got.iter().zip(expected) {
                        if g.same(e) && g.to_bytes_le() != e.to_bytes_le() {
                            problems.push(format!(
                                "[{target}] {}: expects {e}, an engine returns {g}",
                                r["invocation"]
                            ));
                        }
                    }
                }
            }
        }
        // `test interpret` promises that upstream's plain interpreter (no `sarg` copies)
        // agrees with the file.
        if interpret {
            let plain = plain.iter().find(|(t, _)| t == target).map(|(_, r)| r);
            if plain.and_then(interp_outcomes) != interp_outcomes(report) {
                problems.push(format!(
                    "[{target}] upstream's interpreter disagrees (sarg copies)"
                ));
            }
        }
    }
    problems
}

#[test]
fn reproducers_and_filetests_are_valid_for_upstreams_runners() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    let mut files = 0;
    for dir in ["corpus/regressions", "tests/filetests"] {
        for f in clif_diff::replay::corpus_files(&root.join(dir)).unwrap() {
            files += 1;
            problems.extend(
                upstream_problems(&f)
                    .into_iter()
                    .map(|p| format!("{}: {p}", f.display())),
            );
        }
    }
    assert!(files > 80, "only {files} files");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_upstream_check_catches_what_upstream_would_fail() {
    // Each of these passes clif-diff and fails an upstream runner.
    let tmp = tempfile::tempdir().unwrap();
    let bad = [
        (
            "nan.clif",
            "test run\ntarget x86_64\n\nfunction %f(f64) -> f64 {\nblock0(v0: f64):\n    return v0\n}\n; run: %f(-NaN) == NaN\n",
            "expects",
        ),
        (
            "bare.clif",
            "test interpret\ntest run\ntarget x86_64\n\nfunction %t() -> i8 {\nblock0:\n    v0 = iconst.i8 1\n    return v0\n}\n; run\n",
            "bare",
        ),
    ];
    for (name, text, what) in bad {
        let f = tmp.path().join(name);
        std::fs::write(&f, text).unwrap();
        let p = upstream_problems(&f);
        assert!(p.iter().any(|p| p.contains(what)), "{name}: {p:?}");
    }
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
