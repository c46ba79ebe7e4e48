//! Signatures: remove parameters and returns, shrink `sarg` sizes — at the function, at every
//! call site (each gets a signature of its own first) and on the run lines.
//!
//! Only functions that are reached by plain `call`s qualify: a function whose address is taken
//! or that is tail-called would need its indirect callers found too.

use super::{Pass, edit};
use crate::case::{Expect, TestCase, testcase_name};
use crate::reduce::ir::{
    calls_through, escapes, function_index, insts, own_signature, refs_to, substitute, used_values,
    zero,
};
use cranelift_codegen::ir::{ArgumentPurpose, Function, InstructionData, Opcode, Signature, types};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// Names of the functions whose signatures may change.
fn editable(case: &TestCase) -> Vec<String> {
    case.functions
        .iter()
        .map(testcase_name)
        .filter(|n| !escapes(case, n))
        .collect()
}

/// Applies `sig_edit` to the signature of `name` and of every reference to it; then `site` to
/// every function and each of its calls of `name`.
fn edit_signature(
    c: &mut TestCase,
    name: &str,
    sig_edit: &dyn Fn(&mut Signature) -> Option<()>,
    site: &mut dyn FnMut(&mut Function, cranelift_codegen::ir::Inst) -> Option<()>,
) -> Option<()> {
    let fi = function_index(c, name)?;
    sig_edit(&mut c.functions[fi].signature)?;
    for g in &mut c.functions {
        for fr in refs_to(g, name) {
            let sig = own_signature(g, fr);
            sig_edit(&mut g.dfg.signatures[sig])?;
            for call in calls_through(g, fr) {
                site(g, call)?;
            }
        }
    }
    Some(())
}

pub struct RemoveParams;

fn param_atoms(case: &TestCase) -> Vec<(String, usize)> {
    editable(case)
        .into_iter()
        .flat_map(|n| {
            let k = case.function(&n).map_or(0, |f| f.signature.params.len());
            (0..k).map(move |i| (n.clone(), i))
        })
        .collect()
}

impl Pass for RemoveParams {
    fn name(&self) -> &'static str {
        "remove-params"
    }
    fn count(&self, case: &TestCase) -> usize {
        param_atoms(case).len()
    }
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase> {
        let (name, i) = param_atoms(case).get(atoms.start)?.clone();
        edit(case, |c| {
            let fi = function_index(c, &name)?;
            let f = &mut c.functions[fi];
            let entry = f.layout.entry_block()?;
            let p = *f.dfg.block_params(entry).get(i)?;
            if used_values(f).contains(&p) {
                let z = zero(f, f.dfg.value_type(p), &HashSet::new())?;
                substitute(f, &HashMap::from([(p, z)]));
            }
            f.dfg.remove_block_param(p);
            edit_signature(
                c,
                &name,
                &|sig| {
                    (i < sig.params.len())
                        .then(|| sig.params.remove(i))
                        .map(drop)
                },
                &mut |g, call| {
                    let dfg = &mut g.dfg;
                    let InstructionData::Call { args, .. } = &mut dfg.insts[call] else {
                        return None;
                    };
                    (i < args.len(&dfg.value_lists)).then(|| args.remove(i, &mut dfg.value_lists))
                },
            )?;
            for r in c.runs.iter_mut().filter(|r| r.func == name) {
                (i < r.args.len()).then(|| r.args.remove(i))?;
            }
            Some(())
        })
    }
}

pub struct RemoveReturns;

/// Does `f` tail-call (which ties its returns to its callee's)?
fn tail_calls(f: &Function) -> bool {
    insts(f).into_iter().any(|i| {
        matches!(
            f.dfg.insts[i].opcode(),
            Opcode::ReturnCall | Opcode::ReturnCallIndirect
        )
    })
}

fn return_atoms(case: &TestCase) -> Vec<(String, usize)> {
    editable(case)
        .into_iter()
        .filter_map(|n| {
            let f = case.function(&n)?;
            (!tail_calls(f)).then(|| (0..f.signature.returns.len()).map(move |j| (n.clone(), j)))
        })
        .flatten()
        .collect()
}

