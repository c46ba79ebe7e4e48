//! Foreign ISAs end to end: `clif-diff run` on aarch64/riscv64/s390x cases compiles with
//! Cranelift, links with the cross gcc, runs under qemu-user, and compares with the interpreter.
//! Needs the Debian cross compilers and qemu-user (installed by `.ci/run`).

use clif_diff::case::load;
use clif_diff::engine::{EngineKind, EngineSpec, RunOptions};
use clif_diff::outcome::Outcome;
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FOREIGN: [&str; 3] = ["aarch64", "riscv64", "s390x"];

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_clif-diff")
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/regressions")
        .join(name)
}

fn run_json(file: &Path, extra: &[&str]) -> (Output, Value) {
    let out = Command::new(exe())
        .arg("run")
        .arg(file)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON report ({e}); stderr: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

/// The outcome of engine `e` on the run line whose invocation starts with `call`.
fn outcome<'a>(report: &'a Value, call: &str, e: usize) -> &'a Value {
    let run = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["invocation"].as_str().unwrap().starts_with(call))
        .unwrap_or_else(|| panic!("no run line {call}"));
    &run["outcomes"][e]
}

fn trap(o: &Value) -> Option<&str> {
    (o["kind"] == "trap").then(|| o["code"].as_str().unwrap())
}

#[test]
fn qemu_run_objects_agree_with_the_interpreter_on_every_foreign_isa() {
    for arch in FOREIGN {
        let file = corpus(&format!("{arch}-abi-traps.clif"));
        let (out, report) = run_json(&file, &["--engines", "interp,object"]);
        assert_eq!(out.status.code(), Some(0), "{arch}: {report:#}");
        for r in report["runs"].as_array().unwrap() {
            assert_eq!(r["verdict"], "agree", "{arch}: {r:#}");
            // The object engine really ran: its answer is a value or a trap, never a shrug.
            let kind = r["outcomes"][1]["kind"].as_str().unwrap();
            assert!(kind == "returned" || kind == "trap", "{arch}: {r:#}");
        }
        // Traps map to the interpreter's codes on every target (s390x reports the PC after the
        // trap instruction, which the driver moves back onto the recorded site).
        for (call, code) in [
            ("%user_trap(1)", "user1"),
            ("%trapnz(3)", "user7"),
            ("%divs(7, 0)", "int_divz"),
            ("%divs(-2147483648, -1)", "int_ovf"),
            ("%udivs(7, 0)", "int_divz"),
            ("%oob(0)", "heap_oob"),
        ] {
            assert_eq!(trap(outcome(&report, call, 1)), Some(code), "{arch} {call}");
            assert_eq!(trap(outcome(&report, call, 0)), Some(code), "{arch} {call}");
        }
    }
}

#[test]
fn big_endian_arguments_and_results_keep_their_value() {
    // Truncation tells byte orders apart where an identity function would not: if arguments were
    // written little-endian and read big-endian, `ireduce.i8 0x12345678` would not be 0x78.
    let (_, report) = run_json(&corpus("s390x-abi-traps.clif"), &["--engines", "object"]);
    let narrow = outcome(&report, "%narrow(305419896)", 0);
    assert_eq!(narrow["kind"], "returned", "{narrow:#}");
    assert_eq!(narrow["values"][0]["I8"], 0x78);
    assert_eq!(narrow["values"][1]["I16"], 0x5678);
    let wide = outcome(
        &report,
        "%wide(1339673755198158349044581307228491536, 1)",
        0,
    );
    assert_eq!(
        wide["values"][0]["I128"],
        (0x0102030405060708_090a0b0c0d0e0f11i128).to_string()
    );
    let float = outcome(&report, "%floats(0x1.000000p0", 0);
    assert_eq!(float["values"][0]["F64"], 4.0f64.to_bits());
    assert_eq!(float["values"][1]["F32"], 3.0f32.to_bits());
}

#[test]
fn a_segfault_is_a_classified_crash_and_the_next_run_line_still_runs() {
    for arch in FOREIGN {
        let (out, report) = run_json(&corpus(&format!("{arch}-segfault.clif")), &[]);
        assert_eq!(out.status.code(), Some(1), "{arch}: a crash is a finding");
        assert_eq!(report["bucket"], "crash:object:SIGSEGV", "{arch}");
        let crash = outcome(&report, "%segv(0)", 0);
        assert_eq!(crash["signal"], "SIGSEGV", "{arch}: {crash:#}");
        assert!(
            crash["detail"].as_str().unwrap().contains("cd0_segv+"),
            "{arch}: the fault is attributed to the function: {crash:#}"
        );
        let after = outcome(&report, "%after(41)", 0);
        assert_eq!(after["values"][0]["I32"], 42, "{arch}: {after:#}");
    }
}

