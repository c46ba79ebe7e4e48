//! `clif-diff reduce FILE.clif [--bucket B] [-o OUT.clif]`: shrink a finding to a reproducer.

use super::{EngineArgs, run::preflight};
use clif_diff::case::load;
use clif_diff::harness::{Plan, check};
use clif_diff::reduce::{isolated, output};
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The case, in Cranelift's filetest format.
    pub file: PathBuf,
    /// The bucket to keep (default: the case's own bucket).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Where to write the reproducer (default: FILE with `.reduced.clif`).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Stop after this many tested candidates.
    #[arg(long)]
    pub max_candidates: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub max_seconds: Option<u64>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    let case = load(&args.file)?;
    // Judge the case as the workers see it: printed and parsed back (run lines in printed order).
    let case = clif_diff::case::TestCase::parse(&case.to_text())?;
    let plan = Plan::for_case(&case, &args.engine.overrides()?)?;
    preflight(&case, &plan)?;
    let worker = WorkerCommand::from_env()?;
    let mut sandbox = Sandbox::new(worker.clone());
    let report = check(&mut sandbox, &case, &plan)?;
    if let Some(why) = &report.invalid {
        anyhow::bail!("{}: invalid case: {why}", args.file.display());
    }
    let bucket = match &args.bucket {
        Some(b) => b.clone(),
        None => {
            if !report.verdict.is_finding() {
                anyhow::bail!(
                    "{}: nothing to reduce: the verdict is {} ({})",
                    args.file.display(),
                    report.verdict,
                    report.bucket
                );
            }
            if report.findings.len() > 1 {
                eprintln!(
                    "clif-diff: the case shows {} findings; reducing the first ({}), choose another with --bucket",
                    report.findings.len(),
                    report.bucket
                );
            }
            report.bucket.clone()
        }
    };
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.file));

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let progress_bar = bar.clone();
    let job = isolated::Job {
        case: case.to_text(),
        plan: plan.clone(),
        bucket: bucket.clone(),
        max_candidates: args.max_candidates,
        time_limit_ms: args.max_seconds.map(|s| s * 1000),
    };
    let ctl = isolated::Control {
        progress: Some(Arc::new(move |p: &clif_diff::reduce::Progress| {
            progress_bar.set_message(format!(
                "tested {:>4}  accepted {:>3}  now {} insts in {} functions",
                p.tried, p.accepted, p.insts, p.functions
            ))
        })),
        nice: false,
        stop: None,
    };
    // The search runs in a reduce worker process: a Cranelift panic on a candidate costs that
    // candidate, a crash of the reducer costs the rest of the search, never this process.
    let result = isolated::reduce(&worker, &job, &ctl)?;
    bar.finish_and_clear();

    let s = &result.stats;
    println!("bucket: {bucket}");
    println!(
        "reduced: {} -> {} instructions ({:.0}%), {} -> {} functions, {} -> {} run lines",
        s.insts_before,
        s.insts_after,
        100.0 * s.ratio(),
        s.functions_before,
        s.functions_after,
        s.runs_before,
        s.runs_after
    );
    println!(
        "candidates: {} tested, {} accepted, {} discarded unrun ({} on a Cranelift panic), {} repeats; {} rounds, {:.1} s{}",
        s.tried,
        s.accepted,
        s.discarded,
        s.panicked,
        s.repeated,
        s.rounds,
        s.elapsed.as_secs_f64(),
        if s.stopped_early {
            " (stopped at a limit)"
        } else {
            ""
        }
    );
    let Some(reduced) = result.reduced() else {
        // The reducer died or was stopped: keep its best case, say it is not a clean result.
        let text = result.case.to_text();
        std::fs::write(&out, &text)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", out.display()))?;
        eprintln!(
            "clif-diff: {}: the best case reached is in {} (not checked)",
            result.problem.as_deref().unwrap_or("reduction incomplete"),
            out.display()
        );
        return Ok(super::EXIT_FINDING);
    };
    let text = output::render(
        &reduced,
        &plan,
        &args.file.display().to_string(),
        &out.display().to_string(),
    );
    std::fs::write(&out, &text)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", out.display()))?;
    println!("wrote {}", out.display());
    if let Some(p) = &result.problem {
        eprintln!("clif-diff: warning: {p}");
        return Ok(super::EXIT_FINDING);
    }
    // The file alone must replay the finding: its own directives, a worker that saw nothing else.
    let written = load(&out)?;
    let replay_plan = Plan::for_case(&written, &Default::default())?;
    let mut fresh = Sandbox::new(worker);
    let replayed = check(&mut fresh, &written, &replay_plan)?;
    if let Some(drift) = isolated::same_finding(&reduced.report, &reduced.finding, &replayed) {
        eprintln!(
            "clif-diff: warning: {} replays as `{drift}`, not as `{bucket}` (a flaky finding?)",
            out.display()
        );
        return Ok(super::EXIT_FINDING);
    }
    println!(
        "replay: clif-diff run {}  (checked: same finding, same outcomes and result types)",
        out.display()
    );
    if clif_diff::identity::is_coarse(&bucket) {
        let found =
            clif_diff::localise::localise(&mut fresh, &written, &replay_plan, &reduced.finding)?;
        println!(
            "identity: {}",
            clif_diff::identity::signature(&reduced.case, &reduced.report, &reduced.finding)
                .describe()
        );
        for l in found {
            println!("localised: {l}");
        }
        if let Some(o) =
            clif_diff::localise::optimised(&mut fresh, &written, &replayed, &reduced.finding)
        {
            println!("after the mid-end: {}", o.describe());
        }
    }
    Ok(0)
}

fn default_output(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "case".into());
    file.with_file_name(format!("{stem}.reduced.clif"))
}
