//! What the generator produces, measured on its output: `clif-diff gen --stats N`.
//!
//! Everything is read back from the generated IR (not from the generator's intentions), and
//! every function is run through Cranelift's verifier with the case's own target ISA and flags.
//! Whether arguments are passed on the stack is decided by a model of each backend's register
//! assignment (the counts of argument registers per convention), not by compiling.

use super::Config;
use crate::case::TestCase;
use crate::target::{Arch, build_isa, case_arch};
use anyhow::Result;
use cranelift_codegen::ir::{
    ArgumentPurpose, Block, Function, InstructionData, Opcode, Signature, Value, types,
};
use cranelift_codegen::isa::CallConv;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

/// Counters over a set of cases.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub cases: u64,
    pub verifier_valid: u64,
    /// The first verifier failure seen, for the report.
    pub first_invalid: Option<(u64, String)>,
    pub functions: u64,
    /// Parameter count per function, bucketed.
    pub param_counts: BTreeMap<usize, u64>,
    pub stack_arg_cases: u64,
    /// Cases with a signature returning more values than its convention has registers for.
    pub stack_return_cases: u64,
    pub sarg_cases: u64,
    pub sarg_sizes: BTreeMap<u32, u64>,
    pub pointer_param_cases: u64,
    pub i128_cases: u64,
    pub float_cases: u64,
    pub multi_return_cases: u64,
    /// Value types of all instruction results and parameters.
    pub types: BTreeMap<String, u64>,
    /// Functions per calling convention.
    pub conventions: BTreeMap<String, u64>,
    pub mixed_convention_cases: u64,
    /// Call sites per kind, and cases with at least one.
    pub call_sites: BTreeMap<&'static str, u64>,
    pub call_kind_cases: BTreeMap<&'static str, u64>,
    pub call_cases: u64,
    pub opcodes: BTreeMap<String, u64>,
    pub br_table_cases: u64,
    pub loop_cases: u64,
    pub blocks: u64,
    pub instructions: u64,
    pub settings: BTreeMap<String, u64>,
}

