//! Campaign statistics, the live progress bar and the closing summary.

use super::findings::{BucketInfo, Recorded};
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
    /// Cases every engine could compile (no verifier or codegen error anywhere).
    pub valid: u64,
    pub verdicts: BTreeMap<&'static str, u64>,
    /// New (not known) findings.
    pub new_findings: u64,
    /// Findings whose bucket is known.
    pub known_findings: u64,
    /// Distinct buckets seen this campaign.
    pub buckets: BTreeMap<String, u64>,
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

    pub fn add(&mut self, report: &Report, recorded: Option<&Recorded>) {
        self.cases += 1;
        let invalid = report.runs.iter().any(|r| {
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
        if !invalid {
            self.valid += 1;
        }
        *self.verdicts.entry(report.verdict.name()).or_default() += 1;
        for (t, m) in self.engine_micros.iter_mut().zip(&report.engine_micros) {
            *t += m;
        }
        if report.verdict.is_finding() {
            *self.buckets.entry(report.bucket.clone()).or_default() += 1;
            let known = match recorded {
                Some(Recorded::New { known, .. }) | Some(Recorded::Repeat { known, .. }) => {
                    known.is_some()
                }
                None => false,
            };
            if known {
                self.known_findings += 1;
            } else {
                self.new_findings += 1;
            }
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
            "{} cases, {:.1}/s [{}] valid {:.1}% | findings {} new, {} known | {} buckets",
            self.cases,
            self.rate(elapsed),
            engines.join(" "),
            100.0 * self.valid as f64 / self.cases.max(1) as f64,
            self.new_findings,
            self.known_findings,
            self.buckets.len()
        )
    }

    /// The closing summary table.
    pub fn summary(&self, buckets: &[BucketInfo]) -> String {
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
        s += "engine            mean ms/case   cases/s (one core)\n";
        for ((e, r), us) in self.engine_rates().iter().zip(&self.engine_micros) {
            s += &format!(
                "{e:<17} {:>12.2}   {r:>10.1}\n",
                *us as f64 / 1e3 / self.cases.max(1) as f64
            );
        }
        s += "verdicts:";
        for (k, v) in &self.verdicts {
            s += &format!(" {k}={v}");
        }
        s += "\n";
        if buckets.is_empty() {
            s += "no findings\n";
        } else {
            s += "hits  status                              bucket\n";
            for b in buckets {
                let status = match &b.known {
                    Some(k) => format!("known {k}"),
                    None => "NEW".to_string(),
                };
                s += &format!("{:>4}  {status:<35} {}\n", b.hits, b.bucket);
                s += &format!("      {}\n", b.dir.display());
            }
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
