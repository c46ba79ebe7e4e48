//! One function body: the generator's state while it writes a function, the pool of values it
//! may use, and the arithmetic it emits.
//!
//! The body is built straight into an `ir::Function` through a cursor that always appends to the
//! current block. Control flow is structured (see `control`), so which values are usable is a
//! stack of scopes: a region's entry dominates everything inside it, and what a region produces
//! leaves it only through block parameters.
//!
//! Pointers (stack addresses, `sarg` and pointer parameters) never enter the pool: an address is
//! an encoded handle in the interpreter and a real address natively, so it must never reach a
//! result. They live in `regions` and are only used to address memory.

use super::config::Config;
use super::ops::{self, FLOAT_OPS, INT_OPS, Shape};
use super::signature::{Param, Plan};
use super::weighted;
use crate::target::Arch;
use arbitrary::{Result, Unstructured};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{
    Block, DataFlowGraph, FuncRef, Function, InsertBuilder, Inst, InstBuilder, InstInserterBase,
    MemFlagsData, Opcode, SigRef, StackSlot, Type, UserFuncName, Value, types,
};

/// Appends instructions to the end of one block.
pub struct Appender<'f> {
    func: &'f mut Function,
    block: Block,
}

impl<'f> InstInserterBase<'f> for Appender<'f> {
    fn data_flow_graph(&self) -> &DataFlowGraph {
        &self.func.dfg
    }

    fn data_flow_graph_mut(&mut self) -> &mut DataFlowGraph {
        &mut self.func.dfg
    }

    fn insert_built_inst(self, inst: Inst) -> &'f mut DataFlowGraph {
        self.func.layout.append_inst(inst, self.block);
        &mut self.func.dfg
    }

    fn insert_aux_inst(&mut self, inst: Inst) {
        self.func.layout.append_inst(inst, self.block);
    }
}

/// Memory a function may read and write.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub base: Base,
    pub size: u32,
    pub kind: RegionKind,
}

#[derive(Clone, Copy, Debug)]
pub enum Base {
    Slot(StackSlot),
    /// A pointer parameter (defined in the entry block, so it dominates every use).
    Ptr(Value),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Slot,
    /// The callee's private `sarg` copy.
    Sarg,
    /// The caller's memory.
    Ptr,
}

pub struct FuncGen<'a, 'u> {
    pub u: &'a mut Unstructured<'u>,
    pub cfg: &'a Config,
    pub plan: &'a Plan,
    pub arch: Arch,
    /// ISA flags of the case's `target` line.
    pub isa_flags: &'a str,
    /// Index of the function being generated.
    pub me: usize,
    /// Estimated dynamic cost of each function generated so far (all callees of this one).
    pub costs: &'a [u64],
    pub types: Vec<Type>,
    pub func: Function,
    /// Where instructions are appended.
    pub block: Block,
    pub scopes: Vec<Vec<Value>>,
    pub regions: Vec<Region>,
    /// Running checksum (`i64`) of everything observed so far.
    pub acc: Value,
    pub insts_left: usize,
    pub blocks_left: usize,
    pub calls_left: usize,
    /// Product of the trip bounds of the enclosing loops.
    pub mult: u64,
    /// Estimated interpreted instructions of one execution of this function.
    pub cost: u64,
    /// Whether the current block runs whenever the function does (not inside an if or switch
    /// arm; loop bodies run at least once).
    pub sure: bool,
    /// Callees called from a block that always runs: these are certainly executed.
    pub called: Vec<usize>,
    pub(super) func_refs: Vec<((usize, bool), FuncRef)>,
    pub(super) sig_refs: Vec<(usize, SigRef)>,
}

impl<'a, 'u> FuncGen<'a, 'u> {
    pub fn new(
        u: &'a mut Unstructured<'u>,
        cfg: &'a Config,
        plan: &'a Plan,
        arch: Arch,
        isa_flags: &'a str,
        me: usize,
        costs: &'a [u64],
    ) -> Result<Self> {
        let sig = &plan.funcs[me];
        let mut func =
            Function::with_name_signature(UserFuncName::testcase(&sig.name), sig.signature());
        let entry = func.dfg.make_block();
        func.layout.append_block(entry);
        let mut pool = Vec::new();
        let mut regions = Vec::new();
        for p in &sig.params {
            let v = func.dfg.append_block_param(entry, p.abi().value_type);
            match *p {
                Param::Value { .. } => pool.push(v),
                Param::Sarg(size) => regions.push(Region {
                    base: Base::Ptr(v),
                    size,
                    kind: RegionKind::Sarg,
                }),
                Param::Ptr(size) => regions.push(Region {
                    base: Base::Ptr(v),
                    size,
                    kind: RegionKind::Ptr,
                }),
            }
        }
        let seed = u.int_in_range(i64::MIN..=i64::MAX)?;
        let acc = InsertBuilder::new(Appender {
            func: &mut func,
            block: entry,
        })
        .iconst(types::I64, seed);
        let mut g = FuncGen {
            u,
            cfg,
            plan,
            arch,
            isa_flags,
            me,
            costs,
            types: cfg.types(),
            func,
            block: entry,
            scopes: vec![pool],
            regions,
            acc,
            insts_left: cfg.max_instructions,
            blocks_left: cfg.max_blocks,
            calls_left: cfg.max_calls_per_function,
            mult: 1,
            cost: 0,
            sure: true,
            called: Vec::new(),
            func_refs: Vec::new(),
            sig_refs: Vec::new(),
        };
        g.start()?;
        // The prologue's observations are not part of the body's budget.
        g.insts_left = cfg.max_instructions;
        Ok(g)
    }

