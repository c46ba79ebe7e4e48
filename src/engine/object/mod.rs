//! `cranelift-object` + the system (or cross) linker + a real process (under qemu-user for
//! foreign targets).
//!
//! Every case of a batch becomes its own object file (its own `TargetIsa`, its symbols under
//! their own prefix) with a table of its function addresses; a directory object lists the tables
//! and the target-neutral C driver (`driver.c`) uses them to call trampolines and to attribute
//! faults. `tables.rs` writes those objects, `exec.rs` runs the program: it reads call requests on
//! stdin and answers on stdout. A Cranelift trap is answered and the same process goes on; when
//! the program crashes (a fault that is no trap site), hangs or dies, the remaining lines are
//! replayed in a fresh process, so one crash costs one run line, not the batch, and never a
//! relink.

mod exec;
mod tables;

use super::program::{CodeInfo, Program, SLOT};
use super::{EngineSpec, RunOptions, catch, report_all};
use crate::case::TestCase;
use crate::outcome::{Outcome, Phase};
use crate::target::{build_isa, case_arch};
use crate::toolchain::{Toolchain, scratch_dir};
use cranelift_codegen::ir::Signature;
use std::ops::Range;
use std::path::PathBuf;
use tables::{compile_case, directory_object};

pub use super::batch::{batch_key, run_batch, run_batch_with};
pub use exec::program_starts;

pub fn run(
    case: &TestCase,
    spec: &EngineSpec,
    opts: &RunOptions,
    runs: Range<usize>,
    report: &mut dyn FnMut(usize, Outcome),
) {
    let linked = match Linked::build(&[case], spec) {
        Ok(l) => l,
        Err(o) => return report_all(runs, o, report),
    };
    if let Some(o) = linked.failure(0) {
        return report_all(runs, o.clone(), report);
    }
    if let Some(reason) = crate::target::host_lacks_reason(case) {
        return report_all(runs, Outcome::Skipped { reason }, report);
    }
    let calls: Vec<Call> = runs.map(|i| linked.call(0, case, i)).collect();
    linked.execute(&calls, opts, &mut |c, o| report(c.run, o));
}

/// One run line of one case of the batch.
#[derive(Clone, Debug)]
pub struct Call {
    /// Index of the case within the batch.
    pub case: usize,
    /// Index of the run line within its case.
    pub run: usize,
    /// The case's table in the directory.
    group: usize,
    tramp: usize,
    args: Vec<u8>,
    rets: Signature,
}

/// A linked program for a batch of cases.
///
/// Each case becomes its own object file, compiled with its own `TargetIsa` (cases may differ in
/// settings) and holding its own function table (`clif_diff_table_<k>`); a small directory
/// object (`clif_diff_tables`) lists the tables, and everything links into one program. A case
/// Cranelift refuses (an error or a panic while compiling) is left out and keeps its outcome;
/// the others still link and run.
pub struct Linked {
    toolchain: Toolchain,
    /// `None` when no case compiled (nothing to link).
    exe: Option<PathBuf>,
    big_endian: bool,
    /// Per case: its program, its table's index in the directory, and where its trampolines
    /// start in that table; `None` for a case that did not compile.
    programs: Vec<Option<(Program, usize)>>,
    /// Per case: why it is not in the program.
    failed: Vec<Option<Outcome>>,
    /// Per directory entry: code info of every table function, in table order.
    code: Vec<Vec<CodeInfo>>,
    _dir: tempfile::TempDir,
}

/// Prefix of case `k`'s symbols in a batch.
pub fn batch_prefix(k: usize) -> String {
    format!("cd{k}_")
}

