//! 128-bit vectors: lane-wise arithmetic, compares, lane moves, shuffles, widening and
//! narrowing, conversions, reductions to scalars, and vector loads and stores.
//!
//! Vectors live in the value pool like scalars (only ever taken by exact type, never converted
//! from or to scalars by `values`), and are observed by folding both 64-bit halves into the
//! checksum (`observe`), float lanes with NaNs canonicalised first.
//!
//! What each backend lowers: everything here is lowered by x86_64 from its SSE2 baseline up,
//! by aarch64 (NEON), by s390x (vector facility; only in `tail` functions, the one convention
//! with the little-endian lane order the interpreter models), and by riscv64 only with `has_v`
//! (without it no vector type lowers at all, so no case there gets vectors). Forms some backend does not
//! lower are left out rather than filed: `imul.i8x16` (x86_64), `snarrow`/`unarrow` of `i64x2`
//! (x86_64), vector `fcmp`
//! with the unordered-or conditions (x86_64 lowers none, aarch64 panics; known as
//! `aarch64-vector-fcmp-unordered-panic`), conversions between 64-bit lanes and floats.
//! `bitcast` between `i128` and a vector is lowered everywhere, but `cranelift-interpreter`
//! 0.135.8 panics on it in both directions (it converts the scalar as a single lane), so the
//! reference could not say what it should give; bitcasts stay between vector shapes.

use super::arith::INT_CCS;
use super::body::FuncGen;
use super::weighted;
use crate::target::Arch;
use arbitrary::Result;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Opcode, Type, Value, types};
use cranelift_codegen::isa::CallConv;

/// The 128-bit vector types, integer lanes first.
pub const VECTOR_TYPES: [Type; 6] = [
    types::I8X16,
    types::I16X8,
    types::I32X4,
    types::I64X2,
    types::F32X4,
    types::F64X2,
];

const INT_BINARY: [Opcode; 10] = [
    Opcode::Iadd,
    Opcode::Isub,
    Opcode::Imul,
    Opcode::Band,
    Opcode::Bor,
    Opcode::Bxor,
    Opcode::Umin,
    Opcode::Umax,
    Opcode::Smin,
    Opcode::Smax,
];
/// Only on `i8x16` and `i16x8`. (`avg_round` too, but `cranelift-interpreter` 0.135.8 panics
/// on it: `not implemented` in its `DataValue` addition.)
const NARROW_LANE_BINARY: [Opcode; 4] = [
    Opcode::UaddSat,
    Opcode::SaddSat,
    Opcode::UsubSat,
    Opcode::SsubSat,
];
const INT_UNARY: [Opcode; 3] = [Opcode::Ineg, Opcode::Iabs, Opcode::Bnot];
const SHIFTS: [Opcode; 3] = [Opcode::Ishl, Opcode::Ushr, Opcode::Sshr];
const FLOAT_BINARY: [Opcode; 6] = [
    Opcode::Fadd,
    Opcode::Fsub,
    Opcode::Fmul,
    Opcode::Fdiv,
    Opcode::Fmin,
    Opcode::Fmax,
];
const FLOAT_UNARY: [Opcode; 7] = [
    Opcode::Fneg,
    Opcode::Fabs,
    Opcode::Sqrt,
    Opcode::Floor,
    Opcode::Ceil,
    Opcode::Trunc,
    Opcode::Nearest,
];
const FLOAT_CCS: [FloatCC; 6] = [
    FloatCC::Equal,
    FloatCC::NotEqual,
    FloatCC::LessThan,
    FloatCC::LessThanOrEqual,
    FloatCC::GreaterThan,
    FloatCC::GreaterThanOrEqual,
];

/// The vector types whose lane type the config allows (`types`, `floats`).
pub fn vector_types(cfg: &super::Config) -> Vec<Type> {
    let lanes = cfg.types();
    VECTOR_TYPES
        .iter()
        .copied()
        .filter(|t| lanes.contains(&t.lane_type()))
        .collect()
}

/// The integer vector type with `ty`'s lane width (the type of its compare masks).
fn mask_type(ty: Type) -> Type {
    ty.as_int()
}

impl FuncGen<'_, '_> {
    /// Whether this function may use vectors at all.
    pub fn has_simd(&self) -> bool {
        self.cfg.simd
            && match self.arch {
                Arch::Riscv64 => self.isa_flags.split_whitespace().any(|f| f == "has_v"),
                // s390x numbers vector lanes big-endian except in `tail` functions (its
                // `LaneOrder` follows the convention, wasmtime#4682); the interpreter models the
                // little-endian order only, as upstream intends (wasmtime#11232).
                Arch::S390x => self.plan.funcs[self.me].conv == CallConv::Tail,
                _ => true,
            }
    }

    fn vector_types(&self) -> Vec<Type> {
        vector_types(self.cfg)
    }

