//! Instructions: remove them, replacing their results by zero constants of the same type, or
//! *bypass* them, replacing their result by one of their own operands.
//!
//! Zeros rather than parameters or arbitrary earlier values: a replacement must never turn a
//! pointer into a result (the interpreter's addresses are not the native ones, so that would
//! manufacture a mismatch). For the same reason a bypass never forwards an address operand. Each
//! function keeps one zero per type at the top of its entry block, which all replacements share;
//! it is itself removable once nothing uses it.

use super::{Pass, edit};
use crate::case::TestCase;
use crate::reduce::ir::{
    address_operand, canonical_zero, insts, is_terminator, substitute, used_values, zero,
    zero_const_type,
};
use cranelift_codegen::ir::Inst;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

pub struct RemoveInsts;

/// (function index, instruction) of every removable instruction, in module order.
fn atoms(case: &TestCase) -> Vec<(usize, Inst)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        let used = used_values(f);
        let none = HashSet::new();
        for inst in insts(f) {
            if is_terminator(f, inst) {
                continue;
            }
            let in_use = f.dfg.inst_results(inst).iter().any(|v| used.contains(v));
            let is_the_zero = zero_const_type(f, inst)
                .is_some_and(|ty| canonical_zero(f, ty, &none) == Some(inst));
            if !(is_the_zero && in_use) {
                out.push((fi, inst));
            }
        }
    }
    out
}

impl Pass for RemoveInsts {
    fn name(&self) -> &'static str {
        "remove-insts"
    }
    fn count(&self, case: &TestCase) -> usize {
        atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let all = atoms(case);
        let chosen = all.get(range)?;
        edit(case, |c| {
            for fi in 0..c.functions.len() {
                let gone: HashSet<Inst> = chosen
                    .iter()
                    .filter(|(f, _)| *f == fi)
                    .map(|(_, i)| *i)
                    .collect();
                if gone.is_empty() {
                    continue;
                }
                let f = &mut c.functions[fi];
                let used = used_values(f);
                let mut map = HashMap::new();
                for &inst in &gone {
                    let results: Vec<_> = f.dfg.inst_results(inst).to_vec();
                    for r in results.into_iter().filter(|r| used.contains(r)) {
                        let ty = f.dfg.value_type(r);
                        map.insert(r, zero(f, ty, &gone)?);
                    }
                }
                for &inst in &gone {
                    f.layout.remove_inst(inst);
                }
                substitute(f, &map);
            }
            Some(())
        })
    }
    fn chunked(&self) -> bool {
        true
    }
}

/// Replaces an instruction's single result by one of its operands of the same type.
pub struct BypassInsts;

fn bypass_atoms(case: &TestCase) -> Vec<(usize, Inst, usize)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for inst in insts(f) {
            let [r] = f.dfg.inst_results(inst) else {
                continue;
            };
            let ty = f.dfg.value_type(*r);
            let addr = address_operand(f, inst);
            let mut seen = Vec::new();
            for (k, &a) in f.dfg.inst_args(inst).iter().enumerate() {
                if f.dfg.value_type(a) == ty && Some(a) != addr && !seen.contains(&a) {
                    seen.push(a);
                    out.push((fi, inst, k));
                }
            }
        }
    }
    out
}

impl Pass for BypassInsts {
    fn name(&self) -> &'static str {
        "bypass-insts"
    }
    fn count(&self, case: &TestCase) -> usize {
        bypass_atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let (fi, inst, k) = *bypass_atoms(case).get(range.start)?;
        edit(case, |c| {
            let f = &mut c.functions[fi];
            let r = f.dfg.first_result(inst);
            let a = f.dfg.inst_args(inst)[k];
            f.layout.remove_inst(inst);
            substitute(f, &HashMap::from([(r, a)]));
            Some(())
        })
    }
}

/// Replaces an instruction's integer result by an *earlier* integer value it is computed from,
/// extended or reduced to its type: `v8 = ireduce.i32 (rotl (bitcast (fcvt_from_uint v3)))`
/// becomes `v8 = uextend.i32 v3`. A bypass across types and across several instructions: the
/// chain in between, which only carried the bug's value to where it shows, can then go.
pub struct ShortcutInsts;

/// How far back to look for a value to shortcut to.
const SHORTCUT_DEPTH: usize = 4;

fn shortcut_atoms(case: &TestCase) -> Vec<(usize, Inst, cranelift_codegen::ir::Value)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for inst in insts(f) {
            let [r] = f.dfg.inst_results(inst) else {
                continue;
            };
            let ty = f.dfg.value_type(*r);
            let op = f.dfg.insts[inst].opcode();
            if !ty.is_int() || op.is_call() || op.can_store() || op.is_terminator() {
                continue;
            }
            // A conversion shortcut to its own operand would be itself again (under a new
            // value number, which the repeat check cannot see): no progress.
            let conversion = matches!(
                op,
                cranelift_codegen::ir::Opcode::Uextend
                    | cranelift_codegen::ir::Opcode::Sextend
                    | cranelift_codegen::ir::Opcode::Ireduce
            );
            // Values this one is computed from, nearest first, beyond its direct operands
            // (those are `BypassInsts`' business when their type matches).
            let mut frontier: Vec<cranelift_codegen::ir::Value> = f.dfg.inst_args(inst).to_vec();
            let mut seen = Vec::new();
            for depth in 0..SHORTCUT_DEPTH {
                let mut next = Vec::new();
                for v in frontier {
                    let v = f.dfg.resolve_aliases(v);
                    if seen.contains(&v) {
                        continue;
                    }
                    seen.push(v);
                    let vt = f.dfg.value_type(v);
                    if vt.is_int()
                        && !crate::facts::is_address(f, v)
                        && (depth > 0 || (vt != ty && !conversion))
                        && address_operand(f, inst) != Some(v)
                    {
                        out.push((fi, inst, v));
                    }
                    if let cranelift_codegen::ir::ValueDef::Result(d, _) = f.dfg.value_def(v) {
                        next.extend(f.dfg.inst_args(d).iter().copied());
                    }
                }
                frontier = next;
            }
        }
    }
    out
}

