//! Triage: reducing findings beside the campaign and deciding what they are.
//!
//! Every hit that needs a decision becomes an [`Item`] in a priority queue, with its case
//! already on disk (so an unprocessed item is never lost: `clif-diff triage DIR` picks it up):
//!
//! | priority | item | question |
//! |---:|---|---|
//! | 0 | first case of a new, unknown finding | its reproducer (and, coarse, its identity) |
//! | 1 | coarse hit no identified finding can explain | a new bug? |
//! | 2 | coarse hit while its bucket's identity is still undecided | a new bug? |
//! | 3 | coarse hit that could be an identified finding (sampled) | really that one? |
//! | 4 | sample of a known finding's hits | does its reduced case still show the cause? |
//!
//! Each item is reduced in a reduce worker process ([`crate::reduce::isolated`]) at low CPU
//! priority, by a triage thread of its own: the campaign's case threads never wait for it.

use super::findings::{FindingStore, Recorded, Status, stored_case, write_atomic};
use crate::case::TestCase;
use crate::harness::{Overrides, Plan};
use crate::identity;
use crate::known::Subject;
use crate::reduce::isolated::{self, Control, Job};
use crate::reduce::output;
use crate::sandbox::WorkerCommand;
use anyhow::{Context, Result};
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What to triage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// Reduce a finding's first case (its reproducer; for a coarse bucket, its identity).
    Finding { key: String },
    /// Reduce a coarse hit and file it under its identity.
    Untriaged { bucket: String, sample: PathBuf },
    /// Reduce a known finding's sample and check the known cause still shows.
    KnownSample { key: String, sample: PathBuf },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub priority: u8,
    /// Order of arrival (first in, first out within a priority).
    pub seq: u64,
    pub kind: ItemKind,
}

impl Ord for Item {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // A max-heap: lower priority number and earlier arrival come out first.
        o.priority.cmp(&self.priority).then(o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Items kept in memory; beyond this the least urgent wait on disk for `clif-diff triage`.
const QUEUE_CAP: usize = 256;

/// The triage queue, shared by the case threads (which push) and the triage thread (which pops).
#[derive(Default)]
pub struct Queue {
    heap: Mutex<BinaryHeap<Item>>,
    ready: Condvar,
    seq: AtomicU64,
}

impl Queue {
    pub fn push(&self, priority: u8, kind: ItemKind) {
        let mut h = self.heap.lock().unwrap();
        if h.iter().any(|i| i.kind == kind) {
            return;
        }
        h.push(Item {
            priority,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            kind,
        });
        if h.len() > QUEUE_CAP {
            // Drop the least urgent: it stays on disk.
            let mut v = std::mem::take(&mut *h).into_sorted_vec();
            v.remove(0);
            *h = v.into_iter().collect();
        }
        self.ready.notify_one();
    }

    /// The most urgent item, waiting up to `wait` for one.
    pub fn pop(&self, wait: Duration) -> Option<Item> {
        let mut h = self.heap.lock().unwrap();
        if h.is_empty() {
            h = self.ready.wait_timeout(h, wait).unwrap().0;
        }
        h.pop()
    }

    pub fn len(&self) -> usize {
        self.heap.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues what a recorded finding needs, by the table in the module docs.
    pub fn after_record(&self, recorded: &Recorded) {
        match recorded {
            Recorded::New {
                key, known: None, ..
            } => self.push(0, ItemKind::Finding { key: key.clone() }),
            Recorded::New {
                key,
                dir,
                known: Some(_),
            } => self.push(
                4,
                ItemKind::KnownSample {
                    key: key.clone(),
                    sample: dir.join("case.clif"),
                },
            ),
            Recorded::Repeat {
                key,
                known: Some(_),
                sample: Some(p),
                ..
            } => self.push(
                4,
                ItemKind::KnownSample {
                    key: key.clone(),
                    sample: p.clone(),
                },
            ),
            Recorded::Repeat { .. } => {}
            Recorded::Untriaged {
                bucket,
                sample,
                explained_by,
                undecided,
                hits,
            } => {
                let priority = if explained_by.is_empty() && !undecided {
                    1
                } else if *undecided {
                    2
                } else if hits.is_power_of_two() {
                    3
                } else {
                    return;
                };
                if sample.exists() {
                    self.push(
                        priority,
                        ItemKind::Untriaged {
                            bucket: bucket.clone(),
                            sample: sample.clone(),
                        },
                    );
                }
            }
        }
    }
}

/// Budget and limits of one triage reduction.
#[derive(Clone)]
pub struct Limits {
    pub time: Duration,
    pub max_candidates: Option<u64>,
}

/// Candidates one triage reduction may test. Reductions run at low priority beside the cases,
/// so wall time says little about the work done; a reduction stopped early leaves extra
/// instructions in the identity, so the count is generous (reductions seen so far: 400–900).
pub const MAX_CANDIDATES: u64 = 2000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_secs(600),
            max_candidates: Some(MAX_CANDIDATES),
        }
    }
}

