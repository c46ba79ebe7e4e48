//! The verdict: do the engines agree, and if not, what is the stable name of each disagreement?
//!
//! Every run line is judged on its own, and within a line every engine failure and the
//! comparison of the engines that did return are separate *findings*: a JIT panic does not stop
//! the interpreter being compared with the object path, and a case can yield several findings.
//!
//! A finding's *bucket* names it without volatile detail, so that two cases hitting the same bug
//! land in the same place: `panic:cranelift-jit/src/compiled_blob.rs:142` (any engine),
//! `crash:jit:SIGSEGV`, `error:object:compile:<message class>`, `mismatch:interp!=jit=object`
//! (engines grouped by equal outcome), `mismatch:expected!=jit=object` (the file's own
//! expectation is the odd one out). Engines that fail the same way share one finding
//! (`crash:jit=object:SIGSEGV`).
//!
//! A bucket is only the *partition* a finding falls in; for the coarse kinds (mismatches,
//! crashes, hangs) different root causes share it. [`crate::identity`] refines it into a bug
//! identity once the finding is reduced.
//!
//! Not findings: a line every engine runs out of time on is a hang of the *case* ([`Verdict::Hang`]);
//! a case the verifier rejects is bad input ([`Verdict::Invalid`]); an engine that could not run
//! is reported as unsupported or skipped, never as agreement.

use crate::case::{Expect, TestCase};
use crate::engine::EngineSpec;
use crate::outcome::Outcome;
use crate::value::{Val, same_list};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Fewer than two voices (engines or a written expectation) could be heard: nothing compared.
    Unsupported,
    Agree,
    /// Every engine that ran went past its time or fuel limit on some line: the case does not
    /// terminate. A property of the case, not of Cranelift.
    Hang,
    /// The case is not valid CLIF (the verifier, the target or the settings reject it as
    /// written): bad input, not a finding.
    Invalid,
    Mismatch,
    Error,
    Timeout,
    Crash,
    Panic,
}

impl Verdict {
    pub fn is_finding(self) -> bool {
        !matches!(
            self,
            Verdict::Agree | Verdict::Unsupported | Verdict::Hang | Verdict::Invalid
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Unsupported => "unsupported",
            Verdict::Agree => "agree",
            Verdict::Hang => "hang",
            Verdict::Invalid => "invalid",
            Verdict::Mismatch => "mismatch",
            Verdict::Error => "error",
            Verdict::Timeout => "timeout",
            Verdict::Crash => "crash",
            Verdict::Panic => "panic",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One disagreement on one run line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineFinding {
    pub verdict: Verdict,
    pub bucket: String,
    /// Labels of the engines whose outcomes make the finding: the engines that failed, or every
    /// engine that was compared.
    pub sides: Vec<String>,
}

/// All engines' outcomes for one run line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub invocation: String,
    pub outcomes: Vec<Outcome>,
    /// The most severe finding's verdict, or the line's non-finding verdict.
    pub verdict: Verdict,
    /// The most severe finding's bucket, or `agree`/`unsupported`/`hang`.
    pub bucket: String,
    /// Every finding of the line, most severe first.
    #[serde(default)]
    pub findings: Vec<LineFinding>,
}

/// A finding of a case: a bucket, the first run line that shows it, and its sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub verdict: Verdict,
    pub bucket: String,
    /// Index of the first run line showing it.
    pub run: usize,
    pub sides: Vec<String>,
}

/// Everything observed for a case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub engines: Vec<EngineSpec>,
    pub runs: Vec<RunReport>,
    /// The most severe finding's verdict, or the case's non-finding verdict.
    pub verdict: Verdict,
    /// `agree`, `unsupported`, `hang`, `invalid`, or the bucket of the most severe finding.
    pub bucket: String,
    /// The run line the bucket comes from.
    pub run: Option<usize>,
    /// Every finding of the case, one per bucket, most severe first.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Why the case is [`Verdict::Invalid`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// Wall time each engine spent on the case, in microseconds (0 when not measured).
    #[serde(default)]
    pub engine_micros: Vec<u64>,
    /// When a batch run showed a different bucket than this report's lone run: the batch's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screened_as: Option<String>,
}

