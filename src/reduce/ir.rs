//! Small IR surgery shared by the passes.

use crate::case::{TestCase, testcase_name};
use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::ir::{
    Block, ConstantData, FuncRef, Function, Inst, InstBuilder, InstructionData, Opcode, SigRef,
    Type, Value, ValueDef, types,
};
use std::collections::{HashMap, HashSet};

/// Instructions in the layout of `f`.
pub fn count_insts_fn(f: &Function) -> usize {
    f.layout
        .blocks()
        .map(|b| f.layout.block_insts(b).count())
        .sum()
}

/// Instructions in the layout of every function of `case` (the reducer's size measure).
pub fn count_insts(case: &TestCase) -> usize {
    case.functions.iter().map(count_insts_fn).sum()
}

/// All instructions of `f` in layout order.
pub fn insts(f: &Function) -> Vec<Inst> {
    f.layout
        .blocks()
        .flat_map(|b| f.layout.block_insts(b))
        .collect()
}

/// Values read by some instruction in the layout.
pub fn used_values(f: &Function) -> HashSet<Value> {
    let mut used = HashSet::new();
    for inst in insts(f) {
        used.extend(f.dfg.inst_values(inst).map(|v| f.dfg.resolve_aliases(v)));
    }
    used
}

pub fn is_terminator(f: &Function, inst: Inst) -> bool {
    f.dfg.insts[inst].opcode().is_terminator()
}

/// The type of the zero `inst` defines, if it is a constant zero.
pub fn zero_const_type(f: &Function, inst: Inst) -> Option<Type> {
    let ty = f
        .dfg
        .inst_results(inst)
        .first()
        .map(|&v| f.dfg.value_type(v))?;
    let zero = match &f.dfg.insts[inst] {
        InstructionData::UnaryImm {
            opcode: Opcode::Iconst,
            imm,
        } => imm.bits() == 0,
        InstructionData::UnaryIeee32 {
            opcode: Opcode::F32const,
            imm,
        } => imm.bits() == 0,
        InstructionData::UnaryIeee64 {
            opcode: Opcode::F64const,
            imm,
        } => imm.bits() == 0,
        InstructionData::UnaryConst {
            opcode: Opcode::Vconst,
            constant_handle,
        } => f
            .dfg
            .constants
            .get(*constant_handle)
            .iter()
            .all(|&b| b == 0),
        // `iconst.i128` is not valid CLIF (the verifier cannot even check it): an i128 zero is a
        // zero-extended i64 zero.
        InstructionData::Unary {
            opcode: Opcode::Uextend,
            arg,
        } if ty == types::I128 => match f.dfg.value_def(*arg) {
            ValueDef::Result(def, _) => zero_const_type(f, def) == Some(types::I64),
            _ => false,
        },
        _ => false,
    };
    zero.then_some(ty)
}

/// The zero constant of type `ty` that replacements use: the first one in the entry block that
/// is not in `avoid`.
pub fn canonical_zero(f: &Function, ty: Type, avoid: &HashSet<Inst>) -> Option<Inst> {
    let entry = f.layout.entry_block()?;
    f.layout
        .block_insts(entry)
        .find(|&i| !avoid.contains(&i) && zero_const_type(f, i) == Some(ty))
}

