//! The reproducer: the reduced case in upstream's filetest format, with real expectations, the
//! directives that replay it, and a header saying what it shows.

use super::Reduced;
use super::candidate::Evaluator;
use crate::case::{Expect, TestCase};
use crate::engine::EngineKind;
use crate::harness::{Plan, keys};
use crate::known::KnownBuckets;
use crate::oracle::Report;
use crate::outcome::Outcome;
use anyhow::Result;
use cranelift_codegen::ir::ArgumentPurpose;
use std::fmt::Write as _;

/// Index of the reference engine in `report`: the plain interpreter if it runs, else the first.
pub fn reference(report: &Report) -> usize {
    report
        .engines
        .iter()
        .position(|e| e.kind == EngineKind::Interp && e.overrides.is_empty())
        .unwrap_or(0)
}

/// Sets every run line of `case` to expect what the reference engine did in `report`: its
/// values (`; run: … == v`), its trap (an `expect-trap` directive in place of the line), or nothing
/// (`; print:`) where it did neither.
pub fn expect_reference(case: &mut TestCase, report: &Report) {
    let r = reference(report);
    for (run, rep) in case.runs.iter_mut().zip(&report.runs) {
        run.expect = match rep.outcomes.get(r) {
            Some(Outcome::Returned { values }) => Expect::Eq(values.clone()),
            Some(Outcome::Trap { code }) => Expect::Trap(code.clone()),
            _ => Expect::Print,
        };
    }
}

/// The case with every run line expecting what the reference engine returned (`; print:` where
/// it did not return), if that keeps the bucket.
pub(super) fn fill_expectations(ev: &mut Evaluator) -> Result<()> {
    if ev.report.bucket.starts_with("mismatch:expected") {
        return Ok(()); // the written expectations are the finding
    }
    ev.pass = "expectations";
    let mut cand = ev.current.clone();
    expect_reference(&mut cand, &ev.report);
    if cand.to_text() == ev.current.to_text() {
        return Ok(());
    }
    let cand = TestCase::parse(&cand.to_text())?;
    if let Some(report) = ev.probe(&cand)? {
        ev.current = cand;
        ev.report = report;
    }
    Ok(())
}

/// Whether the interpreter's own result is part of `finding`: named in its bucket, or the
/// engine that failed.
pub fn interp_is_a_side(report: &Report, finding: &crate::oracle::Finding) -> bool {
    let Some(e) = report.engines.iter().find(|e| e.kind == EngineKind::Interp) else {
        return false;
    };
    let label = e.label();
    let named = finding
        .bucket
        .split([':', '=', '!'])
        .any(|part| part == label);
    named || (finding.bucket.starts_with("panic:") && finding.sides.contains(&label))
}

/// The reproducer's text: a header comment, the replay directives, `test` lines, the case.
///
/// `source` names the original file and `out` the reproducer's own path, for the header's
/// replay command.
pub fn render(reduced: &Reduced, plan: &Plan, source: &str, out: &str) -> String {
    let report = &reduced.report;
    let mut case: TestCase = reduced.case.clone();
    case.directives.clear();
    case.set_directive(keys::EXPECT, crate::harness::expectation(report));
    let ids = crate::harness::known_ids(&KnownBuckets::load_default(), &reduced.case, report);
    if !ids.is_empty() {
        case.set_directive(keys::KNOWN, ids.join(", "));
    }
    plan.record(&mut case);
    // `test interpret` tells upstream its plain interpreter agrees with the file. That
    // interpreter does not copy `sarg` structs (clif-diff's models the copy), so a file with
    // `sarg` parameters says `test run` and keeps clif-diff's interpreter by directive.
    let interp_needed = interp_is_a_side(report, &reduced.finding)
        || report.findings.iter().any(|f| interp_is_a_side(report, f));
    let has_sarg = case.functions.iter().any(|f| {
        f.signature
            .params
            .iter()
            .any(|p| matches!(p.purpose, ArgumentPurpose::StructArgument(_)))
    });
    case.commands = if interp_needed && !has_sarg {
        vec!["interpret".into(), "run".into()]
    } else {
        if interp_needed && case.directive(keys::ENGINES).is_none() {
            let e: Vec<String> = plan.engines.iter().map(|e| e.label()).collect();
            case.set_directive(keys::ENGINES, e.join(","));
        }
        vec!["run".into()]
    };

    let s = &reduced.stats;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "; Reduced by `clif-diff reduce` from {source}: {} instructions in {} functions -> {} in {}",
        s.insts_before, s.functions_before, s.insts_after, s.functions_after
    );
    let _ = writeln!(
        h,
        ";   ({} candidates tested, {} accepted, {:.1} s).",
        s.tried,
        s.accepted,
        s.elapsed.as_secs_f64()
    );
    let _ = writeln!(h, "; Finding: {}", reduced.finding.bucket);
    {
        let r = &report.runs[reduced.finding.run];
        let _ = writeln!(h, "; Outcomes of {}:", r.invocation);
        let width = report
            .engines
            .iter()
            .map(|e| e.label().len())
            .max()
            .unwrap_or(0);
        let cells = crate::outcome::display_row(&r.outcomes);
        for (e, cell) in report.engines.iter().zip(cells) {
            let label = format!("{}:", e.label());
            let _ = writeln!(h, ";   {label:<w$} {cell}", w = width + 1);
        }
    }
    let _ = writeln!(h, "; Replay: clif-diff run {out}");
    h + &case.to_text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSpec;
    use crate::oracle::{RunReport, Verdict};

    fn report(bucket: &str, outcomes: Vec<Outcome>) -> Report {
        Report {
            engines: EngineKind::ALL
                .iter()
                .map(|k| EngineSpec::plain(*k))
                .collect(),
            runs: vec![RunReport {
                invocation: "%main()".into(),
                outcomes,
                verdict: Verdict::Mismatch,
                bucket: bucket.into(),
                findings: vec![],
            }],
            verdict: Verdict::Mismatch,
            bucket: bucket.into(),
            run: Some(0),
            findings: vec![],
            invalid: None,
            engine_micros: vec![0; 3],
            screened_as: None,
        }
    }

    #[test]
    fn the_interpreter_is_a_side_only_when_the_finding_says_so() {
        let finding = |bucket: &str, sides: &[&str]| crate::oracle::Finding {
            verdict: Verdict::Mismatch,
            bucket: bucket.into(),
            run: 0,
            sides: sides.iter().map(|s| s.to_string()).collect(),
        };
        let r = report("x", vec![]);
        assert!(interp_is_a_side(
            &r,
            &finding("mismatch:interp!=jit=object", &["interp", "jit", "object"])
        ));
        assert!(interp_is_a_side(
            &r,
            &finding("mismatch:interp=jit!=object", &["interp", "jit", "object"])
        ));
        assert!(!interp_is_a_side(
            &r,
            &finding("mismatch:jit!=object", &["jit", "object"])
        ));
        let far = "panic:cranelift-jit/src/compiled_blob.rs:142";
        assert!(!interp_is_a_side(&r, &finding(far, &["jit"])));
        assert!(interp_is_a_side(&r, &finding(far, &["interp"])));
    }
}
