//! The reducer: shrink a finding while it keeps exactly its bucket.
//!
//! A reduction is a sequence of *candidates*, each a smaller or simpler variant of the current
//! case produced by one of the [`passes`]. A candidate replaces the current case only when the
//! caller's `test` (in production [`crate::harness::check`] in a sandbox) reports the very same
//! bucket: the same panic location, or the same engines disagreeing — "still fails somehow" is not
//! enough, or the reducer would happily slide from one bug into another.
//!
//! Candidates that cannot be what the workers see are discarded before any engine runs: each one
//! goes through its text form (the worker re-parses that text) and, when the original case
//! verified, through `cranelift_codegen::verify_function`. Every candidate text is tested at most
//! once. A candidate that makes some engine time out is rejected when the original terminated
//! everywhere (a panic outranks a timeout, so the bucket alone would let a loop lose its exit).
//! The passes run in a fixed order, round after round, until a whole round changes nothing;
//! with a deterministic `test` the result is deterministic.
//!
//! [`reduce_in`] is the production entry (sandbox + plan); [`output::render`] writes the
//! reproducer.

mod candidate;
mod ir;
pub mod isolated;
pub mod output;
pub mod passes;

use crate::case::TestCase;
use crate::harness::Plan;
use crate::oracle::Report;
use anyhow::{Result, bail};
use candidate::{Evaluator, Validity};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use ir::{count_insts, count_insts_fn};

/// Receives a [`Progress`] after every tested candidate.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Receives every accepted candidate (the best case so far).
pub type AcceptFn = Arc<dyn Fn(&TestCase) + Send + Sync>;

/// Limits and reporting of a reduction.
#[derive(Clone, Default)]
pub struct ReduceOptions {
    /// Stop after this many tested candidates, keeping the best case so far.
    pub max_candidates: Option<u64>,
    /// Stop after this much time, keeping the best case so far.
    pub time_limit: Option<Duration>,
    /// Called after every tested candidate.
    pub progress: Option<ProgressFn>,
    /// Called with every accepted candidate.
    pub on_accept: Option<AcceptFn>,
    /// Test-only faults of the reducer itself (see [`crate::engine::Faults`]).
    pub faults: crate::engine::Faults,
}

/// A snapshot of a running reduction.
#[derive(Clone, Debug)]
pub struct Progress {
    pub pass: &'static str,
    pub tried: u64,
    pub accepted: u64,
    pub insts: usize,
    pub functions: usize,
    pub elapsed: Duration,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub insts_before: usize,
    pub insts_after: usize,
    pub functions_before: usize,
    pub functions_after: usize,
    pub runs_before: usize,
    pub runs_after: usize,
    /// Candidates given to `test`.
    pub tried: u64,
    /// Candidates that kept the bucket (and so became the current case).
    pub accepted: u64,
    /// Candidates discarded without running: unparsable, rejected by the verifier, or without
    /// a property the original had (see `candidate::Validity`).
    pub discarded: u64,
    /// Candidates whose construction or checks panicked inside Cranelift (each rejected alone).
    #[serde(default)]
    pub panicked: u64,
    /// Candidates skipped because the same text was tested before.
    pub repeated: u64,
    /// Fixpoint rounds over all passes.
    pub rounds: u32,
    /// True when a limit stopped the reduction before the fixpoint.
    pub stopped_early: bool,
    #[serde(with = "millis")]
    pub elapsed: Duration,
}

impl Stats {
    /// Instructions after / before.
    pub fn ratio(&self) -> f64 {
        self.insts_after as f64 / self.insts_before.max(1) as f64
    }
}

mod millis {
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<std::time::Duration, D::Error> {
        Ok(std::time::Duration::from_millis(u64::deserialize(d)?))
    }
}

/// `plan` with tight limits for candidates, unless the finding is itself about limits.
///
/// Removing a loop exit or taking a back edge makes candidates that hang; under the default
/// limits each costs seconds (native timeout per engine, 10M interpreter steps). A candidate
/// that needs more than the tight limits is rejected, which only costs a missed reduction. Use
/// it when the original case reproduces under it; the reproducer records the original plan.
pub fn candidate_plan(plan: &Plan, bucket: &str) -> Plan {
    let mut fast = plan.clone();
    if !(bucket.starts_with("timeout:") || bucket.starts_with("oom:")) {
        fast.opts.timeout_ms = fast.opts.timeout_ms.min(FAST_TIMEOUT_MS);
        fast.opts.fuel = fast.opts.fuel.min(FAST_FUEL);
    }
    fast
}

