//! Bug identity: when are two findings the same bug?
//!
//! The oracle's bucket is a *partition*: `panic:<location>` and `error:<engine>:<phase>:<message
//! class>` already name a root cause (one line of Cranelift, one message), but every x86_64
//! miscompile is `mismatch:interp!=jit=object` and every wild store `crash:jit:SIGSEGV`. A
//! campaign that deduplicated by bucket alone would go blind after its first miscompile.
//!
//! For these *coarse* buckets a finding's identity is decided after reduction, from what the
//! minimal case still contains: the bucket plus the [`Signature`] of the reduced case — the
//! opcodes left in the functions the failing run line reaches (constants and plain control flow
//! aside), and each call's kind, convention and `sarg` use. A reducer that keeps the bug and
//! drops everything else leaves exactly what the bug needs: a wrong `umulhi` lowering reduces to
//! a few instructions around `umulhi`, a broken `rotr` rule to `rotr`, and the two stay two
//! findings. Two hits that reduce to the same signature are one finding.
//!
//! Reduction is too costly to run on every hit, so a cheap test orders the work
//! ([`explained_by`]): a hit whose functions do not even contain some identified finding's
//! signature cannot be that finding and is reduced first; hits that could be a known identity
//! are re-checked on a sample. The two limits of this design are stated where they bite: two
//! different bugs that need exactly the same instructions share an identity, and the same bug
//! reduced to two different minimal cases gets two (a duplicate, never a hidden bug).

use crate::case::TestCase;
use crate::facts::{self, CallKind};
use crate::oracle::{Finding, Report};
use crate::outcome::{Outcome, Phase};
use cranelift_codegen::ir::Opcode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Buckets whose name does not pin a root cause, so that identity needs the reduced case.
pub fn is_coarse(bucket: &str) -> bool {
    ["mismatch:", "crash:", "timeout:", "oom:"]
        .iter()
        .any(|p| bucket.starts_with(p))
}

/// Instructions every reduced case keeps whatever its bug: they say nothing about the cause.
const SCAFFOLDING: [Opcode; 6] = [
    Opcode::Iconst,
    Opcode::F32const,
    Opcode::F64const,
    Opcode::Vconst,
    Opcode::Return,
    Opcode::Jump,
];

/// Instructions that move or adapt values rather than compute them: a reduced case keeps
/// them to feed its bug (a parameter stored and reloaded, an `i128` split to return it).
/// They name the identity only when nothing else is left — when the bug is in them.
const PLUMBING: [Opcode; 22] = [
    Opcode::StackAddr,
    Opcode::Load,
    Opcode::Store,
    Opcode::Istore8,
    Opcode::Istore16,
    Opcode::Istore32,
    Opcode::Uload8,
    Opcode::Sload8,
    Opcode::Uload16,
    Opcode::Sload16,
    Opcode::Uload32,
    Opcode::Sload32,
    Opcode::Uextend,
    Opcode::Sextend,
    Opcode::Ireduce,
    Opcode::Isplit,
    Opcode::Iconcat,
    Opcode::Bitcast,
    Opcode::FuncAddr,
    Opcode::Brif,
    Opcode::BrTable,
    Opcode::Select,
];

/// What a (reduced) finding is made of, as sorted tokens: `umulhi`, `call:tail`,
/// `call:system_v:sarg`, `return_call:tail`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Signature(pub BTreeSet<String>);

impl Signature {
    /// A short stable digest, for directory names.
    pub fn digest(&self) -> String {
        let mut h: u32 = 0x811c_9dc5;
        for t in &self.0 {
            for b in t.bytes().chain(std::iter::once(b' ')) {
                h = (h ^ b as u32).wrapping_mul(0x0100_0193);
            }
        }
        format!("{h:08x}")
    }

    /// `umulhi+iadd+call:fast`, for people.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            return "(nothing but constants)".into();
        }
        self.0.iter().cloned().collect::<Vec<_>>().join("+")
    }

    /// Does `profile` contain every token of this signature?
    pub fn within(&self, profile: &Signature) -> bool {
        self.0.is_subset(&profile.0)
    }
}

/// The functions a finding can come from: those its run line reaches, or the whole module for
/// a failure while compiling, finalizing or linking (every function is compiled).
pub fn scope(case: &TestCase, report: &Report, finding: &Finding) -> Vec<usize> {
    let all: Vec<usize> = (0..case.functions.len()).collect();
    let Some(run) = report.runs.get(finding.run) else {
        return all;
    };
    let compile_time = report
        .engines
        .iter()
        .zip(&run.outcomes)
        .any(|(e, o)| {
            finding.sides.contains(&e.label())
                && matches!(o, Outcome::Panic { phase, .. } | Outcome::Error { phase, .. } if *phase != Phase::Run)
        });
    match case.runs.get(finding.run) {
        Some(line) if !compile_time => facts::reachable(case, &line.func),
        _ => all,
    }
}

