//! The three ways of executing a case, behind one interface.
//!
//! * [`interp`]: `cranelift-interpreter`, the reference. It is given a copy of the module in which
//!   `sarg` callee-copy semantics are made explicit ([`sarg_copy`]).
//! * [`jit`]: `cranelift-jit` on the host, with a choice of memory provider ([`memory`]); each run
//!   executes in a forked child ([`native`]).
//! * [`object`]: `cranelift-object`, the system (or cross) `cc`, and the resulting program run
//!   natively or under `qemu-user`; [`batch`] runs many cases through one link and one process.
//!
//! All three implement [`Engine`]; [`EngineKind::engine`] picks one, and [`execute`] is the one
//! entry point campaigns, `run`, `reduce` and the cargo-fuzz targets share.
//!
//! Engines are only ever called inside a sandbox worker (see [`crate::sandbox`]), or in the
//! cargo-fuzz process, where a crash is what libFuzzer reports anyway; each reports one
//! [`Outcome`] per run line through a callback, as soon as it is known, so that a worker that dies
//! mid-case loses nothing already observed.

pub mod batch;
pub mod interp;
pub mod jit;
pub mod libcalls;
pub mod memory;
pub mod native;
pub mod object;
pub mod program;
pub mod runner;
pub mod sarg_copy;
pub mod symbols;

use crate::case::TestCase;
use crate::outcome::{Outcome, Phase};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    Interp,
    Jit,
    Object,
}

/// A way of executing a case.
pub trait Engine: Sync {
    fn kind(&self) -> EngineKind;

    /// Runs the run lines `runs` of `case`, reporting each outcome as it is known; every line in
    /// `runs` is reported exactly once. Called through [`execute`], which has already answered
    /// what no engine can run.
    fn run(
        &self,
        case: &TestCase,
        spec: &EngineSpec,
        opts: &RunOptions,
        runs: Range<usize>,
        report: &mut dyn FnMut(usize, Outcome),
    );

    /// Runs every run line of every case, reporting `(case, run, outcome)`. Engines that can
    /// share work between cases (the object path: one link, one process) override it.
    fn run_batch(
        &self,
        cases: &[&TestCase],
        spec: &EngineSpec,
        opts: &RunOptions,
        report: &mut dyn FnMut(usize, usize, Outcome),
    ) {
        for (k, case) in cases.iter().enumerate() {
            execute(case, spec, opts, 0, &mut |run, o| report(k, run, o));
        }
    }
}

/// `cranelift-interpreter`, with `sarg` copies and symbols modelled ([`interp`]).
pub struct Interpreter;
/// `cranelift-jit` ([`jit`]).
pub struct Jit;
/// `cranelift-object` and the system linker ([`object`], [`batch`]).
pub struct ObjectPath;

impl Engine for Interpreter {
    fn kind(&self) -> EngineKind {
        EngineKind::Interp
    }
    fn run(
        &self,
        case: &TestCase,
        spec: &EngineSpec,
        opts: &RunOptions,
        runs: Range<usize>,
        report: &mut dyn FnMut(usize, Outcome),
    ) {
        interp::run(case, spec, opts, runs, report)
    }
}

impl Engine for Jit {
    fn kind(&self) -> EngineKind {
        EngineKind::Jit
    }
    fn run(
        &self,
        case: &TestCase,
        spec: &EngineSpec,
        opts: &RunOptions,
        runs: Range<usize>,
        report: &mut dyn FnMut(usize, Outcome),
    ) {
        jit::run(case, spec, opts, runs, report)
    }
}

impl Engine for ObjectPath {
    fn kind(&self) -> EngineKind {
        EngineKind::Object
    }
    fn run(
        &self,
        case: &TestCase,
        spec: &EngineSpec,
        opts: &RunOptions,
        runs: Range<usize>,
        report: &mut dyn FnMut(usize, Outcome),
    ) {
        object::run(case, spec, opts, runs, report)
    }
    fn run_batch(
        &self,
        cases: &[&TestCase],
        spec: &EngineSpec,
        opts: &RunOptions,
        report: &mut dyn FnMut(usize, usize, Outcome),
    ) {
        batch::run_batch_with(cases, spec, opts, report)
    }
}

