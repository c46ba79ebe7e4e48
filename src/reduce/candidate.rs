//! Judging one candidate: cheap validity checks first, then the caller's `test`.

use super::{Progress, ReduceOptions, count_insts};
use crate::case::TestCase;
use crate::facts;
use crate::oracle::Report;
use crate::outcome::Outcome;
use crate::target::build_isa;
use anyhow::Result;
use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

/// The static properties the original case has, which every candidate must keep.
///
/// A property the original lacks is not enforced: a finding may be *about* a function the
/// verifier rejects, and then the reducer must not filter such candidates out. The properties
/// are the generator's guarantees (see [`crate::facts`]): a candidate that loses one has drifted
/// towards undefined behaviour, where any "mismatch" is an artefact.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    /// The target and settings build an ISA.
    isa: bool,
    /// Every function passes `verify_function`.
    verifies: bool,
    /// Every call of a case function uses that function's own signature.
    calls_match: bool,
    /// Every indirect call goes through a `func_addr` of a function of its signature.
    indirect_calls: bool,
    /// Every memory access (and `sarg` copy) stays inside a region of known size.
    in_bounds: bool,
    /// Every stack slot is written before it is read.
    slots_initialized: bool,
    /// No integer division can trap.
    divisions_guarded: bool,
    /// No address is observed (returned, stored as data): addresses differ between engines.
    addresses_unobserved: bool,
    /// Every `memcmp` result is only compared with zero: its value beyond the sign is libc's.
    memcmp_signs_only: bool,
}

impl Validity {
    pub fn of(case: &TestCase) -> Validity {
        let isa = build_isa(case, &[]).is_ok();
        Validity {
            isa,
            verifies: isa && verifies(case),
            calls_match: facts::calls_match(case),
            indirect_calls: facts::indirect_calls_resolved(case),
            in_bounds: facts::memory::accesses_in_bounds(case),
            slots_initialized: facts::memory::slots_initialized(&case.functions),
            divisions_guarded: facts::guards::divisions_guarded(case),
            addresses_unobserved: facts::addresses::addresses_unobserved(case),
            memcmp_signs_only: facts::memory::memcmp_signs_only(case),
        }
    }

