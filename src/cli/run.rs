//! `clif-diff run FILE.clif`: one case, a table of outcomes, a verdict.

use super::{EXIT_FINDING, EngineArgs};
use clif_diff::case::load;
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
    let case = load(&args.file)?;
    let plan = Plan::for_case(&case, &args.engine.overrides()?)?;
    preflight(&case, &plan)?;
    let mut sandbox = Sandbox::new(WorkerCommand::from_env()?);
    let report = check(&mut sandbox, &case, &plan)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &KnownBuckets::load_default(), &case.to_text());
    }
    Ok(if report.verdict.is_finding() {
        EXIT_FINDING
    } else {
        0
    })
}

/// Bad input is rejected before any engine runs: unknown targets and missing tools.
pub fn preflight(case: &clif_diff::case::TestCase, plan: &Plan) -> anyhow::Result<()> {
    let arch = clif_diff::target::case_arch(case)?;
    clif_diff::target::build_isa(case, &[])?;
    // Settings overrides are input too: a typo must not pass for a finding.
    for spec in plan.engines.iter().filter(|e| !e.overrides.is_empty()) {
        let o: Vec<(&str, &str)> = spec
            .overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        clif_diff::target::build_isa(case, &o)
            .map_err(|e| anyhow::anyhow!("engine `{}`: {e:#}", spec.label()))?;
    }
    if plan
        .engines
        .iter()
        .any(|e| e.kind == clif_diff::engine::EngineKind::Object)
    {
        clif_diff::toolchain::Toolchain::for_arch(arch)?;
    }
    Ok(())
}

pub fn print_report(report: &Report, known: &KnownBuckets, case_text: &str) {
    let labels: Vec<String> = report.engines.iter().map(|e| e.label()).collect();
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once("run".to_string())
            .chain(labels.iter().cloned())
            .chain(std::iter::once("verdict".to_string()))
            .collect(),
    ];
    for r in &report.runs {
        let mut row = vec![r.invocation.clone()];
        row.extend(r.outcomes.iter().map(|o| clip(&o.to_string(), 48)));
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
    print!("verdict: {}", report.verdict);
    if report.verdict.is_finding() {
        print!("  bucket: {}", report.bucket);
        if let Some(k) = known.classify(&report.bucket, case_text) {
            print!("  (known {:?} `{}`: {})", k.kind, k.id, k.reason);
        }
    }
    println!();
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
