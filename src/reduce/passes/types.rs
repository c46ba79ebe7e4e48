//! Integer types: narrow a whole *web* of values at once.
//!
//! A value's type cannot change alone: `iadd`'s operands and result share one type, a block
//! parameter has its arguments' type, a call argument has the callee's parameter type, and a
//! run line supplies the entry's parameters. The webs are the classes of values tied that way
//! (the instructions' type constraints say which operands follow the controlling type); each web
//! is narrowed as a unit, signatures and run lines included. Webs that hold addresses, or meet a
//! type derived from another (`uextend`'s wider result, a call to a function outside the case),
//! are left alone.

use super::{Pass, edit};
use crate::case::{Expect, TestCase, testcase_name};
use crate::reduce::ir::{
    address_operand, ext_name, function_index, insts, own_signature, refs_to, substitute,
};
use crate::value::Val;
use cranelift_codegen::ir::immediates::Imm64;
use cranelift_codegen::ir::instructions::ResolvedConstraint;
use cranelift_codegen::ir::{
    ArgumentPurpose, Inst, InstructionData, Opcode, Type, Value, ValueDef, types,
};
use std::collections::HashMap;
use std::ops::Range;

pub struct NarrowTypes;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Node {
    Val(usize, Value),
    Inst(usize, Inst),
    Param(String, usize),
    Ret(String, usize),
}

#[derive(Default)]
struct Webs {
    nodes: Vec<Node>,
    index: HashMap<Node, usize>,
    parent: Vec<usize>,
    pinned: Vec<bool>,
}

impl Webs {
    fn id(&mut self, n: Node) -> usize {
        if let Some(&i) = self.index.get(&n) {
            return i;
        }
        let i = self.nodes.len();
        self.nodes.push(n.clone());
        self.index.insert(n, i);
        self.parent.push(i);
        self.pinned.push(false);
        i
    }
    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }
    fn union(&mut self, a: Node, b: Node) {
        let (a, b) = (self.id(a), self.id(b));
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi] = lo;
            self.pinned[lo] |= self.pinned[hi];
        }
    }
    fn pin(&mut self, n: Node) {
        let i = self.id(n);
        let r = self.root(i);
        self.pinned[r] = true;
    }
}

fn is_int(t: Type) -> bool {
    matches!(
        t,
        types::I8 | types::I16 | types::I32 | types::I64 | types::I128
    )
}

/// Opcodes whose result is an address.
fn makes_address(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::StackAddr
            | Opcode::DynamicStackAddr
            | Opcode::FuncAddr
            | Opcode::SymbolValue
            | Opcode::TlsValue
            | Opcode::GetFramePointer
            | Opcode::GetStackPointer
            | Opcode::GetReturnAddress
            | Opcode::GetPinnedReg
    )
}

