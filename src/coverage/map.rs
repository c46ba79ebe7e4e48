//! The coverage map of one campaign: ISLE rules per backend, source areas, opcodes and
//! relocations; and its comparison with a baseline.

use super::isle::{Generated, Sections, backend_of};
use super::sancov::{HITS_PREFIX, pcs_path};
use super::symbols::{self, Located};
use super::worker::{RECORD_PREFIX, Record};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CoverageMap {
    /// Target architecture of the campaign.
    pub target: String,
    /// Requests the workers served (cases, plus object batches).
    pub requests: u64,
    /// Rules of the backends the campaign compiles for (its own and the mid-end).
    pub backends: BTreeMap<String, Vec<RuleCov>>,
    /// Line and edge coverage of Cranelift's source areas.
    pub areas: BTreeMap<String, AreaCov>,
    pub record: Record,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RuleCov {
    /// `src/isa/x64/lower.isle:79`.
    pub rule: String,
    /// `lower.isle: Rules for `iadd``, or the file name where the file has no sections.
    pub group: String,
    /// Requests that ran the rule's right-hand side (the most of any of its PCs).
    pub hits: u64,
    /// Whether the rule's region holds an instrumented PC; an unmeasurable rule is never
    /// counted as unhit.
    pub measurable: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AreaCov {
    pub lines: u64,
    pub lines_hit: u64,
    pub edges: u64,
    pub edges_hit: u64,
}

/// Rule counts of one backend or group.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Share {
    pub hit: usize,
    pub measurable: usize,
    pub total: usize,
}

impl Share {
    pub fn of<'a>(rules: impl IntoIterator<Item = &'a RuleCov>) -> Share {
        let mut s = Share::default();
        for r in rules {
            s.total += 1;
            s.measurable += r.measurable as usize;
            s.hit += (r.hits > 0) as usize;
        }
        s
    }

    /// Hit rules as a percentage of measurable ones.
    pub fn percent(&self) -> f64 {
        if self.measurable == 0 {
            0.0
        } else {
            100.0 * self.hit as f64 / self.measurable as f64
        }
    }
}

/// The ISLE backend that lowers for a target architecture.
pub fn backend_for(arch: &str) -> &str {
    match arch {
        "x86_64" => "x64",
        a => a,
    }
}

impl CoverageMap {
    /// Builds the map from a directory of worker dumps and the binary that wrote them.
    pub fn build(dumps: &Path, binary: &Path, target: &str) -> Result<CoverageMap> {
        let pcs = read_pcs(dumps)?;
        // PCs only mean something in the binary that recorded them.
        let recorded =
            std::fs::read_to_string(dumps.join(super::sancov::BUILD_ID_FILE)).unwrap_or_default();
        let wanted = super::sancov::build_id(binary)?;
        if recorded.trim() != wanted {
            bail!(
                "{}: recorded by another build (id {}) than {} (id {wanted}); map a new campaign",
                dumps.display(),
                if recorded.is_empty() {
                    "unknown"
                } else {
                    recorded.trim()
                },
                binary.display()
            );
        }
        let hits = read_hits(dumps, pcs.len())?;
        let located = symbols::locate(binary, &pcs)?;
        let wanted = [backend_for(target).to_string(), "mid-end".to_string()];
        Ok(CoverageMap {
            target: target.to_string(),
            requests: hits.requests,
            backends: rules(&located, &hits.per_pc, &wanted)?,
            areas: areas(&located, &hits.per_pc),
            record: hits.record,
        })
    }

    pub fn share(&self, backend: &str) -> Share {
        Share::of(self.backends.get(backend).into_iter().flatten())
    }

    /// Share per ISLE source file of a backend.
    pub fn files(&self, backend: &str) -> BTreeMap<String, Share> {
        let mut by: BTreeMap<String, Vec<&RuleCov>> = BTreeMap::new();
        for r in self.backends.get(backend).into_iter().flatten() {
            let file = r.rule.rsplit_once(':').map_or(&*r.rule, |(f, _)| f);
            by.entry(file.to_string()).or_default().push(r);
        }
        by.into_iter().map(|(k, v)| (k, Share::of(v))).collect()
    }

