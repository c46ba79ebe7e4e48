//! Growing the regression corpus: promoting a case (usually a reduced finding) into
//! `corpus/regressions/` with the expectation it replays to.

use crate::case::{Expect, TestCase};
use crate::engine::EngineKind;
use crate::harness::{Plan, check, keys};
use crate::known::KnownBuckets;
use crate::oracle::Report;
use crate::outcome::Outcome;
use crate::sandbox::Sandbox;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// Turns `; print:` lines into `; run: … == v` with the reference engine's (interpreter's)
/// results, so the file also checks values under upstream's runner.
pub fn fill_expectations(case: &mut TestCase, report: &Report) {
    let Some(interp) = report
        .engines
        .iter()
        .position(|e| e.kind == EngineKind::Interp && e.overrides.is_empty())
    else {
        return;
    };
    for (run, r) in case.runs.iter_mut().zip(&report.runs) {
        if let (Expect::Print, Outcome::Returned { values }) = (&run.expect, &r.outcomes[interp])
            && !values.is_empty()
        {
            run.expect = Expect::Eq(values.clone());
        }
    }
}

/// Runs `case`, records its bucket as the expectation and writes it to `dir/name.clif`.
/// Refuses to overwrite an existing file.
pub fn promote(
    sandbox: &mut Sandbox,
    case: &TestCase,
    plan: &Plan,
    known: &KnownBuckets,
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, Report)> {
    let path = dir.join(format!("{name}.clif"));
    if path.exists() {
        bail!("{} already exists", path.display());
    }
    let report = check(sandbox, case, plan)?;
    let mut out = case.clone();
    plan.record(&mut out);
    fill_expectations(&mut out, &report);
    // Expectations must not change what the case shows; check before keeping them.
    let again = check(sandbox, &out, plan)?;
    if again.bucket != report.bucket {
        out.runs = case.runs.clone();
    }
    out.set_directive(keys::EXPECT, report.bucket.clone());
    if let Some(k) = known.matching(&report.bucket) {
        out.set_directive(keys::KNOWN, k.id.clone());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, out.to_text())?;
    Ok((path, report))
}
