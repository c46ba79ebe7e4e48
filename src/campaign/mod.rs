//! Campaigns: generate, run, judge and record cases until the budget is spent.
//!
//! `jobs` threads each own a [`Sandbox`] (one long-lived worker process, replaced when it dies)
//! and pull seeds from a shared counter. Every finding is written to the [`FindingStore`] before
//! it is counted, so a campaign can be interrupted at any moment — Ctrl-C (the `stop` flag), a
//! killed worker, a hanging case — without losing anything. The lowest seed not yet finished is
//! saved in `DIR/campaign.json`, which `--resume` continues from.

pub mod findings;
pub mod progress;
pub mod reduce_new;

use crate::case::TestCase;
use crate::harness::{Plan, check};
use crate::oracle::Report;
use crate::sandbox::{Sandbox, WorkerCommand};
use anyhow::Result;
use findings::{FindingStore, Recorded};
use progress::{Progress, Stats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where cases come from: the generator, or anything else that maps a seed to a case.
pub trait CaseSource: Sync {
    fn case(&self, seed: u64) -> TestCase;
}

impl<F: Fn(u64) -> TestCase + Sync> CaseSource for F {
    fn case(&self, seed: u64) -> TestCase {
        self(seed)
    }
}

/// Called once per new bucket that is not known, after the finding is on disk (to reduce it).
pub type NewBucketHook<'a> = dyn Fn(&mut Sandbox, &TestCase, &Plan, &Report, &Path) + Sync + 'a;

pub struct CampaignConfig {
    pub time: Option<Duration>,
    pub cases: Option<u64>,
    pub jobs: usize,
    pub plan: Plan,
    pub first_seed: u64,
    pub out: PathBuf,
    pub worker: WorkerCommand,
    /// Draw a progress bar (else periodic log lines).
    pub progress: bool,
    /// Cases per batch: one object file, one link and one driver process for all of them.
    pub batch: usize,
}

/// Persistent campaign state, for `--resume`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Every seed below this one has been run.
    pub next_seed: u64,
    pub cases: u64,
}

pub fn state_path(out: &Path) -> PathBuf {
    out.join("campaign.json")
}

pub fn load_state(out: &Path) -> Option<State> {
    let text = std::fs::read_to_string(state_path(out)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Tracks which seeds are done, to know the resumable low-water mark.
struct SeedLog {
    low: u64,
    done_above: BTreeSet<u64>,
}

impl SeedLog {
    fn done(&mut self, seed: u64) {
        self.done_above.insert(seed);
        while self.done_above.remove(&self.low) {
            self.low += 1;
        }
    }
}

pub struct Outcome {
    pub stats: Stats,
    pub store: FindingStore,
    pub state: State,
    pub interrupted: bool,
}

/// Runs a campaign until the budget is spent or `stop` is set.
pub fn run(
    cfg: &CampaignConfig,
    source: &dyn CaseSource,
    store: FindingStore,
    stop: Arc<AtomicBool>,
    on_new_bucket: Option<&NewBucketHook>,
) -> Result<Outcome> {
    let start = Instant::now();
    let next = AtomicU64::new(cfg.first_seed);
    let issued = AtomicU64::new(0);
    let log = Mutex::new(SeedLog {
        low: cfg.first_seed,
        done_above: BTreeSet::new(),
    });
    let stats = Mutex::new(Stats::new(&cfg.plan.engines));
    let progress = Progress::new(cfg.time, cfg.cases, cfg.progress);
    let prior = load_state(&cfg.out).map(|s| s.cases).unwrap_or(0);
    let save_state = |log: &SeedLog, cases: u64| {
        let st = State {
            next_seed: log.low,
            cases: prior + cases,
        };
        let _ = findings::write_atomic(
            &state_path(&cfg.out),
            serde_json::to_string_pretty(&st).unwrap().as_bytes(),
        );
    };
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        for _ in 0..cfg.jobs.max(1) {
            scope.spawn(|| {
                let mut sandbox = Sandbox::new(cfg.worker.clone());
                'batches: loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if cfg.time.is_some_and(|t| start.elapsed() >= t) {
                        break;
                    }
                    let mut size = cfg.batch.max(1) as u64;
                    if let Some(n) = cfg.cases {
                        let taken = issued.fetch_add(size, Ordering::Relaxed);
                        if taken >= n {
                            break;
                        }
                        size = size.min(n - taken);
                    }
                    let first = next.fetch_add(size, Ordering::Relaxed);
                    let seeds: Vec<u64> = (first..first + size).collect();
                    let cases: Vec<TestCase> = seeds.iter().map(|&s| source.case(s)).collect();
                    let reports = match run_batch(&mut sandbox, &cases, &cfg.plan) {
                        Ok(r) => r,
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                    };
                    for ((&seed, case), report) in seeds.iter().zip(&cases).zip(reports) {
                        if let Some(batch_bucket) = &report.screened_as {
                            // The batch saw something the lone run did not: keep the trace.
                            let _ = store.note_screened(seed, batch_bucket, &report.bucket);
                        }
                        let mut recorded = None;
                        if report.verdict.is_finding() {
                            match store.record(case, &cfg.plan, &report, Some(seed)) {
                                Ok(r) => recorded = Some(r),
                                Err(e) => {
                                    errors.lock().unwrap().push(e);
                                    stop.store(true, Ordering::Relaxed);
                                    break 'batches;
                                }
                            }
                        }
                        {
                            let mut s = stats.lock().unwrap();
                            s.add(&report, recorded.as_ref());
                            progress.update(&s, start.elapsed());
                        }
                        if let Some(Recorded::New { dir, known }) = &recorded {
                            progress.println(&format!(
                                "new bucket {}{} (seed {seed}) -> {}",
                                report.bucket,
                                known
                                    .as_ref()
                                    .map(|k| format!(" [known: {k}]"))
                                    .unwrap_or_default(),
                                dir.display()
                            ));
                            // Known buckets already have a reduced reproducer in the corpus;
                            // reducing them again would only eat the campaign's time budget.
                            if let (Some(hook), None) = (on_new_bucket, known) {
                                hook(&mut sandbox, case, &cfg.plan, &report, dir);
                            }
                        }
                        let mut l = log.lock().unwrap();
                        l.done(seed);
                        let done = stats.lock().unwrap().cases;
                        if done.is_multiple_of(64) {
                            save_state(&l, done);
                        }
                    }
                }
                stats.lock().unwrap().respawns += sandbox.spawns.saturating_sub(1);
            });
        }
    });
    progress.finish();
    let stats = stats.into_inner().unwrap();
    let l = log.into_inner().unwrap();
    save_state(&l, stats.cases);
    if let Some(e) = errors.into_inner().unwrap().into_iter().next() {
        return Err(e);
    }
    let mut stats = stats;
    stats.elapsed = start.elapsed();
    write_summary(&cfg.out, &stats, &store, l.low)?;
    Ok(Outcome {
        state: State {
            next_seed: l.low,
            cases: prior + stats.cases,
        },
        stats,
        store,
        interrupted: stop.load(Ordering::Relaxed),
    })
}