    /// Share per group (ISLE file section), in file order.
    pub fn groups(&self, backend: &str) -> Vec<(String, Share)> {
        let mut order: Vec<String> = Vec::new();
        let mut by: HashMap<String, Vec<&RuleCov>> = HashMap::new();
        for r in self.backends.get(backend).into_iter().flatten() {
            if !by.contains_key(&r.group) {
                order.push(r.group.clone());
            }
            by.entry(r.group.clone()).or_default().push(r);
        }
        order
            .into_iter()
            .map(|g| {
                let s = Share::of(by[&g].iter().copied());
                (g, s)
            })
            .collect()
    }

    /// Groups with the most measurable rules never hit.
    pub fn top_unhit(&self, backend: &str, n: usize) -> Vec<(String, Share)> {
        let mut g = self.groups(backend);
        g.sort_by_key(|(name, s)| (std::cmp::Reverse(s.measurable - s.hit), name.clone()));
        g.retain(|(_, s)| s.measurable > s.hit);
        g.truncate(n);
        g
    }

    /// Whether one rule (`src/isa/x64/lower.isle:79`) was hit, `None` if it is not in the map.
    pub fn rule(&self, backend: &str, rule: &str) -> Option<&RuleCov> {
        self.backends.get(backend)?.iter().find(|r| r.rule == rule)
    }
}

fn read_pcs(dumps: &Path) -> Result<Vec<u64>> {
    let path = pcs_path(dumps);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "{}: no coverage was recorded (did the workers run the instrumented build?)",
            path.display()
        )
    })?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

