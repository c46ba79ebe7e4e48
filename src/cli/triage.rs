//! `clif-diff triage DIR`: decide what a campaign left undecided.

use super::EXIT_FINDING;
use super::fuzz::parse_duration;
use clif_diff::campaign::findings::FindingStore;
use clif_diff::campaign::triage::{self, Limits};
use clif_diff::known::KnownBuckets;
use clif_diff::reduce::isolated::Control;
use clif_diff::sandbox::WorkerCommand;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// A campaign's findings directory.
    pub dir: PathBuf,
    /// Total time budget; what is left stays on disk for the next run.
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub budget: Duration,
    /// Wall-clock limit of one reduction (each may also test at most 2000 candidates).
    #[arg(long, value_parser = parse_duration, default_value = "600s")]
    pub reduce_budget: Duration,
    /// Skip the re-check of known findings' samples.
    #[arg(long)]
    pub no_known: bool,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    anyhow::ensure!(
        args.dir.is_dir(),
        "{}: not a findings directory",
        args.dir.display()
    );
    let store = FindingStore::open(&args.dir, KnownBuckets::load_default())?;
    let worker = WorkerCommand::from_env()?;
    let mut items = triage::pending(&store);
    if args.no_known {
        items.retain(|(p, _)| *p < 4);
    }
    items.sort_by_key(|(p, _)| *p);
    let limits = Limits {
        time: args.reduce_budget,
        max_candidates: Some(triage::MAX_CANDIDATES),
    };
    let start = Instant::now();
    let total = items.len();
    let mut done = 0;
    let mut new = 0;
    for (_, item) in items {
        if start.elapsed() >= args.budget {
            break;
        }
        let d = triage::process(&store, &worker, &item, &limits, &Control::default())
            .unwrap_or_else(|e| triage::Decision::Undecided {
                what: format!("{item:?}"),
                why: format!("{e:#}"),
            });
        println!("{}", d.line());
        new += usize::from(d.is_new());
        done += 1;
    }
    println!(
        "triage: {done} of {total} items decided in {:.0} s, {new} new finding(s); {} left",
        start.elapsed().as_secs_f64(),
        triage::pending(&store).len()
    );
    Ok(if new > 0 { EXIT_FINDING } else { 0 })
}