/// What triage decided about one item, for the log and the progress output.
#[derive(Clone, Debug)]
pub enum Decision {
    /// A finding's first case was reduced (and, coarse, identified).
    Reduced {
        key: String,
        identity: Option<String>,
    },
    /// A hit turned out to be a new finding.
    New {
        key: String,
        dir: PathBuf,
        why: String,
    },
    /// A hit is another hit of an existing finding.
    Same { key: String },
    /// A known finding's sample still shows its cause.
    KnownConfirmed { key: String },
    /// A hit no known entry explained turned out, reduced, to show a known entry's cause;
    /// `finding` when it was a finding of its own until then.
    KnownAfterReduction {
        key: String,
        known: String,
        finding: bool,
    },
    /// The item could not be decided; it stays on disk with a note.
    Undecided { what: String, why: String },
}

impl Decision {
    pub fn is_new(&self) -> bool {
        matches!(self, Decision::New { .. })
    }

    pub fn line(&self) -> String {
        match self {
            Decision::Reduced { key, identity } => match identity {
                Some(i) => format!("triage: reduced {key}, identity {i}"),
                None => format!("triage: reduced {key}"),
            },
            Decision::New { key, dir, why } => {
                format!("triage: NEW finding {key} ({why}) -> {}", dir.display())
            }
            Decision::Same { key } => format!("triage: another hit of {key}"),
            Decision::KnownConfirmed { key } => format!("triage: known cause confirmed for {key}"),
            Decision::KnownAfterReduction { key, known, .. } => {
                format!("triage: {key} reduces to the cause of known `{known}`")
            }
            Decision::Undecided { what, why } => format!("triage: {what} undecided: {why}"),
        }
    }
}

/// The case in `file` and the plan its directives record.
fn load(file: &Path) -> Result<(String, TestCase, Plan)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let case = TestCase::parse_named(&text, &file.display().to_string())?;
    let plan = Plan::for_case(&case, &Overrides::default())?;
    Ok((text, case, plan))
}

fn seed_of(case: &TestCase) -> Option<u64> {
    case.directive("seed").and_then(|s| s.parse().ok())
}

