//! What a sandbox worker records for a coverage run, when `CLIF_DIFF_COVERAGE_DIR` names a
//! directory: the sancov counters ([`super::sancov`]) and a [`Record`] of what it compiled.
//!
//! Everything here is a no-op in an ordinary campaign: the hooks, one of them per compiled
//! function, cost one atomic load there.

use super::sancov::Counters;
use crate::case::TestCase;
use cranelift_codegen::Context;
use cranelift_codegen::ir::{Function, types};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that turns a worker into a coverage recorder.
pub const DIR_VAR: &str = "CLIF_DIFF_COVERAGE_DIR";
/// Prefix of a worker's record file (JSON [`Record`]).
pub const RECORD_PREFIX: &str = "record-";

/// How often a worker rewrites its totals: a worker killed by a crashing case loses at most this
/// much coverage, and it costs a few milliseconds.
const DUMP_EVERY: Duration = Duration::from_secs(2);

/// Counts of what reached a worker and what its engines compiled.
#[derive(Default, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Record {
    /// `opcode.type` of every instruction of every case received, per target architecture.
    pub generated: BTreeMap<String, BTreeMap<String, u64>>,
    /// `opcode.type` of every instruction after optimisation of functions that compiled, per
    /// architecture: what the backend lowered.
    pub lowered: BTreeMap<String, BTreeMap<String, u64>>,
    /// Relocation kinds in compiled code, per `engine/arch` (`jit/x86_64`, `object/aarch64`): what
    /// `cranelift-jit` had to apply and `cranelift-object` had to emit.
    pub relocs: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Record {
    pub fn merge(&mut self, other: &Record) {
        for (mine, theirs) in [
            (&mut self.generated, &other.generated),
            (&mut self.lowered, &other.lowered),
            (&mut self.relocs, &other.relocs),
        ] {
            for (k, m) in theirs {
                let e = mine.entry(k.clone()).or_default();
                for (op, n) in m {
                    *e.entry(op.clone()).or_default() += n;
                }
            }
        }
    }
}

struct State {
    dir: PathBuf,
    counters: Counters,
    record: Record,
    last_dump: Instant,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Starts recording if the environment asks for it. A worker told to record that cannot is a
/// broken coverage run: it says why and exits rather than serve unmeasured requests.
pub fn attach_from_env() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    match Counters::attach(&dir) {
        Ok(counters) => {
            *STATE.lock().unwrap() = Some(State {
                dir,
                counters,
                record: Record::default(),
                last_dump: Instant::now(),
            });
            ACTIVE.store(true, Ordering::Release);
        }
        Err(e) => {
            eprintln!("clif-diff worker: coverage: {e:#}");
            std::process::exit(3);
        }
    }
}

/// A case arrived.
pub fn received(case: &TestCase) {
    with(|s| {
        let arch = crate::target::case_arch(case).map_or("unknown", |a| a.name());
        let m = s.record.generated.entry(arch.to_string()).or_default();
        for f in &case.functions {
            count_ops(f, m);
        }
    });
}

/// A function compiled by `isa` for `module` (a `cranelift_module::Module` type name).
pub fn compiled(module: &str, ctx: &Context, isa: &dyn cranelift_codegen::isa::TargetIsa) {
    with(|s| {
        let arch = crate::target::Arch::of(isa.triple()).map_or("unknown", |a| a.name());
        count_ops(
            &ctx.func,
            s.record.lowered.entry(arch.to_string()).or_default(),
        );
        let engine = if module.contains("JIT") {
            "jit"
        } else {
            "object"
        };
        if let Some(cc) = ctx.compiled_code() {
            let m = s
                .record
                .relocs
                .entry(format!("{engine}/{arch}"))
                .or_default();
            for r in cc.buffer.relocs() {
                *m.entry(format!("{:?}", r.kind)).or_default() += 1;
            }
        }
    });
}

/// A request is answered: fold the counters, and write totals now and then.
pub fn request_done() {
    with(|s| {
        s.counters.fold();
        if s.last_dump.elapsed() >= DUMP_EVERY {
            dump(s);
        }
    });
}

/// The worker is ending: write everything.
pub fn finish() {
    with(|s| {
        s.counters.fold();
        dump(s);
    });
}

fn with(f: impl FnOnce(&mut State)) {
    if !ACTIVE.load(Ordering::Acquire) {
        return;
    }
    if let Some(s) = STATE.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        f(s)
    }
}

fn dump(s: &mut State) {
    s.last_dump = Instant::now();
    let r = s
        .counters
        .dump(&s.dir)
        .and_then(|_| write_record(&s.dir, &s.record));
    if let Err(e) = r {
        eprintln!("clif-diff worker: coverage: {e:#}");
    }
}

fn write_record(dir: &Path, record: &Record) -> anyhow::Result<()> {
    let path = dir.join(format!("{RECORD_PREFIX}{}.json", std::process::id()));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(record)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

fn count_ops(f: &Function, m: &mut BTreeMap<String, u64>) {
    for block in f.layout.blocks() {
        for inst in f.layout.block_insts(block) {
            let op = f.dfg.insts[inst].opcode();
            let mut ty = f.dfg.ctrl_typevar(inst);
            if ty == types::INVALID {
                ty = f
                    .dfg
                    .inst_results(inst)
                    .first()
                    .map_or(types::INVALID, |&v| f.dfg.value_type(v));
            }
            let key = if ty == types::INVALID {
                op.to_string()
            } else {
                format!("{op}.{ty}")
            };
            *m.entry(key).or_default() += 1;
        }
    }
}
