//! Reduction in its own process, as isolated as execution.
//!
//! A reduction builds, verifies and prints thousands of candidates, and Cranelift's IR code
//! asserts on odd input (`isplit` of a type without a half, a verifier tripping over a rewritten
//! instruction). So the whole search runs in a `clif-diff reduce-worker` process: inside it, a
//! panic while building a candidate rejects that candidate (the passes catch it), candidates run
//! in that process's own sandbox workers, and a crash no `catch_unwind` contains — an abort, a
//! stack overflow — ends only the reduction. The parent (a campaign's triage, `clif-diff
//! reduce`) receives every accepted candidate as it happens, so a reduction that dies still
//! hands back the best case it reached, flagged as incomplete.
//!
//! The worker also checks what it hands back: the reduced case is run again in a fresh sandbox
//! and must show the same finding — same bucket, same outcome kinds and result types on its line
//! — or the result says it drifted.

use super::{Progress, ProgressFn, ReduceOptions, Stats, reduce_in};
use crate::case::TestCase;
use crate::harness::Plan;
use crate::oracle::{Finding, Report};
use crate::sandbox::{Sandbox, WorkerCommand};
use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One reduction to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// The case text (its directives are ignored: `plan` says how to run it).
    pub case: String,
    pub plan: Plan,
    /// The finding to keep.
    pub bucket: String,
    pub max_candidates: Option<u64>,
    pub time_limit_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
enum Line {
    Progress {
        pass: String,
        tried: u64,
        accepted: u64,
        insts: usize,
        functions: usize,
        elapsed_ms: u64,
    },
    /// An accepted candidate: the best case so far.
    Best(String),
    Done(Box<WireResult>),
    Failed(String),
}

#[derive(Serialize, Deserialize)]
struct WireResult {
    case: String,
    report: Report,
    finding: Finding,
    stats: Stats,
    /// `None` when the replay in a fresh sandbox showed the same finding; else what it showed.
    drift: Option<String>,
}

/// What a reduction in a worker process produced.
pub struct Outcome {
    /// The reduced case (or the best one reached before the reducer process died).
    pub case: TestCase,
    /// Its report and finding, when the reduction completed.
    pub report: Option<Report>,
    pub finding: Option<Finding>,
    pub stats: Stats,
    /// Why the result is not a clean, verified reduction: the reducer process died, was
    /// stopped, or its result did not replay as the same finding.
    pub problem: Option<String>,
}

impl Outcome {
    /// A completed reduction whose result replays as the same finding in a fresh sandbox.
    pub fn is_verified(&self) -> bool {
        self.problem.is_none() && self.report.is_some()
    }

    /// The result as [`super::Reduced`], for rendering; `None` for an incomplete one.
    pub fn reduced(&self) -> Option<super::Reduced> {
        Some(super::Reduced {
            case: self.case.clone(),
            report: self.report.clone()?,
            finding: self.finding.clone()?,
            stats: self.stats.clone(),
        })
    }
}

/// How the parent runs the reduce worker.
#[derive(Clone, Default)]
pub struct Control {
    pub progress: Option<ProgressFn>,
    /// Run at low CPU priority (a campaign's triage must not slow its cases down).
    pub nice: bool,
    /// Set to abandon the reduction (it then counts as incomplete).
    pub stop: Option<Arc<AtomicBool>>,
}

