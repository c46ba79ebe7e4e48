//! Run lines: drop them, and forget their written expectations.

use super::{Pass, edit};
use crate::case::{Expect, TestCase};
use std::ops::Range;

/// Turns every `; run: ... == v` into `; print:`. Written expectations are a voice of the oracle
/// (`mismatch:expected!=…`); while the functions shrink they would disagree with any change, so
/// they go first — unless the finding is about them. The reproducer gets fresh ones at the end.
pub struct ForgetExpectations;

impl Pass for ForgetExpectations {
    fn name(&self) -> &'static str {
        "forget-expectations"
    }
    fn count(&self, case: &TestCase) -> usize {
        usize::from(case.runs.iter().any(|r| !matches!(r.expect, Expect::Print)))
    }
    fn apply(&self, case: &TestCase, _: Range<usize>) -> Option<TestCase> {
        edit(case, |c| {
            for r in &mut c.runs {
                r.expect = Expect::Print;
            }
            Some(())
        })
    }
}

/// Removes run lines.
pub struct DropRuns;

impl Pass for DropRuns {
    fn name(&self) -> &'static str {
        "drop-runs"
    }
    fn count(&self, case: &TestCase) -> usize {
        case.runs.len()
    }
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase> {
        if atoms.len() >= case.runs.len() {
            return None; // a case without run lines shows nothing
        }
        edit(case, |c| {
            c.runs.drain(atoms);
            Some(())
        })
    }
    fn chunked(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    const TWO_RUNS: &str = "test run
target x86_64

function %f(i32) -> i32 system_v {
block0(v0: i32):
    return v0
}
; run: %f(1) == 1
; run: %f(2) == 2
; run: %f(3) == 3
";

    #[test]
    fn drops_all_but_the_run_line_that_matters() {
        let c = case(TWO_RUNS);
        let out = run_pass(&DropRuns, &c, |t| {
            t.runs.iter().any(|r| r.args[0].to_string() == "2")
        });
        assert_eq!(out.runs.len(), 1);
        assert_eq!(out.runs[0].args[0].to_string(), "2");
    }

    #[test]
    fn expectations_become_prints() {
        let c = case(TWO_RUNS);
        let out = run_pass(&ForgetExpectations, &c, |_| true);
        assert!(out.runs.iter().all(|r| matches!(r.expect, Expect::Print)));
        assert!(out.to_text().contains("; print: %f(2)"));
    }
}
