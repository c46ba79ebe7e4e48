//! Tail calls: `return_call f(args)` becomes `v.. = call f(args)` + `return v..`.
//!
//! A `return_call` is a terminator, so no instruction pass can remove it and a function reached
//! only through tail calls can never be dropped. As a plain call followed by a return it becomes
//! an ordinary instruction the other passes can delete.

use super::{Pass, edit};
use crate::case::TestCase;
use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::ir::{Inst, InstBuilder, InstructionData, Opcode, types};
use std::ops::Range;

pub struct UntailCalls;

fn atoms(case: &TestCase) -> Vec<(usize, Inst)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for block in f.layout.blocks() {
            for inst in f.layout.block_insts(block) {
                if matches!(
                    f.dfg.insts[inst].opcode(),
                    Opcode::ReturnCall | Opcode::ReturnCallIndirect
                ) {
                    out.push((fi, inst));
                }
            }
        }
    }
    out
}

impl Pass for UntailCalls {
    fn name(&self) -> &'static str {
        "untail-calls"
    }
    fn count(&self, case: &TestCase) -> usize {
        atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let (fi, inst) = *atoms(case).get(range.start)?;
        edit(case, |c| {
            let f = &mut c.functions[fi];
            match &mut f.dfg.insts[inst] {
                InstructionData::Call { opcode, .. } => *opcode = Opcode::Call,
                InstructionData::CallIndirect { opcode, .. } => *opcode = Opcode::CallIndirect,
                _ => return None,
            }
            // The results come from the callee's signature, which a tail call shares with the
            // caller's returns.
            f.dfg.make_inst_results(inst, types::INVALID);
            let results = f.dfg.inst_results(inst).to_vec();
            let mut pos = FuncCursor::new(f).after_inst(inst);
            pos.ins().return_(&results);
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn tail_calls_become_call_and_return() {
        let c = case(
            "test run
target x86_64

function %g(i64) -> i64 tail {
block0(v0: i64):
    return v0
}

function %main(i64) -> i64 tail {
    fn0 = colocated %g(i64) -> i64 tail
block0(v0: i64):
    return_call fn0(v0)
}
; print: %main(1)
",
        );
        let out = run_pass(&UntailCalls, &c, |_| true);
        let text = out.to_text();
        assert!(!text.contains("return_call"), "{text}");
        assert!(text.contains("= call fn0(v0)"), "{text}");
        let isa = crate::target::build_isa(&out, &[]).unwrap();
        for f in &out.functions {
            cranelift_codegen::verify_function(f, &*isa).unwrap();
        }
    }
}
