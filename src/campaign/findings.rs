//! Findings on disk, one directory per bucket, written before anything is reported.
//!
//! ```text
//! DIR/<bucket-slug>/case.clif     first case of the bucket; replays alone (options as directives)
//! DIR/<bucket-slug>/report.json   every engine's outcomes
//! DIR/<bucket-slug>/replay.sh     the exact command that replays it
//! DIR/<bucket-slug>/hits          how many cases hit the bucket so far
//! DIR/<bucket-slug>/reduced.clif  the reducer's output, once done
//! ```
//!
//! A bucket directory is assembled under a temporary name and renamed into place, so a reader
//! (or a campaign killed mid-write) never sees half a finding. Hit counts are rewritten the same
//! way.

use crate::case::TestCase;
use crate::harness::{Plan, keys};
use crate::known::KnownBuckets;
use crate::oracle::Report;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What recording a finding did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// First case of a bucket not seen before in this store.
    New { dir: PathBuf, known: Option<String> },
    /// Another hit on an existing bucket.
    Repeat { hits: u64, known: Option<String> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketInfo {
    /// What findings are deduplicated by: the bucket, refined by a conditional known entry.
    pub key: String,
    pub bucket: String,
    pub hits: u64,
    /// Known-bug id, when the bucket is listed in `corpus/known-bugs.toml`.
    pub known: Option<String>,
    pub dir: PathBuf,
    /// Seed of the first case, when it came from the generator.
    pub seed: Option<u64>,
}

pub struct FindingStore {
    dir: PathBuf,
    known: KnownBuckets,
    buckets: Mutex<BTreeMap<String, BucketInfo>>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
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

/// A directory name for a bucket: readable, filesystem-safe, and unique per bucket string.
pub fn bucket_slug(bucket: &str) -> String {
    let mut s: String = bucket
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
    for b in bucket.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    format!("{s}-{h:08x}")
}

impl FindingStore {
    /// Opens (or creates) a store, picking up the buckets already in it.
    pub fn open(dir: &Path, known: KnownBuckets) -> Result<FindingStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut buckets = BTreeMap::new();
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            let info = p.join("bucket.json");
            if let Ok(text) = std::fs::read_to_string(&info)
                && let Ok(mut b) = serde_json::from_str::<BucketInfo>(&text)
            {
                if let Ok(h) = std::fs::read_to_string(p.join("hits")) {
                    b.hits = h.trim().parse().unwrap_or(b.hits);
                }
                b.dir = p.clone();
                buckets.insert(b.key.clone(), b);
            }
        }
        Ok(FindingStore {
            dir: dir.to_path_buf(),
            known,
            buckets: Mutex::new(buckets),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn known(&self) -> &KnownBuckets {
        &self.known
    }

    /// Persists a finding (first of its bucket) or counts a repeat. Returns only once on disk.
    pub fn record(
        &self,
        case: &TestCase,
        plan: &Plan,
        report: &Report,
        seed: Option<u64>,
    ) -> Result<Recorded> {
        let text = case.to_text();
        let known = self
            .known
            .classify(&report.bucket, &text)
            .map(|k| k.id.clone());
        let key = self.known.store_key(&report.bucket, &text);
        let mut buckets = self.buckets.lock().unwrap();
        if let Some(b) = buckets.get_mut(&key) {
            b.hits += 1;
            write_atomic(&b.dir.join("hits"), format!("{}\n", b.hits).as_bytes())?;
            return Ok(Recorded::Repeat {
                hits: b.hits,
                known,
            });
        }
        let slug = bucket_slug(&key);
        let final_dir = self.dir.join(&slug);
        let tmp = self.dir.join(format!(
            ".{slug}.tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&tmp)?;
        let mut case = case.clone();
        plan.record(&mut case);
        case.set_directive(keys::EXPECT, report.bucket.clone());
        if let Some(k) = &known {
            case.set_directive(keys::KNOWN, k.clone());
        }
        if let Some(s) = seed {
            case.set_directive("seed", s.to_string());
        }
        std::fs::write(tmp.join("case.clif"), case.to_text())?;
        std::fs::write(
            tmp.join("report.json"),
            serde_json::to_string_pretty(report)?,
        )?;
        std::fs::write(
            tmp.join("replay.sh"),
            format!(
                "#!/bin/sh\n# Replays bucket {} from the .clif alone.\nexec clif-diff run \"$(dirname \"$0\")/case.clif\"\n",
                report.bucket
            ),
        )?;
        std::fs::write(tmp.join("hits"), "1\n")?;
        let info = BucketInfo {
            key: key.clone(),
            bucket: report.bucket.clone(),
            hits: 1,
            known: known.clone(),
            dir: final_dir.clone(),
            seed,
        };
        std::fs::write(
            tmp.join("bucket.json"),
            serde_json::to_string_pretty(&info)?,
        )?;
        if final_dir.exists() {
            // Left over from an earlier store with a different index; keep the old evidence.
            std::fs::remove_dir_all(&tmp)?;
        } else {
            std::fs::rename(&tmp, &final_dir)?;
        }
        buckets.insert(key, info);
        Ok(Recorded::New {
            dir: final_dir,
            known,
        })
    }

    /// Records a case whose batched run showed `batch_bucket` but whose lone run showed
    /// `alone`, in `DIR/screened.jsonl`: not a finding by itself (the lone run is the one that
    /// counts), but a batch that disagrees with its cases is worth a look.
    pub fn note_screened(&self, seed: u64, batch_bucket: &str, alone: &str) -> Result<()> {
        use std::io::Write;
        let _guard = self.buckets.lock().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("screened.jsonl"))?;
        let line = serde_json::json!({ "seed": seed, "batch": batch_bucket, "alone": alone });
        writeln!(f, "{line}")?;
        Ok(())
    }

    pub fn buckets(&self) -> Vec<BucketInfo> {
        self.buckets.lock().unwrap().values().cloned().collect()
    }
}
