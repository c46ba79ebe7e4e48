//! Static facts about a case's module: who calls whom and how, where memory accesses point,
//! whether divisions can trap.
//!
//! Three consumers ask these questions, and must get the same answers:
//!
//! * input validation ([`crate::validate`]): a call declared with another signature than its
//!   callee's is undefined behaviour, not a finding;
//! * the reducer: a candidate must keep every safety property the original had (indirect calls
//!   match their callee, memory accesses stay in bounds and initialised, divisions stay guarded),
//!   or it could drift from a Cranelift bug into undefined behaviour;
//! * known-bug predicates ([`crate::known`]) and bug identity ([`crate::identity`]): "a call
//!   reachable from the failing run line passes a `sarg` to a `preserve_all` callee".
//!
//! Everything here reads IR; nothing builds or compiles it.

pub mod addresses;
pub mod data;
pub mod guards;
pub mod memory;

use crate::case::{TestCase, testcase_name};
use cranelift_codegen::ir::{
    ExternalName, FuncRef, Function, Inst, InstructionData, LibCall, Opcode, Signature, Value,
    ValueDef,
};
use cranelift_codegen::isa::CallConv;
use std::collections::BTreeSet;

/// The name an external function refers to, in the form [`testcase_name`] gives functions
/// (`foo` for `%foo`, `u0:1` for `u0:1`); `None` for libcalls and known symbols.
pub fn ext_name(f: &Function, fr: FuncRef) -> Option<String> {
    name_of(f, &f.dfg.ext_funcs[fr].name)
}

/// An external name (of a function or a symbol) in the form [`testcase_name`] gives functions:
/// `d0` for `%d0`, `u0:1` for a user name; `None` for libcalls and known symbols.
pub fn name_of(f: &Function, name: &ExternalName) -> Option<String> {
    match name {
        ExternalName::TestCase(n) => Some(String::from_utf8_lossy(n.raw()).into_owned()),
        ExternalName::User(r) => f.params.user_named_funcs().get(*r).map(|u| u.to_string()),
        _ => None,
    }
}

/// Index of the case function called `name`.
pub fn function_index(case: &TestCase, name: &str) -> Option<usize> {
    case.functions.iter().position(|f| testcase_name(f) == name)
}

/// The libcall a direct call (`call` or `return_call`) names, if it calls one (a call between
/// case functions is not).
pub fn libcall(f: &Function, inst: &InstructionData) -> Option<LibCall> {
    match *inst {
        InstructionData::Call { func_ref, .. } => match f.dfg.ext_funcs[func_ref].name {
            ExternalName::LibCall(lc) => Some(lc),
            _ => None,
        },
        _ => None,
    }
}

/// The memory libcall (`Memcpy`, `Memmove`, `Memset`, `Memcmp`) `inst` calls with a plain
/// `call`, if any.
pub fn memory_libcall(f: &Function, inst: Inst) -> Option<LibCall> {
    let data = &f.dfg.insts[inst];
    (data.opcode() == Opcode::Call)
        .then(|| libcall(f, data))
        .flatten()
        .filter(|lc| {
            matches!(
                lc,
                LibCall::Memcpy | LibCall::Memmove | LibCall::Memset | LibCall::Memcmp
            )
        })
}

/// All instructions of `f` in layout order.
pub fn insts(f: &Function) -> impl Iterator<Item = Inst> + '_ {
    f.layout.blocks().flat_map(move |b| f.layout.block_insts(b))
}

/// How a call site transfers control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Direct,
    Indirect,
    Tail,
    TailIndirect,
}

/// One call instruction of a case function.
#[derive(Clone, Debug)]
pub struct CallSite {
    /// Index of the calling function in the case.
    pub caller: usize,
    pub inst: Inst,
    pub kind: CallKind,
    /// The signature the call is made with.
    pub sig: Signature,
    /// The case function called: the direct callee, or the `func_addr` an indirect call's
    /// pointer comes from. `None` for libcalls and untraceable pointers.
    pub callee: Option<usize>,
    /// The callee's reference is `colocated` (a near, PC-relative call).
    pub colocated: bool,
}

impl CallSite {
    pub fn has_sarg(&self) -> bool {
        self.sig.params.iter().any(|p| {
            matches!(
                p.purpose,
                cranelift_codegen::ir::ArgumentPurpose::StructArgument(_)
            )
        })
    }

    pub fn conv(&self) -> CallConv {
        self.sig.call_conv
    }
}

/// The `func_addr` a pointer value comes from, looking through nothing else.
pub fn func_addr_of(f: &Function, v: Value) -> Option<FuncRef> {
    let v = f.dfg.resolve_aliases(v);
    match f.dfg.value_def(v) {
        ValueDef::Result(inst, _) => match f.dfg.insts[inst] {
            InstructionData::FuncAddr {
                opcode: Opcode::FuncAddr,
                func_ref,
            } => Some(func_ref),
            _ => None,
        },
        _ => None,
    }
}

