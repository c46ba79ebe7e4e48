//! `clif-diff gen`: print a generated case, or statistics over many.

use anyhow::{Context, Result, bail};
use clif_diff::generator::{self, Config, stats};
use clif_diff::target::Arch;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Seed of the case (bytes from a PCG64 seeded with it); with --stats, the first seed.
    #[arg(long, conflicts_with = "bytes")]
    pub seed: Option<u64>,
    /// Generate from the raw bytes of this file instead of a seed.
    #[arg(long)]
    pub bytes: Option<PathBuf>,
    /// Generator knobs, as TOML (fields left out keep their defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Target architecture (x86_64, aarch64, riscv64, s390x); default: the config's, else the host.
    #[arg(long)]
    pub target: Option<String>,
    /// Generate N cases from consecutive seeds and print what they contain.
    #[arg(long, value_name = "N", conflicts_with = "bytes")]
    pub stats: Option<u64>,
}

pub fn main(args: Args) -> Result<i32> {
    let cfg = load_config(args.config.as_deref(), args.target.as_deref())?;
    if let Some(n) = args.stats {
        let first = args.seed.unwrap_or(0);
        let s = stats::collect(&cfg, first..first + n)?;
        print!("{}", s.table());
        return Ok(0);
    }
    let case = match &args.bytes {
        Some(path) => {
            let data =
                std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
            let mut u = arbitrary::Unstructured::new(&data);
            generator::generate(&mut u, &cfg).map_err(|e| anyhow::anyhow!("generator: {e}"))?
        }
        None => generator::from_seed(args.seed.unwrap_or(0), &cfg),
    };
    print!("{}", case.to_text());
    Ok(0)
}

/// The config from `file` (or the defaults), restricted to `target` (or the file's target, or
/// the host's architecture).
pub fn load_config(file: Option<&std::path::Path>, target: Option<&str>) -> Result<Config> {
    let (cfg, file_target) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            let table: toml::Table =
                toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
            let named = table.contains_key("target");
            let cfg: Config = table
                .try_into()
                .with_context(|| format!("{}", path.display()))?;
            (cfg, named)
        }
        None => (Config::unrestricted(), false),
    };
    let arch: Arch = match target {
        Some(t) => t.parse()?,
        None if file_target => cfg.arch()?,
        None => Arch::host(),
    };
    let cfg = cfg.restricted_to(arch);
    if let Err(e) = cfg.validate() {
        bail!("{e}");
    }
    Ok(cfg)
}