#[test]
fn foreign_jit_is_finalized_with_the_far_provider_and_classified() {
    // aarch64 calls get a veneer (the fix of wasmtime#8852): finalize succeeds, nothing runs.
    let (out, report) = run_json(&corpus("aarch64-jit-far-colocated-call.clif"), &[]);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let jit = outcome(&report, "%main(41)", 1);
    assert_eq!(jit["kind"], "unsupported", "{jit:#}");
    assert!(jit["reason"].as_str().unwrap().contains("not run"));
    // Without the far provider no relocation is out of range either.
    let (out, _) = run_json(
        &corpus("riscv64-jit-far-colocated-call.clif"),
        &["--jit-memory", "system"],
    );
    assert_eq!(out.status.code(), Some(0));
    // riscv64 calls have no veneer: the relocation overflows in finalize, a caught panic.
    let (out, report) = run_json(&corpus("riscv64-jit-far-colocated-call.clif"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let jit = outcome(&report, "%main(41)", 1);
    assert_eq!(jit["kind"], "panic", "{jit:#}");
    assert_eq!(jit["phase"], "finalize");
    assert_eq!(jit["location"], "cranelift-jit/src/compiled_blob.rs:242");
    // The object path is unaffected and still answers.
    assert_eq!(outcome(&report, "%main(41)", 2)["values"][0]["I64"], 42);
}

#[test]
fn a_missing_cross_tool_is_a_one_line_bad_input_error() {
    for (var, file, names) in [
        (
            "CLIF_DIFF_QEMU_RISCV64",
            "riscv64-abi-traps.clif",
            ["qemu-user", "riscv64"],
        ),
        (
            "CLIF_DIFF_CC_AARCH64",
            "aarch64-abi-traps.clif",
            ["gcc-aarch64-linux-gnu", "aarch64"],
        ),
    ] {
        let out = Command::new(exe())
            .env(var, "/nonexistent/tool")
            .arg("run")
            .arg(corpus(file))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        for n in names {
            assert!(err.contains(n), "{var}: {err}");
        }
        assert!(out.stdout.is_empty(), "no engine ran");
    }
}

#[test]
fn a_missing_cross_tool_is_skipped_inside_engines() {
    // Campaign workers do not preflight: the object engine itself must say it cannot run.
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("clif-diff");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nCLIF_DIFF_QEMU_S390X=/nonexistent/qemu-s390x exec {} \"$@\"\n",
            exe()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut sandbox = Sandbox::new(WorkerCommand { exe: wrapper });
    let case = load(&corpus("s390x-abi-traps.clif")).unwrap();
    let engines = [
        EngineSpec::plain(EngineKind::Interp),
        EngineSpec::plain(EngineKind::Object),
    ];
    let outcomes = sandbox
        .run(&case, &engines, &RunOptions::default())
        .unwrap()
        .outcomes;
    assert!(matches!(outcomes[0][0], Outcome::Returned { .. }));
    for o in &outcomes[1] {
        match o {
            // Skipped, not unsupported: the engine could run this case, the machine cannot.
            Outcome::Skipped { reason } => assert!(reason.contains("qemu-s390x"), "{reason}"),
            other => panic!("expected skipped, got {other}"),
        }
    }
}

/// Without the cross toolchains, `replay` cannot judge the foreign reproducers: they are
/// SKIPPED with the missing tool named — never FIXED because only the interpreter ran — and the
/// replay fails only for real regressions.
#[test]
fn replay_without_cross_tools_skips_and_says_which_tool() {
    let out = Command::new(exe())
        .env("CLIF_DIFF_CC_AARCH64", "/nonexistent/aarch64-gcc")
        .env("CLIF_DIFF_QEMU_RISCV64", "/nonexistent/qemu-riscv64")
        .env("CLIF_DIFF_QEMU_S390X", "/nonexistent/qemu-s390x")
        .arg("replay")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("FIXED"), "{stdout}");
    assert!(!stdout.contains("REGRESSION"), "{stdout}");
    let skipped: Vec<&str> = stdout.lines().filter(|l| l.contains("SKIPPED")).collect();
    // Every foreign file whose object path was asked for is skipped, naming its tool.
    for (arch, tool) in [
        ("aarch64-apple-stack-arg-ext", "aarch64-gcc"),
        ("riscv64-single-pass", "qemu-riscv64"),
        ("s390x-abi-traps", "qemu-s390x"),
    ] {
        let line = skipped
            .iter()
            .find(|l| l.contains(arch))
            .unwrap_or_else(|| panic!("{arch} not skipped:\n{stdout}"));
        assert!(line.contains(tool), "{line}");
    }
    // Host files still pass.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("seed-8852-sarg-call") && l.ends_with("pass")),
        "{stdout}"
    );
}

/// A case for the host with an ISA feature this CPU lacks is compiled (and finalized, and
/// linked) but not run: the native engines report it as skipped, naming the feature — a SIGILL
/// would be no Cranelift bug. (On a CPU with every feature listed there is nothing to skip.)
#[test]
fn features_the_cpu_lacks_are_compiled_not_run() {
    use clif_diff::target::host_lacks;
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let flags = [
        "has_avx512f",
        "has_avx512vl",
        "has_avx512dq",
        "has_avx512bitalg",
        "has_avx512vbmi",
    ];
    let text = |f: &str| {
        format!(
            "test interpret\ntest run\ntarget x86_64 {f}\n\nfunction %f(i64) -> i64 system_v {{\nblock0(v0: i64):\n    return v0\n}}\n; run: %f(1) == 1\n"
        )
    };
    let Some(missing) = flags
        .iter()
        .find(|f| !host_lacks(&clif_diff::case::TestCase::parse(&text(f)).unwrap()).is_empty())
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lacking.clif");
    std::fs::write(&file, text(missing)).unwrap();
    let (out, report) = run_json(&file, &[]);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for e in [1, 2] {
        let o = outcome(&report, "%f", e);
        assert_eq!(o["kind"], "skipped", "{o:#}");
        assert!(o["reason"].as_str().unwrap().contains(missing), "{o:#}");
    }
    // The run line's expectation and the interpreter are still two voices.
    assert_eq!(report["verdict"], "agree");
}