/// Is `v` an address: a stack slot's, a function's or a symbol's, or one plus an offset?
/// (Parameters may be pointers too; the generator only ever uses them as such, but nothing in
/// the IR says so.)
pub fn is_address(f: &Function, v: Value) -> bool {
    match f.dfg.value_def(f.dfg.resolve_aliases(v)) {
        ValueDef::Result(i, _) => {
            let op = f.dfg.insts[i].opcode();
            matches!(
                op,
                Opcode::StackAddr | Opcode::FuncAddr | Opcode::SymbolValue | Opcode::TlsValue
            ) || (op == Opcode::Iadd && f.dfg.inst_args(i).iter().any(|&a| is_address(f, a)))
        }
        _ => false,
    }
}

/// Every call instruction of function `caller` of `case`.
pub fn call_sites(case: &TestCase, caller: usize) -> Vec<CallSite> {
    let f = &case.functions[caller];
    let resolve = |fr: FuncRef| ext_name(f, fr).and_then(|n| function_index(case, &n));
    let mut out = Vec::new();
    for inst in insts(f) {
        let (kind, fr, sig_ref) = match &f.dfg.insts[inst] {
            InstructionData::Call {
                opcode, func_ref, ..
            } => {
                let kind = if *opcode == Opcode::ReturnCall {
                    CallKind::Tail
                } else {
                    CallKind::Direct
                };
                (kind, Some(*func_ref), f.dfg.ext_funcs[*func_ref].signature)
            }
            InstructionData::TryCall { func_ref, .. } => (
                CallKind::Direct,
                Some(*func_ref),
                f.dfg.ext_funcs[*func_ref].signature,
            ),
            InstructionData::CallIndirect {
                opcode, sig_ref, ..
            } => {
                let kind = if *opcode == Opcode::ReturnCallIndirect {
                    CallKind::TailIndirect
                } else {
                    CallKind::Indirect
                };
                let callee = f.dfg.inst_args(inst)[0];
                if let Some(j) = data::loaded_function(case, f, callee) {
                    out.push(CallSite {
                        caller,
                        inst,
                        kind,
                        sig: f.dfg.signatures[*sig_ref].clone(),
                        callee: Some(j),
                        colocated: false,
                    });
                    continue;
                }
                (kind, func_addr_of(f, callee), *sig_ref)
            }
            InstructionData::TryCallIndirect { .. } => {
                let Some(sig_ref) = f.dfg.call_signature(inst) else {
                    continue;
                };
                let callee = f.dfg.inst_args(inst)[0];
                (CallKind::Indirect, func_addr_of(f, callee), sig_ref)
            }
            _ => continue,
        };
        out.push(CallSite {
            caller,
            inst,
            kind,
            sig: f.dfg.signatures[sig_ref].clone(),
            callee: fr.and_then(resolve),
            colocated: fr.is_some_and(|fr| f.dfg.ext_funcs[fr].colocated),
        });
    }
    out
}

/// Case functions whose code can run when run line `entry` is invoked: the entry, and
/// transitively every function it calls or takes the address of, in index order.
pub fn reachable(case: &TestCase, entry: &str) -> Vec<usize> {
    let Some(start) = function_index(case, entry) else {
        return Vec::new();
    };
    let mut seen = BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(i) = stack.pop() {
        let f = &case.functions[i];
        for fr in f.dfg.ext_funcs.keys() {
            // A declaration that nothing uses does not make its function reachable.
            let used = insts(f).any(|inst| {
                matches!(
                    f.dfg.insts[inst],
                    InstructionData::Call { func_ref, .. }
                    | InstructionData::TryCall { func_ref, .. }
                    | InstructionData::FuncAddr { func_ref, .. } if func_ref == fr
                )
            });
            if !used {
                continue;
            }
            if let Some(j) = ext_name(f, fr).and_then(|n| function_index(case, &n))
                && seen.insert(j)
            {
                stack.push(j);
            }
        }
        // Functions whose addresses sit in data this function can reach.
        for j in data::functions_in(case, &data::objects_named(case, f)) {
            if seen.insert(j) {
                stack.push(j);
            }
        }
    }
    seen.into_iter().collect()
}

/// True when every external function named like a case function is declared with exactly that
/// function's signature (the verifier checks functions one at a time and cannot see this).
pub fn calls_match(case: &TestCase) -> bool {
    first_call_mismatch(case).is_none()
}

/// The first declaration of a case function with another signature than the function's own,
/// as a message naming both.
pub fn first_call_mismatch(case: &TestCase) -> Option<String> {
    for g in &case.functions {
        for (fr, ext) in g.dfg.ext_funcs.iter() {
            let Some(name) = ext_name(g, fr) else {
                continue;
            };
            if let Some(f) = case.function(&name)
                && g.dfg.signatures[ext.signature] != f.signature
            {
                return Some(format!(
                    "%{} declares %{name} as `{}` but it is `{}`",
                    testcase_name(g),
                    g.dfg.signatures[ext.signature],
                    f.signature
                ));
            }
        }
    }
    None
}

