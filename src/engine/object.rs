//! `cranelift-object` + the system linker + a real process.
//!
//! One object file holds one or more cases (a *batch*; each case's symbols carry their own prefix)
//! and a table of function addresses that the target-neutral C driver (`driver.c`) uses to call
//! trampolines and to attribute faults. The program reads call requests on stdin and answers on
//! stdout. A Cranelift trap is answered and the same process goes on; when the program crashes
//! (a fault that is no trap site), hangs or dies, the remaining lines are replayed in a fresh
//! process, so one crash costs one run line, not the batch, and never a relink.

use super::program::{CodeInfo, Defined, Program, SLOT, trap_at};
use super::{EngineSpec, RunOptions, catch, report_all};
use crate::case::TestCase;
use crate::outcome::{Outcome, Phase};
use crate::target::{build_isa, case_arch};
use crate::toolchain::{Toolchain, scratch_dir};
use crate::value::Val;
use cranelift_codegen::ir::Signature;
use cranelift_module::{DataDescription, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use super::batch::{batch_key, run_batch, run_batch_with};

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
    let calls: Vec<Call> = runs.map(|i| linked.call(0, case, i)).collect();
    linked.execute(&calls, opts, &mut |c, o| report(c.run, o));
}

static PROGRAM_STARTS: AtomicU64 = AtomicU64::new(0);