/// A zero of type `ty` that dominates the whole function: the canonical zero constant, moved to
/// the top of the entry block, or a new one there. `None` for types without a simple constant.
pub fn zero(f: &mut Function, ty: Type, avoid: &HashSet<Inst>) -> Option<Value> {
    let entry = f.layout.entry_block()?;
    if ty == types::I128 {
        let z64 = zero(f, types::I64, avoid)?;
        let after = f.layout.next_inst(f.dfg.value_def(z64).inst()?)?;
        if let Some(inst) = canonical_zero(f, ty, avoid) {
            // Right after the i64 zero it extends: at the top, but not above its operand.
            if inst != after {
                f.layout.remove_inst(inst);
                f.layout.insert_inst(inst, after);
            }
            // Its operand may be a zero that is about to go.
            f.dfg.inst_args_mut(inst)[0] = z64;
            return Some(f.dfg.first_result(inst));
        }
        let mut pos = FuncCursor::new(f).at_inst(after);
        return Some(pos.ins().uextend(ty, z64));
    }
    if let Some(inst) = canonical_zero(f, ty, avoid) {
        let first = f.layout.first_inst(entry)?;
        if first != inst {
            f.layout.remove_inst(inst);
            f.layout.insert_inst(inst, first);
        }
        return Some(f.dfg.first_result(inst));
    }
    let handle = if ty.is_vector() {
        Some(
            f.dfg
                .constants
                .insert(ConstantData::from(vec![0u8; ty.bytes() as usize])),
        )
    } else {
        None
    };
    let mut pos = FuncCursor::new(f);
    pos.goto_first_insertion_point(entry);
    Some(match ty {
        types::I8 | types::I16 | types::I32 | types::I64 => pos.ins().iconst(ty, 0),
        types::F32 => pos.ins().f32const(0.0),
        types::F64 => pos.ins().f64const(0.0),
        t if t.is_vector() => pos.ins().vconst(t, handle?),
        _ => return None,
    })
}

/// Rewrites every use of a key of `map` into its value (following chains).
pub fn substitute(f: &mut Function, map: &HashMap<Value, Value>) {
    if map.is_empty() {
        return;
    }
    let resolve = |mut v: Value| {
        let mut hops = 0;
        while let Some(&n) = map.get(&v) {
            v = n;
            hops += 1;
            if hops > map.len() {
                break;
            }
        }
        v
    };
    // Aliases (`v5 -> v4`) are looked through first: a mapped value reached through one must
    // be mapped too.
    let aliases: HashMap<Value, Value> = insts(f)
        .into_iter()
        .flat_map(|i| f.dfg.inst_values(i).collect::<Vec<_>>())
        .map(|v| (v, f.dfg.resolve_aliases(v)))
        .filter(|(v, r)| v != r)
        .collect();
    for inst in insts(f) {
        f.dfg
            .map_inst_values(inst, |v| resolve(aliases.get(&v).copied().unwrap_or(v)));
    }
}

/// The operand of `inst` used as an address, if any.
pub fn address_operand(f: &Function, inst: Inst) -> Option<Value> {
    let args = f.dfg.inst_args(inst);
    match &f.dfg.insts[inst] {
        InstructionData::Load { arg, .. } | InstructionData::LoadNoOffset { arg, .. } => Some(*arg),
        InstructionData::Store { args, .. } | InstructionData::StoreNoOffset { args, .. } => {
            Some(args[1])
        }
        InstructionData::AtomicRmw { .. } | InstructionData::AtomicCas { .. } => {
            args.first().copied()
        }
        InstructionData::CallIndirect { .. } | InstructionData::TryCallIndirect { .. } => {
            args.first().copied()
        }
        _ => None,
    }
}

/// Successor blocks of `block` (through its terminator).
pub fn successors(f: &Function, block: Block) -> Vec<Block> {
    let Some(term) = f.layout.last_inst(block) else {
        return Vec::new();
    };
    f.dfg.insts[term]
        .branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables)
        .iter()
        .map(|bc| bc.block(&f.dfg.value_lists))
        .collect()
}

/// Removes blocks that the entry block can no longer reach.
pub fn remove_unreachable_blocks(f: &mut Function) {
    let Some(entry) = f.layout.entry_block() else {
        return;
    };
    let mut seen = HashSet::from([entry]);
    let mut stack = vec![entry];
    while let Some(b) = stack.pop() {
        for s in successors(f, b) {
            if seen.insert(s) {
                stack.push(s);
            }
        }
    }
    let dead: Vec<Block> = f.layout.blocks().filter(|b| !seen.contains(b)).collect();
    for b in dead {
        f.layout.remove_block_and_insts(b);
    }
}

pub use crate::facts::ext_name;

/// The function references in `f` that name the case function `name`.
pub fn refs_to(f: &Function, name: &str) -> Vec<FuncRef> {
    f.dfg
        .ext_funcs
        .keys()
        .filter(|&fr| ext_name(f, fr).as_deref() == Some(name))
        .collect()
}

