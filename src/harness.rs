//! One case, all engines, one report: the step every command is built from.
//!
//! Options come from three places, later ones winning: defaults, the case's own
//! `; clif-diff:` directives (so a reproducer replays from the file alone), and the command line.

use crate::case::TestCase;
use crate::engine::{EngineKind, EngineSpec, JitMemory, RunOptions, parse_engine_list};
use crate::oracle::Report;
use crate::sandbox::Sandbox;
use anyhow::{Context, Result};

/// What to run a case with.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub engines: Vec<EngineSpec>,
    pub opts: RunOptions,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            engines: EngineKind::ALL
                .iter()
                .map(|k| EngineSpec::plain(*k))
                .collect(),
            opts: RunOptions::default(),
        }
    }
}

/// Command-line overrides of a case's directives.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub engines: Option<Vec<EngineSpec>>,
    pub jit_memory: Option<JitMemory>,
    pub timeout_ms: Option<u64>,
    pub fuel: Option<u64>,
    /// Test-only faults, added to the case's own (see [`crate::engine::Faults`]).
    pub faults: Option<crate::engine::Faults>,
}

/// Directive keys understood in `; clif-diff: key = value` lines.
pub mod keys {
    /// Expected bucket on replay (`agree` or a finding bucket).
    pub const EXPECT: &str = "expect";
    /// Known-bug id from `corpus/known-bugs.toml`.
    pub const KNOWN: &str = "known";
    pub const ENGINES: &str = "engines";
    pub const JIT_MEMORY: &str = "jit-memory";
    pub const TIMEOUT_MS: &str = "timeout-ms";
    pub const FUEL: &str = "fuel";
    /// Test-only engine fault (see `engine::Faults`).
    pub const FAULT: &str = "fault";
}

impl Plan {
    pub fn for_case(case: &TestCase, cli: &Overrides) -> Result<Plan> {
        let mut plan = Plan::default();
        // The file's `test` lines say which oracles it trusts, as upstream reads them: the
        // interpreter is a reference only under `test interpret`, the native engines only under
        // `test run`. A file with neither (or no `test` line) gets every engine.
        let says = |c: &str| case.commands.iter().any(|x| x == c);
        if says("interpret") || says("run") {
            plan.engines.retain(|e| match e.kind {
                EngineKind::Interp => says("interpret"),
                EngineKind::Jit | EngineKind::Object => says("run"),
            });
        }
        if let Some(e) = case.directive(keys::ENGINES) {
            plan.engines = parse_engine_list(e).context("`engines` directive")?;
        }
        if let Some(m) = case.directive(keys::JIT_MEMORY) {
            plan.opts.jit_memory = m.parse().context("`jit-memory` directive")?;
        }
        if let Some(t) = case.directive(keys::TIMEOUT_MS) {
            plan.opts.timeout_ms = t.parse().context("`timeout-ms` directive")?;
        }
        if let Some(f) = case.directive(keys::FUEL) {
            plan.opts.fuel = f.parse().context("`fuel` directive")?;
        }
        if let Some(f) = case.directive(keys::FAULT) {
            plan.opts.faults = crate::engine::Faults::parse(f).context("`fault` directive")?;
        }
        if let Some(e) = &cli.engines {
            plan.engines = e.clone();
        }
        if let Some(m) = cli.jit_memory {
            plan.opts.jit_memory = m;
        }
        if let Some(t) = cli.timeout_ms {
            plan.opts.timeout_ms = t;
        }
        if let Some(f) = cli.fuel {
            plan.opts.fuel = f;
        }
        if let Some(f) = &cli.faults {
            plan.opts.faults = f.clone();
        }
        Ok(plan)
    }

    /// Writes the plan into `case`'s directives, so the file alone replays it.
    pub fn record(&self, case: &mut TestCase) {
        let default = Plan::default();
        if self.engines != default.engines {
            let e: Vec<String> = self.engines.iter().map(|e| e.label()).collect();
            case.set_directive(keys::ENGINES, e.join(","));
        }
        if self.opts.jit_memory != default.opts.jit_memory {
            case.set_directive(keys::JIT_MEMORY, self.opts.jit_memory.to_string());
        }
        if self.opts.timeout_ms != default.opts.timeout_ms {
            case.set_directive(keys::TIMEOUT_MS, self.opts.timeout_ms.to_string());
        }
        if self.opts.fuel != default.opts.fuel {
            case.set_directive(keys::FUEL, self.opts.fuel.to_string());
        }
        if !self.opts.faults.is_empty() {
            case.set_directive(keys::FAULT, self.opts.faults.to_directive());
        }
    }
}

/// The `expect` directive's value for `report`: every bucket, most severe first, joined by
/// ` | ` (or the verdict, `agree`, when there is no finding).
pub fn expectation(report: &Report) -> String {
    if report.findings.is_empty() {
        report.bucket.clone()
    } else {
        let b: Vec<&str> = report.findings.iter().map(|f| f.bucket.as_str()).collect();
        b.join(" | ")
    }
}

