//! Calls are replaced by the callee's body.
//!
//! The run line keeps its function (a reproducer shows the finding on the line it came from),
//! so a bug that lives in a callee keeps the whole call chain down to it unless the chain can
//! be flattened. Inlining (Cranelift's own inliner, `Context::inline`) does that; when the
//! finding survives it, the calls were only plumbing, and the callee, now unreferenced, goes.
//! When it does not survive — an ABI bug needs the call — the call stays, and with it the
//! evidence that the call is the cause.

use super::{Pass, edit};
use crate::case::TestCase;
use crate::facts::{ext_name, function_index, insts};
use cranelift_codegen::inline::{Inline, InlineCommand};
use cranelift_codegen::ir::{
    ArgumentPurpose, FuncRef, Function, Inst, InstructionData, Opcode, Value,
};
use std::borrow::Cow;
use std::ops::Range;

pub struct InlineCalls;

/// (caller, call instruction, callee) of every plain direct call of a case function whose
/// signature has only plain parameters (a `sarg` copy is the caller's ABI, not the body's).
fn atoms(case: &TestCase) -> Vec<(usize, Inst, usize)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for inst in insts(f) {
            let InstructionData::Call {
                opcode: Opcode::Call,
                func_ref,
                ..
            } = f.dfg.insts[inst]
            else {
                continue;
            };
            let Some(callee) = ext_name(f, func_ref).and_then(|n| function_index(case, &n)) else {
                continue;
            };
            let plain = |sig: &cranelift_codegen::ir::Signature| {
                sig.params
                    .iter()
                    .chain(&sig.returns)
                    .all(|p| p.purpose == ArgumentPurpose::Normal)
            };
            if callee != fi && plain(&case.functions[callee].signature) {
                out.push((fi, inst, callee));
            }
        }
    }
    out
}

/// Inlines exactly one call instruction.
struct One<'a> {
    call: Inst,
    callee: &'a Function,
}

impl Inline for One<'_> {
    fn inline(
        &mut self,
        _caller: &Function,
        inst: Inst,
        _opcode: Opcode,
        _callee: FuncRef,
        _args: &[Value],
    ) -> InlineCommand<'_> {
        if inst == self.call {
            InlineCommand::Inline {
                callee: Cow::Borrowed(self.callee),
                visit_callee: false,
            }
        } else {
            InlineCommand::KeepCall
        }
    }
}

impl Pass for InlineCalls {
    fn name(&self) -> &'static str {
        "inline-calls"
    }
    fn count(&self, case: &TestCase) -> usize {
        atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let (fi, inst, callee) = *atoms(case).get(range.start)?;
        edit(case, |c| {
            let body = case.functions[callee].clone();
            let mut ctx = cranelift_codegen::Context::for_function(c.functions[fi].clone());
            let inlined = ctx
                .inline(One {
                    call: inst,
                    callee: &body,
                })
                .ok()?;
            if !inlined {
                return None;
            }
            c.functions[fi] = ctx.func;
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn a_call_becomes_the_callee_body() {
        let c = case(
            "test run
target x86_64

function %inc(i64) -> i64 system_v {
block0(v0: i64):
    v1 = iconst.i64 1
    v2 = iadd v0, v1
    return v2
}

function %main(i64) -> i64 system_v {
    fn0 = colocated %inc(i64) -> i64 system_v
block0(v0: i64):
    v1 = call fn0(v0)
    return v1
}
; run: %main(3) == 4
",
        );
        let out = candidates(&InlineCalls, &c);
        assert_eq!(out.len(), 1);
        let main = out[0].split("function %main").nth(1).unwrap();
        assert!(main.contains("iadd"), "{}", out[0]);
        assert!(!main.contains("call fn0"), "{}", out[0]);
        // A stand-in finding that needs %main to compute the `iadd`, itself or through a call:
        // with the call inlined the callee is unreferenced and goes.
        let reduced = reduce_with(&c, |t| {
            let text = t.to_text();
            let main = text.split("function %main").nth(1).unwrap_or("");
            text.contains("iadd") && (main.contains("iadd") || main.contains("call fn0"))
        });
        assert_eq!(reduced.functions.len(), 1, "{reduced}");
        assert!(reduced.to_text().contains("iadd"), "{reduced}");
    }
}