impl Pass for RemoveReturns {
    fn name(&self) -> &'static str {
        "remove-returns"
    }
    fn count(&self, case: &TestCase) -> usize {
        return_atoms(case).len()
    }
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase> {
        let (name, j) = return_atoms(case).get(atoms.start)?.clone();
        edit(case, |c| {
            let fi = function_index(c, &name)?;
            let f = &mut c.functions[fi];
            for inst in insts(f) {
                let dfg = &mut f.dfg;
                if let InstructionData::MultiAry {
                    opcode: Opcode::Return,
                    args,
                } = &mut dfg.insts[inst]
                {
                    (j < args.len(&dfg.value_lists))
                        .then(|| args.remove(j, &mut dfg.value_lists))?;
                }
            }
            edit_signature(
                c,
                &name,
                &|sig| {
                    (j < sig.returns.len())
                        .then(|| sig.returns.remove(j))
                        .map(drop)
                },
                &mut |g, call| {
                    let old = g.dfg.inst_results(call).to_vec();
                    let gone = *old.get(j)?;
                    let mut map = HashMap::new();
                    if used_values(g).contains(&gone) {
                        map.insert(gone, zero(g, g.dfg.value_type(gone), &HashSet::new())?);
                    }
                    g.dfg.clear_results(call);
                    let keep = old
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| *k != j)
                        .map(|(_, v)| Some(*v));
                    g.dfg.make_inst_results_reusing(call, types::INVALID, keep);
                    substitute(g, &map);
                    Some(())
                },
            )?;
            for r in c.runs.iter_mut().filter(|r| r.func == name) {
                if let Expect::Eq(v) | Expect::Ne(v) = &mut r.expect {
                    (j < v.len()).then(|| v.remove(j))?;
                }
            }
            Some(())
        })
    }
}

/// Shrinks `sarg(N)` to 8 bytes, else to half (x64 wants multiples of 8).
pub struct ShrinkSargs;

fn smaller_sizes(n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = [8, (n / 2).div_ceil(8) * 8]
        .into_iter()
        .filter(|&s| s > 0 && s < n)
        .collect();
    v.dedup();
    v
}

fn sarg_atoms(case: &TestCase) -> Vec<(String, usize, u32)> {
    let mut out = Vec::new();
    for n in editable(case) {
        let Some(f) = case.function(&n) else { continue };
        for (i, p) in f.signature.params.iter().enumerate() {
            if let ArgumentPurpose::StructArgument(size) = p.purpose {
                out.extend(smaller_sizes(size).into_iter().map(|s| (n.clone(), i, s)));
            }
        }
    }
    out
}

impl Pass for ShrinkSargs {
    fn name(&self) -> &'static str {
        "shrink-sargs"
    }
    fn count(&self, case: &TestCase) -> usize {
        sarg_atoms(case).len()
    }
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase> {
        let (name, i, size) = sarg_atoms(case).get(atoms.start)?.clone();
        edit(case, |c| {
            edit_signature(
                c,
                &name,
                &|sig| {
                    sig.params.get_mut(i)?.purpose = ArgumentPurpose::StructArgument(size);
                    Some(())
                },
                &mut |_, _| Some(()),
            )
        })
    }
}

/// Turns a function's `sarg` parameters into plain pointers with the copy made explicitly in
/// its body (what [`crate::engine::sarg_copy`] does for the interpreter).
///
/// The program means the same, but no longer through the `sarg` ABI: if the finding survives,
/// the ABI was not its cause, and the now plain call can be inlined; if it does not, the `sarg`
/// stays in the reproducer as evidence.
pub struct ExplicitSargCopies;

fn sarg_functions(case: &TestCase) -> Vec<String> {
    editable(case)
        .into_iter()
        .filter(|n| {
            case.function(n).is_some_and(|f| {
                f.signature
                    .params
                    .iter()
                    .any(|p| matches!(p.purpose, ArgumentPurpose::StructArgument(_)))
            })
        })
        .collect()
}