/// The buckets an `expect` directive lists, sorted.
pub fn expected_buckets(value: &str) -> Vec<String> {
    let mut v: Vec<String> = value
        .split(" | ")
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .collect();
    v.sort();
    v
}

/// Does `report` show exactly what an `expect` directive says?
pub fn meets_expectation(report: &Report, value: &str) -> bool {
    expected_buckets(value) == expected_buckets(&expectation(report))
}

/// The ids of the known entries that explain findings of `report`, for the `known` directive.
pub fn known_ids(
    known: &crate::known::KnownBuckets,
    case: &TestCase,
    report: &Report,
) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for f in &report.findings {
        if let Some(k) = known.classify(case, report, f)
            && !ids.contains(&k.id)
        {
            ids.push(k.id.clone());
        }
    }
    ids
}

/// Runs `case` under `plan` in `sandbox` and judges the outcomes. A case that is not valid
/// input (see [`crate::validate`]) runs no engine and gets [`crate::oracle::Verdict::Invalid`].
pub fn check(sandbox: &mut Sandbox, case: &TestCase, plan: &Plan) -> Result<Report> {
    let exec = sandbox.run_valid(case, &plan.engines, &plan.opts)?;
    if let Some(why) = exec.invalid {
        return Ok(Report::invalid(case, &plan.engines, why));
    }
    let mut report = Report::judge(case, &plan.engines, &exec.outcomes);
    report.engine_micros = exec.micros;
    Ok(report)
}

/// [`check`] for many cases at once, with the object path batched.
///
/// Object engines go through [`Sandbox::run_batch`] (cases grouped by target and settings, one
/// link and one program per group); the other engines run case by case as in [`check`]. The
/// reports are what [`check`] gives case by case; an object engine's `engine_micros` is the
/// batch's wall time shared evenly. All cases use `plan` (per-case directives are not read).
///
/// A batched outcome is a screening: confirm a finding with [`check`] before filing it (see
/// [`crate::engine::batch`] for why).
pub fn check_batch(sandbox: &mut Sandbox, cases: &[&TestCase], plan: &Plan) -> Result<Vec<Report>> {
    let (object, other): (Vec<usize>, Vec<usize>) =
        (0..plan.engines.len()).partition(|&e| plan.engines[e].kind == EngineKind::Object);
    let other_specs: Vec<EngineSpec> = other.iter().map(|&e| plan.engines[e].clone()).collect();
    // outcomes[case][engine][run], micros[case][engine]
    let mut outcomes: Vec<Vec<Vec<crate::outcome::Outcome>>> =
        vec![vec![Vec::new(); plan.engines.len()]; cases.len()];
    let mut micros = vec![vec![0u64; plan.engines.len()]; cases.len()];
    if !other_specs.is_empty() {
        for (k, case) in cases.iter().enumerate() {
            let exec = sandbox.run(case, &other_specs, &plan.opts)?;
            for ((&e, o), us) in other.iter().zip(exec.outcomes).zip(exec.micros) {
                outcomes[k][e] = o;
                micros[k][e] = us;
            }
        }
    }
    for &e in &object {
        let start = std::time::Instant::now();
        let batched = sandbox.run_batch(cases, &plan.engines[e], &plan.opts)?;
        let share = start.elapsed().as_micros() as u64 / cases.len().max(1) as u64;
        for (k, o) in batched.into_iter().enumerate() {
            outcomes[k][e] = o;
            micros[k][e] = share;
        }
    }
    Ok(cases
        .iter()
        .zip(outcomes)
        .zip(micros)
        .map(|((case, o), us)| {
            let mut report = Report::judge(case, &plan.engines, &o);
            report.engine_micros = us;
            report
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(header: &str) -> Vec<EngineKind> {
        let case = TestCase::parse(&format!(
            "{header}\nfunction %f() -> i8 {{\nblock0:\n    v0 = iconst.i8 1\n    return v0\n}}\n"
        ))
        .unwrap();
        let plan = Plan::for_case(&case, &Overrides::default()).unwrap();
        plan.engines.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn the_test_lines_choose_the_oracles() {
        use EngineKind::*;
        assert_eq!(kinds("test interpret\ntest run"), [Interp, Jit, Object]);
        assert_eq!(kinds("test run"), [Jit, Object]);
        assert_eq!(kinds("test interpret"), [Interp]);
        // No `test` line: every engine, as clif-diff's own cases always had.
        assert_eq!(kinds(""), [Interp, Jit, Object]);
        // A directive still overrides the file's `test` lines.
        assert_eq!(
            kinds("; clif-diff: engines = interp,jit\ntest run"),
            [Interp, Jit]
        );
    }
}
