//! Data objects, and the code that uses them: the relocation classes next to the seed's bug.
//!
//! A case may define a few data objects (`%d0`, …; writable or read-only, aligned 1 to 16 bytes,
//! random contents) and a table `%tab` of relocated pointers: to functions of the case, and into
//! the data objects. Functions address objects with `symbol_value` (colocated or not, with an
//! offset folded into the symbol or not) and treat them as regions like stack slots: loads
//! anywhere, stores where writable, lent to callees (read-only ones only as `sarg` sources).
//! Through the table they call (`load` + `call_indirect`) and follow pointers into data.
//! Some writable objects are thread-local (`tls`): addressed with `tls_value`, never pointed at
//! from the table (see `crate::data`), and the case sets `tls_model=elf_gd`.
//!
//! What keeps this free of undefined behaviour: read-only objects are never written, the
//! table's pointers are only ever loaded whole (never stored over, never read in parts, never
//! observed), and every run line starts from the initial contents on every engine.

use super::body::{Base, FuncGen, Region, RegionKind};
use super::config::Config;
use super::signature::Plan;
use crate::data::{DataObject, POINTER_BYTES, Target};
use arbitrary::{Result, Unstructured};
use cranelift_codegen::ir::immediates::Imm64;
use cranelift_codegen::ir::{
    ExternalName, GlobalValueData, InstBuilder, MemFlagsData, Value, types,
};

/// Name of the pointer table.
pub const TABLE: &str = "tab";

/// The module's data objects.
pub fn plan(u: &mut Unstructured, cfg: &Config, plan: &Plan) -> Result<Vec<DataObject>> {
    let mut out: Vec<DataObject> = Vec::new();
    if !cfg.data || cfg.max_data_objects == 0 || !u.ratio(2, 3)? {
        return Ok(out);
    }
    let n = u.int_in_range(1..=cfg.max_data_objects)?;
    for k in 0..n {
        let size = u.int_in_range(1..=cfg.max_data_size)? as usize;
        let bytes = match u.bytes(size) {
            Ok(b) => b.to_vec(),
            Err(_) => vec![0; size],
        };
        let writable = u.ratio(1, 2)?;
        out.push(DataObject {
            name: format!("d{k}"),
            writable,
            tls: false,
            align: 1 << u.int_in_range(0..=4)?,
            bytes,
            relocs: Vec::new(),
        });
    }
    if u.int_in_range(0..=999u32)? < cfg.tls_cases_per_mille {
        let writable: Vec<usize> = (0..out.len()).filter(|&k| out[k].writable).collect();
        if let Ok(&k) = u.choose(&writable) {
            out[k].tls = true;
        }
    }
    if cfg.data_tables && u.ratio(2, 3)? {
        let mut relocs = Vec::new();
        let slot = |t: Target, relocs: &mut Vec<(u32, Target)>| {
            relocs.push((relocs.len() as u32 * POINTER_BYTES, t));
        };
        for f in &plan.funcs[1..] {
            if u.ratio(2, 3)? {
                slot(Target::Func(f.name.clone()), &mut relocs);
            }
        }
        for d in out.clone() {
            if !d.tls && u.ratio(1, 2)? {
                let addend = u.int_in_range(0..=d.size() - 1)?;
                slot(Target::Data(d.name, i64::from(addend)), &mut relocs);
            }
        }
        if !relocs.is_empty() {
            out.push(DataObject {
                name: TABLE.into(),
                writable: u.ratio(1, 4)?,
                tls: false,
                align: u64::from(POINTER_BYTES),
                bytes: vec![0; relocs.len() * POINTER_BYTES as usize],
                relocs,
            });
        }
    }
    Ok(out)
}