impl EngineKind {
    pub const ALL: [EngineKind; 3] = [EngineKind::Interp, EngineKind::Jit, EngineKind::Object];

    /// The engine of this kind.
    pub fn engine(self) -> &'static dyn Engine {
        match self {
            EngineKind::Interp => &Interpreter,
            EngineKind::Jit => &Jit,
            EngineKind::Object => &ObjectPath,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Interp => "interp",
            EngineKind::Jit => "jit",
            EngineKind::Object => "object",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "interp" | "interpreter" => EngineKind::Interp,
            "jit" => EngineKind::Jit,
            "object" | "obj" => EngineKind::Object,
            _ => anyhow::bail!("unknown engine `{s}` (expected interp, jit or object)"),
        })
    }
}

/// One engine with the settings it overrides; the unit the oracle compares.
///
/// Overrides turn one engine into several points of the settings axis, e.g. the object path at
/// `opt_level=none` against the object path with `regalloc_algorithm=single_pass`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EngineSpec {
    pub kind: EngineKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<(String, String)>,
}

impl EngineSpec {
    pub fn plain(kind: EngineKind) -> EngineSpec {
        EngineSpec {
            kind,
            overrides: Vec::new(),
        }
    }

    /// `jit`, or `object[opt_level=none]` when settings are overridden.
    pub fn label(&self) -> String {
        if self.overrides.is_empty() {
            self.kind.to_string()
        } else {
            let o: Vec<String> = self
                .overrides
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{}[{}]", self.kind, o.join(","))
        }
    }
}

impl fmt::Display for EngineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Parses `jit` or `object[opt_level=none,regalloc_algorithm=single_pass]`.
impl FromStr for EngineSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (kind, rest) = match s.split_once('[') {
            Some((k, r)) => (k, r.strip_suffix(']').unwrap_or(r)),
            None => (s, ""),
        };
        let overrides = rest
            .split(',')
            .filter(|o| !o.is_empty())
            .map(|o| {
                let (k, v) = o.split_once('=').unwrap_or((o, "true"));
                (k.to_string(), v.to_string())
            })
            .collect();
        Ok(EngineSpec {
            kind: kind.trim().parse()?,
            overrides,
        })
    }
}

/// Parses a comma-separated engine list, keeping brackets together.
pub fn parse_engine_list(s: &str) -> anyhow::Result<Vec<EngineSpec>> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().parse()?);
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().parse()?);
    }
    Ok(out)
}

/// Where the JIT puts code and data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum JitMemory {
    /// `cranelift-jit`'s `SystemMemoryProvider`.
    #[default]
    System,
    /// `cranelift-jit`'s `ArenaMemoryProvider`: one contiguous reservation.
    Arena,
    /// Every allocation at least 4 GiB from the previous one, so that 32-bit PC-relative
    /// relocations between them cannot be satisfied.
    Far,
}

impl fmt::Display for JitMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JitMemory::System => "system",
            JitMemory::Arena => "arena",
            JitMemory::Far => "far",
        })
    }
}

impl FromStr for JitMemory {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "system" => JitMemory::System,
            "arena" => JitMemory::Arena,
            "far" => JitMemory::Far,
            _ => anyhow::bail!("unknown JIT memory provider `{s}` (system, arena or far)"),
        })
    }
}

