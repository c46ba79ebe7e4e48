//! Known findings: understood bugs and documented limits, kept as data with their cause.
//!
//! `corpus/known-bugs.toml` lists each entry with whether it is a live upstream `bug` or a
//! documented `limit` of a backend, why, where upstream tracks it, and — the part that keeps it
//! honest — its *cause as a predicate* over the case and the finding:
//!
//! ```toml
//! [[known]]
//! id = "x64-sarg-memcpy-callee-conv-preserve-all"
//! bucket = "mismatch:*"
//! cause = "a call passes a `sarg` struct to a `preserve_all` callee"
//! when = { arch = ["x86_64"], call = { conv = ["preserve_all"], sarg = true } }
//! ```
//!
//! An entry explains a finding only when the bucket matches *and* the predicate holds, evaluated
//! where the finding can have come from: for a run-time finding (a mismatch, a crash, a hang)
//! over the functions reachable from the failing run line; for a compile-time one (a panic or an
//! error while compiling, finalizing or linking) over the whole module. So a `preserve_all`
//! function elsewhere in the module, or a `sarg` passed to some other callee, does not make an
//! unrelated miscompile "known": a known bug hides only itself. Samples of each known entry's
//! hits are kept, and `clif-diff triage` re-checks them after reduction: a hit whose reduced
//! case no longer shows the cause is reported as new.