impl Pass for ExplicitSargCopies {
    fn name(&self) -> &'static str {
        "explicit-sarg-copies"
    }
    fn count(&self, case: &TestCase) -> usize {
        sarg_functions(case).len()
    }
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase> {
        let name = sarg_functions(case).get(atoms.start)?.clone();
        edit(case, |c| {
            let fi = function_index(c, &name)?;
            crate::engine::sarg_copy::lower(&mut c.functions[fi]);
            edit_signature(
                c,
                &name,
                &|sig| {
                    for p in &mut sig.params {
                        if matches!(p.purpose, ArgumentPurpose::StructArgument(_)) {
                            p.purpose = ArgumentPurpose::Normal;
                        }
                    }
                    Some(())
                },
                &mut |_, _| Some(()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::facts::calls_match;

    #[test]
    fn sarg_parameters_become_explicit_copies() {
        let c = case(
            "test run
target x86_64

function %g(i64 sarg(8)) -> i64 system_v {
block0(v0: i64):
    v1 = load.i64 notrap v0
    return v1
}

function %main(i64) -> i64 system_v {
    ss0 = explicit_slot 8
    sig0 = (i64 sarg(8)) -> i64 system_v
    fn0 = colocated %g sig0
block0(v0: i64):
    v1 = stack_addr.i64 ss0
    store notrap v0, v1
    v2 = call fn0(v1)
    return v2
}
; run: %main(5) == 5
",
        );
        let out = candidates(&ExplicitSargCopies, &c);
        assert_eq!(out.len(), 1);
        assert!(!out[0].contains("sarg"), "{}", out[0]);
        let t = case(&out[0]);
        assert!(calls_match(&t), "{}", out[0]);
        assert!(crate::facts::memory::accesses_in_bounds(&t), "{}", out[0]);
    }

    const CALLS: &str = "test run
target x86_64

function %g(i32, i64, i64 sarg(32)) -> i32, i64 system_v {
block0(v0: i32, v1: i64, v2: i64):
    v3 = load.i32 v2
    return v3, v1
}

function %main(i32, i64) -> i32 system_v {
    ss0 = explicit_slot 32
    sig0 = (i32, i64, i64 sarg(32)) -> i32, i64 system_v
    fn0 = colocated %g sig0
    fn1 = colocated %g sig0
block0(v0: i32, v1: i64):
    v2 = stack_addr.i64 ss0
    v3, v4 = call fn0(v0, v1, v2)
    v5, v6 = call fn1(v3, v4, v2)
    return v5
}
; print: %main(1, 2)
";

    #[test]
    fn removing_a_parameter_updates_every_call_and_run_line() {
        let c = case(CALLS);
        // %g's first parameter (atom 0), then %main's first (atom 3).
        let cands = candidates(&RemoveParams, &c);
        assert_eq!(cands.len(), 5);
        let g0 = case(&cands[0]);
        assert!(calls_match(&g0), "{}", cands[0]);
        assert!(cands[0].contains("call fn0(v1, v2)"), "{}", cands[0]);
        assert!(cands[0].contains("call fn1(v4, v2)"), "{}", cands[0]);
        let m0 = case(&cands[3]);
        assert!(calls_match(&m0));
        assert!(cands[3].contains("; print: %main(2)"), "{}", cands[3]);
        // The removed parameter's uses read a zero now.
        assert!(cands[3].contains("iconst.i32 0"), "{}", cands[3]);
    }

    #[test]
    fn removing_a_return_updates_every_call() {
        let c = case(CALLS);
        let cands = candidates(&RemoveReturns, &c);
        // %g has 2 returns, %main 1.
        assert_eq!(cands.len(), 3);
        let first = case(&cands[0]);
        assert!(calls_match(&first), "{}", cands[0]);
        let text = &cands[0];
        assert!(text.contains("return v1"), "{text}");
        // The first result was used as an argument: a zero stands in for it.
        assert!(text.contains("iconst.i32 0"), "{text}");
    }

    #[test]
    fn user_named_functions_are_found_at_their_call_sites() {
        let c = case(
            "test run
target x86_64

function u0:1(i32, i32) -> i32 system_v {
block0(v0: i32, v1: i32):
    return v1
}

function %main() -> i32 system_v {
    fn0 = colocated u0:1(i32, i32) -> i32 system_v
block0:
    v0 = iconst.i32 5
    v1 = call fn0(v0, v0)
    return v1
}
; print: %main()
",
        );
        let cands = candidates(&RemoveParams, &c);
        assert_eq!(cands.len(), 2, "{cands:#?}");
        assert!(cands[0].contains("call fn0(v0)"), "{}", cands[0]);
        assert!(calls_match(&case(&cands[0])));
    }

    #[test]
    fn sargs_shrink_on_both_sides() {
        let c = case(CALLS);
        let cands = candidates(&ShrinkSargs, &c);
        assert_eq!(cands.len(), 2); // 8 and 16
        assert!(cands[0].contains("i64 sarg(8)"));
        assert!(!cands[0].contains("sarg(32)"), "{}", cands[0]);
        assert!(calls_match(&case(&cands[1])));
    }
}