/// Triage of one item: reduce it in a worker process and file the result.
pub fn process(
    store: &FindingStore,
    worker: &WorkerCommand,
    item: &ItemKind,
    limits: &Limits,
    ctl: &Control,
) -> Result<Decision> {
    let (file, bucket) = match item {
        ItemKind::Finding { key } => {
            let info = store
                .finding(key)
                .with_context(|| format!("no finding {key}"))?;
            (info.dir.join("case.clif"), info.bucket)
        }
        ItemKind::Untriaged { bucket, sample } => (sample.clone(), bucket.clone()),
        ItemKind::KnownSample { key, sample } => {
            let info = store
                .finding(key)
                .with_context(|| format!("no finding {key}"))?;
            (sample.clone(), info.bucket)
        }
    };
    let (text, case, plan) = load(&file)?;
    let job = Job {
        case: case.to_text(),
        plan: plan.clone(),
        bucket: bucket.clone(),
        max_candidates: limits.max_candidates,
        time_limit_ms: Some(limits.time.as_millis() as u64),
    };
    let outcome = match isolated::reduce(worker, &job, ctl) {
        Ok(o) => o,
        Err(e) => {
            // The case alone does not show the finding (any more): note it, decide nothing.
            return undecided(store, item, &file, format!("{e:#}"));
        }
    };
    let reduced_text = outcome
        .reduced()
        .filter(|_| outcome.is_verified())
        .map(|r| {
            output::render(
                &r,
                &plan,
                &file.display().to_string(),
                &file.with_extension("reduced.clif").display().to_string(),
            )
        });
    let log = |decision: &str| {
        let _ = store.log_triage(serde_json::json!({
            "item": format!("{item:?}"),
            "bucket": bucket,
            "decision": decision,
            "insts": [outcome.stats.insts_before, outcome.stats.insts_after],
            "problem": outcome.problem,
        }));
    };
    let signature = match (&outcome.report, &outcome.finding) {
        (Some(r), Some(f)) if outcome.is_verified() => {
            Some(identity::signature(&outcome.case, r, f))
        }
        _ => None,
    };
    // Where in the pipeline a coarse finding lives: a few runs of the (small) reduced case with
    // one knob turned each.
    let (localised, optimised) = match (&outcome.finding, &outcome.report) {
        (Some(f), Some(r)) if outcome.is_verified() && identity::is_coarse(&bucket) => {
            let mut sandbox = crate::sandbox::Sandbox::new(worker.clone());
            (
                crate::localise::localise(&mut sandbox, &outcome.case, &plan, f)
                    .unwrap_or_default(),
                crate::localise::optimised(&mut sandbox, &outcome.case, r, f),
            )
        }
        _ => (Vec::new(), None),
    };
    // A hit no known entry explained as generated may be one once reduced: the cause was
    // there, in a shape the predicate does not see (reached through more calls, say). The
    // reduced case is what the predicate is judged on then, and the finding says so. (Samples
    // of known findings are judged the other way round, below.)
    let known_after = match (&outcome.report, &outcome.finding, item) {
        (_, _, ItemKind::KnownSample { .. }) => None,
        (Some(report), Some(finding), _) if outcome.is_verified() => store
            .known()
            .classify(&outcome.case, report, finding)
            .map(|k| k.id.clone()),
        _ => None,
    };
    match item {
        ItemKind::Finding { key } => {
            let dir = store.finding(key).map(|f| f.dir).unwrap_or_default();
            if let Some(t) = &reduced_text {
                write_atomic(&dir.join("reduced.clif"), t.as_bytes())?;
            }
            write_atomic(
                &dir.join("reduce.json"),
                serde_json::to_string_pretty(&serde_json::json!({
                    "ok": outcome.is_verified(),
                    "stats": outcome.stats,
                    "problem": outcome.problem,
                }))?
                .as_bytes(),
            )?;
            let coarse = identity::is_coarse(&bucket);
            let sig = signature.clone().filter(|_| coarse);
            store.update(key, |f| {
                f.status = if outcome.is_verified() {
                    Status::Reduced
                } else {
                    Status::Unreduced
                };
                f.signature = sig.clone();
                f.localised = localised.clone();
                f.optimised = optimised.clone();
            })?;
            if let Some(k) = &known_after {
                log("known after reduction");
                let key = store.reclassify_known(key, k)?;
                return Ok(Decision::KnownAfterReduction {
                    key,
                    known: k.clone(),
                    finding: true,
                });
            }
            log("reduced");
            if !outcome.is_verified() {
                return Ok(Decision::Undecided {
                    what: key.clone(),
                    why: outcome.problem.unwrap_or_default(),
                });
            }
            Ok(Decision::Reduced {
                key: key.clone(),
                identity: sig.map(|s| {
                    let mut d = s.describe();
                    if !localised.is_empty() {
                        d += &format!(" [{}]", localised.join("; "));
                    }
                    d
                }),
            })
        }
        ItemKind::Untriaged { .. } | ItemKind::KnownSample { .. } => {
            let (Some(sig), Some(report), Some(finding)) =
                (signature, &outcome.report, &outcome.finding)
            else {
                log("undecided");
                return undecided(
                    store,
                    item,
                    &file,
                    outcome.problem.unwrap_or_else(|| "no reduction".into()),
                );
            };
            if let (ItemKind::Untriaged { sample, .. }, Some(k)) = (item, &known_after) {
                log("known after reduction");
                let _ = std::fs::remove_file(sample);
                return Ok(Decision::KnownAfterReduction {
                    key: bucket.clone(),
                    known: k.clone(),
                    finding: false,
                });
            }
            // A reduction stopped at its limit keeps instructions the bug does not need, so its
            // identity is a superset of the true one: when it contains an identified finding's,
            // it cannot be told apart from it. Left on disk for a triage with more time.
            if outcome.stats.stopped_early && matches!(item, ItemKind::Untriaged { .. }) {
                let contains: Vec<String> = store
                    .findings()
                    .into_iter()
                    .filter(|f| f.bucket == bucket && f.known.is_none())
                    .filter(|f| f.signature.as_ref().is_some_and(|s| s.within(&sig)))
                    .map(|f| f.key)
                    .collect();
                if !contains.is_empty() {
                    log("undecided: reduction incomplete");
                    return Ok(Decision::Undecided {
                        what: file.display().to_string(),
                        why: format!(
                            "the reduction stopped at its limit and still contains the identity of {}",
                            contains.join(", ")
                        ),
                    });
                }
            }
            let mut escaped = None;
            if let ItemKind::KnownSample { key, .. } = item {
                let known_id = store.finding(key).and_then(|f| f.known);
                let entry = known_id.as_deref().and_then(|id| store.known().by_id(id));
                let subject = Subject {
                    case: &outcome.case,
                    report,
                    finding,
                };
                if entry.is_some_and(|k| k.explains(&subject)) {
                    log("known confirmed");
                    mark(&file, "checked", "known cause confirmed after reduction")?;
                    return Ok(Decision::KnownConfirmed { key: key.clone() });
                }
                // Not this entry's cause, but another's (two causes at one site, e.g. a
                // colocated call and a colocated data address in one case): no escape.
                let other = store
                    .known()
                    .classify(&outcome.case, report, finding)
                    .filter(|_| outcome.is_verified())
                    .map(|k| k.id.clone());
                if let Some(k) = other {
                    log("another known cause");
                    mark(
                        &file,
                        "checked",
                        &format!("reduces to the cause of known `{k}`"),
                    )?;
                    return Ok(Decision::KnownAfterReduction {
                        key: bucket.clone(),
                        known: k,
                        finding: false,
                    });
                }
                escaped = known_id;
            }
            let seed = seed_of(&case);
            let sample_text = match &escaped {
                // The stored case says `known = …`; as a new finding it must not.
                Some(_) => stored_case(&case, &plan, &bucket, None, seed),
                None => text,
            };
            let recorded = store.file_identified(
                &sample_text,
                report,
                &bucket,
                &sig,
                &localised,
                optimised.as_ref(),
                reduced_text.as_deref(),
                seed,
                escaped.clone(),
            )?;
            match item {
                ItemKind::Untriaged { sample, .. } => {
                    let _ = std::fs::remove_file(sample);
                }
                _ => mark(&file, "checked", "triaged")?,
            }
            Ok(match recorded {
                Recorded::New { key, dir, .. } => {
                    log("new");
                    let why = match escaped {
                        Some(id) => format!(
                            "a hit of known `{id}` whose reduced case lacks the cause: {}",
                            sig.describe()
                        ),
                        None if localised.is_empty() => format!("reduces to {}", sig.describe()),
                        None => format!("reduces to {} [{}]", sig.describe(), localised.join("; ")),
                    };
                    Decision::New { key, dir, why }
                }
                Recorded::Repeat { key, .. } => {
                    log("same");
                    Decision::Same { key }
                }
                Recorded::Untriaged { .. } => unreachable!("file_identified never defers"),
            })
        }
    }
}