impl FuncGen<'_, '_> {
    /// `symbol_value` of `name` plus `offset`, colocated or not; `tls_value` of a thread-local
    /// object (whose `offset` must be 0: x86_64, aarch64 and riscv64 ignore a symbol's offset
    /// there, s390x has no rule for one).
    fn symbol(&mut self, name: &str, offset: i64) -> Result<Value> {
        let colocated = self.u.ratio(2, 3)?;
        let tls = self.plan.data.iter().any(|d| d.name == name && d.tls);
        debug_assert!(!tls || offset == 0);
        let gv = self.func.create_global_value(GlobalValueData::Symbol {
            name: ExternalName::testcase(name),
            offset: Imm64::new(offset),
            colocated,
            tls,
        });
        Ok(if tls {
            self.ins().tls_value(types::I64, gv)
        } else {
            self.ins().symbol_value(types::I64, gv)
        })
    }

    /// In the entry block: regions for the data objects this function uses (by symbol, or by a
    /// pointer loaded from the table) and the table's address.
    pub fn data_regions(&mut self) -> Result<()> {
        let data = &self.plan.data;
        for d in data.iter().filter(|d| d.relocs.is_empty()) {
            if !self.u.ratio(2, 3)? {
                continue;
            }
            let offset = if !d.tls && self.u.ratio(1, 4)? {
                self.u.int_in_range(0..=d.size() - 1)?
            } else {
                0
            };
            let p = self.symbol(&d.name, i64::from(offset))?;
            self.regions.push(Region {
                base: Base::Ptr(p),
                size: d.size() - offset,
                kind: RegionKind::Data,
                writable: d.writable,
                // Also reachable through pointers in the table: no alias region.
                alias: None,
                align: start_align(d.align, offset),
            });
        }
        let Some(table) = data.iter().find(|d| d.name == TABLE) else {
            return Ok(());
        };
        if !self.u.ratio(3, 4)? {
            return Ok(());
        }
        let t = self.symbol(TABLE, 0)?;
        self.table = Some(t);
        for (off, target) in &table.relocs {
            let Target::Data(name, addend) = target else {
                continue;
            };
            if !self.u.ratio(1, 2)? {
                continue;
            }
            let d = data
                .iter()
                .find(|d| d.name == *name)
                .expect("the table points at planned objects");
            let flags = self.pointer_flags()?;
            let p = self.ins().load(types::I64, flags, t, *off as i32);
            self.regions.push(Region {
                base: Base::Ptr(p),
                size: d.size() - *addend as u32,
                kind: RegionKind::Data,
                writable: d.writable,
                alias: None,
                align: start_align(d.align, *addend as u32),
            });
        }
        Ok(())
    }

    /// Flags of a load of a pointer from the table: aligned (the table is), and `readonly`
    /// half of the time (nothing ever stores over a pointer).
    fn pointer_flags(&mut self) -> Result<MemFlagsData> {
        let mut f = MemFlagsData::trusted();
        if self.u.ratio(1, 2)? {
            f = f.with_readonly();
        }
        Ok(f)
    }

    /// The table slot holding `callee`'s address, if this function has the table.
    pub fn table_slot(&self, callee: usize) -> Option<u32> {
        self.table?;
        let name = &self.plan.funcs[callee].name;
        self.plan
            .data
            .iter()
            .find(|d| d.name == TABLE)?
            .relocs
            .iter()
            .find(|(_, t)| matches!(t, Target::Func(n) if n == name))
            .map(|(o, _)| *o)
    }

    /// `callee`'s address, loaded from table slot `off`.
    pub fn load_function_pointer(&mut self, off: u32) -> Result<Value> {
        let t = self
            .table
            .expect("a table slot implies the table's address");
        let flags = self.pointer_flags()?;
        Ok(self.ins().load(types::I64, flags, t, off as i32))
    }
}

/// The alignment of the byte `offset` into an object aligned to `align` (a power of two).
fn start_align(align: u64, offset: u32) -> u32 {
    let align = u32::try_from(align).unwrap_or(u32::MAX).max(1);
    if offset == 0 {
        align
    } else {
        align.min(1 << offset.trailing_zeros())
    }
}