impl Stats {
    pub fn add(&mut self, seed: u64, case: &TestCase) {
        self.cases += 1;
        match verify(case) {
            Ok(()) => self.verifier_valid += 1,
            Err(e) => {
                if self.first_invalid.is_none() {
                    self.first_invalid = Some((seed, e));
                }
            }
        }
        let arch = case_arch(case).unwrap_or(Arch::X86_64);
        let llvm_abi = case.setting("enable_llvm_abi_extensions") == Some("true");
        let mut convs = Vec::new();
        let mut flags = CaseFlags::default();
        for f in &case.functions {
            self.functions += 1;
            let sig = &f.signature;
            *self
                .param_counts
                .entry(bucket(sig.params.len()))
                .or_default() += 1;
            flags.stack_args |= passes_on_stack(arch, sig);
            flags.stack_rets |= returns_on_stack(arch, sig, llvm_abi);
            flags.multi_ret |= sig.returns.len() > 1;
            for p in &sig.params {
                match p.purpose {
                    ArgumentPurpose::StructArgument(n) => {
                        flags.sarg = true;
                        *self.sarg_sizes.entry(n).or_default() += 1;
                    }
                    _ => {}
                }
            }
            // Plain `i64` parameters that the body only uses as addresses.
            flags.ptr |= has_pointer_params(f);
            *self
                .conventions
                .entry(sig.call_conv.to_string())
                .or_default() += 1;
            if !convs.contains(&sig.call_conv) {
                convs.push(sig.call_conv);
            }
            let order: Vec<Block> = f.layout.blocks().collect();
            let at = |b: Block| order.iter().position(|&x| x == b);
            self.blocks += order.len() as u64;
            for &block in &order {
                for v in f.dfg.block_params(block) {
                    flags.note_type(self, f.dfg.value_type(*v));
                }
                for inst in f.layout.block_insts(block) {
                    self.instructions += 1;
                    let op = f.dfg.insts[inst].opcode();
                    *self.opcodes.entry(op.to_string()).or_default() += 1;
                    for r in f.dfg.inst_results(inst) {
                        flags.note_type(self, f.dfg.value_type(*r));
                    }
                    if let Some(kind) = call_kind(f, &f.dfg.insts[inst]) {
                        *self.call_sites.entry(kind).or_default() += 1;
                        if !flags.kinds.contains(&kind) {
                            flags.kinds.push(kind);
                        }
                    }
                    flags.br_table |= op == Opcode::BrTable;
                    // Blocks are laid out in program order, so a branch to an earlier (or the
                    // same) block is a loop's back edge.
                    flags.looped |= f.dfg.insts[inst]
                        .branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables)
                        .iter()
                        .any(|d| at(d.block(&f.dfg.value_lists)) <= at(block));
                }
            }
        }
        for (k, v) in &case.settings {
            *self.settings.entry(format!("{k}={v}")).or_default() += 1;
        }
        self.stack_arg_cases += flags.stack_args as u64;
        self.stack_return_cases += flags.stack_rets as u64;
        self.sarg_cases += flags.sarg as u64;
        self.pointer_param_cases += flags.ptr as u64;
        self.i128_cases += flags.i128 as u64;
        self.float_cases += flags.float as u64;
        self.multi_return_cases += flags.multi_ret as u64;
        self.mixed_convention_cases += (convs.len() > 1) as u64;
        self.call_cases += !flags.kinds.is_empty() as u64;
        self.br_table_cases += flags.br_table as u64;
        self.loop_cases += flags.looped as u64;
        for k in flags.kinds {
            *self.call_kind_cases.entry(k).or_default() += 1;
        }
    }

    pub fn verifier_valid_percent(&self) -> f64 {
        pct(self.verifier_valid, self.cases)
    }

    /// The report `gen --stats` prints.
    pub fn table(&self) -> String {
        let n = self.cases;
        let mut o = String::new();
        let case_row = |o: &mut String, label: &str, k: u64| {
            let _ = writeln!(o, "  {label:<34} {k:>8}  {:>6.1}%", pct(k, n));
        };
        let _ = writeln!(
            o,
            "cases: {n}   functions: {}   blocks: {}   instructions: {}",
            self.functions, self.blocks, self.instructions
        );
        let _ = writeln!(
            o,
            "verifier-valid: {} / {n} ({:.2}%)",
            self.verifier_valid,
            self.verifier_valid_percent()
        );
        if let Some((seed, e)) = &self.first_invalid {
            let _ = writeln!(o, "  first invalid: seed {seed}: {e}");
        }
        let _ = writeln!(o, "\ncases with (share of cases):");
        case_row(&mut o, "stack-passed arguments", self.stack_arg_cases);
        case_row(&mut o, "returns beyond registers", self.stack_return_cases);
        case_row(&mut o, "several returns", self.multi_return_cases);
        case_row(&mut o, "sarg parameters", self.sarg_cases);
        case_row(&mut o, "pointer parameters", self.pointer_param_cases);
        case_row(&mut o, "i128 values", self.i128_cases);
        case_row(&mut o, "float values", self.float_cases);
        case_row(&mut o, "calls", self.call_cases);
        for (k, c) in &self.call_kind_cases {
            case_row(&mut o, &format!("  {k}"), *c);
        }
        case_row(&mut o, "mixed conventions", self.mixed_convention_cases);
        case_row(&mut o, "br_table", self.br_table_cases);
        case_row(&mut o, "loops", self.loop_cases);
        section(
            &mut o,
            "parameter count per function",
            self.param_counts
                .iter()
                .map(|(k, v)| (bucket_label(*k), *v)),
        );
        section(
            &mut o,
            "conventions (functions)",
            self.conventions.iter().map(|(k, v)| (k.clone(), *v)),
        );
        section(
            &mut o,
            "sarg sizes (parameters)",
            self.sarg_sizes
                .iter()
                .map(|(k, v)| (format!("sarg({k})"), *v)),
        );
        section(
            &mut o,
            "call sites",
            self.call_sites.iter().map(|(k, v)| (k.to_string(), *v)),
        );
        section(
            &mut o,
            "value types",
            self.types.iter().map(|(k, v)| (k.clone(), *v)),
        );
        let _ = writeln!(o, "\nsettings (share of cases):");
        for (k, v) in &self.settings {
            case_row(&mut o, k, *v);
        }
        let mut ops: Vec<(&String, &u64)> = self.opcodes.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let _ = writeln!(o, "\nopcodes ({} distinct):", ops.len());
        for chunk in ops.chunks(4) {
            let cells: Vec<String> = chunk
                .iter()
                .map(|(k, v)| format!("{k:<22}{v:>8}"))
                .collect();
            let _ = writeln!(o, "  {}", cells.join("   "));
        }
        o
    }
}

#[derive(Default)]
struct CaseFlags {
    stack_args: bool,
    stack_rets: bool,
    multi_ret: bool,
    sarg: bool,
    ptr: bool,
    i128: bool,
    float: bool,
    br_table: bool,
    looped: bool,
    kinds: Vec<&'static str>,
}

impl CaseFlags {
    fn note_type(&mut self, stats: &mut Stats, ty: cranelift_codegen::ir::Type) {
        *stats.types.entry(ty.to_string()).or_default() += 1;
        self.i128 |= ty == cranelift_codegen::ir::types::I128;
        self.float |= ty.is_float();
    }
}

/// Generates the cases of `seeds` and counts what they contain.
pub fn collect(cfg: &Config, seeds: Range<u64>) -> Result<Stats> {
    cfg.validate()?;
    let mut s = Stats::default();
    for seed in seeds {
        let case = super::from_seed(seed, cfg);
        s.add(seed, &case);
    }
    Ok(s)
}