impl Report {
    /// Judges `outcomes[engine][run]`.
    pub fn judge(case: &TestCase, engines: &[EngineSpec], outcomes: &[Vec<Outcome>]) -> Report {
        let runs: Vec<RunReport> = case
            .runs
            .iter()
            .enumerate()
            .map(|(i, run)| {
                let row: Vec<Outcome> = outcomes.iter().map(|o| o[i].clone()).collect();
                let (verdict, findings) = judge_run(engines, &row, &run.expect);
                let bucket = findings
                    .first()
                    .map(|f| f.bucket.clone())
                    .unwrap_or_else(|| verdict.name().to_string());
                RunReport {
                    invocation: run.invocation(),
                    outcomes: row,
                    verdict,
                    bucket,
                    findings,
                }
            })
            .collect();
        // One finding per bucket, at its first line; the sides of every line are merged.
        let mut findings: Vec<Finding> = Vec::new();
        for (i, r) in runs.iter().enumerate() {
            for lf in &r.findings {
                match findings.iter_mut().find(|f| f.bucket == lf.bucket) {
                    Some(f) => {
                        for s in &lf.sides {
                            if !f.sides.contains(s) {
                                f.sides.push(s.clone());
                            }
                        }
                    }
                    None => findings.push(Finding {
                        verdict: lf.verdict,
                        bucket: lf.bucket.clone(),
                        run: i,
                        sides: lf.sides.clone(),
                    }),
                }
            }
        }
        findings.sort_by(|a, b| b.verdict.cmp(&a.verdict).then(a.run.cmp(&b.run)));
        let (verdict, bucket, run) = match findings.first() {
            Some(f) => (f.verdict, f.bucket.clone(), Some(f.run)),
            None => {
                // No finding: the case hangs if a line does, agrees if a line compared anything.
                let v = runs
                    .iter()
                    .map(|r| r.verdict)
                    .max()
                    .unwrap_or(Verdict::Unsupported);
                let run = runs
                    .iter()
                    .position(|r| r.verdict == v && v == Verdict::Hang);
                (v, v.name().to_string(), run)
            }
        };
        Report {
            engines: engines.to_vec(),
            runs,
            verdict,
            bucket,
            run,
            findings,
            invalid: None,
            engine_micros: vec![0; engines.len()],
            screened_as: None,
        }
    }

    /// The report of a case that is not valid input: no engine ran.
    pub fn invalid(case: &TestCase, engines: &[EngineSpec], why: String) -> Report {
        let no_run = Outcome::Unsupported {
            reason: "the case is invalid".into(),
        };
        Report {
            engines: engines.to_vec(),
            runs: case
                .runs
                .iter()
                .map(|r| RunReport {
                    invocation: r.invocation(),
                    outcomes: vec![no_run.clone(); engines.len()],
                    verdict: Verdict::Invalid,
                    bucket: "invalid".into(),
                    findings: Vec::new(),
                })
                .collect(),
            verdict: Verdict::Invalid,
            bucket: "invalid".into(),
            run: None,
            findings: Vec::new(),
            invalid: Some(why),
            engine_micros: vec![0; engines.len()],
            screened_as: None,
        }
    }

    /// The finding named `bucket`, if the case shows it.
    pub fn finding(&self, bucket: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.bucket == bucket)
    }

    /// Engines that were skipped (could not run on this machine) on some line, with the reason.
    pub fn skipped(&self) -> Vec<(String, String)> {
        self.not_run(|o| match o {
            Outcome::Skipped { reason } => Some(reason),
            _ => None,
        })
    }

    /// Per engine that called some line unsupported (a documented gap, e.g. `cranelift-jit` and
    /// thread-local data): the engine's label and the first reason.
    pub fn unsupported(&self) -> Vec<(String, String)> {
        self.not_run(|o| match o {
            Outcome::Unsupported { reason } => Some(reason),
            _ => None,
        })
    }

    fn not_run(&self, why: impl Fn(&Outcome) -> Option<&String>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in &self.runs {
            for (e, o) in self.engines.iter().zip(&r.outcomes) {
                if let Some(reason) = why(o)
                    && !out.iter().any(|(l, _)| *l == e.label())
                {
                    out.push((e.label(), reason.clone()));
                }
            }
        }
        out
    }
}

