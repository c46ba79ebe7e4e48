//! Throughput benchmark: cases/s for each engine alone and all together, at several job counts,
//! over a fixed seed range — plus where the time goes outside the engines.
//!
//! This is a measurement tool, not a test: run it on a release build (`clif-diff bench`).

use crate::campaign::CaseSource;
use crate::engine::EngineSpec;
use crate::harness::{Plan, check};
use crate::oracle::Report;
use crate::sandbox::{Sandbox, WorkerCommand};
use anyhow::Result;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub struct BenchConfig {
    pub cases: u64,
    pub first_seed: u64,
    pub jobs: Vec<usize>,
    pub plan: Plan,
    pub worker: WorkerCommand,
    /// Cases per batch, as in campaigns (1: one object, link and process per case).
    pub batch: usize,
}

/// One row: an engine set at a job count.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub engines: String,
    pub jobs: usize,
    pub cases: u64,
    pub seconds: f64,
    pub cases_per_sec: f64,
}

/// Where one job's wall time went, summed over cases (seconds).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Breakdown {
    pub generation: f64,
    /// Worker-side engine time (compilation, linking, execution), per engine label.
    pub engines: Vec<(String, f64)>,
    /// Request round trip minus worker engine time: serialisation, pipes, parsing the case.
    pub ipc: f64,
    /// Judging outcomes.
    pub oracle: f64,
    pub total: f64,
}

fn engine_sets(plan: &Plan) -> Vec<Vec<EngineSpec>> {
    let mut sets: Vec<Vec<EngineSpec>> = plan.engines.iter().map(|e| vec![e.clone()]).collect();
    if plan.engines.len() > 1 {
        sets.push(plan.engines.clone());
    }
    sets
}

/// Runs `cases` seeds with `engines` on `jobs` sandboxes; returns the wall time.
fn time_run(cfg: &BenchConfig, source: &dyn CaseSource, plan: &Plan, jobs: usize) -> Result<f64> {
    let next = AtomicU64::new(cfg.first_seed);
    let end = cfg.first_seed + cfg.cases;
    let err = Mutex::new(None);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let mut sb = Sandbox::new(cfg.worker.clone());
                let batch = cfg.batch.max(1) as u64;
                loop {
                    let first = next.fetch_add(batch, Ordering::Relaxed);
                    if first >= end {
                        break;
                    }
                    let cases: Vec<_> = (first..(first + batch).min(end))
                        .map(|s| source.case(s))
                        .collect();
                    let refs: Vec<_> = cases.iter().collect();
                    let r = if refs.len() == 1 {
                        check(&mut sb, refs[0], plan).map(|_| ())
                    } else {
                        crate::harness::check_batch(&mut sb, &refs, plan).map(|_| ())
                    };
                    if let Err(e) = r {
                        *err.lock().unwrap() = Some(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = err.into_inner().unwrap() {
        return Err(e);
    }
    Ok(t0.elapsed().as_secs_f64())
}

pub fn run(cfg: &BenchConfig, source: &dyn CaseSource) -> Result<(Vec<Row>, Breakdown)> {
    // Warm up: start a worker and build the C driver once, outside the timings.
    let mut warm = Sandbox::new(cfg.worker.clone());
    check(&mut warm, &source.case(cfg.first_seed), &cfg.plan)?;
    drop(warm);

    let mut rows = Vec::new();
    for engines in engine_sets(&cfg.plan) {
        let plan = Plan {
            engines: engines.clone(),
            opts: cfg.plan.opts.clone(),
        };
        for &jobs in &cfg.jobs {
            let secs = time_run(cfg, source, &plan, jobs)?;
            let label: Vec<String> = engines.iter().map(|e| e.label()).collect();
            rows.push(Row {
                engines: label.join("+"),
                jobs,
                cases: cfg.cases,
                seconds: secs,
                cases_per_sec: cfg.cases as f64 / secs,
            });
        }
    }
    Ok((rows, breakdown(cfg, source)?))
}

/// A single-job pass with timers around each stage.
fn breakdown(cfg: &BenchConfig, source: &dyn CaseSource) -> Result<Breakdown> {
    let mut b = Breakdown {
        engines: cfg.plan.engines.iter().map(|e| (e.label(), 0.0)).collect(),
        ..Breakdown::default()
    };
    let mut sb = Sandbox::new(cfg.worker.clone());
    let t_all = Instant::now();
    for seed in cfg.first_seed..cfg.first_seed + cfg.cases {
        let t = Instant::now();
        let case = source.case(seed);
        b.generation += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let exec = sb.run(&case, &cfg.plan.engines, &cfg.plan.opts)?;
        let round_trip = t.elapsed().as_secs_f64();
        let worker: f64 = exec.micros.iter().map(|&us| us as f64 / 1e6).sum();
        for ((_, total), us) in b.engines.iter_mut().zip(&exec.micros) {
            *total += *us as f64 / 1e6;
        }
        b.ipc += (round_trip - worker).max(0.0);
        let t = Instant::now();
        let _report = Report::judge(&case, &cfg.plan.engines, &exec.outcomes);
        b.oracle += t.elapsed().as_secs_f64();
    }
    b.total = t_all.elapsed().as_secs_f64();
    Ok(b)
}

pub fn render(rows: &[Row], b: &Breakdown) -> String {
    let mut s =
        String::from("| engines | jobs | cases | seconds | cases/s |\n|---|---:|---:|---:|---:|\n");
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.2} | {:.1} |\n",
            r.engines, r.jobs, r.cases, r.seconds, r.cases_per_sec
        );
    }
    s += "\nTime of one job (all engines, one case per request, unbatched), by stage:\n\n| stage | seconds | share |\n|---|---:|---:|\n";
    let pct = |x: f64| 100.0 * x / b.total.max(1e-9);
    s += &format!(
        "| generation | {:.2} | {:.1}% |\n",
        b.generation,
        pct(b.generation)
    );
    for (e, t) in &b.engines {
        s += &format!("| engine {e} | {t:.2} | {:.1}% |\n", pct(*t));
    }
    s += &format!(
        "| IPC + case parsing | {:.2} | {:.1}% |\n",
        b.ipc,
        pct(b.ipc)
    );
    s += &format!("| oracle | {:.3} | {:.2}% |\n", b.oracle, pct(b.oracle));
    s += &format!("| total | {:.2} | 100% |\n", b.total);
    s
}
