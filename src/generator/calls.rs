//! Calls between generated functions, of every kind Cranelift has.
//!
//! * direct `call`, to a `colocated` callee (PC-relative) or not (GOT/absolute relocation);
//! * `call_indirect` through a `func_addr` (again colocated or not), or through a function
//!   pointer loaded from the data table (see `data`);
//! * `return_call` / `return_call_indirect` from a `tail` function to a `tail` function with the
//!   same returns, as the function's terminator.
//!
//! After a call the caller folds every result into its checksum and re-reads the memory it
//! lent: for a `sarg` argument the bytes must be unchanged (the callee wrote its own copy), for a
//! pointer argument they show what the callee wrote.

use super::body::FuncGen;
use super::signature::Param;
use super::weighted;
use arbitrary::Result;
use cranelift_codegen::ir::{
    ExtFuncData, ExternalName, FuncRef, InstBuilder, SigRef, Value, types,
};

/// How a call reaches its callee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Direct { colocated: bool },
    Indirect { colocated: bool },
}

impl FuncGen<'_, '_> {
    fn sig_ref(&mut self, callee: usize) -> SigRef {
        if let Some(&(_, s)) = self.sig_refs.iter().find(|(c, _)| *c == callee) {
            return s;
        }
        let s = self
            .func
            .import_signature(self.plan.funcs[callee].signature());
        self.sig_refs.push((callee, s));
        s
    }

    fn func_ref(&mut self, callee: usize, colocated: bool) -> FuncRef {
        if let Some(&(_, f)) = self
            .func_refs
            .iter()
            .find(|(k, _)| *k == (callee, colocated))
        {
            return f;
        }
        let signature = self.sig_ref(callee);
        let f = self.func.import_function(ExtFuncData {
            name: ExternalName::testcase(&self.plan.funcs[callee].name),
            signature,
            colocated,
            patchable: false,
        });
        self.func_refs.push(((callee, colocated), f));
        f
    }

    fn call_kind(&mut self) -> Result<CallKind> {
        let colocated = !self.cfg.non_colocated_calls || self.u.ratio(2, 3)?;
        let indirect = self.cfg.call_indirect && self.u.ratio(1, 4)?;
        Ok(if indirect {
            CallKind::Indirect { colocated }
        } else {
            CallKind::Direct { colocated }
        })
    }

    /// Callees that a call here may target within the cost budget.
    pub fn callable(&self) -> Vec<usize> {
        (self.me + 1..self.plan.funcs.len())
            .filter(|&j| self.cost + self.mult * self.costs[j] <= self.cfg.max_dynamic_cost)
            .collect()
    }

    /// A call to a random callable function, if there is one.
    pub fn random_call(&mut self) -> Result<()> {
        let c = self.callable();
        if c.is_empty() {
            return Ok(());
        }
        // Prefer callees not yet called, so that required edges are usually met early.
        let fresh: Vec<usize> = c
            .iter()
            .copied()
            .filter(|j| !self.called.contains(j))
            .collect();
        let j = if !fresh.is_empty() && self.u.ratio(2, 3)? {
            *self.u.choose(&fresh)?
        } else {
            *self.u.choose(&c)?
        };
        self.call(j)
    }

    /// Calls `callee` and observes everything it may have changed.
    pub fn call(&mut self, callee: usize) -> Result<()> {
        let kind = self.call_kind()?;
        let params = self.plan.funcs[callee].params.clone();
        let mut args = Vec::with_capacity(params.len());
        let mut lent = Vec::new();
        for p in &params {
            match *p {
                Param::Value { ty, .. } => args.push(self.value(ty)?),
                Param::Sarg(n) | Param::Ptr(n) => {
                    let (ptr, r) = self.region_arg(n, matches!(p, Param::Ptr(_)))?;
                    args.push(ptr);
                    lent.push(r);
                    // The interpreter copies a `sarg` word by word on entry.
                    if matches!(p, Param::Sarg(_)) {
                        self.cost += self.mult * (n as u64 / 4 + 1);
                    }
                }
            }
        }
        self.calls_left = self.calls_left.saturating_sub(1);
        self.cost += self.mult * self.costs[callee];
        if self.sure && !self.called.contains(&callee) {
            self.called.push(callee);
        }
        let through_table = match self.table_slot(callee) {
            Some(off) if self.cfg.call_indirect && self.u.ratio(1, 3)? => Some(off),
            _ => None,
        };
        let results: Vec<Value> = match kind {
            _ if through_table.is_some() => {
                let sig = self.sig_ref(callee);
                let addr = self.load_function_pointer(through_table.unwrap())?;
                let inst = self.ins().call_indirect(sig, addr, &args);
                self.func.dfg.inst_results(inst).to_vec()
            }
            CallKind::Direct { colocated } => {
                let f = self.func_ref(callee, colocated);
                let inst = self.ins().call(f, &args);
                self.func.dfg.inst_results(inst).to_vec()
            }
            CallKind::Indirect { colocated } => {
                let f = self.func_ref(callee, colocated);
                let sig = self.sig_ref(callee);
                let addr = self.ins().func_addr(types::I64, f);
                let inst = self.ins().call_indirect(sig, addr, &args);
                self.func.dfg.inst_results(inst).to_vec()
            }
        };
        for v in results {
            self.add(v);
            self.mix(v)?;
        }
        lent.sort_unstable();
        lent.dedup();
        for r in lent {
            self.observe_region(r)?;
        }
        Ok(())
    }

    /// Ends the function with a tail call to `callee`, passing the checksum in its first `i64`
    /// parameter so nothing observed here is lost.
    pub fn tail_call(&mut self, callee: usize) -> Result<()> {
        let params = self.plan.funcs[callee].params.clone();
        let mut args = Vec::with_capacity(params.len());
        let mut folded = false;
        for p in &params {
            let Param::Value { ty, .. } = *p else {
                unreachable!("tail callees take scalars only")
            };
            let mut v = self.value(ty)?;
            if !folded && ty == types::I64 {
                let acc = self.acc;
                v = self.ins().bxor(v, acc);
                folded = true;
            }
            args.push(v);
        }
        debug_assert!(folded, "tail callees have an i64 parameter");
        self.cost += self.costs[callee];
        let colocated = !self.cfg.non_colocated_calls || self.u.ratio(2, 3)?;
        let f = self.func_ref(callee, colocated);
        if self.cfg.call_indirect && weighted(self.u, &[3, 1])? == 1 {
            let sig = self.sig_ref(callee);
            let addr = self.ins().func_addr(types::I64, f);
            self.ins().return_call_indirect(sig, addr, &args);
        } else {
            self.ins().return_call(f, &args);
        }
        Ok(())
    }
}
