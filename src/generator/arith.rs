//! Arithmetic, logic, comparisons and selects over the value pool.
//!
//! Division is guarded so it does not trap (unless the case has traps as a feature, see `traps`):
//! a zero divisor becomes one, and so does `-1` when the dividend is the type's minimum. `fcopysign` gets a canonical NaN as its sign source, since a
//! NaN's sign is not specified.

use super::body::FuncGen;
use super::ops::{self, FLOAT_OPS, INT_OPS, Shape};
use super::weighted;
use arbitrary::Result;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Opcode, Value};

impl FuncGen<'_, '_> {
    /// One arithmetic, logic, comparison, conversion or memory instruction.
    pub fn instruction(&mut self) -> Result<()> {
        let has_floats = !self.float_types().is_empty();
        let weights = [
            10,                                               // integer op
            if has_floats { 4 } else { 0 },                   // float op
            3,                                                // compare
            2,                                                // select
            3,                                                // conversion
            4,                                                // memory
            if self.has_simd() { 4 } else { 0 },              // vector op
            if self.has_traps() { 1 } else { 0 },             // may trap
            if self.has_explicit_libcalls() { 1 } else { 0 }, // libcall
        ];
        match weighted(self.u, &weights)? {
            0 => self.int_op(),
            1 => self.float_op(),
            2 => self.compare(),
            3 => self.select(),
            4 => {
                let ty = self.any_type()?;
                if let Some(v) = self.convert_to(ty)? {
                    self.add(v);
                }
                Ok(())
            }
            5 => self.memory_op(),
            6 => self.vector_op(),
            7 => self.trap_op(),
            _ => self.libcall_op(),
        }
    }

    pub fn int_op(&mut self) -> Result<()> {
        let ty = self.int_type()?;
        let ops: Vec<(Opcode, Shape)> = INT_OPS
            .iter()
            .copied()
            .filter(|&(op, _)| ops::supports(self.cfg, self.arch, self.isa_flags, op, ty))
            .collect();
        let (op, shape) = *self.u.choose(&ops)?;
        match shape {
            Shape::Binary => {
                let a = self.value(ty)?;
                let b = self.value(ty)?;
                let (inst, dfg) = self.ins().Binary(op, ty, a, b);
                let v = dfg.first_result(inst);
                self.add(v);
            }
            Shape::Shift => {
                let a = self.value(ty)?;
                let amt_ty = self.int_type()?;
                let b = self.value(amt_ty)?;
                let (inst, dfg) = self.ins().Binary(op, ty, a, b);
                let v = dfg.first_result(inst);
                self.add(v);
            }
            Shape::Unary => {
                let a = self.value(ty)?;
                let (inst, dfg) = self.ins().Unary(op, ty, a);
                let v = dfg.first_result(inst);
                self.add(v);
            }
            Shape::Div => {
                let n = self.value(ty)?;
                let d = self.value(ty)?;
                let signed = matches!(op, Opcode::Sdiv | Opcode::Srem);
                let d = self.guard_divisor(n, d, signed)?;
                let (inst, dfg) = self.ins().Binary(op, ty, n, d);
                let v = dfg.first_result(inst);
                self.add(v);
            }
            Shape::Overflow => {
                let a = self.value(ty)?;
                let b = self.value(ty)?;
                let (inst, dfg) = self.ins().Binary(op, ty, a, b);
                let rs = dfg.inst_results(inst).to_vec();
                for r in rs {
                    self.add(r);
                }
            }
            Shape::Fma => unreachable!("no integer fma"),
        }
        if self.u.ratio(1, 8)? {
            // `bmask` turns any integer into an all-ones/all-zeros mask of any width.
            let src_ty = self.int_type()?;
            let src = self.value(src_ty)?;
            let v = self.ins().bmask(ty, src);
            self.add(v);
        }
        Ok(())
    }

