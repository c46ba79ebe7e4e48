//! In-process entry points for `cargo fuzz` (libFuzzer).
//!
//! libFuzzer owns the process, so engines run in it directly instead of in sandbox workers: the
//! interpreter and compilation in-process (Cranelift panics are caught as outcomes), JIT code in
//! the persistent runner (one long-lived child, [`crate::engine::runner`]), object programs as
//! subprocesses — generated code still never runs in the fuzzer itself. A finding the runner
//! saw is judged again with the JIT in forked children, as `clif-diff run` replays it, before it
//! becomes an artifact. A new finding prints the case and its report, then aborts, which libFuzzer records
//! as a crash with the input that produced it.
//!
//! The input type's `Debug` prints the `.clif`, so `cargo fuzz fmt <target> <artifact>` shows
//! the reproducer of an artifact.
//!
//! Throughput decides what libFuzzer's guidance is worth, so the targets spend it where it pays:
//! no fork per input for the JIT, and `differential` runs the object path (a `cc` link and a
//! process per input) on a stated share of inputs ([`object_every`]). Their mutator mixes fresh
//! random inputs into libFuzzer's edits ([`mutate`]), since the generator makes any bytes a case;
//! their ASan builds run without fake stacks ([`ASAN_DEFAULT_OPTIONS`]).

use crate::case::TestCase;
use crate::engine::{self, EngineKind, EngineSpec, JitMemory, JitRunner, RunOptions};
use crate::generator::{self, Config};
use crate::harness::Plan;
use crate::known::KnownBuckets;
use crate::oracle::Report;
use crate::outcome::Outcome;
use crate::target::Arch;
use arbitrary::{Arbitrary, Unstructured};
use std::fmt;
use std::sync::OnceLock;

/// A generated case for the host target, and whether it is one of the inputs that run the
/// object path (see [`object_every`]).
pub struct HostCase {
    pub case: TestCase,
    pub object: bool,
}

impl<'a> Arbitrary<'a> for HostCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let t0 = std::time::Instant::now();
        // Decided by the input's bytes, so that an artifact runs the same engines again (and its
        // `.clif` carries them as a directive).
        let object = in_share(u.peek_bytes(u.len()).unwrap_or_default(), object_every());
        let case = generator::generate_unprinted(u, &Config::for_libfuzzer(Arch::host()))?;
        if timing() {
            eprintln!("clif-diff timing: generate {:?}", t0.elapsed());
        }
        Ok(HostCase { case, object })
    }
}

/// Prints the case with the `differential` plan as directives (engines, planted faults), so the
/// `.clif` that `cargo fuzz fmt` prints replays alone.
impl fmt::Debug for HostCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut case = self.case.clone();
        differential_plan(self.object).record(&mut case);
        f.write_str(&case.to_text())
    }
}

/// A generated case for any target clif-diff knows, chosen by the first input byte.
pub struct AnyTargetCase(pub TestCase);

impl<'a> Arbitrary<'a> for AnyTargetCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let arch = *u.choose(&[Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x])?;
        generator::generate_unprinted(u, &Config::for_libfuzzer(arch)).map(AnyTargetCase)
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

/// `CLIF_DIFF_FUZZ_TIMING=1` prints each engine's time per input (where a target's time goes).
pub(crate) fn timing() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("CLIF_DIFF_FUZZ_TIMING").is_some())
}