use crate::case::TestCase;
use crate::engine::{EngineKind, EngineSpec};
use crate::facts::{self, CallKind, CallSite};
use crate::oracle::{Finding, Report};
use crate::outcome::{Outcome, Phase};
use crate::target::case_arch;
use anyhow::{Context, Result, bail};
use cranelift_codegen::ir::{ArgumentPurpose, InstructionData, Opcode, types};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum KnownKind {
    /// A real Cranelift bug in the pinned version.
    Bug,
    /// Documented behaviour of a backend (not a bug), e.g. `sarg` unsupported on aarch64.
    Limit,
    /// A bug of the emulator that runs foreign object files (qemu), shown to be the emulator's
    /// by code not from Cranelift: the object engine's result there is not evidence.
    Emulator,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Known {
    pub id: String,
    /// Bucket patterns, in which `*` stands for any text (`error:*:compile:Too_many*`).
    #[serde(deserialize_with = "one_or_many")]
    pub bucket: Vec<String>,
    pub kind: KnownKind,
    /// The cause, in one sentence a maintainer can check against the case.
    pub cause: String,
    /// The cause as a predicate (see [`Cause`]).
    pub when: Cause,
    pub reason: String,
    #[serde(default)]
    pub upstream: Option<String>,
    /// A corpus file that reproduces it.
    #[serde(default)]
    pub reproducer: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// A predicate over a case and one of its findings. Every field that is set must hold; an
/// empty `Cause` is refused when the list is loaded (nothing is known without a cause).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    /// The case's target architecture is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch: Vec<String>,
    /// An engine on a side of the finding is of one of these kinds (`interp`, `jit`, `object`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine: Vec<String>,
    /// Settings in effect on some side of the finding (the case's `set` lines, then that
    /// engine's overrides, then Cranelift's defaults), each with its accepted values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, Vec<String>>,
    /// ISA flags of the case's target (its `target` line and the backend's defaults), each
    /// with the value it must have (`{ has_lse = false }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub isa_flags: BTreeMap<String, bool>,
    /// A call site in scope with these properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallPattern>,
    /// An instruction in scope with these properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inst: Option<InstPattern>,
    /// A function in scope, or a call signature in scope, with these properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SigPattern>,
    /// Some memory access of the case cannot be shown in bounds (undefined behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unproven_memory: Option<bool>,
    /// On the finding's run line, an engine on a side of the finding (of an `engine` kind, when
    /// that is set) trapped with one of these codes: a wrong trap is the cause, not any
    /// disagreement in a case that could trap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trap: Vec<String>,
    /// The finding is a C-interop divergence recognised by this signature shape
    /// (`crate::cinterop::known`); such entries never match cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abi_shape: Option<String>,
    /// At least one of these must hold too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<Cause>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallPattern {
    /// The call's calling convention (the callee's) is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conv: Vec<String>,
    /// `direct`, `indirect`, `tail`, `tail_indirect`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<String>,
    /// The call passes a `sarg` struct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sarg: Option<bool>,
    /// The callee's reference is `colocated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colocated: Option<bool>,
    /// An `i8`/`i16`/`i32` argument with `uext`/`sext` goes on the stack (more integer arguments
    /// before it than the target has argument registers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_stack_arg: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstPattern {
    /// The opcode is one of these.
    pub opcode: Vec<String>,
    /// The controlling (or result) type is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ty: Vec<String>,
    /// `func_addr` / `symbol_value` of a `colocated` reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colocated: Option<bool>,
    /// `symbol_value` / `tls_value` of a symbol with a non-zero offset (`%d0+8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol_offset: Option<bool>,
    /// An `atomic_rmw` with one of these operations (`umin`, `xchg` …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rmw_op: Vec<String>,
    /// The instruction's value argument `index` is defined by one of these opcodes, or by a
    /// parameter (`param`: of the function or of a block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg_from: Option<ArgFrom>,
    /// An `sdiv`/`srem` whose operands may be the minimum and `-1`
    /// ([`crate::facts::guards::signed_overflow_possible`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_overflow_possible: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgFrom {
    pub index: usize,
    /// The argument is defined by one of these opcodes (or `param`); any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defs: Vec<String>,
    /// The argument's type is one of these (any when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ty: Vec<String>,
    /// The defining instruction's own first argument is defined by one of these (any when
    /// empty): `bmask (uextend (icmp …))` names the comparison, not just the extension.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub of: Vec<String>,
    /// The same question asked of the defining instruction, one level down: `band (ushr x y) 1`
    /// where the shift amount `y` is an `i128` is `defs = ["ushr"], def_arg = { index = 1,
    /// ty = ["i128"] }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub def_arg: Option<Box<ArgFrom>>,
}

impl ArgFrom {
    fn holds(
        &self,
        f: &cranelift_codegen::ir::Function,
        inst: cranelift_codegen::ir::Inst,
    ) -> bool {
        let Some(&v) = f.dfg.inst_args(inst).get(self.index) else {
            return false;
        };
        if !self.ty.is_empty() && !self.ty.contains(&f.dfg.value_type(v).to_string()) {
            return false;
        }
        let def = |v| match f.dfg.value_def(f.dfg.resolve_aliases(v)) {
            cranelift_codegen::ir::ValueDef::Result(i, _) => {
                (f.dfg.insts[i].opcode().to_string(), Some(i))
            }
            _ => ("param".to_string(), None),
        };
        let (op, inst) = def(v);
        if !self.defs.is_empty() && !self.defs.contains(&op) {
            return false;
        }
        let of_ok = self.of.is_empty()
            || inst
                .and_then(|i| f.dfg.inst_args(i).first().copied())
                .is_some_and(|a| self.of.contains(&def(a).0));
        let def_arg_ok = self
            .def_arg
            .as_ref()
            .is_none_or(|d| inst.is_some_and(|i| d.holds(f, i)));
        of_ok && def_arg_ok
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigPattern {
    /// Takes a `sarg` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sarg: Option<bool>,
    /// Returns at least this many values of the `return_types` (all types when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returns_at_least: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub return_types: Vec<String>,
}

/// What a predicate is evaluated on: a case, one of its findings, and the report it comes from.
pub struct Subject<'a> {
    pub case: &'a TestCase,
    pub report: &'a Report,
    pub finding: &'a Finding,
}

impl Subject<'_> {
    fn sides(&self) -> Vec<EngineSpec> {
        self.finding
            .sides
            .iter()
            .filter_map(|l| l.parse().ok())
            .collect()
    }

    /// The phase the finding arose in: a compile-time finding can come from any function.
    fn compile_time(&self) -> bool {
        let Some(run) = self.report.runs.get(self.finding.run) else {
            return true;
        };
        let labels: Vec<String> = self.report.engines.iter().map(|e| e.label()).collect();
        run.outcomes.iter().zip(&labels).any(|(o, l)| {
            self.finding.sides.contains(l)
                && matches!(o, Outcome::Panic { phase, .. } | Outcome::Error { phase, .. } if *phase != Phase::Run)
        })
    }

    /// The functions the finding can have come from.
    fn scope(&self) -> Vec<usize> {
        let all = || (0..self.case.functions.len()).collect();
        if self.compile_time() {
            return all();
        }
        match self.case.runs.get(self.finding.run) {
            Some(run) => facts::reachable(self.case, &run.func),
            None => all(),
        }
    }
}

impl Cause {
    fn is_empty(&self) -> bool {
        self.arch.is_empty()
            && self.engine.is_empty()
            && self.settings.is_empty()
            && self.isa_flags.is_empty()
            && self.call.is_none()
            && self.inst.is_none()
            && self.signature.is_none()
            && self.unproven_memory.is_none()
            && self.trap.is_empty()
            && self.abi_shape.is_none()
            && self.any.is_empty()
    }

    /// Does the predicate hold for `s`?
    pub fn holds(&self, s: &Subject) -> bool {
        if self.abi_shape.is_some() {
            return false;
        }
        let scope = s.scope();
        (self.arch.is_empty()
            || case_arch(s.case).is_ok_and(|a| self.arch.iter().any(|x| x == a.name())))
            && (self.engine.is_empty()
                || s.sides()
                    .iter()
                    .any(|e| self.engine.iter().any(|k| k == e.kind.name())))
            && self.settings.iter().all(|(name, values)| {
                s.sides().iter().any(|e| {
                    effective_setting(s.case, e, name).is_some_and(|v| values.contains(&v))
                })
            })
            && (self.isa_flags.is_empty() || isa_flags_hold(s.case, &self.isa_flags))
            && self.call.as_ref().is_none_or(|p| {
                scope
                    .iter()
                    .flat_map(|&i| facts::call_sites(s.case, i))
                    .any(|c| p.matches(s.case, &c))
            })
            && self
                .inst
                .as_ref()
                .is_none_or(|p| p.matches_any(s.case, &scope))
            && self
                .signature
                .as_ref()
                .is_none_or(|p| p.matches_any(s.case, &scope))
            && self
                .unproven_memory
                .is_none_or(|u| u != facts::memory::accesses_in_bounds(s.case))
            && (self.trap.is_empty() || self.trapped_on_a_side(s))
            && (self.any.is_empty() || self.any.iter().any(|c| c.holds(s)))
    }

    fn trapped_on_a_side(&self, s: &Subject) -> bool {
        let Some(run) = s.report.runs.get(s.finding.run) else {
            return false;
        };
        s.report.engines.iter().zip(&run.outcomes).any(|(e, o)| {
            s.finding.sides.contains(&e.label())
                && (self.engine.is_empty() || self.engine.iter().any(|k| k == e.kind.name()))
                && matches!(o, Outcome::Trap { code } if self.trap.contains(code))
        })
    }
}

/// Whether every ISA flag of `want` has its value in `case`'s target ISA.
fn isa_flags_hold(case: &TestCase, want: &BTreeMap<String, bool>) -> bool {
    let Ok(isa) = crate::target::build_isa(case, &[]) else {
        return false;
    };
    let flags = isa.isa_flags();
    want.iter().all(|(name, value)| {
        flags
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.as_bool())
            .is_some_and(|b| b == *value)
    })
}

