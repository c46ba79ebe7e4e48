//! Data objects seen from the code: which `symbol_value` names which object, which loaded
//! value is a relocated pointer, which functions a data object makes reachable.

use super::insts;
use crate::case::TestCase;
use crate::data::Target;
use cranelift_codegen::ir::{Function, GlobalValueData, InstructionData, Opcode, Value, ValueDef};

/// The data object (index) and offset `v` is the address of, when `v` is a `symbol_value` of a
/// data object of the case, or the `tls_value` of a thread-local one.
pub fn symbol_of(case: &TestCase, f: &Function, v: Value) -> Option<(usize, i64)> {
    let ValueDef::Result(inst, _) = f.dfg.value_def(f.dfg.resolve_aliases(v)) else {
        return None;
    };
    let InstructionData::UnaryGlobalValue {
        opcode: opcode @ (Opcode::SymbolValue | Opcode::TlsValue),
        global_value,
    } = f.dfg.insts[inst]
    else {
        return None;
    };
    let GlobalValueData::Symbol {
        name, offset, tls, ..
    } = &f.global_values[global_value]
    else {
        return None;
    };
    let n = crate::facts::name_of(f, name)?;
    let d = case.data.iter().position(|o| o.name == n)?;
    let tls_ok = *tls == (opcode == Opcode::TlsValue) && *tls == case.data[d].tls;
    tls_ok.then_some((d, i64::from(*offset)))
}

/// The case function whose relocated pointer `v` was loaded from data, if it was.
pub fn loaded_function(case: &TestCase, f: &Function, v: Value) -> Option<usize> {
    let ValueDef::Result(inst, _) = f.dfg.value_def(f.dfg.resolve_aliases(v)) else {
        return None;
    };
    match super::memory::loaded_pointer(case, f, inst)? {
        Target::Func(name) => super::function_index(case, name),
        Target::Data(..) => None,
    }
}

/// Data objects `f` takes the address of, by index.
pub fn objects_named(case: &TestCase, f: &Function) -> Vec<usize> {
    let mut out: Vec<usize> = insts(f)
        .filter_map(|i| {
            let r = f.dfg.inst_results(i).first()?;
            symbol_of(case, f, *r).map(|(d, _)| d)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Functions whose address data objects hold, starting from the objects `roots` and following
/// pointers between objects.
pub fn functions_in(case: &TestCase, roots: &[usize]) -> Vec<usize> {
    let mut seen: Vec<usize> = roots.to_vec();
    let mut funcs = Vec::new();
    let mut k = 0;
    while k < seen.len() {
        for (_, t) in &case.data[seen[k]].relocs {
            match t {
                Target::Func(n) => funcs.extend(super::function_index(case, n)),
                Target::Data(n, _) => {
                    if let Some(d) = case.data.iter().position(|o| o.name == *n)
                        && !seen.contains(&d)
                    {
                        seen.push(d);
                    }
                }
            }
        }
        k += 1;
    }
    funcs.sort_unstable();
    funcs.dedup();
    funcs
}

#[cfg(test)]
mod tests {
    use crate::case::TestCase;
    use crate::facts::memory::first_out_of_bounds;
    use crate::facts::{addresses::addresses_unobserved, first_unresolved_indirect_call};

    const HEADER: &str = "; clif-diff: data = %d0 readonly align=8 bytes=00112233445566778899aabbccddeeff
; clif-diff: data = %tbl writable align=8 bytes=000000000000000000000000000000000000000000000000 fn@0=%g data@8=%d0+4
test run
target x86_64

function %g(i64) -> i64 system_v {
block0(v0: i64):
    return v0
}
";

    fn case(body: &str) -> TestCase {
        let text = format!(
            "{HEADER}
function %f(i64) -> i64 system_v {{
    gv0 = symbol colocated %d0
    gv1 = symbol %tbl
    sig0 = (i64) -> i64 system_v
block0(v0: i64):
    v1 = symbol_value.i64 gv0
    v2 = symbol_value.i64 gv1
{body}
}}
; run: %f(1) == 0
"
        );
        TestCase::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn the_generators_uses_of_data_are_safe() {
        let c = case(
            "    v3 = load.i64 v1+8
    v4 = load.i64 v2
    v5 = call_indirect sig0, v4(v3)
    v6 = load.i64 v2+8
    v7 = load.i32 v6+8
    v8 = uextend.i64 v7
    v9 = iadd v5, v8
    store v9, v2+16
    return v9",
        );
        assert_eq!(first_out_of_bounds(&c), None);
        assert_eq!(first_unresolved_indirect_call(&c), None);
        assert!(addresses_unobserved(&c));
    }

    #[test]
    fn writes_to_read_only_data_and_pointer_bytes_are_refused() {
        for (body, why) in [
            ("    store v0, v1\n    return v0", "writes read-only %d0"),
            (
                "    store v0, v2+8\n    return v0",
                "part of a relocated pointer",
            ),
            (
                "    v3 = load.i32 v2+4\n    v4 = uextend.i64 v3\n    return v4",
                "part of a relocated pointer",
            ),
            // The pointer at 8 is %d0+4: 12 bytes remain, not 16.
            (
                "    v3 = load.i64 v2+8\n    v4 = load.i64 v3+8\n    return v4",
                "bytes 12..20 of a 16-byte region",
            ),
        ] {
            let c = case(body);
            let e = first_out_of_bounds(&c).unwrap_or_else(|| panic!("accepted:\n{c}"));
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn a_pointer_from_data_is_an_address() {
        // Returning the loaded function pointer observes an address.
        let c = case("    v3 = load.i64 v2\n    return v3");
        assert!(!addresses_unobserved(&c));
        // Calling through the data pointer (not a function pointer) is unresolved.
        let c = case("    v3 = load.i64 v2+8\n    v4 = call_indirect sig0, v3(v0)\n    return v4");
        assert!(first_unresolved_indirect_call(&c).is_some());
    }
}