/// The function reference an instruction calls directly or takes the address of.
pub fn inst_func_ref(f: &Function, inst: Inst) -> Option<FuncRef> {
    match &f.dfg.insts[inst] {
        InstructionData::Call { func_ref, .. }
        | InstructionData::TryCall { func_ref, .. }
        | InstructionData::FuncAddr { func_ref, .. } => Some(*func_ref),
        _ => None,
    }
}

/// Is `name` referenced other than by plain `call`s (its address taken, tail- or try-called)?
/// Changing such a function's signature would need more than rewriting call sites.
pub fn escapes(case: &TestCase, name: &str) -> bool {
    case.functions.iter().any(|g| {
        let refs = refs_to(g, name);
        insts(g).into_iter().any(|i| {
            inst_func_ref(g, i).is_some_and(|fr| refs.contains(&fr))
                && g.dfg.insts[i].opcode() != Opcode::Call
        })
    })
}

/// Is `name` referenced by any other function of the case?
pub fn is_referenced(case: &TestCase, name: &str) -> bool {
    // A declaration nothing calls (left behind by inlining) does not count.
    case.functions
        .iter()
        .filter(|g| testcase_name(g) != name)
        .any(|g| {
            let refs = refs_to(g, name);
            insts(g)
                .into_iter()
                .any(|i| inst_func_ref(g, i).is_some_and(|fr| refs.contains(&fr)))
        })
}

/// Gives `fr` a signature of its own, so that editing it affects no other reference.
pub fn own_signature(f: &mut Function, fr: FuncRef) -> SigRef {
    let sig = f.dfg.ext_funcs[fr].signature;
    let shared_by_ref = f
        .dfg
        .ext_funcs
        .iter()
        .any(|(r, e)| r != fr && e.signature == sig);
    let shared_by_inst = insts(f).into_iter().any(|i| match &f.dfg.insts[i] {
        InstructionData::CallIndirect { sig_ref, .. } => *sig_ref == sig,
        InstructionData::TryCallIndirect { exception, .. } => {
            f.dfg.exception_tables[*exception].signature() == sig
        }
        _ => false,
    });
    if shared_by_ref || shared_by_inst {
        let copy = f.dfg.signatures[sig].clone();
        let new = f.import_signature(copy);
        f.dfg.ext_funcs[fr].signature = new;
        new
    } else {
        sig
    }
}

/// The direct calls in `f` through `fr`.
pub fn calls_through(f: &Function, fr: FuncRef) -> Vec<Inst> {
    insts(f)
        .into_iter()
        .filter(|&i| f.dfg.insts[i].opcode() == Opcode::Call && inst_func_ref(f, i) == Some(fr))
        .collect()
}

/// Index of the case function named `name`.
pub fn function_index(case: &TestCase, name: &str) -> Option<usize> {
    case.functions.iter().position(|f| testcase_name(f) == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_reader::parse_functions;

    fn verify(f: &Function) {
        let flags = cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder());
        cranelift_codegen::verify_function(f, &flags)
            .unwrap_or_else(|e| panic!("{e}\n{}", f.display()));
    }

    #[test]
    fn zeros_of_every_simple_type_verify() {
        let mut f = parse_functions(
            "function %f() -> i32 {
             block0:
                 v0 = iconst.i32 3
                 return v0
             }",
        )
        .unwrap()
        .remove(0);
        for ty in [
            types::I8,
            types::I16,
            types::I32,
            types::I64,
            types::I128,
            types::F32,
            types::F64,
            types::I32X4,
            types::F64X2,
        ] {
            let v = zero(&mut f, ty, &HashSet::new()).unwrap();
            assert_eq!(f.dfg.value_type(v), ty);
            // The same zero is found again rather than created twice.
            assert_eq!(zero(&mut f, ty, &HashSet::new()), Some(v));
        }
        verify(&f);
        // Nine types; the i128 zero extends the i64 one.
        assert_eq!(count_insts_fn(&f), 2 + 9);
    }
}
