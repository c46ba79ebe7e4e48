//! Constants toward 0 or 1: `iconst`/`f32const`/`f64const`, memory offsets, run-line
//! arguments; and computed values replaced by the constants that expose most bugs.

use super::{Pass, edit};
use crate::case::TestCase;
use crate::reduce::ir::insts;
use crate::value::Val;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64, Imm64, Offset32};
use cranelift_codegen::ir::{Function, Inst, InstructionData};
use std::ops::Range;

pub struct SimplifyConstants;

#[derive(Clone, Copy)]
enum Spot {
    Inst(usize, Inst),
    Arg(usize, usize),
}

/// The simpler values worth trying instead of `current` (as integers; floats convert).
fn targets(is_zero: bool, is_one: bool) -> impl Iterator<Item = i64> {
    [(!is_zero).then_some(0), (!is_zero && !is_one).then_some(1)]
        .into_iter()
        .flatten()
}

fn inst_targets(f: &Function, inst: Inst) -> Vec<i64> {
    match &f.dfg.insts[inst] {
        InstructionData::UnaryImm { imm, .. } => {
            targets(imm.bits() == 0, imm.bits() == 1).collect()
        }
        InstructionData::UnaryIeee32 { imm, .. } => {
            targets(imm.bits() == 0, imm.bits() == 1f32.to_bits()).collect()
        }
        InstructionData::UnaryIeee64 { imm, .. } => {
            targets(imm.bits() == 0, imm.bits() == 1f64.to_bits()).collect()
        }
        InstructionData::Load { offset, .. }
        | InstructionData::Store { offset, .. }
        | InstructionData::StackAddr { offset, .. } => {
            if i32::from(*offset) == 0 {
                vec![]
            } else {
                vec![0]
            }
        }
        _ => vec![],
    }
}

fn val_is(v: &Val, x: i64) -> bool {
    v.same(&with_value(v, x))
}

/// A value of `v`'s type holding `x` (exact for the 0 and 1 the pass uses; a vector holds `x`
/// as a 128-bit number).
fn with_value(v: &Val, x: i64) -> Val {
    match v {
        Val::F16(_) => Val::F16(if x == 0 { 0 } else { 0x3c00 }),
        Val::F128(_) => Val::F128(if x == 0 { 0 } else { 0x3fff << 112 }),
        Val::Vector(l, _) => Val::Vector(*l, x as u128),
        Val::I8(_) => Val::I8(x as i8),
        Val::I16(_) => Val::I16(x as i16),
        Val::I32(_) => Val::I32(x as i32),
        Val::I64(_) => Val::I64(x),
        Val::I128(_) => Val::I128(x as i128),
        Val::F32(_) => Val::F32((x as f32).to_bits()),
        Val::F64(_) => Val::F64((x as f64).to_bits()),
    }
}

fn atoms(case: &TestCase) -> Vec<(Spot, i64)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for inst in insts(f) {
            out.extend(
                inst_targets(f, inst)
                    .into_iter()
                    .map(|t| (Spot::Inst(fi, inst), t)),
            );
        }
    }
    for (ri, r) in case.runs.iter().enumerate() {
        for (ai, a) in r.args.iter().enumerate() {
            out.extend(targets(val_is(a, 0), val_is(a, 1)).map(|t| (Spot::Arg(ri, ai), t)));
        }
    }
    out
}

impl Pass for SimplifyConstants {
    fn name(&self) -> &'static str {
        "simplify-constants"
    }
    fn count(&self, case: &TestCase) -> usize {
        atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let (spot, x) = *atoms(case).get(range.start)?;
        edit(case, |c| {
            match spot {
                Spot::Arg(ri, ai) => {
                    let a = &mut c.runs[ri].args[ai];
                    *a = with_value(a, x);
                }
                Spot::Inst(fi, inst) => match &mut c.functions[fi].dfg.insts[inst] {
                    InstructionData::UnaryImm { imm, .. } => *imm = Imm64::new(x),
                    InstructionData::UnaryIeee32 { imm, .. } => {
                        *imm = Ieee32::with_bits((x as f32).to_bits())
                    }
                    InstructionData::UnaryIeee64 { imm, .. } => {
                        *imm = Ieee64::with_bits((x as f64).to_bits())
                    }
                    InstructionData::Load { offset, .. }
                    | InstructionData::Store { offset, .. }
                    | InstructionData::StackAddr { offset, .. } => *offset = Offset32::new(0),
                    _ => return None,
                },
            }
            Some(())
        })
    }
}

