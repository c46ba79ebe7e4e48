//! Control flow: conditional branches become jumps, dead blocks go, straight lines merge.

use super::{Pass, edit};
use crate::case::TestCase;
use crate::reduce::ir::{remove_unreachable_blocks, substitute};
use cranelift_codegen::ir::{Block, Function, Inst, InstBuilder, InstructionData, Opcode, types};
use std::collections::HashMap;
use std::ops::Range;

/// Replaces a `brif` or `br_table` by a `jump` to one of its destinations and removes the blocks
/// that become unreachable.
pub struct SimplifyBranches;

/// (function, branch, destination index) for every destination of every conditional branch.
fn branch_atoms(case: &TestCase) -> Vec<(usize, Inst, usize)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        for block in f.layout.blocks() {
            let Some(term) = f.layout.last_inst(block) else {
                continue;
            };
            let n = match &f.dfg.insts[term] {
                InstructionData::Brif { .. } | InstructionData::BranchTable { .. } => f.dfg.insts
                    [term]
                    .branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables)
                    .len(),
                _ => 0,
            };
            out.extend((0..n).map(|d| (fi, term, d)));
        }
    }
    out
}

impl Pass for SimplifyBranches {
    fn name(&self) -> &'static str {
        "simplify-branches"
    }
    fn count(&self, case: &TestCase) -> usize {
        branch_atoms(case).len()
    }
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase> {
        let (fi, inst, d) = *branch_atoms(case).get(atoms.start)?;
        edit(case, |c| {
            let f = &mut c.functions[fi];
            let dest = f.dfg.insts[inst]
                .branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables)[d];
            let dest = dest.deep_clone(&mut f.dfg.value_lists);
            f.replace(inst).Jump(Opcode::Jump, types::INVALID, dest);
            remove_unreachable_blocks(f);
            Some(())
        })
    }
}

/// Merges a block into its only predecessor when that one ends in a `jump` to it.
pub struct MergeBlocks;

/// For each block, the branch instructions that target it (one entry per edge).
fn predecessors(f: &Function) -> HashMap<Block, Vec<Inst>> {
    let mut preds: HashMap<Block, Vec<Inst>> = HashMap::new();
    for block in f.layout.blocks() {
        let Some(term) = f.layout.last_inst(block) else {
            continue;
        };
        for bc in f.dfg.insts[term].branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables)
        {
            preds
                .entry(bc.block(&f.dfg.value_lists))
                .or_default()
                .push(term);
        }
    }
    preds
}

/// (function, block, the jump into it) for every mergeable block.
fn merge_atoms(case: &TestCase) -> Vec<(usize, Block, Inst)> {
    let mut out = Vec::new();
    for (fi, f) in case.functions.iter().enumerate() {
        let preds = predecessors(f);
        let entry = f.layout.entry_block();
        for block in f.layout.blocks() {
            if Some(block) == entry {
                continue;
            }
            if let Some([jump]) = preds.get(&block).map(Vec::as_slice)
                && f.dfg.insts[*jump].opcode() == Opcode::Jump
                && f.layout.inst_block(*jump) != Some(block)
            {
                out.push((fi, block, *jump));
            }
        }
    }
    out
}

impl Pass for MergeBlocks {
    fn name(&self) -> &'static str {
        "merge-blocks"
    }
    fn count(&self, case: &TestCase) -> usize {
        merge_atoms(case).len()
    }
    fn apply(&self, case: &TestCase, atoms: Range<usize>) -> Option<TestCase> {
        let (fi, block, jump) = *merge_atoms(case).get(atoms.start)?;
        edit(case, |c| {
            let f = &mut c.functions[fi];
            let pred = f.layout.inst_block(jump)?;
            let InstructionData::Jump { destination, .. } = f.dfg.insts[jump] else {
                return None;
            };
            let args: Vec<_> = destination
                .args(&f.dfg.value_lists)
                .map(|a| a.as_value())
                .collect::<Option<_>>()?;
            let params = f.dfg.block_params(block).to_vec();
            let map: HashMap<_, _> = params.into_iter().zip(args).collect();
            f.layout.remove_inst(jump);
            while let Some(inst) = f.layout.first_inst(block) {
                f.layout.remove_inst(inst);
                f.layout.append_inst(inst, pred);
            }
            f.layout.remove_block(block);
            substitute(f, &map);
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::reduce::count_insts;

    const DIAMOND: &str = "test run
target x86_64

function %f(i32) -> i32 system_v {
block0(v0: i32):
    brif v0, block1, block2(v0)
block1:
    v1 = iconst.i32 5
    jump block3(v1)
block2(v2: i32):
    v3 = iadd v2, v2
    jump block3(v3)
block3(v4: i32):
    return v4
}
; print: %f(0)
";

    #[test]
    fn brif_becomes_a_jump_and_dead_blocks_go() {
        let c = case(DIAMOND);
        let cands = candidates(&SimplifyBranches, &c);
        assert_eq!(cands.len(), 2);
        // Taking the `else` side: block1 is dead.
        let out = case(&cands[1]);
        let text = out.to_text();
        assert!(text.contains("jump block2(v0)"), "{text}");
        assert!(!text.contains("block1"), "{text}");
        assert!(!text.contains("brif"), "{text}");
    }

    #[test]
    fn straight_lines_merge_into_one_block() {
        let c = case(DIAMOND);
        let out = run_pass(&SimplifyBranches, &c, |t| t.to_text().contains("iadd"));
        // block0 -> block2 -> block3 is now a straight line; merge it.
        let merged = run_pass(&MergeBlocks, &out, |_| true);
        let text = merged.to_text();
        assert_eq!(merged.functions[0].layout.blocks().count(), 1, "{text}");
        assert!(text.contains("iadd v0, v0"), "{text}");
        assert_eq!(count_insts(&merged), 2, "{text}");
    }
}