/// The verdict and every finding of one run line, most severe first.
///
/// Each engine failure (panic, crash, timeout, out of memory, error) is a finding of its own,
/// shared by the engines that failed alike; the engines that returned or trapped are compared
/// with each other and with the file's expectation whatever the others did.
pub fn judge_run(
    engines: &[EngineSpec],
    row: &[Outcome],
    expect: &Expect,
) -> (Verdict, Vec<LineFinding>) {
    let live: Vec<(String, &Outcome)> = engines
        .iter()
        .zip(row)
        .filter(|(_, o)| !o.did_not_run())
        .map(|(e, o)| (e.label(), o))
        .collect();
    if !live.is_empty()
        && live
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Timeout { .. }))
    {
        // Nobody finished: the case loops, whatever Cranelift does.
        return (Verdict::Hang, Vec::new());
    }
    // Failures: engines failing alike (same kind and detail) share one finding.
    let mut failures: Vec<(Verdict, String, Vec<String>)> = Vec::new();
    for (label, o) in &live {
        let (verdict, key) = match o {
            Outcome::Panic { location, .. } => (Verdict::Panic, location.clone()),
            Outcome::Crash { signal, .. } => (Verdict::Crash, signal.clone()),
            Outcome::Timeout { .. } => (Verdict::Timeout, "timeout".to_string()),
            Outcome::Oom => (Verdict::Timeout, "oom".to_string()),
            Outcome::Error { phase, message } => (
                Verdict::Error,
                format!("{phase}:{}", message_class(message)),
            ),
            _ => continue,
        };
        match failures
            .iter_mut()
            .find(|(v, k, _)| *v == verdict && *k == key)
        {
            Some((_, _, sides)) => sides.push(label.clone()),
            None => failures.push((verdict, key, vec![label.clone()])),
        }
    }
    let mut findings: Vec<LineFinding> = failures
        .into_iter()
        .map(|(verdict, key, sides)| {
            let names = sides.join("=");
            let bucket = match verdict {
                // A panic is named by its location alone: whichever engine reached it, one bug.
                Verdict::Panic => format!("panic:{key}"),
                Verdict::Crash => format!("crash:{names}:{key}"),
                Verdict::Error => format!("error:{names}:{key}"),
                _ => format!("{key}:{names}"),
            };
            LineFinding {
                verdict,
                bucket,
                sides,
            }
        })
        .collect();

    // Engines that returned or trapped: grouped by equal outcome.
    let mut classes: Vec<(Vec<String>, &Outcome)> = Vec::new();
    for (label, o) in &live {
        if !matches!(o, Outcome::Returned { .. } | Outcome::Trap { .. }) {
            continue;
        }
        match classes.iter_mut().find(|(_, rep)| same_outcome(rep, o)) {
            Some((names, _)) => names.push(label.clone()),
            None => classes.push((vec![label.clone()], o)),
        }
    }
    let compared: Vec<String> = classes.iter().flat_map(|(n, _)| n.clone()).collect();
    match classes.as_slice() {
        [] => {}
        // The engines agree: the file's expectation is the one more voice.
        [(names, o)] => {
            if violates(expect, o) {
                findings.push(LineFinding {
                    verdict: Verdict::Mismatch,
                    bucket: format!("mismatch:expected!={}", names.join("=")),
                    sides: compared.clone(),
                });
            }
        }
        _ => {
            let parts: Vec<String> = classes.iter().map(|(n, _)| n.join("=")).collect();
            findings.push(LineFinding {
                verdict: Verdict::Mismatch,
                bucket: format!("mismatch:{}", parts.join("!=")),
                sides: compared.clone(),
            });
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.verdict));
    let verdict = match findings.first() {
        Some(f) => f.verdict,
        None if live.is_empty() => Verdict::Unsupported,
        // One voice alone compared nothing, unless the file wrote what it should be.
        None if live.len() < 2 && matches!(expect, Expect::Print) => Verdict::Unsupported,
        None => Verdict::Agree,
    };
    (verdict, findings)
}

/// Whether outcome `o` (a return or a trap) contradicts what the file expects.
pub fn violates(expect: &Expect, o: &Outcome) -> bool {
    match (expect, o) {
        (Expect::Print, _) => false,
        (Expect::Eq(v), Outcome::Returned { values }) => !same_list(v, values),
        (Expect::Ne(v), Outcome::Returned { values }) => same_list(v, values),
        // Upstream's bare `; run`: the function returns true (non-zero).
        (Expect::True, Outcome::Returned { values }) => {
            !matches!(values.as_slice(), [v] if !is_zero(v))
        }
        (Expect::Trap(code), Outcome::Trap { code: got }) => code != got,
        (Expect::Trap(_), Outcome::Returned { .. }) => true,
        // A value was written down (or `!=` one): a trap is no value.
        (Expect::Eq(_) | Expect::Ne(_) | Expect::True, Outcome::Trap { .. }) => true,
        _ => false,
    }
}

fn is_zero(v: &Val) -> bool {
    v.to_bytes_le().iter().all(|&b| b == 0)
}

