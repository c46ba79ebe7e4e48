//! Stack slots: smaller sizes (powers of two, smallest first) and no extra alignment.

use super::{Pass, edit};
use crate::case::TestCase;
use cranelift_codegen::ir::{Function, Inst, InstructionData, StackSlot, Value};
use std::ops::Range;

pub struct ShrinkSlots;

#[derive(Clone, Copy)]
enum Change {
    Size(u32),
    Unaligned,
}

fn atoms(case: &TestCase) -> Vec<(usize, StackSlot, Change)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for (ss, data) in f.sized_stack_slots.iter() {
            let mut size = 1;
            while size < data.size {
                out.push((fi, ss, Change::Size(size)));
                size *= 2;
            }
            if data.align_shift > 0 {
                out.push((fi, ss, Change::Unaligned));
            }
        }
    }
    out
}

impl Pass for ShrinkSlots {
    fn name(&self) -> &'static str {
        "shrink-slots"
    }
    fn count(&self, case: &TestCase) -> usize {
        atoms(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let (fi, ss, change) = *atoms(case).get(range.start)?;
        edit(case, |c| {
            let data = &mut c.functions[fi].sized_stack_slots[ss];
            match change {
                Change::Size(s) => data.size = s,
                Change::Unaligned => data.align_shift = 0,
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
    fn slots_shrink_to_what_the_test_needs() {
        let c = case(
            "test run
target x86_64

function %f() -> i32 system_v {
    ss0 = explicit_slot 64, align = 16
block0:
    v0 = stack_addr.i64 ss0
    v1 = load.i32 v0
    return v1
}
; print: %f()
",
        );
        // Pretend the finding needs at least 4 bytes.
        let out = run_pass(&ShrinkSlots, &c, |t| {
            t.functions[0]
                .sized_stack_slots
                .values()
                .all(|d| d.size >= 4)
        });
        let d = out.functions[0].sized_stack_slots.values().next().unwrap();
        assert_eq!((d.size, d.align_shift), (4, 0));
    }
}

/// Drops a stack slot that is only ever written: its `stack_addr`s, the stores through them and
/// the slot itself go in one candidate. Removing the stores alone would leave a slot that is
/// read uninitialised by nothing — but the initialisation rule (see `reduce::init`) cannot tell
/// an unread slot from a read one, so without this pass such slots could never go.
pub struct DropWriteOnlySlots;

fn write_only_slots(case: &TestCase) -> Vec<(usize, StackSlot)> {
    case.functions
        .iter()
        .enumerate()
        .flat_map(|(fi, f)| {
            f.sized_stack_slots
                .keys()
                .filter(|&ss| slot_insts(f, ss).is_some())
                .map(move |ss| (fi, ss))
        })
        .collect()
}

/// The `stack_addr`s of `ss` and the stores through them, or `None` when an address of `ss` is
/// used any other way (loaded from, passed to a call, stored as a value...).
fn slot_insts(f: &Function, ss: StackSlot) -> Option<Vec<Inst>> {
    let mut addrs = Vec::new();
    let mut insts = Vec::new();
    for block in f.layout.blocks() {
        for inst in f.layout.block_insts(block) {
            if let InstructionData::StackAddr { stack_slot, .. } = f.dfg.insts[inst]
                && stack_slot == ss
            {
                addrs.push(f.dfg.first_result(inst));
                insts.push(inst);
            }
        }
    }
    for block in f.layout.blocks() {
        for inst in f.layout.block_insts(block) {
            let uses: Vec<Value> = f.dfg.inst_values(inst).collect();
            if !uses.iter().any(|v| addrs.contains(v)) {
                continue;
            }
            match f.dfg.insts[inst] {
                InstructionData::Store { args: [x, p], .. }
                    if addrs.contains(&p) && !addrs.contains(&x) =>
                {
                    insts.push(inst)
                }
                _ => return None,
            }
        }
    }
    Some(insts)
}

impl Pass for DropWriteOnlySlots {
    fn name(&self) -> &'static str {
        "drop-write-only-slots"
    }
    fn count(&self, case: &TestCase) -> usize {
        write_only_slots(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let (fi, ss) = *write_only_slots(case).get(range.start)?;
        let mut c = case.clone();
        let f = &mut c.functions[fi];
        for inst in slot_insts(f, ss)? {
            f.layout.remove_inst(inst);
        }
        // A slot cannot be taken out of the entity map; take it out of the text instead (the
        // candidate is printed and parsed back anyway). The parser keeps the numbering dense by
        // filling the gap with an empty slot, which canonical renumbering later drops.
        let decl = format!("    {ss} = ");
        let name = crate::case::testcase_name(f);
        let text = c.to_text();
        let mut out = String::new();
        let mut in_func = false;
        for line in text.lines() {
            if line.starts_with("function ") {
                in_func = line.starts_with(&format!("function %{name}("));
            }
            if in_func && line.starts_with(&decl) {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        TestCase::parse(&out).ok()
    }
}

#[cfg(test)]
mod drop_tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn write_only_slots_go_with_their_stores() {
        let c = case(
            "test run
target x86_64

function %f() -> i32 system_v {
    ss0 = explicit_slot 8
    ss1 = explicit_slot 4
block0:
    v0 = iconst.i32 7
    v1 = stack_addr.i64 ss0
    store notrap v0, v1
    v2 = stack_addr.i64 ss1
    store notrap v0, v2
    v3 = load.i32 notrap v2
    return v3
}
; print: %f()
",
        );
        assert_eq!(DropWriteOnlySlots.count(&c), 1, "ss1 is read");
        let out = run_pass(&DropWriteOnlySlots, &c, |_| true);
        let text = out.to_text();
        // The parser fills the numbering gap with an empty slot; nothing refers to it.
        assert!(!text.contains("stack_addr.i64 ss0"), "{text}");
        assert!(!text.contains("explicit_slot 8"), "{text}");
        assert!(text.contains("ss1 = explicit_slot 4"), "{text}");
        assert!(crate::facts::memory::slots_initialized(&out.functions));
    }
}
