//! Running a linked program: call requests in, answers out, faults classified.

use super::{Call, Linked};
use crate::engine::RunOptions;
use crate::engine::program::{SLOT, trap_at};
use crate::outcome::{Outcome, Phase};
use crate::value::Val;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static PROGRAM_STARTS: AtomicU64 = AtomicU64::new(0);

/// Linked programs started by this process so far (traps do not cost one; crashes do).
pub fn program_starts() -> u64 {
    PROGRAM_STARTS.load(Ordering::Relaxed)
}

impl Linked {
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
        // stderr is only read for an emulator's own crash report (see `emulator_crash`).
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
        let stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                if text.len() < 4096 {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
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
        let stderr = errors.join().unwrap_or_default();
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
                let emulator = self.toolchain.runner.as_deref();
                match status.ok().and_then(|s| s.signal()) {
                    Some(_) if let Some(why) = emulator_crash(emulator, &stderr) => {
                        Outcome::Skipped { reason: why }
                    }
                    Some(sig) => Outcome::Crash {
                        signal: crate::engine::native::signal_name(sig),
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
            signal: crate::engine::native::signal_name(signo),
            detail: match info {
                Some(i) if off < i.size as u64 => format!("in {}+{off:#x}", i.symbol),
                _ => "outside generated code".into(),
            },
        }
    }
}

/// The emulator's own failure, when `stderr` shows that it (not the emulated program) died: qemu
/// reports a failed internal assertion as `qemu-riscv64: …/translate.c:213: …: Assertion … failed`
/// and aborts. The code was never run, so the engine did not run: a skip with the reason, never a
/// Cranelift crash.
fn emulator_crash(runner: Option<&str>, stderr: &str) -> Option<String> {
    let runner = runner?;
    let name = std::path::Path::new(runner).file_name()?.to_string_lossy();
    let line = stderr.lines().find(|l| {
        (l.starts_with(&format!("{name}:")) || l.starts_with("qemu-")) && l.contains("Assertion")
    })?;
    Some(format!(
        "the emulator crashed running the code (an emulator bug, not Cranelift's): {}",
        crate::outcome::first_line(line)
    ))
}

/// Native programs get a memory limit and no core dumps; qemu needs its own large reservations,
/// so emulated programs only lose core dumps. Both die with the process that runs them. The
/// driver sets these itself (`limit_self` in `driver.c`) from its environment: a `pre_exec` hook
/// would make the spawn a full fork of this process, which for an instrumented fuzzer costs as
/// much as running the case.
fn limit_child(cmd: &mut std::process::Command, native: bool) {
    const AS_LIMIT: u64 = 1 << 30;
    cmd.env("CLIF_DIFF_PARENT", std::process::id().to_string());
    if native {
        cmd.env("CLIF_DIFF_AS_LIMIT", AS_LIMIT.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::emulator_crash;

    #[test]
    fn only_the_emulators_own_assertion_is_its_crash() {
        let qemu = "qemu-riscv64: ../../target/riscv/translate.c:213: decode_save_opc: Assertion `ctx->insn_start != NULL' failed.\n";
        let why = emulator_crash(Some("qemu-riscv64"), qemu).unwrap();
        assert!(why.contains("decode_save_opc"), "{why}");
        // The same text from a native program, or an emulated program's own abort, is not.
        assert_eq!(emulator_crash(None, qemu), None);
        assert_eq!(
            emulator_crash(
                Some("qemu-riscv64"),
                "qemu: uncaught target signal 6 (Aborted)\n"
            ),
            None
        );
    }
}
