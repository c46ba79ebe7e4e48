//! `clif-diff import OLD.clif`: legacy CLIF text into today's syntax.

use clif_diff::import::{ImportOptions, import};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The old `.clif` file.
    pub file: PathBuf,
    /// Target line for files that have none (default x86_64).
    #[arg(long)]
    pub target: Option<String>,
    /// Rename a calling convention, e.g. `apple_aarch64=system_v` (repeatable).
    #[arg(long = "map-call-conv", value_name = "FROM=TO")]
    pub map: Vec<String>,
    /// Write here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    let old = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", args.file.display()))?;
    let call_conv_map = args
        .map
        .iter()
        .map(|m| {
            m.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--map-call-conv wants FROM=TO, got `{m}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let case = import(
        &old,
        &ImportOptions {
            target: args.target,
            call_conv_map,
            origin: Some(args.file.display().to_string()),
        },
    )?;
    match &args.output {
        Some(o) => std::fs::write(o, case.to_text())?,
        None => print!("{}", case.to_text()),
    }
    Ok(0)
}
