//! Where memory accesses point, and whether what they read was written.
//!
//! Every load and store is traced to the region it addresses — a stack slot, an incoming `sarg`
//! copy, the region a pointer parameter points into, or a data object (through `symbol_value`,
//! or through a pointer loaded from a relocation of another data object) — with the range of
//! offsets it can have:
//! constants added with `iadd` move it, `iadd` of a `band` with a constant mask spreads it over
//! `0..=mask` (the generator's run-time indices). A pointer parameter's region is as large as
//! the smallest room any caller passes. An access that cannot be traced, or that can leave its
//! region, makes [`accesses_in_bounds`] false: native code would read whatever lies there, the
//! interpreter would trap or panic, and a "finding" would be undefined behaviour. So is a store
//! to a read-only data object (it faults natively), and any access to the bytes of a relocated
//! pointer other than loading the whole pointer (a store would replace an address by data, a
//! part of one observes the address).
//!
//! Memory flags make promises an access must keep, or the access is undefined as well (the
//! generator gives flags only where they hold; these checks keep a reduction from breaking
//! them): `readonly`/`can_move` loads read a read-only data object, or a relocated pointer
//! (which nothing may write); an `aligned` access is of one byte, or has one offset, a multiple
//! of its size, into a data object aligned at least as much (the interpreter packs stack slots,
//! so nothing else is provably aligned everywhere); an alias region is named only on stack slots, which nothing
//! else reaches, and one slot is accessed in one region at most.
//!
//! The memory libcalls are accesses too: `memcpy`/`memmove`/`memset` write their first range and
//! read their second, `memcmp` reads both, over a constant length; `memcpy`'s two ranges must
//! not overlap. `memcmp`'s result has a defined sign only, so [`memcmp_signs_only`] asks that it
//! is compared with zero and used no other way.
//!
//! Reading a stack slot nobody wrote is undefined too: native code sees whatever was on the
//! stack, the interpreter sees zeros. [`slots_initialized`] checks that every slot is written in
//! full in the entry block before its address is used any other way.

use super::{call_sites, insts};
use crate::case::{TestCase, testcase_name};
use cranelift_codegen::ir::{
    ArgumentPurpose, Function, Inst, InstructionData, LibCall, Opcode, StackSlot, Value, ValueDef,
};
use std::collections::HashMap;

/// What an address is based on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Base {
    Slot(StackSlot),
    /// The entry block's parameter with this index.
    Param(usize),
    /// The case's data object with this index.
    Data(usize),
}

/// A base and the inclusive range of byte offsets from it.
#[derive(Clone, Copy, Debug)]
struct Ptr {
    base: Base,
    lo: i64,
    hi: i64,
}

/// The inclusive range an integer value can take, where it is easy to know.
fn int_range(f: &Function, v: Value) -> Option<(i64, i64)> {
    let v = f.dfg.resolve_aliases(v);
    let ValueDef::Result(inst, _) = f.dfg.value_def(v) else {
        return None;
    };
    match f.dfg.insts[inst] {
        InstructionData::UnaryImm {
            opcode: Opcode::Iconst,
            imm,
        } => Some((imm.bits(), imm.bits())),
        InstructionData::Binary {
            opcode: Opcode::Band,
            args: [a, b],
        } => {
            let mask = |x: Value| {
                int_range(f, x)
                    .filter(|(l, h)| l == h && *l >= 0)
                    .map(|r| r.0)
            };
            mask(b).or_else(|| mask(a)).map(|m| (0, m))
        }
        InstructionData::Unary {
            opcode: Opcode::Uextend,
            arg,
        } => int_range(f, arg).filter(|(l, _)| *l >= 0),
        _ => None,
    }
}

