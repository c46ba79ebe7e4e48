//! `f16` and `f128`: the float types 0.135.8's backends can only move.
//!
//! No backend lowers arithmetic on them (x86_64 and riscv64 refuse it with `Unsupported`,
//! aarch64 and s390x panic: known entries), but every backend passes them in its calling
//! conventions and loads, stores and selects them, and that is code of its own: `f16` in float
//! registers (NaN-boxed on riscv64), `f128` in vector registers (x86_64 with the LLVM ABI
//! extensions, aarch64), in an integer register pair (riscv64) or by reference (s390x).
//!
//! So the generator makes them from integer bits and moves them: as parameters and returns of
//! non-entry functions, through `select` and through memory. The checksum reads them back with
//! `bitcast`, uncanonicalised: since nothing computes on them, no engine may change a bit, NaN
//! payloads included.

use super::body::FuncGen;
use arbitrary::Result;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};

/// The two types, in the order `gen --stats` lists them.
pub const TYPES: [Type; 2] = [types::F16, types::F128];

pub fn is_f16_f128(ty: Type) -> bool {
    TYPES.contains(&ty)
}

/// The integer type with `ty`'s bits.
pub fn bits_type(ty: Type) -> Type {
    Type::int_with_byte_size(ty.bytes() as u16).expect("f16 and f128 have integer twins")
}

impl FuncGen<'_, '_> {
    /// A new `f16` or `f128` value: integer bits reinterpreted, sometimes selected against
    /// another such value, sometimes stored and loaded back.
    pub fn new_f16_f128(&mut self, ty: Type) -> Result<Value> {
        let bits = self.value(bits_type(ty))?;
        let mut v = self.ins().bitcast(ty, MemFlagsData::new(), bits);
        if self.u.ratio(1, 3)? {
            let others = self.visible(ty);
            let other = match others.last() {
                Some(&o) if self.u.ratio(2, 3)? => o,
                _ => {
                    let bits = self.value(bits_type(ty))?;
                    self.ins().bitcast(ty, MemFlagsData::new(), bits)
                }
            };
            let cty = self.int_type()?;
            let c = self.value(cty)?;
            v = self.ins().select(c, v, other);
        }
        if self.u.ratio(1, 3)? {
            v = self.through_memory(v)?;
        }
        Ok(v)
    }

    /// `v` stored to an in-bounds place of a writable region and loaded back (the bytes stay
    /// there, observed with the region), or `v` itself when no region has room.
    fn through_memory(&mut self, v: Value) -> Result<Value> {
        let ty = self.ty(v);
        let fits: Vec<usize> = (0..self.regions.len())
            .filter(|&r| self.regions[r].writable && self.regions[r].size >= ty.bytes())
            .collect();
        if fits.is_empty() {
            return Ok(v);
        }
        let r = *self.u.choose(&fits)?;
        let off = self.u.int_in_range(0..=self.regions[r].size - ty.bytes())?;
        let flags = self.store_flags(r)?;
        let flags = self.maybe_aligned(r, off, ty.bytes(), flags)?;
        let (p, imm) = self.address(r, off)?;
        self.ins().store(flags, v, p, imm);
        // The load may name another byte order: defined, and a different value.
        let flags = self.load_flags(r)?;
        let flags = self.maybe_aligned(r, off, ty.bytes(), flags)?;
        let (p, imm) = self.address(r, off)?;
        Ok(self.ins().load(ty, flags, p, imm))
    }
}
