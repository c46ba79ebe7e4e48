//! Regression corpus replay: every `.clif` in a directory, judged against the bucket its
//! `; clif-diff: expect = …` directive records.

use crate::case::load;
use crate::harness::{Overrides, Plan, check, keys};
use crate::sandbox::Sandbox;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// The expected buckets were observed again.
    Pass,
    /// An engine could not run here (a missing tool, a CPU feature the host lacks): nothing is
    /// concluded about the file — neither pass nor fixed nor regression.
    Skipped { why: String },
    /// A different bucket than expected: something changed for the worse (or differently).
    Regression { got: String },
    /// A known finding no longer reproduces: the engines now agree.
    Fixed,
    /// The file has no `expect` directive or cannot be read.
    Invalid { error: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub file: PathBuf,
    pub expected: String,
    pub known: Option<String>,
    #[serde(flatten)]
    pub status: Status,
}

/// All `.clif` files below `dir`, sorted.
pub fn corpus_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "clif") {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

pub fn replay_file(sandbox: &mut Sandbox, file: &Path, cli: &Overrides) -> Entry {
    let mut entry = Entry {
        file: file.to_path_buf(),
        expected: String::new(),
        known: None,
        status: Status::Pass,
    };
    let result = (|| -> Result<Status> {
        let case = load(file)?;
        entry.expected = case
            .directive(keys::EXPECT)
            .ok_or_else(|| anyhow::anyhow!("no `; clif-diff: expect = …` directive"))?
            .to_string();
        entry.known = case.directive(keys::KNOWN).map(str::to_string);
        let plan = Plan::for_case(&case, cli)?;
        let report = check(sandbox, &case, &plan)?;
        if let Some(why) = &report.invalid {
            anyhow::bail!("invalid case: {why}");
        }
        let got = crate::harness::expectation(&report);
        let skipped = report.skipped();
        Ok(if !skipped.is_empty() {
            let who: Vec<String> = skipped.iter().map(|(e, r)| format!("{e}: {r}")).collect();
            Status::Skipped {
                why: format!("{} (the others gave `{got}`)", who.join("; ")),
            }
        } else if crate::harness::meets_expectation(&report, &entry.expected) {
            Status::Pass
        } else if report.findings.is_empty() && report.verdict == crate::oracle::Verdict::Agree {
            Status::Fixed
        } else {
            Status::Regression { got }
        })
    })();
    entry.status = result.unwrap_or_else(|e| Status::Invalid {
        error: format!("{e:#}"),
    });
    entry
}

/// True when no entry regressed, got fixed or is invalid (skipped entries are not failures;
/// they are reported as such).
pub fn all_pass(entries: &[Entry]) -> bool {
    entries
        .iter()
        .all(|e| matches!(e.status, Status::Pass | Status::Skipped { .. }))
}