    pub fn admits(&self, case: &TestCase) -> bool {
        (!self.isa || build_isa(case, &[]).is_ok())
            && (!self.verifies || verifies(case))
            && (!self.calls_match || facts::calls_match(case))
            && (!self.indirect_calls || facts::indirect_calls_resolved(case))
            && (!self.in_bounds || facts::memory::accesses_in_bounds(case))
            && (!self.slots_initialized || facts::memory::slots_initialized(&case.functions))
            && (!self.divisions_guarded || facts::guards::divisions_guarded(case))
            && (!self.addresses_unobserved || facts::addresses::addresses_unobserved(case))
            && (!self.memcmp_signs_only || facts::memory::memcmp_signs_only(case))
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

/// Did some engine run out of time or fuel on some run line?
fn hangs(report: &Report) -> bool {
    report
        .runs
        .iter()
        .flat_map(|r| &r.outcomes)
        .any(|o| matches!(o, Outcome::Timeout { .. }))
}

/// What each engine did on run line `run`, by kind (`returned`, `trap int_divz`, `panic`, ...)
/// and, where it returned, with the types of its values. Candidates must keep it on the
/// finding's line: a mismatch bucket survives when the interpreter starts trapping on an
/// address the reduction made up, or returns an `i8` where the native code returns an `i64`
/// (an indirect call through the wrong signature), but that is a different finding — an
/// artefact of the candidate, not the bug being reduced.
fn shape(report: &Report, run: usize) -> Vec<String> {
    let Some(run) = report.runs.get(run) else {
        return Vec::new();
    };
    run.outcomes
        .iter()
        .map(|o| match o {
            Outcome::Trap { code } => format!("trap {code}"),
            Outcome::Returned { values } => {
                let tys: Vec<String> = values.iter().map(|v| v.ty().to_string()).collect();
                format!("returned ({})", tys.join(", "))
            }
            o => o.kind().to_string(),
        })
        .collect()
}

/// Every bucket `report` shows.
fn buckets(report: &Report) -> BTreeSet<String> {
    report.findings.iter().map(|f| f.bucket.clone()).collect()
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
    /// The original's [`shape`] on the finding's line; candidates must keep it.
    shape: Vec<String>,
    /// The run line of `current` that shows the finding.
    pub run: usize,
    seen: HashSet<String>,
    start: Instant,
    /// The pass proposing candidates, for progress reports.
    pub pass: &'static str,
    pub tried: u64,
    pub accepted: u64,
    pub discarded: u64,
    /// Candidates on which Cranelift code panicked (building, printing or checking them).
    pub panicked: u64,
    pub repeated: u64,
    /// Candidates built so far (the count the reducer's test faults refer to).
    pub built: u64,
    pub faults: crate::engine::Faults,
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
        let run = report.finding(bucket).map_or(0, |f| f.run);
        Evaluator {
            terminates,
            shape: shape(&report, run),
            run,
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
            panicked: 0,
            repeated: 0,
            built: 0,
            faults: opts.faults.clone(),
        }
    }

    /// Tests `cand`; when it keeps the bucket it becomes the current case. Returns whether it
    /// was accepted.
    pub fn try_candidate(&mut self, cand: &TestCase) -> Result<bool> {
        // Printing odd IR is Cranelift code too; a candidate it chokes on is no candidate.
        let Ok(text) = crate::panics::catch(|| cand.to_text()) else {
            self.discarded += 1;
            self.panicked += 1;
            return Ok(false);
        };
        if !self.seen.insert(text.clone()) {
            self.repeated += 1;
            return Ok(false);
        }
        // What the workers will see is the text parsed back; if that fails, so would they. Every
        // static check reads (and verifies) IR the reducer made: a panic rejects the candidate.
        let validity = self.validity;
        let parsed = crate::panics::catch(|| {
            TestCase::parse(&text)
                .ok()
                .filter(|p| !p.functions.is_empty() && validity.admits(p))
        });
        let parsed = match parsed {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.discarded += 1;
                return Ok(false);
            }
            Err(_) => {
                self.discarded += 1;
                self.panicked += 1;
                return Ok(false);
            }
        };
        let report = (self.test)(&parsed)?;
        self.tried += 1;
        let keep = self.keeps(&report);
        if let Some(run) = keep {
            self.accepted += 1;
            self.current = parsed;
            self.report = report;
            self.run = run;
            if let Some(f) = &self.opts.on_accept {
                f(&self.current);
            }
        }
        self.progress();
        Ok(keep.is_some())
    }

    /// Keeps only the finding's run line: every later candidate then has exactly that line,
    /// so the reproducer shows the finding on the line it came from, not on another one that
    /// happens to share its bucket.
    pub fn focus(&mut self) -> Result<bool> {
        if self.current.runs.len() <= 1 {
            return Ok(true);
        }
        self.pass = "focus";
        let mut cand = self.current.clone();
        let line = cand.runs[self.run].clone();
        cand.runs = vec![line];
        self.try_candidate(&cand)
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
        Ok(keep.map(|_| report))
    }

    /// The acceptance rule, giving the line that shows the finding: the bucket is still
    /// there, with the same outcome kinds and result types on its line; no finding appears that
    /// the current case did not have (a reduction must not slide into another bug); and no new
    /// hang (a reproducer that hangs somewhere is worse even when a more severe outcome still
    /// names the bucket: taking a loop's back edge is not a reduction).
    fn keeps(&self, report: &Report) -> Option<usize> {
        let f = report.finding(&self.bucket)?;
        let mut allowed = buckets(&self.report);
        allowed.insert(self.bucket.clone());
        (shape(report, f.run) == self.shape
            && buckets(report).is_subset(&allowed)
            && !(self.terminates && hangs(report)))
        .then_some(f.run)
    }

    pub fn out_of_budget(&self) -> bool {
        self.opts.max_candidates.is_some_and(|m| self.tried >= m)
            || self
                .opts
                .time_limit
                .is_some_and(|t| self.start.elapsed() >= t)
    }
}