pub fn same_outcome(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Returned { values: x }, Outcome::Returned { values: y }) => same_list(x, y),
        (Outcome::Trap { code: x }, Outcome::Trap { code: y }) => x == y,
        _ => false,
    }
}

/// A message with its volatile parts (numbers, addresses, value names) masked, short enough for a
/// directory name but long enough to keep what failed (e.g. the opcode of an "Unsupported
/// feature: should be implemented in ISLE: inst = `v4 = smax.i128 v0, v2`" error).
pub fn message_class(message: &str) -> String {
    let line = crate::outcome::first_line(message);
    let mut out = String::new();
    let mut in_num = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
            continue;
        }
        in_num = false;
        if c.is_ascii_alphanumeric() || "_-.".contains(c) {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineKind;
    use crate::outcome::Phase;
    use crate::value::Val;

    fn engines() -> Vec<EngineSpec> {
        EngineKind::ALL
            .iter()
            .map(|k| EngineSpec::plain(*k))
            .collect()
    }
    fn ret(v: i32) -> Outcome {
        Outcome::Returned {
            values: vec![Val::I32(v)],
        }
    }
    fn trap(c: &str) -> Outcome {
        Outcome::Trap { code: c.into() }
    }
    fn far_panic() -> Outcome {
        Outcome::Panic {
            phase: Phase::Finalize,
            message: "called `Result::unwrap()` on an `Err` value: TryFromIntError(())".into(),
            location: "cranelift-jit/src/compiled_blob.rs:142".into(),
        }
    }
    /// The line's buckets, most severe first (or its verdict when it has no finding).
    fn buckets(row: &[Outcome], expect: &Expect) -> Vec<String> {
        let (v, f) = judge_run(&engines(), row, expect);
        if f.is_empty() {
            vec![v.name().to_string()]
        } else {
            f.into_iter().map(|f| f.bucket).collect()
        }
    }

    #[test]
    fn agreement_and_mismatch_buckets() {
        assert_eq!(
            buckets(&[ret(1), ret(1), ret(1)], &Expect::Print),
            ["agree"]
        );
        assert_eq!(
            buckets(&[ret(1), ret(2), ret(2)], &Expect::Print),
            ["mismatch:interp!=jit=object"]
        );
        assert_eq!(
            buckets(&[ret(1), ret(1), ret(1)], &Expect::Eq(vec![Val::I32(2)])),
            ["mismatch:expected!=interp=jit=object"]
        );
    }

    #[test]
    fn nan_results_agree_and_traps_compare_by_code() {
        let nan = |bits: u32| Outcome::Returned {
            values: vec![Val::F32(bits)],
        };
        let (v, _) = judge_run(
            &engines(),
            &[nan(0x7fc0_0000), nan(0xffc0_0001), nan(0x7fa0_0000)],
            &Expect::Print,
        );
        assert_eq!(v, Verdict::Agree);
        assert_eq!(
            buckets(
                &[trap("int_divz"), trap("int_divz"), trap("int_ovf")],
                &Expect::Print
            ),
            ["mismatch:interp=jit!=object"]
        );
    }

    #[test]
    fn a_panic_does_not_stop_the_comparison_of_the_others() {
        assert_eq!(
            buckets(&[ret(42), far_panic(), ret(42)], &Expect::Print),
            ["panic:cranelift-jit/src/compiled_blob.rs:142"]
        );
        assert_eq!(
            buckets(&[ret(1), far_panic(), ret(2)], &Expect::Print),
            [
                "panic:cranelift-jit/src/compiled_blob.rs:142",
                "mismatch:interp!=object"
            ]
        );
        let (_, f) = judge_run(&engines(), &[ret(1), far_panic(), ret(2)], &Expect::Print);
        assert_eq!(f[0].sides, ["jit"]);
        assert_eq!(f[1].sides, ["interp", "object"]);
    }

    #[test]
    fn engines_failing_alike_share_a_finding() {
        let segv = Outcome::Crash {
            signal: "SIGSEGV".into(),
            detail: String::new(),
        };
        assert_eq!(
            buckets(&[ret(1), segv.clone(), segv.clone()], &Expect::Print),
            ["crash:jit=object:SIGSEGV"]
        );
        let err = |m: &str| Outcome::Error {
            phase: Phase::Compile,
            message: m.into(),
        };
        assert_eq!(
            buckets(&[ret(1), err("a 1"), err("b")], &Expect::Print),
            ["error:jit:compile:a_N", "error:object:compile:b"]
        );
    }

    #[test]
    fn unsupported_and_skipped_are_not_agreement() {
        let un = Outcome::Unsupported { reason: "x".into() };
        let skip = Outcome::Skipped {
            reason: "no qemu-aarch64".into(),
        };
        assert_eq!(
            judge_run(&engines(), &[ret(1), un.clone(), ret(1)], &Expect::Print).0,
            Verdict::Agree
        );
        assert_eq!(
            judge_run(&engines(), &[ret(1), un, skip.clone()], &Expect::Print).0,
            Verdict::Unsupported
        );
        // One engine and a written expectation are two voices.
        assert_eq!(
            judge_run(
                &engines(),
                &[ret(1), skip.clone(), skip],
                &Expect::Eq(vec![Val::I32(1)])
            )
            .0,
            Verdict::Agree
        );
    }

    #[test]
    fn every_engine_out_of_time_is_a_hang_of_the_case() {
        let t = Outcome::Timeout {
            limit: "1 ms".into(),
        };
        let (v, f) = judge_run(
            &engines(),
            &[t.clone(), t.clone(), t.clone()],
            &Expect::Print,
        );
        assert_eq!((v, f.len()), (Verdict::Hang, 0));
        assert!(!v.is_finding());
        // One engine finishing makes the others' timeouts a finding.
        assert_eq!(
            buckets(&[ret(1), t.clone(), t], &Expect::Print),
            ["timeout:jit=object"]
        );
    }

    #[test]
    fn expectations_are_judged_in_every_form() {
        let one = vec![Val::I32(1)];
        // A trap where a value is written.
        assert_eq!(
            buckets(
                &[trap("int_divz"), trap("int_divz"), trap("int_divz")],
                &Expect::Eq(one.clone())
            ),
            ["mismatch:expected!=interp=jit=object"]
        );
        // `!=`.
        assert_eq!(
            buckets(&[ret(1), ret(1), ret(1)], &Expect::Ne(one.clone())).len(),
            1
        );
        assert_eq!(
            buckets(&[ret(2), ret(2), ret(2)], &Expect::Ne(one)),
            ["agree"]
        );
        // Bare `; run`: true means non-zero.
        assert_eq!(buckets(&[ret(3), ret(3), ret(3)], &Expect::True), ["agree"]);
        assert_eq!(
            buckets(&[ret(0), ret(0), ret(0)], &Expect::True),
            ["mismatch:expected!=interp=jit=object"]
        );
        // A value where a trap is expected, and the wrong trap.
        let divz = Expect::Trap("int_divz".into());
        assert_eq!(
            buckets(&[ret(0), ret(0), ret(0)], &divz),
            ["mismatch:expected!=interp=jit=object"]
        );
        assert_eq!(
            buckets(&[trap("int_ovf"), trap("int_ovf"), trap("int_ovf")], &divz).len(),
            1
        );
        assert_eq!(
            buckets(
                &[trap("int_divz"), trap("int_divz"), trap("int_divz")],
                &divz
            ),
            ["agree"]
        );
    }

    #[test]
    fn a_case_keeps_every_finding_once() {
        let case = TestCase::parse(
            "test run\ntarget x86_64\n\nfunction %f(i32) -> i32 system_v {\nblock0(v0: i32):\n    return v0\n}\n; run: %f(1) == 1\n; run: %f(2) == 2\n",
        )
        .unwrap();
        let outcomes = vec![
            vec![ret(1), ret(2)],
            vec![far_panic(), far_panic()],
            vec![ret(1), ret(3)],
        ];
        let r = Report::judge(&case, &engines(), &outcomes);
        let b: Vec<(&str, usize)> = r
            .findings
            .iter()
            .map(|f| (f.bucket.as_str(), f.run))
            .collect();
        assert_eq!(
            b,
            [
                ("panic:cranelift-jit/src/compiled_blob.rs:142", 0),
                ("mismatch:interp!=object", 1)
            ]
        );
        assert_eq!(r.bucket, "panic:cranelift-jit/src/compiled_blob.rs:142");
        assert!(r.finding("mismatch:interp!=object").is_some());
    }

    #[test]
    fn message_classes_keep_the_failing_opcode() {
        let m = "Compilation error: Unsupported feature: should be implemented in ISLE: inst = `v401 = smax.i128 v6, v96`, type = `Some(types::I128)`";
        let c = message_class(m);
        assert!(c.contains("smax.iN"), "{c}");
        assert!(c.len() <= 100);
    }

    #[test]
    fn message_classes_mask_numbers() {
        assert_eq!(
            message_class("Verifier errors: inst12 (v3): bad type"),
            "Verifier_errors_instN_vN_bad_type"
        );
    }
}