/// Runs Cranelift's verifier on every function with the case's target ISA and flags.
pub fn verify(case: &TestCase) -> Result<(), String> {
    let isa = build_isa(case, &[]).map_err(|e| format!("{e:#}"))?;
    for f in &case.functions {
        cranelift_codegen::verify_function(f, &*isa)
            .map_err(|e| format!("{}: {}", f.name, e.to_string().lines().next().unwrap_or("")))?;
    }
    Ok(())
}

fn call_kind(f: &Function, inst: &InstructionData) -> Option<&'static str> {
    let colocated = |r| f.dfg.ext_funcs[r].colocated;
    Some(match *inst {
        InstructionData::Call {
            opcode: Opcode::Call,
            func_ref,
            ..
        } => {
            if colocated(func_ref) {
                "call colocated"
            } else {
                "call non-colocated"
            }
        }
        InstructionData::Call {
            opcode: Opcode::ReturnCall,
            ..
        } => "return_call",
        InstructionData::CallIndirect {
            opcode: Opcode::CallIndirect,
            ..
        } => "call_indirect",
        InstructionData::CallIndirect {
            opcode: Opcode::ReturnCallIndirect,
            ..
        } => "return_call_indirect",
        _ => return None,
    })
}

/// Plain `i64` parameters used as load/store addresses (the generator never uses a scalar as an
/// address, so these are its pointer parameters).
fn has_pointer_params(f: &Function) -> bool {
    let Some(entry) = f.layout.entry_block() else {
        return false;
    };
    let ptrs: Vec<Value> = f
        .signature
        .params
        .iter()
        .zip(f.dfg.block_params(entry))
        .filter(|(p, _)| p.purpose == ArgumentPurpose::Normal && p.value_type == types::I64)
        .map(|(_, &v)| v)
        .collect();
    f.layout
        .blocks()
        .flat_map(|b| f.layout.block_insts(b))
        .any(|i| {
            let op = f.dfg.insts[i].opcode();
            (op.can_load() || op.can_store())
                && f.dfg.inst_args(i).last().is_some_and(|a| ptrs.contains(a))
        })
}

/// Argument registers per class (integer, float) of a convention on an architecture, or `None`
/// for Windows fastcall (which counts positions, not classes).
fn arg_regs(arch: Arch, cc: CallConv) -> Option<(usize, usize)> {
    match arch {
        Arch::X86_64 if cc == CallConv::WindowsFastcall => None,
        Arch::X86_64 => Some((6, 8)),
        Arch::Aarch64 | Arch::Riscv64 => Some((8, 8)),
        Arch::S390x => Some((5, 4)),
    }
}

/// Whether some argument of `sig` goes on the stack (a model of the backends' assignment).
pub fn passes_on_stack(arch: Arch, sig: &Signature) -> bool {
    let mut ints = 0;
    let mut floats = 0;
    let mut sarg = false;
    for p in &sig.params {
        match p.purpose {
            ArgumentPurpose::StructArgument(_) => sarg = true,
            _ if p.value_type.is_float() => floats += 1,
            _ => ints += (p.value_type.bits() as usize).div_ceil(64),
        }
    }
    match arg_regs(arch, sig.call_conv) {
        None => sarg || ints + floats > 4,
        Some((ri, rf)) => sarg || ints > ri || floats > rf,
    }
}

/// Whether `sig` returns more values than its convention has return registers for (x86_64;
/// elsewhere counted as two per class).
pub fn returns_on_stack(arch: Arch, sig: &Signature, llvm_abi: bool) -> bool {
    let ints: usize = sig
        .returns
        .iter()
        .filter(|r| r.value_type.is_int())
        .map(|r| (r.value_type.bits() as usize).div_ceil(64))
        .sum();
    let floats = sig
        .returns
        .iter()
        .filter(|r| r.value_type.is_float())
        .count();
    let (ri, rf) = match (arch, sig.call_conv) {
        (Arch::X86_64, CallConv::Tail) => (8, 8),
        (Arch::X86_64, CallConv::Winch) => return sig.returns.len() > 1,
        (Arch::X86_64, CallConv::WindowsFastcall) => (2, 1),
        (Arch::X86_64, _) => (if llvm_abi { 3 } else { 2 }, 2),
        _ => (2, 2),
    };
    ints > ri || floats > rf
}

fn bucket(n: usize) -> usize {
    match n {
        0..=8 => n,
        9..=12 => 9,
        13..=16 => 13,
        _ => 17,
    }
}

fn bucket_label(b: usize) -> String {
    match b {
        9 => "9-12".into(),
        13 => "13-16".into(),
        17 => "17+".into(),
        n => n.to_string(),
    }
}

fn section(o: &mut String, title: &str, rows: impl Iterator<Item = (String, u64)>) {
    let rows: Vec<(String, u64)> = rows.collect();
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let _ = writeln!(o, "\n{title}:");
    for (k, v) in rows {
        let _ = writeln!(o, "  {k:<34} {v:>8}  {:>6.1}%", pct(v, total));
    }
}

fn pct(k: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * k as f64 / n as f64
    }
}
