//! The nightly report: what the campaigns found, what the corpus replay says, how fast it went.
//!
//! Inputs are files other commands already wrote — each campaign's `summary.json` and bucket
//! directories, and `clif-diff replay --json` — so the report can be rebuilt after the fact.

use crate::campaign::{Summary, summary_path};
use crate::replay::{Entry, Status};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Serialize)]
pub struct CampaignLine {
    pub label: String,
    pub cases: u64,
    pub seconds: f64,
    pub cases_per_sec: f64,
    pub valid_pct: f64,
    pub respawns: u64,
    pub engine_rates: Vec<(String, f64)>,
}

#[derive(Serialize)]
pub struct BucketLine {
    pub campaign: String,
    pub bucket: String,
    pub hits: u64,
    pub known: Option<String>,
    pub case: PathBuf,
    /// The reducer's output, when it ran.
    pub reduced: Option<PathBuf>,
}

#[derive(Serialize)]
pub struct Nightly {
    pub campaigns: Vec<CampaignLine>,
    pub new_buckets: Vec<BucketLine>,
    pub known_hits: Vec<BucketLine>,
    pub replayed: usize,
    pub fixed: Vec<Entry>,
    pub regressions: Vec<Entry>,
    pub invalid: Vec<Entry>,
}

impl Nightly {
    /// Reads campaign directories (label = directory name) and a replay JSON file.
    pub fn collect(campaigns: &[PathBuf], replay: Option<&Path>) -> Result<Nightly> {
        let mut n = Nightly {
            campaigns: Vec::new(),
            new_buckets: Vec::new(),
            known_hits: Vec::new(),
            replayed: 0,
            fixed: Vec::new(),
            regressions: Vec::new(),
            invalid: Vec::new(),
        };
        for dir in campaigns {
            let label = dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let p = summary_path(dir);
            let s: Summary = serde_json::from_str(
                &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("parsing {}", p.display()))?;
            n.campaigns.push(CampaignLine {
                label: label.clone(),
                cases: s.cases,
                seconds: s.seconds,
                cases_per_sec: s.cases_per_sec,
                valid_pct: 100.0 * s.valid as f64 / s.cases.max(1) as f64,
                respawns: s.respawns,
                engine_rates: s.engine_rates,
            });
            for b in s.buckets {
                let reduced = b.dir.join("reduced.clif");
                let line = BucketLine {
                    campaign: label.clone(),
                    bucket: b.bucket,
                    hits: b.hits,
                    known: b.known.clone(),
                    case: b.dir.join("case.clif"),
                    reduced: reduced.exists().then_some(reduced),
                };
                if b.known.is_some() {
                    n.known_hits.push(line);
                } else {
                    n.new_buckets.push(line);
                }
            }
        }
        if let Some(r) = replay {
            let entries: Vec<Entry> = serde_json::from_str(
                &std::fs::read_to_string(r).with_context(|| format!("reading {}", r.display()))?,
            )?;
            n.replayed = entries.len();
            for e in entries {
                match e.status {
                    Status::Pass => {}
                    Status::Fixed => n.fixed.push(e),
                    Status::Regression { .. } => n.regressions.push(e),
                    Status::Invalid { .. } => n.invalid.push(e),
                }
            }
        }
        Ok(n)
    }

    /// A nightly is green when nothing new was found and every corpus entry replayed as expected.
    pub fn ok(&self) -> bool {
        self.new_buckets.is_empty()
            && self.fixed.is_empty()
            && self.regressions.is_empty()
            && self.invalid.is_empty()
    }

    pub fn markdown(&self) -> String {
        let mut s = String::from("# clif-diff nightly\n\n");
        s += &format!(
            "**{}** — {} new bucket(s), {} known bucket(s) hit, {} corpus case(s) replayed: {} regression(s), {} fixed, {} invalid.\n\n",
            if self.ok() { "green" } else { "RED" },
            self.new_buckets.len(),
            self.known_hits.len(),
            self.replayed,
            self.regressions.len(),
            self.fixed.len(),
            self.invalid.len()
        );
        s += "## Throughput\n\n| campaign | cases | seconds | cases/s | valid | worker restarts | per engine (cases/s, one core) |\n|---|---:|---:|---:|---:|---:|---|\n";
        for c in &self.campaigns {
            let rates: Vec<String> = c
                .engine_rates
                .iter()
                .map(|(e, r)| format!("{e} {r:.0}"))
                .collect();
            s += &format!(
                "| {} | {} | {:.0} | {:.1} | {:.1}% | {} | {} |\n",
                c.label,
                c.cases,
                c.seconds,
                c.cases_per_sec,
                c.valid_pct,
                c.respawns,
                rates.join(", ")
            );
        }
        s += "\n## New buckets\n\n";
        if self.new_buckets.is_empty() {
            s += "None.\n";
        }
        for b in &self.new_buckets {
            s += &format!(
                "### `{}`\n\n{} hit(s) in `{}`; first case: `{}`\n\n",
                b.bucket,
                b.hits,
                b.campaign,
                b.case.display()
            );
            let shown = b.reduced.as_ref().unwrap_or(&b.case);
            if let Ok(text) = std::fs::read_to_string(shown) {
                s += &format!(
                    "{}:\n\n```\n{}```\n\n",
                    if b.reduced.is_some() {
                        "Reduced reproducer"
                    } else {
                        "Unreduced case"
                    },
                    text
                );
            }
        }
        s += "## Known buckets hit\n\n";
        if self.known_hits.is_empty() {
            s += "None.\n";
        } else {
            s += "| bucket | known id | hits | campaign |\n|---|---|---:|---|\n";
            for b in &self.known_hits {
                s += &format!(
                    "| `{}` | {} | {} | {} |\n",
                    b.bucket,
                    b.known.as_deref().unwrap_or(""),
                    b.hits,
                    b.campaign
                );
            }
        }
        s += "\n## Regression corpus\n\n";
        for (title, list) in [
            ("Regressions", &self.regressions),
            ("Fixed (known finding no longer reproduces)", &self.fixed),
            ("Invalid", &self.invalid),
        ] {
            s += &format!("**{title}:** ");
            if list.is_empty() {
                s += "none\n\n";
                continue;
            }
            s += "\n\n";
            for e in list {
                let got = match &e.status {
                    Status::Regression { got } => format!(", got `{got}`"),
                    Status::Invalid { error } => format!(": {error}"),
                    _ => String::new(),
                };
                s += &format!("- `{}` expected `{}`{got}\n", e.file.display(), e.expected);
            }
            s += "\n";
        }
        s
    }
}
