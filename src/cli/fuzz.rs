//! `clif-diff fuzz`: the main job — a campaign with a live progress bar and a summary.

use super::{EXIT_FINDING, EngineArgs};
use clif_diff::campaign::findings::FindingStore;
use clif_diff::campaign::{self, CampaignConfig, CaseSource};
use clif_diff::case::TestCase;
use clif_diff::generator::{self, Config};
use clif_diff::harness::Plan;
use clif_diff::known::KnownBuckets;
use clif_diff::sandbox::WorkerCommand;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Time budget, e.g. `90s`, `10m`, `2h`.
    #[arg(long, value_parser = parse_duration)]
    pub time: Option<Duration>,
    /// Case budget.
    #[arg(long)]
    pub cases: Option<u64>,
    /// Parallel workers (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Findings directory.
    #[arg(long, default_value = "findings")]
    pub out: PathBuf,
    /// Continue from the last seed recorded in OUT/campaign.json.
    #[arg(long)]
    pub resume: bool,
    /// Target architecture of generated cases (default: the config's, else the host).
    #[arg(long)]
    pub target: Option<String>,
    /// Generator configuration (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Do not triage (reduce and identify) findings during the campaign; `clif-diff triage DIR`
    /// does it later from what is on disk.
    #[arg(long)]
    pub no_reduce: bool,
    /// Wall-clock limit of one triage reduction (each may also test at most 2000 candidates).
    #[arg(long, value_parser = parse_duration, default_value = "600s")]
    pub reduce_budget: Duration,
    /// After the case budget, how long urgent triage (new findings) may go on.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub triage_grace: Duration,
    /// Cases per batch on the object path (one object file, link and process for all of them;
    /// findings are confirmed alone). 1 disables batching.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Take cases from the `.clif` files of a directory (seed i is file i mod n) instead of the
    /// generator: replays a corpus as a campaign, and lets tests inject crashing cases.
    #[arg(long, hide = true)]
    pub from_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| format!("bad duration `{s}`"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "ms" => n / 1000.0,
        _ => return Err(format!("bad duration unit in `{s}` (use s, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

struct DirSource(Vec<TestCase>);

impl CaseSource for DirSource {
    fn case(&self, seed: u64) -> TestCase {
        self.0[(seed % self.0.len() as u64) as usize].clone()
    }
}

struct GenSource(Config);

impl CaseSource for GenSource {
    fn case(&self, seed: u64) -> TestCase {
        generator::from_seed(seed, &self.0)
    }
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    let source: Box<dyn CaseSource> = match &args.from_dir {
        Some(dir) => {
            let cases = clif_diff::replay::corpus_files(dir)?
                .iter()
                .map(|f| clif_diff::case::load(f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            anyhow::ensure!(!cases.is_empty(), "{}: no .clif files", dir.display());
            Box::new(DirSource(cases))
        }
        None => {
            let cfg = super::r#gen::load_config(args.config.as_deref(), args.target.as_deref())?;
            Box::new(GenSource(cfg))
        }
    };
    let first = source.case(args.seed);
    let mut plan = Plan::for_case(&first, &args.engine.overrides()?)?;
    // Directives of injected cases must not leak into the campaign's plan, except through the
    // command line; generated cases carry none.
    if args.from_dir.is_some() {
        plan = Plan::for_case(&TestCase::empty(), &args.engine.overrides()?)?;
    }
    // A campaign that cannot run an engine it was asked for would only count skips: say so now,
    // in one line (the missing tool and its package), instead of after the budget.
    super::run::preflight(&first, &plan)?;
    let mut first_seed = args.seed;
    if args.resume
        && let Some(st) = campaign::load_state(&args.out)
    {
        first_seed = st.next_seed;
        eprintln!("resuming at seed {first_seed} ({} cases so far)", st.cases);
    }
    let (time, cases) = match (args.time, args.cases) {
        (None, None) => (Some(Duration::from_secs(60)), None),
        other => other,
    };
    let cfg = CampaignConfig {
        time,
        cases,
        jobs: args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        plan,
        first_seed,
        out: args.out.clone(),
        worker: WorkerCommand::from_env()?,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        batch: args.batch,
        triage: (!args.no_reduce).then_some(campaign::TriageConfig {
            limits: campaign::triage::Limits {
                time: args.reduce_budget,
                max_candidates: Some(campaign::triage::MAX_CANDIDATES),
            },
            grace: args.triage_grace,
        }),
    };
    let store = FindingStore::open(&args.out, KnownBuckets::load_default())?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // Second Ctrl-C: the user means it.
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted: finishing cases in flight, then summarising (Ctrl-C again to abort)"
            );
        });
    }
    let result = campaign::run(&cfg, source.as_ref(), store, stop)?;
    println!("{}", result.stats.summary(&result.store.findings()));
    println!(
        "next seed {} (resume with --resume --out {})",
        result.state.next_seed,
        args.out.display()
    );
    let unknown = result.store.findings().iter().any(|f| f.is_new());
    Ok(if unknown || result.stats.new_findings > 0 {
        EXIT_FINDING
    } else {
        0
    })
}
