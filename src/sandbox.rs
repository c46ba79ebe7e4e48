//! Worker processes: where engines run, so that nothing a case does can take the harness down.
//!
//! The parent never compiles or runs a case itself. It re-executes its own binary as
//! `clif-diff worker` and sends requests over stdin as JSON lines; the worker answers with one line
//! per (engine, run line) as soon as it is known. A worker that dies, hangs past its deadline or
//! runs out of memory is replaced; the (engine, run line) it was on gets a `crash`, `timeout` or
//! `oom` outcome and the rest of the case continues in the new worker, so nothing observed is lost.
//! [`Sandbox::run_batch`] (in `batch`) sends many cases to the object path at once;
//! [`Sandbox::run_abi`] (in `abi`) runs `clif-diff abi`'s C-interop batches the same way.

mod abi;
mod batch;

use crate::case::TestCase;
use crate::engine::{self, EngineSpec, RunOptions};
use crate::outcome::Outcome;
use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Memory limit of a worker (address space). The `far` JIT provider maps small regions far apart,
/// which costs address space only for what it maps.
pub const WORKER_MEMORY: u64 = 4 << 30;

#[derive(Serialize, Deserialize)]
struct Request {
    case: String,
    engines: Vec<EngineSpec>,
    opts: RunOptions,
    /// First run line still to do, per engine.
    start: Vec<usize>,
    /// Check the case is valid input (see [`crate::validate`]) before running anything.
    #[serde(default)]
    validate: bool,
}

#[derive(Serialize, Deserialize)]
enum Response {
    Outcome {
        engine: usize,
        run: usize,
        outcome: Outcome,
    },
    /// Wall time the worker spent on one engine for this request.
    Time {
        engine: usize,
        micros: u64,
    },
    /// The request could not be served at all (e.g. the case text did not parse).
    Failed(String),
    /// The case is not valid input; no engine ran.
    Invalid(String),
    Done,
}

/// Ask the worker for the case's functions as Cranelift's mid-end leaves them.
#[derive(Serialize, Deserialize)]
struct OptimizeRequest {
    optimize: String,
    /// Settings to apply on top of the case's (an engine's overrides).
    overrides: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
enum OptimizeResponse {
    /// Each function, optimised, as CLIF text.
    Optimized(Vec<String>),
    Failed(String),
}

/// What a sandbox run observed.
pub struct Execution {
    /// `outcomes[engine][run]`.
    pub outcomes: Vec<Vec<Outcome>>,
    /// Worker-side wall time per engine, in microseconds.
    pub micros: Vec<u64>,
    /// Why the case is not valid input, when validation was asked for and failed.
    pub invalid: Option<String>,
}

/// How to start a worker: the `clif-diff` binary and its `worker` subcommand.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub exe: PathBuf,
}

impl WorkerCommand {
    /// `$CLIF_DIFF_EXE`, else this process's own executable (when it is `clif-diff`).
    pub fn from_env() -> Result<WorkerCommand> {
        if let Some(p) = std::env::var_os("CLIF_DIFF_EXE") {
            return Ok(WorkerCommand { exe: p.into() });
        }
        let me = std::env::current_exe().context("locating own executable")?;
        if me.file_stem().is_some_and(|s| s == "clif-diff") {
            Ok(WorkerCommand { exe: me })
        } else {
            Err(anyhow!(
                "cannot find the clif-diff binary for workers; set CLIF_DIFF_EXE"
            ))
        }
    }
}

