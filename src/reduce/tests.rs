//! The driver's rules, with fake `test` closures standing in for the engines.

use super::passes::testing::{case, reduce_with, report};
use super::*;
use std::cell::RefCell;

/// A module with something to remove everywhere.
const CASE: &str = "test run
set opt_level=speed
target x86_64

function %callee(i64, i32) -> i32 system_v {
block0(v0: i64, v1: i32):
    v2 = iconst.i32 3
    v3 = imul v1, v2
    v4 = ireduce.i32 v0
    v5 = iadd v3, v4
    brif v5, block1, block2(v5)
block1:
    v6 = iconst.i32 7
    jump block2(v6)
block2(v7: i32):
    return v7
}

function %main(i32) -> i32 system_v {
    fn0 = colocated %callee(i64, i32) -> i32 system_v
block0(v0: i32):
    v1 = iconst.i64 5
    v2 = call fn0(v1, v0)
    v3 = udiv v2, v0
    return v3
}
; print: %main(1)
; print: %main(2)
";

fn has(t: &TestCase, s: &str) -> bool {
    t.to_text().contains(s)
}

#[test]
fn a_candidate_with_another_bucket_is_rejected() {
    // The finding is "x" while the case divides; without the `udiv` a *different* finding "y"
    // shows. "Still fails somehow" must not be enough.
    let c = case(CASE);
    let tested = RefCell::new(Vec::new());
    let mut test = |t: &TestCase| {
        let b = if has(t, "udiv") { "x" } else { "y" };
        tested.borrow_mut().push(b);
        Ok(report(b))
    };
    let r = reduce(&c, "x", &mut test, &ReduceOptions::default()).unwrap();
    assert!(has(&r.case, "udiv"), "{}", r.case);
    assert_eq!(r.report.bucket, "x");
    // Candidates with "y" were proposed and turned down.
    assert!(tested.borrow().contains(&"y"));
    assert!(r.stats.insts_after < r.stats.insts_before);
}

#[test]
fn reduction_reaches_a_small_fixpoint() {
    let c = case(CASE);
    let out = reduce_with(&c, |t| has(t, "udiv") && has(t, "call fn"));
    // callee: return; main: call, udiv, return — plus the one zero udiv's operands share.
    assert_eq!(count_insts(&out), 5, "{out}");
    assert_eq!(out.runs.len(), 1);
    assert!(out.settings.is_empty(), "{out}");
    assert!(
        has(&out, "function %f0") && has(&out, "function %main"),
        "{out}"
    );
}

#[test]
fn reduction_is_deterministic() {
    let c = case(CASE);
    let run = || {
        let mut test = |t: &TestCase| Ok(report(if has(t, "imul") { "x" } else { "agree" }));
        reduce(&c, "x", &mut test, &ReduceOptions::default()).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.case.to_text(), b.case.to_text());
    assert_eq!(
        (a.stats.tried, a.stats.accepted, a.stats.discarded),
        (b.stats.tried, b.stats.accepted, b.stats.discarded)
    );
}

#[test]
fn invalid_candidates_never_reach_the_test() {
    let c = case(CASE);
    let isa = crate::target::build_isa(&c, &[]).unwrap();
    let mut test = |t: &TestCase| {
        for f in &t.functions {
            cranelift_codegen::verify_function(f, &*isa)
                .unwrap_or_else(|e| panic!("unverified candidate reached test: {e}\n{t}"));
        }
        assert!(crate::facts::calls_match(t), "{t}");
        Ok(report(if has(t, "ireduce") { "x" } else { "agree" }))
    };
    let r = reduce(&c, "x", &mut test, &ReduceOptions::default()).unwrap();
    // E.g. narrowing `ireduce`'s operand to the width of its result.
    assert!(
        r.stats.discarded > 0,
        "some candidates should have been invalid"
    );
}

#[test]
fn the_original_must_reproduce_the_bucket() {
    let c = case(CASE);
    let mut test = |_: &TestCase| Ok(report("agree"));
    let e = reduce(&c, "x", &mut test, &ReduceOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("does not reproduce"), "{e}");
}

#[test]
fn limits_stop_early_with_the_best_so_far() {
    let c = case(CASE);
    let mut test = |t: &TestCase| Ok(report(if has(t, "udiv") { "x" } else { "agree" }));
    let opts = ReduceOptions {
        max_candidates: Some(3),
        ..ReduceOptions::default()
    };
    let r = reduce(&c, "x", &mut test, &opts).unwrap();
    assert!(r.stats.stopped_early);
    // Three candidates, plus the final expectations probe.
    assert!(r.stats.tried <= 4, "{:?}", r.stats);
    assert!(has(&r.case, "udiv"));
}

