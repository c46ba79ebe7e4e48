//! The object path in batches: many cases, one object file, one link, one process.
//!
//! Per case, the object engine's cost is dominated by what is not Cranelift: a `cc` process to
//! link, and a process (plus, for foreign targets, a qemu start-up) to run. A batch compiles all
//! its cases into one object (each case's symbols under its own prefix, see
//! [`super::object::batch_prefix`]), links once, and runs every run line of every case through
//! one driver process.
//!
//! Isolation is kept per case:
//! * a fault or hang at run time costs one run line: the driver reports it and the remaining
//!   calls continue in a fresh process of the same program (see [`Linked::execute`]);
//! * every case is its own object file with its own `TargetIsa`, so settings may differ within
//!   a batch and a case Cranelift refuses (an error or a panic) just keeps that outcome;
//! * a failed link (an undefined import, a clash) fails the whole program, so such a batch is
//!   bisected until the failing cases stand alone, while the others still run batched;
//! * cases for different architectures never share a program: [`run_batch`] groups them.
//!
//! Batched outcomes are a screening: a case whose miscompiled code silently scribbles over the
//! driver's memory (without faulting) could disturb later calls of the same process. Confirm a
//! finding with the single-case path before filing it.

use super::object::{Call, Linked};
use super::program::Program;
use super::{EngineSpec, RunOptions};
use crate::case::TestCase;
use crate::outcome::{Outcome, Phase};
use std::collections::BTreeMap;

/// Most cases linked into one program; larger groups are split into several batches.
pub const MAX_BATCH: usize = 256;

/// A case's target line and settings, e.g. `aarch64 opt_level=none` (for reporting by group).
pub fn batch_key(case: &TestCase) -> String {
    let mut key = case.target.clone().unwrap_or_else(|| "host".into());
    for (k, v) in &case.settings {
        key.push_str(&format!(" {k}={v}"));
    }
    key
}

/// Runs every run line of every case on the object engine `spec`; `result[case][run]`.
///
/// `cases` may mix targets and settings (they are grouped); every case gets exactly one outcome
/// per run line, whatever happens to the others. `opts` applies to all cases (per-case
/// directives are the caller's to honour by grouping).
pub fn run_batch(cases: &[&TestCase], spec: &EngineSpec, opts: &RunOptions) -> Vec<Vec<Outcome>> {
    let mut got: Vec<Vec<Option<Outcome>>> =
        cases.iter().map(|c| vec![None; c.runs.len()]).collect();
    run_batch_with(cases, spec, opts, &mut |k, run, o| got[k][run] = Some(o));
    got.into_iter()
        .map(|runs| {
            runs.into_iter()
                .map(|o| {
                    o.unwrap_or_else(|| Outcome::Error {
                        phase: Phase::Run,
                        message: "no outcome from the batch".into(),
                    })
                })
                .collect()
        })
        .collect()
}

/// [`run_batch`], reporting `(case index, run index, outcome)` as soon as each is known.
pub fn run_batch_with(
    cases: &[&TestCase],
    spec: &EngineSpec,
    opts: &RunOptions,
    report: &mut dyn FnMut(usize, usize, Outcome),
) {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (k, case) in cases.iter().enumerate() {
        if case.runs.is_empty() {
            continue;
        }
        // A case the driver cannot call at all never enters a batch.
        if let Err(o) = Program::plan(case, "") {
            for run in 0..case.runs.len() {
                report(k, run, o.clone());
            }
            continue;
        }
        // One program per target architecture; settings may differ within it (one object file
        // per settings group).
        // A case no program can link is not put in one (it would fail its batch's link).
        if let Some(reason) = super::undefined_symbol(case) {
            for run in 0..case.runs.len() {
                report(
                    k,
                    run,
                    Outcome::Unsupported {
                        reason: reason.clone(),
                    },
                );
            }
            continue;
        }
        let arch = match crate::target::case_arch(case) {
            Ok(a) => a.name().to_string(),
            Err(e) => {
                let o = Outcome::Error {
                    phase: Phase::Setup,
                    message: format!("{e:#}"),
                };
                for run in 0..case.runs.len() {
                    report(k, run, o.clone());
                }
                continue;
            }
        };
        groups.entry(arch).or_default().push(k);
    }
    for members in groups.values() {
        for chunk in members.chunks(MAX_BATCH) {
            run_group(cases, chunk, spec, opts, report);
        }
    }
}

fn run_group(
    cases: &[&TestCase],
    members: &[usize],
    spec: &EngineSpec,
    opts: &RunOptions,
    report: &mut dyn FnMut(usize, usize, Outcome),
) {
    let batch: Vec<&TestCase> = members.iter().map(|&k| cases[k]).collect();
    match Linked::build(&batch, spec) {
        Ok(linked) => {
            let mut calls: Vec<Call> = Vec::new();
            for (b, case) in batch.iter().enumerate() {
                let skipped = crate::target::host_lacks_reason(case)
                    .map(|reason| Outcome::Skipped { reason });
                match linked.failure(b).or(skipped.as_ref()) {
                    Some(o) => {
                        for run in 0..case.runs.len() {
                            report(members[b], run, o.clone());
                        }
                    }
                    None => calls.extend((0..case.runs.len()).map(|r| linked.call(b, case, r))),
                }
            }
            linked.execute(&calls, opts, &mut |c, o| report(members[c.case], c.run, o));
        }
        Err(o) if members.len() > 1 && case_specific(&o) => {
            let (a, b) = members.split_at(members.len() / 2);
            run_group(cases, a, spec, opts, report);
            run_group(cases, b, spec, opts, report);
        }
        Err(o) => {
            for &k in members {
                for run in 0..cases[k].runs.len() {
                    report(k, run, o.clone());
                }
            }
        }
    }
}

/// Whether a failed build may be one case's fault (worth bisecting), rather than something all
/// cases of the batch share (a missing toolchain).
fn case_specific(o: &Outcome) -> bool {
    !o.is_unsupported()
}
