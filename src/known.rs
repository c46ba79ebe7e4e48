//! Known buckets: findings that are understood, kept as data with their reason.
//!
//! `corpus/known-bugs.toml` lists each bucket pattern with whether it is a live upstream `bug` or a
//! documented `limit` of a backend, why, and where upstream tracks it. Campaigns count hits on
//! known buckets instead of reporting them as new; nothing is silenced without a recorded reason.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum KnownKind {
    /// A real Cranelift bug in the pinned version.
    Bug,
    /// Documented behaviour of a backend (not a bug), e.g. `sarg` unsupported on aarch64.
    Limit,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Known {
    pub id: String,
    /// Bucket, exact or a pattern in which `*` stands for any text (`error:*:compile:Too_many*`).
    pub bucket: String,
    pub kind: KnownKind,
    pub reason: String,
    #[serde(default)]
    pub upstream: Option<String>,
    /// A corpus file that reproduces it.
    #[serde(default)]
    pub reproducer: Option<String>,
    /// Text that must all occur in the case for the entry to apply. Lets a bug whose bucket is
    /// generic (`crash:jit:SIGSEGV`) be known only for the cases that show its cause, so other
    /// causes of the same bucket are still reported as new.
    #[serde(default)]
    pub when: Vec<String>,
}

impl Known {
    fn applies(&self, bucket: &str, case_text: &str) -> bool {
        glob_match(&self.bucket, bucket) && self.when.iter().all(|w| case_text.contains(w.as_str()))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KnownBuckets {
    #[serde(default, rename = "known")]
    pub entries: Vec<Known>,
}

impl KnownBuckets {
    pub fn load(path: &Path) -> Result<KnownBuckets> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The default list shipped in the repository, or none when run elsewhere.
    pub fn load_default() -> KnownBuckets {
        let p = default_path();
        if p.exists() {
            KnownBuckets::load(&p).unwrap_or_default()
        } else {
            KnownBuckets::default()
        }
    }

    /// The entry that explains `bucket` for a case with text `case_text`, most specific first.
    pub fn classify(&self, bucket: &str, case_text: &str) -> Option<&Known> {
        let mut hits: Vec<&Known> = self
            .entries
            .iter()
            .filter(|k| k.applies(bucket, case_text))
            .collect();
        hits.sort_by_key(|k| std::cmp::Reverse(k.when.len()));
        hits.into_iter().next()
    }

    /// The key findings are deduplicated by: the bucket, refined by the known entry when that
    /// entry is conditional, so a known cause and an unknown one never share a directory.
    pub fn store_key(&self, bucket: &str, case_text: &str) -> String {
        match self.classify(bucket, case_text) {
            Some(k) if !k.when.is_empty() => format!("{bucket}@{}", k.id),
            _ => bucket.to_string(),
        }
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// `corpus/known-bugs.toml` next to the crate (or `$CLIF_DIFF_KNOWN`).
pub fn default_path() -> std::path::PathBuf {
    match std::env::var_os("CLIF_DIFF_KNOWN") {
        Some(p) => p.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/known-bugs.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_parses_and_matches_patterns() {
        let k = KnownBuckets::load(&default_path()).unwrap();
        assert!(!k.entries.is_empty());
        for e in &k.entries {
            assert!(!e.reason.trim().is_empty(), "{} has no reason", e.id);
            let text = e.when.join(" ");
            assert_eq!(
                k.classify(e.bucket.trim_end_matches('*'), &text)
                    .map(|m| &m.id),
                Some(&e.id)
            );
        }
        assert!(k.classify("agree", "").is_none());
    }

    #[test]
    fn conditional_entries_only_cover_their_cause() {
        let k: KnownBuckets = toml::from_str(
            r#"
            [[known]]
            id = "generic"
            bucket = "crash:*"
            kind = "limit"
            reason = "r"
            [[known]]
            id = "specific"
            bucket = "crash:jit:SIGSEGV"
            kind = "bug"
            reason = "r"
            when = ["sarg(", "windows_fastcall"]
            "#,
        )
        .unwrap();
        let both = "f(i64 sarg(8)) windows_fastcall";
        assert_eq!(
            k.classify("crash:jit:SIGSEGV", both).unwrap().id,
            "specific"
        );
        assert_eq!(
            k.classify("crash:jit:SIGSEGV", "sarg(8) only").unwrap().id,
            "generic"
        );
        assert_eq!(
            k.store_key("crash:jit:SIGSEGV", both),
            "crash:jit:SIGSEGV@specific"
        );
        assert_eq!(k.store_key("crash:jit:SIGSEGV", "x"), "crash:jit:SIGSEGV");
    }

    #[test]
    fn patterns_match_anywhere() {
        assert!(glob_match("a*", "abc"));
        assert!(glob_match(
            "error:*:compile:X*",
            "error:object[opt_level=none]:compile:X_y"
        ));
        assert!(!glob_match("error:*:compile:X*", "error:object:link:X_y"));
        assert!(glob_match("*:SIGSEGV", "crash:object:SIGSEGV"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
    }
}