/// The production reduction: candidates run under `plan` (with [`candidate_plan`]'s tight
/// limits when the original reproduces under them) in `sandbox`.
pub fn reduce_in(
    sandbox: &mut crate::sandbox::Sandbox,
    case: &TestCase,
    plan: &Plan,
    bucket: &str,
    opts: &ReduceOptions,
) -> Result<Reduced> {
    let case = TestCase::parse(&case.to_text())?;
    let fast = candidate_plan(plan, bucket);
    let plan = if fast != *plan
        && crate::harness::check(sandbox, &case, &fast)?
            .finding(bucket)
            .is_some()
    {
        fast
    } else {
        plan.clone()
    };
    let mut test = |c: &TestCase| crate::harness::check(sandbox, c, &plan);
    reduce(&case, bucket, &mut test, opts)
}

/// What a round must decrease, most important first: functions (inlining a call and dropping
/// the callee is progress even when the caller grows), `sarg` parameters (made explicit copies),
/// instructions that compute (a constant replacing a computation is progress; the instructions
/// it leaves dead go in the next round), all instructions, run lines, text length. No pass adds a
/// function or a `sarg`, so the order is well-founded.
fn measure(case: &TestCase) -> (usize, usize, usize, usize, usize, usize) {
    use cranelift_codegen::ir::{ArgumentPurpose, Opcode};
    let sargs = case
        .functions
        .iter()
        .flat_map(|f| &f.signature.params)
        .filter(|p| matches!(p.purpose, ArgumentPurpose::StructArgument(_)))
        .count();
    let computing = case
        .functions
        .iter()
        .map(|f| {
            crate::facts::insts(f)
                .filter(|&i| {
                    !matches!(
                        f.dfg.insts[i].opcode(),
                        Opcode::Iconst | Opcode::F32const | Opcode::F64const | Opcode::Vconst
                    )
                })
                .count()
        })
        .sum();
    (
        case.functions.len(),
        sargs,
        computing,
        count_insts(case),
        case.runs.len(),
        case.to_text().len(),
    )
}

/// Native wall-clock limit per run line for candidates.
pub const FAST_TIMEOUT_MS: u64 = 500;
/// Interpreter steps per run line for candidates.
pub const FAST_FUEL: u64 = 1_000_000;

/// The outcome of a reduction.
pub struct Reduced {
    /// The reduced case; its run lines carry the reference engine's results where it returned.
    pub case: TestCase,
    pub stats: Stats,
    /// The report of `case` itself.
    pub report: Report,
    /// The reduced finding, as `report` shows it.
    pub finding: crate::oracle::Finding,
}

/// Shrinks `case` while `test` keeps reporting `bucket`.
///
/// `test` must report `bucket` for `case` itself, or this fails. It is called once per candidate
/// and should contain crashes and hangs (the production `test` runs engines in a sandbox); an
/// `Err` from it aborts the reduction.
pub fn reduce(
    case: &TestCase,
    bucket: &str,
    test: &mut dyn FnMut(&TestCase) -> Result<Report>,
    opts: &ReduceOptions,
) -> Result<Reduced> {
    let start = Instant::now();
    // The reduction works on what the workers see: the case as printed and parsed back.
    let case = TestCase::parse(&case.to_text())?;
    let report = test(&case)?;
    if report.finding(bucket).is_none() {
        bail!(
            "the case does not reproduce bucket `{bucket}` (it gives `{}`)",
            crate::harness::expectation(&report)
        );
    }
    let mut stats = Stats {
        insts_before: count_insts(&case),
        functions_before: case.functions.len(),
        runs_before: case.runs.len(),
        ..Stats::default()
    };
    let validity = Validity::of(&case);
    let mut ev = Evaluator::new(case, report, bucket, test, opts, validity, start);
    ev.focus()?;

    // Some passes rewrite without shrinking (constants, types, names), and two of them can
    // undo each other's work under fresh value numbers, which the repeat check cannot see. A
    // round therefore has to make the case strictly smaller to earn another one: that bounds
    // the number of rounds whatever the passes do.
    let mut size = measure(&ev.current);
    'fixpoint: loop {
        stats.rounds += 1;
        let before = ev.accepted;
        for pass in passes::all() {
            passes::run(pass.as_ref(), &mut ev)?;
            if ev.out_of_budget() {
                stats.stopped_early = true;
                break 'fixpoint;
            }
        }
        let now = measure(&ev.current);
        if ev.accepted == before || now >= size {
            break;
        }
        size = now;
    }
    // Expectations last: they are not part of the search, but the reproducer's `; run:` lines
    // must say what the reference engine computes.
    output::fill_expectations(&mut ev)?;

    let current = ev.current.clone();
    let finding = ev
        .report
        .finding(bucket)
        .cloned()
        .expect("the acceptance rule keeps the finding");
    stats.insts_after = count_insts(&current);
    stats.functions_after = current.functions.len();
    stats.runs_after = current.runs.len();
    stats.tried = ev.tried;
    stats.accepted = ev.accepted;
    stats.discarded = ev.discarded;
    stats.panicked = ev.panicked;
    stats.repeated = ev.repeated;
    stats.elapsed = start.elapsed();
    Ok(Reduced {
        case: current,
        report: ev.report.clone(),
        finding,
        stats,
    })
}

#[cfg(test)]
mod tests;
