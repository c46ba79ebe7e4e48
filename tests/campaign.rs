//! Campaign robustness: crashing, hanging and killed workers leave every finding on disk.

use clif_diff::campaign;
use clif_diff::campaign::findings::FindingStore;
use clif_diff::known::KnownBuckets;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;
use common::{case, config};

/// Replays a stored finding through the binary, from its `.clif` alone.
fn replayed_bucket(file: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clif-diff"))
        .args(["run", "--json"])
        .arg(file)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["bucket"].as_str().unwrap().to_string()
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
    let result =
        campaign::run(&cfg, &source, store, Arc::new(AtomicBool::new(false)), None).unwrap();
    assert_eq!(result.stats.cases, 6);
    assert_eq!(result.state.next_seed, 6);
    assert_eq!(result.stats.verdicts.get("agree"), Some(&2));
    let buckets = result.store.buckets();
    let names: Vec<&str> = buckets.iter().map(|b| b.bucket.as_str()).collect();
    // The interpreter panics on the wild `notrap` load (a known limit); fuel runs out on the loop.
    assert!(names.contains(&"timeout:interp"), "{names:?}");
    assert_eq!(buckets.len(), 2, "{names:?}");
    for b in &buckets {
        assert_eq!(b.hits, 2, "{}", b.bucket);
        let hits = std::fs::read_to_string(b.dir.join("hits")).unwrap();
        assert_eq!(hits.trim(), "2");
        assert!(b.dir.join("report.json").exists());
        assert_eq!(replayed_bucket(&b.dir.join("case.clif")), b.bucket);
    }
    // A second store over the same directory sees the same buckets (nothing only in memory).
    let reopened = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
    assert_eq!(reopened.buckets().len(), 2);
    let state = campaign::load_state(dir.path()).unwrap();
    assert_eq!(state.next_seed, 6);
}
