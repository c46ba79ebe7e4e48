//! What one engine observed for one run line.
//!
//! Every way an execution can end is a value here, including the ways that would otherwise take
//! the harness down (panics, signals, hangs): the oracle and the findings store only ever see
//! `Outcome`s, never errors.

use crate::value::{Val, display_list};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The stage of an engine's pipeline an outcome comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading the case, building the ISA and the module.
    Setup,
    /// `define_function` / code generation.
    Compile,
    /// `finalize_definitions` (relocations) or object emission.
    Finalize,
    /// The system linker.
    Link,
    /// Executing the compiled code or interpreting it.
    Run,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Setup => "setup",
            Phase::Compile => "compile",
            Phase::Finalize => "finalize",
            Phase::Link => "link",
            Phase::Run => "run",
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Returned {
        values: Vec<Val>,
    },
    /// A Cranelift trap, by trap code name (`int_divz`, `user1`, ...).
    Trap {
        code: String,
    },
    /// A reported error (`Err`), e.g. a verifier or codegen error, a linker failure.
    Error {
        phase: Phase,
        message: String,
    },
    /// A Rust panic inside Cranelift or the harness.
    Panic {
        phase: Phase,
        message: String,
        /// `crate/src/file.rs:line`, without version or registry path.
        location: String,
    },
    /// Native code died on a signal that is not a Cranelift trap.
    Crash {
        signal: String,
        detail: String,
    },
    /// A limit ran out: wall-clock time natively, fuel (instructions) in the interpreter.
    Timeout {
        limit: String,
    },
    /// The execution exceeded its memory limit.
    Oom,
    /// The engine cannot run this case by design (not a finding): the interpreter under settings
    /// overrides, a foreign JIT (compiled and finalized, never executed).
    Unsupported {
        reason: String,
    },
    /// The engine could run this case, but not on this machine: a missing cross compiler or
    /// emulator, a host CPU without an ISA feature the case enables. Never agreement: replay
    /// reports it as SKIPPED and a nightly that asked for the engine fails.
    Skipped {
        reason: String,
    },
}

impl Outcome {
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Outcome::Unsupported { .. })
    }

    pub fn is_skipped(&self) -> bool {
        matches!(self, Outcome::Skipped { .. })
    }

    /// The engine produced no observation to compare (by design or for want of a tool).
    pub fn did_not_run(&self) -> bool {
        matches!(self, Outcome::Unsupported { .. } | Outcome::Skipped { .. })
    }

    /// Short kind name used in buckets and tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Returned { .. } => "returned",
            Outcome::Trap { .. } => "trap",
            Outcome::Error { .. } => "error",
            Outcome::Panic { .. } => "panic",
            Outcome::Crash { .. } => "crash",
            Outcome::Timeout { .. } => "timeout",
            Outcome::Oom => "oom",
            Outcome::Unsupported { .. } => "unsupported",
            Outcome::Skipped { .. } => "skipped",
        }
    }

    pub fn panic_here(phase: Phase, message: String, location: String) -> Outcome {
        Outcome::Panic {
            phase,
            message,
            location: normalize_location(&location),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Returned { values } if values.is_empty() => write!(f, "returned ()"),
            Outcome::Returned { values } => write!(f, "{}", display_list(values)),
            Outcome::Trap { code } => write!(f, "trap {code}"),
            Outcome::Error { phase, message } => {
                write!(f, "{phase} error: {}", first_line(message))
            }
            Outcome::Panic {
                phase,
                message,
                location,
            } => write!(f, "panic in {phase} at {location}: {}", first_line(message)),
            Outcome::Crash { signal, detail } => write!(f, "crash {signal} {detail}"),
            Outcome::Timeout { limit } => write!(f, "timeout ({limit})"),
            Outcome::Oom => write!(f, "out of memory"),
            Outcome::Unsupported { reason } => write!(f, "unsupported: {reason}"),
            Outcome::Skipped { reason } => write!(f, "skipped: {reason}"),
        }
    }
}

