//! Reducing each new bucket's first finding as soon as it is on disk.

use super::NewBucketHook;
use super::findings::write_atomic;
use crate::case::TestCase;
use crate::harness::Plan;
use crate::oracle::Report;
use crate::reduce::{ReduceOptions, output, reduce_in};
use crate::sandbox::Sandbox;
use std::path::Path;
use std::time::Duration;

/// Reduction budget per bucket: a campaign must not stall on one stubborn finding.
pub const REDUCE_BUDGET: Duration = Duration::from_secs(120);

/// The hook `clif-diff fuzz` installs: writes `reduced.clif` and `reduce.json` next to the
/// finding. A failed reduction is recorded (`reduce.json`), never fatal: the finding is already
/// safe in `case.clif`.
pub fn hook() -> Box<NewBucketHook<'static>> {
    Box::new(
        |sandbox: &mut Sandbox, case: &TestCase, plan: &Plan, report: &Report, dir: &Path| {
            let opts = ReduceOptions {
                time_limit: Some(REDUCE_BUDGET),
                ..ReduceOptions::default()
            };
            let result = match reduce_in(sandbox, case, plan, &report.bucket, &opts) {
                Ok(reduced) => {
                    let out = dir.join("reduced.clif");
                    let text = output::render(
                        &reduced,
                        plan,
                        &dir.join("case.clif").display().to_string(),
                        &out.display().to_string(),
                    );
                    match write_atomic(&out, text.as_bytes()) {
                        Ok(()) => serde_json::json!({ "ok": true, "stats": reduced.stats }),
                        Err(e) => serde_json::json!({ "ok": false, "error": format!("{e:#}") }),
                    }
                }
                Err(e) => serde_json::json!({ "ok": false, "error": format!("{e:#}") }),
            };
            let _ = write_atomic(
                &dir.join("reduce.json"),
                serde_json::to_string_pretty(&result)
                    .unwrap_or_default()
                    .as_bytes(),
            );
        },
    )
}
