//! Observability: folding values into the running checksum, and making float bits safe to see.
//!
//! Every function keeps an `i64` checksum of what it computed: its parameters, callee results,
//! the bytes of memory after calls, its stack slots at the end. The checksum leaves the function
//! in an integer return value (or through a pointer, or as an argument of a tail call), so a
//! miscompile anywhere in the module reaches the entry's results.
//!
//! Floats are canonicalised before their bits are observed: Cranelift does not specify NaN
//! payloads or signs, so two correct engines may produce different NaN bits.

use super::body::FuncGen;
use arbitrary::Result;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};

impl FuncGen<'_, '_> {
    /// The canonical quiet NaN of float type `ty` (`f32` or `f64`).
    pub fn canonical_nan(&mut self, ty: Type) -> Value {
        match ty {
            types::F32 => self.ins().f32const(Ieee32::with_bits(0x7fc0_0000)),
            _ => self
                .ins()
                .f64const(Ieee64::with_bits(0x7ff8_0000_0000_0000)),
        }
    }

    /// `v` with every NaN replaced by the positive quiet NaN; other types unchanged.
    pub fn canon(&mut self, v: Value) -> Result<Value> {
        let ty = self.ty(v);
        // `f16` and `f128` are only moved, never computed on: their NaNs keep their bits.
        if !ty.is_float() || super::f16_f128::is_f16_f128(ty) {
            return Ok(v);
        }
        let nan = self.canonical_nan(ty);
        let uno = self.ins().fcmp(FloatCC::Unordered, v, v);
        Ok(self.ins().select(uno, nan, v))
    }

    /// `v` as `i64` words that determine it (floats canonicalised).
    pub fn words(&mut self, v: Value) -> Result<Vec<Value>> {
        let ty = self.ty(v);
        if ty.is_vector() {
            return self.vector_words(v);
        }
        Ok(match ty {
            types::I64 => vec![v],
            types::I128 => {
                let (lo, hi) = self.ins().isplit(v);
                vec![lo, hi]
            }
            types::F16 => {
                let bits = self.ins().bitcast(types::I16, MemFlagsData::new(), v);
                vec![self.ins().uextend(types::I64, bits)]
            }
            types::F128 => {
                let bits = self.ins().bitcast(types::I128, MemFlagsData::new(), v);
                let (lo, hi) = self.ins().isplit(bits);
                vec![lo, hi]
            }
            types::F32 | types::F64 => {
                let c = self.canon(v)?;
                let ity = Type::int(ty.bits() as u16).unwrap();
                let bits = self.ins().bitcast(ity, MemFlagsData::new(), c);
                if ity == types::I64 {
                    vec![bits]
                } else {
                    vec![self.ins().uextend(types::I64, bits)]
                }
            }
            _ => {
                let w = if self.u.ratio(1, 2)? {
                    self.ins().uextend(types::I64, v)
                } else {
                    self.ins().sextend(types::I64, v)
                };
                vec![w]
            }
        })
    }

    /// Folds `v` into the checksum with a step that is a bijection in both inputs, so no
    /// difference in `v` can cancel out.
    pub fn mix(&mut self, v: Value) -> Result<()> {
        for w in self.words(v)? {
            let acc = self.acc;
            self.acc = match self.u.int_in_range(0..=2)? {
                0 => {
                    let r = self.u.int_in_range(1..=63)?;
                    let r = self.ins().iconst(types::I64, r);
                    let rot = self.ins().rotl(acc, r);
                    self.ins().bxor(rot, w)
                }
                1 => {
                    let k = self.u.int_in_range(i64::MIN..=i64::MAX)? | 1;
                    let k = self.ins().iconst(types::I64, k);
                    let m = self.ins().imul(acc, k);
                    self.ins().iadd(m, w)
                }
                _ => {
                    let x = self.ins().bxor(acc, w);
                    let k = self
                        .ins()
                        .iconst(types::I64, 0x9e37_79b9_7f4a_7c15u64 as i64);
                    self.ins().imul(x, k)
                }
            };
        }
        Ok(())
    }

    /// The checksum reduced to integer type `ty`, with every bit of it still mattering.
    pub fn checksum_as(&mut self, ty: Type) -> Result<Value> {
        let acc = self.acc;
        Ok(match ty.bits() {
            128 => {
                let k = self.ins().iconst(types::I64, 29);
                let hi = self.ins().rotl(acc, k);
                self.ins().iconcat(acc, hi)
            }
            64 => acc,
            bits => {
                let mut x = acc;
                let mut width = 64;
                while width > bits {
                    width /= 2;
                    let s = self.ins().iconst(types::I64, width as i64);
                    let hi = self.ins().ushr(x, s);
                    x = self.ins().bxor(x, hi);
                }
                self.ins().ireduce(ty, x)
            }
        })
    }

    /// Mixes the (up to) `n` most recent values of the innermost scope into the checksum: called
    /// before a scope closes, so that what was computed inside cannot be dead code.
    pub fn observe_recent(&mut self, n: usize) -> Result<()> {
        let scope = self.scopes.last().cloned().unwrap_or_default();
        for &v in scope.iter().rev().take(n) {
            self.mix(v)?;
        }
        Ok(())
    }

    /// Mixes up to `n` random values of the pool into the checksum.
    pub fn observe_some(&mut self, n: usize) -> Result<()> {
        let all: Vec<Value> = self.scopes.iter().flatten().copied().collect();
        if all.is_empty() {
            return Ok(());
        }
        for _ in 0..n {
            let v = *self.u.choose(&all)?;
            self.mix(v)?;
        }
        Ok(())
    }
}