/// One line per outcome of a row, for tables. Where two outcomes print alike but are not the
/// same — values of different types, `0` as an `i8` and `0` as an `i64` — every value of the
/// row is printed with its type, so the difference shows.
pub fn display_row(row: &[Outcome]) -> Vec<String> {
    let plain: Vec<String> = row
        .iter()
        .map(|o| first_line(&o.to_string()).to_string())
        .collect();
    let alike_but_not_same = (0..row.len()).any(|i| {
        (0..i).any(|j| {
            plain[i] == plain[j]
                && !crate::oracle::same_outcome(&row[i], &row[j])
                && row[i].kind() == "returned"
        })
    });
    if !alike_but_not_same {
        return plain;
    }
    row.iter()
        .zip(plain)
        .map(|(o, p)| match o {
            Outcome::Returned { values } => {
                let v: Vec<String> = values.iter().map(|v| format!("{v}:{}", v.ty())).collect();
                match v.as_slice() {
                    [one] => one.clone(),
                    _ => format!("[{}]", v.join(", ")),
                }
            }
            _ => p,
        })
        .collect()
}

pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Strips the registry prefix and crate version from a panic location so buckets stay stable
/// across machines: `/root/.cargo/registry/src/x/cranelift-jit-0.135.8/src/compiled_blob.rs:142:21`
/// becomes `cranelift-jit/src/compiled_blob.rs:142`.
pub fn normalize_location(loc: &str) -> String {
    // Drop the column.
    let mut parts: Vec<&str> = loc.rsplitn(3, ':').collect();
    parts.reverse();
    let (file, line) = match parts.as_slice() {
        [file, line, _col] => (*file, *line),
        [file, line] => (*file, *line),
        _ => (loc, ""),
    };
    // The crate directory is the one holding `src/` (or `out/` for build-script output, whose
    // directory name ends in a hash rather than a version).
    let file = if let Some(src) = file.rfind("/src/") {
        let crate_dir = file[..src].rsplit('/').next().unwrap_or("");
        format!("{}{}", strip_version(crate_dir), &file[src..])
    } else if let Some(out) = file.rfind("/out/") {
        let build_dir = file[..out].rsplit('/').next().unwrap_or("");
        let name = build_dir.rsplit_once('-').map_or(build_dir, |(n, _)| n);
        format!("{name}{}", &file[out..])
    } else {
        file.to_string()
    };
    if line.is_empty() {
        file
    } else {
        format!("{file}:{line}")
    }
}

fn strip_version(dir: &str) -> &str {
    // `cranelift-jit-0.135.8` -> `cranelift-jit`: cut at the last `-` followed by a digit.
    match dir.rfind('-') {
        Some(i) if dir[i + 1..].starts_with(|c: char| c.is_ascii_digit()) => &dir[..i],
        _ => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_print_alike_show_their_types() {
        use crate::value::Val;
        let ret = |v: Val| Outcome::Returned { values: vec![v] };
        let row = [ret(Val::I8(0)), ret(Val::I64(0)), ret(Val::I64(0))];
        assert_eq!(display_row(&row), ["0:i8", "0:i64", "0:i64"]);
        let same = [ret(Val::I64(0)), ret(Val::I64(1))];
        assert_eq!(display_row(&same), ["0", "1"]);
    }

    #[test]
    fn locations_lose_registry_and_version() {
        assert_eq!(
            normalize_location(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cranelift-jit-0.135.8/src/compiled_blob.rs:142:21"
            ),
            "cranelift-jit/src/compiled_blob.rs:142"
        );
        assert_eq!(
            normalize_location("src/engine/jit.rs:10:5"),
            "src/engine/jit.rs:10"
        );
        assert_eq!(
            normalize_location(
                "/w/target/debug/build/cranelift-codegen-4f3e2a/out/isle_x64.rs:7:1"
            ),
            "cranelift-codegen/out/isle_x64.rs:7"
        );
    }
}
