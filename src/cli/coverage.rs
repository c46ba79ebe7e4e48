//! `clif-diff coverage`: a campaign whose workers are the SanitizerCoverage build, then the map of
//! which ISLE rules, source areas, opcodes and relocations it reached (see `clif_diff::coverage`).

use super::fuzz::parse_duration;
use anyhow::{Context, Result, bail};
use clif_diff::coverage::map::{Baseline, CoverageMap, Diff};
use clif_diff::coverage::{render, sancov, worker};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Campaign time budget, e.g. `5m`.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub time: Duration,
    /// Case budget instead of (or besides) the time.
    #[arg(long)]
    pub cases: Option<u64>,
    /// Target architecture (default: the host).
    #[arg(long)]
    pub target: Option<String>,
    /// Parallel workers (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Generator configuration (TOML), as for `fuzz`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// First seed of the campaign.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The instrumented build (default: the cargo-fuzz `differential` target under
    /// `$CARGO_TARGET_DIR` or `fuzz/target`).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Output directory: `coverage.md`, `coverage.json`, `coverage.svg`, and the raw dumps.
    #[arg(long, default_value = "coverage")]
    pub out: PathBuf,
    /// Compare with a saved baseline (see --save-baseline) or a whole `coverage.json`.
    #[arg(long)]
    pub diff: Option<PathBuf>,
    /// Write the map's baseline (shares and hit rules per backend) to this file.
    #[arg(long)]
    pub save_baseline: Option<PathBuf>,
    /// With --diff: exit 1 when a backend's share of hit rules falls by more than this many
    /// percentage points.
    #[arg(long, requires = "diff")]
    pub max_drop: Option<f64>,
    /// Do not run a campaign: map the dumps already in OUT/dumps.
    #[arg(long)]
    pub no_run: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn main(args: Args) -> Result<i32> {
    let wanted = args
        .binary
        .clone()
        .unwrap_or_else(|| clif_diff::coverage::default_instrumented_binary(Path::new(".")));
    let binary = std::fs::canonicalize(&wanted).with_context(|| {
        format!(
            "{}: no instrumented build (run `cargo +nightly fuzz build -O` in fuzz/)",
            wanted.display()
        )
    })?;
    sancov::sections(&binary)?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => clif_diff::target::Arch::host().name().to_string(),
    };
    let dumps = args.out.join("dumps");
    if !args.no_run {
        if dumps.exists() {
            std::fs::remove_dir_all(&dumps)?;
        }
        std::fs::create_dir_all(&dumps)?;
        campaign(&args, &binary, &target, &dumps)?;
    }
    let map = CoverageMap::build(&dumps, &binary, &target)?;
    let diff = match &args.diff {
        Some(p) => Some(Diff::new(&Baseline::load(p)?, &Baseline::of(&map))),
        None => None,
    };
    if let Some(p) = &args.save_baseline {
        std::fs::write(p, serde_json::to_string_pretty(&Baseline::of(&map))? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    std::fs::write(
        args.out.join("coverage.json"),
        serde_json::to_vec_pretty(&map)?,
    )?;
    let md = render::markdown(&map, diff.as_ref());
    std::fs::write(args.out.join("coverage.md"), &md)?;
    render::chart(&map, &args.out.join("coverage.svg"))?;
    for b in render::backends(&map) {
        let s = map.share(&b);
        println!(
            "{b}: {} of {} measurable ISLE rules hit ({:.1}%; {} rules in the code)",
            s.hit,
            s.measurable,
            s.percent(),
            s.total
        );
        let top: Vec<String> = map
            .top_unhit(&b, 5)
            .into_iter()
            .map(|(g, s)| format!("{g} ({} unhit)", s.measurable - s.hit))
            .collect();
        println!("  top unhit: {}", top.join("; "));
    }
    println!("map: {}", args.out.join("coverage.md").display());
    if let (Some(d), Some(points)) = (&diff, args.max_drop) {
        let drops = d.drops(points);
        for (b, old, new) in &drops {
            eprintln!(
                "coverage: {b} fell from {old:.1}% to {new:.1}% of its ISLE rules (more than \
                 {points} points)"
            );
        }
        if !drops.is_empty() {
            return Ok(super::EXIT_FINDING);
        }
    }
    Ok(0)
}

/// Runs `clif-diff fuzz` with the instrumented build as its worker.
fn campaign(args: &Args, binary: &Path, target: &str, dumps: &Path) -> Result<()> {
    let me = std::env::current_exe()?;
    let mut c = Command::new(me);
    c.arg("fuzz")
        .arg("--time")
        .arg(format!("{}s", args.time.as_secs_f64()))
        .arg("--target")
        .arg(target)
        .arg("--seed")
        .arg(args.seed.to_string())
        .arg("--no-reduce")
        .arg("--out")
        .arg(args.out.join("campaign"));
    if let Some(n) = args.cases {
        c.arg("--cases").arg(n.to_string());
    }
    if let Some(j) = args.jobs {
        c.arg("--jobs").arg(j.to_string());
    }
    if let Some(cfg) = &args.config {
        c.arg("--config").arg(cfg);
    }
    if args.quiet {
        c.arg("--quiet");
    }
    c.env("CLIF_DIFF_EXE", binary)
        .env(worker::DIR_VAR, std::fs::canonicalize(dumps)?)
        // The build is an AddressSanitizer build when cargo-fuzz's default was used: leave traps
        // of JIT code to the engines, as in an ordinary worker, and bound memory there instead of
        // with RLIMIT_AS (which ASan's shadow reservation cannot live with).
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_sigill=0:handle_sigfpe=0:\
             handle_abort=0:hard_rss_limit_mb=8192:allocator_may_return_null=1",
        );
    let status = c.status().context("starting the campaign")?;
    // 0: no finding; 1: findings (reported by the campaign, not this command's business).
    match status.code() {
        Some(0 | 1) => Ok(()),
        _ => bail!("the coverage campaign failed ({status})"),
    }
}
