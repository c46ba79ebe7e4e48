//! Findings on disk, one directory per finding, written before anything is reported.
//!
//! ```text
//! DIR/<slug>/case.clif        the finding's first case; replays alone (options as directives)
//! DIR/<slug>/report.json      every engine's outcomes
//! DIR/<slug>/finding.json     key, bucket, identity, known id, status, hits, seed
//! DIR/<slug>/replay.sh        the exact command that replays it
//! DIR/<slug>/hits             how many cases showed it so far
//! DIR/<slug>/samples/         further hits, kept for re-checks (bounded)
//! DIR/<slug>/reduced.clif     the reproducer, once triage has reduced it
//! DIR/untriaged/<bucket>/     hits of a coarse bucket whose identity is not decided yet
//! DIR/triage.jsonl            what triage decided, sample by sample
//! ```
//!
//! A finding's *key* is its bucket for buckets that name their cause (a panic location, an
//! error message), `bucket@known-id` for a known entry's hits, and for the coarse buckets
//! (mismatch, crash, timeout) the bucket for its first finding and `bucket#<identity digest>`
//! for every further identity triage separates from it (see [`crate::identity`]). A hit of a
//! coarse bucket that already has a finding cannot be told apart without reducing it: it is
//! written to `untriaged/` first and triage decides whether it is another hit of an identified
//! finding or a new one. Nothing is ever only in memory.
//!
//! Directories are assembled under a temporary name and renamed into place, so a reader (or a
//! campaign killed mid-write) never sees half a finding; counts are rewritten the same way.

use crate::case::TestCase;
use crate::harness::{Plan, keys};
use crate::identity::{self, Signature};
use crate::known::KnownBuckets;
use crate::oracle::{Finding, Report};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a finding is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// On disk, not reduced yet.
    #[default]
    Pending,
    /// Reduced; for a coarse bucket its identity is known.
    Reduced,
    /// Triage could not reduce it (the case alone did not reproduce, or the reducer failed).
    Unreduced,
    /// Explained by a known entry.
    Known,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FindingInfo {
    /// What findings are deduplicated by (see the module docs).
    pub key: String,
    pub bucket: String,
    /// Known-entry id, when a known entry explains the finding.
    pub known: Option<String>,
    #[serde(default)]
    pub status: Status,
    /// The identity of a coarse finding, from its reduced case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// For a finding triage split off a known entry: that entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escaped_known: Option<String>,
    /// Which stage of Cranelift the reduced finding needs (see [`crate::localise`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub localised: Vec<String>,
    /// What the reduced case computes after Cranelift's mid-end (see
    /// [`crate::localise::optimised`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimised: Option<Signature>,
    /// The known entry was recognised only in the reduced case (the original hid the cause
    /// from the predicate).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub known_after_reduction: bool,
    /// Findings of the same bucket whose identity is contained in this one's (or contains it),
    /// or that are localised alike: possibly the same bug. Kept apart, because they may not be.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    pub hits: u64,
    pub dir: PathBuf,
    /// Seed of the first case, when it came from the generator.
    pub seed: Option<u64>,
}

impl FindingInfo {
    /// Not explained by a known entry: a finding to report.
    pub fn is_new(&self) -> bool {
        self.known.is_none()
    }
}

/// What recording one finding of a case did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// A new finding directory.
    New {
        key: String,
        dir: PathBuf,
        known: Option<String>,
    },
    /// Another hit of an existing finding; `sample` when this hit was kept.
    Repeat {
        key: String,
        hits: u64,
        known: Option<String>,
        sample: Option<PathBuf>,
    },
    /// A hit of a coarse bucket that has a finding already: kept for triage, which decides its
    /// identity. `explained_by` lists the identified findings it could be (see
    /// [`identity::explained_by`]); empty means it is certainly none of them.
    Untriaged {
        bucket: String,
        sample: PathBuf,
        explained_by: Vec<String>,
        /// Some finding of the bucket has no identity yet, so "explained by none" means little.
        undecided: bool,
        hits: u64,
    },
}