/// Runs `job` in a `clif-diff reduce-worker` process. Fails only when the worker cannot be
/// started or the case does not show the finding at all; a reducer that dies or drifts comes
/// back as an [`Outcome`] with its `problem`.
pub fn reduce(worker: &WorkerCommand, job: &Job, ctl: &Control) -> Result<Outcome> {
    use std::os::unix::process::CommandExt;
    let original = TestCase::parse(&job.case).context("the case to reduce")?;
    let mut cmd = Command::new(&worker.exe);
    cmd.arg("reduce-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let nice = ctl.nice;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Own process group: a terminal's Ctrl-C reaches only the parent.
            libc::setpgid(0, 0);
            if nice {
                libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            }
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting reduce worker {}", worker.exe.display()))?;
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", serde_json::to_string(job)?)?;
    drop(stdin);
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let tail = std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect();
        lines.into_iter().rev().take(3).collect::<Vec<_>>()
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    // The worker stops itself at its limit; past it (plus the final replay) it is stuck.
    let deadline = job
        .time_limit_ms
        .map(|ms| Duration::from_millis(ms) + Duration::from_secs(120));
    let mut best = original.clone();
    let mut accepted = 0u64;
    let mut last = Progress {
        pass: "start",
        tried: 0,
        accepted: 0,
        insts: super::count_insts(&original),
        functions: original.functions.len(),
        elapsed: Duration::ZERO,
    };
    let finish = |child: &mut std::process::Child| {
        let _ = child.kill();
        child.wait().ok()
    };
    let mut problem: Option<String> = None;
    let mut done: Option<WireResult> = None;
    loop {
        if ctl.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            finish(&mut child);
            problem = Some("stopped before the reduction finished".into());
            break;
        }
        if deadline.is_some_and(|d| started.elapsed() > d) {
            finish(&mut child);
            problem = Some("the reducer ran past its time limit and was killed".into());
            break;
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => match serde_json::from_str::<Line>(&l) {
                Ok(Line::Progress {
                    tried,
                    accepted: a,
                    insts,
                    functions,
                    elapsed_ms,
                    ..
                }) => {
                    last = Progress {
                        pass: "reduce",
                        tried,
                        accepted: a,
                        insts,
                        functions,
                        elapsed: Duration::from_millis(elapsed_ms),
                    };
                    if let Some(p) = &ctl.progress {
                        p(&last);
                    }
                }
                Ok(Line::Best(text)) => {
                    if let Ok(c) = TestCase::parse(&text) {
                        best = c;
                        accepted += 1;
                    }
                }
                Ok(Line::Done(r)) => {
                    done = Some(*r);
                    break;
                }
                Ok(Line::Failed(e)) => {
                    finish(&mut child);
                    return Err(anyhow!("{e}"));
                }
                Err(_) => {}
            },
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().ok();
                let words = tail.join().unwrap_or_default();
                use std::os::unix::process::ExitStatusExt;
                let how = match status.and_then(|s| s.signal()) {
                    Some(sig) => crate::engine::native::signal_name(sig),
                    None => format!("exit status {:?}", status.and_then(|s| s.code())),
                };
                problem = Some(format!(
                    "the reducer process died ({how}: {})",
                    words.first().map(String::as_str).unwrap_or("no message")
                ));
                return Ok(Outcome {
                    stats: partial_stats(&original, &best, &last, accepted),
                    case: best,
                    report: None,
                    finding: None,
                    problem,
                });
            }
        }
    }
    let _ = child.wait();
    Ok(match done {
        Some(r) => Outcome {
            case: TestCase::parse(&r.case).context("the reduced case")?,
            report: Some(r.report),
            finding: Some(r.finding),
            stats: r.stats,
            problem: r.drift.map(|d| {
                format!("the reduced case replays as `{d}` in a fresh sandbox, not as the finding")
            }),
        },
        None => Outcome {
            stats: partial_stats(&original, &best, &last, accepted),
            case: best,
            report: None,
            finding: None,
            problem,
        },
    })
}

fn partial_stats(original: &TestCase, best: &TestCase, last: &Progress, accepted: u64) -> Stats {
    Stats {
        insts_before: super::count_insts(original),
        insts_after: super::count_insts(best),
        functions_before: original.functions.len(),
        functions_after: best.functions.len(),
        runs_before: original.runs.len(),
        runs_after: best.runs.len(),
        tried: last.tried,
        accepted: accepted.max(last.accepted),
        stopped_early: true,
        elapsed: last.elapsed,
        ..Stats::default()
    }
}

