//! Whether integer divisions can trap.
//!
//! The generator guards every `udiv sdiv urem srem`: a zero divisor becomes one (`select` on an
//! `icmp eq d, 0`, or `bor d, 1`), and for signed division so does `-1` when the dividend is the
//! minimum. A reducer that sets the guard's `1` to `0`, or bypasses the `select`, makes a
//! division that traps — on every engine alike, but in a reproducer that no longer shows the
//! bug it came from. [`divisions_guarded`] recognises the guards' shapes.

use super::insts;
use crate::case::TestCase;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Function, InstructionData, Opcode, Value, ValueDef};

/// `a == b` as integers of `bits` bits (immediates of narrow types may be stored either
/// sign- or zero-extended).
fn eq_mod(bits: u32, a: i64, b: i64) -> bool {
    let m = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (a as u64 & m) == (b as u64 & m)
}

fn def(f: &Function, v: Value) -> Option<&InstructionData> {
    match f.dfg.value_def(f.dfg.resolve_aliases(v)) {
        ValueDef::Result(inst, _) => Some(&f.dfg.insts[inst]),
        _ => None,
    }
}

fn constant(f: &Function, v: Value) -> Option<i64> {
    match def(f, v)? {
        InstructionData::UnaryImm {
            opcode: Opcode::Iconst,
            imm,
        } => Some(imm.bits()),
        _ => None,
    }
}

/// The value compared with `icmp eq x, k` for a constant `k` (either operand order).
fn compared_with(f: &Function, cond: Value, k: i64) -> Option<Value> {
    match def(f, cond)? {
        InstructionData::IntCompare {
            opcode: Opcode::Icmp,
            cond: IntCC::Equal,
            args: [a, b],
        } => {
            let bits = f.dfg.value_type(*a).bits();
            let same = |c: i64| eq_mod(bits, c, k);
            if constant(f, *b).is_some_and(same) {
                Some(f.dfg.resolve_aliases(*a))
            } else if constant(f, *a).is_some_and(same) {
                Some(f.dfg.resolve_aliases(*b))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `d` cannot be zero.
fn nonzero(f: &Function, d: Value) -> bool {
    let bits = f.dfg.value_type(d).bits();
    if constant(f, d).is_some_and(|c| !eq_mod(bits, c, 0)) {
        return true;
    }
    match def(f, d) {
        Some(InstructionData::Binary {
            opcode: Opcode::Bor,
            args: [a, b],
        }) => [*a, *b]
            .iter()
            .any(|&x| constant(f, x).is_some_and(|c| c & 1 == 1)),
        // `select (icmp eq x, 0), one, x`, or a select between two non-zero values.
        Some(InstructionData::Ternary {
            opcode: Opcode::Select,
            args: [c, t, e],
        }) => {
            let e = f.dfg.resolve_aliases(*e);
            nonzero(f, *t) && (nonzero(f, e) || compared_with(f, *c, 0) == Some(e))
        }
        _ => false,
    }
}

/// `d` is non-zero and, for a signed division of `n`, not `-1` while `n` is the minimum.
fn safe_divisor(f: &Function, n: Value, d: Value, signed: bool) -> bool {
    if !signed {
        return nonzero(f, d);
    }
    let bits = f.dfg.value_type(d).bits();
    if constant(f, d).is_some_and(|c| !eq_mod(bits, c, 0) && !eq_mod(bits, c, -1)) {
        return true;
    }
    // `select (band (icmp eq d', -1), (icmp eq n, MIN)), one, d'` with `d'` non-zero.
    match def(f, d) {
        Some(InstructionData::Ternary {
            opcode: Opcode::Select,
            args: [c, t, e],
        }) => {
            let e = f.dfg.resolve_aliases(*e);
            let guards_minus_one = match def(f, *c) {
                Some(InstructionData::Binary {
                    opcode: Opcode::Band,
                    args: [x, y],
                }) => {
                    let min = i64::MIN >> (64 - bits.min(64));
                    let n = f.dfg.resolve_aliases(n);
                    let pair = |p: Value, q: Value| {
                        compared_with(f, p, -1) == Some(e) && compared_with(f, q, min) == Some(n)
                    };
                    pair(*x, *y) || pair(*y, *x)
                }
                _ => false,
            };
            guards_minus_one && nonzero(f, *t) && nonzero(f, e)
        }
        _ => false,
    }
}

/// Whether `inst`, an `sdiv` or `srem`, may meet the minimum dividend and a `-1` divisor: neither
/// operand is a constant that rules the pair out, and the divisor is not the generator's guard.
/// (`srem` of that pair is 0 by the instruction's definition; the interpreter traps on it.)
pub fn signed_overflow_possible(f: &Function, inst: cranelift_codegen::ir::Inst) -> bool {
    let InstructionData::Binary {
        opcode: Opcode::Sdiv | Opcode::Srem,
        args: [n, d],
    } = f.dfg.insts[inst]
    else {
        return false;
    };
    let bits = f.dfg.value_type(d).bits();
    let min = i64::MIN >> (64 - bits.min(64));
    let rules_out = |v: Value, k: i64| constant(f, v).is_some_and(|c| !eq_mod(bits, c, k));
    !(rules_out(d, -1) || rules_out(n, min) || safe_divisor(f, n, d, true))
}

/// True when no integer division of the case can trap.
pub fn divisions_guarded(case: &TestCase) -> bool {
    case.functions.iter().all(|f| {
        insts(f).all(|inst| match f.dfg.insts[inst] {
            InstructionData::Binary {
                opcode: op @ (Opcode::Udiv | Opcode::Urem | Opcode::Sdiv | Opcode::Srem),
                args: [n, d],
            } => safe_divisor(f, n, d, matches!(op, Opcode::Sdiv | Opcode::Srem)),
            _ => true,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(body: &str) -> TestCase {
        TestCase::parse(&format!("test run\ntarget x86_64\n\n{body}")).unwrap()
    }

    const GUARDED: &str = "function %f(i32, i32) -> i32, i32 system_v {
block0(v0: i32, v1: i32):
    v2 = iconst.i32 1
    v3 = iconst.i32 0
    v4 = icmp eq v1, v3
    v5 = select v4, v2, v1
    v6 = iconst.i32 0x8000_0000
    v7 = iconst.i32 -1
    v8 = icmp eq v5, v7
    v9 = icmp eq v0, v6
    v10 = band v8, v9
    v11 = select v10, v2, v5
    v12 = sdiv v0, v11
    v13 = bor v1, v2
    v14 = urem v0, v13
    return v12, v14
}
";

    #[test]
    fn the_generators_guards_are_recognised() {
        assert!(divisions_guarded(&case(GUARDED)));
    }

    #[test]
    fn a_broken_guard_is_not() {
        // The reducer set the guard's one to zero.
        let c = case(&GUARDED.replace("v2 = iconst.i32 1", "v2 = iconst.i32 0"));
        assert!(!divisions_guarded(&c));
        // Or bypassed the -1 guard.
        let c = case(&GUARDED.replace("v12 = sdiv v0, v11", "v12 = sdiv v0, v5"));
        assert!(!divisions_guarded(&c));
        // Or divided by a parameter.
        let c = case(&GUARDED.replace("v14 = urem v0, v13", "v14 = urem v0, v1"));
        assert!(!divisions_guarded(&c));
    }
}