/// Dropping an idle worker closes its stdin and gives it a moment to finish (a coverage worker
/// writes its totals then) before it is killed.
impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                _ => return,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Worker {
    child: Child,
    /// `None` only while the worker is dropped (closing it is how a worker is told to finish).
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Worker {
    fn spawn(cmd: &WorkerCommand) -> Result<Worker> {
        use std::os::unix::process::CommandExt;
        let coverage_run = std::env::var_os(crate::coverage::worker::DIR_VAR).is_some();
        let mut c = Command::new(&cmd.exe);
        c.arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            c.pre_exec(move || {
                // Own process group: a terminal's Ctrl-C reaches only the parent.
                libc::setpgid(0, 0);
                let mem = libc::rlimit {
                    rlim_cur: WORKER_MEMORY,
                    rlim_max: WORKER_MEMORY,
                };
                // A coverage run's workers may be a sanitizer build, whose shadow memory
                // reservation RLIMIT_AS would refuse; that run bounds memory through ASAN_OPTIONS.
                if !coverage_run {
                    libc::setrlimit(libc::RLIMIT_AS, &mem);
                }
                let zero = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &zero);
                Ok(())
            });
        }
        let mut child = c
            .spawn()
            .with_context(|| format!("starting worker {}", cmd.exe.display()))?;
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail2 = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut t = tail2.lock().unwrap();
                t.push_back(line);
                if t.len() > 20 {
                    t.pop_front();
                }
            }
        });
        Ok(Worker {
            child,
            stdin: Some(stdin),
            lines: rx,
            stderr_tail: tail,
        })
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin is open until drop");
        stdin.write_all(line.as_bytes())?;
        stdin.flush()
    }

    /// Kills the worker and classifies how it ended.
    fn bury(mut self, timed_out: bool, limit: &str) -> Outcome {
        if timed_out {
            let _ = self.child.kill();
        }
        let status = self.child.wait().ok();
        // Give the stderr reader a moment to collect the last words.
        std::thread::sleep(Duration::from_millis(5));
        let tail: Vec<String> = self.stderr_tail.lock().unwrap().iter().cloned().collect();
        if timed_out {
            return Outcome::Timeout {
                limit: limit.to_string(),
            };
        }
        if tail.iter().any(|l| l.contains("memory allocation of")) {
            return Outcome::Oom;
        }
        use std::os::unix::process::ExitStatusExt;
        let signal = status.and_then(|s| s.signal());
        Outcome::Crash {
            signal: signal
                .map(engine::native::signal_name)
                .unwrap_or_else(|| "exit".into()),
            detail: format!(
                "worker died: {}",
                tail.last().map(String::as_str).unwrap_or("no message")
            ),
        }
    }
}

/// A parent-side handle on one worker process, respawned on demand.
pub struct Sandbox {
    cmd: WorkerCommand,
    worker: Option<Worker>,
    /// Extra time a request may take beyond the run-time limits (compilation, linking).
    pub compile_budget: Duration,
    /// Workers started so far (a measure of crash isolation at work).
    pub spawns: u64,
}

impl Sandbox {
    pub fn new(cmd: WorkerCommand) -> Sandbox {
        Sandbox {
            cmd,
            worker: None,
            compile_budget: Duration::from_secs(60),
            spawns: 0,
        }
    }

