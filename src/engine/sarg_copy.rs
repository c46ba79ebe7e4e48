//! Making `sarg` callee-copy semantics explicit for the interpreter.
//!
//! A `sarg(N)` parameter is a pointer in CLIF, but the ABI passes the N bytes it points to by
//! value: the callee works on its own copy, and its writes never reach the caller's memory. The
//! interpreter treats the parameter as a plain pointer, so on its own it would let a callee's
//! writes leak into the caller. This pass rewrites each function with `sarg` parameters so that it
//! copies the N bytes into a private stack slot on entry and uses the slot's address instead —
//! exactly the semantics the native backends implement with `memcpy` at the call site.

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::ir::{
    ArgumentPurpose, Function, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind,
};

/// Rewrites every `sarg` parameter of `func` into an explicit callee-side copy.
pub fn lower(func: &mut Function) {
    let Some(entry) = func.layout.entry_block() else {
        return;
    };
    let sargs: Vec<(usize, u32)> = func
        .signature
        .params
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p.purpose {
            ArgumentPurpose::StructArgument(n) => Some((i, n)),
            _ => None,
        })
        .collect();
    for (i, size) in sargs {
        let old = func.dfg.block_params(entry)[i];
        let ty = func.dfg.value_type(old);
        let incoming = func.dfg.replace_block_param(old, ty);
        let slot =
            func.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, 3));
        let mut pos = FuncCursor::new(func);
        pos.goto_first_insertion_point(entry);
        let copy = pos.ins().stack_addr(ty, slot, 0);
        // Not `aligned`: the interpreter lays out stack slots without padding, so the caller's
        // struct may sit at any offset.
        let flags = MemFlagsData::new().with_notrap();
        let mut off = 0u32;
        while off < size {
            let chunk = crate::value::word_within(size - off);
            let v = pos.ins().load(chunk, flags, incoming, off as i32);
            pos.ins().store(flags, v, copy, off as i32);
            off += chunk.bytes();
        }
        pos.func.dfg.change_to_alias(old, copy);
    }
    func.dfg.resolve_all_aliases();
    // The signature keeps its `sarg` purpose: nothing in the interpreter reads it, and callers'
    // signatures must still match.
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_reader::parse_functions;

    #[test]
    fn callee_gets_a_private_copy() {
        let mut f = parse_functions(
            "function %f(i64 sarg(12)) -> i32 system_v {
             block0(v0: i64):
                 v1 = iconst.i32 7
                 store v1, v0
                 v2 = load.i32 v0+8
                 return v2
             }",
        )
        .unwrap()
        .remove(0);
        lower(&mut f);
        let text = f.display().to_string();
        assert_eq!(f.sized_stack_slots.len(), 1);
        assert!(text.contains("stack_addr.i64 ss0"), "{text}");
        // 12 bytes: one i64 and one i32 chunk.
        assert!(
            text.contains("load.i64 notrap v") && text.contains("load.i32 notrap v"),
            "{text}"
        );
        // The store now goes to the copy, not to the incoming pointer.
        cranelift_codegen::verify_function(
            &f,
            &cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder()),
        )
        .unwrap();
    }
}
