//! New values: edge-biased constants and conversions between types.
//!
//! Constants and run-line inputs share the same distributions (`int_bits`, `float_bits*`): zero,
//! ±1, the type's limits, powers of two, small numbers, conversion boundaries, NaN, ±inf and
//! subnormals come up far more often than uniformly random bits would give them.

use super::body::FuncGen;
use super::ops;
use super::weighted;
use arbitrary::{Result, Unstructured};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};

impl FuncGen<'_, '_> {
    pub fn constant(&mut self, ty: Type) -> Result<Value> {
        Ok(match ty {
            types::F32 => {
                let bits = float_bits32(self.u)?;
                self.ins().f32const(Ieee32::with_bits(bits))
            }
            types::F64 => {
                let bits = float_bits64(self.u)?;
                self.ins().f64const(Ieee64::with_bits(bits))
            }
            types::I128 => {
                if self.u.ratio(1, 2)? {
                    let x = int_bits(self.u, 64)?;
                    let lo = self.ins().iconst(types::I64, x as i64);
                    if self.u.ratio(1, 2)? {
                        self.ins().sextend(types::I128, lo)
                    } else {
                        self.ins().uextend(types::I128, lo)
                    }
                } else {
                    let lo = int_bits(self.u, 64)?;
                    let hi = int_bits(self.u, 64)?;
                    let lo = self.ins().iconst(types::I64, lo as i64);
                    let hi = self.ins().iconst(types::I64, hi as i64);
                    self.ins().iconcat(lo, hi)
                }
            }
            _ => {
                let x = int_bits(self.u, ty.bits())?;
                // `iconst` wants the value zero-extended from the type's width.
                let mask = if ty.bits() == 64 {
                    u64::MAX
                } else {
                    (1u64 << ty.bits()) - 1
                };
                self.ins().iconst(ty, (x as u64 & mask) as i64)
            }
        })
    }

    /// Converts some available value of another type into `ty`, if there is a way.
    pub fn convert_to(&mut self, ty: Type) -> Result<Option<Value>> {
        let others: Vec<Value> = self
            .scopes
            .iter()
            .flatten()
            .copied()
            .filter(|&v| {
                let t = self.ty(v);
                t != ty && !t.is_vector() && !super::f16_f128::is_f16_f128(t)
            })
            .collect();
        if others.is_empty() {
            return Ok(None);
        }
        let src = *self.u.choose(&others)?;
        let from = self.ty(src);
        let v = match (from.is_int(), ty.is_int()) {
            (true, true) => {
                if from == types::I64 && ty == types::I128 && self.u.ratio(1, 3)? {
                    let hi = self.value(types::I64)?;
                    self.ins().iconcat(src, hi)
                } else if from == types::I128 && ty == types::I64 && self.u.ratio(1, 3)? {
                    let (lo, hi) = self.ins().isplit(src);
                    self.add(lo);
                    self.add(hi);
                    if self.u.ratio(1, 2)? { lo } else { hi }
                } else if from.bits() > ty.bits() {
                    self.ins().ireduce(ty, src)
                } else if self.u.ratio(1, 2)? {
                    self.ins().uextend(ty, src)
                } else {
                    self.ins().sextend(ty, src)
                }
            }
            (true, false) => {
                if !ops::converts_from_int(from) {
                    return Ok(None);
                }
                if from.bits() == ty.bits() && self.u.ratio(1, 4)? {
                    // Integer bits to a float: any payload is fine, it is canonicalised before
                    // its bits are observed again.
                    self.ins().bitcast(ty, MemFlagsData::new(), src)
                } else if self.u.ratio(1, 2)? {
                    self.ins().fcvt_from_sint(ty, src)
                } else {
                    self.ins().fcvt_from_uint(ty, src)
                }
            }
            (false, true) => {
                if from.bits() == ty.bits() && self.u.ratio(1, 4)? {
                    let c = self.canon(src)?;
                    self.ins().bitcast(ty, MemFlagsData::new(), c)
                } else if !ops::converts_to_int(ty) {
                    return Ok(None);
                } else if self.u.ratio(1, 2)? {
                    self.ins().fcvt_to_sint_sat(ty, src)
                } else {
                    self.ins().fcvt_to_uint_sat(ty, src)
                }
            }
            (false, false) => {
                if from.bits() < ty.bits() {
                    self.ins().fpromote(ty, src)
                } else {
                    self.ins().fdemote(ty, src)
                }
            }
        };
        Ok(Some(v))
    }
}

/// Integer bits of width `bits` (≤ 64), sign-extended: edge values are likely.
pub fn int_bits(u: &mut Unstructured, bits: u32) -> Result<i64> {
    let shift = 64 - bits;
    let x: i64 = match weighted(u, &[2, 2, 2, 1, 1, 2, 2, 3])? {
        0 => 0,
        1 => 1,
        2 => -1,
        3 => i64::MIN >> shift, // the type's minimum
        4 => i64::MAX >> shift, // the type's maximum
        5 => 1i64 << u.int_in_range(0..=bits - 1)?,
        6 => u.int_in_range(-16..=16)?,
        _ => u.int_in_range(i64::MIN..=i64::MAX)?,
    };
    // Truncate to the width, then sign-extend back, so the value is in the type's range.
    Ok((x << shift) >> shift)
}

pub fn float_bits32(u: &mut Unstructured) -> Result<u32> {
    let special: &[f32] = &[
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        -3.75,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        2147483648.0,
        -2147483904.0,
        4294967296.0,
        9.223372e18,
        1.8446744e19,
        255.5,
        -128.5,
        65535.9,
    ];
    Ok(match weighted(u, &[6, 1, 2])? {
        0 => u.choose(special)?.to_bits(),
        1 => 1, // the smallest subnormal
        _ => u.int_in_range(0..=u32::MAX)?,
    })
}

pub fn float_bits64(u: &mut Unstructured) -> Result<u64> {
    let special: &[f64] = &[
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        -3.75,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        2147483648.0,
        -2147483649.0,
        4294967296.0,
        9.223_372_036_854_776e18,
        -9.223372036854777e18,
        1.8446744073709552e19,
        255.5,
        -128.5,
        65535.9,
        1e300,
    ];
    Ok(match weighted(u, &[6, 1, 2])? {
        0 => u.choose(special)?.to_bits(),
        1 => 1,
        _ => u.int_in_range(0..=u64::MAX)?,
    })
}
