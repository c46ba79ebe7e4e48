//! Reduction passes, one family per file, and the loop that drives one pass.
//!
//! A pass sees the current case as a list of *atoms* — independent edits it could make, in a
//! fixed order (a run line to drop, an instruction to remove, a constant to set to 0). Removal
//! passes are *chunked*: they first try to apply many atoms at once and halve the chunk on
//! failure, as delta debugging does; other passes try one atom at a time. After an accepted
//! candidate the atoms are recounted on the new case and the scan resumes at the same index,
//! which now names the next atom.

mod canon;
mod cfg;
mod constants;
mod data;
mod devirtualize;
mod functions;
mod inline;
mod insts;
mod runs;
mod settings;
mod signature;
mod slots;
mod tailcalls;
mod types;

use super::candidate::Evaluator;
use crate::case::TestCase;
use anyhow::Result;
use std::ops::Range;

pub use canon::{Canonicalize, rename_functions, renumber};
pub use cfg::{MergeBlocks, SimplifyBranches};
pub use constants::{ConstResults, SimplifyConstants};
pub use data::ShrinkData;
pub use devirtualize::Devirtualize;
pub use functions::DropFunctions;
pub use inline::InlineCalls;
pub use insts::{BypassInsts, RemoveInsts, ShortcutInsts};
pub use runs::{DropRuns, ForgetExpectations};
pub use settings::DropSettings;
pub use signature::{ExplicitSargCopies, RemoveParams, RemoveReturns, ShrinkSargs};
pub use slots::{DropWriteOnlySlots, ShrinkSlots};
pub use tailcalls::UntailCalls;
pub use types::NarrowTypes;

pub trait Pass {
    fn name(&self) -> &'static str;
    /// How many atoms `case` offers this pass.
    fn count(&self, case: &TestCase) -> usize;
    /// `case` with the atoms `atoms` applied, or `None` when they do not apply.
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase>;
    /// Whether atoms may be applied many at once.
    fn chunked(&self) -> bool {
        false
    }
}

/// Every pass, in the order a round runs them: big cheap cuts first, cosmetics last.
pub fn all() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(ForgetExpectations),
        Box::new(DropRuns),
        Box::new(DropFunctions),
        Box::new(UntailCalls),
        Box::new(SimplifyBranches),
        Box::new(RemoveInsts),
        Box::new(BypassInsts),
        Box::new(ShortcutInsts),
        Box::new(MergeBlocks),
        // What is left of the call graph is flattened where the finding allows, and the
        // callees that leaves unreferenced go.
        Box::new(Devirtualize),
        Box::new(ExplicitSargCopies),
        Box::new(InlineCalls),
        Box::new(DropFunctions),
        Box::new(RemoveParams),
        Box::new(RemoveReturns),
        Box::new(ShrinkSargs),
        Box::new(DropWriteOnlySlots),
        Box::new(ShrinkSlots),
        Box::new(ShrinkData),
        Box::new(NarrowTypes),
        Box::new(SimplifyConstants),
        Box::new(ConstResults),
        Box::new(DropSettings),
        Box::new(Canonicalize),
    ]
}

/// Runs `pass` over the current case until it has tried every atom once.
pub fn run(pass: &dyn Pass, ev: &mut Evaluator) -> Result<()> {
    ev.pass = pass.name();
    // Counting atoms is IR reading, but some passes ask Cranelift for the types a rewrite would
    // give (`isplit` of an `i8` has none): a panic there means "nothing to try".
    let count = |c: &TestCase| crate::panics::catch(|| pass.count(c)).unwrap_or(0);
    let mut n = count(&ev.current);
    let mut k = if pass.chunked() { n.max(1) } else { 1 };
    // A pass whose rewrites do not shrink the case could accept forever (each rewrite under
    // fresh value numbers is new text): bound what one run of a pass may accept.
    let mut allowance = 4 * n + 64;
    loop {
        let mut i = 0;
        while i < n {
            if ev.out_of_budget() {
                return Ok(());
            }
            let end = (i + k).min(n);
            // IR surgery on odd input can trip Cranelift's internal assertions; such a candidate
            // is as good as none, and must not take the reduction down.
            let built = ev.built;
            ev.built += 1;
            let faults = &ev.faults;
            let cand = crate::panics::catch(|| {
                fault(faults, built, &ev.current);
                pass.apply(&ev.current, i..end)
            });
            let accepted = match cand {
                Ok(Some(cand)) => ev.try_candidate(&cand)?,
                Ok(None) => false,
                Err(_) => {
                    ev.discarded += 1;
                    ev.panicked += 1;
                    false
                }
            };
            if accepted {
                n = count(&ev.current);
                allowance = allowance.saturating_sub(1);
                if allowance == 0 {
                    return Ok(());
                }
            } else {
                i = end;
            }
        }
        if k == 1 {
            return Ok(());
        }
        k = k.div_ceil(2).min(n.max(1));
    }
}

