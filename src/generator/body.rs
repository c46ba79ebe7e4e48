//! One function body: the generator's state while it writes a function and the pool of values
//! it may use. What it emits lives next door: `arith`, `values`, `memory`, `calls`, `control`,
//! `observe`.
//!
//! The body is built straight into an `ir::Function` by an inserter that always appends to the
//! current block. Control flow is structured (see `control`), so which values are usable is a
//! stack of scopes: a region's entry dominates everything inside it, and what a region produces
//! leaves it only through block parameters.
//!
//! Pointers (stack addresses, `sarg` and pointer parameters) never enter the pool: an address is
//! an encoded handle in the interpreter and a real address natively, so it must never reach a
//! result. They live in `regions` and are only used to address memory.

use super::config::Config;
use super::signature::{Param, Plan};
use crate::target::Arch;
use arbitrary::{Result, Unstructured};
use cranelift_codegen::ir::{
    AliasRegion, Block, DataFlowGraph, FuncRef, Function, InsertBuilder, Inst, InstBuilder,
    InstInserterBase, LibCall, SigRef, StackSlot, Type, UserFuncName, Value, types,
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
    /// False for read-only data objects: loads only.
    pub writable: bool,
    /// The alias region every access of this region names (see `memory`): only for memory
    /// nothing else in the function can reach (stack slots, the callee's own `sarg` copy).
    pub alias: Option<AliasRegion>,
    /// A power of two the region's start is a multiple of in every engine (1 when unknown: the
    /// interpreter packs stack slots without padding).
    pub align: u32,
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
    /// A data object of the module.
    Data,
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
    pub(super) libcall_refs: Vec<(LibCall, FuncRef)>,
    /// The pointer table's address, when this function uses it.
    pub table: Option<Value>,
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
                    writable: true,
                    alias: None,
                    align: 1,
                }),
                // Two pointer parameters may point into the same memory: no alias region.
                Param::Ptr(size) => regions.push(Region {
                    base: Base::Ptr(v),
                    size,
                    kind: RegionKind::Ptr,
                    writable: true,
                    alias: None,
                    align: 1,
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
            libcall_refs: Vec::new(),
            table: None,
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
        self.data_regions()?;
        let params: Vec<Value> = self.scopes[0].clone();
        for v in params {
            self.mix(v)?;
        }
        for r in 0..self.regions.len() {
            if self.regions[r].kind != RegionKind::Slot {
                let v = self.load_from(r)?;
                self.mix(v)?;
                if self.regions[r].writable {
                    self.store_to(r)?;
                }
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

    /// Integer types wider than `bytes` and at most 64 bits: what a narrow load extends to or a
    /// narrow store truncates from.
    pub fn ints_wider_than(&self, bytes: u32) -> Vec<Type> {
        self.int_types()
            .into_iter()
            .filter(|t| t.bytes() > bytes && t.bits() <= 64)
            .collect()
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
        if ty.is_vector() {
            return self.vector(ty);
        }
        let cands = self.visible(ty);
        if super::f16_f128::is_f16_f128(ty) {
            if !cands.is_empty() && self.u.ratio(3, 4)? {
                return Ok(*self.u.choose(&cands)?);
            }
            let v = self.new_f16_f128(ty)?;
            self.add(v);
            return Ok(v);
        }
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
}