fn provenance(case: &TestCase, f: &Function, v: Value) -> Option<Ptr> {
    let v = f.dfg.resolve_aliases(v);
    if let Some((d, off)) = super::data::symbol_of(case, f, v) {
        return Some(Ptr {
            base: Base::Data(d),
            lo: off,
            hi: off,
        });
    }
    if let ValueDef::Result(inst, _) = f.dfg.value_def(v)
        && let Some(crate::data::Target::Data(name, addend)) = loaded_pointer(case, f, inst)
    {
        let d = case.data.iter().position(|o| o.name == *name)?;
        return Some(Ptr {
            base: Base::Data(d),
            lo: *addend,
            hi: *addend,
        });
    }
    match f.dfg.value_def(v) {
        ValueDef::Param(block, idx) if Some(block) == f.layout.entry_block() => Some(Ptr {
            base: Base::Param(idx),
            lo: 0,
            hi: 0,
        }),
        ValueDef::Result(inst, _) => match f.dfg.insts[inst] {
            InstructionData::StackAddr {
                opcode: Opcode::StackAddr,
                stack_slot,
                offset,
            } => {
                let o = i64::from(offset);
                Some(Ptr {
                    base: Base::Slot(stack_slot),
                    lo: o,
                    hi: o,
                })
            }
            InstructionData::Binary {
                opcode: Opcode::Iadd,
                args: [a, b],
            } => {
                let (p, r) = match provenance(case, f, a) {
                    Some(p) => (p, int_range(f, b)?),
                    None => (provenance(case, f, b)?, int_range(f, a)?),
                };
                Some(Ptr {
                    base: p.base,
                    lo: p.lo.checked_add(r.0)?,
                    hi: p.hi.checked_add(r.1)?,
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// (address, immediate offset, bytes) of a memory access, `None` for other instructions.
fn access(f: &Function, inst: Inst) -> Option<(Value, i64, i64)> {
    let data = &f.dfg.insts[inst];
    let bytes = |ty: cranelift_codegen::ir::Type| i64::from(ty.bytes());
    match *data {
        InstructionData::Load {
            opcode,
            arg,
            offset,
            ..
        } => {
            let n = match opcode {
                Opcode::Uload8 | Opcode::Sload8 => 1,
                Opcode::Uload16 | Opcode::Sload16 => 2,
                Opcode::Uload32 | Opcode::Sload32 => 4,
                Opcode::Uload8x8 | Opcode::Sload8x8 => 8,
                Opcode::Uload16x4 | Opcode::Sload16x4 => 8,
                Opcode::Uload32x2 | Opcode::Sload32x2 => 8,
                _ => bytes(f.dfg.value_type(f.dfg.first_result(inst))),
            };
            Some((arg, i64::from(offset), n))
        }
        InstructionData::Store {
            opcode,
            args: [x, p],
            offset,
            ..
        } => {
            let n = match opcode {
                Opcode::Istore8 => 1,
                Opcode::Istore16 => 2,
                Opcode::Istore32 => 4,
                _ => bytes(f.dfg.value_type(x)),
            };
            Some((p, i64::from(offset), n))
        }
        InstructionData::LoadNoOffset { arg, opcode, .. } if opcode != Opcode::Bitcast => {
            Some((arg, 0, bytes(f.dfg.ctrl_typevar(inst))))
        }
        InstructionData::StoreNoOffset { args: [x, p], .. } => {
            Some((p, 0, bytes(f.dfg.value_type(x))))
        }
        InstructionData::AtomicRmw { args: [p, _], .. } => {
            Some((p, 0, bytes(f.dfg.ctrl_typevar(inst))))
        }
        InstructionData::AtomicCas {
            args: [p, _, _], ..
        } => Some((p, 0, bytes(f.dfg.ctrl_typevar(inst)))),
        _ => None,
    }
}

/// How an address reaches a data object, when it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataAccess {
    /// Through `symbol_value` (plus offsets).
    Symbol,
    /// Through a pointer loaded from another data object.
    Pointer,
}

/// The data object (index) `addr` points into, and how.
pub fn data_access(case: &TestCase, f: &Function, addr: Value) -> Option<(usize, DataAccess)> {
    let p = provenance(case, f, addr)?;
    let Base::Data(d) = p.base else { return None };
    // Walk down `iadd`s to the root: a symbol, or a pointer load.
    let mut v = f.dfg.resolve_aliases(addr);
    loop {
        if super::data::symbol_of(case, f, v).is_some() {
            return Some((d, DataAccess::Symbol));
        }
        let ValueDef::Result(inst, _) = f.dfg.value_def(v) else {
            return None;
        };
        if loaded_pointer(case, f, inst).is_some() {
            return Some((d, DataAccess::Pointer));
        }
        let InstructionData::Binary {
            opcode: Opcode::Iadd,
            args: [a, b],
        } = f.dfg.insts[inst]
        else {
            return None;
        };
        v = if provenance(case, f, a).is_some() {
            a
        } else {
            b
        };
    }
}

/// The address operand of a memory access instruction, if `inst` is one.
pub fn access_address(f: &Function, inst: Inst) -> Option<Value> {
    access(f, inst).map(|(p, _, _)| p)
}

/// The relocated pointer `inst` loads whole: a `load.i64` of exactly the eight bytes of a
/// relocation (at one known offset) of a data object.
pub fn loaded_pointer<'c>(
    case: &'c TestCase,
    f: &Function,
    inst: Inst,
) -> Option<&'c crate::data::Target> {
    let InstructionData::Load {
        opcode: Opcode::Load,
        arg,
        offset,
        ..
    } = f.dfg.insts[inst]
    else {
        return None;
    };
    if f.dfg.value_type(f.dfg.first_result(inst)) != cranelift_codegen::ir::types::I64 {
        return None;
    }
    let p = provenance(case, f, arg)?;
    let Base::Data(d) = p.base else { return None };
    (p.lo == p.hi)
        .then(|| case.data[d].reloc_at(p.lo + i64::from(offset)))
        .flatten()
}

/// The size of the region each pointer parameter points into: its `sarg` size, or the least
/// room any caller passes (`None` when a caller passes something untraceable, or nobody calls).
fn param_rooms(case: &TestCase) -> HashMap<(usize, usize), Option<i64>> {
    let mut rooms: HashMap<(usize, usize), Option<i64>> = HashMap::new();
    // Callers passing room: collected per (callee, param) over all call sites, to a fixpoint
    // (pointer parameters are passed on down call chains).
    for _ in 0..=case.functions.len() {
        let mut next: HashMap<(usize, usize), Option<i64>> = HashMap::new();
        for caller in 0..case.functions.len() {
            let f = &case.functions[caller];
            for site in call_sites(case, caller) {
                let Some(callee) = site.callee else { continue };
                let args = f.dfg.inst_args(site.inst);
                // Indirect calls carry the callee pointer first.
                let args = match site.kind {
                    super::CallKind::Indirect | super::CallKind::TailIndirect => &args[1..],
                    _ => args,
                };
                for (k, &a) in args.iter().enumerate() {
                    let room = provenance(case, f, a).and_then(|p| {
                        let size = region_size(case, &rooms, caller, p.base)?;
                        // A callee may write through a pointer parameter, and reads it by parts:
                        // only writable data without pointers in it is room to lend.
                        if let Base::Data(d) = p.base {
                            let obj = &case.data[d];
                            if !obj.writable || obj.overlaps_reloc(p.lo, size) {
                                return None;
                            }
                        }
                        Some(size - p.hi)
                    });
                    let e = next.entry((callee, k)).or_insert(room);
                    *e = match (*e, room) {
                        (Some(x), Some(y)) => Some(x.min(y)),
                        _ => None,
                    };
                }
            }
        }
        if next == rooms {
            break;
        }
        rooms = next;
    }
    rooms
}

fn region_size(
    case: &TestCase,
    rooms: &HashMap<(usize, usize), Option<i64>>,
    func: usize,
    base: Base,
) -> Option<i64> {
    let f = &case.functions[func];
    match base {
        Base::Slot(ss) => f.sized_stack_slots.get(ss).map(|d| i64::from(d.size)),
        Base::Data(d) => case.data.get(d).map(|d| i64::from(d.size())),
        Base::Param(k) => match f.signature.params.get(k)?.purpose {
            ArgumentPurpose::StructArgument(n) => Some(i64::from(n)),
            ArgumentPurpose::Normal => rooms.get(&(func, k)).copied().flatten(),
            _ => None,
        },
    }
}

/// True when every memory access of every function, and every `sarg` copy a call makes, stays
/// inside a region the analysis can name.
pub fn accesses_in_bounds(case: &TestCase) -> bool {
    first_out_of_bounds(case).is_none()
}

/// The first access [`accesses_in_bounds`] rejects, described. Only functions some run line
/// reaches are checked: code that never runs has no behaviour to be undefined.
pub fn first_out_of_bounds(case: &TestCase) -> Option<String> {
    let rooms = param_rooms(case);
    let mut live: Vec<usize> = case
        .runs
        .iter()
        .flat_map(|r| super::reachable(case, &r.func))
        .collect();
    live.sort_unstable();
    live.dedup();
    for i in live {
        let f = &case.functions[i];
        // (instruction, address, offset, bytes, writes)
        let mut checks: Vec<(Inst, Value, i64, i64, bool)> = insts(f)
            .filter_map(|inst| {
                let writes = f.dfg.insts[inst].opcode().can_store();
                access(f, inst).map(|(p, off, n)| (inst, p, off, n, writes))
            })
            .collect();
        // The callee's ABI copies `sarg(N)` bytes from the pointer the caller passes.
        for site in call_sites(case, i) {
            let args = f.dfg.inst_args(site.inst).to_vec();
            let args = match site.kind {
                super::CallKind::Indirect | super::CallKind::TailIndirect => &args[1..],
                _ => &args[..],
            };
            for (p, &a) in site.sig.params.iter().zip(args) {
                if let ArgumentPurpose::StructArgument(n) = p.purpose {
                    checks.push((site.inst, a, 0, i64::from(n), false));
                }
            }
        }
        // The memory libcalls: a constant length, from the first pointer (written unless it is
        // `memcmp`) and the second (read; `memset`'s is the byte), not overlapping for `memcpy`.
        for inst in insts(f) {
            let Some(libcall) = super::memory_libcall(f, inst) else {
                continue;
            };
            let describe = || format!("%{}: `{}`", testcase_name(f), f.dfg.display_inst(inst));
            let &[a, b, len] = f.dfg.inst_args(inst) else {
                return Some(format!("{}: not three arguments", describe()));
            };
            let Some(n) = int_range(f, len)
                .filter(|(l, h)| l == h && *l >= 0)
                .map(|r| r.0)
            else {
                return Some(format!("{}: length not a known constant", describe()));
            };
            checks.push((inst, a, 0, n, libcall != LibCall::Memcmp));
            if libcall != LibCall::Memset {
                checks.push((inst, b, 0, n, false));
            }
            if libcall == LibCall::Memcpy && n > 0 {
                let (Some(x), Some(y)) = (provenance(case, f, a), provenance(case, f, b)) else {
                    return Some(format!("{}: untraceable address", describe()));
                };
                let private = |p: &Ptr| match p.base {
                    Base::Slot(_) => true,
                    Base::Param(k) => matches!(
                        f.signature.params.get(k).map(|p| p.purpose),
                        Some(ArgumentPurpose::StructArgument(_))
                    ),
                    Base::Data(_) => false,
                };
                let apart = if x.base == y.base {
                    x.hi + n <= y.lo || y.hi + n <= x.lo
                } else {
                    private(&x) || private(&y)
                };
                if !apart {
                    return Some(format!(
                        "{}: `memcpy` of ranges that may overlap",
                        describe()
                    ));
                }
            }
        }
        let mut slot_regions: HashMap<Base, cranelift_codegen::ir::AliasRegion> = HashMap::new();
        for (inst, addr, off, n, writes) in checks {
            let describe = || format!("%{}: `{}`", testcase_name(f), f.dfg.display_inst(inst));
            let Some(p) = provenance(case, f, addr) else {
                return Some(format!("{}: untraceable address", describe()));
            };
            if let Some(flags) = f.dfg.insts[inst].memflags_data(&f.dfg)
                && let Some(broken) =
                    broken_promise(case, f, inst, &flags, p, off, n).or_else(|| {
                        let region = flags.alias_region()?;
                        let first = *slot_regions.entry(p.base).or_insert(region);
                        (first != region).then(|| "a slot accessed in two alias regions".into())
                    })
            {
                return Some(format!("{}: {broken}", describe()));
            }
            let Some(size) = region_size(case, &rooms, i, p.base) else {
                return Some(format!("{}: region of unknown size", describe()));
            };
            if let Base::Data(d) = p.base {
                let obj = &case.data[d];
                let (lo, hi) = (p.lo + off, p.hi + off + n);
                if writes && !obj.writable {
                    return Some(format!("{}: writes read-only %{}", describe(), obj.name));
                }
                let whole_pointer = loaded_pointer(case, f, inst).is_some();
                if obj.overlaps_reloc(lo, hi) && !whole_pointer {
                    return Some(format!(
                        "{}: touches part of a relocated pointer in %{}",
                        describe(),
                        obj.name
                    ));
                }
            }
            if p.lo + off < 0 || p.hi + off + n > size {
                return Some(format!(
                    "{}: bytes {}..{} of a {size}-byte region",
                    describe(),
                    p.lo + off,
                    p.hi + off + n
                ));
            }
        }
    }
    None
}

/// True when every `memcmp` result is used only by comparisons with zero (`icmp` with `iconst 0`): C
/// defines its sign, not its value, and libc's differ (a byte difference on x86_64, ±1 on
/// aarch64).
pub fn memcmp_signs_only(case: &TestCase) -> bool {
    case.functions.iter().all(|f| {
        let results: Vec<Value> = insts(f)
            .filter(|&i| super::memory_libcall(f, i) == Some(LibCall::Memcmp))
            .flat_map(|i| f.dfg.inst_results(i).iter().copied())
            .collect();
        results.is_empty()
            || insts(f).all(|i| {
                let compares_with_zero = match f.dfg.insts[i] {
                    InstructionData::IntCompare {
                        opcode: Opcode::Icmp,
                        args: [x, y],
                        ..
                    } => [x, y].iter().any(|&v| int_range(f, v) == Some((0, 0))),
                    _ => false,
                };
                compares_with_zero
                    || f.dfg
                        .inst_values(i)
                        .all(|v| !results.contains(&f.dfg.resolve_aliases(v)))
            })
    })
}

/// Which promise of its memory flags the access `inst` (of `n` bytes at `off` from `p`) breaks.
fn broken_promise(
    case: &TestCase,
    f: &Function,
    inst: Inst,
    flags: &cranelift_codegen::ir::MemFlagsData,
    p: Ptr,
    off: i64,
    n: i64,
) -> Option<String> {
    let data = match p.base {
        Base::Data(d) => Some(&case.data[d]),
        _ => None,
    };
    if flags.readonly() || flags.can_move() {
        let immutable = data.is_some_and(|d| !d.writable)
            || (loaded_pointer(case, f, inst).is_some() && data.is_some());
        if !immutable {
            return Some("`readonly`/`can_move` on memory that may be written".into());
        }
    }
    if flags.aligned() {
        let at = p.lo + off;
        // A byte is aligned anywhere.
        let provable = n == 1
            || data.is_some_and(|d| p.lo == p.hi && at % n == 0 && (d.align as i64) % n == 0);
        if !provable {
            return Some("`aligned` where alignment is not known in every engine".into());
        }
    }
    if flags.alias_region().is_some() && !matches!(p.base, Base::Slot(_)) {
        return Some("an alias region on memory other pointers may reach".into());
    }
    None
}

/// True when, in every function, every byte of every stack slot is stored in the entry block
/// (or the straight line of blocks it jumps through, as an inlined call leaves them) through a
/// `stack_addr` of that slot before the slot's address is used any other way.
pub fn slots_initialized(funcs: &[Function]) -> bool {
    funcs.iter().all(function_initializes_slots)
}

/// The instructions of `entry` and of the blocks it reaches by unconditional jumps to blocks
/// nothing else branches to: code that runs once, in order, before anything else.
fn straight_line(f: &Function, entry: cranelift_codegen::ir::Block) -> Vec<Inst> {
    let mut preds: HashMap<cranelift_codegen::ir::Block, usize> = HashMap::new();
    for inst in insts(f) {
        for dest in
            f.dfg.insts[inst].branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables)
        {
            *preds.entry(dest.block(&f.dfg.value_lists)).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    let mut block = entry;
    let mut seen = vec![entry];
    loop {
        out.extend(f.layout.block_insts(block));
        let Some(last) = f.layout.last_inst(block) else {
            break;
        };
        let next = match f.dfg.insts[last] {
            InstructionData::Jump { destination, .. } => destination.block(&f.dfg.value_lists),
            _ => break,
        };
        if preds.get(&next) != Some(&1) || seen.contains(&next) {
            break;
        }
        seen.push(next);
        block = next;
    }
    out
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
    for inst in straight_line(f, entry) {
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

    fn init(text: &str) -> bool {
        slots_initialized(&parse_functions(text).unwrap())
    }

    fn case(body: &str) -> TestCase {
        TestCase::parse(&format!("test run\ntarget x86_64\n\n{body}")).unwrap()
    }

    /// A function with two 16-byte slots, both filled, calling `libcall` (`sig`) with `args`
    /// (`a0` and `a4` are pointers to byte 0 and byte 4 of `ss0`, `b0` to byte 0 of `ss1`) and
    /// returning `ret` (an i8).
    fn libcall_case(libcall: &str, sig: &str, args: &str, then: &str) -> TestCase {
        case(&format!(
            "function %f(i64) -> i8 {{
                ss0 = explicit_slot 16
                ss1 = explicit_slot 16
                sig0 = {sig} system_v
                fn0 = %{libcall} sig0
            block0(v0: i64):
                v1 = stack_addr.i64 ss0
                store notrap v0, v1
                store notrap v0, v1+8
                v2 = stack_addr.i64 ss1
                store notrap v0, v2
                store notrap v0, v2+8
                v3 = stack_addr.i64 ss0+4
                v4 = iconst.i64 8
                v5 = iconst.i64 13
                v6 = iconst.i32 0
                v7 = call fn0({args})
                {then}
            }}
            ; run: %f(1) == 0\n"
        ))
    }

    const COPY: &str = "(i64, i64, i64) -> i64";
    const CMP: &str = "(i64, i64, i64) -> i32";

    #[test]
    fn memory_libcalls_are_accesses_of_their_length() {
        let ok = "v8 = load.i8 notrap v1\n return v8";
        // 8 bytes from byte 0 of ss1 to byte 4 of ss0: in bounds, apart.
        assert_eq!(
            first_out_of_bounds(&libcall_case("Memcpy", COPY, "v3, v2, v4", ok)),
            None
        );
        // 13 bytes from byte 4 run past the 16-byte slot.
        let past = first_out_of_bounds(&libcall_case("Memcpy", COPY, "v3, v2, v5", ok)).unwrap();
        assert!(past.contains("bytes 4..17 of a 16-byte region"), "{past}");
        // Within one slot, overlapping: `memmove` may, `memcpy` may not.
        let overlap = libcall_case("Memcpy", COPY, "v3, v1, v4", ok);
        let e = first_out_of_bounds(&overlap).unwrap();
        assert!(e.contains("may overlap"), "{e}");
        assert_eq!(
            first_out_of_bounds(&libcall_case("Memmove", COPY, "v3, v1, v4", ok)),
            None
        );
        // A length the analysis cannot know is no bound at all.
        let unknown = libcall_case("Memset", "(i64, i32, i64) -> i64", "v1, v6, v0", ok);
        let e = first_out_of_bounds(&unknown).unwrap();
        assert!(e.contains("length not a known constant"), "{e}");
    }

    #[test]
    fn memcmp_results_may_only_be_compared_with_zero() {
        let signed = libcall_case(
            "Memcmp",
            CMP,
            "v1, v2, v4",
            "v8 = icmp slt v7, v6\n return v8",
        );
        assert!(memcmp_signs_only(&signed));
        assert_eq!(first_out_of_bounds(&signed), None);
        // The value itself (a byte difference from glibc on x86_64, ±1 on aarch64) is not defined.
        let value = libcall_case(
            "Memcmp",
            CMP,
            "v1, v2, v4",
            "v8 = ireduce.i8 v7\n return v8",
        );
        assert!(!memcmp_signs_only(&value));
        let against_one = libcall_case(
            "Memcmp",
            CMP,
            "v1, v2, v4",
            "v9 = iconst.i32 1\n v8 = icmp slt v7, v9\n return v8",
        );
        assert!(!memcmp_signs_only(&against_one));
    }

    #[test]
    fn the_pointer_memcpy_returns_is_an_address() {
        let ok = "v8 = load.i8 notrap v1\n return v8";
        let c = libcall_case("Memcpy", COPY, "v3, v2, v4", ok);
        assert!(crate::facts::addresses::addresses_unobserved(&c));
        let observed = libcall_case(
            "Memcpy",
            COPY,
            "v3, v2, v4",
            "v8 = ireduce.i8 v7\n return v8",
        );
        assert!(!crate::facts::addresses::addresses_unobserved(&observed));
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
        assert!(init(covered));
        assert!(!init(&covered.replace("istore8 notrap v2, v0+2", "nop")));
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
        assert!(!init(early));
    }

    #[test]
    fn the_reduced_uninitialised_read_is_rejected() {
        // What a reduction once drifted into: a load from a slot nobody stored to.
        assert!(!init(
            "function %main() -> i8 fast {
                ss0 = explicit_slot 32
            block0:
                v0 = stack_addr.i64 ss0
                v1 = load.i8 notrap v0
                return v1
            }"
        ));
    }

    const CALLER: &str = "function %g(i64, i64 sarg(16)) -> i64 system_v {
block0(v0: i64, v1: i64):
    v2 = load.i64 notrap v0+8
    v3 = load.i64 notrap v1+8
    v4 = iadd v2, v3
    return v4
}

function %main(i64) -> i64 system_v {
    ss0 = explicit_slot 24
    sig0 = (i64, i64 sarg(16)) -> i64 system_v
    fn0 = colocated %g sig0
block0(v0: i64):
    v1 = stack_addr.i64 ss0
    store notrap v0, v1
    store notrap v0, v1+8
    store notrap v0, v1+16
    v2 = iconst.i64 7
    v3 = band v0, v2
    v4 = iadd v1, v3
    v5 = load.i8 notrap v4+16
    v6 = stack_addr.i64 ss0+8
    v7 = call fn0(v1, v6)
    return v7
}
; print: %main(3)
";

    #[test]
    fn accesses_are_traced_through_offsets_masks_and_calls() {
        let c = case(CALLER);
        assert_eq!(first_out_of_bounds(&c), None);
        // The masked index may reach byte 23 + 1: one more and it leaves the slot.
        let c = case(&CALLER.replace("v5 = load.i8 notrap v4+16", "v5 = load.i16 notrap v4+16"));
        assert!(first_out_of_bounds(&c).unwrap().contains("24-byte"));
        // A pointer parameter is as large as the room its callers pass: 24 - 0 here, so +8..16
        // fits; passing `ss0+16` leaves 8 bytes and the callee's read of bytes 8..16 does not.
        let c = case(&CALLER.replace(
            "v7 = call fn0(v1, v6)",
            "v8 = stack_addr.i64 ss0+16\n    v7 = call fn0(v8, v6)",
        ));
        assert!(!accesses_in_bounds(&c));
        // The `sarg` copy reads 16 bytes at the pointer: from ss0+16 that is past the end.
        let c = case(&CALLER.replace("v6 = stack_addr.i64 ss0+8", "v6 = stack_addr.i64 ss0+16"));
        assert!(!accesses_in_bounds(&c));
        // An address from nowhere.
        let c = case(&CALLER.replace("v4 = iadd v1, v3", "v4 = iconst.i64 4096"));
        assert!(first_out_of_bounds(&c).unwrap().contains("untraceable"));
    }

    /// A module with a stack slot, a read-only and a writable data object and a pointer
    /// parameter, with `body` in the function that has them.
    fn flagged(body: &str) -> TestCase {
        let text = format!(
            "; clif-diff: data = %ro readonly align=8 bytes=00112233445566778899aabbccddeeff
; clif-diff: data = %rw writable align=4 bytes=0011223344556677
test run
target x86_64

function %f(i64) -> i64 system_v {{
    ss0 = explicit_slot 16, align = 16
    region0 = 1 \"a\"
    region1 = 2 \"b\"
    gv0 = symbol colocated %ro
    gv1 = symbol colocated %rw
block0(v0: i64):
    v1 = stack_addr.i64 ss0
    store v0, v1
    store v0, v1+8
    v2 = symbol_value.i64 gv0
    v3 = symbol_value.i64 gv1
{body}
}}
; run: %f(1) == 0
"
        );
        TestCase::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn memory_flags_the_generator_gives_are_kept() {
        let c = flagged(
            "    store region0 v0, v1
    v4 = load.i64 region0 v1+8
    v5 = load.i64 readonly can_move aligned v2+8
    v6 = load.i32 aligned v3+4
    v7 = uextend.i64 v6
    v8 = iadd v4, v5
    v9 = iadd v8, v7
    v10 = uload8.i64 aligned v1+3
    v11 = iadd v9, v10
    return v11",
        );
        assert_eq!(first_out_of_bounds(&c), None);
    }

    #[test]
    fn broken_memory_flag_promises_are_undefined() {
        for (body, why) in [
            // The slot may be written: not read-only.
            (
                "    v4 = load.i64 readonly v1\n    return v4",
                "may be written",
            ),
            (
                "    v4 = load.i64 can_move v3\n    return v4",
                "may be written",
            ),
            // Stack slots are packed in the interpreter; a misaligned offset in data.
            ("    v4 = load.i64 aligned v1+8\n    return v4", "`aligned`"),
            ("    v4 = load.i32 aligned v2+2\n    return v4", "`aligned`"),
            // 8 bytes in an object aligned to 4.
            ("    v4 = load.i64 aligned v3\n    return v4", "`aligned`"),
            // A data object is reachable through other pointers; so is a parameter's memory.
            (
                "    v4 = load.i64 region0 v2\n    return v4",
                "other pointers",
            ),
            (
                "    v4 = load.i64 region0 v1\n    v5 = load.i64 region1 v1+8\n    return v5",
                "two alias regions",
            ),
        ] {
            let c = flagged(body);
            let e = first_out_of_bounds(&c).unwrap_or_else(|| panic!("accepted:\n{c}"));
            assert!(e.contains(why), "{body}: {e}");
        }
    }
}