    /// A vector of type `ty`: mostly one already computed, else a `splat`, a `vconst` or a load.
    pub fn vector(&mut self, ty: Type) -> Result<Value> {
        let cands = self.visible(ty);
        if !cands.is_empty() && self.u.ratio(3, 4)? {
            return Ok(*self.u.choose(&cands)?);
        }
        let v = match weighted(self.u, &[3, 2, 1])? {
            0 => {
                let lane = self.value(ty.lane_type())?;
                self.ins().splat(ty, lane)
            }
            1 => {
                let bytes: Vec<u8> = (0..16)
                    .map(|_| self.u.arbitrary::<u8>())
                    .collect::<Result<_>>()?;
                let c = self.func.dfg.constants.insert(bytes.into());
                self.ins().vconst(ty, c)
            }
            _ => match self.vector_load(ty)? {
                Some(v) => v,
                None => {
                    let lane = self.value(ty.lane_type())?;
                    self.ins().splat(ty, lane)
                }
            },
        };
        self.add(v);
        Ok(v)
    }

    /// Loads a `ty` vector from a region with 16 bytes of room, in the target's byte order.
    fn vector_load(&mut self, ty: Type) -> Result<Option<Value>> {
        let fits: Vec<usize> = (0..self.regions.len())
            .filter(|&r| self.regions[r].size >= 16)
            .collect();
        if fits.is_empty() {
            return Ok(None);
        }
        let r = *self.u.choose(&fits)?;
        let off = self.u.int_in_range(0..=self.regions[r].size - 16)?;
        let (p, imm) = self.address(r, off)?;
        let flags = self.vector_flags().with_alias_region(self.regions[r].alias);
        Ok(Some(self.ins().load(ty, flags, p, imm)))
    }

    /// Flags of vector loads and stores: `little` on big-endian targets. What a native-order
    /// vector access means there is s390x's own (lanes in memory order, each lane big-endian),
    /// which the interpreter, emulating a little-endian layout, does not model (as upstream
    /// intends, wasmtime#11232); the explicit little-endian form means the same to both.
    fn vector_flags(&self) -> MemFlagsData {
        let f = MemFlagsData::new().with_notrap();
        if self.arch.big_endian() {
            f.with_endianness(Endianness::Little)
        } else {
            f
        }
    }

    /// One vector instruction; its result joins the pool (and a scalar it yields, too).
    pub fn vector_op(&mut self) -> Result<()> {
        let tys = self.vector_types();
        let ty = *self.u.choose(&tys)?;
        let float = ty.lane_type().is_float();
        let lanes = ty.lane_count() as u8;
        let small = ty.lane_bits() <= 16;
        let v = match weighted(self.u, &[6, 2, 2, 3, 2, 2, 2, 1, 2, 2])? {
            // lane-wise binary
            0 => {
                let mut ops: Vec<Opcode> = if float {
                    FLOAT_BINARY.to_vec()
                } else if small {
                    INT_BINARY
                        .iter()
                        .chain(&NARROW_LANE_BINARY)
                        .copied()
                        .collect()
                } else {
                    INT_BINARY.to_vec()
                };
                // x86_64 has no byte multiply (an `Unsupported` compile error).
                if self.arch == Arch::X86_64 && ty == types::I8X16 {
                    ops.retain(|&op| op != Opcode::Imul);
                }
                let op = *self.u.choose(&ops)?;
                let a = self.vector(ty)?;
                let b = self.vector(ty)?;
                let (inst, dfg) = self.ins().Binary(op, ty, a, b);
                dfg.first_result(inst)
            }
            // lane-wise unary
            1 => {
                let ops: &[Opcode] = if float { &FLOAT_UNARY } else { &INT_UNARY };
                let op = *self.u.choose(ops)?;
                let a = self.vector(ty)?;
                let (inst, dfg) = self.ins().Unary(op, ty, a);
                dfg.first_result(inst)
            }
            // shift by a scalar
            2 if !float => {
                let op = *self.u.choose(&SHIFTS)?;
                let a = self.vector(ty)?;
                let amt = self.value(types::I32)?;
                let (inst, dfg) = self.ins().Binary(op, ty, a, amt);
                dfg.first_result(inst)
            }
            // compare, and a select by the mask half of the time
            3 => {
                let a = self.vector(ty)?;
                let b = self.vector(ty)?;
                let mask = if float {
                    let cc = *self.u.choose(&FLOAT_CCS)?;
                    self.ins().fcmp(cc, a, b)
                } else {
                    let cc = *self.u.choose(INT_CCS)?;
                    self.ins().icmp(cc, a, b)
                };
                if self.u.ratio(1, 2)? {
                    self.add(mask);
                    let m = if float {
                        self.ins().bitcast(ty, little(), mask)
                    } else {
                        mask
                    };
                    self.ins().bitselect(m, a, b)
                } else {
                    mask
                }
            }
            // lanes: insert, extract, splat
            4 => {
                let a = self.vector(ty)?;
                let idx = self.u.int_in_range(0..=lanes - 1)?;
                if self.u.ratio(1, 2)? {
                    let x = self.ins().extractlane(a, idx);
                    self.add(x);
                    return Ok(());
                }
                let x = self.value(ty.lane_type())?;
                self.ins().insertlane(a, x, idx)
            }
            // reductions to a scalar
            5 => {
                let a = self.vector(mask_type(ty))?;
                let x = match self.u.int_in_range(0..=2)? {
                    0 => self.ins().vall_true(a),
                    1 => self.ins().vany_true(a),
                    _ => {
                        let to = *self.u.choose(&[types::I32, types::I64])?;
                        self.ins().vhigh_bits(to, a)
                    }
                };
                self.add(x);
                return Ok(());
            }
            // byte shuffles
            6 if tys.contains(&types::I8X16) => {
                let a = self.vector(types::I8X16)?;
                let b = self.vector(types::I8X16)?;
                if self.u.ratio(1, 2)? {
                    self.ins().swizzle(a, b)
                } else {
                    let mask: Vec<u8> = (0..16)
                        .map(|_| self.u.int_in_range(0..=31u8))
                        .collect::<Result<_>>()?;
                    let imm = self.func.dfg.immediates.push(mask.into());
                    self.ins().shuffle(a, b, imm)
                }
            }
            // widen and narrow
            7 if [types::I8X16, types::I16X8, types::I32X4]
                .iter()
                .all(|t| tys.contains(t)) =>
            {
                self.widen_or_narrow()?
            }
            // conversions between int and float lanes
            8 if [types::I32X4, types::F32X4, types::F64X2]
                .iter()
                .all(|t| tys.contains(t)) =>
            {
                self.vector_conversion()?
            }
            // store an integer vector (float lanes could hold NaN payloads that differ)
            9 if !float => {
                let a = self.vector(ty)?;
                let fits: Vec<usize> = (0..self.regions.len())
                    .filter(|&r| self.regions[r].size >= 16 && self.regions[r].writable)
                    .collect();
                if !fits.is_empty() {
                    let r = *self.u.choose(&fits)?;
                    let off = self.u.int_in_range(0..=self.regions[r].size - 16)?;
                    let (p, imm) = self.address(r, off)?;
                    let flags = self.vector_flags().with_alias_region(self.regions[r].alias);
                    self.ins().store(flags, a, p, imm);
                }
                return Ok(());
            }
            _ => self.vector(ty)?,
        };
        self.add(v);
        if self.u.ratio(1, 3)? {
            self.mix(v)?;
        }
        Ok(())
    }

