//! The settings axis end to end: engine specs with overrides (`object[opt_level=none]`,
//! `jit[regalloc_algorithm=single_pass]`) are separate columns the oracle compares, and the
//! overrides really reach the ISA each engine compiles for.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/regressions")
        .join(name)
}

fn run(file: &Path, engines: &str) -> (Output, Option<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_clif-diff"))
        .arg("run")
        .arg(file)
        .args(["--json", "--engines", engines])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).ok();
    (out, json)
}

const AXIS: &str = "interp,jit,object,\
    jit[opt_level=none],jit[opt_level=speed],jit[opt_level=speed_and_size],\
    jit[regalloc_algorithm=backtracking],jit[regalloc_algorithm=single_pass],\
    object[opt_level=none],object[opt_level=speed_and_size],\
    object[regalloc_algorithm=single_pass],object[opt_level=none,regalloc_algorithm=single_pass]";

#[test]
fn every_opt_level_and_allocator_runs_as_its_own_column() {
    let (out, report) = run(&corpus("settings-axis.clif"), AXIS);
    let report = report.expect("JSON report");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let engines = report["engines"].as_array().unwrap();
    assert_eq!(engines.len(), 12);
    for r in report["runs"].as_array().unwrap() {
        assert_eq!(r["verdict"], "agree", "{r:#}");
        for (e, o) in r["outcomes"].as_array().unwrap().iter().enumerate() {
            // Every column really executed on the host: none is skipped as unsupported.
            let kind = o["kind"].as_str().unwrap();
            assert!(
                kind == "returned" || kind == "trap",
                "engine {}: {o:#}",
                engines[e]
            );
        }
    }
}

#[test]
fn overrides_reach_the_object_and_jit_isas() {
    // s390x returns i128 in memory only with enable_multi_ret_implicit_sret: the plain engines
    // refuse to compile, the overridden ones compile (and the object one runs under qemu).
    let (out, report) = run(
        &corpus("s390x-i128-return-limit.clif"),
        "interp,object,object[enable_multi_ret_implicit_sret=true],jit[enable_multi_ret_implicit_sret=true]",
    );
    let report = report.expect("JSON report");
    assert_eq!(out.status.code(), Some(1), "the plain object column errs");
    let row = &report["runs"][0]["outcomes"];
    assert_eq!(row[0]["values"][0]["I128"], "1");
    assert_eq!(row[1]["kind"], "error");
    assert_eq!(row[1]["phase"], "compile");
    assert_eq!(row[2]["values"][0]["I128"], "1", "{row:#}");
    // A foreign JIT that compiled and finalized says so; one that did not would say why.
    assert_eq!(row[3]["kind"], "unsupported", "{row:#}");
    assert!(row[3]["reason"].as_str().unwrap().contains("not run"));
    // The bucket names the column that failed, settings included.
    let (_, report) = run(
        &corpus("s390x-i128-return-limit.clif"),
        "interp,object[opt_level=none]",
    );
    let bucket = report.unwrap()["bucket"].as_str().unwrap().to_string();
    assert!(
        bucket.starts_with("error:object[opt_level=none]:compile:"),
        "{bucket}"
    );
}

#[test]
fn a_bad_override_is_bad_input_not_a_finding() {
    for engines in ["interp,object[opt_level=fastest]", "jit[no_such_flag=1]"] {
        let (out, _) = run(&corpus("settings-axis.clif"), engines);
        assert_eq!(out.status.code(), Some(2), "{engines}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("engine `"), "{err}");
    }
}