/// Runs `engines` on `case` in this process and judges the outcomes.
pub fn run_in_process(case: &TestCase, engines: &[EngineSpec], opts: &RunOptions) -> Report {
    let outcomes: Vec<Vec<Outcome>> = engines
        .iter()
        .map(|spec| {
            let mut row: Vec<Option<Outcome>> = vec![None; case.runs.len()];
            let t0 = std::time::Instant::now();
            engine::execute(case, spec, opts, 0, &mut |i, o| row[i] = Some(o));
            if timing() {
                eprintln!("clif-diff timing: {} {:?}", spec, t0.elapsed());
            }
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
///
/// A finding is first judged again as its artifact will replay ([`replayed`]); only what that
/// judgement still finds aborts.
pub fn abort_on_finding(case: &TestCase, plan: &Plan, report: &Report) {
    if !worth_an_artifact(case, report) {
        return;
    }
    let (mut case, report) = replayed(case, plan, report);
    if !worth_an_artifact(&case, &report) {
        return;
    }
    plan.record(&mut case);
    eprintln!("clif-diff finding: {}\n{}", report.bucket, case.to_text());
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    std::process::abort();
}

/// A finding no known entry explains (each finding judged on its own), or any finding with
/// `CLIF_DIFF_FUZZ_REPORT_KNOWN`.
fn worth_an_artifact(case: &TestCase, report: &Report) -> bool {
    report.verdict.is_finding()
        && (report_known()
            || report
                .findings
                .iter()
                .any(|f| known().classify(case, report, f).is_none()))
}

/// `CLIF_DIFF_FUZZ_FAULTS` plants bugs in the targets' engines, in the `fault` directive's form
/// (`interp-swap:iadd>isub`, `jit-crash-on:imul`, `jit-compile-panic-on:band`): the proof that
/// a mismatch, a JIT crash and a Cranelift panic each end as an artifact that replays. The
/// printed case carries the fault as a directive, so `clif-diff run` replays it too.
fn planted() -> &'static crate::engine::Faults {
    static F: OnceLock<crate::engine::Faults> = OnceLock::new();
    F.get_or_init(|| match std::env::var("CLIF_DIFF_FUZZ_FAULTS") {
        Ok(s) => crate::engine::Faults::parse(&s)
            .unwrap_or_else(|e| panic!("CLIF_DIFF_FUZZ_FAULTS: {e:#}")),
        Err(_) => crate::engine::Faults::default(),
    })
}

/// The `differential` target: the interpreter and the JIT on every host case, the object path
/// on a share of them (see [`object_every`]).
pub fn differential(input: &HostCase) {
    let plan = differential_plan(input.object);
    let t0 = std::time::Instant::now();
    let report = run_in_process(&input.case, &plan.engines, &plan.opts);
    abort_on_finding(&input.case, &plan, &report);
    if timing() {
        let s = engine::runner::stats();
        eprintln!(
            "clif-diff timing: input {:?} (JIT runner: {} modules served, {} fell back to forks, {} runners started)",
            t0.elapsed(),
            s.served,
            s.fell_back,
            s.started
        );
    }
}

/// `case` and `report` judged again the way `clif-diff run` replays an artifact: the case read
/// back from its own text (the targets generate without that round trip), the JIT in forked
/// children rather than the persistent runner. That judgement is the one that counts, and its
/// case is the one to print.
fn replayed(case: &TestCase, plan: &Plan, report: &Report) -> (TestCase, Report) {
    let text = case.to_text();
    let printed = TestCase::parse(&text)
        .unwrap_or_else(|e| panic!("generator bug: generated case does not parse: {e}\n{text}"));
    let opts = RunOptions {
        jit_runner: JitRunner::Fork,
        ..plan.opts.clone()
    };
    let again = run_in_process(&printed, &plan.engines, &opts);
    if again.bucket != report.bucket {
        // Said, never dropped silently: the fast path and the replay path disagree.
        eprintln!(
            "clif-diff: `{}` in the fast path is `{}` as the artifact replays; the replay counts",
            report.bucket, again.bucket
        );
    }
    (printed, again)
}

/// Wall-clock limit per native run line in the targets. Generated cases bound their dynamic cost
/// (native runs take well under a millisecond), so only a hang reaches it, and at the default 5 s
/// the few inputs that hang (e.g. the known r11/`preserve_all` probestack bug) took two thirds of
/// a `-runs=1500` session (`CLIF_DIFF_FUZZ_TIMING=1`: 7 inputs, 70 of 103 s).
pub const TIMEOUT_MS: u64 = 1000;

fn differential_plan(object: bool) -> Plan {
    let mut plan = Plan::default();
    plan.opts.faults = planted().clone();
    plan.opts.jit_runner = JitRunner::Persistent;
    plan.opts.timeout_ms = TIMEOUT_MS;
    if !object {
        plan.engines.retain(|e| e.kind != EngineKind::Object);
    }
    plan
}

/// Default share of `differential` inputs that also run the object path: one in this many.
pub const OBJECT_EVERY: u64 = 8;

/// One input in `CLIF_DIFF_FUZZ_OBJECT_EVERY` (default [`OBJECT_EVERY`]; `1`: every input) runs
/// the object path. A link by `cc` and a new process per input cost more than the interpreter
/// and the JIT together, and libFuzzer's guidance needs executions; campaigns (`clif-diff fuzz`)
/// batch the object path instead and run it on every case.
pub fn object_every() -> u64 {
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| env_number("CLIF_DIFF_FUZZ_OBJECT_EVERY", OBJECT_EVERY).max(1))
}

/// The number in the environment variable `name`, or `default` when it is unset or not a number.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether an input is among one in `every`: by a hash of its bytes.
pub fn in_share(input: &[u8], every: u64) -> bool {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    every <= 1 || h.finish().is_multiple_of(every)
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
            faults: planted().clone(),
            jit_runner: JitRunner::Persistent,
            timeout_ms: TIMEOUT_MS,
            ..RunOptions::default()
        },
    }
}

