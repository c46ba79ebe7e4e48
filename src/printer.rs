//! Function text that reads back as the same function.
//!
//! Cranelift 0.135's writer leaves out the memory flags of `atomic_rmw` and `atomic_cas`
//! (`little`, `big`, `notrap`, `aligned`, alias regions): a function printed and read back has
//! lost them, and on a big-endian target a `little` atomic becomes a big-endian one. clif-diff
//! hands every case to its workers as text and writes every reproducer as text, so it prints
//! functions through this writer, which puts the flags back where the reader expects them.

use cranelift_codegen::entity::SecondaryMap;
use cranelift_codegen::ir::{Block, Function, Inst, InstructionData, Value};
use cranelift_codegen::write::{FuncWriter, PlainWriter, decorate_function};
use std::fmt::{self, Write};

/// `func` as text that parses back to the same function.
pub fn function_text(func: &Function) -> String {
    let mut s = String::new();
    decorate_function(&mut KeepAtomicFlags, &mut s, func).expect("writing to a String");
    s
}

struct KeepAtomicFlags;

impl FuncWriter for KeepAtomicFlags {
    fn write_instruction(
        &mut self,
        w: &mut dyn Write,
        func: &Function,
        aliases: &SecondaryMap<Value, Vec<Value>>,
        inst: Inst,
        indent: usize,
    ) -> fmt::Result {
        let mut line = String::new();
        PlainWriter.write_instruction(&mut line, func, aliases, inst, indent)?;
        let flags = match func.dfg.insts[inst] {
            InstructionData::AtomicRmw { flags, .. } | InstructionData::AtomicCas { flags, .. } => {
                func.dfg.mem_flags[flags].to_string()
            }
            _ => String::new(),
        };
        if !flags.is_empty() {
            // `v1 = atomic_rmw.i64 add v0, v2`: the flags go right after the opcode and its type.
            let opcode = func.dfg.insts[inst].opcode().to_string();
            if let Some(at) = line.find(&opcode) {
                let end = line[at..].find(' ').map_or(line.len(), |e| at + e);
                line.insert_str(end, &flags);
            }
        }
        w.write_str(&line)
    }

    fn write_block_header(
        &mut self,
        w: &mut dyn Write,
        func: &Function,
        block: Block,
        indent: usize,
    ) -> fmt::Result {
        PlainWriter.write_block_header(w, func, block, indent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::Endianness;

    #[test]
    fn atomic_memory_flags_survive_a_round_trip() {
        let text = "function %f(i64, i64) -> i64, i64 {
block0(v0: i64, v1: i64):
    v2 = atomic_rmw.i64 little notrap add v0, v1
    v3 = atomic_cas.i64 big v0, v1, v2
    v4 = load.i64 little v0
    return v2, v3
}
";
        let func = cranelift_reader::parse_functions(text).unwrap().remove(0);
        // Cranelift's own writer drops them (the reason this module exists).
        let plain = func.display().to_string();
        assert!(plain.contains("atomic_rmw.i64 add"), "{plain}");
        let ours = function_text(&func);
        assert!(
            ours.contains("atomic_rmw.i64 notrap little add v0, v1"),
            "{ours}"
        );
        assert!(ours.contains("atomic_cas big v0, v1, v2"), "{ours}");
        let back = cranelift_reader::parse_functions(&ours).unwrap().remove(0);
        let endianness = |f: &Function| -> Vec<Option<Endianness>> {
            crate::facts::insts(f)
                .filter_map(|i| f.dfg.insts[i].memflags())
                .map(|m| f.dfg.mem_flags[m].explicit_endianness())
                .collect()
        };
        assert_eq!(endianness(&back), endianness(&func));
        assert_eq!(function_text(&back), ours);
    }
}
