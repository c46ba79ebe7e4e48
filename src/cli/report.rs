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
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    let n = Nightly::collect(&args.campaigns, args.replay.as_deref())?;
    std::fs::write(&args.markdown, n.markdown())?;
    if let Some(json) = &args.json {
        std::fs::write(json, serde_json::to_string_pretty(&n)?)?;
    }
    println!(
        "report: {} ({})",
        args.markdown.display(),
        if n.ok() { "green" } else { "RED" }
    );
    Ok(if n.ok() { 0 } else { EXIT_FINDING })
}
