//! Is a case valid input? Only Cranelift's faults are findings.
//!
//! A hand-written file the verifier rejects, a call that declares its callee with another
//! signature, a target or setting Cranelift does not know: all of these would otherwise come
//! back from the engines as `error:jit:compile:Verifier_errors…` and look like findings. They are
//! bad input, named in one line. The check runs where engines run (in a sandbox worker, before
//! the engines), because verifying is Cranelift code and may itself panic on odd input; the
//! verifier is run on the case *as written*, so a verifier error Cranelift raises after its own
//! optimisations still reaches the oracle as a finding.

use crate::case::{TestCase, testcase_name};
use crate::engine::EngineSpec;
use crate::facts;
use crate::target::{build_isa, case_arch};

/// `Err(message)` naming the first reason `case` is not valid input for `engines`.
pub fn check_input(case: &TestCase, engines: &[EngineSpec]) -> Result<(), String> {
    match crate::panics::catch(|| check_uncaught(case, engines)) {
        Ok(r) => r,
        Err(p) => Err(format!("the verifier panicked on the case: {}", p.message)),
    }
}

fn check_uncaught(case: &TestCase, engines: &[EngineSpec]) -> Result<(), String> {
    if case.functions.is_empty() {
        return Err("no functions in the case".into());
    }
    case_arch(case).map_err(|e| format!("{e:#}"))?;
    let isa = build_isa(case, &[]).map_err(|e| format!("{e:#}"))?;
    for spec in engines.iter().filter(|e| !e.overrides.is_empty()) {
        let o: Vec<(&str, &str)> = spec
            .overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        build_isa(case, &o).map_err(|e| format!("engine `{}`: {e:#}", spec.label()))?;
    }
    for f in &case.functions {
        if let Err(errors) = cranelift_codegen::verify_function(f, &*isa) {
            let first = errors
                .0
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "rejected".into());
            return Err(format!(
                "verifier: %{}: {first}{}",
                testcase_name(f),
                if errors.0.len() > 1 {
                    format!(" (and {} more)", errors.0.len() - 1)
                } else {
                    String::new()
                }
            ));
        }
    }
    if let Some(why) = facts::first_call_mismatch(case) {
        return Err(format!("call signature: {why}"));
    }
    check_data(case)?;
    for run in &case.runs {
        if case.function(&run.func).is_none() {
            return Err(format!("run line invokes unknown function %{}", run.func));
        }
    }
    Ok(())
}

/// Data objects have names of their own, and point only at what the case defines.
fn check_data(case: &TestCase) -> Result<(), String> {
    for (k, d) in case.data.iter().enumerate() {
        if case.data[..k].iter().any(|o| o.name == d.name) || case.function(&d.name).is_some() {
            return Err(format!("data %{}: the name is defined twice", d.name));
        }
        for (off, t) in &d.relocs {
            let known = match t {
                crate::data::Target::Func(n) => case.function(n).is_some(),
                crate::data::Target::Data(n, _) => case.data_object(n).is_some(),
            };
            if !known {
                return Err(format!(
                    "data %{}: the relocation at {off} names nothing the case defines",
                    d.name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineKind;

    fn engines() -> Vec<EngineSpec> {
        EngineKind::ALL
            .iter()
            .map(|k| EngineSpec::plain(*k))
            .collect()
    }

    #[test]
    fn verifier_errors_are_bad_input_naming_the_function() {
        let bad = TestCase::parse(
            "test run\ntarget x86_64\n\nfunction %f(i32) -> i64 system_v {\nblock0(v0: i32):\n    return v0\n}\n",
        )
        .unwrap();
        let e = check_input(&bad, &engines()).unwrap_err();
        assert!(e.starts_with("verifier: %f:"), "{e}");
    }

    #[test]
    fn a_good_case_passes_and_a_bad_override_does_not() {
        let good = TestCase::parse(
            "test run\ntarget x86_64\n\nfunction %f(i64) -> i64 system_v {\nblock0(v0: i64):\n    return v0\n}\n; run: %f(1) == 1\n",
        )
        .unwrap();
        assert_eq!(check_input(&good, &engines()), Ok(()));
        let typo = vec!["jit[opt_level=fastest]".parse().unwrap()];
        assert!(check_input(&good, &typo).unwrap_err().contains("opt_level"));
    }
}
