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
    /// The finding's key: its bucket, refined by its identity or known entry.
    pub key: String,
    pub bucket: String,
    pub hits: u64,
    pub known: Option<String>,
    /// The identity of a coarse finding (what its reduced case contains).
    pub identity: Option<String>,
    /// A known entry whose sample, reduced, no longer showed the entry's cause.
    pub escaped_known: Option<String>,
    /// Which stage of Cranelift the reduced finding needs.
    pub localised: Vec<String>,
    /// Findings possibly the same bug.
    pub related: Vec<String>,
    pub case: PathBuf,
    /// The reducer's output, when it ran.
    pub reduced: Option<PathBuf>,
}

/// An engine a campaign was asked to run that could not run on some of its cases.
#[derive(Serialize)]
pub struct SkipLine {
    pub campaign: String,
    pub engine: String,
    pub cases: u64,
    pub of: u64,
    pub reason: String,
}

#[derive(Serialize)]
pub struct Nightly {
    pub campaigns: Vec<CampaignLine>,
    pub new_buckets: Vec<BucketLine>,
    pub known_hits: Vec<BucketLine>,
    /// Engines that did not run: a nightly that could not cover what it was asked is red.
    pub skipped: Vec<SkipLine>,
    /// Triage items left undecided on disk, per campaign.
    pub triage_left: Vec<(String, u64)>,
    pub replayed: usize,
    pub replay_skipped: Vec<Entry>,
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
            skipped: Vec::new(),
            triage_left: Vec::new(),
            replayed: 0,
            replay_skipped: Vec::new(),
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
            for (engine, (cases, reason)) in &s.skipped {
                n.skipped.push(SkipLine {
                    campaign: label.clone(),
                    engine: engine.clone(),
                    cases: *cases,
                    of: s.cases,
                    reason: reason.clone(),
                });
            }
            // Triage may have run since the campaign (`clif-diff triage`): read the store itself.
            let store = crate::campaign::findings::FindingStore::open(
                dir,
                crate::known::KnownBuckets::default(),
            )?;
            let left = crate::campaign::triage::pending(&store).len() as u64;
            if left > 0 {
                n.triage_left.push((label.clone(), left));
            }
            for b in store.findings() {
                let reduced = b.dir.join("reduced.clif");
                let line = BucketLine {
                    campaign: label.clone(),
                    key: b.key.clone(),
                    bucket: b.bucket.clone(),
                    hits: b.hits,
                    known: b.known.clone(),
                    identity: b.signature.as_ref().map(|s| s.describe()),
                    escaped_known: b.escaped_known.clone(),
                    localised: b.localised.clone(),
                    related: b.related.clone(),
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
                    Status::Skipped { .. } => n.replay_skipped.push(e),
                    Status::Fixed => n.fixed.push(e),
                    Status::Regression { .. } => n.regressions.push(e),
                    Status::Invalid { .. } => n.invalid.push(e),
                }
            }
        }
        Ok(n)
    }

    /// A nightly is green when nothing new was found, every corpus entry replayed as expected,
    /// and every engine it was asked to run ran: an engine that could not run is not agreement.
    pub fn ok(&self) -> bool {
        self.new_buckets.is_empty()
            && self.fixed.is_empty()
            && self.regressions.is_empty()
            && self.invalid.is_empty()
            && self.skipped.is_empty()
            && self.replay_skipped.is_empty()
    }

    pub fn markdown(&self) -> String {
        let mut s = String::from("# clif-diff nightly\n\n");
        s += &format!(
            "**{}** — {} new finding(s), {} known finding(s) hit, {} corpus case(s) replayed: {} regression(s), {} fixed, {} invalid, {} skipped; {} engine(s) skipped in campaigns.\n\n",
            if self.ok() { "green" } else { "RED" },
            self.new_buckets.len(),
            self.known_hits.len(),
            self.replayed,
            self.regressions.len(),
            self.fixed.len(),
            self.invalid.len(),
            self.replay_skipped.len(),
            self.skipped.len()
        );
        if !self.skipped.is_empty() || !self.replay_skipped.is_empty() {
            s += "## SKIPPED: engines that did not run\n\n";
            for k in &self.skipped {
                s += &format!(
                    "- `{}` in `{}`: {} of {} cases — {}\n",
                    k.engine, k.campaign, k.cases, k.of, k.reason
                );
            }
            for e in &self.replay_skipped {
                if let Status::Skipped { why } = &e.status {
                    s += &format!("- corpus `{}`: {why}\n", e.name());
                }
            }
            s += "\n";
        }
        for (c, n) in &self.triage_left {
            s += &format!("Triage left {n} undecided hit(s) in `{c}` (`clif-diff triage`).\n\n");
        }
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
        s += "\n## New findings\n\n";
        if self.new_buckets.is_empty() {
            s += "None.\n";
        }
        for b in &self.new_buckets {
            s += &format!(
                "### `{}`\n\n{} hit(s) in `{}`; first case: `{}`\n\n",
                b.key,
                b.hits,
                b.campaign,
                b.case.display()
            );
            if let Some(i) = &b.identity {
                s += &format!("Identity (what the reduced case contains): `{i}`\n\n");
            }
            for l in &b.localised {
                s += &format!("Localised: {l}\n\n");
            }
            if !b.related.is_empty() {
                s += &format!(
                    "Possibly the same bug as: {}\n\n",
                    b.related
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if let Some(k) = &b.escaped_known {
                s += &format!(
                    "Filed as known `{k}` at first, but its reduced case lacks that entry's cause.\n\n"
                );
            }
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
        s += "## Known findings hit\n\n";
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
                s += &format!("- `{}` expected `{}`{got}\n", e.name(), e.expected);
            }
            s += "\n";
        }
        s
    }
}