/// One case's compiled object.
/// The settings the object engine compiles `case` with. Executables are position-independent
/// by default on Linux, as for cg_clif's objects; a case that says `is_pic=false` gets absolute
/// relocations in code and a non-PIE link.
fn overrides<'a>(case: &TestCase, spec: &'a EngineSpec) -> Vec<(&'a str, &'a str)> {
    let pic = if case.setting("is_pic") == Some("false") {
        "false"
    } else {
        "true"
    };
    let mut o = vec![("is_pic", pic)];
    o.extend(spec.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    o
}

struct CaseObject {
    bytes: Vec<u8>,
    code: Vec<CodeInfo>,
}

impl Linked {
    /// Compiles `cases` (which must share a target architecture; settings may differ), one
    /// object file each, and links those that compiled into one program.
    ///
    /// `Err` is for what fails the whole batch: no toolchain, or a failed link (which one case
    /// may cause: callers bisect).
    pub fn build(cases: &[&TestCase], spec: &EngineSpec) -> Result<Linked, Outcome> {
        let setup_err = |e: anyhow::Error| Outcome::Error {
            phase: Phase::Setup,
            message: format!("{e:#}"),
        };
        let first = cases
            .first()
            .ok_or_else(|| setup_err(anyhow::anyhow!("empty batch")))?;
        let arch = case_arch(first).map_err(setup_err)?;
        for c in cases {
            if case_arch(c).map_err(setup_err)? != arch {
                return Err(setup_err(anyhow::anyhow!(
                    "a batch mixes target architectures"
                )));
            }
        }
        let toolchain = Toolchain::for_arch(arch).map_err(|e| Outcome::Skipped {
            reason: e.to_string(),
        })?;
        let mut pie = true;

        let mut failed: Vec<Option<Outcome>> = vec![None; cases.len()];
        let mut programs: Vec<Option<(Program, usize)>> = Vec::new();
        // (case, object) of the cases that compiled, in directory order.
        let mut objects: Vec<(usize, CaseObject)> = Vec::new();
        let mut directory_isa = None;
        for (k, case) in cases.iter().enumerate() {
            let compiled = Program::plan(case, &batch_prefix(k)).and_then(|p| {
                let isa = build_isa(case, &overrides(case, spec)).map_err(setup_err)?;
                pie &= isa.flags().is_pic();
                directory_isa.get_or_insert_with(|| isa.clone());
                let object = compile_case(isa, k, &p)?;
                Ok((p, object))
            });
            match compiled {
                Ok((p, object)) => {
                    programs.push(Some((p, objects.len())));
                    objects.push((k, object));
                }
                Err(o) => {
                    programs.push(None);
                    failed[k] = Some(o);
                }
            }
        }

        let dir = tempfile::Builder::new()
            .prefix("obj-")
            .tempdir_in(scratch_dir().map_err(setup_err)?)
            .map_err(|e| setup_err(e.into()))?;
        let mut exe = None;
        if let Some(isa) = directory_isa.filter(|_| !objects.is_empty()) {
            let keys: Vec<usize> = objects.iter().map(|(k, _)| *k).collect();
            let directory = catch(Phase::Compile, || directory_object(isa, &keys))??;
            let mut paths = vec![toolchain.driver_object().map_err(setup_err)?];
            let dir_path = dir.path().join("directory.o");
            std::fs::write(&dir_path, directory).map_err(|e| setup_err(e.into()))?;
            paths.push(dir_path);
            for (k, o) in &objects {
                let path = dir.path().join(format!("case{k}.o"));
                std::fs::write(&path, &o.bytes).map_err(|e| setup_err(e.into()))?;
                paths.push(path);
            }
            let out = dir.path().join("cases");
            let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
            toolchain
                .link(&refs, &out, pie)
                .map_err(|message| Outcome::Error {
                    phase: Phase::Link,
                    message,
                })?;
            exe = Some(out);
        }
        Ok(Linked {
            toolchain,
            exe,
            big_endian: arch.big_endian(),
            programs,
            failed,
            code: objects.into_iter().map(|(_, o)| o.code).collect(),
            _dir: dir,
        })
    }

    /// Why case `k` is not in the program (it did not compile), if it is not.
    pub fn failure(&self, k: usize) -> Option<&Outcome> {
        self.failed[k].as_ref()
    }

    /// The call for run line `run` of batch case `k`, which must have compiled.
    pub fn call(&self, k: usize, case: &TestCase, run: usize) -> Call {
        let (program, table) = self.programs[k]
            .as_ref()
            .expect("calls are only made to cases that compiled");
        let entry = program.run_entry[run];
        let sig = &program.funcs[program.entries[entry]].1.signature;
        let mut args = vec![0u8; SLOT * sig.params.len()];
        for (i, v) in case.runs[run].args.iter().enumerate() {
            let b = v.to_bytes(self.big_endian);
            args[i * SLOT..i * SLOT + b.len()].copy_from_slice(&b);
        }
        Call {
            case: k,
            run,
            group: *table,
            tramp: entry,
            args,
            rets: sig.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{Object, ObjectSection, RelocationFlags, elf};

    /// The ELF relocation types in the code section of `text`'s object file.
    fn code_relocs(text: &str) -> Vec<u32> {
        let case = TestCase::parse(text).unwrap();
        let spec = EngineSpec::plain(crate::engine::EngineKind::Object);
        let isa = build_isa(&case, &overrides(&case, &spec)).unwrap();
        let program = Program::plan(&case, &batch_prefix(0)).unwrap();
        let obj = compile_case(isa, 0, &program).unwrap();
        let file = object::File::parse(&*obj.bytes).unwrap();
        let text = file.section_by_name(".text").unwrap();
        text.relocations()
            .map(|(_, r)| match r.flags() {
                RelocationFlags::Elf { r_type } => r_type,
                f => panic!("not ELF: {f:?}"),
            })
            .collect()
    }

    const CALLER: &str = "test run\n{SET}target x86_64\n\
        function %g() -> i64 {\nblock0:\n    v0 = iconst.i64 7\n    return v0\n}\n\
        function %f() -> i64 {\n    fn0 = %g() -> i64\nblock0:\n    v0 = call fn0()\n    return v0\n}\n\
        ; run: %f() == 7\n";

    #[test]
    fn is_pic_false_gives_absolute_relocations_and_the_default_is_pic() {
        let pic = code_relocs(&CALLER.replace("{SET}", ""));
        assert!(pic.contains(&elf::R_X86_64_GOTPCREL), "{pic:?}");
        assert!(!pic.contains(&elf::R_X86_64_64), "{pic:?}");
        let absolute = code_relocs(&CALLER.replace("{SET}", "set is_pic=false\n"));
        assert!(absolute.contains(&elf::R_X86_64_64), "{absolute:?}");
        assert!(!absolute.contains(&elf::R_X86_64_GOTPCREL), "{absolute:?}");
    }
}
