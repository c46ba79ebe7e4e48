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
    tramp: usize,
    args: Vec<u8>,
    rets: Signature,
}

/// A linked program for a batch of cases.
pub struct Linked {
    toolchain: Toolchain,
    exe: PathBuf,
    big_endian: bool,
    /// Per case: its program and where its trampolines start in the table.
    programs: Vec<(Program, usize)>,
    /// Code info of every table function, in table order.
    code: Vec<CodeInfo>,
    _dir: tempfile::TempDir,
}

/// Prefix of case `k`'s symbols in a batch.
pub fn batch_prefix(k: usize) -> String {
    format!("cd{k}_")
}

impl Linked {
    /// Compiles all `cases` (which must share target and settings) into one object and links it.
    pub fn build(cases: &[&TestCase], spec: &EngineSpec) -> Result<Linked, Outcome> {
        let setup_err = |e: anyhow::Error| Outcome::Error {
            phase: Phase::Setup,
            message: format!("{e:#}"),
        };
        let first = cases
            .first()
            .ok_or_else(|| setup_err(anyhow::anyhow!("empty batch")))?;
        let arch = case_arch(first).map_err(setup_err)?;
        let toolchain = Toolchain::for_arch(arch).map_err(|e| Outcome::Unsupported {
            reason: e.to_string(),
        })?;
        // Executables are position-independent by default on Linux, as for cg_clif's objects.
        let mut overrides: Vec<(&str, &str)> = vec![("is_pic", "true")];
        overrides.extend(spec.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let isa = build_isa(first, &overrides).map_err(setup_err)?;

        let programs: Vec<Program> = cases
            .iter()
            .enumerate()
            .map(|(k, c)| Program::plan(c, &batch_prefix(k)))
            .collect::<Result<_, _>>()?;

        let bytes = catch(Phase::Compile, || -> Result<_, Outcome> {
            let builder =
                ObjectBuilder::new(isa, "clif_diff", cranelift_module::default_libcall_names())
                    .map_err(|e| Outcome::Error {
                        phase: Phase::Setup,
                        message: super::program::module_error_text(&e),
                    })?;
            let mut module = ObjectModule::new(builder);
            let mut defined: Vec<Defined> = Vec::new();
            for (k, p) in programs.iter().enumerate() {
                defined.push(p.define(&mut module, &batch_prefix(k))?);
            }
            define_table(&mut module, &defined)?;
            let code: Vec<CodeInfo> = table_order(&defined).map(|(_, c)| c.clone()).collect();
            let product = catch(Phase::Finalize, || module.finish())?;
            let bytes = product.emit().map_err(|e| Outcome::Error {
                phase: Phase::Finalize,
                message: e.to_string(),
            })?;
            let tramp_starts = defined
                .iter()
                .scan(0usize, |acc, d| {
                    let s = *acc;
                    *acc += d.tramps.len();
                    Some(s)
                })
                .collect::<Vec<_>>();
            Ok((bytes, code, tramp_starts))
        })??;
        let (bytes, code, tramp_starts) = bytes;

        let dir = tempfile::Builder::new()
            .prefix("obj-")
            .tempdir_in(scratch_dir().map_err(setup_err)?)
            .map_err(|e| setup_err(e.into()))?;
        let obj = dir.path().join("case.o");
        let exe = dir.path().join("case");
        std::fs::write(&obj, &bytes).map_err(|e| setup_err(e.into()))?;
        let driver = toolchain.driver_object().map_err(setup_err)?;
        toolchain
            .link(&[&driver, &obj], &exe)
            .map_err(|message| Outcome::Error {
                phase: Phase::Link,
                message,
            })?;
        Ok(Linked {
            toolchain,
            exe,
            big_endian: arch.big_endian(),
            programs: programs.into_iter().zip(tramp_starts).collect(),
            code,
            _dir: dir,
        })
    }

    /// The call for run line `run` of batch case `k`.
    pub fn call(&self, k: usize, case: &TestCase, run: usize) -> Call {
        let (program, tramp_start) = &self.programs[k];
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
            tramp: tramp_start + entry,
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
            input.push_str(&format!("{i} {} {rets_len} {hex}\n", c.tramp));
        }
        let mut cmd = self.toolchain.command(&self.exe);
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

    /// `T` line fields after the run index: signo, function index, offset.
    fn fault(&self, nums: &[i64]) -> Outcome {
        let (signo, func, off) = match nums {
            [s, f, o] => (*s as i32, *f, *o as u64),
            _ => {
                return Outcome::Crash {
                    signal: "unknown".into(),
                    detail: "malformed fault report".into(),
                };
            }
        };
        let info = usize::try_from(func).ok().and_then(|f| self.code.get(f));
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

fn table_order(defined: &[Defined]) -> impl Iterator<Item = &(cranelift_module::FuncId, CodeInfo)> {
    // Case functions of all cases first, then all trampolines: the driver's table layout.
    let funcs = defined
        .iter()
        .flat_map(|d| d.code.iter().filter(|(id, _)| !d.tramps.contains(id)));
    let tramps = defined
        .iter()
        .flat_map(|d| d.code.iter().filter(|(id, _)| d.tramps.contains(id)));
    funcs.chain(tramps)
}

/// `clif_diff_table = { nfuncs, ntramps, funcs..., tramps... }`.
fn define_table(module: &mut ObjectModule, defined: &[Defined]) -> Result<(), Outcome> {
    let err = |e: cranelift_module::ModuleError| Outcome::Error {
        phase: Phase::Compile,
        message: super::program::module_error_text(&e),
    };
    let ptr = module.isa().pointer_bytes() as usize;
    let big = module.isa().endianness() == cranelift_codegen::ir::Endianness::Big;
    let all: Vec<cranelift_module::FuncId> = table_order(defined).map(|(id, _)| *id).collect();
    let ntramps: usize = defined.iter().map(|d| d.tramps.len()).sum();
    let mut desc = DataDescription::new();
    let mut init = vec![0u8; ptr * (2 + all.len())];
    let word = |v: u64| {
        let b = if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        if big {
            b[8 - ptr..].to_vec()
        } else {
            b[..ptr].to_vec()
        }
    };
    init[..ptr].copy_from_slice(&word((all.len() - ntramps) as u64));
    init[ptr..2 * ptr].copy_from_slice(&word(ntramps as u64));
    desc.define(init.into_boxed_slice());
    desc.set_align(ptr as u64);
    for (i, id) in all.iter().enumerate() {
        let f = module.declare_func_in_data(*id, &mut desc);
        desc.write_function_addr(((2 + i) * ptr) as u32, f);
    }
    let table = module
        .declare_data("clif_diff_table", Linkage::Export, false, false)
        .map_err(err)?;
    module.define_data(table, &desc).map_err(err)
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