/// Runs a batch and confirms every finding on its own.
///
/// Batches share one object file and one driver process, which is what makes them cheap; it
/// also means a case that corrupts the driver could show up in another case's outcome. A batch
/// is a screening: each finding is run again alone with [`check`], and the lone run's report is
/// the one that counts (and that is filed).
fn run_batch(sandbox: &mut Sandbox, cases: &[TestCase], plan: &Plan) -> Result<Vec<Report>> {
    let reports = if cases.len() == 1 {
        vec![check(sandbox, &cases[0], plan)?]
    } else {
        let refs: Vec<&TestCase> = cases.iter().collect();
        crate::harness::check_batch(sandbox, &refs, plan)?
    };
    if cases.len() == 1 {
        return Ok(reports);
    }
    let mut out = Vec::with_capacity(reports.len());
    for (case, report) in cases.iter().zip(reports) {
        if report.verdict.is_finding() {
            let mut alone = check(sandbox, case, plan)?;
            alone.screened_as = Some(report.bucket.clone()).filter(|b| *b != alone.bucket);
            out.push(alone);
        } else {
            out.push(report);
        }
    }
    Ok(out)
}

/// The machine-readable end of a campaign, `DIR/summary.json`, read by `clif-diff report`.
#[derive(Serialize, Deserialize)]
pub struct Summary {
    pub cases: u64,
    pub seconds: f64,
    pub cases_per_sec: f64,
    pub valid: u64,
    pub new_findings: u64,
    pub known_findings: u64,
    pub respawns: u64,
    /// (engine label, cases/s on one core from worker time)
    pub engine_rates: Vec<(String, f64)>,
    pub verdicts: std::collections::BTreeMap<String, u64>,
    pub buckets: Vec<findings::BucketInfo>,
    pub next_seed: u64,
}

pub fn summary_path(out: &Path) -> PathBuf {
    out.join("summary.json")
}

fn write_summary(out: &Path, stats: &Stats, store: &FindingStore, next_seed: u64) -> Result<()> {
    let s = Summary {
        cases: stats.cases,
        seconds: stats.elapsed.as_secs_f64(),
        cases_per_sec: stats.rate(stats.elapsed),
        valid: stats.valid,
        new_findings: stats.new_findings,
        known_findings: stats.known_findings,
        respawns: stats.respawns,
        engine_rates: stats.engine_rates(),
        verdicts: stats
            .verdicts
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        buckets: store.buckets(),
        next_seed,
    };
    findings::write_atomic(
        &summary_path(out),
        serde_json::to_string_pretty(&s)?.as_bytes(),
    )
}