/// True when every indirect call goes through a `func_addr` of a case function (or a pointer to
/// one loaded from data) with the call's own signature. An indirect call through anything else — a pointer the reducer turned into a
/// constant, or a function of another signature — is undefined behaviour.
pub fn indirect_calls_resolved(case: &TestCase) -> bool {
    first_unresolved_indirect_call(case).is_none()
}

/// The first indirect call that [`indirect_calls_resolved`] rejects, described.
pub fn first_unresolved_indirect_call(case: &TestCase) -> Option<String> {
    for i in 0..case.functions.len() {
        for site in call_sites(case, i) {
            if !matches!(site.kind, CallKind::Indirect | CallKind::TailIndirect) {
                continue;
            }
            let caller = testcase_name(&case.functions[i]);
            match site.callee {
                None => {
                    return Some(format!(
                        "%{caller}: an indirect call's pointer is not a `func_addr` of a case function"
                    ));
                }
                Some(c) if case.functions[c].signature != site.sig => {
                    return Some(format!(
                        "%{caller}: an indirect call with `{}` reaches %{} of `{}`",
                        site.sig,
                        testcase_name(&case.functions[c]),
                        case.functions[c].signature
                    ));
                }
                _ => {}
            }
        }
    }
    None
}

/// `opcode` or `opcode.type` of every instruction of the given functions (the controlling type
/// where the opcode has one), address arithmetic aside.
pub fn opcodes(
    case: &TestCase,
    funcs: &[usize],
) -> Vec<(Opcode, Option<cranelift_codegen::ir::Type>)> {
    let mut out = Vec::new();
    for &i in funcs {
        let f = &case.functions[i];
        for inst in insts(f) {
            let op = f.dfg.insts[inst].opcode();
            // Address arithmetic is how memory is reached, not something computed.
            if op == Opcode::Iadd && is_address(f, f.dfg.first_result(inst)) {
                continue;
            }
            let ty = f.dfg.ctrl_typevar(inst);
            let ty = (ty != cranelift_codegen::ir::types::INVALID).then_some(ty);
            out.push((op, ty));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "test run
target x86_64

function %a(i64) -> i64 system_v {
block0(v0: i64):
    return v0
}

function %b(i32) -> i32 system_v {
block0(v0: i32):
    return v0
}

function %c(i64) -> i64 system_v {
    sig0 = (i64) -> i64 system_v
    fn0 = colocated %a sig0
block0(v0: i64):
    v1 = func_addr.i64 fn0
    v2 = call_indirect sig0, v1(v0)
    return v2
}

function %lone() -> i64 system_v {
block0:
    v0 = iconst.i64 1
    return v0
}
";

    #[test]
    fn address_arithmetic_is_not_an_opcode_of_the_profile() {
        let case = TestCase::parse(
            "test run\ntarget x86_64\n\nfunction %f(i64) -> i64 system_v {\n    ss0 = explicit_slot 16\nblock0(v0: i64):\n    v1 = stack_addr.i64 ss0\n    v2 = iconst.i64 8\n    v3 = iadd v1, v2\n    store notrap v0, v3\n    v4 = iadd v0, v0\n    return v4\n}\n",
        )
        .unwrap();
        let ops: Vec<Opcode> = opcodes(&case, &[0]).into_iter().map(|(o, _)| o).collect();
        assert_eq!(
            ops.iter().filter(|&&o| o == Opcode::Iadd).count(),
            1,
            "{ops:?}"
        );
    }

    #[test]
    fn reachability_follows_calls_and_addresses() {
        let case = TestCase::parse(TWO).unwrap();
        assert_eq!(reachable(&case, "c"), [0, 2]);
        assert_eq!(reachable(&case, "lone"), [3]);
        assert!(reachable(&case, "nope").is_empty());
    }

    #[test]
    fn indirect_calls_must_reach_a_function_of_their_signature() {
        let case = TestCase::parse(TWO).unwrap();
        let sites = call_sites(&case, 2);
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0].kind, CallKind::Indirect);
        assert_eq!(sites[0].callee, Some(0));
        assert!(sites[0].colocated);
        assert!(indirect_calls_resolved(&case));
        // The drift the reducer once made: the pointer names a function of another signature.
        let drift = TWO.replace("fn0 = colocated %a sig0", "fn0 = colocated %b sig0");
        let case = TestCase::parse(&drift).unwrap();
        let why = first_unresolved_indirect_call(&case).unwrap();
        assert!(why.contains("%b"), "{why}");
        assert!(!calls_match(&case));
        // Or a constant.
        let constant = TWO.replace("v1 = func_addr.i64 fn0", "v1 = iconst.i64 0");
        assert!(!indirect_calls_resolved(
            &TestCase::parse(&constant).unwrap()
        ));
    }
}
