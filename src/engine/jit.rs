//! `cranelift-jit`: compile into memory, finalize (apply relocations), run in a forked child.
//!
//! On a foreign target the JIT still compiles and finalizes — relocation processing is where the
//! seed bug lived, and it runs on the host whatever the target — but the code is not executed.

use super::memory::{SharedMemoryProvider, SharedView};
use super::native::{self, ChildEnd, Tramp};
use super::program::{CodeInfo, Program, SLOT, trap_at};
use super::runner;
use super::{EngineSpec, JitMemory, JitRunner, RunOptions, catch, report_all};
use crate::case::TestCase;
use crate::outcome::{Outcome, Phase};
use crate::target::{Arch, build_isa, case_arch};
use crate::value::Val;
use cranelift_jit::{JITBuilder, JITModule};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Symbol prefix inside the JIT module.
const PREFIX: &str = "cd_";

pub fn run(
    case: &TestCase,
    spec: &EngineSpec,
    opts: &RunOptions,
    runs: Range<usize>,
    report: &mut dyn FnMut(usize, Outcome),
) {
    let t0 = std::time::Instant::now();
    match compile(case, spec, opts) {
        Err(o) => report_all(runs, o, report),
        Ok(mut jit) => {
            // Lines that cannot run say why now; the others run together in forked children.
            let mut ready = Vec::new();
            for i in runs {
                match jit.prepare(case, i) {
                    Ok(p) => ready.push((i, p)),
                    Err(o) => report(i, o),
                }
            }
            let planted_crash = opts
                .faults
                .jit_crash_on
                .as_ref()
                .is_some_and(|op| case.functions.iter().any(|f| super::has_opcode(f, op)));
            let calls: Vec<native::Call> = ready
                .iter()
                .map(|(_, (entry, args, rets_len))| native::Call {
                    tramp: if planted_crash {
                        planted_segv
                    } else {
                        // SAFETY: the address is a finalized trampoline of this module.
                        unsafe { std::mem::transmute::<*const u8, Tramp>(jit.tramps[*entry]) }
                    },
                    args,
                    rets_len: *rets_len,
                })
                .collect();
            let timeout = Duration::from_millis(opts.timeout_ms);
            let t1 = std::time::Instant::now();
            // SAFETY: every call is a finalized trampoline with the trampoline signature, in the
            // module's memory or (a planted crash) in this binary.
            let persistent = jit.shared.as_ref().map(|view| unsafe {
                runner::call_all(
                    &view.lock().unwrap_or_else(|e| e.into_inner()),
                    &calls,
                    timeout,
                )
            });
            let ends = match persistent {
                Some(Ok(ends)) => ends,
                // A forked child sees the module as the runner would (its shared writable
                // memory aside, which only a call after a crash in the same case could tell).
                // SAFETY: as above.
                Some(Err(_)) | None => unsafe { native::call_forked_all(&calls, timeout) },
            };
            if crate::fuzzing::timing() {
                eprintln!(
                    "clif-diff timing: jit-compile {:?}\nclif-diff timing: jit-run {:?}",
                    t1 - t0,
                    t1.elapsed()
                );
            }
            for ((i, (entry, _, _)), end) in ready.iter().zip(ends) {
                report(*i, jit.outcome(*entry, end, opts));
            }
            jit.free();
        }
    }
}

/// Test-only: what JIT code that writes through a null pointer does (`jit-crash-on`).
unsafe extern "C" fn planted_segv(_args: *const u8, _rets: *mut u8) {
    // SAFETY: deliberately not: this runs in a forked child, whose SIGSEGV the parent classifies.
    unsafe { std::ptr::null_mut::<u8>().write_volatile(1) };
}

struct Compiled {
    module: Option<JITModule>,
    program: Program,
    /// Trampoline addresses, by entry.
    tramps: Vec<*const u8>,
    /// (start address, code info) of every compiled function.
    code: Vec<(u64, CodeInfo)>,
    foreign: bool,
    /// The module's memory as the persistent runner maps it, when that runs the code.
    shared: Option<Arc<Mutex<SharedView>>>,
}

