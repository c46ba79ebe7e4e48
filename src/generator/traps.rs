//! Traps as a feature: in a share of cases (`Config::traps`), instructions that trap on some
//! inputs, so trap codes are compared across engines — the interpreter's, the JIT's signal
//! handler's, and the object driver's PC-to-trap-code mapping on every ISA.
//!
//! * `trapz` of a value, `trapnz` of its equality with an edge constant (0, 1, -1): run-line
//!   inputs sit on those edges often, so these fire on some lines and not on others;
//! * `uadd_overflow_trap` (i32, i64);
//! * the trapping float-to-int conversions (`fcvt_to_sint`/`fcvt_to_uint`: NaN is `bad_toint`,
//!   out of range `int_ovf`);
//! * divisions left unguarded now and then (`int_divz`, and `int_ovf` for `MIN / -1`).
//!
//! User trap codes are drawn from 1..=9, so a trap at the wrong place shows as another code.
//! A trap ends the run line, which is fine: every engine must end it the same way.

use super::body::FuncGen;
use arbitrary::Result;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, TrapCode, Type, types};

impl FuncGen<'_, '_> {
    /// Whether this function's case has traps as a feature.
    pub fn has_traps(&self) -> bool {
        self.plan.traps
    }

    /// Whether a division's guard is left out this time.
    pub fn unguarded_division(&mut self) -> Result<bool> {
        Ok(self.has_traps() && self.u.ratio(1, 8)?)
    }

    /// Integer types of at most 64 bits that the config allows.
    fn narrow_ints(&self) -> Vec<Type> {
        self.int_types()
            .into_iter()
            .filter(|t| t.bits() <= 64)
            .collect()
    }

    /// One instruction that may trap.
    pub fn trap_op(&mut self) -> Result<()> {
        let code = TrapCode::unwrap_user(self.u.int_in_range(1..=9)?);
        let ints = self.narrow_ints();
        let wide: Vec<Type> = ints
            .iter()
            .copied()
            .filter(|t| *t == types::I32 || *t == types::I64)
            .collect();
        let floats = self.float_types();
        match self.u.int_in_range(0..=3)? {
            2 if !wide.is_empty() => {
                let ty = *self.u.choose(&wide)?;
                let a = self.value(ty)?;
                let b = self.value(ty)?;
                let r = self.ins().uadd_overflow_trap(a, b, code);
                self.add(r);
            }
            3 if !wide.is_empty() && !floats.is_empty() => {
                let to = *self.u.choose(&wide)?;
                let from = *self.u.choose(&floats)?;
                let x = self.value(from)?;
                let r = if self.u.ratio(1, 2)? {
                    self.ins().fcvt_to_sint(to, x)
                } else {
                    self.ins().fcvt_to_uint(to, x)
                };
                self.add(r);
            }
            1 => {
                let ty = *self.u.choose(&ints)?;
                let v = self.value(ty)?;
                let edge = *self.u.choose(&[0i64, 1, -1])?;
                let mask = if ty.bits() == 64 {
                    u64::MAX
                } else {
                    (1u64 << ty.bits()) - 1
                };
                let k = self.ins().iconst(ty, (edge as u64 & mask) as i64);
                let c = self.ins().icmp(IntCC::Equal, v, k);
                self.ins().trapnz(c, code);
            }
            _ => {
                let ty = *self.u.choose(&ints)?;
                let v = self.value(ty)?;
                self.ins().trapz(v, code);
            }
        }
        Ok(())
    }
}