/// The signature of `finding` in (reduced) `case`: what the functions in its [`scope`]
/// compute — its [`profile`] without the plumbing (moves, extensions, address arithmetic), or
/// the whole profile when nothing but plumbing is left (the bug is in the plumbing, or in the
/// calls).
pub fn signature(case: &TestCase, report: &Report, finding: &Finding) -> Signature {
    computing(profile(case, &scope(case, report, finding)))
}

/// `full` without the [`PLUMBING`] tokens, or `full` itself when nothing else is left.
pub fn computing(full: Signature) -> Signature {
    let plumbing: Vec<String> = PLUMBING.iter().map(|o| o.to_string()).collect();
    let core: BTreeSet<String> = full
        .0
        .iter()
        .filter(|t| !plumbing.contains(t))
        .cloned()
        .collect();
    if core.is_empty() {
        full
    } else {
        Signature(core)
    }
}

/// The tokens of the functions `funcs` of `case`.
pub fn profile(case: &TestCase, funcs: &[usize]) -> Signature {
    let mut tokens = BTreeSet::new();
    for (op, _) in facts::opcodes(case, funcs) {
        if SCAFFOLDING.contains(&op) || is_call(op) {
            continue;
        }
        tokens.insert(op.to_string());
    }
    for &i in funcs {
        for site in facts::call_sites(case, i) {
            // Direct or through a pointer is the reducer's choice (it devirtualizes), so the
            // token does not tell them apart; a tail call is a different ABI path.
            let kind = match site.kind {
                CallKind::Direct | CallKind::Indirect => "call",
                CallKind::Tail | CallKind::TailIndirect => "return_call",
            };
            let mut t = format!("{kind}:{}", site.conv());
            if site.has_sarg() {
                t.push_str(":sarg");
            }
            tokens.insert(t);
        }
    }
    Signature(tokens)
}

fn is_call(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::Call
            | Opcode::CallIndirect
            | Opcode::ReturnCall
            | Opcode::ReturnCallIndirect
            | Opcode::TryCall
            | Opcode::TryCallIndirect
    )
}

/// The identified signatures `finding` could be an instance of: those whose every token the
/// hit's own scope contains. A hit explained by none is certainly not one of them.
pub fn explained_by<'s>(
    case: &TestCase,
    report: &Report,
    finding: &Finding,
    identified: &'s [Signature],
) -> Vec<&'s Signature> {
    let hit = profile(case, &scope(case, report, finding));
    identified.iter().filter(|s| s.within(&hit)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSpec;
    use crate::oracle::Verdict;

    fn judged(text: &str, outcomes: Vec<Vec<Outcome>>) -> (TestCase, Report) {
        let case = TestCase::parse(text).unwrap();
        let engines: Vec<EngineSpec> = ["interp", "jit"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let report = Report::judge(&case, &engines, &outcomes);
        (case, report)
    }

    fn ret(v: i64) -> Outcome {
        Outcome::Returned {
            values: vec![crate::value::Val::I64(v)],
        }
    }

    const TWO_BUGS: &str = "test run
target x86_64

function %a(i64, i64) -> i64 system_v {
block0(v0: i64, v1: i64):
    v2 = umulhi v0, v1
    return v2
}
; run: %a(1, 2) == 0

function %b(i64) -> i64 system_v {
block0(v0: i64):
    v1 = iconst.i64 3
    v2 = rotr v0, v1
    return v2
}
; run: %b(8) == 1
";

    #[test]
    fn different_reduced_bugs_in_one_partition_get_different_identities() {
        // outcomes[engine][line]: the interpreter says 0 and 1, the JIT 1 and 5.
        let (case, report) = judged(TWO_BUGS, vec![vec![ret(0), ret(1)], vec![ret(1), ret(5)]]);
        // Both lines are `mismatch:interp!=jit`: one finding by bucket, at line 0...
        assert_eq!(report.findings.len(), 1);
        let mut f = report.findings[0].clone();
        assert_eq!(f.verdict, Verdict::Mismatch);
        let a = signature(&case, &report, &f);
        // ...but what line 0 and line 1 reach differs.
        f.run = 1;
        let b = signature(&case, &report, &f);
        assert_eq!(a.describe(), "umulhi");
        assert_eq!(b.describe(), "rotr");
        assert_ne!(a.digest(), b.digest());
        // A hit that reaches only `rotr` cannot be the `umulhi` finding.
        assert!(explained_by(&case, &report, &f, std::slice::from_ref(&a)).is_empty());
        assert_eq!(
            explained_by(&case, &report, &f, std::slice::from_ref(&b)).len(),
            1
        );
    }

    #[test]
    fn coarse_buckets_are_the_ones_without_a_cause_in_the_name() {
        assert!(is_coarse("mismatch:interp!=jit=object"));
        assert!(is_coarse("crash:jit:SIGSEGV"));
        assert!(is_coarse("timeout:object"));
        assert!(!is_coarse("panic:cranelift-jit/src/compiled_blob.rs:142"));
        assert!(!is_coarse("error:jit:compile:X"));
    }
}
