//! Stack slots that are written before they are read.
//!
//! Reading a stack slot nobody wrote is undefined: native code sees whatever was on the stack,
//! the interpreter sees zeros. A reducer that deletes an initialising `store` turns a real
//! finding into that artefact while the bucket (`mismatch:interp!=object`) stays the same. So
//! when the original case initialises its slots up front — generated cases always do — every
//! candidate must too.

use cranelift_codegen::ir::{Function, InstructionData, Opcode, StackSlot, Value};
use std::collections::HashMap;

/// True when, in every function, every byte of every stack slot is stored in the entry block
/// through a `stack_addr` of that slot before the slot's address is used any other way.
pub fn slots_initialized(funcs: &[Function]) -> bool {
    funcs.iter().all(function_initializes_slots)
}

fn function_initializes_slots(f: &Function) -> bool {
    let Some(entry) = f.layout.entry_block() else {
        return true;
    };
    // Bytes written so far, per slot.
    let mut written: HashMap<StackSlot, Vec<bool>> = f
        .sized_stack_slots
        .iter()
        .map(|(ss, data)| (ss, vec![false; data.size as usize]))
        .collect();
    // `stack_addr` results: value -> (slot, offset).
    let mut addrs: HashMap<Value, (StackSlot, i64)> = HashMap::new();
    let complete = |w: &HashMap<StackSlot, Vec<bool>>, ss: StackSlot| w[&ss].iter().all(|b| *b);
    for inst in f.layout.block_insts(entry) {
        let data = &f.dfg.insts[inst];
        match *data {
            InstructionData::StackAddr {
                opcode: Opcode::StackAddr,
                stack_slot,
                offset,
            } => {
                let r = f.dfg.first_result(inst);
                addrs.insert(r, (stack_slot, i64::from(offset)));
                continue;
            }
            InstructionData::Store {
                opcode,
                args: [x, p],
                offset,
                ..
            } if addrs.contains_key(&p) && !addrs.contains_key(&x) => {
                let bytes = match opcode {
                    Opcode::Istore8 => 1,
                    Opcode::Istore16 => 2,
                    Opcode::Istore32 => 4,
                    _ => f.dfg.value_type(x).bytes() as i64,
                };
                let (ss, base) = addrs[&p];
                let start = base + i64::from(offset);
                let w = written.get_mut(&ss).unwrap();
                for b in start..start + bytes {
                    if let Some(slot) = usize::try_from(b).ok().and_then(|b| w.get_mut(b)) {
                        *slot = true;
                    }
                }
                continue;
            }
            _ => {}
        }
        // Any other use of a slot's address (a load, a call, a store of the address itself)
        // counts as a read of the whole slot.
        for &a in f.dfg.inst_values(inst).collect::<Vec<_>>().iter() {
            if let Some(&(ss, _)) = addrs.get(&a)
                && !complete(&written, ss)
            {
                return false;
            }
        }
    }
    written.values().all(|w| w.iter().all(|b| *b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_reader::parse_functions;

    fn check(text: &str) -> bool {
        slots_initialized(&parse_functions(text).unwrap())
    }

    #[test]
    fn stores_must_cover_the_slot_before_it_is_read() {
        let covered = "function %f() -> i8 {
            ss0 = explicit_slot 3
        block0:
            v0 = stack_addr.i64 ss0
            v1 = iconst.i16 1
            store notrap v1, v0
            v2 = iconst.i32 2
            istore8 notrap v2, v0+2
            v3 = load.i8 notrap v0+1
            return v3
        }";
        assert!(check(covered));
        assert!(!check(&covered.replace("istore8 notrap v2, v0+2", "nop")));
        // Read before the last byte is written.
        let early = "function %f() -> i8 {
            ss0 = explicit_slot 2
        block0:
            v0 = stack_addr.i64 ss0
            v3 = load.i8 notrap v0
            v1 = iconst.i16 1
            store notrap v1, v0
            return v3
        }";
        assert!(!check(early));
    }

    #[test]
    fn the_reduced_uninitialised_read_is_rejected() {
        // What a reduction once drifted into: a load from a slot nobody stored to.
        assert!(!check(
            "function %main() -> i8 fast {
                ss0 = explicit_slot 32
            block0:
                v0 = stack_addr.i64 ss0
                v1 = load.i8 notrap v0
                return v1
            }"
        ));
    }
}