fn dump_files(dumps: &Path, prefix: &str) -> Result<Vec<std::path::PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dumps)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(prefix) && !name.contains(".tmp") {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

/// What the workers wrote: requests per PC, their merged records, and the requests they served
/// (each worker's most-hit PC: its request loop runs once per request).
struct Hits {
    per_pc: Vec<u64>,
    record: Record,
    requests: u64,
}

fn read_hits(dumps: &Path, n: usize) -> Result<Hits> {
    let mut hits = Hits {
        per_pc: vec![0u64; n],
        record: Record::default(),
        requests: 0,
    };
    for f in dump_files(dumps, HITS_PREFIX)? {
        let bytes = std::fs::read(&f)?;
        let mut most = 0u64;
        for c in bytes.chunks_exact(8) {
            let i = u32::from_le_bytes(c[..4].try_into().unwrap()) as usize;
            let r = u32::from_le_bytes(c[4..].try_into().unwrap()) as u64;
            if i >= n {
                bail!("{}: counter {i} beyond the PC table", f.display());
            }
            hits.per_pc[i] += r;
            most = most.max(r);
        }
        hits.requests += most;
    }
    for f in dump_files(dumps, RECORD_PREFIX)? {
        let r: Record = serde_json::from_slice(&std::fs::read(&f)?)
            .with_context(|| format!("reading {}", f.display()))?;
        hits.record.merge(&r);
    }
    Ok(hits)
}

fn rules(
    located: &Located,
    per_pc: &[u64],
    wanted: &[String],
) -> Result<BTreeMap<String, Vec<RuleCov>>> {
    // Parse each generated file the binary's line tables mention.
    let mut generated: HashMap<u32, (String, Generated)> = HashMap::new();
    for (i, f) in located.files.iter().enumerate() {
        if !symbols::is_generated_isle(f) {
            continue;
        }
        let Some(backend) = backend_of(f) else {
            continue;
        };
        if !wanted.contains(&backend) {
            continue;
        }
        let text = std::fs::read_to_string(f).with_context(|| {
            format!("{f}: the build's generated ISLE code is gone (rebuild the fuzz targets)")
        })?;
        generated.insert(i as u32, (backend, Generated::parse(&text)));
    }
    // (file, rule id) → (most requests, PCs seen).
    let mut stats: HashMap<(u32, u32), (u64, u64)> = HashMap::new();
    for (loc, &req) in located.pcs.iter().zip(per_pc) {
        for &(f, line) in &loc.isle {
            let Some((_, g)) = generated.get(&f) else {
                continue;
            };
            if let Some(id) = g.rule_at(line) {
                let e = stats.entry((f, id)).or_default();
                e.0 = e.0.max(req);
                e.1 += 1;
            }
        }
    }
    let root = codegen_root(located);
    let mut sections: HashMap<String, Option<Sections>> = HashMap::new();
    let mut out: BTreeMap<String, BTreeMap<String, RuleCov>> = BTreeMap::new();
    for (&f, (backend, g)) in &generated {
        let gen_dir = Path::new(&located.files[f as usize])
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (id, rule) in g.rules.iter().enumerate() {
            let (hits, pcs) = stats.get(&(f, id as u32)).copied().unwrap_or((0, 0));
            let source_path = match rule.source.strip_prefix("<OUT_DIR>/") {
                Some(rest) => Some(gen_dir.join(rest)),
                None => root.as_ref().map(|r| r.join(&rule.source)),
            };
            let file_name = rule.source.rsplit('/').next().unwrap_or(&rule.source);
            let section = source_path.and_then(|p| {
                sections
                    .entry(p.display().to_string())
                    .or_insert_with(|| {
                        std::fs::read_to_string(&p)
                            .ok()
                            .map(|t| Sections::parse(&t))
                    })
                    .as_ref()
                    .and_then(|s| s.at(rule.line).map(str::to_string))
            });
            let group = match section {
                Some(s) => format!("{file_name}: {s}"),
                None => file_name.to_string(),
            };
            // Several generated files can hold the same rule (the preludes); merge per backend.
            let e = out
                .entry(backend.clone())
                .or_default()
                .entry(rule.to_string())
                .or_insert(RuleCov {
                    rule: rule.to_string(),
                    group,
                    hits: 0,
                    measurable: false,
                });
            e.hits = e.hits.max(hits);
            e.measurable |= pcs > 0;
        }
    }
    Ok(out
        .into_iter()
        .map(|(b, m)| {
            let mut v: Vec<RuleCov> = m.into_values().collect();
            v.sort_by_key(|r| rule_order(&r.rule));
            (b, v)
        })
        .collect())
}

fn rule_order(rule: &str) -> (String, u32) {
    let (f, l) = rule.rsplit_once(':').unwrap_or((rule, "0"));
    (f.to_string(), l.parse().unwrap_or(0))
}

/// The source root of `cranelift-codegen` in the build (its ISLE files live there).
fn codegen_root(located: &Located) -> Option<std::path::PathBuf> {
    located.files.iter().find_map(|f| {
        let k = f.find("/cranelift-codegen-")?;
        let end = k + f[k..].find("/src/")?;
        Some(std::path::PathBuf::from(&f[..end]))
    })
}

/// The area of Cranelift a source file belongs to, or `None` outside the areas mapped.
pub fn area_of(path: &str) -> Option<String> {
    if symbols::is_generated_isle(path) {
        let backend = backend_of(path)?;
        return Some(format!("generated ISLE ({backend})"));
    }
    for krate in [
        "cranelift-jit",
        "cranelift-object",
        "cranelift-frontend",
        "cranelift-module",
        "cranelift-interpreter",
    ] {
        if path.contains(&format!("/{krate}-")) && path.contains("/src/") {
            return Some(krate.to_string());
        }
    }
    let k = path.find("/cranelift-codegen-")?;
    let rest = &path[k + path[k..].find("/src/")? + 1..];
    let parts: Vec<&str> = rest.split('/').collect();
    Some(match parts.as_slice() {
        ["src", "isa", arch, _, ..] => format!("cranelift-codegen/src/isa/{arch}"),
        [
            "src",
            dir @ ("machinst" | "opts" | "egraph" | "ir" | "verifier" | "legalizer"),
            _,
            ..,
        ] => {
            format!("cranelift-codegen/src/{dir}")
        }
        _ => "cranelift-codegen (other)".to_string(),
    })
}

fn areas(located: &Located, per_pc: &[u64]) -> BTreeMap<String, AreaCov> {
    let area_of_file: Vec<Option<String>> = located.files.iter().map(|f| area_of(f)).collect();
    let mut lines: HashMap<(u32, u32), bool> = HashMap::new();
    let mut out: BTreeMap<String, AreaCov> = BTreeMap::new();
    for (loc, &req) in located.pcs.iter().zip(per_pc) {
        let Some((f, line)) = loc.at else { continue };
        let Some(area) = area_of_file[f as usize].as_ref() else {
            continue;
        };
        let a = out.entry(area.clone()).or_default();
        a.edges += 1;
        a.edges_hit += (req > 0) as u64;
        let l = lines.entry((f, line)).or_insert(false);
        *l |= req > 0;
    }
    for ((f, _), hit) in lines {
        if let Some(area) = area_of_file[f as usize].clone() {
            let a = out.entry(area).or_default();
            a.lines += 1;
            a.lines_hit += hit as u64;
        }
    }
    out
}

/// What a later map is compared with: each backend's share and the rules it hit. Small enough
/// to keep in the repository (`corpus/coverage/<target>.json`), unlike a whole map.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Baseline {
    pub target: String,
    pub requests: u64,
    pub shares: BTreeMap<String, Share>,
    pub hit: BTreeMap<String, Vec<String>>,
}

