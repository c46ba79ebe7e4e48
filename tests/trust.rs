//! Trust in findings: distinct bugs stay distinct, nothing hides, and reduction is isolated.
//!
//! Bugs are stand-ins injected with test-only faults (`interp-swap:FROM>TO` makes the reference
//! engine compute one opcode as another: a miscompile with a known root cause).

use clif_diff::campaign::findings::{FindingStore, Status};
use clif_diff::campaign::{self, TriageConfig, triage};
use clif_diff::engine::Faults;
use clif_diff::known::KnownBuckets;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

mod common;
use common::{case, config};

const EXE: &str = env!("CARGO_BIN_EXE_clif-diff");

fn two_faults() -> Faults {
    Faults::parse("interp-swap:umulhi>smulhi, interp-swap:rotr>rotl").unwrap()
}

fn triaging(cfg: &mut campaign::CampaignConfig) {
    cfg.triage = Some(TriageConfig {
        limits: triage::Limits {
            time: Duration::from_secs(120),
            max_candidates: None,
        },
        grace: Duration::from_secs(600),
    });
}

#[test]
fn two_different_faults_in_one_bucket_are_two_findings_each_reduced() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        case("tests/cases/fault-umulhi.clif"),
        case("tests/cases/fault-rotr.clif"),
    ];
    let source = |seed: u64| cases[(seed % 2) as usize].clone();
    let mut cfg = config(dir.path(), 4, 1);
    cfg.plan.opts.faults = two_faults();
    triaging(&mut cfg);
    let store = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
    let result = campaign::run(&cfg, &source, store, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(result.stats.cases, 4);
    let findings = result.store.findings();
    // One bucket...
    assert!(
        findings
            .iter()
            .all(|f| f.bucket == "mismatch:interp!=jit=object"),
        "{findings:#?}"
    );
    // ...two findings, each with its own stored case and reproducer, told apart by what their
    // reduced cases compute.
    let mut identities: Vec<String> = findings
        .iter()
        .map(|f| f.signature.as_ref().expect("identified").describe())
        .collect();
    identities.sort();
    assert_eq!(identities, ["rotr", "umulhi"], "{findings:#?}");
    for f in &findings {
        assert_eq!(f.status, Status::Reduced, "{f:#?}");
        let reduced = std::fs::read_to_string(f.dir.join("reduced.clif")).unwrap();
        let sig = f.signature.as_ref().unwrap().describe();
        assert!(reduced.contains(&sig), "{reduced}");
        // The other fault's opcode is not in this reproducer's code: each shows its own bug.
        let other = if sig == "rotr" { "umulhi" } else { "rotr" };
        let code = &reduced[reduced.find("\nfunction").unwrap()..];
        assert!(!code.contains(other), "{reduced}");
        // And it replays from the file alone, in a fresh process, as the finding.
        let out = Command::new(EXE)
            .arg("run")
            .arg(f.dir.join("reduced.clif"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains("bucket: mismatch:interp!=jit=object"),
            "{stdout}"
        );
    }
}

#[test]
fn a_candidate_that_makes_cranelift_panic_costs_that_candidate_only() {
    let dir = tempfile::tempdir().unwrap();
    let umulhi = case("tests/cases/fault-umulhi.clif");
    let source = |_: u64| umulhi.clone();
    let mut cfg = config(dir.path(), 3, 1);
    cfg.plan.opts.faults = two_faults();
    // Building the reducer's third candidate trips Cranelift's IR builder ("invalid type for
    // half_width"), as real candidates of the type-narrowing pass once did.
    cfg.plan.opts.faults.reducer_panic_at = Some(3);
    triaging(&mut cfg);
    let store = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
    let result = campaign::run(&cfg, &source, store, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(result.stats.cases, 3);
    let f = &result.store.findings()[0];
    assert_eq!(f.status, Status::Reduced, "{f:#?}");
    let reduced = std::fs::read_to_string(f.dir.join("reduced.clif")).unwrap();
    assert!(reduced.contains("umulhi"), "{reduced}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.dir.join("reduce.json")).unwrap()).unwrap();
    assert_eq!(stats["stats"]["panicked"], 1, "{stats}");
}

#[test]
fn a_reducer_that_dies_costs_its_reduction_and_the_campaign_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let umulhi = case("tests/cases/fault-umulhi.clif");
    let source = |_: u64| umulhi.clone();
    let mut cfg = config(dir.path(), 6, 1);
    cfg.plan.opts.faults = two_faults();
    // The reduce worker process aborts at its fifth candidate: no `catch_unwind` holds that.
    cfg.plan.opts.faults.reducer_abort_at = Some(5);
    triaging(&mut cfg);
    let store = FindingStore::open(dir.path(), KnownBuckets::default()).unwrap();
    let result = campaign::run(&cfg, &source, store, Arc::new(AtomicBool::new(false))).unwrap();
    // Every case ran and was judged.
    assert_eq!(result.stats.cases, 6);
    assert_eq!(result.stats.verdicts.get("mismatch"), Some(&6));
    let f = &result.store.findings()[0];
    // The finding is on disk, marked as not reduced, with what happened.
    assert_eq!(f.status, Status::Unreduced, "{f:#?}");
    assert!(f.dir.join("case.clif").exists());
    let why = std::fs::read_to_string(f.dir.join("reduce.json")).unwrap();
    assert!(why.contains("reducer process died"), "{why}");
}

#[test]
fn a_jit_panic_does_not_hide_an_interp_object_mismatch() {
    // `far` JIT memory makes the colocated call's relocation panic the JIT; the test fault makes
    // the interpreter leak a `sarg` write. Both are findings of the same case.
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/sarg-copy-leak.clif");
    let out = Command::new(EXE)
        .args(["run", "--json", "--jit-memory", "far"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let buckets: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(
        buckets,
        [
            "panic:cranelift-jit/src/compiled_blob.rs:142",
            "mismatch:interp!=object"
        ]
    );
    // The table shows both too.
    let out = Command::new(EXE)
        .args(["run", "--jit-memory", "far"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("finding: mismatch:interp!=object"), "{text}");
    assert!(
        text.contains("finding: panic:cranelift-jit/src/compiled_blob.rs:142"),
        "{text}"
    );
}

#[test]
fn localisation_names_the_pipeline_stage_a_finding_needs() {
    use clif_diff::harness::{Overrides, Plan, check};
    use clif_diff::sandbox::{Sandbox, WorkerCommand};
    // The riscv64 single-pass bug: gone with the other register allocator, and nothing else.
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/regressions/riscv64-single-pass-implicit-sret-f32.clif");
    let case = clif_diff::case::load(&file).unwrap();
    let plan = Plan::for_case(&case, &Overrides::default()).unwrap();
    let mut sandbox = Sandbox::new(WorkerCommand { exe: EXE.into() });
    let report = check(&mut sandbox, &case, &plan).unwrap();
    let finding = report.finding("mismatch:interp!=object").unwrap();
    let where_ = clif_diff::localise::localise(&mut sandbox, &case, &plan, finding).unwrap();
    assert_eq!(where_.len(), 1, "{where_:?}");
    assert!(where_[0].starts_with("register allocation"), "{where_:?}");
    // A fault of the reference engine is no stage of Cranelift's: nothing localises it.
    let umulhi = case_with_faults("tests/cases/fault-umulhi.clif");
    let plan = Plan::for_case(&umulhi, &Overrides::default()).unwrap();
    let report = check(&mut sandbox, &umulhi, &plan).unwrap();
    let finding = &report.findings[0];
    assert!(
        clif_diff::localise::localise(&mut sandbox, &umulhi, &plan, finding)
            .unwrap()
            .is_empty()
    );
}

fn case_with_faults(rel: &str) -> clif_diff::case::TestCase {
    let mut c = case(rel);
    c.set_directive("fault", two_faults().to_directive());
    c
}

#[test]
fn the_mid_end_view_links_a_rewritten_finding_to_the_op_it_became() {
    use clif_diff::harness::{Overrides, Plan, check};
    use clif_diff::sandbox::{Sandbox, WorkerCommand};
    // At opt_level=speed the mid-end turns an unsigned division by a constant into a `umulhi`
    // by a magic number: a bug in `umulhi`'s lowering shows through a `udiv`.
    let case = clif_diff::case::TestCase::parse(
        "; clif-diff: fault = interp-swap:udiv>urem\ntest interpret\ntest run\nset opt_level=speed\ntarget x86_64\n\nfunction %f(i32) -> i32 system_v {\nblock0(v0: i32):\n    v1 = iconst.i32 7\n    v2 = udiv v0, v1\n    return v2\n}\n; print: %f(100)\n",
    )
    .unwrap();
    let plan = Plan::for_case(&case, &Overrides::default()).unwrap();
    let mut sandbox = Sandbox::new(WorkerCommand { exe: EXE.into() });
    let report = check(&mut sandbox, &case, &plan).unwrap();
    let finding = &report.findings[0];
    let sig = clif_diff::identity::signature(&case, &report, finding);
    assert_eq!(sig.describe(), "udiv");
    let opt = clif_diff::localise::optimised(&mut sandbox, &case, &report, finding).unwrap();
    assert!(opt.0.contains("umulhi"), "{}", opt.describe());
    assert!(!opt.0.contains("udiv"), "{}", opt.describe());
}