/// The value of setting `name` for engine `e` on `case`: the engine's override, else the case's
/// `set` line, else Cranelift's default (as the flags builder reports it).
fn effective_setting(case: &TestCase, e: &EngineSpec, name: &str) -> Option<String> {
    if let Some((_, v)) = e.overrides.iter().rev().find(|(k, _)| k == name) {
        return Some(v.clone());
    }
    if let Some(v) = case.setting(name) {
        return Some(if v.is_empty() {
            "true".into()
        } else {
            v.to_string()
        });
    }
    let flags = cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder());
    flags
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.value_string())
}

/// Integer argument registers of the target's C-like conventions.
fn int_arg_regs(case: &TestCase) -> usize {
    match case_arch(case) {
        Ok(crate::target::Arch::X86_64) => 6,
        Ok(crate::target::Arch::Aarch64) | Ok(crate::target::Arch::Riscv64) => 8,
        Ok(crate::target::Arch::S390x) => 5,
        Err(_) => usize::MAX,
    }
}

impl CallPattern {
    fn matches(&self, case: &TestCase, c: &CallSite) -> bool {
        let kind = match c.kind {
            CallKind::Direct => "direct",
            CallKind::Indirect => "indirect",
            CallKind::Tail => "tail",
            CallKind::TailIndirect => "tail_indirect",
        };
        (self.conv.is_empty() || self.conv.contains(&c.conv().to_string()))
            && (self.kind.is_empty() || self.kind.iter().any(|k| k == kind))
            && self.sarg.is_none_or(|s| s == c.has_sarg())
            && self.colocated.is_none_or(|x| x == c.colocated)
            && self.extended_stack_arg.is_none_or(|want| {
                let regs = int_arg_regs(case);
                let mut ints = 0;
                let mut found = false;
                for p in &c.sig.params {
                    if p.purpose != ArgumentPurpose::Normal || !p.value_type.is_int() {
                        continue;
                    }
                    let slots = if p.value_type == types::I128 { 2 } else { 1 };
                    // apple_aarch64 packs stack arguments at their own size, i32 included.
                    let small = p.value_type.bits() < 64;
                    let extended = p.extension != cranelift_codegen::ir::ArgumentExtension::None;
                    if ints + slots > regs && small && extended {
                        found = true;
                    }
                    ints += slots;
                }
                found == want
            })
    }
}

