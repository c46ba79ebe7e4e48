//! Functions: drop the ones no other function refers to (with the run lines that invoke them).

use super::{Pass, edit};
use crate::case::{TestCase, testcase_name};
use crate::reduce::ir::is_referenced;
use std::ops::Range;

pub struct DropFunctions;

fn droppable(case: &TestCase) -> Vec<String> {
    case.functions
        .iter()
        .map(testcase_name)
        .filter(|n| !is_referenced(case, n))
        .collect()
}

impl Pass for DropFunctions {
    fn name(&self) -> &'static str {
        "drop-functions"
    }
    fn count(&self, case: &TestCase) -> usize {
        droppable(case).len()
    }
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase> {
        let names = droppable(case);
        let gone = names.get(atoms)?;
        edit(case, |c| {
            c.functions.retain(|f| !gone.contains(&testcase_name(f)));
            c.runs.retain(|r| !gone.contains(&r.func));
            (!c.functions.is_empty() && !c.runs.is_empty()).then_some(())
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

    #[test]
    fn only_unreferenced_functions_go() {
        let c = case(
            "test interpret
test run
target x86_64

function %leaf() -> i32 system_v {
block0:
    v0 = iconst.i32 1
    return v0
}

function %unused() -> i32 system_v {
block0:
    v0 = iconst.i32 2
    return v0
}

function %main() -> i32 system_v {
    fn0 = colocated %leaf() -> i32 system_v
block0:
    v0 = call fn0()
    return v0
}
; print: %main()
; print: %unused()
",
        );
        assert_eq!(DropFunctions.count(&c), 2); // %unused and %main; %leaf is called
        // Keep while %main is there: %unused (and its run line) goes, %leaf stays.
        let out = run_pass(&DropFunctions, &c, |t| t.function("main").is_some());
        let names: Vec<String> = out.functions.iter().map(testcase_name).collect();
        assert_eq!(names, ["leaf", "main"]);
        assert_eq!(out.runs.len(), 1);
    }
}