    /// Replaces a zero divisor by one, and for signed division also `-1` when the dividend is
    /// the minimum (whose quotient overflows): no division traps.
    fn guard_divisor(&mut self, n: Value, d: Value, signed: bool) -> Result<Value> {
        if self.unguarded_division()? {
            return Ok(d);
        }
        let ty = self.ty(d);
        let one = self.ins().iconst(ty, 1);
        let d = if self.u.ratio(1, 4)? && !signed {
            self.ins().bor(d, one)
        } else {
            let zero = self.ins().iconst(ty, 0);
            let is_zero = self.ins().icmp(IntCC::Equal, d, zero);
            self.ins().select(is_zero, one, d)
        };
        if !signed {
            return Ok(d);
        }
        let min = 1i64.wrapping_shl(ty.bits() - 1);
        let mask = if ty.bits() == 64 {
            u64::MAX
        } else {
            (1u64 << ty.bits()) - 1
        };
        let min = self.ins().iconst(ty, (min as u64 & mask) as i64);
        let minus_one = self.ins().iconst(ty, mask as i64);
        let is_m1 = self.ins().icmp(IntCC::Equal, d, minus_one);
        let is_min = self.ins().icmp(IntCC::Equal, n, min);
        let both = self.ins().band(is_m1, is_min);
        Ok(self.ins().select(both, one, d))
    }

    fn float_op(&mut self) -> Result<()> {
        let fts = self.float_types();
        let ty = *self.u.choose(&fts)?;
        let ops: Vec<(Opcode, Shape)> = FLOAT_OPS
            .iter()
            .copied()
            .filter(|&(op, _)| ops::supports(self.cfg, self.arch, self.isa_flags, op, ty))
            .collect();
        let (op, shape) = *self.u.choose(&ops)?;
        let v = match shape {
            Shape::Binary => {
                let a = self.value(ty)?;
                let mut b = self.value(ty)?;
                if op == Opcode::Fcopysign {
                    // The sign of a NaN is not specified; copying it would make it observable.
                    b = self.canon(b)?;
                }
                let (inst, dfg) = self.ins().Binary(op, ty, a, b);
                dfg.first_result(inst)
            }
            Shape::Unary => {
                let a = self.value(ty)?;
                let (inst, dfg) = self.ins().Unary(op, ty, a);
                dfg.first_result(inst)
            }
            Shape::Fma => {
                let a = self.value(ty)?;
                let b = self.value(ty)?;
                let c = self.value(ty)?;
                self.ins().fma(a, b, c)
            }
            _ => unreachable!("float ops are binary, unary or fma"),
        };
        self.add(v);
        Ok(())
    }

    fn compare(&mut self) -> Result<()> {
        let fts = self.float_types();
        let v = if !fts.is_empty() && self.u.ratio(1, 3)? {
            let ty = *self.u.choose(&fts)?;
            let a = self.value(ty)?;
            let b = self.value(ty)?;
            let cc = *self.u.choose(FLOAT_CCS)?;
            self.ins().fcmp(cc, a, b)
        } else {
            let ty = self.int_type()?;
            let a = self.value(ty)?;
            let b = self.value(ty)?;
            let cc = *self.u.choose(INT_CCS)?;
            self.ins().icmp(cc, a, b)
        };
        self.add(v);
        Ok(())
    }

    fn select(&mut self) -> Result<()> {
        let ty = self.any_type()?;
        let cty = self.int_type()?;
        let c = self.value(cty)?;
        let a = self.value(ty)?;
        let b = self.value(ty)?;
        let v = if self.u.ratio(1, 6)? {
            self.ins().select_spectre_guard(c, a, b)
        } else {
            self.ins().select(c, a, b)
        };
        self.add(v);
        Ok(())
    }
}
pub const INT_CCS: &[IntCC] = &[
    IntCC::Equal,
    IntCC::NotEqual,
    IntCC::SignedLessThan,
    IntCC::SignedGreaterThanOrEqual,
    IntCC::SignedGreaterThan,
    IntCC::SignedLessThanOrEqual,
    IntCC::UnsignedLessThan,
    IntCC::UnsignedGreaterThanOrEqual,
    IntCC::UnsignedGreaterThan,
    IntCC::UnsignedLessThanOrEqual,
];

pub const FLOAT_CCS: &[FloatCC] = &[
    FloatCC::Ordered,
    FloatCC::Unordered,
    FloatCC::Equal,
    FloatCC::NotEqual,
    FloatCC::OrderedNotEqual,
    FloatCC::UnorderedOrEqual,
    FloatCC::LessThan,
    FloatCC::LessThanOrEqual,
    FloatCC::GreaterThan,
    FloatCC::GreaterThanOrEqual,
    FloatCC::UnorderedOrLessThan,
    FloatCC::UnorderedOrLessThanOrEqual,
    FloatCC::UnorderedOrGreaterThan,
    FloatCC::UnorderedOrGreaterThanOrEqual,
];