impl InstPattern {
    fn matches_any(&self, case: &TestCase, scope: &[usize]) -> bool {
        scope.iter().any(|&i| {
            let f = &case.functions[i];
            facts::insts(f).any(|inst| {
                let data = &f.dfg.insts[inst];
                let op: Opcode = data.opcode();
                if !self.opcode.iter().any(|o| *o == op.to_string()) {
                    return false;
                }
                let ctrl = f.dfg.ctrl_typevar(inst);
                let result = f
                    .dfg
                    .inst_results(inst)
                    .first()
                    .map(|&v| f.dfg.value_type(v));
                let ty_ok = self.ty.is_empty()
                    || self.ty.iter().any(|t| {
                        *t == ctrl.to_string() || result.is_some_and(|r| *t == r.to_string())
                    });
                let (colocated, offset) = match data {
                    InstructionData::FuncAddr { func_ref, .. } => {
                        (Some(f.dfg.ext_funcs[*func_ref].colocated), None)
                    }
                    InstructionData::UnaryGlobalValue { global_value, .. } => {
                        match &f.global_values[*global_value] {
                            cranelift_codegen::ir::GlobalValueData::Symbol {
                                colocated,
                                offset,
                                ..
                            } => (Some(*colocated), Some(i64::from(*offset) != 0)),
                            _ => (None, None),
                        }
                    }
                    _ => (None, None),
                };
                let rmw_ok = self.rmw_op.is_empty()
                    || matches!(data, InstructionData::AtomicRmw { op, .. }
                        if self.rmw_op.iter().any(|o| *o == op.to_string()));
                let arg_ok = self.arg_from.as_ref().is_none_or(|a| a.holds(f, inst));
                let overflow_ok = self.signed_overflow_possible.is_none_or(|want| {
                    crate::facts::guards::signed_overflow_possible(f, inst) == want
                });
                ty_ok
                    && rmw_ok
                    && arg_ok
                    && overflow_ok
                    && self.colocated.is_none_or(|want| colocated == Some(want))
                    && self.symbol_offset.is_none_or(|want| offset == Some(want))
            })
        })
    }
}

impl SigPattern {
    fn matches_any(&self, case: &TestCase, scope: &[usize]) -> bool {
        let sigs = scope.iter().flat_map(|&i| {
            let f = &case.functions[i];
            std::iter::once(f.signature.clone()).chain(f.dfg.signatures.values().cloned())
        });
        sigs.into_iter().any(|sig| {
            let sarg = sig
                .params
                .iter()
                .any(|p| matches!(p.purpose, ArgumentPurpose::StructArgument(_)));
            let counted = sig
                .returns
                .iter()
                .filter(|r| {
                    self.return_types.is_empty()
                        || self.return_types.contains(&r.value_type.to_string())
                })
                .count();
            self.sarg.is_none_or(|s| s == sarg)
                && self
                    .returns_at_least
                    .map_or(self.return_types.is_empty() || counted > 0, |n| {
                        counted >= n
                    })
        })
    }
}

impl Known {
    fn bucket_matches(&self, bucket: &str) -> bool {
        self.bucket.iter().any(|p| glob_match(p, bucket))
    }