/// Deliberate faults, for proving that the oracle, the triage and the reducer see what they
/// should. Never set in campaigns of real use; the CLI exposes them only as hidden test options,
/// and a case carries them in one `; clif-diff: fault = …` directive so it replays alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// The interpreter passes `sarg` pointers through instead of copying.
    #[serde(default)]
    pub interp_skip_sarg_copy: bool,
    /// The interpreter executes opcode `.0` as opcode `.1` (both binary): a stand-in for a
    /// miscompile, with a root cause that reduction must isolate (`interp-swap:bxor>bor`).
    #[serde(default)]
    pub interp_swap: Vec<(String, String)>,
    /// The worker aborts when handed a batch of more than one case (proves that
    /// `Sandbox::run_batch` recovers case by case).
    #[serde(default)]
    pub worker_dies_on_batch: bool,
    /// Building the reducer's n-th candidate trips a Cranelift assertion (the IR builder's
    /// "invalid type for half_width"), as real candidates have.
    #[serde(default)]
    pub reducer_panic_at: Option<u64>,
    /// The reducer process aborts at its n-th candidate (a crash no `catch_unwind` contains).
    #[serde(default)]
    pub reducer_abort_at: Option<u64>,
    /// JIT code of a case that contains this opcode crashes (SIGSEGV) when called: a planted
    /// JIT crash (`jit-crash-on:imul`).
    #[serde(default)]
    pub jit_crash_on: Option<String>,
    /// Compiling a function that contains this opcode for the JIT panics inside Cranelift's
    /// pipeline: a planted Cranelift panic (`jit-compile-panic-on:band`).
    #[serde(default)]
    pub jit_compile_panic_on: Option<String>,
}

impl Faults {
    pub fn is_empty(&self) -> bool {
        *self == Faults::default()
    }

    /// Parses the directive form: `interp-skip-sarg-copy, interp-swap:bxor>bor,
    /// reducer-panic-at:3`.
    pub fn parse(s: &str) -> anyhow::Result<Faults> {
        let mut f = Faults::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, arg) = item.split_once(':').unwrap_or((item, ""));
            match name {
                "interp-skip-sarg-copy" => f.interp_skip_sarg_copy = true,
                "worker-dies-on-batch" => f.worker_dies_on_batch = true,
                "interp-swap" => {
                    let (a, b) = arg
                        .split_once('>')
                        .ok_or_else(|| anyhow::anyhow!("`interp-swap:FROM>TO`, got `{item}`"))?;
                    interp::check_swap(a, b)?;
                    f.interp_swap.push((a.to_string(), b.to_string()));
                }
                "reducer-panic-at" => f.reducer_panic_at = Some(arg.parse()?),
                "reducer-abort-at" => f.reducer_abort_at = Some(arg.parse()?),
                "jit-crash-on" => f.jit_crash_on = Some(opcode_arg(item, arg)?),
                "jit-compile-panic-on" => f.jit_compile_panic_on = Some(opcode_arg(item, arg)?),
                _ => anyhow::bail!("unknown fault `{name}`"),
            }
        }
        Ok(f)
    }

    /// The directive form [`Faults::parse`] reads.
    pub fn to_directive(&self) -> String {
        let mut items = Vec::new();
        if self.interp_skip_sarg_copy {
            items.push("interp-skip-sarg-copy".to_string());
        }
        for (a, b) in &self.interp_swap {
            items.push(format!("interp-swap:{a}>{b}"));
        }
        if self.worker_dies_on_batch {
            items.push("worker-dies-on-batch".to_string());
        }
        if let Some(n) = self.reducer_panic_at {
            items.push(format!("reducer-panic-at:{n}"));
        }
        if let Some(n) = self.reducer_abort_at {
            items.push(format!("reducer-abort-at:{n}"));
        }
        if let Some(op) = &self.jit_crash_on {
            items.push(format!("jit-crash-on:{op}"));
        }
        if let Some(op) = &self.jit_compile_panic_on {
            items.push(format!("jit-compile-panic-on:{op}"));
        }
        items.join(", ")
    }
}

fn opcode_arg(item: &str, arg: &str) -> anyhow::Result<String> {
    arg.parse::<cranelift_codegen::ir::Opcode>()
        .map_err(|_| anyhow::anyhow!("`{item}`: `{arg}` is not an opcode"))?;
    Ok(arg.to_string())
}