/// The `clif-diff reduce-worker` side: one job from stdin, lines on stdout.
pub fn worker_main() -> Result<()> {
    crate::panics::install_hook();
    // SAFETY: setting a signal disposition has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let job: Job = serde_json::from_str(&line).context("bad reduce job")?;
    // Deep IR recursion (printing, verifying) wants room, as in engine workers.
    let t = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || serve(job))?;
    t.join()
        .map_err(|_| anyhow!("reduce worker thread panicked"))?
}

fn emit(line: &Line) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(line).unwrap_or_default());
    let _ = out.flush();
}

fn serve(job: Job) -> Result<()> {
    let worker = WorkerCommand::from_env()?;
    let case = match TestCase::parse(&job.case) {
        Ok(c) => c,
        Err(e) => {
            emit(&Line::Failed(e.to_string()));
            return Ok(());
        }
    };
    let opts = ReduceOptions {
        max_candidates: job.max_candidates,
        time_limit: job.time_limit_ms.map(Duration::from_millis),
        progress: Some(Arc::new(|p: &Progress| {
            emit(&Line::Progress {
                pass: p.pass.to_string(),
                tried: p.tried,
                accepted: p.accepted,
                insts: p.insts,
                functions: p.functions,
                elapsed_ms: p.elapsed.as_millis() as u64,
            })
        })),
        on_accept: Some(Arc::new(|c: &TestCase| emit(&Line::Best(c.to_text())))),
        faults: job.plan.opts.faults.clone(),
    };
    let mut sandbox = Sandbox::new(worker.clone());
    let reduced = match reduce_in(&mut sandbox, &case, &job.plan, &job.bucket, &opts) {
        Ok(r) => r,
        Err(e) => {
            emit(&Line::Failed(format!("{e:#}")));
            return Ok(());
        }
    };
    // The result must show the same finding from its text alone, in a worker that saw nothing
    // else.
    let text = reduced.case.to_text();
    let mut fresh = Sandbox::new(worker);
    let drift = match TestCase::parse(&text)
        .map_err(anyhow::Error::from)
        .and_then(|c| crate::harness::check(&mut fresh, &c, &job.plan))
    {
        Ok(r) => same_finding(&reduced.report, &reduced.finding, &r),
        Err(e) => Some(format!("{e:#}")),
    };
    emit(&Line::Done(Box::new(WireResult {
        case: text,
        report: reduced.report,
        finding: reduced.finding,
        stats: reduced.stats,
        drift,
    })));
    Ok(())
}

/// `None` when `again` shows `finding` as `report` does (bucket, line, and the outcome kinds
/// and result types of every engine both ran — a reproducer may leave out an engine that is not
/// a side, e.g. the interpreter under `test run`); else what `again` shows instead.
pub fn same_finding(report: &Report, finding: &Finding, again: &Report) -> Option<String> {
    let shown = |r: &Report, f: &Finding| -> Vec<(String, String)> {
        r.runs
            .get(f.run)
            .map(|run| {
                r.engines
                    .iter()
                    .zip(&run.outcomes)
                    .map(|(e, o)| (e.label(), shape_of(o)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let agree = |f: &Finding| {
        let (before, after) = (shown(report, finding), shown(again, f));
        let sides_kept = finding
            .sides
            .iter()
            .all(|s| after.iter().any(|(l, _)| l == s));
        sides_kept
            && after
                .iter()
                .all(|(l, o)| before.iter().all(|(l0, o0)| l0 != l || o0 == o))
    };
    match again.finding(&finding.bucket) {
        Some(f) if f.run == finding.run && agree(f) => None,
        Some(_) => Some(format!("{} (other outcomes)", finding.bucket)),
        None => Some(crate::harness::expectation(again)),
    }
}

fn shape_of(o: &crate::outcome::Outcome) -> String {
    use crate::outcome::Outcome;
    match o {
        Outcome::Returned { values } => {
            let t: Vec<String> = values.iter().map(|v| v.ty().to_string()).collect();
            format!("returned ({})", t.join(", "))
        }
        Outcome::Trap { code } => format!("trap {code}"),
        o => o.kind().to_string(),
    }
}
