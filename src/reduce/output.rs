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
use std::fmt::Write as _;

/// Index of the reference engine in `report`: the plain interpreter if it runs, else the first.
pub fn reference(report: &Report) -> usize {
    report
        .engines
        .iter()
        .position(|e| e.kind == EngineKind::Interp && e.overrides.is_empty())
        .unwrap_or(0)
}

/// Sets every run line of `case` to expect what the reference engine returned in `report`
/// (`; print:` where it did not return).
pub fn expect_reference(case: &mut TestCase, report: &Report) {
    let r = reference(report);
    for (run, rep) in case.runs.iter_mut().zip(&report.runs) {
        run.expect = match rep.outcomes.get(r) {
            Some(Outcome::Returned { values }) => Expect::Eq(values.clone()),
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

/// Whether the interpreter is one of the sides of the finding in `report`.
pub fn interp_is_a_side(report: &Report) -> bool {
    let Some(i) = report
        .engines
        .iter()
        .position(|e| e.kind == EngineKind::Interp)
    else {
        return false;
    };
    let label = report.engines[i].label();
    let named = report
        .bucket
        .split([':', '=', '!'])
        .any(|part| part == label);
    let panicked_here = report.run.is_some_and(|run| {
        matches!(
            &report.runs[run].outcomes[i],
            Outcome::Panic { location, .. } if report.bucket == format!("panic:{location}")
        )
    });
    named || panicked_here
}

/// The reproducer's text: a header comment, the replay directives, `test` lines, the case.
///
/// `source` names the original file and `out` the reproducer's own path, for the header's
/// replay command.
pub fn render(reduced: &Reduced, plan: &Plan, source: &str, out: &str) -> String {
    let report = &reduced.report;
    let mut case: TestCase = reduced.case.clone();
    case.directives.clear();
    case.set_directive(keys::EXPECT, report.bucket.clone());
    if let Some(k) = KnownBuckets::load_default().classify(&report.bucket, &reduced.case.to_text())
    {
        case.set_directive(keys::KNOWN, k.id.clone());
    }
    plan.record(&mut case);
    case.commands = if interp_is_a_side(report) {
        vec!["interpret".into(), "run".into()]
    } else {
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
    let _ = writeln!(h, "; Bucket: {}", report.bucket);
    if let Some(run) = report.run {
        let r = &report.runs[run];
        let _ = writeln!(h, "; Outcomes of {}:", r.invocation);
        let width = report
            .engines
            .iter()
            .map(|e| e.label().len())
            .max()
            .unwrap_or(0);
        for (e, o) in report.engines.iter().zip(&r.outcomes) {
            let label = format!("{}:", e.label());
            let _ = writeln!(h, ";   {label:<w$} {}", one_line(o), w = width + 1);
        }
    }
    let _ = writeln!(h, "; Replay: clif-diff run {out}");
    h + &case.to_text()
}

fn one_line(o: &Outcome) -> String {
    o.to_string().lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSpec;
    use crate::oracle::{RunReport, Verdict};
    use crate::value::Val;

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
            }],
            verdict: Verdict::Mismatch,
            bucket: bucket.into(),
            run: Some(0),
            engine_micros: vec![0; 3],
            screened_as: None,
        }
    }

    #[test]
    fn the_interpreter_is_a_side_only_when_the_bucket_says_so() {
        let ret = |v| Outcome::Returned {
            values: vec![Val::I32(v)],
        };
        assert!(interp_is_a_side(&report(
            "mismatch:interp!=jit=object",
            vec![ret(1), ret(2), ret(2)]
        )));
        assert!(interp_is_a_side(&report(
            "mismatch:interp=jit!=object",
            vec![ret(1), ret(1), ret(2)]
        )));
        let unsupported = Outcome::Unsupported { reason: "x".into() };
        assert!(!interp_is_a_side(&report(
            "mismatch:jit!=object",
            vec![unsupported, ret(1), ret(2)]
        )));
        let panic = Outcome::Panic {
            phase: crate::outcome::Phase::Finalize,
            message: "m".into(),
            location: "cranelift-jit/src/compiled_blob.rs:142".into(),
        };
        assert!(!interp_is_a_side(&report(
            "panic:cranelift-jit/src/compiled_blob.rs:142",
            vec![ret(42), panic.clone(), ret(42)]
        )));
        assert!(interp_is_a_side(&report(
            "panic:cranelift-jit/src/compiled_blob.rs:142",
            vec![panic, ret(42), ret(42)]
        )));
    }
}
