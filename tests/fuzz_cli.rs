//! The main job through the real binary: `clif-diff fuzz`, its findings, Ctrl-C and `--resume`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clif-diff"))
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn far_memory_campaign_files_the_jit_relocation_bug_under_one_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "fuzz",
            "--cases",
            "24",
            "--jobs",
            "2",
            "--jit-memory",
            "far",
            "--no-reduce",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Only a known bucket: not a new finding, so the campaign succeeds.
    assert_eq!(out.status.code(), Some(0), "{text}");
    let s = summary(dir.path());
    assert_eq!(s["cases"], 24);
    // One bucket, two known causes at the same site: colocated calls and colocated data
    // addresses (each known entry hides only itself).
    let findings = s["findings"].as_array().unwrap();
    let (jit, other): (Vec<_>, Vec<_>) = findings
        .iter()
        .partition(|f| f["bucket"] == "panic:cranelift-jit/src/compiled_blob.rs:142");
    let ids: Vec<&str> = jit
        .iter()
        .map(|f| {
            f["known"]
                .as_str()
                .unwrap_or_else(|| panic!("not known: {f}"))
        })
        .collect();
    assert!(ids.contains(&"jit-x64-far-colocated-reloc"), "{ids:?}");
    assert!(
        ids.iter().all(|id| [
            "jit-x64-far-colocated-reloc",
            "jit-x64-far-colocated-data-reloc"
        ]
        .contains(id)),
        "{ids:?}"
    );
    assert!(s["known_findings"].as_u64().unwrap() > 0);
    assert!(text.contains("known jit-x64-far-colocated-reloc"), "{text}");
    // The JIT's panic does not stop the comparison of the interpreter with the object path:
    // every case that panicked was still judged for them. They agree, except where another
    // known bug (one that is not about relocations) shows between them, as a finding of its
    // own beside the panic.
    for f in &other {
        assert_eq!(f["status"], "known", "{f}");
        assert!(
            f["bucket"]
                .as_str()
                .unwrap()
                .starts_with("mismatch:interp!=object"),
            "{f}"
        );
    }
}

#[test]
fn ctrl_c_ends_the_campaign_cleanly_and_resume_continues() {
    let dir = tempfile::tempdir().unwrap();
    let child = bin()
        .args(["fuzz", "--time", "120s", "--jobs", "2", "--quiet", "--out"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it run a few dozen cases (the state file is saved every 64 cases and at the end).
    std::thread::sleep(Duration::from_secs(4));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    // A liveness bound, not a performance target: Ctrl-C must not leave the campaign hanging.
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "took {:?}",
        start.elapsed()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("campaign:"), "summary printed: {stdout}");
    let s = summary(dir.path());
    let cases = s["cases"].as_u64().unwrap();
    let next = s["next_seed"].as_u64().unwrap();
    assert!(
        cases > 0 && next == cases,
        "cases {cases}, next seed {next}"
    );
    // Workers are in their own process group: Ctrl-C must not turn into crash findings.
    assert_eq!(s["verdicts"]["crash"], serde_json::Value::Null, "{s}");

    let again = bin()
        .args([
            "fuzz", "--cases", "3", "--jobs", "1", "--resume", "--quiet", "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains(&format!("resuming at seed {next}")), "{err}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("campaign.json")).unwrap())
            .unwrap();
    assert_eq!(state["next_seed"].as_u64().unwrap(), next + 3);
    assert_eq!(state["cases"].as_u64().unwrap(), cases + 3);
}
