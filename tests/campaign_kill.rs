//! Campaign robustness against a worker killed from outside. A test binary of its own: it kills
//! child processes of the test process, which must not belong to other tests.

use clif_diff::campaign;
use clif_diff::campaign::findings::FindingStore;
use clif_diff::case::load;
use clif_diff::known::KnownBuckets;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;
use common::{case, config};
use std::time::Duration;

fn worker_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid: i32 = stat
            .rsplit(") ")
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == me && cmd.contains("worker") {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn a_worker_killed_mid_case_is_replaced_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let looping = case("tests/cases/loop-forever.clif");
    let source = move |_seed: u64| looping.clone();
    let mut cfg = config(dir.path(), 2, 1);
    cfg.plan.opts.timeout_ms = 4000;
    let killer = std::thread::spawn(|| {
        // Wait for the worker to be deep in the first case, then kill it.
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(pid) = worker_children().first() {
                std::thread::sleep(Duration::from_millis(800));
                unsafe { libc::kill(*pid, libc::SIGKILL) };
                return true;
            }
        }
        false
    });
    let store = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
    let result = campaign::run(&cfg, &source, store, Arc::new(AtomicBool::new(false))).unwrap();
    assert!(killer.join().unwrap(), "no worker to kill");
    assert_eq!(result.stats.cases, 2);
    assert!(result.stats.respawns >= 1);
    let buckets = result.store.findings();
    let total: u64 = buckets.iter().map(|b| b.hits).sum();
    assert_eq!(
        total, 2,
        "both cases are findings (one killed, one timed out)"
    );
    for b in &buckets {
        assert!(load(&b.dir.join("case.clif")).is_ok());
    }
    assert!(
        buckets.iter().any(|b| b.bucket.ends_with(":SIGKILL")),
        "the killed case is recorded as killed: {buckets:?}"
    );
}
