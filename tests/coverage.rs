//! `clif-diff coverage`: the map it draws from a real campaign with the cargo-fuzz build as its
//! workers. The tests that need that build are `#[ignore]`d for a bare `cargo test` and run by
//! `scripts/test.sh` right after `scripts/fuzz-smoke.sh` has built it.

use clif_diff::coverage::map::{CoverageMap, RuleCov};
use std::path::PathBuf;
use std::process::Command;

fn clif_diff() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clif-diff"))
}

fn instrumented() -> PathBuf {
    let p = clif_diff::coverage::default_instrumented_binary(std::path::Path::new(env!(
        "CARGO_MANIFEST_DIR"
    )));
    assert!(
        p.exists(),
        "{} is missing: build it with scripts/fuzz-smoke.sh",
        p.display()
    );
    p
}

fn group<'a>(map: &'a CoverageMap, backend: &str, group: &str) -> Vec<&'a RuleCov> {
    map.backends[backend]
        .iter()
        .filter(|r| r.group == group)
        .collect()
}

#[test]
#[ignore = "needs the cargo-fuzz build (scripts/test.sh runs it after scripts/fuzz-smoke.sh)"]
fn a_tiny_campaign_maps_hit_and_unhit_rules() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("no-atomics.toml");
    std::fs::write(&cfg, "atomics = false\n").unwrap();
    let out = dir.path().join("cov");
    let run = clif_diff()
        .args([
            "coverage", "--target", "x86_64", "--cases", "40", "--time", "600s",
        ])
        .args(["--jobs", "2", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--binary")
        .arg(instrumented())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The summary names both backends and their shares.
    assert!(stdout.contains("x64: ") && stdout.contains("measurable ISLE rules hit"));
    assert!(stdout.contains("mid-end: ") && stdout.contains("top unhit: "));

    let map: CoverageMap =
        serde_json::from_slice(&std::fs::read(out.join("coverage.json")).unwrap()).unwrap();
    assert_eq!(map.target, "x86_64");
    assert!(map.requests >= 40, "{} requests", map.requests);

    // Every generated case adds integers: some `iadd` lowering rule ran.
    let iadd = group(&map, "x64", "lower.isle: Rules for `iadd`");
    assert!(iadd.len() >= 5, "{iadd:?}");
    assert!(iadd.iter().any(|r| r.hits > 0), "{iadd:?}");
    // Atomics are configured off: their lowering rules are measurable and never ran.
    for g in [
        "lower.isle: Rules for `atomic_rmw`",
        "lower.isle: Rules for `atomic_cas`",
    ] {
        let rules = group(&map, "x64", g);
        assert!(rules.iter().any(|r| r.measurable), "{g}: {rules:?}");
        assert!(rules.iter().all(|r| r.hits == 0), "{g}: {rules:?}");
    }
    // The mid-end ran too.
    assert!(map.share("mid-end").hit > 0);

    // What the workers compiled agrees with the configuration.
    let generated = &map.record.generated["x86_64"];
    assert!(generated.keys().any(|k| k.starts_with("iadd.")));
    assert!(!generated.keys().any(|k| k.starts_with("atomic")));
    assert!(map.record.lowered["x86_64"].len() > 20);
    let jit_relocs = &map.record.relocs["jit/x86_64"];
    assert!(jit_relocs.contains_key("X86CallPCRel4"), "{jit_relocs:?}");

    // Source areas: the x64 backend ran, the other backends did not.
    assert!(map.areas["cranelift-codegen/src/isa/x64"].edges_hit > 0);
    assert_eq!(map.areas["cranelift-codegen/src/isa/aarch64"].edges_hit, 0);
    let md = std::fs::read_to_string(out.join("coverage.md")).unwrap();
    assert!(md.contains("## x64: top unhit rule groups"));
    let svg = std::fs::read_to_string(out.join("coverage.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("x64 (x86_64)"));

    // A baseline that hit more: the same dumps, compared with it, fail the drop check.
    let mut base = map.clone();
    for r in base.backends.get_mut("x64").unwrap() {
        if r.measurable {
            r.hits = r.hits.max(1);
        }
    }
    let base_path = dir.path().join("base.json");
    std::fs::write(&base_path, serde_json::to_vec(&base).unwrap()).unwrap();
    let again = remap(
        &out,
        &["--max-drop", "2", "--diff", base_path.to_str().unwrap()],
    );
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("x64 fell from 100.0%"), "{err}");
    let md = std::fs::read_to_string(out.join("coverage.md")).unwrap();
    assert!(md.contains("## Against the baseline") && md.contains("Lost (x64)"));
    // Dumps are only read against the build that recorded them.
    let id = out.join("dumps/build-id");
    let real = std::fs::read_to_string(&id).unwrap();
    assert_eq!(real.trim().len(), 40, "{real}");
    std::fs::write(&id, "0123").unwrap();
    let other = remap(&out, &[]);
    assert_eq!(other.status.code(), Some(2));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("recorded by another build (id 0123)"), "{err}");
    std::fs::write(&id, real).unwrap();
    // Against itself nothing fell.
    let own = out.join("coverage.json");
    let same = remap(&out, &["--max-drop", "0", "--diff", own.to_str().unwrap()]);
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
}

/// Maps the dumps already in `out` again (`--no-run`), with `extra` arguments.
fn remap(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    clif_diff()
        .args(["coverage", "--no-run", "--target", "x86_64", "--binary"])
        .arg(instrumented())
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Runs `coverage` with `binary`, which it must refuse as bad input in one line before running
/// anything; returns the line.
fn refusal(binary: &std::path::Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let run = clif_diff()
        .args(["coverage", "--cases", "1", "--binary"])
        .arg(binary)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    // Nothing ran: no dumps were made.
    assert!(!dir.path().join("dumps").exists());
    err
}

#[test]
fn an_uninstrumented_binary_is_refused_in_one_line() {
    let err = refusal(std::path::Path::new(env!("CARGO_BIN_EXE_clif-diff")));
    assert!(err.contains("not a SanitizerCoverage build"), "{err}");
}

#[test]
fn a_missing_build_is_refused_in_one_line() {
    let err = refusal(std::path::Path::new("/nonexistent/differential"));
    assert!(err.contains("cargo +nightly fuzz build -O"), "{err}");
}
