//! `clif-diff run FILE.clif`: one case, a table of outcomes, a verdict.

use super::{EXIT_FINDING, EngineArgs};
use clif_diff::harness::{Plan, check};
use clif_diff::known::KnownBuckets;
use clif_diff::oracle::Report;
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The case, in Cranelift's filetest format.
    pub file: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    let configs = clif_diff::filetest::load(&args.file)?;
    if let [only] = &configs[..]
        && let Err(skip) = &only.run
    {
        anyhow::bail!("{}: {}", args.file.display(), skip.reason);
    }
    let overrides = args.engine.overrides()?;
    let mut sandbox = Sandbox::new(WorkerCommand::from_env()?);
    let many = configs.len() > 1;
    let mut json = Vec::new();
    let mut finding = false;
    for config in &configs {
        let case = match &config.run {
            Ok(case) => case,
            Err(skip) => {
                if !args.json {
                    println!("== target {}: SKIPPED ({})", config.label, skip.reason);
                }
                json.push(serde_json::json!({"target": config.label, "skipped": skip.reason}));
                continue;
            }
        };
        let plan = Plan::for_case(case, &overrides)?;
        if let Err(e) = preflight(case, &plan) {
            // One file, one target: a missing tool is the user's to fix. Among several targets,
            // it only means this one cannot run here.
            if !many {
                return Err(e);
            }
            if !args.json {
                println!("== target {}: SKIPPED ({e:#})", config.label);
            }
            json.push(serde_json::json!({"target": config.label, "skipped": format!("{e:#}")}));
            continue;
        }
        let report = check(&mut sandbox, case, &plan)?;
        if let Some(why) = &report.invalid {
            // Not valid CLIF as written: bad input, not a finding.
            anyhow::bail!("{}: invalid case: {why}", args.file.display());
        }
        finding |= report.verdict.is_finding();
        if args.json {
            let settings: Vec<String> = case
                .settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            json.push(serde_json::json!({
                "target": config.label,
                "settings": settings,
                "report": report,
            }));
        } else {
            if many {
                println!("== target {}", config.label);
            }
            print_report(&report, &KnownBuckets::load_default(), case);
        }
    }
    if args.json {
        // One configuration prints its report as it always has; several, one entry each.
        let out = match json.as_slice() {
            [one] if !many => one["report"].clone(),
            _ => serde_json::Value::Array(json),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(if finding { EXIT_FINDING } else { 0 })
}

/// Bad input is rejected before any engine runs: unknown targets and missing tools. (Settings,
/// overrides and the verifier are checked in the worker, with the engines: that is Cranelift
/// code, which runs only where a panic costs one case.)
pub fn preflight(case: &clif_diff::case::TestCase, plan: &Plan) -> anyhow::Result<()> {
    let arch = clif_diff::target::case_arch(case)?;
    if plan
        .engines
        .iter()
        .any(|e| e.kind == clif_diff::engine::EngineKind::Object)
    {
        clif_diff::toolchain::Toolchain::for_arch(arch)?;
    }
    Ok(())
}

pub fn print_report(report: &Report, known: &KnownBuckets, case: &clif_diff::case::TestCase) {
    let labels: Vec<String> = report.engines.iter().map(|e| e.label()).collect();
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once("run".to_string())
            .chain(labels.iter().cloned())
            .chain(std::iter::once("verdict".to_string()))
            .collect(),
    ];
    for r in &report.runs {
        let mut row = vec![r.invocation.clone()];
        row.extend(
            clif_diff::outcome::display_row(&r.outcomes)
                .iter()
                .map(|c| clip(c, 48)),
        );
        row.push(r.verdict.to_string());
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    let times: Vec<String> = labels
        .iter()
        .zip(&report.engine_micros)
        .map(|(l, us)| format!("{l} {:.1} ms", *us as f64 / 1e3))
        .collect();
    println!("time: {}", times.join(", "));
    for (e, why) in report.skipped() {
        println!("SKIPPED: {e} did not run: {why}");
    }
    print!("verdict: {}", report.verdict);
    if report.verdict.is_finding() {
        print!("  bucket: {}", report.bucket);
    }
    if report.verdict == clif_diff::oracle::Verdict::Hang {
        print!("  (every engine ran out of time: the case does not terminate; not a finding)");
    }
    println!();
    if report.findings.len() > 1
        || report
            .findings
            .iter()
            .any(|f| known.classify(case, report, f).is_some())
    {
        for f in &report.findings {
            print!(
                "finding: {} (line {}, {})",
                f.bucket,
                f.run + 1,
                f.sides.join(", ")
            );
            if let Some(k) = known.classify(case, report, f) {
                print!("  known {:?} `{}`: {}", k.kind, k.id, k.cause);
            }
            println!();
        }
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