impl Pass for ShortcutInsts {
    fn name(&self) -> &'static str {
        "shortcut-insts"
    }
    fn count(&self, case: &TestCase) -> usize {
        shortcut_atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        use cranelift_codegen::cursor::{Cursor, FuncCursor};
        use cranelift_codegen::ir::InstBuilder;
        let (fi, inst, a) = *shortcut_atoms(case).get(range.start)?;
        edit(case, |c| {
            let f = &mut c.functions[fi];
            let r = f.dfg.first_result(inst);
            let (from, to) = (f.dfg.value_type(a), f.dfg.value_type(r));
            let mut pos = FuncCursor::new(f).at_inst(inst);
            let v = match from.bits().cmp(&to.bits()) {
                std::cmp::Ordering::Equal => a,
                std::cmp::Ordering::Less => pos.ins().uextend(to, a),
                std::cmp::Ordering::Greater => pos.ins().ireduce(to, a),
            };
            f.layout.remove_inst(inst);
            substitute(f, &HashMap::from([(r, v)]));
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::reduce::count_insts;

    #[test]
    fn a_chain_that_only_carries_a_value_is_shortcut() {
        let c = case(
            "test run
target x86_64

function %f() -> i32 system_v {
block0:
    v0 = iconst.i8 -1
    v1 = umulhi v0, v0
    v2 = fcvt_from_uint.f64 v1
    v3 = bitcast.i64 v2
    v4 = iconst.i8 2
    v5 = rotl v3, v4
    v6 = ireduce.i32 v5
    return v6
}
; run: %f() == 0
",
        );
        // A stand-in finding: %f still returns a value computed from `umulhi`.
        let out = reduce_with(&c, |t| {
            let f = &t.functions[0];
            let text = t.to_text();
            let ret = crate::facts::insts(f)
                .find(|&i| f.dfg.insts[i].opcode().is_return())
                .and_then(|i| f.dfg.inst_args(i).first().copied());
            let from_umulhi = |mut v| {
                for _ in 0..8 {
                    match f.dfg.value_def(v) {
                        cranelift_codegen::ir::ValueDef::Result(i, _) => {
                            if f.dfg.insts[i].opcode() == cranelift_codegen::ir::Opcode::Umulhi {
                                return true;
                            }
                            match f.dfg.inst_args(i).first() {
                                Some(&a) => v = a,
                                None => return false,
                            }
                        }
                        _ => return false,
                    }
                }
                false
            };
            text.contains("-> i32") && ret.is_some_and(from_umulhi)
        });
        let text = out.to_text();
        assert!(!text.contains("rotl") && !text.contains("fcvt"), "{text}");
        assert!(text.contains("uextend.i32"), "{text}");
    }

    const CASE: &str = "test run
target x86_64

function %f(i64) -> i64 system_v {
block0(v0: i64):
    v1 = iconst.i64 7
    v2 = iadd v0, v1
    v3 = imul v2, v2
    v4 = band v3, v0
    return v4
}
; print: %f(3)
";

    #[test]
    fn results_become_zeros_and_the_rest_verifies() {
        let c = case(CASE);
        // Keep any case that still multiplies: everything else goes.
        let out = run_pass(&RemoveInsts, &c, |t| t.to_text().contains("imul"));
        let text = out.to_text();
        assert!(text.contains("imul"), "{text}");
        assert!(!text.contains("iadd") && !text.contains("band"), "{text}");
        // imul's operand and the returned value are the shared zero.
        assert!(text.contains("iconst.i64 0"), "{text}");
        assert_eq!(count_insts(&out), 3, "{text}");
    }

    #[test]
    fn bypass_forwards_operands_but_never_addresses() {
        let c = case(
            "test run
target x86_64

function %f(i64, i64) -> i64 system_v {
block0(v0: i64, v1: i64):
    v2 = iadd v0, v1
    v3 = load.i64 v2
    v4 = bxor v3, v3
    return v4
}
; print: %f(1, 2)
",
        );
        let cands = candidates(&BypassInsts, &c);
        // iadd: either operand; load: none (its operand is an address); bxor: v3 once.
        assert_eq!(cands.len(), 3, "{cands:#?}");
        assert!(cands[0].contains("load.i64 v0\n"), "{}", cands[0]);
        assert!(cands[1].contains("load.i64 v1\n"), "{}", cands[1]);
        assert!(cands[2].contains("return v3\n"), "{}", cands[2]);
    }

    #[test]
    fn a_used_shared_zero_is_not_an_atom() {
        let c = case(
            "function %f() -> i32 system_v {
block0:
    v0 = iconst.i32 0
    v1 = iconst.i32 0
    v2 = iadd v0, v1
    return v2
}
",
        );
        // v0 is the shared zero (used); v1 (a second zero) and the iadd are removable.
        assert_eq!(RemoveInsts.count(&c), 2);
    }
}
