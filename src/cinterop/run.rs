//! Building and running an interop batch: Cranelift object + generated C + `cc`, one program.
//!
//! This is worker-side code: it compiles with Cranelift, so it runs only inside a sandbox worker
//! (the parent calls [`crate::sandbox::Sandbox::run_abi`]), where a Cranelift crash that no
//! `catch_unwind` contains costs the batch one retry, never the harness.
//!
//! Each case's two Cranelift functions are first compiled alone, so a case Cranelift refuses
//! (an error or a panic) is reported as such and left out of the program instead of breaking the
//! link for the others. The program runs every case in turn; when it dies inside one, that case
//! is a crash and the program is restarted at the next case.

use super::clif;
use super::csrc::{self, CFaults};
use super::sig::AbiCase;
use crate::outcome::normalize_location;
use crate::panics::catch;
use crate::target::Arch;
use crate::toolchain::{Toolchain, scratch_dir};
use anyhow::{Context as _, Result, anyhow, bail};
use cranelift_codegen::Context;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_module::Module;
use cranelift_object::{ObjectBuilder, ObjectModule};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// One failed check, as the C side reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// `c->clif` (C calls Cranelift) or `clif->c` (Cranelift calls C).
    pub direction: String,
    /// `arg 3 (i16 sext)`, `ret 0 (i8 uext) extended to i64 by the caller`, ...
    pub item: String,
    pub expected: String,
    pub got: String,
}

/// What one signature's interop test found.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum AbiOutcome {
    /// Both directions passed every check.
    Agree {
        checks: u32,
    },
    Mismatch {
        mismatches: Vec<Mismatch>,
    },
    /// Cranelift refused the signature (error) or panicked on it.
    Refused {
        message: String,
    },
    /// The program died inside this case, or the worker died compiling it.
    Crash {
        detail: String,
    },
    Timeout,
}

impl AbiOutcome {
    /// A stable name for grouping findings: the known cause when `sig` has a known divergent
    /// shape, else the first differing item without its index.
    pub fn bucket(&self, sig: &super::AbiSig, arch: Arch) -> String {
        match self {
            AbiOutcome::Agree { .. } => "agree".into(),
            AbiOutcome::Mismatch { .. } if super::known::divergence(sig, arch).is_some() => {
                format!(
                    "abi-mismatch:{}",
                    super::known::divergence(sig, arch).unwrap()
                )
            }
            AbiOutcome::Mismatch { mismatches } => {
                let m = &mismatches[0];
                // The item without its index: `arg (i16 sext)`.
                let kind: String = m
                    .item
                    .split_whitespace()
                    .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
                    .collect::<Vec<_>>()
                    .join(" ");
                format!("abi-mismatch:{}:{kind}", m.direction)
            }
            AbiOutcome::Refused { message } => {
                format!("abi-refused:{}", crate::oracle::message_class(message))
            }
            AbiOutcome::Crash { .. } => "abi-crash".into(),
            AbiOutcome::Timeout => "abi-timeout".into(),
        }
    }
}

/// How to build and run interop batches.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AbiOptions {
    /// x86-64 natively, or aarch64, riscv64 or s390x through the cross gcc and qemu.
    pub arch: Arch,
    /// Settings applied to the Cranelift side (e.g. `opt_level=none`).
    pub settings: Vec<(String, String)>,
    pub faults: CFaults,
    /// Wall-clock limit of one case.
    pub timeout: Duration,
}