    /// The worker's process id, if one is running (tests kill it on purpose).
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker.as_ref().map(|w| w.child.id())
    }

    fn worker(&mut self) -> Result<&mut Worker> {
        if self.worker.is_none() {
            self.worker = Some(Worker::spawn(&self.cmd)?);
            self.spawns += 1;
        }
        Ok(self.worker.as_mut().unwrap())
    }

    /// Runs `case` on `engines`; `outcomes[engine][run]` is always complete.
    pub fn run(
        &mut self,
        case: &TestCase,
        engines: &[EngineSpec],
        opts: &RunOptions,
    ) -> Result<Execution> {
        self.run_checked(case, engines, opts, false)
    }

    /// [`Sandbox::run`], after checking in the worker that the case is valid input; an invalid
    /// case runs no engine and comes back with [`Execution::invalid`] set.
    pub fn run_valid(
        &mut self,
        case: &TestCase,
        engines: &[EngineSpec],
        opts: &RunOptions,
    ) -> Result<Execution> {
        self.run_checked(case, engines, opts, true)
    }

    fn run_checked(
        &mut self,
        case: &TestCase,
        engines: &[EngineSpec],
        opts: &RunOptions,
        mut validate: bool,
    ) -> Result<Execution> {
        let mut invalid = None;
        let mut micros = vec![0u64; engines.len()];
        let text = case.to_text();
        let nruns = case.runs.len();
        let mut got: Vec<Vec<Option<Outcome>>> = vec![vec![None; nruns]; engines.len()];
        let deadline_per_answer = self.compile_budget + Duration::from_millis(opts.timeout_ms);
        let limit = format!("{} ms", deadline_per_answer.as_millis());
        loop {
            let start: Vec<usize> = got
                .iter()
                .map(|r| r.iter().position(Option::is_none).unwrap_or(nruns))
                .collect();
            if start.iter().all(|&s| s == nruns) {
                break;
            }
            let req = Request {
                case: text.clone(),
                engines: engines.to_vec(),
                opts: opts.clone(),
                start: start.clone(),
                validate,
            };
            // Once answered, a retry after a worker death need not validate again.
            validate = false;
            let line = serde_json::to_string(&req)? + "\n";
            let w = self.worker()?;
            if w.send(&line).is_err() {
                // The worker died between requests; start afresh.
                let w = self.worker.take().unwrap();
                let _ = w.bury(false, &limit);
                continue;
            }
            // The (engine, run) the worker is working on: the first one not yet answered, in
            // the order the worker processes them (engine by engine).
            let pending = |got: &Vec<Vec<Option<Outcome>>>| -> Option<(usize, usize)> {
                got.iter()
                    .enumerate()
                    .find_map(|(e, r)| r.iter().position(Option::is_none).map(|i| (e, i)))
            };
            loop {
                let w = self.worker.as_mut().unwrap();
                match w.lines.recv_timeout(deadline_per_answer) {
                    Ok(l) => match serde_json::from_str::<Response>(&l) {
                        Ok(Response::Outcome {
                            engine,
                            run,
                            outcome,
                        }) if engine < engines.len() && run < nruns => {
                            got[engine][run] = Some(outcome);
                        }
                        Ok(Response::Time { engine, micros: t }) if engine < engines.len() => {
                            micros[engine] += t;
                        }
                        Ok(Response::Done) => {
                            // Anything still unanswered will not be answered by retrying.
                            fill(&mut got, || Outcome::Error {
                                phase: crate::outcome::Phase::Setup,
                                message: "worker gave no answer".into(),
                            });
                            break;
                        }
                        Ok(Response::Failed(message)) => {
                            fill(&mut got, || Outcome::Error {
                                phase: crate::outcome::Phase::Setup,
                                message: message.clone(),
                            });
                        }
                        Ok(Response::Invalid(message)) => {
                            fill(&mut got, || Outcome::Unsupported {
                                reason: "the case is invalid".into(),
                            });
                            invalid = Some(message);
                        }
                        _ => {} // stray output (e.g. a library printing): ignore
                    },
                    Err(e) => {
                        let timed_out = e == RecvTimeoutError::Timeout;
                        let w = self.worker.take().unwrap();
                        let outcome = w.bury(timed_out, &limit);
                        if let Some((e, r)) = pending(&got) {
                            got[e][r] = Some(outcome);
                        }
                        break;
                    }
                }
            }
        }
        Ok(Execution {
            outcomes: got
                .into_iter()
                .map(|r| r.into_iter().map(Option::unwrap).collect())
                .collect(),
            micros,
            invalid,
        })
    }
}

fn fill(got: &mut [Vec<Option<Outcome>>], outcome: impl Fn() -> Outcome) {
    for slot in got.iter_mut().flatten() {
        if slot.is_none() {
            *slot = Some(outcome());
        }
    }
}

impl Sandbox {
    /// `case`'s functions after Cranelift's mid-end (the IR the backend lowers), with
    /// `overrides` applied to the case's settings, as CLIF text. Runs in the worker: optimising
    /// is Cranelift code. `Err` when the worker died or Cranelift refused.
    pub fn optimized(
        &mut self,
        case: &TestCase,
        overrides: &[(String, String)],
    ) -> Result<Vec<String>> {
        let req = OptimizeRequest {
            optimize: case.to_text(),
            overrides: overrides.to_vec(),
        };
        let line = serde_json::to_string(&req)? + "\n";
        let deadline = self.compile_budget;
        let w = self.worker()?;
        w.send(&line)?;
        match w.lines.recv_timeout(deadline) {
            Ok(l) => match serde_json::from_str::<OptimizeResponse>(&l)? {
                OptimizeResponse::Optimized(f) => Ok(f),
                OptimizeResponse::Failed(e) => Err(anyhow!("{e}")),
            },
            Err(e) => {
                let timed_out = e == RecvTimeoutError::Timeout;
                let w = self.worker.take().unwrap();
                let o = w.bury(timed_out, "optimize");
                Err(anyhow!("the worker did not optimise the case: {o}"))
            }
        }
    }
}

