//! `clif-diff replay DIR`: the regression corpus, file by file.

use super::{EXIT_FINDING, EngineArgs};
use clif_diff::replay::{Status, all_pass, corpus_files, replay_file};
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Directory of `.clif` filetests; each may carry a `; clif-diff: expect = …` directive
    /// (without one, a file expects `agree`: its run lines hold and the engines agree).
    pub dir: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    let files = corpus_files(&args.dir)?;
    if files.is_empty() {
        anyhow::bail!("{}: no .clif files", args.dir.display());
    }
    let overrides = args.engine.overrides()?;
    let mut sandbox = Sandbox::new(WorkerCommand::from_env()?);
    let mut entries = Vec::new();
    for f in &files {
        for e in replay_file(&mut sandbox, f, &overrides) {
            let status = match &e.status {
                Status::Pass => "pass".to_string(),
                Status::Skipped { why } => format!("SKIPPED ({why})"),
                Status::Fixed => format!("FIXED (expected {}, engines now agree)", e.expected),
                Status::Regression { got } => {
                    format!("REGRESSION (expected {}, got {got})", e.expected)
                }
                Status::Invalid { error } => format!("INVALID ({error})"),
            };
            println!("{:<60} {status}", e.name());
            entries.push(e);
        }
    }
    let count = |p: fn(&Status) -> bool| entries.iter().filter(|e| p(&e.status)).count();
    println!(
        "{} cases: {} pass, {} skipped, {} regression, {} fixed, {} invalid",
        entries.len(),
        count(|s| *s == Status::Pass),
        count(|s| matches!(s, Status::Skipped { .. })),
        count(|s| matches!(s, Status::Regression { .. })),
        count(|s| *s == Status::Fixed),
        count(|s| matches!(s, Status::Invalid { .. })),
    );
    if let Some(j) = &args.json {
        std::fs::write(j, serde_json::to_string_pretty(&entries)?)?;
    }
    Ok(if all_pass(&entries) { 0 } else { EXIT_FINDING })
}
