//! Helpers shared by the campaign test binaries.

use clif_diff::campaign::CampaignConfig;
use clif_diff::case::{TestCase, load};
use clif_diff::harness::Plan;
use clif_diff::sandbox::WorkerCommand;
use std::path::Path;

/// A case from the repository, without its directives (campaign plans come from the CLI).
pub fn case(rel: &str) -> TestCase {
    let mut c = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap();
    c.directives.clear();
    c
}

/// A campaign over `cases` seeds with short limits, writing to `out`.
pub fn config(out: &Path, cases: u64, jobs: usize) -> CampaignConfig {
    let mut plan = Plan::default();
    plan.opts.timeout_ms = 1500;
    plan.opts.fuel = 200_000;
    CampaignConfig {
        time: None,
        cases: Some(cases),
        jobs,
        plan,
        first_seed: 0,
        out: out.to_path_buf(),
        worker: WorkerCommand {
            exe: env!("CARGO_BIN_EXE_clif-diff").into(),
        },
        progress: false,
        batch: 1,
        triage: None,
    }
}
