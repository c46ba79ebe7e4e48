//! Campaign robustness: crashing, hanging and killed workers leave every finding on disk.

use clif_diff::campaign;
use clif_diff::campaign::findings::FindingStore;
use clif_diff::known::KnownBuckets;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;
use common::{case, config};

/// Replays a stored finding through the binary, from its `.clif` alone: every bucket it shows.
fn replayed_bucket(file: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clif-diff"))
        .args(["run", "--json"])
        .arg(file)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["bucket"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn segfaults_and_hangs_are_recorded_and_the_campaign_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        case("corpus/regressions/seed-8852-sarg-call.clif"),
        case("corpus/regressions/segfault-notrap-load.clif"),
        case("tests/cases/loop-forever.clif"),
    ];
    let source = |seed: u64| {
        // Campaign plans come from the command line, not from case directives.
        cases[(seed % 3) as usize].clone()
    };
    let cfg = config(dir.path(), 6, 2);
    let store = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
    let result = campaign::run(&cfg, &source, store, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(result.stats.cases, 6);
    assert_eq!(result.state.next_seed, 6);
    assert_eq!(result.stats.verdicts.get("agree"), Some(&2));
    // The loop never ends on any engine: a hang of the case, kept on disk, not a finding.
    assert_eq!(result.stats.verdicts.get("hang"), Some(&2));
    assert_eq!(
        std::fs::read_dir(dir.path().join("hangs")).unwrap().count(),
        2
    );
    let findings = result.store.findings();
    let names: Vec<&str> = findings.iter().map(|b| b.bucket.as_str()).collect();
    // The wild `notrap` load: both native engines crash, and — judged on its own, not hidden
    // behind the crash — the interpreter panics (a documented limit, but this store is told
    // of no known entries).
    assert_eq!(
        names,
        [
            "crash:jit=object:SIGSEGV",
            "panic:cranelift-interpreter/src/step.rs:196"
        ],
        "{names:?}"
    );
    // A panic location names its cause: the second hit counts on the finding itself.
    assert_eq!(findings[1].hits, 2);
    let f = &findings[0];
    let hits = std::fs::read_to_string(f.dir.join("hits")).unwrap();
    assert_eq!(hits.trim(), "1");
    assert!(f.dir.join("report.json").exists());
    assert!(replayed_bucket(&f.dir.join("case.clif")).contains(&f.bucket));
    // The second crash has the same bucket, but a crash bucket does not name its cause: the
    // hit waits on disk for triage to decide whether it is the same bug.
    assert_eq!(result.store.untriaged_hits().get(&f.bucket), Some(&1));
    let samples = result.store.untriaged_samples();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert!(replayed_bucket(&samples[0].1).contains(&f.bucket));
    // A second store over the same directory sees the same (nothing only in memory).
    let reopened = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
    assert_eq!(reopened.findings().len(), 2);
    assert_eq!(reopened.untriaged_hits().get(&f.bucket), Some(&1));
    let state = campaign::load_state(dir.path()).unwrap();
    assert_eq!(state.next_seed, 6);
}