/// Replaces an instruction's integer result by `-1` or the type's minimum (the high bit).
///
/// Removing an instruction replaces its result by zero; but many bugs only show for operands
/// with the high bit set (a signed/unsigned confusion, a sign extension), and a reduction then
/// keeps whatever computed such an operand — a rotate, a float conversion — as if it were part
/// of the bug. Feeding the constant directly lets that computation go.
pub struct ConstResults;

fn const_atoms(case: &TestCase) -> Vec<(usize, Inst, i64)> {
    use cranelift_codegen::ir::Opcode;
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for inst in insts(f) {
            let op = f.dfg.insts[inst].opcode();
            let [r] = f.dfg.inst_results(inst) else {
                continue;
            };
            let ty = f.dfg.value_type(*r);
            if !ty.is_int()
                || ty.bits() > 64
                || op == Opcode::Iconst
                || op.is_call()
                || op.can_store()
                || op.is_terminator()
            {
                continue;
            }
            let min = i64::MIN >> (64 - ty.bits());
            for k in [-1, min] {
                out.push((fi, inst, k));
            }
        }
    }
    out
}

impl Pass for ConstResults {
    fn name(&self) -> &'static str {
        "const-results"
    }
    fn count(&self, case: &TestCase) -> usize {
        const_atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        use cranelift_codegen::cursor::{Cursor, FuncCursor};
        use cranelift_codegen::ir::InstBuilder;
        let (fi, inst, k) = *const_atoms(case).get(range.start)?;
        edit(case, |c| {
            let f = &mut c.functions[fi];
            let r = f.dfg.first_result(inst);
            let ty = f.dfg.value_type(r);
            let bits = ty.bits();
            let k = if bits >= 64 {
                k
            } else {
                k & ((1i64 << bits) - 1)
            };
            let v = FuncCursor::new(f).at_inst(inst).ins().iconst(ty, k);
            f.layout.remove_inst(inst);
            crate::reduce::ir::substitute(f, &std::collections::HashMap::from([(r, v)]));
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn a_computed_operand_becomes_the_constant_that_shows_the_bug() {
        let c = case(
            "test run
target x86_64

function %f(i64) -> i64 system_v {
block0(v0: i64):
    v1 = iconst.i64 7
    v2 = rotl v0, v1
    v3 = umulhi v2, v2
    return v3
}
; run: %f(1) == 0
",
        );
        // A stand-in bug that needs a negative operand for `umulhi`.
        let out = reduce_with(&c, |t| {
            let text = t.to_text();
            text.contains("umulhi")
                && (text.contains("rotl")
                    || text.contains("-1")
                    || text.contains("0x8000_0000_0000_0000"))
        });
        let text = out.to_text();
        assert!(!text.contains("rotl"), "{text}");
        assert!(text.contains("umulhi"), "{text}");
    }

    #[test]
    fn constants_offsets_and_arguments_go_to_zero_or_one() {
        let c = case(
            "test run
target x86_64

function %f(i32, f64) -> i32 system_v {
    ss0 = explicit_slot 16
block0(v0: i32, v1: f64):
    v2 = iconst.i32 1234
    v3 = iadd v2, v2
    v4 = f64const 0x1.8p3
    v5 = stack_addr.i64 ss0+8
    store v3, v5+4
    return v3
}
; print: %f(77, 0x1.0p5)
",
        );
        // Zero is refused for the iconst (say the finding needs a nonzero value there).
        let out = run_pass(&SimplifyConstants, &c, |t| {
            !t.to_text().contains("iconst.i32 0")
        });
        let text = out.to_text();
        assert!(text.contains("iconst.i32 1\n"), "{text}");
        assert!(text.contains("f64const 0.0"), "{text}");
        assert!(text.contains("stack_addr.i64 ss0\n"), "{text}");
        assert!(text.contains("store v3, v5\n"), "{text}");
        assert!(text.contains("%f(0, 0.0)"), "{text}");
    }
}
