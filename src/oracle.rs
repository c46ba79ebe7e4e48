//! The verdict: do the engines agree, and if not, what is the stable name of the disagreement?
//!
//! A *bucket* names a finding without volatile detail, so that two cases hitting the same bug land
//! in the same place: `panic:cranelift-jit/src/compiled_blob.rs:142`, `crash:jit:SIGSEGV`,
//! `mismatch:interp!=jit=object`. Buckets are what findings are deduplicated by, what the reducer
//! preserves, and what known-bug entries match.

use crate::case::{Expect, TestCase};
use crate::engine::EngineSpec;
use crate::outcome::Outcome;
use crate::value::same_list;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Fewer than two engines could run the case: nothing to compare.
    Unsupported,
    Agree,
    Mismatch,
    Error,
    Timeout,
    Crash,
    Panic,
}

impl Verdict {
    pub fn is_finding(self) -> bool {
        !matches!(self, Verdict::Agree | Verdict::Unsupported)
    }
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Unsupported => "unsupported",
            Verdict::Agree => "agree",
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

/// All engines' outcomes for one run line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub invocation: String,
    pub outcomes: Vec<Outcome>,
    pub verdict: Verdict,
    pub bucket: String,
}

/// Everything observed for a case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub engines: Vec<EngineSpec>,
    pub runs: Vec<RunReport>,
    pub verdict: Verdict,
    /// `agree`, `unsupported`, or the bucket of the most severe finding.
    pub bucket: String,
    /// The run line the bucket comes from.
    pub run: Option<usize>,
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
                let (verdict, bucket) = judge_run(engines, &row, &run.expect);
                RunReport {
                    invocation: run.invocation(),
                    outcomes: row,
                    verdict,
                    bucket,
                }
            })
            .collect();
        let worst = runs
            .iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| a.verdict.cmp(&b.verdict).then(ib.cmp(ia)));
        let (verdict, bucket, run) = match worst {
            Some((i, r)) => (r.verdict, r.bucket.clone(), Some(i)),
            None => (Verdict::Unsupported, "unsupported".to_string(), None),
        };
        Report {
            engines: engines.to_vec(),
            runs,
            verdict,
            bucket,
            run,
            engine_micros: vec![0; engines.len()],
            screened_as: None,
        }
    }
}

/// The verdict and bucket of one run line.
pub fn judge_run(engines: &[EngineSpec], row: &[Outcome], expect: &Expect) -> (Verdict, String) {
    let live: Vec<(&EngineSpec, &Outcome)> = engines
        .iter()
        .zip(row)
        .filter(|(_, o)| !o.is_unsupported())
        .collect();
    // Failures of a single engine are findings by themselves, most severe first.
    // A panic is named by its location alone: whichever engine reached it, it is one bug.
    for (_, o) in &live {
        if let Outcome::Panic { location, .. } = o {
            return (Verdict::Panic, format!("panic:{location}"));
        }
    }
    for (e, o) in &live {
        if let Outcome::Crash { signal, .. } = o {
            return (Verdict::Crash, format!("crash:{}:{signal}", e.label()));
        }
    }
    for (e, o) in &live {
        match o {
            Outcome::Timeout { .. } => return (Verdict::Timeout, format!("timeout:{}", e.label())),
            Outcome::Oom => return (Verdict::Timeout, format!("oom:{}", e.label())),
            _ => {}
        }
    }
    for (e, o) in &live {
        if let Outcome::Error { phase, message } = o {
            return (
                Verdict::Error,
                format!("error:{}:{phase}:{}", e.label(), message_class(message)),
            );
        }
    }
    // Only returns and traps remain: group engines by equal outcome.
    let mut classes: Vec<(Vec<String>, &Outcome)> = Vec::new();
    for (e, o) in &live {
        match classes.iter_mut().find(|(_, rep)| same_outcome(rep, o)) {
            Some((names, _)) => names.push(e.label()),
            None => classes.push((vec![e.label()], o)),
        }
    }
    // A written expectation is one more voice (the file's `== value`).
    if let (Expect::Eq(v), [(_, Outcome::Returned { values })]) = (expect, classes.as_slice())
        && !same_list(v, values)
    {
        let names = classes[0].0.join("=");
        return (Verdict::Mismatch, format!("mismatch:expected!={names}"));
    }
    match classes.len() {
        0 => (Verdict::Unsupported, "unsupported".into()),
        1 if live.len() < 2 && !matches!(expect, Expect::Eq(_)) => {
            (Verdict::Unsupported, "unsupported".into())
        }
        1 => (Verdict::Agree, "agree".into()),
        _ => {
            let parts: Vec<String> = classes.iter().map(|(n, _)| n.join("=")).collect();
            (Verdict::Mismatch, format!("mismatch:{}", parts.join("!=")))
        }
    }
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

    #[test]
    fn agreement_and_mismatch_buckets() {
        let e = engines();
        assert_eq!(
            judge_run(&e, &[ret(1), ret(1), ret(1)], &Expect::Print).1,
            "agree"
        );
        assert_eq!(
            judge_run(&e, &[ret(1), ret(2), ret(2)], &Expect::Print).1,
            "mismatch:interp!=jit=object"
        );
        assert_eq!(
            judge_run(
                &e,
                &[ret(1), ret(1), ret(1)],
                &Expect::Eq(vec![Val::I32(2)])
            )
            .1,
            "mismatch:expected!=interp=jit=object"
        );
    }

    #[test]
    fn nan_results_agree_and_traps_compare_by_code() {
        let e = engines();
        let nan = |bits: u32| Outcome::Returned {
            values: vec![Val::F32(bits)],
        };
        let r = judge_run(
            &e,
            &[nan(0x7fc0_0000), nan(0xffc0_0001), nan(0x7fa0_0000)],
            &Expect::Print,
        );
        assert_eq!(r.0, Verdict::Agree);
        let trap = |c: &str| Outcome::Trap { code: c.into() };
        let r = judge_run(
            &e,
            &[trap("int_divz"), trap("int_divz"), trap("int_ovf")],
            &Expect::Print,
        );
        assert_eq!(r.1, "mismatch:interp=jit!=object");
    }

    #[test]
    fn panics_outrank_and_unsupported_is_ignored() {
        let e = engines();
        let panic = Outcome::Panic {
            phase: crate::outcome::Phase::Finalize,
            message: "called `Result::unwrap()` on an `Err` value: TryFromIntError(())".into(),
            location: "cranelift-jit/src/compiled_blob.rs:142".into(),
        };
        let r = judge_run(&e, &[ret(42), panic, ret(42)], &Expect::Print);
        assert_eq!(
            r,
            (
                Verdict::Panic,
                "panic:cranelift-jit/src/compiled_blob.rs:142".into()
            )
        );
        let un = Outcome::Unsupported { reason: "x".into() };
        assert_eq!(
            judge_run(&e, &[ret(1), un.clone(), ret(1)], &Expect::Print).0,
            Verdict::Agree
        );
        assert_eq!(
            judge_run(&e, &[ret(1), un.clone(), un], &Expect::Print).0,
            Verdict::Unsupported
        );
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