/// Default share of the targets' mutations that write a fresh random input: one in this many.
pub const FRESH_EVERY: u32 = 2;

/// One mutation in `CLIF_DIFF_FUZZ_FRESH_EVERY` (default [`FRESH_EVERY`]; `0`: never) is a fresh
/// input rather than an edit of a corpus entry.
pub fn fresh_every() -> u32 {
    static N: OnceLock<u32> = OnceLock::new();
    *N.get_or_init(|| env_number("CLIF_DIFF_FUZZ_FRESH_EVERY", FRESH_EVERY))
}

/// The targets' mutator (`fuzz_mutator!`): libFuzzer's own (`default`), except that one call in
/// [`fresh_every`] replaces the input with random bytes of a random length up to `max_size`.
///
/// The generator turns any bytes into a valid case, and measured at equal executions, random
/// inputs without feedback covered more than libFuzzer's mutations of its corpus
/// (`scripts/coverage-guidance.sh`): an edit of a few bytes mostly re-draws a case much like its
/// parent. Fresh inputs keep that breadth, and the ones that reach new coverage still join the
/// corpus, where mutation explores their neighbourhood.
pub fn mutate(
    data: &mut [u8],
    size: usize,
    max_size: usize,
    seed: u32,
    default: fn(&mut [u8], usize, usize) -> usize,
) -> usize {
    fresh_input(fresh_every(), data, max_size, seed)
        .unwrap_or_else(|| default(data, size, max_size))
}

/// On one call in `every` (`0`: never), chosen by `seed`, writes random bytes of a random length
/// up to `max_size` at the start of `data` and returns that length.
fn fresh_input(every: u32, data: &mut [u8], max_size: usize, seed: u32) -> Option<usize> {
    use rand::{Rng, RngCore, SeedableRng};
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed.into());
    if every == 0 || !rng.random_ratio(1, every) {
        return None;
    }
    let max_size = max_size.min(data.len());
    let len = rng.random_range(64.min(max_size)..=max_size);
    rng.fill_bytes(&mut data[..len]);
    Some(len)
}

/// AddressSanitizer's defaults in the targets' ASan builds (cargo-fuzz's default sanitizer);
/// `ASAN_OPTIONS` still overrides them, as ClusterFuzz does.
///
/// `detect_stack_use_after_return=0`: ASan moves every instrumented frame to a heap-allocated
/// fake stack to catch a returned pointer to a local. Cranelift is safe Rust, where the borrow
/// checker already rules that out, yet the fake stacks cost a fifth of `differential`'s ASan time:
/// replaying one fixed 764-input corpus took 38.2 s with them and 30.2 s without, both at once
/// (`-runs=0`, one core each). Heap and global overflows, use after free and leaks are still
/// caught.
pub const ASAN_DEFAULT_OPTIONS: &std::ffi::CStr = c"detect_stack_use_after_return=0";

