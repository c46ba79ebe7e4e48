//! `clif-diff bench`: cases/s per engine, alone and together, on a fixed seed range.

use super::EngineArgs;
use clif_diff::bench::{BenchConfig, render, run};
use clif_diff::generator;
use clif_diff::harness::Plan;
use clif_diff::sandbox::WorkerCommand;

#[derive(clap::Args)]
pub struct Args {
    /// Cases per measurement.
    #[arg(long, default_value_t = 200)]
    pub cases: u64,
    /// First seed of the fixed range.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Job counts to measure, comma-separated.
    #[arg(long, default_value = "1,2", value_delimiter = ',')]
    pub jobs: Vec<usize>,
    /// Cases per batch on the object path, as `fuzz --batch` (1: no batching).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Target architecture of generated cases.
    #[arg(long)]
    pub target: Option<String>,
    /// Write the rows and breakdown as JSON here too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    if cfg!(debug_assertions) {
        eprintln!("clif-diff bench: warning: debug build; numbers are not representative");
    }
    let cfg = super::r#gen::load_config(None, args.target.as_deref())?;
    let source = move |seed: u64| generator::from_seed(seed, &cfg);
    let plan = Plan::for_case(
        &clif_diff::case::TestCase::empty(),
        &args.engine.overrides()?,
    )?;
    let bench = BenchConfig {
        cases: args.cases,
        first_seed: args.seed,
        jobs: args.jobs.clone(),
        plan,
        worker: WorkerCommand::from_env()?,
        batch: args.batch,
    };
    let (rows, breakdown) = run(&bench, &source)?;
    println!(
        "seeds {}..{}, target {}, batch {}\n",
        args.seed,
        args.seed + args.cases,
        args.target.as_deref().unwrap_or("host"),
        args.batch
    );
    print!("{}", render(&rows, &breakdown));
    if let Some(j) = &args.json {
        std::fs::write(
            j,
            serde_json::to_string_pretty(
                &serde_json::json!({ "rows": rows, "breakdown": breakdown }),
            )?,
        )?;
    }
    Ok(0)
}
