//! In-process entry points for `cargo fuzz` (libFuzzer).
//!
//! libFuzzer owns the process, so engines run in it directly instead of in sandbox workers: the
//! interpreter and compilation in-process (Cranelift panics are caught as outcomes), JIT code in a
//! forked child, object programs as subprocesses — generated code still never runs in the fuzzer
//! itself. A new finding prints the case and its report, then aborts, which libFuzzer records
//! as a crash with the input that produced it.
//!
//! The input type's `Debug` prints the `.clif`, so `cargo fuzz fmt <target> <artifact>` shows
//! the reproducer of an artifact.

use crate::case::TestCase;
use crate::engine::{self, EngineKind, EngineSpec, JitMemory, RunOptions};
use crate::generator::{self, Config};
use crate::harness::Plan;
use crate::known::KnownBuckets;
use crate::oracle::Report;
use crate::outcome::Outcome;
use crate::target::Arch;
use arbitrary::{Arbitrary, Unstructured};
use std::fmt;
use std::sync::OnceLock;

/// A generated case for the host target.
pub struct HostCase(pub TestCase);

impl<'a> Arbitrary<'a> for HostCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        generator::generate(u, &Config::for_target(Arch::host())).map(HostCase)
    }
}

impl fmt::Debug for HostCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_text())
    }
}

/// A generated case for any target clif-diff knows, chosen by the first input byte.
pub struct AnyTargetCase(pub TestCase);

impl<'a> Arbitrary<'a> for AnyTargetCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let arch = *u.choose(&[Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x])?;
        generator::generate(u, &Config::for_target(arch)).map(AnyTargetCase)
    }
}

/// Prints the case with the `jit_relocs` plan as directives, so the `.clif` replays alone.
impl fmt::Debug for AnyTargetCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut case = self.0.clone();
        relocs_plan(&case).record(&mut case);
        f.write_str(&case.to_text())
    }
}

fn known() -> &'static KnownBuckets {
    static K: OnceLock<KnownBuckets> = OnceLock::new();
    K.get_or_init(KnownBuckets::load_default)
}

/// `CLIF_DIFF_FUZZ_REPORT_KNOWN=1` makes known buckets abort too (e.g. to watch `jit_relocs`
/// find the far-call bug).
fn report_known() -> bool {
    std::env::var_os("CLIF_DIFF_FUZZ_REPORT_KNOWN").is_some()
}

/// Runs `engines` on `case` in this process and judges the outcomes.
pub fn run_in_process(case: &TestCase, engines: &[EngineSpec], opts: &RunOptions) -> Report {
    let outcomes: Vec<Vec<Outcome>> = engines
        .iter()
        .map(|spec| {
            let mut row: Vec<Option<Outcome>> = vec![None; case.runs.len()];
            engine::execute(case, spec, opts, 0, &mut |i, o| row[i] = Some(o));
            row.into_iter()
                .map(|o| {
                    o.unwrap_or(Outcome::Unsupported {
                        reason: "no outcome".into(),
                    })
                })
                .collect()
        })
        .collect();
    Report::judge(case, engines, &outcomes)
}

/// Aborts with the case and report when `report` is a finding worth a libFuzzer crash. The
/// printed case carries `plan` as directives, so it replays with `clif-diff run` alone.
pub fn abort_on_finding(case: &TestCase, plan: &Plan, report: &Report) {
    if !report.verdict.is_finding() {
        return;
    }
    // Stop only for a finding no known entry explains (each finding judged on its own).
    if !report_known()
        && report
            .findings
            .iter()
            .all(|f| known().classify(case, report, f).is_some())
    {
        return;
    }
    let mut case = case.clone();
    plan.record(&mut case);
    eprintln!("clif-diff finding: {}\n{}", report.bucket, case.to_text());
    eprintln!(
        "{}",
        serde_json::to_string_pretty(report).unwrap_or_default()
    );
    std::process::abort();
}

/// The `differential` target: all three engines on a host case.
pub fn differential(case: &HostCase) {
    let plan = Plan::default();
    let report = run_in_process(&case.0, &plan.engines, &plan.opts);
    abort_on_finding(&case.0, &plan, &report);
}

/// The `jit_relocs` target: the JIT with the `far` memory provider. On the host it runs and is
/// compared with the interpreter; on foreign targets it is compiled and finalized only, so any
/// relocation panic (the class of wasmtime#8852) shows without foreign hardware.
pub fn jit_relocs(case: &AnyTargetCase) {
    let plan = relocs_plan(&case.0);
    let report = run_in_process(&case.0, &plan.engines, &plan.opts);
    abort_on_finding(&case.0, &plan, &report);
}

/// `far` JIT memory; interpreter and JIT on the host, the JIT alone (finalize only) elsewhere.
fn relocs_plan(case: &TestCase) -> Plan {
    let host = crate::target::case_arch(case).is_ok_and(|a| a == Arch::host());
    Plan {
        engines: if host {
            vec![
                EngineSpec::plain(EngineKind::Interp),
                EngineSpec::plain(EngineKind::Jit),
            ]
        } else {
            vec![EngineSpec::plain(EngineKind::Jit)]
        },
        opts: RunOptions {
            jit_memory: JitMemory::Far,
            ..RunOptions::default()
        },
    }
}
