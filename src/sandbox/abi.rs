//! C-interop batches through a worker: `clif-diff abi` compiles with Cranelift only here.
//!
//! [`Sandbox::run_abi`] ships a batch of signatures to the worker, which runs
//! [`crate::cinterop::run::run_cases_with`] and streams one outcome per case. A worker that dies
//! or stalls on a batch (an abort inside Cranelift, a stack overflow) has the cases it left
//! unanswered retried in halves, so the case that kills it is found in a logarithmic number of
//! retries and gets a crash outcome of its own; every other case is still tested.

use super::{Sandbox, Worker};
use crate::cinterop::{AbiCase, AbiOptions, AbiOutcome};
use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;

#[derive(Serialize, Deserialize)]
pub(super) struct AbiRequest {
    abi: Vec<AbiCase>,
    opts: AbiOptions,
}

#[derive(Serialize, Deserialize)]
enum AbiResponse {
    Outcome {
        case: usize,
        outcome: AbiOutcome,
    },
    /// The batch could not be run at all (no toolchain, the C side did not compile).
    Failed(String),
    Done,
}

/// How a request to the worker ended.
enum Ended {
    Done,
    Failed(String),
    /// The worker died or stalled; it is gone, and this is how it ended.
    Died(crate::outcome::Outcome),
}

impl Sandbox {
    /// Runs the interop test of every case in the worker; one outcome per case, in order.
    ///
    /// `Err` only when the batch cannot run at all (a missing cross toolchain, a C side that does
    /// not compile): that is the same for every case, so it is one error, not a finding per case.
    pub fn run_abi(&mut self, cases: &[AbiCase], opts: &AbiOptions) -> Result<Vec<AbiOutcome>> {
        let mut got: Vec<Option<AbiOutcome>> = vec![None; cases.len()];
        let all: Vec<usize> = (0..cases.len()).collect();
        self.abi_group(cases, &all, opts, &mut got)?;
        Ok(got
            .into_iter()
            .map(|o| {
                o.unwrap_or(AbiOutcome::Crash {
                    detail: "no answer".into(),
                })
            })
            .collect())
    }

    fn abi_group(
        &mut self,
        cases: &[AbiCase],
        group: &[usize],
        opts: &AbiOptions,
        got: &mut [Option<AbiOutcome>],
    ) -> Result<()> {
        if group.is_empty() {
            return Ok(());
        }
        let req = AbiRequest {
            abi: group.iter().map(|&k| cases[k].clone()).collect(),
            opts: opts.clone(),
        };
        let line = serde_json::to_string(&req)? + "\n";
        let per_answer = self.compile_budget + opts.timeout;
        let w = self.worker()?;
        let ended = if w.send(&line).is_ok() {
            self.collect_abi(group, got, per_answer)
        } else {
            let w = self.worker.take().expect("worker started above");
            Ended::Died(w.bury(false, "abi"))
        };
        match ended {
            Ended::Done => Ok(()),
            Ended::Failed(message) => Err(anyhow!("{message}")),
            Ended::Died(how) => {
                let left: Vec<usize> = group
                    .iter()
                    .copied()
                    .filter(|&k| got[k].is_none())
                    .collect();
                if let [k] = left[..] {
                    got[k] = Some(match how {
                        crate::outcome::Outcome::Timeout { .. } => AbiOutcome::Timeout,
                        other => AbiOutcome::Crash {
                            detail: format!("the worker died on this case: {other}"),
                        },
                    });
                    return Ok(());
                }
                let (a, b) = left.split_at(left.len() / 2);
                self.abi_group(cases, a, opts, got)?;
                self.abi_group(cases, b, opts, got)
            }
        }
    }

    fn collect_abi(
        &mut self,
        group: &[usize],
        got: &mut [Option<AbiOutcome>],
        per_answer: std::time::Duration,
    ) -> Ended {
        loop {
            let w = self.worker.as_mut().expect("worker started by the caller");
            match w.lines.recv_timeout(per_answer) {
                Ok(l) => match serde_json::from_str::<AbiResponse>(&l) {
                    Ok(AbiResponse::Outcome { case, outcome }) if case < group.len() => {
                        got[group[case]] = Some(outcome);
                    }
                    Ok(AbiResponse::Done) => return Ended::Done,
                    Ok(AbiResponse::Failed(m)) => return Ended::Failed(m),
                    _ => {} // stray output
                },
                Err(e) => {
                    let w: Worker = self.worker.take().expect("worker present");
                    return Ended::Died(w.bury(e == RecvTimeoutError::Timeout, "abi"));
                }
            }
        }
    }
}

/// Worker side: runs one interop batch, writing each outcome as it is known.
pub(super) fn serve(req: AbiRequest, out: &mut impl Write) -> Result<()> {
    let result = crate::cinterop::run::run_cases_with(&req.abi, &req.opts, &mut |case, outcome| {
        let resp = AbiResponse::Outcome { case, outcome };
        let _ = writeln!(out, "{}", serde_json::to_string(&resp).unwrap());
        let _ = out.flush();
    });
    let last = match result {
        Ok(()) => AbiResponse::Done,
        Err(e) => AbiResponse::Failed(format!("{e:#}")),
    };
    writeln!(out, "{}", serde_json::to_string(&last)?)?;
    out.flush()?;
    Ok(())
}