    fn widen_or_narrow(&mut self) -> Result<Value> {
        let from = *self.u.choose(&[types::I8X16, types::I16X8, types::I32X4])?;
        let a = self.vector(from)?;
        if self.u.ratio(2, 3)? {
            let op = *self.u.choose(&[
                Opcode::SwidenLow,
                Opcode::SwidenHigh,
                Opcode::UwidenLow,
                Opcode::UwidenHigh,
            ])?;
            // The controlling type is the operand's; the result has twice as wide lanes.
            let (inst, dfg) = self.ins().Unary(op, from, a);
            return Ok(dfg.first_result(inst));
        }
        // Narrowing takes the wider lanes: i16x8 -> i8x16, i32x4 -> i16x8.
        let wide = if from == types::I8X16 {
            types::I16X8
        } else {
            from
        };
        let a = self.vector(wide)?;
        let b = self.vector(wide)?;
        let op = *self.u.choose(&[Opcode::Snarrow, Opcode::Unarrow])?;
        let (inst, dfg) = self.ins().Binary(op, wide, a, b);
        Ok(dfg.first_result(inst))
    }

    fn vector_conversion(&mut self) -> Result<Value> {
        Ok(match self.u.int_in_range(0..=3)? {
            0 => {
                let a = self.vector(types::I32X4)?;
                if self.u.ratio(1, 2)? {
                    self.ins().fcvt_from_sint(types::F32X4, a)
                } else {
                    self.ins().fcvt_from_uint(types::F32X4, a)
                }
            }
            1 => {
                let a = self.vector(types::F32X4)?;
                if self.u.ratio(1, 2)? {
                    self.ins().fcvt_to_sint_sat(types::I32X4, a)
                } else {
                    self.ins().fcvt_to_uint_sat(types::I32X4, a)
                }
            }
            2 => {
                let a = self.vector(types::F32X4)?;
                self.ins().fvpromote_low(a)
            }
            _ => {
                let a = self.vector(types::F64X2)?;
                self.ins().fvdemote(a)
            }
        })
    }

    /// The two 64-bit halves of vector `v`, float lanes with NaNs made canonical first (their
    /// payloads and signs are not specified).
    pub fn vector_words(&mut self, v: Value) -> Result<Vec<Value>> {
        let ty = self.ty(v);
        let v = if ty.lane_type().is_float() {
            let nan = self.canonical_nan(ty.lane_type());
            let nans = self.ins().splat(ty, nan);
            let uno = self.ins().fcmp(FloatCC::Unordered, v, v);
            let m = self.ins().bitcast(ty, little(), uno);
            self.ins().bitselect(m, nans, v)
        } else {
            v
        };
        let halves = if ty == types::I64X2 {
            v
        } else {
            self.ins().bitcast(types::I64X2, little(), v)
        };
        Ok((0..2).map(|i| self.ins().extractlane(halves, i)).collect())
    }
}

/// Byte order for bitcasts between vector shapes: lane order must not depend on the target.
fn little() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}