/// The reducer's test-only faults, at the `n`-th candidate built.
fn fault(faults: &crate::engine::Faults, n: u64, case: &TestCase) {
    if faults.reducer_abort_at == Some(n) {
        eprintln!("clif-diff: reducer-abort-at:{n}: aborting");
        std::process::abort();
    }
    if faults.reducer_panic_at == Some(n)
        && let Some(f) = case.functions.first()
    {
        // What candidates of the narrow-types pass once did: an `isplit` of a type that has
        // no half, which Cranelift's IR builder refuses with a panic.
        use cranelift_codegen::cursor::{Cursor, FuncCursor};
        use cranelift_codegen::ir::{InstBuilder, types};
        let mut f = f.clone();
        let entry = f
            .layout
            .entry_block()
            .expect("a function has an entry block");
        let mut pos = FuncCursor::new(&mut f).at_first_insertion_point(entry);
        let v = pos.ins().iconst(types::I8, 1);
        pos.ins().isplit(v);
    }
}

/// Applies `f` to a clone of `case`; `None` if `f` declines.
pub(crate) fn edit(
    case: &TestCase,
    f: impl FnOnce(&mut TestCase) -> Option<()>,
) -> Option<TestCase> {
    let mut c = case.clone();
    f(&mut c)?;
    Some(c)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the passes' unit tests: apply a pass to a small case with a fake `test`.

    use super::*;
    use crate::engine::{EngineKind, EngineSpec};
    use crate::oracle::{Report, Verdict};
    use crate::reduce::{ReduceOptions, reduce};

    pub fn case(text: &str) -> TestCase {
        TestCase::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// A report carrying just a bucket (as its one finding, unless it is `agree`).
    pub fn report(bucket: &str) -> Report {
        let verdict = if bucket == "agree" {
            Verdict::Agree
        } else {
            Verdict::Mismatch
        };
        Report {
            engines: vec![EngineSpec::plain(EngineKind::Interp)],
            runs: Vec::new(),
            verdict,
            bucket: bucket.to_string(),
            run: None,
            findings: if bucket == "agree" {
                Vec::new()
            } else {
                vec![crate::oracle::Finding {
                    verdict,
                    bucket: bucket.to_string(),
                    run: 0,
                    sides: Vec::new(),
                }]
            },
            invalid: None,
            engine_micros: vec![0],
            screened_as: None,
        }
    }

    /// Every candidate `pass` proposes one atom at a time, as text, after the driver's checks.
    pub fn candidates(pass: &dyn Pass, c: &TestCase) -> Vec<String> {
        (0..pass.count(c))
            .filter_map(|i| pass.apply(c, i..i + 1))
            .map(|c| c.to_text())
            .collect()
    }

    /// Reduces `c` with `keep` as the test: the bucket is `"x"` while `keep` holds.
    pub fn reduce_with(c: &TestCase, keep: impl Fn(&TestCase) -> bool) -> TestCase {
        let mut test = |t: &TestCase| Ok(report(if keep(t) { "x" } else { "agree" }));
        reduce(c, "x", &mut test, &ReduceOptions::default())
            .unwrap()
            .case
    }

    /// Runs only `pass` (to its end) with `keep` as the test.
    pub fn run_pass(pass: &dyn Pass, c: &TestCase, keep: impl Fn(&TestCase) -> bool) -> TestCase {
        use crate::reduce::candidate::{Evaluator, Validity};
        let mut test = |t: &TestCase| Ok(report(if keep(t) { "x" } else { "agree" }));
        let opts = ReduceOptions::default();
        let c = TestCase::parse(&c.to_text()).unwrap();
        let mut ev = Evaluator::new(
            c.clone(),
            report("x"),
            "x",
            &mut test,
            &opts,
            Validity::of(&c),
            std::time::Instant::now(),
        );
        run(pass, &mut ev).unwrap();
        ev.current
    }
}
