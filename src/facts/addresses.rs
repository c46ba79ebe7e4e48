//! Addresses stay addresses: no value computed from a stack slot's, function's or symbol's
//! address is observed.
//!
//! Addresses differ between engines (the interpreter's stack slots start at 0, native ones are
//! wherever the stack is), so a case that returns an address, stores one as data or passes one
//! on to be returned has a "mismatch" that says nothing about Cranelift. Generated cases only
//! use addresses to access memory; a reduction must not drift into observing one.

use super::insts;
use crate::case::TestCase;
use cranelift_codegen::ir::{Function, Opcode, Value};
use std::collections::BTreeSet;

/// True when no address-derived value is returned, stored as data, used as an atomic's operand,
/// or passed to a case function that does one of those with it.
pub fn addresses_unobserved(case: &TestCase) -> bool {
    // Parameters (by function and position) that receive an address from some call.
    let mut tainted_params: BTreeSet<(usize, usize)> = BTreeSet::new();
    loop {
        let mut grew = false;
        for (fi, f) in case.functions.iter().enumerate() {
            let taint = taint(case, f, fi, &tainted_params);
            if observes(f, &taint) {
                return false;
            }
            // Every call whose callee is known: direct, tail, and indirect ones through a
            // `func_addr` or a pointer loaded from data (their first operand is the pointer).
            for site in super::call_sites(case, fi) {
                let Some(callee) = site.callee else { continue };
                let args = f.dfg.inst_args(site.inst);
                let args = match site.kind {
                    super::CallKind::Indirect | super::CallKind::TailIndirect => &args[1..],
                    _ => args,
                };
                for (k, a) in args.iter().enumerate() {
                    if taint.contains(a) && tainted_params.insert((callee, k)) {
                        grew = true;
                    }
                }
            }
        }
        if !grew {
            return true;
        }
    }
}

/// The values of `f` computed from an address (to a fixpoint over block parameters).
fn taint(
    case: &TestCase,
    f: &Function,
    fi: usize,
    params: &BTreeSet<(usize, usize)>,
) -> BTreeSet<Value> {
    let mut t: BTreeSet<Value> = BTreeSet::new();
    if let Some(entry) = f.layout.entry_block() {
        for (k, &v) in f.dfg.block_params(entry).iter().enumerate() {
            if params.contains(&(fi, k)) {
                t.insert(v);
            }
        }
    }
    loop {
        let before = t.len();
        for inst in insts(f) {
            let data = &f.dfg.insts[inst];
            let op = data.opcode();
            // A relocated pointer loaded from data is an address too.
            // `memcpy`, `memmove` and `memset` return their destination pointer.
            let source = matches!(
                op,
                Opcode::StackAddr | Opcode::FuncAddr | Opcode::SymbolValue | Opcode::TlsValue
            ) || super::memory::loaded_pointer(case, f, inst).is_some()
                || super::memory_libcall(f, inst)
                    .is_some_and(|l| l != cranelift_codegen::ir::LibCall::Memcmp);
            // What memory holds is data, whatever address it was read through.
            let reads = op.can_load();
            let from_address = f.dfg.inst_args(inst).iter().any(|a| t.contains(a));
            if source || (from_address && !reads && !op.is_call()) {
                t.extend(f.dfg.inst_results(inst).iter().copied());
            }
            // Branch arguments carry taint into block parameters.
            for dest in data.branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables) {
                let block = dest.block(&f.dfg.value_lists);
                for (arg, &param) in dest.args(&f.dfg.value_lists).zip(f.dfg.block_params(block)) {
                    if arg.as_value().is_some_and(|a| t.contains(&a)) {
                        t.insert(param);
                    }
                }
            }
        }
        if t.len() == before {
            return t;
        }
    }
}

/// Does `f` return, store as data or hand to an atomic a tainted value?
fn observes(f: &Function, t: &BTreeSet<Value>) -> bool {
    insts(f).any(|inst| {
        let data = &f.dfg.insts[inst];
        let args = f.dfg.inst_args(inst);
        match data.opcode() {
            Opcode::Return => args.iter().any(|a| t.contains(a)),
            // The stored value (first operand), not the address.
            Opcode::Store | Opcode::Istore8 | Opcode::Istore16 | Opcode::Istore32 => {
                t.contains(&args[0])
            }
            Opcode::AtomicStore => t.contains(&args[0]),
            Opcode::AtomicRmw => t.contains(&args[1]),
            Opcode::AtomicCas => args[1..].iter().any(|a| t.contains(a)),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(body: &str) -> TestCase {
        TestCase::parse(&format!("test run\ntarget x86_64\n\n{body}")).unwrap()
    }

    #[test]
    fn addresses_used_as_addresses_are_fine() {
        let c = case(
            "function %f(i64) -> i64 {\n    ss0 = explicit_slot 8\nblock0(v0: i64):\n    v1 = stack_addr.i64 ss0\n    store v0, v1\n    v2 = load.i64 v1\n    return v2\n}\n",
        );
        assert!(addresses_unobserved(&c));
    }

    #[test]
    fn a_returned_stored_or_forwarded_address_is_observed() {
        let returned = case(
            "function %f() -> i64 {\n    ss0 = explicit_slot 8\nblock0:\n    v1 = stack_addr.i64 ss0\n    v2 = iconst.i64 8\n    v3 = iadd v1, v2\n    return v3\n}\n",
        );
        assert!(!addresses_unobserved(&returned));
        let stored = case(
            "function %f() -> i64 {\n    ss0 = explicit_slot 8\nblock0:\n    v1 = stack_addr.i64 ss0\n    store v1, v1\n    v2 = load.i64 v1\n    return v2\n}\n",
        );
        assert!(!addresses_unobserved(&stored));
        // Through a call: the callee returns the pointer it was given.
        let forwarded = case(
            "function %id(i64) -> i64 {\nblock0(v0: i64):\n    return v0\n}\n\nfunction %f() -> i64 {\n    ss0 = explicit_slot 8\n    fn0 = %id(i64) -> i64\nblock0:\n    v1 = stack_addr.i64 ss0\n    v2 = call fn0(v1)\n    return v2\n}\n",
        );
        assert!(!addresses_unobserved(&forwarded));
        // The same through `call_indirect` (a reduction of an s390x case drifted into this).
        let indirect = case(
            "function %id(i64) -> i64 {\nblock0(v0: i64):\n    return v0\n}\n\nfunction %f() -> i64 {\n    ss0 = explicit_slot 8\n    sig0 = (i64) -> i64\n    fn0 = %id(i64) -> i64\nblock0:\n    v1 = stack_addr.i64 ss0\n    v3 = func_addr.i64 fn0\n    v2 = call_indirect sig0, v3(v1)\n    return v2\n}\n",
        );
        assert!(!addresses_unobserved(&indirect));
    }
}