/// Linked programs started by this process so far (traps do not cost one; crashes do).
pub fn program_starts() -> u64 {
    PROGRAM_STARTS.load(Ordering::Relaxed)
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

fn table_symbol(k: usize) -> String {
    format!("clif_diff_table_{k}")
}

/// One case's compiled object.
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
        let toolchain = Toolchain::for_arch(arch).map_err(|e| Outcome::Unsupported {
            reason: e.to_string(),
        })?;
        // Executables are position-independent by default on Linux, as for cg_clif's objects.
        let mut overrides: Vec<(&str, &str)> = vec![("is_pic", "true")];
        overrides.extend(spec.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())));

        let mut failed: Vec<Option<Outcome>> = vec![None; cases.len()];
        let mut programs: Vec<Option<(Program, usize)>> = Vec::new();
        // (case, object) of the cases that compiled, in directory order.
        let mut objects: Vec<(usize, CaseObject)> = Vec::new();
        let mut directory_isa = None;
        for (k, case) in cases.iter().enumerate() {
            let compiled = Program::plan(case, &batch_prefix(k)).and_then(|p| {
                let isa = build_isa(case, &overrides).map_err(setup_err)?;
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
                .link(&refs, &out)
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

    /// Runs `calls` in as few processes as faults allow, reporting each outcome.
    pub fn execute(
        &self,
        calls: &[Call],
        opts: &RunOptions,
        report: &mut dyn FnMut(&Call, Outcome),
    ) {
        let mut next = 0;
        while next < calls.len() {
            let done = self.execute_from(&calls[next..], opts, report);
            // A process that made no progress at all is reported against its first call.
            next += done.max(1);
        }
    }

    /// One process over `calls`; returns how many calls got an outcome.
    fn execute_from(
        &self,
        calls: &[Call],
        opts: &RunOptions,
        report: &mut dyn FnMut(&Call, Outcome),
    ) -> usize {
        let mut input = String::new();
        for (i, c) in calls.iter().enumerate() {
            let hex: String = c.args.iter().map(|b| format!("{b:02x}")).collect();
            let rets_len = SLOT * c.rets.returns.len();
            input.push_str(&format!("{i} {} {} {rets_len} {hex}\n", c.group, c.tramp));
        }
        let Some(exe) = &self.exe else {
            // Nothing compiled, so nothing was linked; callers only call compiled cases.
            for c in calls {
                report(
                    c,
                    Outcome::Error {
                        phase: Phase::Run,
                        message: "case is not in the program".into(),
                    },
                );
            }
            return calls.len();
        };
        let mut cmd = self.toolchain.command(exe);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        limit_child(&mut cmd, self.toolchain.runner.is_none());
        PROGRAM_STARTS.fetch_add(1, Ordering::Relaxed);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                report(
                    &calls[0],
                    Outcome::Error {
                        phase: Phase::Run,
                        message: format!("cannot start program: {e}"),
                    },
                );
                return 1;
            }
        };
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The budget grows with the batch: each call gets the per-run timeout.
        let per_call = Duration::from_millis(opts.timeout_ms);
        let mut deadline = Instant::now() + per_call;
        let mut current: Option<usize> = None;
        let mut done = 0;
        let mut timed_out = false;
        let mut crashed = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let mut parts = line.split_whitespace();
                    let tag = parts.next().unwrap_or("");
                    let idx: Option<usize> = parts.next().and_then(|s| s.parse().ok());
                    match (tag, idx) {
                        ("S", Some(i)) => {
                            current = Some(i);
                            deadline = Instant::now() + per_call;
                        }
                        ("R", Some(i)) if i < calls.len() => {
                            let hex = parts.next().unwrap_or("");
                            report(&calls[i], self.decode(&calls[i], hex));
                            done = i + 1;
                            current = None;
                        }
                        ("T", Some(i)) if i < calls.len() => {
                            let nums: Vec<i64> = parts.filter_map(|s| s.parse().ok()).collect();
                            let outcome = self.fault(&nums);
                            let trapped = matches!(outcome, Outcome::Trap { .. });
                            report(&calls[i], outcome);
                            done = i + 1;
                            current = None;
                            // After a clean trap the driver carries on; after any other fault
                            // its state is suspect, so the rest goes to a fresh process.
                            if !trapped {
                                crashed = true;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if timed_out || crashed {
            let _ = child.kill();
        }
        let status = child.wait();
        let _ = writer.join();
        // Blame a call only when the process died inside it (after its `S`), or when it made no
        // progress at all; a fault already reported by the driver (`T`) ends the process on
        // purpose, and the calls after it simply go to the next process.
        let blame = match current {
            Some(i) => Some(i),
            None if done == 0 => Some(0),
            None => None,
        };
        if let Some(i) = blame.filter(|&i| i < calls.len()) {
            let outcome = if timed_out {
                Outcome::Timeout {
                    limit: format!("{} ms", opts.timeout_ms),
                }
            } else {
                use std::os::unix::process::ExitStatusExt;
                match status.ok().and_then(|s| s.signal()) {
                    Some(sig) => Outcome::Crash {
                        signal: super::native::signal_name(sig),
                        detail: "program killed".into(),
                    },
                    None => Outcome::Crash {
                        signal: "exit".into(),
                        detail: "program ended before answering".into(),
                    },
                }
            };
            report(&calls[i], outcome);
            done = i + 1;
        }
        done
    }

    fn decode(&self, call: &Call, hex: &str) -> Outcome {
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        let values = call
            .rets
            .returns
            .iter()
            .enumerate()
            .map(|(k, r)| {
                bytes
                    .get(k * SLOT..)
                    .and_then(|b| Val::from_bytes(r.value_type, b, self.big_endian))
            })
            .collect::<Option<Vec<_>>>();
        match values {
            Some(values) => Outcome::Returned { values },
            None => Outcome::Error {
                phase: Phase::Run,
                message: "malformed result from driver".into(),
            },
        }
    }

    /// `T` line fields after the run index: signo, group, function index, offset.
    fn fault(&self, nums: &[i64]) -> Outcome {
        let (signo, group, func, off) = match nums {
            [s, g, f, o] => (*s as i32, *g, *f, *o as u64),
            _ => {
                return Outcome::Crash {
                    signal: "unknown".into(),
                    detail: "malformed fault report".into(),
                };
            }
        };
        let info = usize::try_from(group)
            .ok()
            .and_then(|g| self.code.get(g))
            .zip(usize::try_from(func).ok())
            .and_then(|(code, f)| code.get(f));
        if let Some(code) = info.and_then(|i| trap_at(off, &[(0, i)])) {
            return Outcome::Trap {
                code: code.to_string(),
            };
        }
        Outcome::Crash {
            signal: super::native::signal_name(signo),
            detail: match info {
                Some(i) if off < i.size as u64 => format!("in {}+{off:#x}", i.symbol),
                _ => "outside generated code".into(),
            },
        }
    }
}

/// Compiles case `k` into its own object with its table.
fn compile_case(
    isa: cranelift_codegen::isa::OwnedTargetIsa,
    k: usize,
    program: &Program,
) -> Result<CaseObject, Outcome> {
    catch(Phase::Compile, || -> Result<CaseObject, Outcome> {
        let builder =
            ObjectBuilder::new(isa, "clif_diff", cranelift_module::default_libcall_names())
                .map_err(|e| Outcome::Error {
                    phase: Phase::Setup,
                    message: super::program::module_error_text(&e),
                })?;
        let mut module = ObjectModule::new(builder);
        let defined = [program.define(&mut module, &batch_prefix(k))?];
        define_table(&mut module, &defined, &table_symbol(k))?;
        let code: Vec<CodeInfo> = table_order(&defined).map(|(_, c)| c.clone()).collect();
        let product = catch(Phase::Finalize, || module.finish())?;
        let bytes = product.emit().map_err(|e| Outcome::Error {
            phase: Phase::Finalize,
            message: e.to_string(),
        })?;
        Ok(CaseObject { bytes, code })
    })?
}

/// The object holding `clif_diff_tables = { n, &clif_diff_table_<k>... }` for the cases `keys`.
fn directory_object(
    isa: cranelift_codegen::isa::OwnedTargetIsa,
    keys: &[usize],
) -> Result<Vec<u8>, Outcome> {
    let err = |e: cranelift_module::ModuleError| Outcome::Error {
        phase: Phase::Compile,
        message: super::program::module_error_text(&e),
    };
    let builder = ObjectBuilder::new(isa, "clif_diff", cranelift_module::default_libcall_names())
        .map_err(err)?;
    let mut module = ObjectModule::new(builder);
    let ptr = module.isa().pointer_bytes() as usize;
    let mut desc = DataDescription::new();
    let mut init = vec![0u8; ptr * (1 + keys.len())];
    init[..ptr].copy_from_slice(&pointer_word(&module, keys.len() as u64));
    desc.define(init.into_boxed_slice());
    desc.set_align(ptr as u64);
    for (g, &k) in keys.iter().enumerate() {
        let id = module
            .declare_data(&table_symbol(k), Linkage::Import, false, false)
            .map_err(err)?;
        let gv = module.declare_data_in_data(id, &mut desc);
        desc.write_data_addr(((1 + g) * ptr) as u32, gv, 0);
    }
    let dir = module
        .declare_data("clif_diff_tables", Linkage::Export, false, false)
        .map_err(err)?;
    module.define_data(dir, &desc).map_err(err)?;
    module.finish().emit().map_err(|e| Outcome::Error {
        phase: Phase::Finalize,
        message: e.to_string(),
    })
}

fn table_order(defined: &[Defined]) -> impl Iterator<Item = &(cranelift_module::FuncId, CodeInfo)> {
    // Case functions first, then trampolines: the driver's table layout.
    let funcs = defined
        .iter()
        .flat_map(|d| d.code.iter().filter(|(id, _)| !d.tramps.contains(id)));
    let tramps = defined
        .iter()
        .flat_map(|d| d.code.iter().filter(|(id, _)| d.tramps.contains(id)));
    funcs.chain(tramps)
}

fn pointer_word(module: &ObjectModule, v: u64) -> Vec<u8> {
    let ptr = module.isa().pointer_bytes() as usize;
    if module.isa().endianness() == cranelift_codegen::ir::Endianness::Big {
        v.to_be_bytes()[8 - ptr..].to_vec()
    } else {
        v.to_le_bytes()[..ptr].to_vec()
    }
}

/// `clif_diff_table_<g> = { nfuncs, ntramps, funcs..., tramps... }`.
fn define_table(
    module: &mut ObjectModule,
    defined: &[Defined],
    symbol: &str,
) -> Result<cranelift_module::DataId, Outcome> {
    let err = |e: cranelift_module::ModuleError| Outcome::Error {
        phase: Phase::Compile,
        message: super::program::module_error_text(&e),
    };
    let ptr = module.isa().pointer_bytes() as usize;
    let all: Vec<cranelift_module::FuncId> = table_order(defined).map(|(id, _)| *id).collect();
    let ntramps: usize = defined.iter().map(|d| d.tramps.len()).sum();
    let mut desc = DataDescription::new();
    let mut init = vec![0u8; ptr * (2 + all.len())];
    init[..ptr].copy_from_slice(&pointer_word(module, (all.len() - ntramps) as u64));
    init[ptr..2 * ptr].copy_from_slice(&pointer_word(module, ntramps as u64));
    desc.define(init.into_boxed_slice());
    desc.set_align(ptr as u64);
    for (i, id) in all.iter().enumerate() {
        let f = module.declare_func_in_data(*id, &mut desc);
        desc.write_function_addr(((2 + i) * ptr) as u32, f);
    }
    let table = module
        .declare_data(symbol, Linkage::Export, false, false)
        .map_err(err)?;
    module.define_data(table, &desc).map_err(err)?;
    Ok(table)
}

/// Native programs get a memory limit and no core dumps; qemu needs its own large reservations,
/// so emulated programs only lose core dumps.
fn limit_child(cmd: &mut std::process::Command, native: bool) {
    use std::os::unix::process::CommandExt;
    static AS_LIMIT: AtomicU64 = AtomicU64::new(1 << 30);
    let limit = AS_LIMIT.load(Ordering::Relaxed);
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            // Die with the worker that runs us.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            if native {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
            }
            Ok(())
        });
    }
}