/// Whether `func` contains an instruction with the opcode named `op` (for planted faults).
pub fn has_opcode(func: &cranelift_codegen::ir::Function, op: &str) -> bool {
    func.layout.blocks().any(|b| {
        func.layout
            .block_insts(b)
            .any(|i| func.dfg.insts[i].opcode().to_string() == op)
    })
}

/// Execution limits and engine options shared by all engines of one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub jit_memory: JitMemory,
    /// Interpreter instruction budget per run line.
    pub fuel: u64,
    /// Wall-clock limit per native run line.
    pub timeout_ms: u64,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub jit_runner: JitRunner,
}

/// Where the JIT's code runs: each case in a forked child, or in the one persistent runner
/// ([`runner`]), whose memory provider is the shared counterpart of `jit_memory`'s (system and
/// arena become kernel-placed regions packed per kind, far stays far).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JitRunner {
    #[default]
    Fork,
    Persistent,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jit_memory: JitMemory::System,
            fuel: 10_000_000,
            timeout_ms: 5_000,
            faults: Faults::default(),
            jit_runner: JitRunner::Fork,
        }
    }
}

/// Runs `spec` on the run lines `first..` of `case`, reporting each outcome as it is known.
///
/// Panics inside Cranelift are caught and reported as [`Outcome::Panic`] with the phase they
/// happened in; see [`catch`].
pub fn execute(
    case: &TestCase,
    spec: &EngineSpec,
    opts: &RunOptions,
    first: usize,
    report: &mut dyn FnMut(usize, Outcome),
) {
    let runs = first..case.runs.len();
    debug_assert_eq!(spec.kind.engine().kind(), spec.kind);
    if runs.is_empty() {
        return;
    }
    if let Some(reason) = undefined_symbol(case) {
        return report_all(runs, Outcome::Unsupported { reason }, report);
    }
    spec.kind.engine().run(case, spec, opts, runs, report)
}

/// Runs every run line of every case on `spec`, reporting `(case, run, outcome)`; the engine
/// decides how ([`Engine::run_batch`]).
pub fn execute_batch(
    cases: &[&TestCase],
    spec: &EngineSpec,
    opts: &RunOptions,
    report: &mut dyn FnMut(usize, usize, Outcome),
) {
    spec.kind.engine().run_batch(cases, spec, opts, report)
}

/// A function the case calls or takes the address of that only upstream's test runner provides
/// (`%__cranelift_throw` for exception tests): no engine here can link it, and says so. Other
/// undefined names are left to fail as they fail (a link error is something to see).
pub fn undefined_symbol(case: &TestCase) -> Option<String> {
    for f in &case.functions {
        for (fr, _) in f.dfg.ext_funcs.iter() {
            if let Some(name) = crate::facts::ext_name(f, fr)
                && name.starts_with(UPSTREAM_RUNTIME_PREFIX)
                && case.function(&name).is_none()
            {
                return Some(format!(
                    "%{name} is a symbol of upstream's test runtime, which clif-diff does not provide"
                ));
            }
        }
    }
    None
}

/// Names upstream's filetest runner defines for the code under test.
const UPSTREAM_RUNTIME_PREFIX: &str = "__cranelift_";

/// Reports `outcome` for every run line in `runs`: an engine-level failure applies to them all.
pub fn report_all(
    runs: std::ops::Range<usize>,
    outcome: Outcome,
    report: &mut dyn FnMut(usize, Outcome),
) {
    for i in runs {
        report(i, outcome.clone());
    }
}

/// Runs `f`, turning a panic into [`Outcome::Panic`] at `phase`.
pub fn catch<T>(phase: Phase, f: impl FnOnce() -> T) -> Result<T, Outcome> {
    crate::panics::catch(f).map_err(|p| Outcome::panic_here(phase, p.message, p.location))
}