/// Leaves a note next to an item that could not be decided, so `clif-diff triage` does not try
/// it forever, and says why.
fn undecided(store: &FindingStore, item: &ItemKind, file: &Path, why: String) -> Result<Decision> {
    let _ = store.log_triage(serde_json::json!({
        "item": format!("{item:?}"),
        "decision": "undecided",
        "problem": why,
    }));
    if let ItemKind::Finding { key } = item {
        store.update(key, |f| f.status = Status::Unreduced)?;
    } else {
        mark(file, "failed", &why)?;
    }
    Ok(Decision::Undecided {
        what: file.display().to_string(),
        why,
    })
}

fn mark(file: &Path, what: &str, why: &str) -> Result<()> {
    let mut p = file.as_os_str().to_owned();
    p.push(format!(".{what}"));
    write_atomic(Path::new(&p), format!("{why}\n").as_bytes())
}

fn marked(file: &Path) -> bool {
    ["checked", "failed"].iter().any(|m| {
        let mut p = file.as_os_str().to_owned();
        p.push(format!(".{m}"));
        Path::new(&p).exists()
    })
}

/// Everything on disk that triage has not decided yet, as queue items: findings never reduced,
/// untriaged hits, and known samples not yet re-checked.
pub fn pending(store: &FindingStore) -> Vec<(u8, ItemKind)> {
    let mut out = Vec::new();
    let findings = store.findings();
    for f in &findings {
        if f.known.is_none() && f.status == Status::Pending {
            out.push((0, ItemKind::Finding { key: f.key.clone() }));
        }
    }
    for (bucket, sample) in store.untriaged_samples() {
        if !marked(&sample) {
            out.push((1, ItemKind::Untriaged { bucket, sample }));
        }
    }
    for f in findings.iter().filter(|f| f.known.is_some()) {
        let mut files = vec![f.dir.join("case.clif")];
        if let Ok(rd) = std::fs::read_dir(f.dir.join("samples")) {
            files.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "clif")),
            );
        }
        for p in files {
            if !marked(&p) {
                out.push((
                    4,
                    ItemKind::KnownSample {
                        key: f.key.clone(),
                        sample: p,
                    },
                ));
            }
        }
    }
    out
}