/// Defines `__asan_default_options` (read by ASan's runtime at start-up) in a fuzz target as
/// [`ASAN_DEFAULT_OPTIONS`]. A build without ASan never calls it.
#[macro_export]
macro_rules! asan_default_options {
    () => {
        #[unsafe(no_mangle)]
        pub extern "C" fn __asan_default_options() -> *const ::std::ffi::c_char {
            $crate::fuzzing::ASAN_DEFAULT_OPTIONS.as_ptr()
        }
    };
}

/// Lets the cargo-fuzz build serve as a sandbox worker for `clif-diff coverage`: started as
/// `differential worker` with the coverage directory set, it serves requests like
/// `clif-diff worker` (recording its SanitizerCoverage counters) and exits instead of fuzzing.
/// Called from the target's libFuzzer initialisation, before libFuzzer reads its arguments.
pub fn serve_if_coverage_worker() {
    let asked = std::env::args().nth(1).as_deref() == Some("worker")
        && std::env::var_os(crate::coverage::worker::DIR_VAR).is_some();
    if asked {
        let code = match crate::sandbox::worker_main() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("clif-diff worker: {e:#}");
                1
            }
        };
        std::process::exit(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `calls` calls to [`fresh_input`] wrote a fresh input, checking each one.
    fn fresh_calls(every: u32, calls: u32) -> u32 {
        let mut fresh = 0;
        for seed in 0..calls {
            let mut data = vec![0u8; 4096];
            if let Some(len) = fresh_input(every, &mut data, 3000, seed) {
                fresh += 1;
                assert!((64..=3000).contains(&len), "fresh input of {len} bytes");
                assert!(data[len..].iter().all(|b| *b == 0), "wrote past its length");
                assert!(data[..len].iter().any(|b| *b != 0), "no random bytes");
            } else {
                assert!(data.iter().all(|b| *b == 0), "wrote without saying so");
            }
        }
        fresh
    }

    #[test]
    fn fresh_inputs_come_on_a_share_of_calls() {
        let calls = 2000;
        for every in [FRESH_EVERY, 4] {
            // One in `every`, give or take chance: within 5 standard deviations.
            let p = 1.0 / f64::from(every);
            let sd = (f64::from(calls) * p * (1.0 - p)).sqrt();
            let fresh = fresh_calls(every, calls);
            assert!(
                (f64::from(fresh) - f64::from(calls) * p).abs() < 5.0 * sd,
                "every {every}: {fresh} fresh of {calls}"
            );
        }
        assert_eq!(fresh_calls(0, 200), 0, "`0` means never");
    }

    #[test]
    fn fresh_inputs_respect_a_small_max_size() {
        for seed in 0..200 {
            let len = fresh_input(1, &mut [0u8; 16], 10, seed);
            assert!(len.is_some_and(|l| l <= 10), "{len:?}");
        }
    }

    #[test]
    fn other_calls_are_libfuzzers_own() {
        // Stands for libFuzzer's mutator.
        fn flip_first(data: &mut [u8], size: usize, _: usize) -> usize {
            data[0] ^= 0xff;
            size - 1
        }
        let deferred = (0..200)
            .filter(|&seed| {
                let mut data = vec![0u8; 4096];
                let mut expected = data.clone();
                if fresh_input(fresh_every(), &mut expected, 3000, seed).is_some() {
                    return false;
                }
                assert_eq!(mutate(&mut data, 100, 3000, seed, flip_first), 99);
                assert_eq!(data[0], 0xff);
                true
            })
            .count();
        assert!(deferred > 0, "no call went to the default mutator");
    }
}
