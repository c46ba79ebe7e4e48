//! Data objects: drop the ones nothing uses any more, forget unused symbol declarations, drop
//! relocations and halve contents.

use super::{Pass, edit};
use crate::case::TestCase;
use crate::data::{POINTER_BYTES, Target};
use cranelift_codegen::entity::PrimaryMap;
use cranelift_codegen::ir::{Function, GlobalValue, GlobalValueData, InstructionData, Opcode};
use std::ops::Range;

pub struct ShrinkData;

#[derive(Clone, Copy)]
enum Change {
    /// Remove every global value no instruction uses (in every function).
    ForgetUnusedSymbols,
    Drop(usize),
    DropReloc(usize, usize),
    /// Keep the first half of the bytes.
    Halve(usize),
}

/// Global values an instruction of `f` uses.
fn used_gvs(f: &Function) -> Vec<GlobalValue> {
    let mut out: Vec<GlobalValue> = crate::facts::insts(f)
        .filter_map(|i| match f.dfg.insts[i] {
            InstructionData::UnaryGlobalValue { global_value, .. } => Some(global_value),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Is data object `name` named by a symbol some instruction uses, or by another object?
fn referenced(case: &TestCase, name: &str) -> bool {
    let by_code = case.functions.iter().any(|f| {
        used_gvs(f)
            .into_iter()
            .any(|gv| match &f.global_values[gv] {
                GlobalValueData::Symbol { name: n, .. } => {
                    crate::facts::name_of(f, n).as_deref() == Some(name)
                }
                _ => false,
            })
    });
    by_code
        || case.data.iter().any(|d| {
            d.relocs
                .iter()
                .any(|(_, t)| matches!(t, Target::Data(n, _) if n == name))
        })
}

fn atoms(case: &TestCase) -> Vec<Change> {
    let mut out = Vec::new();
    if case
        .functions
        .iter()
        .any(|f| used_gvs(f).len() < f.global_values.len())
    {
        out.push(Change::ForgetUnusedSymbols);
    }
    for (k, d) in case.data.iter().enumerate() {
        out.push(Change::Drop(k));
        for r in 0..d.relocs.len() {
            out.push(Change::DropReloc(k, r));
        }
        if d.size() > 1 {
            out.push(Change::Halve(k));
        }
    }
    out
}

/// `f` without the global values no instruction uses; `None` when a kept one refers to another.
fn forget_unused(f: &mut Function) -> Option<()> {
    let used = used_gvs(f);
    let mut map = PrimaryMap::<GlobalValue, GlobalValueData>::new();
    let mut renumber = std::collections::HashMap::new();
    for gv in used {
        let data = f.global_values[gv].clone();
        if !matches!(data, GlobalValueData::Symbol { .. }) {
            return None;
        }
        renumber.insert(gv, map.push(data));
    }
    f.global_values = map;
    let insts: Vec<_> = crate::facts::insts(f).collect();
    for i in insts {
        if let InstructionData::UnaryGlobalValue {
            opcode: Opcode::SymbolValue | Opcode::TlsValue,
            global_value,
        } = &mut f.dfg.insts[i]
        {
            *global_value = renumber[global_value];
        }
    }
    Some(())
}

impl Pass for ShrinkData {
    fn name(&self) -> &'static str {
        "shrink-data"
    }
    fn count(&self, case: &TestCase) -> usize {
        atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let change = *atoms(case).get(range.start)?;
        edit(case, |c| {
            match change {
                Change::ForgetUnusedSymbols => {
                    for f in &mut c.functions {
                        forget_unused(f)?;
                    }
                }
                Change::Drop(k) => {
                    let name = c.data[k].name.clone();
                    c.data.remove(k);
                    if referenced(c, &name) {
                        return None;
                    }
                }
                Change::DropReloc(k, r) => {
                    c.data[k].relocs.remove(r);
                }
                Change::Halve(k) => {
                    let d = &mut c.data[k];
                    let half = d.bytes.len().div_ceil(2);
                    if d.relocs
                        .iter()
                        .any(|(o, _)| (*o + POINTER_BYTES) as usize > half)
                    {
                        return None;
                    }
                    d.bytes.truncate(half);
                }
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
    fn unused_objects_and_symbols_go_and_used_ones_shrink() {
        let c = case(
            "; clif-diff: data = %d0 readonly align=1 bytes=0102030405060708
; clif-diff: data = %d1 writable align=1 bytes=0102030405060708
test run
target x86_64

function %f() -> i8 system_v {
    gv0 = symbol %d0
    gv1 = symbol %d1
block0:
    v0 = symbol_value.i64 gv0
    v1 = load.i8 v0+1
    return v1
}
; print: %f()
",
        );
        // Pretend the finding needs byte 1 of %d0.
        let out = run_pass(&ShrinkData, &c, |t| {
            t.data_object("d0").is_some_and(|d| d.size() >= 2)
        });
        assert_eq!(out.data.len(), 1, "{out}");
        assert_eq!(out.data[0].size(), 2);
        assert_eq!(out.functions[0].global_values.len(), 1, "{out}");
        assert!(!out.to_text().contains("%d1"), "{out}");
    }
}
