//! Campaigns: generate, run, judge and record cases until the budget is spent.
//!
//! `jobs` threads each own a [`Sandbox`] (one long-lived worker process, replaced when it dies)
//! and pull seeds from a shared counter. Every finding of every case is written to the
//! [`FindingStore`] before it is counted, so a campaign can be interrupted at any moment —
//! Ctrl-C (the `stop` flag), a killed worker, a hanging case — without losing anything. The
//! lowest seed not yet finished is saved in `DIR/campaign.json`, which `--resume` continues from.
//!
//! Beside the case threads, a triage thread ([`triage`]) reduces new findings and decides the
//! identity of coarse hits, in reduce worker processes at low priority: the case threads never
//! wait for a reduction. When the budget is spent, urgent triage (new findings) gets a grace
//! period to finish; anything left stays on disk for `clif-diff triage`.

pub mod findings;
pub mod progress;
pub mod triage;

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
    /// Reduce and identify findings beside the campaign (`None`: leave it to `clif-diff triage`).
    pub triage: Option<TriageConfig>,
}

/// How a campaign triages.
#[derive(Clone)]
pub struct TriageConfig {
    pub limits: triage::Limits,
    /// After the case budget is spent, how long urgent triage may go on.
    pub grace: Duration,
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            limits: triage::Limits::default(),
            grace: Duration::from_secs(120),
        }
    }
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
    let queue = triage::Queue::default();
    // Triage stops at once on Ctrl-C or when its grace period is over.
    let hard_stop = Arc::new(AtomicBool::new(false));
    let finishing = AtomicBool::new(false);
    // Throughput is cases over the time the cases took, not over the triage grace after them.
    let cases_elapsed = Mutex::new(Duration::ZERO);

    std::thread::scope(|scope| {
        let triage_thread = cfg.triage.as_ref().map(|t| {
            let (queue, store, progress, stats) = (&queue, &store, &progress, &stats);
            let (hard_stop, finishing) = (&hard_stop, &finishing);
            scope.spawn(move || {
                triage::serve(
                    queue,
                    store,
                    &cfg.worker,
                    &t.limits,
                    hard_stop,
                    finishing,
                    &|d: &triage::Decision| {
                        progress.println(&d.line());
                        stats.lock().unwrap().triaged(d);
                    },
                )
            })
        });
        let case_threads: Vec<_> = (0..cfg.jobs.max(1))
            .map(|_| {
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
                        // Building a case is Cranelift code too: a panic costs that seed only.
                        let mut cases = Vec::new();
                        let mut built = Vec::new();
                        for &s in &seeds {
                            match crate::panics::catch(|| source.case(s)) {
                                Ok(c) => {
                                    cases.push(c);
                                    built.push(s);
                                }
                                Err(p) => {
                                    let _ = store.note_generator_panic(s, &p.message, &p.location);
                                    stats.lock().unwrap().generator_panics += 1;
                                    log.lock().unwrap().done(s);
                                }
                            }
                        }
                        if cases.is_empty() {
                            continue;
                        }
                        let reports = match run_batch(&mut sandbox, &cases, &cfg.plan) {
                            Ok(r) => r,
                            Err(e) => {
                                errors.lock().unwrap().push(e);
                                stop.store(true, Ordering::Relaxed);
                                break;
                            }
                        };
                        for ((&seed, case), report) in built.iter().zip(&cases).zip(reports) {
                            if let Some(batch_bucket) = &report.screened_as {
                                // The batch saw something the lone run did not: keep the trace.
                                let _ = store.note_screened(seed, batch_bucket, &report.bucket);
                            }
                            if let Some(why) = &report.invalid {
                                // A generated case the verifier rejects is a generator bug.
                                let _ = store.note_invalid(case, Some(seed), why);
                            }
                            if report.verdict == crate::oracle::Verdict::Hang {
                                // So is one that loops on every engine: kept, not a finding.
                                let _ = store.note_hang(case, Some(seed));
                            }
                            let mut recorded = Vec::new();
                            for finding in &report.findings {
                                match store.record(case, &cfg.plan, &report, finding, Some(seed)) {
                                    Ok(r) => recorded.push(r),
                                    Err(e) => {
                                        errors.lock().unwrap().push(e);
                                        stop.store(true, Ordering::Relaxed);
                                        break 'batches;
                                    }
                                }
                            }
                            {
                                let mut s = stats.lock().unwrap();
                                s.add(&report, &recorded);
                                progress.update(&s, start.elapsed());
                            }
                            for r in &recorded {
                                match r {
                                    Recorded::New {
                                        key,
                                        dir,
                                        known: None,
                                    } => progress.println(&format!(
                                        "NEW finding {key} (seed {seed}) -> {}",
                                        dir.display()
                                    )),
                                    Recorded::New {
                                        dir,
                                        known: Some(k),
                                        ..
                                    } => progress.println(&format!(
                                        "known finding `{k}`, first hit (seed {seed}) -> {}",
                                        dir.display()
                                    )),
                                    _ => {}
                                }
                                if cfg.triage.is_some() {
                                    queue.after_record(r);
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
                })
            })
            .collect();
        for h in case_threads {
            let _ = h.join();
        }
        *cases_elapsed.lock().unwrap() = start.elapsed();
        // Cases are done: urgent triage may finish within the grace period, unless Ctrl-C.
        finishing.store(true, Ordering::Relaxed);
        if let Some(h) = triage_thread {
            let grace = cfg.triage.as_ref().map(|t| t.grace).unwrap_or_default();
            let until = Instant::now() + grace;
            if !h.is_finished() && !queue.is_empty() {
                progress.println("cases done; finishing urgent triage (Ctrl-C to skip)");
            }
            while !h.is_finished() {
                if stop.load(Ordering::Relaxed) || Instant::now() >= until {
                    hard_stop.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = h.join();
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
    stats.elapsed = cases_elapsed.into_inner().unwrap();
    stats.triage_after = start.elapsed().saturating_sub(stats.elapsed);
    let left = triage::pending(&store);
    stats.triage_left = left.iter().filter(|(p, _)| *p < 4).count() as u64;
    stats.recheck_left = left.iter().filter(|(p, _)| *p == 4).count() as u64;
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
        if report.verdict.is_finding() || report.verdict == crate::oracle::Verdict::Hang {
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
    /// Every finding in the store after the campaign.
    pub findings: Vec<findings::FindingInfo>,
    /// Per engine that did not run on some case: (cases, a reason).
    #[serde(default)]
    pub skipped: std::collections::BTreeMap<String, (u64, String)>,
    /// Per engine, reason and count: cases on which the engine called a line unsupported.
    #[serde(default)]
    pub unsupported: Vec<(String, String, u64)>,
    /// Items triage has not decided (on disk, for `clif-diff triage`).
    #[serde(default)]
    pub triage_left: u64,
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
        findings: store.findings(),
        skipped: stats.skipped.clone(),
        unsupported: stats
            .unsupported
            .iter()
            .map(|((e, why), n)| (e.clone(), why.clone(), *n))
            .collect(),
        triage_left: stats.triage_left,
        next_seed,
    };
    findings::write_atomic(
        &summary_path(out),
        serde_json::to_string_pretty(&s)?.as_bytes(),
    )
}
