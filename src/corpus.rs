//! Growing the regression corpus: promoting a case (usually a reduced finding) into
//! `corpus/regressions/` with the expectation it replays to.

use crate::case::TestCase;
use crate::harness::{Plan, check, keys};
use crate::known::KnownBuckets;
use crate::oracle::Report;
use crate::sandbox::Sandbox;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

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
    crate::reduce::output::expect_reference(&mut out, &report);
    // Expectations must not change what the case shows; check before keeping them.
    let again = check(sandbox, &out, plan)?;
    if !crate::harness::meets_expectation(&again, &crate::harness::expectation(&report)) {
        out.runs = case.runs.clone();
    }
    out.set_directive(keys::EXPECT, crate::harness::expectation(&report));
    let ids = crate::harness::known_ids(known, case, &report);
    if !ids.is_empty() {
        out.set_directive(keys::KNOWN, ids.join(", "));
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, out.to_text())?;
    Ok((path, report))
}

/// Writes libFuzzer inputs into `dir` so that every generator feature is reached: for each
/// feature, the first seed in `0..scan` whose case has it, as `seed-<N>.bin` (one file per
/// distinct seed), plus `FEATURES.txt` saying which file reaches what. Returns (feature, seed).
///
/// The inputs are the generator's own seed bytes, cut to what the generator reads, so the fuzz
/// targets start from cases that already reach every feature instead of rediscovering them.
pub fn write_fuzz_seeds(
    dir: &Path,
    cfg: &crate::generator::Config,
    scan: u64,
) -> Result<Vec<(String, u64)>> {
    use crate::generator::{features::features, from_seed, seed_input};
    std::fs::create_dir_all(dir)?;
    let mut found: std::collections::BTreeMap<String, u64> = Default::default();
    for seed in 0..scan {
        for name in features(&from_seed(seed, cfg)).names() {
            found.entry(name.replace(' ', "_")).or_insert(seed);
        }
    }
    let mut index =
        String::from("# feature -> libFuzzer seed input (`clif-diff corpus fuzz-seeds`)\n");
    let mut seeds: Vec<u64> = found.values().copied().collect();
    seeds.sort_unstable();
    seeds.dedup();
    for s in seeds {
        std::fs::write(dir.join(format!("seed-{s}.bin")), seed_input(s, cfg))?;
    }
    for (f, s) in &found {
        index += &format!("{f} seed-{s}.bin\n");
    }
    std::fs::write(dir.join("FEATURES.txt"), index)?;
    Ok(found.into_iter().collect())
}
