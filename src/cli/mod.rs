//! Command-line interface: one file per command.
//!
//! Exit codes are part of the interface: 0 when all engines agree (or a command succeeded), 1 on a
//! finding or regression, 2 on bad input (malformed file, unknown target, missing tool).

mod abi;
mod bench;
mod bench_object;
mod corpus;
mod coverage;
mod fuzz;
mod r#gen;
mod import;
mod reduce;
mod replay;
mod report;
mod run;
mod triage;

use clap::{Parser, Subcommand};

/// Exit code for bad input.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code for a finding or a regression.
pub const EXIT_FINDING: i32 = 1;

#[derive(Parser)]
#[command(
    name = "clif-diff",
    version,
    about = "Differential fuzzing of Cranelift: interpreter vs. JIT vs. object + linker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: a fuzzing campaign with a progress bar and a summary.
    Fuzz(fuzz::Args),
    /// Run one .clif case on all engines and print the verdict.
    Run(run::Args),
    /// Replay a regression corpus; fails on any changed verdict.
    Replay(replay::Args),
    /// C interop: random System V signatures, Cranelift against `cc`, in both directions.
    Abi(abi::Args),
    /// Object-path cost per case: one link per case against batches.
    BenchObject(bench_object::Args),
    /// Manage the regression corpus.
    #[command(subcommand)]
    Corpus(corpus::Command),
    /// Which ISLE rules, source areas, opcodes and relocations a campaign reaches (needs the
    /// cargo-fuzz build).
    Coverage(coverage::Args),
    /// Write the nightly report from campaign directories and a corpus replay.
    Report(report::Args),
    /// Rewrite a .clif from an older Cranelift into today's syntax.
    Import(import::Args),
    /// Shrink a finding to a small reproducer with the same bucket.
    Reduce(reduce::Args),
    /// Reduce and identify what a campaign left undecided: new findings, hits of coarse
    /// buckets, samples of known findings.
    Triage(triage::Args),
    /// Generate a random case (or, with --stats N, measure what N cases contain).
    Gen(r#gen::Args),
    /// Throughput per engine, alone and together (use a release build).
    Bench(bench::Args),
    /// Internal: serve engine requests on stdin (started by the sandbox).
    #[command(hide = true)]
    Worker,
    /// Internal: run one reduction job from stdin (started by `reduce` and triage).
    #[command(hide = true)]
    ReduceWorker,
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fuzz(a) => fuzz::main(a),
        Command::Bench(a) => bench::main(a),
        Command::Run(a) => run::main(a),
        Command::Replay(a) => replay::main(a),
        Command::BenchObject(a) => bench_object::main(a),
        Command::Abi(a) => abi::main(a),
        Command::Import(a) => import::main(a),
        Command::Corpus(c) => corpus::main(c),
        Command::Report(a) => report::main(a),
        Command::Coverage(a) => coverage::main(a),
        Command::Reduce(a) => reduce::main(a),
        Command::Triage(a) => triage::main(a),
        Command::Gen(a) => r#gen::main(a),
        Command::Worker => clif_diff::sandbox::worker_main().map(|_| 0),
        Command::ReduceWorker => clif_diff::reduce::isolated::worker_main().map(|_| 0),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line: the chain of causes joined, as `file:line: message` where known.
            eprintln!("clif-diff: {}", one_line(&e));
            EXIT_BAD_INPUT
        }
    }
}

pub fn one_line(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    s.lines().next().unwrap_or("").to_string()
}

/// Engine/option flags shared by every command that runs cases.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct EngineArgs {
    /// Engines to compare, e.g. `interp,jit,object` or `jit,object[opt_level=none]`.
    #[arg(long)]
    pub engines: Option<String>,
    /// JIT memory provider: system, arena, or far (allocations ≥ 4 GiB apart).
    #[arg(long, value_enum)]
    pub jit_memory: Option<clif_diff::engine::JitMemory>,
    /// Per-run wall-clock limit for native code, in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Interpreter instruction budget per run line.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Test-only: the interpreter skips the `sarg` copy (proves the oracle sees leaks).
    #[arg(long, hide = true)]
    pub fault_interp_skip_sarg_copy: bool,
    /// Test-only faults in the directive form, e.g. `interp-swap:bxor>bor,reducer-panic-at:3`.
    #[arg(long, hide = true)]
    pub faults: Option<String>,
}

impl EngineArgs {
    pub fn overrides(&self) -> anyhow::Result<clif_diff::harness::Overrides> {
        Ok(clif_diff::harness::Overrides {
            engines: match &self.engines {
                Some(e) => Some(clif_diff::engine::parse_engine_list(e)?),
                None => None,
            },
            jit_memory: self.jit_memory,
            timeout_ms: self.timeout_ms,
            fuel: self.fuel,
            faults: match (&self.faults, self.fault_interp_skip_sarg_copy) {
                (None, false) => None,
                (f, skip) => {
                    let mut f = match f {
                        Some(f) => clif_diff::engine::Faults::parse(f)?,
                        None => Default::default(),
                    };
                    f.interp_skip_sarg_copy |= skip;
                    Some(f)
                }
            },
        })
    }
}
