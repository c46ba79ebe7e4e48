//! `clif-diff bench-object FILES…`: what the object path costs per case, one link per case
//! against batches.
//!
//! Runs in this process (no sandbox: the inputs are trusted corpus cases) so that only the
//! object path is timed. Each file is repeated `--repeat` times to make a workload; cases are
//! grouped by target like campaigns group them.

use clif_diff::case::{TestCase, load};
use clif_diff::engine::batch::{batch_key, run_batch};
use clif_diff::engine::{EngineKind, EngineSpec, RunOptions};
use clif_diff::toolchain::link_count;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Cases to run (their `target` lines pick the ISA).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Copies of each file in the workload.
    #[arg(long, default_value_t = 20)]
    pub repeat: usize,
    /// Cases per batch in the batched mode.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    clif_diff::panics::install_hook();
    let spec = EngineSpec::plain(EngineKind::Object);
    let opts = RunOptions::default();
    let mut groups: BTreeMap<String, Vec<TestCase>> = BTreeMap::new();
    for f in &args.files {
        let case = load(f)?;
        let copies = std::iter::repeat_n(case.clone(), args.repeat);
        groups.entry(batch_key(&case)).or_default().extend(copies);
    }
    println!(
        "{:<28} {:>6} {:>6}  {:>12} {:>9}  {:>12} {:>9}  {:>7}",
        "target", "cases", "runs", "single ms/c", "links", "batch ms/c", "links", "speedup"
    );
    for (key, cases) in &groups {
        let refs: Vec<&TestCase> = cases.iter().collect();
        let runs: usize = cases.iter().map(|c| c.runs.len()).sum();
        // Warm the driver-object cache so neither mode pays for compiling driver.c.
        run_batch(&refs[..1], &spec, &opts);

        let (l0, t0) = (link_count(), Instant::now());
        for c in &refs {
            run_batch(std::slice::from_ref(c), &spec, &opts);
        }
        let (single, single_links) = (t0.elapsed(), link_count() - l0);

        let (l0, t0) = (link_count(), Instant::now());
        for chunk in refs.chunks(args.batch.max(1)) {
            run_batch(chunk, &spec, &opts);
        }
        let (batched, batch_links) = (t0.elapsed(), link_count() - l0);

        let per = |d: std::time::Duration| d.as_secs_f64() * 1e3 / cases.len() as f64;
        println!(
            "{:<28} {:>6} {:>6}  {:>12.2} {:>9}  {:>12.2} {:>9}  {:>6.1}x",
            key,
            cases.len(),
            runs,
            per(single),
            single_links,
            per(batched),
            batch_links,
            single.as_secs_f64() / batched.as_secs_f64()
        );
    }
    Ok(0)
}