impl Default for AbiOptions {
    fn default() -> Self {
        AbiOptions {
            arch: Arch::X86_64,
            settings: Vec::new(),
            faults: CFaults::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

fn isa(opts: &AbiOptions) -> Result<OwnedTargetIsa> {
    let mut flags = settings::builder();
    flags.set("is_pic", "true")?;
    // `i128` in System V signatures is only implemented with LLVM's conventions.
    flags.set("enable_llvm_abi_extensions", "true")?;
    for (k, v) in &opts.settings {
        flags
            .set(k, v)
            .map_err(|e| anyhow!("setting `{k}={v}`: {e}"))?;
    }
    let builder =
        cranelift_codegen::isa::lookup(opts.arch.linux_triple()).map_err(|e| anyhow!("{e}"))?;
    Ok(builder.finish(settings::Flags::new(flags))?)
}

/// Compiles a case's two functions alone; the reason if Cranelift refuses either.
fn trial(isa: &OwnedTargetIsa, case: &AbiCase, faults: &CFaults) -> Option<String> {
    if faults.worker_dies_on.as_deref() == Some(case.sig.text().as_str()) {
        std::process::abort();
    }
    let result = catch(|| -> Result<(), String> {
        let builder = ObjectBuilder::new(
            isa.clone(),
            "trial",
            cranelift_module::default_libcall_names(),
        )
        .map_err(|e| e.to_string())?;
        let mut module = ObjectModule::new(builder);
        let d = clif::declare(&mut module, 0, case).map_err(|e| e.to_string())?;
        let mut ctx = Context::new();
        for f in [
            clif::callee(&mut module, &d, case),
            clif::caller(&mut module, &d, case),
        ] {
            ctx.clear();
            ctx.func = f;
            ctx.compile(&**isa, &mut Default::default())
                .map_err(|e| format!("{:?}", e.inner))?;
        }
        Ok(())
    });
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(p) => Some(format!(
            "panic at {}: {}",
            normalize_location(&p.location),
            p.message
        )),
    }
}

/// Runs the interop test of every case, reporting `(index, outcome)` as each is known; every
/// case is reported once unless this returns an error (no toolchain, the C side did not build).
pub fn run_cases_with(
    cases: &[AbiCase],
    opts: &AbiOptions,
    report: &mut dyn FnMut(usize, AbiOutcome),
) -> Result<()> {
    crate::panics::install_hook();
    let toolchain = Toolchain::for_arch(opts.arch)?;
    let isa = isa(opts)?;
    let mut good = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        if let Err(e) = case.sig.c_expressible(opts.arch) {
            bail!("case {k}: {} is not C-expressible: {e}", case.sig.text());
        }
    }
    for (k, case) in cases.iter().enumerate() {
        match trial(&isa, case, &opts.faults) {
            Some(message) => report(k, AbiOutcome::Refused { message }),
            None => good.push(k),
        }
    }
    let batch: Vec<AbiCase> = good.iter().map(|&k| cases[k].clone()).collect();
    if !batch.is_empty() {
        let program = build(&toolchain, &isa, &batch, opts)?;
        let mut start = 0;
        while start < batch.len() {
            start = program.run_from(start, &mut |b, o| report(good[b], o), opts)?;
        }
    }
    Ok(())
}

struct Program {
    toolchain: Toolchain,
    exe: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn build(
    toolchain: &Toolchain,
    isa: &OwnedTargetIsa,
    cases: &[AbiCase],
    opts: &AbiOptions,
) -> Result<Program> {
    let builder = ObjectBuilder::new(
        isa.clone(),
        "clif_diff_abi",
        cranelift_module::default_libcall_names(),
    )?;
    let mut module = ObjectModule::new(builder);
    let mut ctx = Context::new();
    for (k, case) in cases.iter().enumerate() {
        let d = clif::declare(&mut module, k, case)?;
        let callee = clif::callee(&mut module, &d, case);
        let caller = clif::caller(&mut module, &d, case);
        for (id, f) in [(d.callee, callee), (d.caller, caller)] {
            ctx.clear();
            ctx.func = f;
            module.define_function(id, &mut ctx)?;
        }
    }
    let bytes = module.finish().emit()?;
    let dir = tempfile::Builder::new()
        .prefix("abi-")
        .tempdir_in(scratch_dir()?)?;
    let obj = dir.path().join("clif.o");
    let src = dir.path().join("c.c");
    let exe = dir.path().join("abi");
    std::fs::write(&obj, bytes)?;
    std::fs::write(&src, csrc::source(cases, &opts.faults, opts.arch))?;
    // The C side is only checks and constants: no need to spend time optimising it.
    let mut cc = std::process::Command::new(&toolchain.cc);
    cc.args(["-O0", "-w", "-o"]).arg(&exe).arg(&src).arg(&obj);
    if toolchain.static_link {
        cc.arg("-static");
    }
    let out = cc
        .output()
        .with_context(|| format!("running {}", toolchain.cc))?;
    if !out.status.success() {
        bail!(
            "compiling the C side with {}: {}",
            toolchain.cc,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    Ok(Program {
        toolchain: toolchain.clone(),
        exe,
        _dir: dir,
    })
}

impl Program {
    /// Runs cases `start..` in one process; returns where the next process must start.
    fn run_from(
        &self,
        start: usize,
        report: &mut dyn FnMut(usize, AbiOutcome),
        opts: &AbiOptions,
    ) -> Result<usize> {
        let mut cmd = self.toolchain.command(&self.exe);
        cmd.arg(start.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().context("starting the interop program")?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut current: Option<usize> = None;
        let mut mismatches = Vec::new();
        let mut deadline = Instant::now() + opts.timeout;
        let mut next = start;
        let mut timed_out = false;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    let f: Vec<&str> = line.split('\t').collect();
                    match f.as_slice() {
                        ["S", k] => {
                            current = k.parse().ok();
                            mismatches.clear();
                            deadline = Instant::now() + opts.timeout;
                        }
                        ["M", _, dir, item, expected, got] => mismatches.push(Mismatch {
                            direction: dir.to_string(),
                            item: item.to_string(),
                            expected: expected.to_string(),
                            got: got.to_string(),
                        }),
                        ["D", k, checks] => {
                            let k: usize = k.parse()?;
                            report(
                                k,
                                if mismatches.is_empty() {
                                    AbiOutcome::Agree {
                                        checks: checks.parse()?,
                                    }
                                } else {
                                    AbiOutcome::Mismatch {
                                        mismatches: std::mem::take(&mut mismatches),
                                    }
                                },
                            );
                            current = None;
                            next = k + 1;
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
        if timed_out {
            let _ = child.kill();
        }
        let status = child.wait()?;
        if let Some(k) = current {
            use std::os::unix::process::ExitStatusExt;
            report(
                k,
                if timed_out {
                    AbiOutcome::Timeout
                } else {
                    AbiOutcome::Crash {
                        detail: match status.signal() {
                            Some(s) => crate::engine::native::signal_name(s),
                            None => format!("exit status {:?}", status.code()),
                        },
                    }
                },
            );
            next = k + 1;
        } else if next == start {
            bail!("the interop program answered nothing (status {status})");
        }
        Ok(next)
    }
}
