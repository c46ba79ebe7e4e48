//! Campaign statistics, the live progress bar and the closing summary.

use super::findings::{FindingInfo, Recorded};
use super::triage::Decision;
use crate::engine::EngineSpec;
use crate::oracle::Report;
use crate::outcome::{Outcome, Phase};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Stats {
    pub engines: Vec<String>,
    pub cases: u64,
    /// Cases that are valid input and every engine could compile (no setup or compile error).
    pub valid: u64,
    /// Generated cases the verifier rejected (generator bugs, kept in `DIR/invalid/`).
    pub invalid: u64,
    /// Seeds whose generation panicked (kept in `DIR/generator-panics.jsonl`).
    pub generator_panics: u64,
    pub verdicts: BTreeMap<&'static str, u64>,
    /// New findings: directories of findings no known entry explains (from cases or triage).
    pub new_findings: u64,
    /// Hits of known entries.
    pub known_findings: u64,
    /// Further hits of unknown findings (same bucket, or same identity after triage).
    pub repeat_hits: u64,
    /// Hits of coarse buckets that went to triage.
    pub untriaged: u64,
    /// Triage decisions taken during the campaign.
    pub triaged: u64,
    /// Triage items left on disk at the end: findings not reduced, hits not identified.
    pub triage_left: u64,
    /// Samples of known findings not yet re-checked after reduction.
    pub recheck_left: u64,
    /// How long urgent triage went on after the cases were done.
    #[serde(serialize_with = "secs")]
    pub triage_after: Duration,
    /// Distinct buckets seen this campaign.
    pub buckets: BTreeMap<String, u64>,
    /// Engines that did not run on some case: (cases, the first reason given).
    pub skipped: BTreeMap<String, (u64, String)>,
    /// Per engine and reason, cases on which the engine called a line unsupported.
    pub unsupported: BTreeMap<(String, String), u64>,
    /// Worker time per engine, summed over cases (µs).
    pub engine_micros: Vec<u64>,
    /// Workers replaced after dying or hanging.
    pub respawns: u64,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Stats {
    pub fn new(engines: &[EngineSpec]) -> Stats {
        Stats {
            engines: engines.iter().map(|e| e.label()).collect(),
            engine_micros: vec![0; engines.len()],
            ..Stats::default()
        }
    }

    pub fn add(&mut self, report: &Report, recorded: &[Recorded]) {
        self.cases += 1;
        let broken = report.invalid.is_some()
            || report.runs.iter().any(|r| {
                r.outcomes.iter().any(|o| {
                    matches!(
                        o,
                        Outcome::Error {
                            phase: Phase::Compile | Phase::Setup,
                            ..
                        }
                    )
                })
            });
        if !broken {
            self.valid += 1;
        }
        if report.invalid.is_some() {
            self.invalid += 1;
        }
        *self.verdicts.entry(report.verdict.name()).or_default() += 1;
        for (t, m) in self.engine_micros.iter_mut().zip(&report.engine_micros) {
            *t += m;
        }
        for (engine, reason) in report.skipped() {
            let e = self.skipped.entry(engine).or_insert((0, reason));
            e.0 += 1;
        }
        for key in report.unsupported() {
            *self.unsupported.entry(key).or_default() += 1;
        }
        for f in &report.findings {
            *self.buckets.entry(f.bucket.clone()).or_default() += 1;
        }
        for r in recorded {
            match r {
                Recorded::New { known: None, .. } => self.new_findings += 1,
                Recorded::New { known: Some(_), .. } | Recorded::Repeat { known: Some(_), .. } => {
                    self.known_findings += 1
                }
                Recorded::Repeat { known: None, .. } => self.repeat_hits += 1,
                Recorded::Untriaged { .. } => self.untriaged += 1,
            }
        }
    }

    /// Counts a triage decision.
    pub fn triaged(&mut self, d: &Decision) {
        self.triaged += 1;
        match d {
            Decision::New { .. } => self.new_findings += 1,
            Decision::KnownAfterReduction { finding, .. } => {
                if *finding {
                    self.new_findings = self.new_findings.saturating_sub(1);
                }
                self.known_findings += 1;
            }
            _ => {}
        }
    }

    pub fn rate(&self, elapsed: Duration) -> f64 {
        self.cases as f64 / elapsed.as_secs_f64().max(1e-9)
    }

    /// Cases per second each engine would sustain alone on one core, from its worker time.
    pub fn engine_rates(&self) -> Vec<(String, f64)> {
        self.engines
            .iter()
            .zip(&self.engine_micros)
            .map(|(e, &us)| {
                let per_case = us as f64 / self.cases.max(1) as f64;
                (e.clone(), if us == 0 { 0.0 } else { 1e6 / per_case })
            })
            .collect()
    }

    fn line(&self, elapsed: Duration) -> String {
        let engines: Vec<String> = self
            .engine_rates()
            .iter()
            .map(|(e, r)| format!("{e} {r:.0}/s"))
            .collect();
        format!(
            "{} cases, {:.1}/s [{}] valid {:.1}% | findings {} new, {} known hits, {} to triage | {} buckets",
            self.cases,
            self.rate(elapsed),
            engines.join(" "),
            100.0 * self.valid as f64 / self.cases.max(1) as f64,
            self.new_findings,
            self.known_findings,
            self.untriaged,
            self.buckets.len()
        )
    }

    /// The closing summary table.
    pub fn summary(&self, findings: &[FindingInfo]) -> String {
        let mut s = String::new();
        let el = self.elapsed.as_secs_f64();
        s += &format!(
            "campaign: {} cases in {:.1}s ({:.1} cases/s), {:.1}% valid, {} worker restarts\n",
            self.cases,
            el,
            self.rate(self.elapsed),
            100.0 * self.valid as f64 / self.cases.max(1) as f64,
            self.respawns
        );
        if self.triaged > 0 || !self.triage_after.is_zero() {
            s += &format!(
                "triage: {} decisions beside the cases, then {:.1}s more for new findings\n",
                self.triaged,
                self.triage_after.as_secs_f64()
            );
        }
        if self.invalid > 0 || self.generator_panics > 0 {
            s += &format!(
                "generator: {} invalid cases (DIR/invalid/), {} panics (DIR/generator-panics.jsonl)\n",
                self.invalid, self.generator_panics
            );
        }
        s += "engine            mean ms/case   cases/s (one core)\n";
        for ((e, r), us) in self.engine_rates().iter().zip(&self.engine_micros) {
            s += &format!(
                "{e:<17} {:>12.2}   {r:>10.1}\n",
                *us as f64 / 1e3 / self.cases.max(1) as f64
            );
        }
        // An engine that did not run is never agreement: say so loudly.
        for (e, (n, why)) in &self.skipped {
            s += &format!("SKIPPED {e} on {n} of {} cases: {why}\n", self.cases);
        }
        // Documented gaps: the engine was not a voice there either.
        for ((e, why), n) in &self.unsupported {
            s += &format!("not run: {e} on {n} of {} cases: {why}\n", self.cases);
        }
        s += "verdicts:";
        for (k, v) in &self.verdicts {
            s += &format!(" {k}={v}");
        }
        s += "\n";
        if findings.is_empty() {
            s += "no findings\n";
        } else {
            s += "hits  status                              finding\n";
            for f in findings {
                let status = match (&f.known, &f.escaped_known) {
                    (Some(k), _) if f.known_after_reduction => format!("known {k} (once reduced)"),
                    (Some(k), _) => format!("known {k}"),
                    (None, Some(k)) => format!("NEW (escaped known {k})"),
                    (None, None) => format!("NEW ({:?})", f.status)
                        .to_lowercase()
                        .replace("new", "NEW"),
                };
                s += &format!("{:>4}  {status:<35} {}\n", f.hits, f.key);
                if let Some(sig) = &f.signature {
                    s += &format!("      identity: {}\n", sig.describe());
                }
                for l in &f.localised {
                    s += &format!("      localised: {l}\n");
                }
                if let Some(o) = f
                    .optimised
                    .as_ref()
                    .filter(|o| Some(*o) != f.signature.as_ref())
                {
                    s += &format!("      after the mid-end: {}\n", o.describe());
                }
                if !f.related.is_empty() {
                    s += &format!(
                        "      related to {} (identities overlap, the mid-end turns one into the other, or localised alike: possibly the same bug)\n",
                        f.related.join(", ")
                    );
                }
                s += &format!("      {}\n", f.dir.display());
            }
        }
        if !self.buckets.is_empty() {
            s += "cases per bucket:";
            for (b, n) in &self.buckets {
                s += &format!(" {b}={n}");
            }
            s += "\n";
        }
        if self.triage_left > 0 {
            s += &format!(
                "{} findings or hits await triage on disk (their identity is not decided): clif-diff triage <DIR>\n",
                self.triage_left
            );
        }
        if self.recheck_left > 0 {
            s += &format!(
                "{} samples of known findings await a re-check (clif-diff triage <DIR>)\n",
                self.recheck_left
            );
        }
        s
    }
}

/// A live bar on a terminal; periodic log lines elsewhere (CI logs).
pub struct Progress {
    bar: Option<ProgressBar>,
    /// The bar counts cases (a `--cases` budget) rather than seconds.
    by_cases: bool,
    last_log: Mutex<Instant>,
}

impl Progress {
    pub fn new(time: Option<Duration>, cases: Option<u64>, enabled: bool) -> Progress {
        let bar = enabled.then(|| {
            let (len, unit) = match (cases, time) {
                (Some(n), _) => (n, "cases"),
                (None, Some(t)) => (t.as_secs().max(1), "s"),
                (None, None) => (0, ""),
            };
            let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template(&format!(
                    "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}}"
                ))
                .unwrap()
                .progress_chars("=> "),
            );
            pb
        });
        Progress {
            bar,
            by_cases: cases.is_some(),
            last_log: Mutex::new(Instant::now()),
        }
    }

    pub fn update(&self, stats: &Stats, elapsed: Duration) {
        match &self.bar {
            Some(pb) => {
                pb.set_position(if self.by_cases {
                    stats.cases
                } else {
                    elapsed.as_secs()
                });
                pb.set_message(stats.line(elapsed));
            }
            None => {
                let mut last = self.last_log.lock().unwrap();
                if last.elapsed() >= Duration::from_secs(10) {
                    *last = Instant::now();
                    eprintln!("[{:>6.0}s] {}", elapsed.as_secs_f64(), stats.line(elapsed));
                }
            }
        }
    }

    pub fn println(&self, msg: &str) {
        match &self.bar {
            Some(pb) => pb.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish();
        }
    }
}