fn optimize(req: &OptimizeRequest) -> OptimizeResponse {
    let run = || -> Result<Vec<String>, String> {
        let case = TestCase::parse(&req.optimize).map_err(|e| e.to_string())?;
        let o: Vec<(&str, &str)> = req
            .overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let isa = crate::target::build_isa(&case, &o).map_err(|e| format!("{e:#}"))?;
        case.functions
            .iter()
            .map(|f| {
                let mut ctx = cranelift_codegen::Context::for_function(f.clone());
                ctx.optimize(&*isa, &mut Default::default())
                    .map_err(|e| format!("{e:?}"))?;
                Ok(crate::printer::function_text(&ctx.func))
            })
            .collect()
    };
    match crate::panics::catch(run) {
        Ok(Ok(f)) => OptimizeResponse::Optimized(f),
        Ok(Err(e)) => OptimizeResponse::Failed(e),
        Err(p) => OptimizeResponse::Failed(format!("panic: {}", p.message)),
    }
}

/// The worker side: serve requests from stdin until it closes.
pub fn worker_main() -> Result<()> {
    crate::panics::install_hook();
    // Ctrl-C is for the parent, which ends the campaign cleanly; a worker dying of it mid-case
    // would be reported as a crash of whatever it was running.
    // SAFETY: setting a signal disposition has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    crate::coverage::worker::attach_from_env();
    // The interpreter recurses on the native stack once per CLIF call; give it room.
    let t = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(serve)?;
    t.join().map_err(|_| anyhow!("worker thread panicked"))?
}

fn serve() -> Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Ok(b) = serde_json::from_str::<batch::BatchRequest>(&line) {
            batch::serve(b, &mut out)?;
            crate::coverage::worker::request_done();
            continue;
        }
        if let Ok(a) = serde_json::from_str::<abi::AbiRequest>(&line) {
            abi::serve(a, &mut out)?;
            continue;
        }
        if let Ok(o) = serde_json::from_str::<OptimizeRequest>(&line) {
            writeln!(out, "{}", serde_json::to_string(&optimize(&o))?)?;
            out.flush()?;
            continue;
        }
        let req: Request = serde_json::from_str(&line).context("bad request")?;
        let parsed = TestCase::parse(&req.case).map_err(|e| e.to_string());
        let invalid = match &parsed {
            Ok(case) if req.validate => crate::validate::check_input(case, &req.engines).err(),
            _ => None,
        };
        match parsed {
            Ok(_) if invalid.is_some() => {
                let resp = Response::Invalid(invalid.unwrap_or_default());
                writeln!(out, "{}", serde_json::to_string(&resp)?)?;
            }
            Ok(case) => {
                crate::coverage::worker::received(&case);
                for (e, spec) in req.engines.iter().enumerate() {
                    let first = req.start.get(e).copied().unwrap_or(0);
                    let t0 = std::time::Instant::now();
                    engine::execute(&case, spec, &req.opts, first, &mut |run, outcome| {
                        let resp = Response::Outcome {
                            engine: e,
                            run,
                            outcome,
                        };
                        let _ = writeln!(out, "{}", serde_json::to_string(&resp).unwrap());
                        let _ = out.flush();
                    });
                    let resp = Response::Time {
                        engine: e,
                        micros: t0.elapsed().as_micros() as u64,
                    };
                    writeln!(out, "{}", serde_json::to_string(&resp)?)?;
                }
            }
            Err(err) => {
                let resp = Response::Failed(err);
                writeln!(out, "{}", serde_json::to_string(&resp)?)?;
            }
        }
        crate::coverage::worker::request_done();
        writeln!(out, "{}", serde_json::to_string(&Response::Done)?)?;
        out.flush()?;
    }
    crate::coverage::worker::finish();
    Ok(())
}