#[test]
fn progress_is_reported_per_candidate() {
    let c = case(CASE);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let opts = ReduceOptions {
        progress: Some(std::sync::Arc::new(move |p: &Progress| {
            s2.lock().unwrap().push((p.tried, p.insts))
        })),
        ..ReduceOptions::default()
    };
    let mut test = |t: &TestCase| Ok(report(if has(t, "udiv") { "x" } else { "agree" }));
    let r = reduce(&c, "x", &mut test, &opts).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, r.stats.tried);
    // Counts go up; sizes mostly down (inlining a call may grow a case before its callee goes).
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(seen.last().unwrap().1 <= seen[0].1);
}

#[test]
fn candidates_that_hang_are_rejected_when_the_original_terminates() {
    use crate::oracle::RunReport;
    use crate::outcome::Outcome;
    // The bucket survives either way (as a panic outranks a timeout), but without the loop's
    // exit some engine hangs.
    let c = case(
        "test run
target x86_64

function %f(i32) -> i32 system_v {
block0(v0: i32):
    jump block1(v0)
block1(v1: i32):
    v2 = iconst.i32 1
    v3 = isub v1, v2
    brif v3, block1(v3), block2
block2:
    return v3
}
; print: %f(3)
",
    );
    let mut test = |t: &TestCase| {
        let mut r = report("x");
        let hang = !has(t, "brif");
        r.runs = vec![RunReport {
            invocation: "%f(3)".into(),
            outcomes: vec![if hang {
                Outcome::Timeout {
                    limit: "1 ms".into(),
                }
            } else {
                Outcome::Returned { values: vec![] }
            }],
            verdict: r.verdict,
            bucket: "x".into(),
            findings: vec![],
        }];
        Ok(r)
    };
    let r = reduce(&c, "x", &mut test, &ReduceOptions::default()).unwrap();
    assert!(has(&r.case, "brif"), "{}", r.case);
}

#[test]
fn candidates_that_change_an_engines_outcome_kind_are_rejected() {
    use crate::oracle::RunReport;
    use crate::outcome::Outcome;
    // The bucket is the same mismatch either way, but without the `udiv` the "interpreter"
    // traps on an address instead of dividing by zero: an artefact of the candidate, not the
    // finding.
    let c = case(CASE);
    let trap = |code: &str| Outcome::Trap { code: code.into() };
    let mut test = |t: &TestCase| {
        let mut r = report("mismatch:interp!=jit");
        let first = if has(t, "udiv") {
            trap("int_divz")
        } else {
            trap("heap_oob")
        };
        r.runs = vec![RunReport {
            invocation: "%main(0)".into(),
            outcomes: vec![first, trap("user1")],
            verdict: r.verdict,
            bucket: r.bucket.clone(),
            findings: vec![],
        }];
        r.run = Some(0);
        Ok(r)
    };
    let r = reduce(
        &c,
        "mismatch:interp!=jit",
        &mut test,
        &ReduceOptions::default(),
    )
    .unwrap();
    assert!(has(&r.case, "udiv"), "{}", r.case);
    assert!(r.stats.insts_after < r.stats.insts_before);
}

#[test]
fn reducing_never_yields_a_signature_mismatched_indirect_call() {
    // A stand-in finding that only needs a `call_indirect` to exist: every candidate that keeps
    // one "reproduces". Several passes propose candidates whose indirect call no longer reaches
    // a function of its signature (the pointer zeroed or made a constant, the callee's types
    // narrowed) — the undefined behaviour a reduction once drifted into. None may be accepted.
    let c = case(
        "test run
target x86_64

function %g(i64) -> i64 system_v {
block0(v0: i64):
    v1 = iconst.i64 3
    v2 = imul v0, v1
    return v2
}

function %h(i8) -> i8 system_v {
block0(v0: i8):
    return v0
}

function %main(i64) -> i64 system_v {
    sig0 = (i64) -> i64 system_v
    fn0 = colocated %g sig0
    fn1 = colocated %h(i8) -> i8 system_v
block0(v0: i64):
    v1 = func_addr.i64 fn0
    v2 = call_indirect sig0, v1(v0)
    v3 = ireduce.i8 v2
    v4 = call fn1(v3)
    v5 = uextend.i64 v4
    return v5
}
; print: %main(5)
",
    );
    // (Some passes' atom counting panics inside Cranelift on this module — the driver catches
    // that; so does this census.)
    let drifting: usize = super::passes::all()
        .iter()
        .flat_map(|p| {
            crate::panics::catch(|| super::passes::testing::candidates(p.as_ref(), &c))
                .unwrap_or_default()
        })
        .filter_map(|t| TestCase::parse(&t).ok())
        .filter(|t| !crate::facts::indirect_calls_resolved(t))
        .count();
    assert!(
        drifting > 0,
        "the passes must be able to drift for this to test anything"
    );
    let out = reduce_with(&c, |t| t.to_text().contains("call_indirect"));
    assert!(out.to_text().contains("call_indirect"), "{out}");
    assert!(crate::facts::indirect_calls_resolved(&out), "{out}");
    assert!(crate::facts::calls_match(&out), "{out}");
}
