//! `clif-diff reduce FILE.clif [--bucket B] [-o OUT.clif]`: shrink a finding to a reproducer.

use super::{EngineArgs, run::preflight};
use clif_diff::case::load;
use clif_diff::harness::{Plan, check};
use clif_diff::reduce::{ReduceOptions, output, reduce_in};
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
    let mut sandbox = Sandbox::new(WorkerCommand::from_env()?);
    let bucket = match &args.bucket {
        Some(b) => b.clone(),
        None => {
            let report = check(&mut sandbox, &case, &plan)?;
            if !report.verdict.is_finding() {
                anyhow::bail!(
                    "{}: nothing to reduce: the verdict is {} ({})",
                    args.file.display(),
                    report.verdict,
                    report.bucket
                );
            }
            report.bucket
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
    let opts = ReduceOptions {
        max_candidates: args.max_candidates,
        time_limit: args.max_seconds.map(Duration::from_secs),
        progress: Some(Arc::new(move |p: &clif_diff::reduce::Progress| {
            progress_bar.set_message(format!(
                "{:<20} tested {:>4}  accepted {:>3}  now {} insts in {} functions",
                p.pass, p.tried, p.accepted, p.insts, p.functions
            ))
        })),
    };
    let reduced = reduce_in(&mut sandbox, &case, &plan, &bucket, &opts)?;
    bar.finish_and_clear();

    let text = output::render(
        &reduced,
        &plan,
        &args.file.display().to_string(),
        &out.display().to_string(),
    );
    std::fs::write(&out, &text)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", out.display()))?;
    let s = &reduced.stats;
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
        "candidates: {} tested, {} accepted, {} discarded unrun, {} repeats; {} rounds, {:.1} s{}",
        s.tried,
        s.accepted,
        s.discarded,
        s.repeated,
        s.rounds,
        s.elapsed.as_secs_f64(),
        if s.stopped_early {
            " (stopped at a limit)"
        } else {
            ""
        }
    );
    println!("wrote {}", out.display());
    // The file alone must replay the bucket: its own directives, a worker that saw nothing else.
    let written = load(&out)?;
    let replay_plan = Plan::for_case(&written, &Default::default())?;
    let mut fresh = Sandbox::new(WorkerCommand::from_env()?);
    let replayed = check(&mut fresh, &written, &replay_plan)?.bucket;
    if replayed != bucket {
        eprintln!(
            "clif-diff: warning: {} replays as `{replayed}`, not `{bucket}` (a flaky finding?)",
            out.display()
        );
        return Ok(super::EXIT_FINDING);
    }
    println!(
        "replay: clif-diff run {}  (checked: same bucket)",
        out.display()
    );
    Ok(0)
}

fn default_output(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "case".into());
    file.with_file_name(format!("{stem}.reduced.clif"))
}
