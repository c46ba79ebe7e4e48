//! `clif-diff report`: the nightly report from campaign directories and a replay result.

use super::EXIT_FINDING;
use clif_diff::report::Nightly;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Campaign output directories (each with a `summary.json`).
    #[arg(long = "campaign", required = true)]
    pub campaigns: Vec<PathBuf>,
    /// JSON written by `clif-diff replay --json`.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Markdown report path.
    #[arg(long, default_value = "report.md")]
    pub markdown: PathBuf,
    /// JSON report path.
    #[arg(long, default_value = "report.json")]
    pub json: PathBuf,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    let n = Nightly::collect(&args.campaigns, args.replay.as_deref())?;
    std::fs::write(&args.markdown, n.markdown())?;
    std::fs::write(&args.json, serde_json::to_string_pretty(&n)?)?;
    println!(
        "report: {} ({}), {}",
        args.markdown.display(),
        if n.ok() { "green" } else { "RED" },
        args.json.display()
    );
    Ok(if n.ok() { 0 } else { EXIT_FINDING })
}