impl Compiled {
    fn free(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: no code from this module runs any more; children that ran it are gone.
            unsafe { m.free_memory() };
        }
    }

    /// A run line's entry, argument buffer and result size, or why it does not run here.
    fn prepare(&self, case: &TestCase, i: usize) -> Result<(usize, Vec<u8>, usize), Outcome> {
        if self.foreign {
            return Err(Outcome::Unsupported {
                reason: "foreign-ISA JIT is compiled and finalized, not run".into(),
            });
        }
        if let Some(reason) = crate::target::host_lacks_reason(case) {
            return Err(Outcome::Skipped { reason });
        }
        let entry = self.program.run_entry[i];
        let sig = &self.program.funcs[self.program.entries[entry]].1.signature;
        let mut args = vec![0u8; SLOT * sig.params.len().max(1)];
        for (k, v) in case.runs[i].args.iter().enumerate() {
            let b = v.to_bytes(cfg!(target_endian = "big"));
            args[k * SLOT..k * SLOT + b.len()].copy_from_slice(&b);
        }
        Ok((entry, args, SLOT * sig.returns.len().max(1)))
    }

    /// The outcome of a run line of `entry` from how its call ended.
    fn outcome(&self, entry: usize, end: ChildEnd, opts: &RunOptions) -> Outcome {
        let sig = &self.program.funcs[self.program.entries[entry]].1.signature;
        match end {
            ChildEnd::Returned(bytes) => {
                let values = sig
                    .returns
                    .iter()
                    .enumerate()
                    .map(|(k, r)| {
                        Val::from_bytes(
                            r.value_type,
                            &bytes[k * SLOT..],
                            cfg!(target_endian = "big"),
                        )
                    })
                    .collect::<Option<Vec<_>>>();
                match values {
                    Some(values) => Outcome::Returned { values },
                    None => Outcome::Unsupported {
                        reason: "result type not supported by clif-diff".into(),
                    },
                }
            }
            ChildEnd::Signal { signo, pc } => {
                let funcs: Vec<(u64, &CodeInfo)> = self.code.iter().map(|(a, c)| (*a, c)).collect();
                match trap_at(pc, &funcs) {
                    Some(code) => Outcome::Trap {
                        code: code.to_string(),
                    },
                    None => Outcome::Crash {
                        signal: native::signal_name(signo),
                        detail: describe_pc(pc, &self.code),
                    },
                }
            }
            ChildEnd::Killed { signo } => Outcome::Crash {
                signal: native::signal_name(signo),
                detail: "killed".into(),
            },
            ChildEnd::Exited { code } => Outcome::Crash {
                signal: "exit".into(),
                detail: format!("child exited with status {code}"),
            },
            ChildEnd::Timeout => Outcome::Timeout {
                limit: format!("{} ms", opts.timeout_ms),
            },
        }
    }
}

/// `pc=0x… (in cd_foo+0x12)` — enough to find the instruction in a disassembly.
pub fn describe_pc(pc: u64, code: &[(u64, CodeInfo)]) -> String {
    match code
        .iter()
        .find(|(start, info)| pc >= *start && pc < start + info.size as u64)
    {
        Some((start, info)) => format!("in {}+{:#x}", info.symbol, pc - start),
        None => "outside generated code".into(),
    }
}