impl Recorded {
    pub fn known(&self) -> Option<&str> {
        match self {
            Recorded::New { known, .. } | Recorded::Repeat { known, .. } => known.as_deref(),
            Recorded::Untriaged { .. } => None,
        }
    }
}

/// Hits kept as samples per finding: the first few, then every power of two.
const SAMPLES_PER_FINDING: usize = 16;
/// Untriaged hits kept per coarse bucket.
const UNTRIAGED_PER_BUCKET: usize = 64;

fn keep_sample(hit: u64) -> bool {
    hit <= 4 || hit.is_power_of_two()
}

pub struct FindingStore {
    dir: PathBuf,
    known: KnownBuckets,
    findings: Mutex<BTreeMap<String, FindingInfo>>,
    /// Hits per coarse bucket that went to `untriaged/`.
    untriaged_hits: Mutex<BTreeMap<String, u64>>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// A directory name for a key: readable, filesystem-safe, and unique per key string.
pub fn bucket_slug(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(80);
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    format!("{s}-{h:08x}")
}

/// The case as stored: the plan and the finding as directives, so it replays alone.
pub fn stored_case(
    case: &TestCase,
    plan: &Plan,
    bucket: &str,
    known: Option<&str>,
    seed: Option<u64>,
) -> String {
    let mut case = case.clone();
    plan.record(&mut case);
    case.set_directive(keys::EXPECT, bucket.to_string());
    if let Some(k) = known {
        case.set_directive(keys::KNOWN, k.to_string());
    }
    if let Some(s) = seed {
        case.set_directive("seed", s.to_string());
    }
    case.to_text()
}

fn sample_name(seed: Option<u64>) -> String {
    match seed {
        Some(s) => format!("seed-{s}.clif"),
        None => format!(
            "case-{}-{}.clif",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ),
    }
}

impl FindingStore {
    /// Opens (or creates) a store, picking up the findings already in it.
    pub fn open(dir: &Path, known: KnownBuckets) -> Result<FindingStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut findings = BTreeMap::new();
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if let Some(mut f) = read_info(&p) {
                f.dir = p.clone();
                findings.insert(f.key.clone(), f);
            }
        }
        let mut untriaged_hits = BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(dir.join("untriaged")) {
            for e in rd.flatten() {
                if let Ok(t) = std::fs::read_to_string(e.path().join("bucket")) {
                    let hits = std::fs::read_to_string(e.path().join("hits"))
                        .ok()
                        .and_then(|h| h.trim().parse().ok())
                        .unwrap_or(0);
                    untriaged_hits.insert(t.trim().to_string(), hits);
                }
            }
        }
        Ok(FindingStore {
            dir: dir.to_path_buf(),
            known,
            findings: Mutex::new(findings),
            untriaged_hits: Mutex::new(untriaged_hits),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn known(&self) -> &KnownBuckets {
        &self.known
    }

    /// Persists one finding of a case. Returns only once it is on disk.
    pub fn record(
        &self,
        case: &TestCase,
        plan: &Plan,
        report: &Report,
        finding: &Finding,
        seed: Option<u64>,
    ) -> Result<Recorded> {
        let known = self
            .known
            .classify(case, report, finding)
            .map(|k| k.id.clone());
        let bucket = &finding.bucket;
        let mut findings = self.findings.lock().unwrap();
        if let Some(k) = &known {
            let key = format!("{bucket}@{k}");
            return self.hit_or_create(
                &mut findings,
                &key,
                case,
                plan,
                report,
                finding,
                seed,
                known.clone(),
            );
        }
        if !identity::is_coarse(bucket) {
            return self.hit_or_create(
                &mut findings,
                bucket,
                case,
                plan,
                report,
                finding,
                seed,
                None,
            );
        }
        let family: Vec<&FindingInfo> = findings
            .values()
            .filter(|f| f.bucket == *bucket && f.known.is_none())
            .collect();
        if family.is_empty() {
            return self.hit_or_create(
                &mut findings,
                bucket,
                case,
                plan,
                report,
                finding,
                seed,
                None,
            );
        }
        // The bucket has findings: which one this is (or whether it is a new one) takes triage.
        let undecided = family.iter().any(|f| f.signature.is_none());
        let identified: Vec<(String, Signature)> = family
            .iter()
            .filter_map(|f| f.signature.clone().map(|s| (f.key.clone(), s)))
            .collect();
        let sigs: Vec<Signature> = identified.iter().map(|(_, s)| s.clone()).collect();
        let explained = identity::explained_by(case, report, finding, &sigs);
        let explained_by: Vec<String> = identified
            .iter()
            .filter(|(_, s)| explained.contains(&s))
            .map(|(k, _)| k.clone())
            .collect();
        drop(findings);
        let pool = self.untriaged_dir(bucket);
        let hits = {
            let mut u = self.untriaged_hits.lock().unwrap();
            let h = u.entry(bucket.clone()).or_default();
            *h += 1;
            write_atomic(&pool.join("bucket"), format!("{bucket}\n").as_bytes())?;
            write_atomic(&pool.join("hits"), format!("{h}\n").as_bytes())?;
            *h
        };
        let sample = pool.join(sample_name(seed));
        let kept = std::fs::read_dir(&pool)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "clif"))
                    .count()
            })
            .unwrap_or(0);
        // Beyond the cap only hits that could be a new identity are worth the disk.
        if kept < UNTRIAGED_PER_BUCKET || explained_by.is_empty() {
            write_atomic(
                &sample,
                stored_case(case, plan, bucket, None, seed).as_bytes(),
            )?;
        }
        Ok(Recorded::Untriaged {
            bucket: bucket.clone(),
            sample,
            explained_by,
            undecided,
            hits,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn hit_or_create(
        &self,
        findings: &mut BTreeMap<String, FindingInfo>,
        key: &str,
        case: &TestCase,
        plan: &Plan,
        report: &Report,
        finding: &Finding,
        seed: Option<u64>,
        known: Option<String>,
    ) -> Result<Recorded> {
        if let Some(f) = findings.get_mut(key) {
            f.hits += 1;
            write_atomic(&f.dir.join("hits"), format!("{}\n", f.hits).as_bytes())?;
            let mut sample = None;
            let samples = f.dir.join("samples");
            let count = std::fs::read_dir(&samples).map(|r| r.count()).unwrap_or(0);
            if keep_sample(f.hits) && count < SAMPLES_PER_FINDING {
                let p = samples.join(sample_name(seed));
                write_atomic(
                    &p,
                    stored_case(case, plan, &f.bucket, f.known.as_deref(), seed).as_bytes(),
                )?;
                sample = Some(p);
            }
            return Ok(Recorded::Repeat {
                key: key.to_string(),
                hits: f.hits,
                known,
                sample,
            });
        }
        let status = if known.is_some() {
            Status::Known
        } else {
            Status::Pending
        };
        let info = FindingInfo {
            key: key.to_string(),
            bucket: finding.bucket.clone(),
            known: known.clone(),
            status,
            signature: None,
            escaped_known: None,
            localised: Vec::new(),
            optimised: None,
            known_after_reduction: false,
            related: Vec::new(),
            hits: 1,
            dir: self.dir.join(bucket_slug(key)),
            seed,
        };
        let text = stored_case(case, plan, &finding.bucket, known.as_deref(), seed);
        let dir = self.create(&info, &text, report, None)?;
        findings.insert(
            key.to_string(),
            FindingInfo {
                dir: dir.clone(),
                ..info
            },
        );
        Ok(Recorded::New {
            key: key.to_string(),
            dir,
            known,
        })
    }

    /// Writes a finding directory atomically; returns its path.
    fn create(
        &self,
        info: &FindingInfo,
        case_text: &str,
        report: &Report,
        reduced: Option<&str>,
    ) -> Result<PathBuf> {
        let slug = bucket_slug(&info.key);
        // A key can come back (a finding moved to a known entry's key frees its bucket), and an
        // earlier store may have left a directory: never write into another finding's.
        let mut final_dir = self.dir.join(&slug);
        let mut n = 1;
        while final_dir.exists() {
            n += 1;
            final_dir = self.dir.join(format!("{slug}-{n}"));
        }
        let tmp = self.dir.join(format!(
            ".{slug}.tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&tmp)?;
        std::fs::write(tmp.join("case.clif"), case_text)?;
        std::fs::write(
            tmp.join("report.json"),
            serde_json::to_string_pretty(report)?,
        )?;
        std::fs::write(
            tmp.join("replay.sh"),
            format!(
                "#!/bin/sh\n# Replays finding {} from the .clif alone.\nexec clif-diff run \"$(dirname \"$0\")/case.clif\"\n",
                info.key
            ),
        )?;
        if let Some(r) = reduced {
            std::fs::write(tmp.join("reduced.clif"), r)?;
        }
        std::fs::write(tmp.join("hits"), format!("{}\n", info.hits))?;
        let info = FindingInfo {
            dir: final_dir.clone(),
            ..info.clone()
        };
        std::fs::write(
            tmp.join("finding.json"),
            serde_json::to_string_pretty(&info)?,
        )?;
        std::fs::rename(&tmp, &final_dir)?;
        Ok(final_dir)
    }

    fn untriaged_dir(&self, bucket: &str) -> PathBuf {
        self.dir.join("untriaged").join(bucket_slug(bucket))
    }

    /// Updates a finding's record (status, identity) on disk and in memory.
    pub fn update(&self, key: &str, f: impl FnOnce(&mut FindingInfo)) -> Result<()> {
        let mut findings = self.findings.lock().unwrap();
        let Some(info) = findings.get_mut(key) else {
            return Ok(());
        };
        f(info);
        write_atomic(
            &info.dir.join("finding.json"),
            serde_json::to_string_pretty(info)?.as_bytes(),
        )
    }

    /// Files finding `key` under known entry `id` (its reduced case showed the entry's cause).
    /// Its key changes, so that later hits of its bucket that no entry explains are not counted
    /// on it but start a finding of their own.
    pub fn reclassify_known(&self, key: &str, id: &str) -> Result<String> {
        let mut findings = self.findings.lock().unwrap();
        let Some(mut info) = findings.remove(key) else {
            return Ok(key.to_string());
        };
        let mut new_key = format!("{}@{id}", info.bucket);
        if findings.contains_key(&new_key) {
            new_key = format!("{new_key}+{}", info.seed.unwrap_or(0));
        }
        info.key = new_key.clone();
        info.known = Some(id.to_string());
        info.known_after_reduction = true;
        info.status = Status::Known;
        write_atomic(
            &info.dir.join("finding.json"),
            serde_json::to_string_pretty(&info)?.as_bytes(),
        )?;
        findings.insert(new_key.clone(), info);
        Ok(new_key)
    }

    /// Files a triaged hit under its identity: another hit of the finding with the same bucket
    /// and signature, or a new finding with the hit's case and reduced case.
    #[allow(clippy::too_many_arguments)]
    pub fn file_identified(
        &self,
        sample_text: &str,
        report: &Report,
        bucket: &str,
        signature: &Signature,
        localised: &[String],
        optimised: Option<&Signature>,
        reduced: Option<&str>,
        seed: Option<u64>,
        escaped_known: Option<String>,
    ) -> Result<Recorded> {
        let mut findings = self.findings.lock().unwrap();
        let same = findings
            .values()
            .find(|f| {
                f.bucket == bucket && f.known.is_none() && f.signature.as_ref() == Some(signature)
            })
            .map(|f| f.key.clone());
        if let Some(key) = same {
            let f = findings.get_mut(&key).unwrap();
            f.hits += 1;
            write_atomic(&f.dir.join("hits"), format!("{}\n", f.hits).as_bytes())?;
            let count = std::fs::read_dir(f.dir.join("samples"))
                .map(|r| r.count())
                .unwrap_or(0);
            let mut sample = None;
            if count < SAMPLES_PER_FINDING {
                let p = f.dir.join("samples").join(sample_name(seed));
                write_atomic(&p, sample_text.as_bytes())?;
                sample = Some(p);
            }
            return Ok(Recorded::Repeat {
                key,
                hits: f.hits,
                known: None,
                sample,
            });
        }
        let key = format!("{bucket}#{}", signature.digest());
        let related: Vec<String> = findings
            .values()
            .filter(|f| f.bucket == bucket && f.known.is_none())
            .filter(|f| {
                let Some(s) = &f.signature else {
                    return false;
                };
                // One identity contains the other; or one's optimised code computes the
                // other's identity (the mid-end turned one into the other); or both need the
                // same stages of the pipeline.
                s.within(signature)
                    || signature.within(s)
                    || optimised.is_some_and(|o| s.within(o))
                    || f.optimised.as_ref().is_some_and(|o| signature.within(o))
                    || (!localised.is_empty() && stages(&f.localised) == stages(localised))
            })
            .map(|f| f.key.clone())
            .collect();
        let info = FindingInfo {
            key: key.clone(),
            bucket: bucket.to_string(),
            known: None,
            status: if reduced.is_some() {
                Status::Reduced
            } else {
                Status::Unreduced
            },
            signature: Some(signature.clone()),
            escaped_known,
            localised: localised.to_vec(),
            optimised: optimised.cloned(),
            known_after_reduction: false,
            related,
            hits: 1,
            dir: self.dir.join(bucket_slug(&key)),
            seed,
        };
        let dir = self.create(&info, sample_text, report, reduced)?;
        findings.insert(
            key.clone(),
            FindingInfo {
                dir: dir.clone(),
                ..info
            },
        );
        Ok(Recorded::New {
            key,
            dir,
            known: None,
        })
    }

    /// Appends one triage decision to `DIR/triage.jsonl`.
    pub fn log_triage(&self, line: serde_json::Value) -> Result<()> {
        use std::io::Write;
        let _guard = self.findings.lock().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("triage.jsonl"))?;
        writeln!(f, "{line}")?;
        Ok(())
    }

    /// Records a case whose batched run showed `batch_bucket` but whose lone run showed
    /// `alone`, in `DIR/screened.jsonl`: not a finding by itself (the lone run is the one that
    /// counts), but a batch that disagrees with its cases is worth a look.
    pub fn note_screened(&self, seed: u64, batch_bucket: &str, alone: &str) -> Result<()> {
        use std::io::Write;
        let _guard = self.findings.lock().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("screened.jsonl"))?;
        let line = serde_json::json!({ "seed": seed, "batch": batch_bucket, "alone": alone });
        writeln!(f, "{line}")?;
        Ok(())
    }

    /// Records a generated case that is not valid input (a generator bug, never a finding) in
    /// `DIR/invalid/`, so it can be fixed and is not lost.
    pub fn note_invalid(&self, case: &TestCase, seed: Option<u64>, why: &str) -> Result<()> {
        let mut c = case.clone();
        c.set_directive("invalid", why.to_string());
        write_atomic(
            &self.dir.join("invalid").join(sample_name(seed)),
            c.to_text().as_bytes(),
        )
    }

    /// Records a case every engine ran out of time on (it does not terminate: a generator bug
    /// when generated) in `DIR/hangs/`.
    pub fn note_hang(&self, case: &TestCase, seed: Option<u64>) -> Result<()> {
        write_atomic(
            &self.dir.join("hangs").join(sample_name(seed)),
            case.to_text().as_bytes(),
        )
    }

    /// Records a seed whose generation panicked, in `DIR/generator-panics.jsonl`.
    pub fn note_generator_panic(&self, seed: u64, message: &str, location: &str) -> Result<()> {
        use std::io::Write;
        let _guard = self.findings.lock().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("generator-panics.jsonl"))?;
        let line = serde_json::json!({ "seed": seed, "message": message, "location": location });
        writeln!(f, "{line}")?;
        Ok(())
    }

    pub fn findings(&self) -> Vec<FindingInfo> {
        self.findings.lock().unwrap().values().cloned().collect()
    }

    pub fn finding(&self, key: &str) -> Option<FindingInfo> {
        self.findings.lock().unwrap().get(key).cloned()
    }

    /// Hits per coarse bucket that wait in `untriaged/`.
    pub fn untriaged_hits(&self) -> BTreeMap<String, u64> {
        self.untriaged_hits.lock().unwrap().clone()
    }

    /// Untriaged sample files still on disk, per bucket.
    pub fn untriaged_samples(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.dir.join("untriaged")) else {
            return out;
        };
        for e in rd.flatten() {
            let Ok(bucket) = std::fs::read_to_string(e.path().join("bucket")) else {
                continue;
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(e.path())
                .map(|r| {
                    r.flatten()
                        .map(|f| f.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "clif"))
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            out.extend(files.into_iter().map(|p| (bucket.trim().to_string(), p)));
        }
        out
    }
}

/// The pipeline stages named by localisation lines (`mid-end`, `ISA features`, ...).
fn stages(localised: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = localised
        .iter()
        .map(|l| l.split(':').next().unwrap_or(l))
        .collect();
    v.sort_unstable();
    v
}

fn read_info(dir: &Path) -> Option<FindingInfo> {
    // `bucket.json` is what stores before bug identity wrote (a nightly's cached state).
    let text = std::fs::read_to_string(dir.join("finding.json"))
        .or_else(|_| std::fs::read_to_string(dir.join("bucket.json")))
        .ok()?;
    let mut f: FindingInfo = serde_json::from_str(&text).ok()?;
    if f.known.is_some() {
        f.status = Status::Known;
    }
    if let Ok(h) = std::fs::read_to_string(dir.join("hits")) {
        f.hits = h.trim().parse().unwrap_or(f.hits);
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSpec;
    use crate::outcome::Outcome;
    use crate::value::Val;

    fn mismatch(case: &TestCase) -> Report {
        let engines: Vec<EngineSpec> = ["interp", "jit"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let ret = |v| Outcome::Returned {
            values: vec![Val::I64(v)],
        };
        Report::judge(case, &engines, &[vec![ret(1)], vec![ret(2)]])
    }

    const CASE: &str = "test run\ntarget x86_64\n\nfunction %f(i64) -> i64 system_v {\nblock0(v0: i64):\n    v1 = umulhi v0, v0\n    return v1\n}\n; print: %f(3)\n";

    #[test]
    fn coarse_hits_wait_for_triage_and_a_reclassified_finding_frees_its_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
        let case = TestCase::parse(CASE).unwrap();
        let report = mismatch(&case);
        let f = &report.findings[0];
        let plan = Plan::default();
        // The first hit of a bucket is a finding at once.
        let first = store.record(&case, &plan, &report, f, Some(1)).unwrap();
        assert!(matches!(first, Recorded::New { ref key, .. } if key == &f.bucket));
        // A second hit of a coarse bucket cannot be told apart yet: it waits on disk.
        let second = store.record(&case, &plan, &report, f, Some(2)).unwrap();
        let Recorded::Untriaged {
            sample, undecided, ..
        } = &second
        else {
            panic!("{second:?}")
        };
        assert!(*undecided);
        assert!(sample.exists());
        // Once identified, a hit that lacks the identity's opcodes is certainly another bug.
        store
            .update(&f.bucket, |i| {
                i.signature = Some(Signature(["rotr".to_string()].into()));
            })
            .unwrap();
        let third = store.record(&case, &plan, &report, f, Some(3)).unwrap();
        assert!(
            matches!(&third, Recorded::Untriaged { explained_by, undecided: false, .. } if explained_by.is_empty()),
            "{third:?}"
        );
        // A finding recognised as a known entry once reduced moves to the entry's key; the
        // bucket's next hit no entry explains starts a finding of its own.
        let moved = store.reclassify_known(&f.bucket, "some-known-bug").unwrap();
        assert_eq!(moved, format!("{}@some-known-bug", f.bucket));
        let fourth = store.record(&case, &plan, &report, f, Some(4)).unwrap();
        assert!(
            matches!(fourth, Recorded::New { ref key, .. } if key == &f.bucket),
            "{fourth:?}"
        );
        // All of it is on disk.
        let again = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
        assert_eq!(again.findings().len(), 2);
        assert_eq!(again.untriaged_samples().len(), 2);
    }
}