/// A triage thread's loop: pops and processes items, reporting each decision, until
/// `hard_stop` (which also abandons the reduction in flight), or until `finishing` is set and
/// no urgent item (a new finding, a hit no identity explains or could not yet be told apart)
/// is left. What is left stays on disk for `clif-diff triage`.
pub fn serve(
    queue: &Queue,
    store: &FindingStore,
    worker: &WorkerCommand,
    limits: &Limits,
    hard_stop: &Arc<AtomicBool>,
    finishing: &AtomicBool,
    on_decision: &(dyn Fn(&Decision) + Sync),
) {
    while !hard_stop.load(Ordering::Relaxed) {
        let Some(item) = queue.pop(Duration::from_millis(200)) else {
            if finishing.load(Ordering::Relaxed) {
                break;
            }
            continue;
        };
        if finishing.load(Ordering::Relaxed) && item.priority > 2 {
            break;
        }
        let ctl = Control {
            progress: None,
            nice: true,
            stop: Some(hard_stop.clone()),
        };
        match process(store, worker, &item.kind, limits, &ctl) {
            Ok(d) => on_decision(&d),
            Err(e) => on_decision(&Decision::Undecided {
                what: format!("{:?}", item.kind),
                why: format!("{e:#}"),
            }),
        }
    }
}
