//! Regression corpus replay: every `.clif` in a directory, judged against the bucket its
//! `; clif-diff: expect = …` directive records.

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
    /// The target line this entry ran, for a file with several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub expected: String,
    pub known: Option<String>,
    #[serde(flatten)]
    pub status: Status,
}

impl Entry {
    /// The file, and the target line when the file has several.
    pub fn name(&self) -> String {
        match &self.target {
            Some(t) => format!("{} [{t}]", self.file.display()),
            None => self.file.display().to_string(),
        }
    }
}

/// All `.clif` files below `dir`, sorted (or `dir` itself, when it is a file).
pub fn corpus_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
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

/// Replays every configuration of `file` (one per `target` line; see [`crate::filetest`]).
///
/// Each configuration is judged against the file's `expect` directive; a file without one (an
/// upstream runtest) expects `agree`: every run line holds and the engines agree.
pub fn replay_file(sandbox: &mut Sandbox, file: &Path, cli: &Overrides) -> Vec<Entry> {
    let entry = |target: Option<String>, status| Entry {
        file: file.to_path_buf(),
        target,
        expected: String::new(),
        known: None,
        status,
    };
    let configs = match crate::filetest::load(file) {
        Ok(c) => c,
        Err(e) => {
            return vec![entry(
                None,
                Status::Invalid {
                    error: format!("{e:#}"),
                },
            )];
        }
    };
    let many = configs.len() > 1;
    configs
        .into_iter()
        .map(|config| {
            let mut e = entry(many.then(|| config.label.clone()), Status::Pass);
            match config.run {
                Err(skip) => e.status = Status::Skipped { why: skip.reason },
                Ok(case) => {
                    e.expected = case.directive(keys::EXPECT).unwrap_or("agree").to_string();
                    e.known = case.directive(keys::KNOWN).map(str::to_string);
                    e.status = replay_case(sandbox, &case, &e.expected, cli).unwrap_or_else(|e| {
                        Status::Invalid {
                            error: format!("{e:#}"),
                        }
                    });
                }
            }
            e
        })
        .collect()
}

fn replay_case(
    sandbox: &mut Sandbox,
    case: &crate::case::TestCase,
    expected: &str,
    cli: &Overrides,
) -> Result<Status> {
    let plan = Plan::for_case(case, cli)?;
    let report = check(sandbox, case, &plan)?;
    if let Some(why) = &report.invalid {
        anyhow::bail!("invalid case: {why}");
    }
    let got = crate::harness::expectation(&report);
    let skipped = report.skipped();
    // A line no engine executed checks nothing: that is a skip, never a pass.
    let unexecuted = report
        .runs
        .iter()
        .find(|r| r.outcomes.iter().all(|o| o.did_not_run()));
    Ok(if let Some(r) = unexecuted {
        let why: Vec<String> = report
            .engines
            .iter()
            .zip(&r.outcomes)
            .map(|(e, o)| format!("{}: {o}", e.label()))
            .collect();
        Status::Skipped {
            why: format!("no engine executed {}: {}", r.invocation, why.join("; ")),
        }
    } else if !skipped.is_empty() {
        let who: Vec<String> = skipped.iter().map(|(e, r)| format!("{e}: {r}")).collect();
        Status::Skipped {
            why: format!("{} (the others gave `{got}`)", who.join("; ")),
        }
    } else if crate::harness::meets_expectation(&report, expected) {
        Status::Pass
    } else if report.findings.is_empty() && report.verdict == crate::oracle::Verdict::Agree {
        Status::Fixed
    } else {
        Status::Regression { got }
    })
}

/// True when no entry regressed, got fixed or is invalid (skipped entries are not failures;
/// they are reported as such).
pub fn all_pass(entries: &[Entry]) -> bool {
    entries
        .iter()
        .all(|e| matches!(e.status, Status::Pass | Status::Skipped { .. }))
}
