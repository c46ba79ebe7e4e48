//! Batches through a worker: the parent-side entry point campaigns use for the object path.
//!
//! [`Sandbox::run_batch`] ships a batch of cases to the worker, which runs them with
//! [`crate::engine::execute_batch`] (one link and one process for the object path, case by case
//! for the others) and streams one outcome per (case, run line). If the
//! worker itself dies or hangs (a compiler abort, a stack overflow, an out-of-memory), the cases
//! without an answer are retried one by one through [`Sandbox::run`], which attributes the death
//! to the case that caused it.

use super::{Sandbox, Worker};
use crate::case::TestCase;
use crate::engine::{EngineSpec, RunOptions};
use crate::outcome::{Outcome, Phase};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

#[derive(Serialize, Deserialize)]
pub(super) struct BatchRequest {
    /// Case texts.
    batch: Vec<String>,
    spec: EngineSpec,
    opts: RunOptions,
}

#[derive(Serialize, Deserialize)]
enum BatchResponse {
    Outcome {
        case: usize,
        run: usize,
        outcome: Outcome,
    },
    Done,
}

impl Sandbox {
    /// Runs all run lines of `cases` on the engine `spec` in one request; `result[case][run]`.
    ///
    /// Cases may mix targets and settings. Every (case, run line) gets an outcome; a worker that
    /// dies on the batch costs a retry of the unanswered cases one at a time, never an outcome.
    pub fn run_batch(
        &mut self,
        cases: &[&TestCase],
        spec: &EngineSpec,
        opts: &RunOptions,
    ) -> Result<Vec<Vec<Outcome>>> {
        let mut got: Vec<Vec<Option<Outcome>>> =
            cases.iter().map(|c| vec![None; c.runs.len()]).collect();
        let req = BatchRequest {
            batch: cases.iter().map(|c| c.to_text()).collect(),
            spec: spec.clone(),
            opts: opts.clone(),
        };
        let line = serde_json::to_string(&req)? + "\n";
        let per_answer = self.compile_budget + Duration::from_millis(opts.timeout_ms);
        let w = self.worker()?;
        let sent = w.send(&line).is_ok();
        let finished = sent && self.collect(&mut got, per_answer);
        if !sent && let Some(w) = self.worker.take() {
            let _ = w.bury(false, "batch");
        }
        for (k, case) in cases.iter().enumerate() {
            if got[k].iter().all(Option::is_some) {
                continue;
            }
            if finished {
                // The worker completed the batch and still said nothing: retrying won't help.
                for slot in got[k].iter_mut().filter(|s| s.is_none()) {
                    *slot = Some(Outcome::Error {
                        phase: Phase::Setup,
                        message: "worker gave no answer".into(),
                    });
                }
                continue;
            }
            let single = self.run(case, std::slice::from_ref(spec), opts)?;
            for (run, o) in single
                .outcomes
                .into_iter()
                .next()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                got[k][run].get_or_insert(o);
            }
        }
        Ok(got
            .into_iter()
            .map(|r| r.into_iter().map(Option::unwrap).collect())
            .collect())
    }

    /// Reads batch answers into `got` until `Done` (true) or until the worker dies or stalls
    /// (false; the worker is then gone).
    fn collect(&mut self, got: &mut [Vec<Option<Outcome>>], per_answer: Duration) -> bool {
        loop {
            let w = self.worker.as_mut().expect("worker started by the caller");
            match w.lines.recv_timeout(per_answer) {
                Ok(l) => match serde_json::from_str::<BatchResponse>(&l) {
                    Ok(BatchResponse::Outcome { case, run, outcome })
                        if case < got.len() && run < got[case].len() =>
                    {
                        got[case][run] = Some(outcome);
                    }
                    Ok(BatchResponse::Done) => return true,
                    _ => {} // stray output
                },
                Err(e) => {
                    let w: Worker = self.worker.take().expect("worker present");
                    let _ = w.bury(e == RecvTimeoutError::Timeout, "batch");
                    return false;
                }
            }
        }
    }
}

/// Worker side: runs one batch request, writing each outcome as it is known.
pub(super) fn serve(req: BatchRequest, out: &mut impl Write) -> Result<()> {
    if req.opts.faults.worker_dies_on_batch && req.batch.len() > 1 {
        std::process::abort();
    }
    let mut parsed = Vec::new();
    let mut index = Vec::new();
    for (k, text) in req.batch.iter().enumerate() {
        match TestCase::parse(text) {
            Ok(c) => {
                parsed.push(c);
                index.push(k);
            }
            Err(e) => {
                // Without a parse the run lines are unknown; a case that does not parse came from
                // a bug in the parent, so report it once.
                let resp = BatchResponse::Outcome {
                    case: k,
                    run: 0,
                    outcome: Outcome::Error {
                        phase: Phase::Setup,
                        message: e.to_string(),
                    },
                };
                writeln!(out, "{}", serde_json::to_string(&resp)?)?;
            }
        }
    }
    let refs: Vec<&TestCase> = parsed.iter().collect();
    crate::engine::execute_batch(&refs, &req.spec, &req.opts, &mut |k, run, outcome| {
        let resp = BatchResponse::Outcome {
            case: index[k],
            run,
            outcome,
        };
        let _ = writeln!(out, "{}", serde_json::to_string(&resp).unwrap());
        let _ = out.flush();
    });
    writeln!(out, "{}", serde_json::to_string(&BatchResponse::Done)?)?;
    out.flush()?;
    Ok(())
}
