//! Structured control flow: straight-line code, `brif` diamonds, `br_table` switches and loops
//! bounded by construction, nested up to `max_depth`; and the function's end.
//!
//! Each region is entered from one block and left to one merge block. Values made inside leave
//! only through the merge block's parameters, the checksum always among them, so the pool's
//! scope stack matches dominance exactly.

use super::body::{FuncGen, RegionKind};
use super::weighted;
use arbitrary::Result;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Block, BlockArg, InstBuilder, JumpTableData, Type, Value, types};

impl FuncGen<'_, '_> {
    /// A sequence of statements.
    pub fn seq(&mut self, depth: usize) -> Result<()> {
        let n = self.u.int_in_range(1..=10)?;
        for _ in 0..n {
            if self.insts_left == 0 {
                break;
            }
            let nested = depth < self.cfg.max_depth;
            let can_call = self.cfg.calls && self.calls_left > 0 && !self.callable().is_empty();
            let w = |on: bool, w: u32| if on { w } else { 0 };
            let weights = [
                12,                                                         // instruction
                w(can_call, 3),                                             // call
                1,                                                          // observe
                w(nested && self.blocks_left >= 3, 2),                      // if/else
                w(nested && self.cfg.br_table && self.blocks_left >= 4, 1), // switch
                w(nested && self.cfg.loops && self.blocks_left >= 2, 2),    // loop
            ];
            match weighted(self.u, &weights)? {
                0 => self.instruction()?,
                1 => self.random_call()?,
                2 => self.observe_some(1)?,
                3 => self.if_else(depth)?,
                4 => self.switch(depth)?,
                _ => self.looped(depth)?,
            }
        }
        Ok(())
    }

    fn new_block(&mut self) -> Block {
        self.blocks_left = self.blocks_left.saturating_sub(1);
        self.func.dfg.make_block()
    }

    /// Makes `b` current (appending it to the layout) and opens a scope with its parameters.
    fn enter(&mut self, b: Block) {
        self.func.layout.append_block(b);
        self.block = b;
        let params = self.func.dfg.block_params(b).to_vec();
        self.scopes.push(params);
    }

    /// Types of values a merge block carries besides the checksum.
    fn carried_types(&mut self) -> Result<Vec<Type>> {
        let mut out = Vec::new();
        for _ in 0..self.u.int_in_range(0..=3)? {
            out.push(self.any_type()?);
        }
        Ok(out)
    }

    /// A block with parameters `(acc: i64, carried...)`.
    fn merge_block(&mut self, carried: &[Type]) -> Block {
        let b = self.new_block();
        self.func.dfg.append_block_param(b, types::I64);
        for &t in carried {
            self.func.dfg.append_block_param(b, t);
        }
        b
    }

    /// Arguments for a merge block: the checksum and a value of each carried type.
    fn merge_args(&mut self, carried: &[Type]) -> Result<Vec<BlockArg>> {
        let mut args = vec![BlockArg::Value(self.acc)];
        for &t in carried {
            args.push(BlockArg::Value(self.value(t)?));
        }
        Ok(args)
    }

    /// Continues in merge block `b`: its parameters join the enclosing scope.
    fn resume(&mut self, b: Block) {
        self.func.layout.append_block(b);
        self.block = b;
        let params = self.func.dfg.block_params(b).to_vec();
        self.acc = params[0];
        for &v in &params[1..] {
            self.add(v);
        }
    }

    /// A branch body that ends by jumping to `merge`.
    fn arm(
        &mut self,
        b: Block,
        depth: usize,
        acc: Value,
        merge: Block,
        carried: &[Type],
    ) -> Result<()> {
        self.enter(b);
        self.acc = acc;
        let sure = std::mem::replace(&mut self.sure, false);
        self.seq(depth + 1)?;
        let n = self.u.int_in_range(1..=3)?;
        self.observe_recent(n)?;
        let args = self.merge_args(carried)?;
        self.ins().jump(merge, &args);
        self.scopes.pop();
        self.sure = sure;
        Ok(())
    }

    fn condition(&mut self) -> Result<Value> {
        let ty = self.int_type()?;
        self.value(ty)
    }

    /// `brif` to two arms (which may take block arguments), joined again.
    fn if_else(&mut self, depth: usize) -> Result<()> {
        let c = self.condition()?;
        let then_b = self.new_block();
        let else_b = self.new_block();
        let mut arm_args: [Vec<BlockArg>; 2] = [Vec::new(), Vec::new()];
        for (b, args) in [then_b, else_b].into_iter().zip(arm_args.iter_mut()) {
            for _ in 0..self.u.int_in_range(0..=2)? {
                let t = self.any_type()?;
                let v = self.value(t)?;
                self.func.dfg.append_block_param(b, t);
                args.push(BlockArg::Value(v));
            }
        }
        let carried = self.carried_types()?;
        let merge = self.merge_block(&carried);
        self.ins()
            .brif(c, then_b, &arm_args[0], else_b, &arm_args[1]);
        let acc = self.acc;
        self.arm(then_b, depth, acc, merge, &carried)?;
        self.arm(else_b, depth, acc, merge, &carried)?;
        self.resume(merge);
        Ok(())
    }