fn build(case: &TestCase) -> Webs {
    let mut w = Webs::default();
    for (fi, f) in case.functions.iter().enumerate() {
        let name = testcase_name(f);
        let entry = f.layout.entry_block();
        for block in f.layout.blocks() {
            for (i, &p) in f.dfg.block_params(block).iter().enumerate() {
                w.id(Node::Val(fi, p));
                if Some(block) == entry {
                    w.union(Node::Val(fi, p), Node::Param(name.clone(), i));
                    if f.signature.params.get(i).map(|a| a.purpose) != Some(ArgumentPurpose::Normal)
                    {
                        w.pin(Node::Val(fi, p));
                    }
                }
            }
        }
        for inst in insts(f) {
            let data = &f.dfg.insts[inst];
            let op = data.opcode();
            for &r in f.dfg.inst_results(inst) {
                w.id(Node::Val(fi, r));
                if makes_address(op) {
                    w.pin(Node::Val(fi, r));
                }
            }
            if let Some(a) = address_operand(f, inst) {
                w.pin(Node::Val(fi, a));
            }
            // Branch arguments have their block parameters' types.
            for bc in data.branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables) {
                let target = bc.block(&f.dfg.value_lists);
                let params = f.dfg.block_params(target);
                for (k, a) in bc.args(&f.dfg.value_lists).enumerate() {
                    match (a.as_value(), params.get(k)) {
                        (Some(v), Some(&p)) => w.union(Node::Val(fi, v), Node::Val(fi, p)),
                        (_, Some(&p)) => w.pin(Node::Val(fi, p)),
                        _ => {}
                    }
                }
            }
            match op {
                Opcode::Return => {
                    for (j, &v) in f.dfg.inst_args(inst).iter().enumerate() {
                        w.union(Node::Val(fi, v), Node::Ret(name.clone(), j));
                    }
                    continue;
                }
                Opcode::Call => {
                    let InstructionData::Call { func_ref, .. } = data else {
                        continue;
                    };
                    let callee = ext_name(f, *func_ref).filter(|n| case.function(n).is_some());
                    let args = f.dfg.inst_args(inst);
                    let results = f.dfg.inst_results(inst);
                    match callee {
                        Some(n) => {
                            for (i, &v) in args.iter().enumerate() {
                                w.union(Node::Val(fi, v), Node::Param(n.clone(), i));
                            }
                            for (j, &v) in results.iter().enumerate() {
                                w.union(Node::Val(fi, v), Node::Ret(n.clone(), j));
                            }
                        }
                        None => {
                            for &v in args.iter().chain(results) {
                                w.pin(Node::Val(fi, v));
                            }
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let cons = op.constraints();
            if !cons.is_polymorphic() {
                // Fixed types: calls through pointers, tail calls and the like pin their values.
                if op.is_call() {
                    for &v in f.dfg.inst_args(inst).iter().chain(f.dfg.inst_results(inst)) {
                        w.pin(Node::Val(fi, v));
                    }
                }
                continue;
            }
            let ctrl = f.dfg.ctrl_typevar(inst);
            let me = Node::Inst(fi, inst);
            w.id(me.clone());
            if !is_int(ctrl) {
                w.pin(me);
                continue;
            }
            let alt = if ctrl == types::I8 {
                types::I16
            } else {
                types::I8
            };
            let results = f.dfg.inst_results(inst);
            // Cranelift's constraint tables assert on what they cannot type (`isplit` of an
            // `i8` has no half): such an instruction keeps its types.
            let typed = |k: usize, t: Type| crate::panics::catch(|| cons.result_type(k, t)).ok();
            let args_typed = crate::panics::catch(|| {
                (0..cons.num_fixed_value_arguments())
                    .map(|n| {
                        (
                            cons.value_argument_constraint(n, ctrl),
                            cons.value_argument_constraint(n, alt),
                        )
                    })
                    .collect::<Vec<_>>()
            });
            if results.len() > cons.num_fixed_results()
                || (0..results.len()).any(|k| typed(k, ctrl).is_none() || typed(k, alt).is_none())
                || args_typed.is_err()
            {
                w.pin(me);
                continue;
            }
            for (k, &r) in results.iter().enumerate() {
                let (t, u) = (cons.result_type(k, ctrl), cons.result_type(k, alt));
                if t == ctrl && u == alt {
                    w.union(Node::Val(fi, r), me.clone());
                } else if t != u {
                    w.pin(me.clone());
                }
            }
            let fixed = cons.num_fixed_value_arguments();
            for (n, &a) in f.dfg.inst_args(inst).iter().enumerate().take(fixed) {
                let bound = |t| match cons.value_argument_constraint(n, t) {
                    ResolvedConstraint::Bound(b) => Some(b),
                    ResolvedConstraint::Free(_) => None,
                };
                match (bound(ctrl), bound(alt)) {
                    (Some(t), Some(u)) if t == ctrl && u == alt => {
                        w.union(Node::Val(fi, a), me.clone())
                    }
                    (t, u) if t != u => w.pin(me.clone()),
                    _ => {}
                }
            }
        }
    }
    w
}

/// (web nodes, narrower type) for every narrowing worth a try, smallest type first.
fn atoms(case: &TestCase) -> Vec<(Vec<Node>, Type)> {
    let mut w = build(case);
    let mut webs: Vec<(usize, Vec<Node>)> = Vec::new();
    let mut slot: HashMap<usize, usize> = HashMap::new();
    for i in 0..w.nodes.len() {
        let r = w.root(i);
        let k = *slot.entry(r).or_insert_with(|| {
            webs.push((r, Vec::new()));
            webs.len() - 1
        });
        webs[k].1.push(w.nodes[i].clone());
    }
    let mut out = Vec::new();
    for (root, nodes) in webs {
        if w.pinned[root] {
            continue;
        }
        let tys: Vec<Type> = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Val(fi, v) => Some(case.functions[*fi].dfg.value_type(*v)),
                _ => None,
            })
            .collect();
        let Some(&ty) = tys.first() else { continue };
        if !is_int(ty) || tys.iter().any(|&t| t != ty) {
            continue;
        }
        for narrow in [types::I8, types::I16, types::I32, types::I64] {
            if narrow.bits() < ty.bits() {
                out.push((nodes.clone(), narrow));
            }
        }
    }
    out
}

fn narrow_val(v: &Val, ty: Type) -> Val {
    let x = match *v {
        Val::I8(x) => x as i128,
        Val::I16(x) => x as i128,
        Val::I32(x) => x as i128,
        Val::I64(x) => x as i128,
        Val::I128(x) => x,
        other => return other,
    };
    match ty {
        types::I8 => Val::I8(x as i8),
        types::I16 => Val::I16(x as i16),
        types::I32 => Val::I32(x as i32),
        _ => Val::I64(x as i64),
    }
}

impl Pass for NarrowTypes {
    fn name(&self) -> &'static str {
        "narrow-types"
    }
    fn count(&self, case: &TestCase) -> usize {
        atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let (nodes, ty) = atoms(case).into_iter().nth(range.start)?;
        edit(case, |c| {
            let mut maps: Vec<HashMap<Value, Value>> = vec![HashMap::new(); c.functions.len()];
            for n in &nodes {
                match n {
                    Node::Val(fi, v) => {
                        let dfg = &mut c.functions[*fi].dfg;
                        let new = match dfg.value_def(*v) {
                            ValueDef::Result(..) => dfg.replace_result(*v, ty),
                            ValueDef::Param(..) => dfg.replace_block_param(*v, ty),
                            ValueDef::Union(..) => return None,
                        };
                        maps[*fi].insert(*v, new);
                    }
                    Node::Inst(fi, inst) => {
                        if let InstructionData::UnaryImm { imm, .. } =
                            &mut c.functions[*fi].dfg.insts[*inst]
                        {
                            let mask = if ty.bits() >= 64 {
                                -1i64
                            } else {
                                (1i64 << ty.bits()) - 1
                            };
                            *imm = Imm64::new(imm.bits() & mask);
                        }
                    }
                    Node::Param(name, i) => {
                        set_sig_type(
                            c,
                            name,
                            |s| s.params.get_mut(*i).map(|p| &mut p.value_type),
                            ty,
                        )?;
                        for r in c.runs.iter_mut().filter(|r| &r.func == name) {
                            let a = r.args.get_mut(*i)?;
                            *a = narrow_val(a, ty);
                        }
                    }
                    Node::Ret(name, j) => {
                        set_sig_type(
                            c,
                            name,
                            |s| s.returns.get_mut(*j).map(|p| &mut p.value_type),
                            ty,
                        )?;
                        for r in c.runs.iter_mut().filter(|r| &r.func == name) {
                            if let Expect::Eq(v) | Expect::Ne(v) = &mut r.expect {
                                let x = v.get_mut(*j)?;
                                *x = narrow_val(x, ty);
                            }
                        }
                    }
                }
            }
            for (f, map) in c.functions.iter_mut().zip(&maps) {
                substitute(f, map);
            }
            Some(())
        })
    }
}