impl Baseline {
    pub fn of(map: &CoverageMap) -> Baseline {
        Baseline {
            target: map.target.clone(),
            requests: map.requests,
            shares: map
                .backends
                .keys()
                .map(|b| (b.clone(), map.share(b)))
                .collect(),
            hit: map
                .backends
                .iter()
                .map(|(b, rules)| {
                    let hit = rules.iter().filter(|r| r.hits > 0).map(|r| r.rule.clone());
                    (b.clone(), hit.collect())
                })
                .collect(),
        }
    }

    /// Reads a baseline, or a whole `coverage.json` map.
    pub fn load(path: &Path) -> Result<Baseline> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if let Ok(b) = serde_json::from_slice::<Baseline>(&bytes) {
            return Ok(b);
        }
        let map: CoverageMap = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: neither a coverage baseline nor a coverage map",
                path.display()
            )
        })?;
        Ok(Baseline::of(&map))
    }
}

/// What changed between a baseline and a new map.
pub struct Diff {
    /// Per backend: baseline share, new share.
    pub shares: BTreeMap<String, (Share, Share)>,
    /// Per backend: rules hit now and not in the baseline, and the reverse.
    pub gained: BTreeMap<String, Vec<String>>,
    pub lost: BTreeMap<String, Vec<String>>,
}

impl Diff {
    pub fn new(base: &Baseline, new: &Baseline) -> Diff {
        let mut d = Diff {
            shares: BTreeMap::new(),
            gained: BTreeMap::new(),
            lost: BTreeMap::new(),
        };
        for b in base.shares.keys().chain(new.shares.keys()) {
            let hit = |m: &Baseline| -> std::collections::BTreeSet<String> {
                m.hit.get(b).into_iter().flatten().cloned().collect()
            };
            let (old, now) = (hit(base), hit(new));
            let share = |m: &Baseline| m.shares.get(b).copied().unwrap_or_default();
            d.shares.insert(b.clone(), (share(base), share(new)));
            d.gained
                .insert(b.clone(), now.difference(&old).cloned().collect());
            d.lost
                .insert(b.clone(), old.difference(&now).cloned().collect());
        }
        d
    }

    /// Backends whose share of hit rules fell by more than `points` percentage points.
    pub fn drops(&self, points: f64) -> Vec<(String, f64, f64)> {
        self.shares
            .iter()
            .filter(|(_, (old, new))| old.percent() - new.percent() > points)
            .map(|(b, (old, new))| (b.clone(), old.percent(), new.percent()))
            .collect()
    }
}
