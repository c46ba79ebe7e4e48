//! The ClusterFuzzLite setup hangs together: each workflow parses, builds with the Rust builder
//! and runs the mode it is for; together they cover pull requests, batch fuzzing and corpus
//! pruning; the build script they rely on exists and builds every cargo-fuzz target.

use serde_yaml::Value;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn workflow(name: &str) -> Value {
    let path = root().join(".github/workflows").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// The `with:` map of the step of `job` that uses `action`.
fn step_with<'a>(wf: &'a Value, action: &str) -> &'a Value {
    let jobs = wf["jobs"].as_mapping().expect("jobs");
    jobs.values()
        .flat_map(|j| j["steps"].as_sequence().into_iter().flatten())
        .find(|s| {
            s["uses"].as_str().is_some_and(|u| {
                u.starts_with(&format!("google/clusterfuzzlite/actions/{action}@"))
            })
        })
        .map(|s| &s["with"])
        .unwrap_or_else(|| panic!("no {action} step"))
}

#[test]
fn workflows_cover_pull_requests_batch_fuzzing_and_pruning() {
    let mut modes = Vec::new();
    for (file, trigger) in [
        ("cflite_pr.yml", "pull_request"),
        ("cflite_batch.yml", "schedule"),
        ("cflite_cron.yml", "schedule"),
    ] {
        let wf = workflow(file);
        assert!(
            !wf["on"][trigger].is_null(),
            "{file}: not triggered by {trigger}"
        );
        assert_eq!(
            step_with(&wf, "build_fuzzers")["language"],
            "rust",
            "{file}"
        );
        let run = step_with(&wf, "run_fuzzers");
        assert!(
            run["fuzz-seconds"].as_u64().is_some_and(|s| s > 0),
            "{file}"
        );
        modes.push(run["mode"].as_str().unwrap().to_string());
    }
    assert_eq!(modes, ["code-change", "batch", "prune"]);
}

#[test]
fn the_build_script_builds_every_fuzz_target() {
    let build = root().join(".clusterfuzzlite/build.sh");
    let script = std::fs::read_to_string(&build).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert!(
        std::fs::metadata(&build).unwrap().permissions().mode() & 0o111 != 0,
        "build.sh is not executable"
    );
    let project: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join(".clusterfuzzlite/project.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(project["language"], "rust");
    let docker = std::fs::read_to_string(root().join(".clusterfuzzlite/Dockerfile")).unwrap();
    assert!(docker.contains(".clusterfuzzlite/build.sh"), "{docker}");
    let fuzz: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap()).unwrap();
    let targets: Vec<&str> = fuzz["bin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert!(!targets.is_empty());
    for t in targets {
        assert!(
            script.contains(t),
            "build.sh does not copy the `{t}` target"
        );
        assert!(
            root()
                .join("fuzz")
                .join(format!("fuzz_targets/{t}.rs"))
                .exists(),
            "no source for {t}"
        );
    }
}

/// Runs the rustc wrapper of fuzz/.cargo/config.toml on `args` with `echo` as the compiler, and
/// returns the arguments it would have passed to rustc.
fn wrapped(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("fuzz/.cargo/config.toml")).unwrap())
            .unwrap();
    // Cargo resolves a wrapper path with a slash against the directory that holds `.cargo`.
    let wrapper = root()
        .join("fuzz")
        .join(config["build"]["rustc-wrapper"].as_str().unwrap());
    let out = std::process::Command::new(&wrapper)
        .arg("echo")
        .args(args)
        .env_remove("CLIF_DIFF_FUZZ_INSTRUMENT")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", wrapper.display()));
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Every fuzz build instruments Cranelift's crates (edges, PC table) and nothing else, without
/// comparison tracing; sanitizers stay everywhere; `CLIF_DIFF_FUZZ_INSTRUMENT=all` is cargo-fuzz's.
#[test]
fn fuzz_builds_instrument_cranelift_without_comparison_tracing() {
    let sancov = [
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "-Zsanitizer=address",
    ];
    let args = |krate: &'static str| [&["--crate-name", krate][..], &sancov[..]].concat();
    for krate in ["cranelift_codegen", "regalloc2"] {
        let got = wrapped(&args(krate), &[]);
        assert!(
            got.contains(&"-Cpasses=sancov-module".to_string()),
            "{krate}: {got:?}"
        );
        assert!(got.contains(&"-Cllvm-args=-sanitizer-coverage-pc-table".to_string()));
        assert!(
            !got.iter().any(|a| a.contains("trace-compares")),
            "{krate}: {got:?}"
        );
        assert!(got.contains(&"-Zsanitizer=address".to_string()));
    }
    for krate in ["clif_diff", "cranelift_reader", "serde"] {
        let got = wrapped(&args(krate), &[]);
        let got_sancov = got
            .iter()
            .any(|a| a.contains("sancov") || a.contains("sanitizer-coverage"));
        // Every `cranelift_*` crate counts as Cranelift's (the reader too: the prefix decides).
        assert_eq!(
            got_sancov,
            krate.starts_with("cranelift_"),
            "{krate}: {got:?}"
        );
        assert!(
            got.contains(&"-Zsanitizer=address".to_string()),
            "{krate}: {got:?}"
        );
    }
    let all = wrapped(&args("serde"), &[("CLIF_DIFF_FUZZ_INSTRUMENT", "all")]);
    assert_eq!(all, args("serde"));
}