    /// Does this entry explain `s`'s finding?
    pub fn explains(&self, s: &Subject) -> bool {
        self.bucket_matches(&s.finding.bucket) && self.when.holds(s)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KnownBuckets {
    #[serde(default, rename = "known")]
    pub entries: Vec<Known>,
}

impl KnownBuckets {
    pub fn load(path: &Path) -> Result<KnownBuckets> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let k: KnownBuckets =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        k.check()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(k)
    }

    /// Every entry states a cause, as text and as a predicate, and ids are unique.
    pub fn check(&self) -> Result<()> {
        for (i, e) in self.entries.iter().enumerate() {
            if e.when.is_empty() || e.cause.trim().is_empty() || e.reason.trim().is_empty() {
                bail!(
                    "known entry `{}` has no cause (a `cause`, a `when` and a `reason` are required)",
                    e.id
                );
            }
            if self.entries[..i].iter().any(|o| o.id == e.id) {
                bail!("known entry `{}` is listed twice", e.id);
            }
            if let Some(shape) = &e.when.abi_shape
                && !crate::cinterop::known::SHAPES.contains(&shape.as_str())
            {
                bail!("known entry `{}`: unknown ABI shape `{shape}`", e.id);
            }
        }
        Ok(())
    }

    /// The default list shipped in the repository, or none when run elsewhere.
    pub fn load_default() -> KnownBuckets {
        let p = default_path();
        if p.exists() {
            match KnownBuckets::load(&p) {
                Ok(k) => k,
                Err(e) => {
                    // A broken list must not silently turn every known bug into a new one.
                    eprintln!("clif-diff: warning: {e:#}");
                    KnownBuckets::default()
                }
            }
        } else {
            KnownBuckets::default()
        }
    }

    /// The entry that explains `finding` of `case`, if any. Predicates only read the IR; a
    /// panic inside one (odd input) counts as "not explained".
    pub fn classify(&self, case: &TestCase, report: &Report, finding: &Finding) -> Option<&Known> {
        let s = Subject {
            case,
            report,
            finding,
        };
        self.entries
            .iter()
            .find(|k| crate::panics::catch(|| k.explains(&s)).unwrap_or(false))
    }

    /// The entry for a bucket produced by a shape recogniser outside the case pipeline (C
    /// interop's `abi-mismatch:<shape>` buckets).
    pub fn by_abi_bucket(&self, bucket: &str) -> Option<&Known> {
        self.entries
            .iter()
            .find(|k| k.when.abi_shape.is_some() && k.bucket_matches(bucket))
    }

    pub fn by_id(&self, id: &str) -> Option<&Known> {
        self.entries.iter().find(|k| k.id == id)
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// `corpus/known-bugs.toml` next to the crate (or `$CLIF_DIFF_KNOWN`).
pub fn default_path() -> std::path::PathBuf {
    match std::env::var_os("CLIF_DIFF_KNOWN") {
        Some(p) => p.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/known-bugs.toml"),
    }
}

/// An engine kind named in a predicate.
pub fn engine_kind(name: &str) -> Option<EngineKind> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{RunReport, Verdict};

    #[test]
    fn shipped_list_parses_and_every_entry_states_a_cause() {
        let k = KnownBuckets::load(&default_path()).unwrap();
        assert!(!k.entries.is_empty());
        for e in &k.entries {
            assert!(!e.when.is_empty(), "{}", e.id);
            for name in &e.when.engine {
                assert!(engine_kind(name).is_some(), "{}: engine {name}", e.id);
            }
        }
    }

    #[test]
    fn an_entry_without_a_cause_is_refused() {
        let k: KnownBuckets = toml::from_str(
            r#"
            [[known]]
            id = "vague"
            bucket = "mismatch:*"
            kind = "bug"
            cause = "something"
            reason = "r"
            when = {}
            "#,
        )
        .unwrap();
        assert!(k.check().is_err());
        // Unknown keys (such as the old substring `when = [...]`) do not parse at all.
        assert!(
            toml::from_str::<KnownBuckets>(
                r#"
                [[known]]
                id = "old"
                bucket = "mismatch:*"
                kind = "bug"
                cause = "c"
                reason = "r"
                when = { text = ["sarg("] }
                "#
            )
            .is_err()
        );
    }

    fn subject_report(case: &TestCase, bucket: &str, sides: &[&str]) -> (Report, Finding) {
        let engines: Vec<EngineSpec> = sides.iter().map(|s| s.parse().unwrap()).collect();
        let ret = Outcome::Returned { values: vec![] };
        let report = Report {
            engines: engines.clone(),
            runs: case
                .runs
                .iter()
                .map(|r| RunReport {
                    invocation: r.invocation(),
                    outcomes: vec![ret.clone(); engines.len()],
                    verdict: Verdict::Mismatch,
                    bucket: bucket.into(),
                    findings: vec![],
                })
                .collect(),
            verdict: Verdict::Mismatch,
            bucket: bucket.into(),
            run: Some(0),
            findings: vec![],
            invalid: None,
            engine_micros: vec![],
            screened_as: None,
        };
        let finding = Finding {
            verdict: Verdict::Mismatch,
            bucket: bucket.into(),
            run: 0,
            sides: sides.iter().map(|s| s.to_string()).collect(),
        };
        (report, finding)
    }

    const PRESERVE_ALL: &str = r#"
        [[known]]
        id = "pa"
        bucket = "mismatch:*"
        kind = "bug"
        cause = "a call passes a sarg to a preserve_all callee"
        reason = "r"
        when = { arch = ["x86_64"], call = { conv = ["preserve_all"], sarg = true } }
    "#;

    const MODULE: &str = "test run
target x86_64

function %callee(i64 sarg(8)) -> i64 preserve_all {
block0(v0: i64):
    v1 = load.i64 notrap v0
    return v1
}

function %other(i64) -> i64 preserve_all {
block0(v0: i64):
    return v0
}

function %main() -> i64 system_v {
    ss0 = explicit_slot 8
    sig0 = (i64 sarg(8)) -> i64 preserve_all
    fn0 = colocated %callee sig0
block0:
    v0 = iconst.i64 5
    v1 = stack_addr.i64 ss0
    store notrap v0, v1
    v2 = call fn0(v1)
    return v2
}
; run: %main() == 5

function %unrelated() -> i64 system_v {
    ss0 = explicit_slot 8
    sig0 = (i64) -> i64 preserve_all
    fn0 = colocated %other sig0
block0:
    v0 = iconst.i64 5
    v1 = call fn0(v0)
    return v1
}
; run: %unrelated() == 5
";

    #[test]
    fn a_predicate_sees_only_what_the_failing_line_reaches() {
        let k: KnownBuckets = toml::from_str(PRESERVE_ALL).unwrap();
        k.check().unwrap();
        let case = TestCase::parse(MODULE).unwrap();
        let (report, mut finding) =
            subject_report(&case, "mismatch:interp!=jit", &["interp", "jit"]);
        // Line 0 (%main) passes a sarg to a preserve_all callee.
        assert_eq!(k.classify(&case, &report, &finding).unwrap().id, "pa");
        // Line 1 (%unrelated) calls a preserve_all function without a sarg: the module has
        // `sarg(` and `preserve_all` in it, but not the cause.
        finding.run = 1;
        assert!(k.classify(&case, &report, &finding).is_none());
        // Another target, or another bucket: not this entry.
        finding.run = 0;
        let aarch64 = TestCase::parse(&MODULE.replace("target x86_64", "target aarch64")).unwrap();
        assert!(k.classify(&aarch64, &report, &finding).is_none());
        finding.bucket = "crash:jit:SIGSEGV".into();
        assert!(k.classify(&case, &report, &finding).is_none());
    }

    #[test]
    fn settings_follow_the_sides_overrides_and_defaults() {
        let case = TestCase::parse(MODULE).unwrap();
        let jit: EngineSpec = "jit".parse().unwrap();
        let single: EngineSpec = "jit[regalloc_algorithm=single_pass]".parse().unwrap();
        assert_eq!(
            effective_setting(&case, &jit, "regalloc_algorithm").as_deref(),
            Some("backtracking")
        );
        assert_eq!(
            effective_setting(&case, &single, "regalloc_algorithm").as_deref(),
            Some("single_pass")
        );
        assert_eq!(
            effective_setting(&case, &jit, "opt_level").as_deref(),
            Some("none")
        );
    }

    #[test]
    fn patterns_match_anywhere() {
        assert!(glob_match("a*", "abc"));
        assert!(glob_match(
            "error:*:compile:X*",
            "error:object[opt_level=none]:compile:X_y"
        ));
        assert!(!glob_match("error:*:compile:X*", "error:object:link:X_y"));
        assert!(glob_match("*:SIGSEGV", "crash:object:SIGSEGV"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
    }
}