/// Sets one slot of `name`'s signature, there and at every reference to it.
fn set_sig_type(
    c: &mut TestCase,
    name: &str,
    slot: impl Fn(&mut cranelift_codegen::ir::Signature) -> Option<&mut Type>,
    ty: Type,
) -> Option<()> {
    let fi = function_index(c, name)?;
    *slot(&mut c.functions[fi].signature)? = ty;
    for g in &mut c.functions {
        for fr in refs_to(g, name) {
            let sig = own_signature(g, fr);
            *slot(&mut g.dfg.signatures[sig])? = ty;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::facts::calls_match;

    #[test]
    fn a_web_narrows_across_calls_and_run_lines() {
        let c = case(
            "test run
target x86_64

function %g(i64) -> i64 system_v {
block0(v0: i64):
    v1 = iadd v0, v0
    return v1
}

function %main(i64) -> i64 system_v {
    ss0 = explicit_slot 8
    fn0 = colocated %g(i64) -> i64 system_v
block0(v0: i64):
    v1 = call fn0(v0)
    v2 = stack_addr.i64 ss0
    store v1, v2
    v3 = load.i64 v2
    return v3
}
; print: %main(300)
",
        );
        let cands = candidates(&NarrowTypes, &c);
        // One web (the call chain, up to the store) × {i8, i16, i32}; the address web is pinned
        // and the load/return web is a second one.
        assert_eq!(cands.len(), 6, "{cands:#?}");
        let first = case(&cands[0]);
        let text = first.to_text();
        assert!(text.contains("function %g(i8) -> i8"), "{text}");
        assert!(text.contains("sig0 = (i8) -> i8 system_v"), "{text}");
        assert!(text.contains("function %main(i8) -> i64"), "{text}");
        assert!(text.contains("%main(44)"), "300 truncates to 44: {text}");
        assert!(text.contains("stack_addr.i64"), "{text}");
        assert!(calls_match(&first));
        let flags = cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder());
        for f in &first.functions {
            cranelift_codegen::verify_function(f, &flags).unwrap();
        }
    }
}