    /// `br_table` over a few arms, some reached by several indices, plus the default.
    fn switch(&mut self, depth: usize) -> Result<()> {
        let idx = self.value(types::I32)?;
        let idx = if self.u.ratio(1, 2)? {
            // Keep the index small so that the table is hit, not just the default.
            let m = self.ins().iconst(types::I32, 7);
            self.ins().band(idx, m)
        } else {
            idx
        };
        let n = self.u.int_in_range(1..=3)?;
        let arms: Vec<Block> = (0..n).map(|_| self.new_block()).collect();
        let default = self.new_block();
        let mut table = Vec::new();
        for _ in 0..self.u.int_in_range(1..=6)? {
            let b = *self.u.choose(&arms)?;
            table.push(self.func.dfg.block_call(b, &[]));
        }
        let def = self.func.dfg.block_call(default, &[]);
        let jt = self.func.create_jump_table(JumpTableData::new(def, &table));
        let carried = self.carried_types()?;
        let merge = self.merge_block(&carried);
        self.ins().br_table(idx, jt);
        let acc = self.acc;
        for b in arms.into_iter().chain([default]) {
            self.arm(b, depth, acc, merge, &carried)?;
        }
        self.resume(merge);
        Ok(())
    }

    /// A do-while loop: a counter from 0 up to a bound that is a constant or a masked run-time
    /// value, never more than `max_loop_iterations`.
    fn looped(&mut self, depth: usize) -> Result<()> {
        let bound = self
            .u
            .int_in_range(1..=self.cfg.max_loop_iterations.max(1))?;
        if self.cost + self.mult * bound as u64 * 20 > self.cfg.max_dynamic_cost {
            return Ok(());
        }
        let cty = if self.u.ratio(1, 2)? {
            types::I32
        } else {
            types::I64
        };
        let limit = if self.u.ratio(1, 2)? {
            self.ins().iconst(cty, bound as i64)
        } else {
            // At most `bound` iterations: the largest all-ones mask not above it.
            let mask = (1u32 << (31 - bound.leading_zeros())) - 1;
            let x = self.value(cty)?;
            let m = self.ins().iconst(cty, mask as i64);
            self.ins().band(x, m)
        };
        let carried = self.carried_types()?;
        let header = self.new_block();
        let counter = self.func.dfg.append_block_param(header, cty);
        self.func.dfg.append_block_param(header, types::I64);
        for &t in &carried {
            self.func.dfg.append_block_param(header, t);
        }
        let exit = self.merge_block(&carried);
        let zero = self.ins().iconst(cty, 0);
        let mut init = vec![BlockArg::Value(zero)];
        init.extend(self.merge_args(&carried)?);
        self.ins().jump(header, &init);

        self.enter(header);
        self.acc = self.func.dfg.block_params(header)[1];
        let outer = self.mult;
        self.mult *= bound as u64;
        self.seq(depth + 1)?;
        let n = self.u.int_in_range(1..=3)?;
        self.observe_recent(n)?;
        let one = self.ins().iconst(cty, 1);
        let next = self.ins().iadd(counter, one);
        let more = self.ins().icmp(IntCC::UnsignedLessThan, next, limit);
        let mut again = vec![BlockArg::Value(next)];
        again.extend(self.merge_args(&carried)?);
        let out = self.merge_args(&carried)?;
        self.ins().brif(more, header, &again, exit, &out);
        self.mult = outer;
        self.scopes.pop();
        self.resume(exit);
        Ok(())
    }

    /// Observes what is left, then returns (or tail-calls) with the checksum folded in.
    pub fn finish(&mut self) -> Result<()> {
        for r in 0..self.regions.len() {
            if self.regions[r].kind != RegionKind::Ptr {
                self.observe_region(r)?;
            }
        }
        let n = self.u.int_in_range(2..=6)?;
        self.observe_recent(n)?;
        let n = self.u.int_in_range(0..=3)?;
        self.observe_some(n)?;
        let returns = self.plan.funcs[self.me].return_types();
        if returns.is_empty() || self.u.ratio(1, 4)? {
            let stored = self.store_checksum()?;
            debug_assert!(
                stored || !returns.is_empty(),
                "void functions have a pointer"
            );
        }
        if let Some(callee) = self.plan.tail[self.me] {
            return self.tail_call(callee);
        }
        // The checksum goes into the widest integer return, where the least of it is lost.
        let carrier = (0..returns.len())
            .filter(|&i| returns[i].is_int())
            .max_by_key(|&i| (returns[i].bits(), std::cmp::Reverse(i)));
        let mut vals = Vec::with_capacity(returns.len());
        for (i, &ty) in returns.iter().enumerate() {
            let mut v = self.value(ty)?;
            if Some(i) == carrier {
                let sum = self.checksum_as(ty)?;
                v = self.ins().bxor(v, sum);
            }
            vals.push(v);
        }
        self.ins().return_(&vals);
        Ok(())
    }
}
