//! Stack slots: smaller sizes (powers of two, smallest first) and no extra alignment.

use super::{Pass, edit};
use crate::case::TestCase;
use cranelift_codegen::ir::StackSlot;
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