fn compile(case: &TestCase, spec: &EngineSpec, opts: &RunOptions) -> Result<Compiled, Outcome> {
    let setup_err = |e: anyhow::Error| Outcome::Error {
        phase: Phase::Setup,
        message: format!("{e:#}"),
    };
    let arch = case_arch(case).map_err(setup_err)?;
    if case.data.iter().any(|d| d.tls) {
        // A documented gap, not a finding: `JITModule::declare_data` asserts `!tls`.
        return Err(Outcome::Unsupported {
            reason: "thread-local data: cranelift-jit has no TLS (\"JIT doesn't yet support TLS\")"
                .into(),
        });
    }
    let foreign = arch != Arch::host();
    let mut overrides: Vec<(&str, &str)> =
        vec![("is_pic", "false"), ("use_colocated_libcalls", "false")];
    overrides.extend(spec.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let isa = build_isa(case, &overrides).map_err(setup_err)?;
    let mut program = Program::plan(case, PREFIX)?;
    program.planted_panic = opts.faults.jit_compile_panic_on.clone();

    let mut shared = None;
    let mut module = catch(Phase::Setup, || {
        let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        // x64 callers of `sarg` functions copy the struct with a `memcpy` libcall, and cases
        // call all four memory libcalls explicitly.
        builder.symbol("memcpy", libc::memcpy as *const u8);
        builder.symbol("memmove", libc::memmove as *const u8);
        builder.symbol("memset", libc::memset as *const u8);
        builder.symbol("memcmp", libc::memcmp as *const u8);
        // The math libcalls, from libm by link rather than by whatever the process happens to
        // have loaded (a test binary has no libm of its own).
        for (name, f) in libm::symbols() {
            builder.symbol(name, f);
        }
        // x64 lowers some shuffles without SSSE3 to a libcall its embedder provides.
        #[cfg(target_arch = "x86_64")]
        builder.symbol("__cranelift_x86_pshufb", x86_pshufb as *const u8);
        if opts.jit_runner == JitRunner::Persistent && !foreign {
            let (provider, view) = SharedMemoryProvider::new(opts.jit_memory == JitMemory::Far)?;
            shared = Some(view);
            builder.memory_provider(Box::new(provider));
        } else {
            builder.memory_provider(super::memory::provider(opts.jit_memory)?);
        }
        Ok::<_, std::io::Error>(JITModule::new(builder))
    })?
    .map_err(|e| Outcome::Error {
        phase: Phase::Setup,
        message: e.to_string(),
    })?;

    let defined = match catch(Phase::Compile, || program.define(&mut module, PREFIX)) {
        Ok(Ok(d)) => d,
        Ok(Err(o)) | Err(o) => {
            // SAFETY: nothing from this module has run.
            unsafe { module.free_memory() };
            return Err(o);
        }
    };
    let finalized = catch(Phase::Finalize, || {
        module
            .finalize_definitions()
            .map_err(|e| super::program::module_error_text(&e))
    });
    match finalized {
        Ok(Ok(())) => {}
        Ok(Err(message)) => {
            return Err(Outcome::Error {
                phase: Phase::Finalize,
                message,
            });
        }
        // A panic mid-relocation leaves the module half-patched: leak it rather than free
        // memory the provider may be inconsistent about.
        Err(o) => return Err(o),
    }
    let tramps = defined
        .tramps
        .iter()
        .map(|id| module.get_finalized_function(*id))
        .collect();
    let code = defined
        .code
        .iter()
        .map(|(id, info)| (module.get_finalized_function(*id) as u64, info.clone()))
        .collect();
    Ok(Compiled {
        module: Some(module),
        program,
        tramps,
        code,
        foreign,
        shared,
    })
}

mod libm {
    #[link(name = "m")]
    unsafe extern "C" {
        fn ceilf(x: f32) -> f32;
        fn ceil(x: f64) -> f64;
        fn floorf(x: f32) -> f32;
        fn floor(x: f64) -> f64;
        fn truncf(x: f32) -> f32;
        fn trunc(x: f64) -> f64;
        fn nearbyintf(x: f32) -> f32;
        fn nearbyint(x: f64) -> f64;
        fn fmaf(x: f32, y: f32, z: f32) -> f32;
        fn fma(x: f64, y: f64, z: f64) -> f64;
    }

    /// The names `cranelift_module::default_libcall_names` gives the math libcalls, and where
    /// they are.
    pub fn symbols() -> [(&'static str, *const u8); 10] {
        [
            ("ceilf", ceilf as *const u8),
            ("ceil", ceil as *const u8),
            ("floorf", floorf as *const u8),
            ("floor", floor as *const u8),
            ("truncf", truncf as *const u8),
            ("trunc", trunc as *const u8),
            ("nearbyintf", nearbyintf as *const u8),
            ("nearbyint", nearbyint as *const u8),
            ("fmaf", fmaf as *const u8),
            ("fma", fma as *const u8),
        ]
    }
}

/// `pshufb` for x64 code compiled without SSSE3 (`LibCall::X86Pshufb`): the embedder provides it,
/// as upstream's test runner does; the object driver defines the same in C.
#[cfg(target_arch = "x86_64")]
// `__m128i` travels in an xmm register under System V, which is how Cranelift calls it.
#[allow(improper_ctypes_definitions)]
extern "C" fn x86_pshufb(
    a: std::arch::x86_64::__m128i,
    b: std::arch::x86_64::__m128i,
) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::__m128i;
    // SAFETY: `__m128i` and `[u8; 16]` have the same size and no invalid bit patterns.
    let bytes = |v: __m128i| unsafe { std::mem::transmute::<__m128i, [u8; 16]>(v) };
    let r = super::libcalls::pshufb(bytes(a), bytes(b));
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 16], __m128i>(r) }
}
