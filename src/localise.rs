//! Localisation: which stage of Cranelift's pipeline a (reduced) finding needs.
//!
//! A reduced case says *what* a bug needs — the instructions left — but the same mid-end bug can
//! reduce to different instructions (a wrong constant fold reached from a `bnot`, a `bxor` with
//! `-1`, a `udiv` the optimiser rewrites), and a backend bug can hide behind an ISA feature (a
//! lowering that only the non-BMI2 path takes). Running the reduced case again with one knob
//! turned tells *where*: gone at `opt_level=none` means the mid-end; gone with the other register
//! allocator, the allocator; gone with other ISA features, the lowering those features select.
//! Findings of one bucket with the same localisation are marked related (possibly one bug);
//! they stay separate findings, since two mid-end bugs are localised alike.

use crate::case::TestCase;
use crate::harness::{Plan, check};
use crate::identity::{self, Signature};
use crate::oracle::{Finding, Report};
use crate::sandbox::Sandbox;
use crate::target::{Arch, case_arch, host_runs};
use anyhow::Result;

/// One knob turned, and what it is evidence of when the finding goes away with it.
struct Variant {
    what: String,
    case: TestCase,
}

fn variants(case: &TestCase) -> Vec<Variant> {
    let mut out = Vec::new();
    let opt = case.setting("opt_level").unwrap_or("none");
    if opt != "none" {
        let mut c = case.clone();
        c.set_setting("opt_level", "none");
        out.push(Variant {
            what: "mid-end: gone at opt_level=none".to_string(),
            case: c,
        });
    }
    let ra = case.setting("regalloc_algorithm").unwrap_or("backtracking");
    let other = if ra == "single_pass" {
        "backtracking"
    } else {
        "single_pass"
    };
    let mut c = case.clone();
    c.set_setting("regalloc_algorithm", other);
    out.push(Variant {
        what: format!("register allocation: gone with regalloc_algorithm={other}"),
        case: c,
    });
    if let (Ok(arch), Some(target)) = (case_arch(case), &case.target) {
        let mut words = target.split_whitespace();
        let name = words.next().unwrap_or("");
        let flags: Vec<&str> = words.collect();
        let swap = if !flags.is_empty() {
            Some((String::new(), format!("without {}", flags.join(" "))))
        } else if arch == Arch::X86_64 {
            let v3 = crate::generator::config::X86_64_LEVELS[2];
            host_runs(arch, v3).then(|| (v3.to_string(), format!("with {v3}")))
        } else {
            None
        };
        if let Some((set, said)) = swap {
            let mut c = case.clone();
            c.target = Some(format!("{name} {set}").trim().to_string());
            out.push(Variant {
                what: format!("ISA features: gone {said}"),
                case: c,
            });
        }
    }
    out
}

/// What the reduced `case` showing `finding` under `plan` needs: one line per knob whose turning
/// makes the finding go away (an empty list when none does).
pub fn localise(
    sandbox: &mut Sandbox,
    case: &TestCase,
    plan: &Plan,
    finding: &Finding,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in variants(case) {
        let report = check(sandbox, &v.case, plan)?;
        // A variant the verifier or the target refuses says nothing.
        if report.invalid.is_some() || !report.skipped().is_empty() {
            continue;
        }
        if report.finding(&finding.bucket).is_none() {
            out.push(v.what);
        }
    }
    Ok(out)
}

/// What the reduced case computes once Cranelift's mid-end is done with it: the identity
/// tokens of the optimised functions the finding's run line reaches, as the backend sees them
/// (the IR is optimised in a worker, with the settings of a native side of the finding).
///
/// A mid-end that rewrites `udiv` by a constant into `umulhi` hands the backend a `umulhi`: a
/// finding whose identity is `udiv` and whose optimised code computes `umulhi` is related to a
/// `umulhi` finding. `None` when the case cannot be optimised (or has no native side).
pub fn optimised(
    sandbox: &mut Sandbox,
    case: &TestCase,
    report: &Report,
    finding: &Finding,
) -> Option<Signature> {
    let side = report.engines.iter().find(|e| {
        finding.sides.contains(&e.label()) && e.kind != crate::engine::EngineKind::Interp
    })?;
    let texts = sandbox.optimized(case, &side.overrides).ok()?;
    let mut opt = case.clone();
    for (f, text) in opt.functions.iter_mut().zip(&texts) {
        *f = cranelift_reader::parse_functions(text)
            .ok()?
            .into_iter()
            .next()?;
    }
    Some(identity::computing(identity::profile(
        &opt,
        &identity::scope(&opt, report, finding),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_knob_is_turned_once() {
        let case = TestCase::parse(
            "test run\nset opt_level=speed\ntarget x86_64 has_sse41\n\nfunction %f() {\nblock0:\n    return\n}\n",
        )
        .unwrap();
        let v = variants(&case);
        let whats: Vec<&str> = v.iter().map(|v| v.what.as_str()).collect();
        assert_eq!(v.len(), 3, "{whats:?}");
        assert_eq!(v[0].case.setting("opt_level"), Some("none"));
        assert_eq!(v[1].case.setting("regalloc_algorithm"), Some("single_pass"));
        assert_eq!(v[2].case.target.as_deref(), Some("x86_64"));
        assert!(whats[2].contains("without has_sse41"), "{whats:?}");
    }
}
