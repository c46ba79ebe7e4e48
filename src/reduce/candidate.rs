//! Judging one candidate: cheap validity checks first, then the caller's `test`.

use super::ir::ext_name;
use super::{Progress, ReduceOptions, count_insts};
use crate::case::{TestCase, testcase_name};
use crate::oracle::Report;
use crate::outcome::Outcome;
use crate::target::build_isa;
use anyhow::Result;
use std::collections::HashSet;
use std::time::Instant;

/// The static properties the original case has, which every candidate must keep.
///
/// A property the original lacks is not enforced: a finding may be *about* a function the
/// verifier rejects, and then the reducer must not filter such candidates out.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    /// The target and settings build an ISA.
    isa: bool,
    /// Every function passes `verify_function`.
    verifies: bool,
    /// Every call of a case function uses that function's own signature.
    calls_match: bool,
    /// Every stack slot is written before it is read (see [`super::init`]).
    slots_initialized: bool,
}

impl Validity {
    pub fn of(case: &TestCase) -> Validity {
        let isa = build_isa(case, &[]).is_ok();
        Validity {
            isa,
            verifies: isa && verifies(case),
            calls_match: calls_match(case),
            slots_initialized: super::init::slots_initialized(&case.functions),
        }
    }

    pub fn admits(&self, case: &TestCase) -> bool {
        (!self.isa || build_isa(case, &[]).is_ok())
            && (!self.verifies || verifies(case))
            && (!self.calls_match || calls_match(case))
            && (!self.slots_initialized || super::init::slots_initialized(&case.functions))
    }
}

fn verifies(case: &TestCase) -> bool {
    let Ok(isa) = build_isa(case, &[]) else {
        return false;
    };
    // The verifier itself can panic on odd input (e.g. `iconst.i128`); that is a "no" as well.
    crate::panics::catch(|| {
        case.functions
            .iter()
            .all(|f| cranelift_codegen::verify_function(f, &*isa).is_ok())
    })
    .unwrap_or(false)
}

/// True when every external function named like a case function is declared with exactly that
/// function's signature (the verifier checks functions one at a time and cannot see this).
pub fn calls_match(case: &TestCase) -> bool {
    case.functions.iter().all(|g| {
        g.dfg.ext_funcs.iter().all(|(fr, ext)| {
            let Some(name) = ext_name(g, fr) else {
                return true;
            };
            match case.functions.iter().find(|f| testcase_name(f) == name) {
                Some(f) => g.dfg.signatures[ext.signature] == f.signature,
                None => true,
            }
        })
    })
}

/// Did some engine run out of time or fuel on some run line?
fn hangs(report: &Report) -> bool {
    report
        .runs
        .iter()
        .flat_map(|r| &r.outcomes)
        .any(|o| matches!(o, Outcome::Timeout { .. }))
}

/// What each engine did on the finding's run line, by kind (`returned`, `trap int_divz`,
/// `panic`, ...). Candidates must keep it: a mismatch bucket survives when the interpreter starts
/// trapping on an address the reduction made up, but that is a different finding — an
/// artefact of the candidate, not the bug being reduced.
fn shape(report: &Report) -> Vec<String> {
    let Some(run) = report.run.and_then(|i| report.runs.get(i)) else {
        return Vec::new();
    };
    run.outcomes
        .iter()
        .map(|o| match o {
            Outcome::Trap { code } => format!("trap {code}"),
            o => o.kind().to_string(),
        })
        .collect()
}

/// The state of a reduction: the current case and the bookkeeping of candidates.
pub struct Evaluator<'a> {
    pub current: TestCase,
    /// `current`'s report.
    pub report: Report,
    bucket: String,
    test: &'a mut dyn FnMut(&TestCase) -> Result<Report>,
    opts: &'a ReduceOptions,
    validity: Validity,
    /// The original case terminates on every engine; candidates must too.
    terminates: bool,
    /// The original's [`shape`]; candidates must keep it.
    shape: Vec<String>,
    seen: HashSet<String>,
    start: Instant,
    /// The pass proposing candidates, for progress reports.
    pub pass: &'static str,
    pub tried: u64,
    pub accepted: u64,
    pub discarded: u64,
    pub repeated: u64,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        current: TestCase,
        report: Report,
        bucket: &str,
        test: &'a mut dyn FnMut(&TestCase) -> Result<Report>,
        opts: &'a ReduceOptions,
        validity: Validity,
        start: Instant,
    ) -> Evaluator<'a> {
        let mut seen = HashSet::new();
        seen.insert(current.to_text());
        let terminates = !hangs(&report);
        Evaluator {
            terminates,
            shape: shape(&report),
            current,
            report,
            bucket: bucket.to_string(),
            test,
            opts,
            validity,
            seen,
            start,
            pass: "start",
            tried: 0,
            accepted: 0,
            discarded: 0,
            repeated: 0,
        }
    }

    /// Tests `cand`; when it keeps the bucket it becomes the current case. Returns whether it
    /// was accepted.
    pub fn try_candidate(&mut self, cand: &TestCase) -> Result<bool> {
        let text = cand.to_text();
        if !self.seen.insert(text.clone()) {
            self.repeated += 1;
            return Ok(false);
        }
        // What the workers will see is the text parsed back; if that fails, so would they.
        let Ok(parsed) = TestCase::parse(&text) else {
            self.discarded += 1;
            return Ok(false);
        };
        if parsed.functions.is_empty() || !self.validity.admits(&parsed) {
            self.discarded += 1;
            return Ok(false);
        }
        let report = (self.test)(&parsed)?;
        self.tried += 1;
        let keep = self.keeps(&report);
        if keep {
            self.accepted += 1;
            self.current = parsed;
            self.report = report;
        }
        self.progress();
        Ok(keep)
    }

    fn progress(&self) {
        if let Some(p) = &self.opts.progress {
            p(&Progress {
                pass: self.pass,
                tried: self.tried,
                accepted: self.accepted,
                insts: count_insts(&self.current),
                functions: self.current.functions.len(),
                elapsed: self.start.elapsed(),
            });
        }
    }

    /// Tests `cand` against the bucket without making it current (used for the final touches,
    /// which are not reductions).
    pub fn probe(&mut self, cand: &TestCase) -> Result<Option<Report>> {
        let report = (self.test)(cand)?;
        self.tried += 1;
        self.progress();
        let keep = self.keeps(&report);
        Ok(keep.then_some(report))
    }

    /// The acceptance rule: same bucket, same outcome kinds on the finding's run line, and no
    /// new hang. A reproducer that hangs somewhere is a worse reproducer even when a more severe
    /// outcome (a panic) still names the bucket: taking a loop's back edge is not a reduction.
    fn keeps(&self, report: &Report) -> bool {
        report.bucket == self.bucket
            && shape(report) == self.shape
            && !(self.terminates && hangs(report))
    }

    pub fn out_of_budget(&self) -> bool {
        self.opts.max_candidates.is_some_and(|m| self.tried >= m)
            || self
                .opts
                .time_limit
                .is_some_and(|t| self.start.elapsed() >= t)
    }
}