    /// Entry block: stack slots with defined contents, the initial checksum over all scalar
    /// parameters, and a read and a write of every incoming region.
    fn start(&mut self) -> Result<()> {
        self.create_slots()?;
        let params: Vec<Value> = self.scopes[0].clone();
        for v in params {
            self.mix(v)?;
        }
        for r in 0..self.regions.len() {
            if self.regions[r].kind != RegionKind::Slot {
                let v = self.load_from(r)?;
                self.mix(v)?;
                self.store_to(r)?;
            }
        }
        Ok(())
    }

    /// Generates the whole body and returns the finished function and its estimated cost.
    pub fn generate(mut self) -> Result<(Function, u64)> {
        self.seq(0)?;
        // Every callee is called where it certainly runs, so every function of the module runs on
        // every run line.
        let tail = self.plan.tail[self.me];
        let pending: Vec<usize> = self.plan.required[self.me]
            .iter()
            .copied()
            .filter(|j| Some(*j) != tail && !self.called.contains(j))
            .collect();
        for j in pending {
            self.call(j)?;
        }
        self.finish()?;
        Ok((self.func, self.cost))
    }

    /// A builder appending to the current block; every emitted instruction goes through here.
    pub fn ins(&mut self) -> InsertBuilder<'_, Appender<'_>> {
        self.insts_left = self.insts_left.saturating_sub(1);
        self.cost += self.mult;
        InsertBuilder::new(Appender {
            func: &mut self.func,
            block: self.block,
        })
    }

    pub fn ty(&self, v: Value) -> Type {
        self.func.dfg.value_type(v)
    }

    pub fn add(&mut self, v: Value) {
        self.scopes.last_mut().unwrap().push(v);
    }

    pub fn visible(&self, ty: Type) -> Vec<Value> {
        self.scopes
            .iter()
            .flatten()
            .copied()
            .filter(|&v| self.ty(v) == ty)
            .collect()
    }

    pub fn int_types(&self) -> Vec<Type> {
        self.types.iter().copied().filter(|t| t.is_int()).collect()
    }

    pub fn float_types(&self) -> Vec<Type> {
        self.types
            .iter()
            .copied()
            .filter(|t| t.is_float())
            .collect()
    }

    pub fn any_type(&mut self) -> Result<Type> {
        super::signature::value_type(self.u, self.cfg)
    }

    pub fn int_type(&mut self) -> Result<Type> {
        let ints = self.int_types();
        Ok(*self.u.choose(&ints)?)
    }

    /// A value of type `ty`: mostly one already computed (recent ones preferred), else a new
    /// constant or a conversion.
    pub fn value(&mut self, ty: Type) -> Result<Value> {
        let cands = self.visible(ty);
        if !cands.is_empty() && self.u.ratio(7, 8)? {
            let from = if self.u.ratio(1, 2)? {
                cands.len().saturating_sub(4)
            } else {
                0
            };
            let i = self.u.int_in_range(from..=cands.len() - 1)?;
            return Ok(cands[i]);
        }
        let v = if self.u.ratio(1, 2)? {
            match self.convert_to(ty)? {
                Some(v) => v,
                None => self.constant(ty)?,
            }
        } else {
            self.constant(ty)?
        };
        self.add(v);
        Ok(v)
    }

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
    fn convert_to(&mut self, ty: Type) -> Result<Option<Value>> {
        let others: Vec<Value> = self
            .scopes
            .iter()
            .flatten()
            .copied()
            .filter(|&v| self.ty(v) != ty)
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

    /// One arithmetic, logic, comparison, conversion or memory instruction.
    pub fn instruction(&mut self) -> Result<()> {
        let has_floats = !self.float_types().is_empty();
        let weights = [
            10,                             // integer op
            if has_floats { 4 } else { 0 }, // float op
            3,                              // compare
            2,                              // select
            3,                              // conversion
            4,                              // memory
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
            _ => self.memory_op(),
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
