//! What the generator produces, measured on its output: `clif-diff gen --stats N`.
//!
//! Everything is read back from the generated IR (see `features`), not from the generator's
//! intentions, and every function is run through Cranelift's verifier with the case's own
//! target ISA and flags.

use super::Config;
use super::features::{call_kind, features};
use crate::case::TestCase;
use crate::target::build_isa;
use anyhow::Result;
use cranelift_codegen::ir::{ArgumentPurpose, Function, types};
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
    pub sarg_read_write_cases: u64,
    pub sarg_sizes: BTreeMap<u32, u64>,
    pub pointer_param_cases: u64,
    pub i128_cases: u64,
    pub float_cases: u64,
    /// Cases with an `f16` value, with an `f128` value.
    pub f16_cases: u64,
    pub f128_cases: u64,
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
    /// Cases with at least one atomic instruction, and per atomic opcode.
    pub atomic_cases: u64,
    pub atomic_op_cases: BTreeMap<String, u64>,
    /// Cases with a data object, and per use of data (`features::DATA_USES`).
    pub data_cases: u64,
    pub data_use_cases: BTreeMap<String, u64>,
    /// Cases that access a thread-local object.
    pub thread_local_cases: u64,
    /// Cases with a vector value, per vector type, and per opcode used on vectors.
    pub vector_cases: u64,
    /// Cases with traps as a feature, per trapping instruction, and with an unguarded division.
    pub trap_cases: u64,
    pub trap_op_cases: BTreeMap<String, u64>,
    pub unguarded_division_cases: u64,
    pub vector_type_cases: BTreeMap<String, u64>,
    /// Cases per memory flag (`features::MEMORY_FLAGS`).
    pub memory_flag_cases: BTreeMap<String, u64>,
    /// Cases with an explicit libcall, and per libcall.
    pub libcall_cases: u64,
    pub libcall_kind_cases: BTreeMap<String, u64>,
    pub vector_op_cases: BTreeMap<String, u64>,
    pub blocks: u64,
    pub instructions: u64,
    pub settings: BTreeMap<String, u64>,
    /// ISA flags of the `target` line.
    pub isa_flags: BTreeMap<String, u64>,
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
        let ft = features(case);
        self.stack_arg_cases += ft.stack_args as u64;
        self.stack_return_cases += ft.stack_returns as u64;
        self.multi_return_cases += ft.multi_returns as u64;
        self.sarg_cases += ft.sarg as u64;
        self.sarg_read_write_cases += ft.sarg_read_write as u64;
        self.pointer_param_cases += ft.pointer_params as u64;
        self.i128_cases += ft.i128 as u64;
        self.float_cases += ft.floats as u64;
        self.f16_cases += ft.f16_f128.contains(&types::F16) as u64;
        self.f128_cases += ft.f16_f128.contains(&types::F128) as u64;
        self.mixed_convention_cases += (ft.conventions.len() > 1) as u64;
        self.call_cases += !ft.call_kinds.is_empty() as u64;
        self.br_table_cases += ft.br_table as u64;
        self.loop_cases += ft.loops as u64;
        self.atomic_cases += !ft.atomics.is_empty() as u64;
        for op in &ft.atomics {
            *self.atomic_op_cases.entry(op.to_string()).or_default() += 1;
        }
        self.data_cases += !case.data.is_empty() as u64;
        self.thread_local_cases += ft.thread_local as u64;
        for u in &ft.data {
            *self.data_use_cases.entry(u.to_string()).or_default() += 1;
        }
        self.vector_cases += !ft.vector_types.is_empty() as u64;
        self.trap_cases += (!ft.trap_ops.is_empty() || ft.unguarded_division) as u64;
        for op in &ft.trap_ops {
            *self.trap_op_cases.entry(op.to_string()).or_default() += 1;
        }
        self.unguarded_division_cases += ft.unguarded_division as u64;
        for m in &ft.memory_flags {
            *self.memory_flag_cases.entry(m.to_string()).or_default() += 1;
        }
        self.libcall_cases += !ft.libcalls.is_empty() as u64;
        for l in &ft.libcalls {
            *self.libcall_kind_cases.entry(l.to_string()).or_default() += 1;
        }
        for t in &ft.vector_types {
            *self.vector_type_cases.entry(t.to_string()).or_default() += 1;
        }
        for op in &ft.vector_ops {
            *self.vector_op_cases.entry(op.to_string()).or_default() += 1;
        }
        for k in ft.call_kinds {
            *self.call_kind_cases.entry(k).or_default() += 1;
        }
        for (k, v) in &case.settings {
            *self.settings.entry(format!("{k}={v}")).or_default() += 1;
        }
        let isa = case.target.as_deref().unwrap_or("");
        let isa = isa.split_once(' ').map(|(_, f)| f).unwrap_or("baseline");
        *self.isa_flags.entry(isa.to_string()).or_default() += 1;
        for f in &case.functions {
            self.count_function(f);
        }
    }

    fn count_function(&mut self, f: &Function) {
        self.functions += 1;
        let sig = &f.signature;
        *self
            .param_counts
            .entry(bucket(sig.params.len()))
            .or_default() += 1;
        for p in &sig.params {
            if let ArgumentPurpose::StructArgument(n) = p.purpose {
                *self.sarg_sizes.entry(n).or_default() += 1;
            }
        }
        *self
            .conventions
            .entry(sig.call_conv.to_string())
            .or_default() += 1;
        for block in f.layout.blocks() {
            self.blocks += 1;
            for &v in f.dfg.block_params(block) {
                *self
                    .types
                    .entry(f.dfg.value_type(v).to_string())
                    .or_default() += 1;
            }
            for inst in f.layout.block_insts(block) {
                self.instructions += 1;
                let data = &f.dfg.insts[inst];
                *self.opcodes.entry(data.opcode().to_string()).or_default() += 1;
                for &r in f.dfg.inst_results(inst) {
                    *self
                        .types
                        .entry(f.dfg.value_type(r).to_string())
                        .or_default() += 1;
                }
                if let Some(kind) = call_kind(f, data) {
                    *self.call_sites.entry(kind).or_default() += 1;
                }
            }
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
        case_row(
            &mut o,
            "  read and written by callee",
            self.sarg_read_write_cases,
        );
        case_row(&mut o, "pointer parameters", self.pointer_param_cases);
        case_row(&mut o, "i128 values", self.i128_cases);
        case_row(&mut o, "float values", self.float_cases);
        case_row(&mut o, "f16 values (moved only)", self.f16_cases);
        case_row(&mut o, "f128 values (moved only)", self.f128_cases);
        case_row(&mut o, "calls", self.call_cases);
        for (k, c) in &self.call_kind_cases {
            case_row(&mut o, &format!("  {k}"), *c);
        }
        case_row(&mut o, "mixed conventions", self.mixed_convention_cases);
        case_row(&mut o, "br_table", self.br_table_cases);
        case_row(&mut o, "loops", self.loop_cases);
        case_row(&mut o, "atomics", self.atomic_cases);
        for (k, c) in &self.atomic_op_cases {
            case_row(&mut o, &format!("  {k}"), *c);
        }
        case_row(&mut o, "traps as a feature", self.trap_cases);
        for (k, c) in &self.trap_op_cases {
            case_row(&mut o, &format!("  {k}"), *c);
        }
        case_row(
            &mut o,
            "  unguarded division",
            self.unguarded_division_cases,
        );
        case_row(&mut o, "vectors", self.vector_cases);
        for (k, c) in &self.vector_type_cases {
            case_row(&mut o, &format!("  {k}"), *c);
        }
        for (k, c) in &self.memory_flag_cases {
            case_row(&mut o, &format!("memory flag {k}"), *c);
        }
        case_row(&mut o, "explicit libcalls", self.libcall_cases);
        for (k, c) in &self.libcall_kind_cases {
            case_row(&mut o, &format!("  {k}"), *c);
        }
        case_row(&mut o, "data objects", self.data_cases);
        for (k, c) in &self.data_use_cases {
            case_row(&mut o, &format!("  {k}"), *c);
        }
        case_row(
            &mut o,
            "  thread-local object accessed",
            self.thread_local_cases,
        );
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
        let _ = writeln!(o, "\nopcodes on vectors (share of cases):");
        for (k, v) in &self.vector_op_cases {
            case_row(&mut o, k, *v);
        }
        let _ = writeln!(o, "\ntarget ISA flags (share of cases):");
        for (k, v) in &self.isa_flags {
            case_row(&mut o, k, *v);
        }
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
