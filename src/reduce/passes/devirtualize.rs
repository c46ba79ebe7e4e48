//! Indirect calls through a `func_addr` become direct calls.
//!
//! A function whose address is taken cannot lose parameters or results (every caller would
//! have to change with it), so a bug behind a `call_indirect` keeps its whole signature in the
//! reproducer. Calling the same function directly is the same program; once no `func_addr` of
//! it is left, the signature passes can shrink it.

use super::{Pass, edit};
use crate::case::TestCase;
use crate::facts::func_addr_of;
use cranelift_codegen::ir::{Inst, InstBuilder, InstructionData, Opcode};
use std::ops::Range;

pub struct Devirtualize;

fn atoms(case: &TestCase) -> Vec<(usize, Inst)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for inst in crate::facts::insts(f) {
            if let InstructionData::CallIndirect { .. } = f.dfg.insts[inst]
                && func_addr_of(f, f.dfg.inst_args(inst)[0]).is_some()
            {
                out.push((fi, inst));
            }
        }
    }
    out
}

impl Pass for Devirtualize {
    fn name(&self) -> &'static str {
        "devirtualize"
    }
    fn count(&self, case: &TestCase) -> usize {
        atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let (fi, inst) = *atoms(case).get(range.start)?;
        edit(case, |c| {
            let f = &mut c.functions[fi];
            let opcode = f.dfg.insts[inst].opcode();
            let args = f.dfg.inst_args(inst).to_vec();
            let fr = func_addr_of(f, args[0])?;
            // The direct call is made with the declaration's own signature: only when it is the
            // one the indirect call used does the program stay the same.
            let InstructionData::CallIndirect { sig_ref, .. } = f.dfg.insts[inst] else {
                return None;
            };
            if f.dfg.signatures[sig_ref] != f.dfg.signatures[f.dfg.ext_funcs[fr].signature] {
                return None;
            }
            match opcode {
                Opcode::CallIndirect => {
                    f.replace(inst).call(fr, &args[1..]);
                }
                Opcode::ReturnCallIndirect => {
                    f.replace(inst).return_call(fr, &args[1..]);
                }
                _ => return None,
            }
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn an_indirect_call_through_func_addr_becomes_direct() {
        let c = case(
            "test run
target x86_64

function %a(i64) -> i64 system_v {
block0(v0: i64):
    return v0
}

function %main(i64) -> i64 system_v {
    sig0 = (i64) -> i64 system_v
    fn0 = colocated %a sig0
block0(v0: i64):
    v1 = func_addr.i64 fn0
    v2 = call_indirect sig0, v1(v0)
    return v2
}
; run: %main(3) == 3
",
        );
        let out = candidates(&Devirtualize, &c);
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("v2 = call fn0(v0)"), "{}", out[0]);
        assert!(crate::facts::calls_match(&case(&out[0])));
    }
}
