//! Turning a case's `set` and `target` lines into a `TargetIsa`.
//!
//! Engines need the case's own flags plus a few of their own (the JIT cannot use PIC, the object
//! path links into a PIE): [`build_isa`] applies the case's settings first and the engine's
//! overrides last, so overrides win and the case text stays the single source of truth.

use crate::case::TestCase;
use anyhow::{Result, anyhow};
use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use std::str::FromStr;
use target_lexicon::{Architecture, Triple};

/// The ISA families clif-diff knows how to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
    Riscv64,
    S390x,
}

impl Arch {
    pub fn of(triple: &Triple) -> Option<Arch> {
        Some(match triple.architecture {
            Architecture::X86_64 => Arch::X86_64,
            Architecture::Aarch64(_) => Arch::Aarch64,
            Architecture::Riscv64(_) => Arch::Riscv64,
            Architecture::S390x => Arch::S390x,
            _ => return None,
        })
    }

    pub fn host() -> Arch {
        Arch::of(&Triple::host()).expect("clif-diff runs on x86_64, aarch64, riscv64 or s390x")
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
        }
    }

    pub fn big_endian(self) -> bool {
        self == Arch::S390x
    }

    /// The Linux triple used to build ISAs and cross tools for this architecture.
    pub fn linux_triple(self) -> Triple {
        let s = match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-gnu",
            Arch::Riscv64 => "riscv64gc-unknown-linux-gnu",
            Arch::S390x => "s390x-unknown-linux-gnu",
        };
        Triple::from_str(s).unwrap()
    }
}

impl FromStr for Arch {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Arch> {
        let triple = Triple::from_str(s).map_err(|e| anyhow!("unknown target `{s}`: {e}"))?;
        Arch::of(&triple).ok_or_else(|| anyhow!("unsupported target `{s}`"))
    }
}

/// The triple a case targets: its `target` line, or the host.
pub fn case_triple(case: &TestCase) -> Result<Triple> {
    match &case.target {
        None => Ok(Triple::host()),
        Some(t) => {
            let name = t.split_whitespace().next().unwrap_or("");
            let mut triple =
                Triple::from_str(name).map_err(|e| anyhow!("unknown target `{name}`: {e}"))?;
            // A bare `target x86_64` leaves OS and environment unknown; clif-diff links with the
            // Linux toolchains, so fill them in the way `cc` would.
            if triple.operating_system == target_lexicon::OperatingSystem::Unknown
                && let Some(arch) = Arch::of(&triple)
            {
                let linux = arch.linux_triple();
                triple.operating_system = linux.operating_system;
                triple.environment = linux.environment;
                triple.binary_format = linux.binary_format;
            }
            Ok(triple)
        }
    }
}

pub fn case_arch(case: &TestCase) -> Result<Arch> {
    let triple = case_triple(case)?;
    Arch::of(&triple).ok_or_else(|| anyhow!("unsupported target `{triple}`"))
}

/// Builds the ISA for `case`, with `overrides` applied after the case's own settings.
pub fn build_isa(case: &TestCase, overrides: &[(&str, &str)]) -> Result<OwnedTargetIsa> {
    let triple = case_triple(case)?;
    let mut flags = settings::builder();
    // No target line means the host with its detected features, as `test run` does.
    let mut isa_builder = match &case.target {
        None => cranelift_native::builder().map_err(|e| anyhow!("host: {e}"))?,
        Some(_) => isa::lookup(triple.clone()).map_err(|e| anyhow!("target {triple}: {e}"))?,
    };
    let settings = case
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(overrides.iter().copied());
    for (k, v) in settings {
        // A flag unknown to the shared settings may be an ISA flag, as upstream allows; a known
        // shared flag with a bad value is an error about that value.
        let shared = if v.is_empty() {
            flags.enable(k)
        } else {
            flags.set(k, v)
        };
        if let Err(e @ (settings::SetError::BadValue(_) | settings::SetError::BadType)) = shared {
            return Err(anyhow!("setting `{k}={v}`: {e}"));
        }
        if shared.is_err() {
            let r = if v.is_empty() {
                isa_builder.enable(k)
            } else {
                isa_builder.set(k, v)
            };
            r.map_err(|e| anyhow!("setting `{k}`: {e}"))?;
        }
    }
    if let Some(t) = &case.target {
        for opt in t.split_whitespace().skip(1) {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            let r = if v.is_empty() {
                isa_builder.enable(k)
            } else {
                isa_builder.set(k, v)
            };
            r.map_err(|e| anyhow!("target flag `{opt}`: {e}"))?;
        }
    }
    isa_builder
        .finish(settings::Flags::new(flags))
        .map_err(|e| anyhow!("target {triple}: {e}"))
}

/// The host CPU's boolean ISA flags, as Cranelift detects them.
fn host_flags() -> &'static [(String, bool)] {
    static HOST: std::sync::OnceLock<Vec<(String, bool)>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        cranelift_native::builder()
            .ok()
            .and_then(|b| b.finish(settings::Flags::new(settings::builder())).ok())
            .map(|isa| {
                isa.isa_flags()
                    .iter()
                    .filter_map(|v| v.as_bool().map(|b| (v.name.to_string(), b)))
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The flags `isa` enables that the host CPU lacks.
fn lacking(isa: &dyn isa::TargetIsa) -> Vec<String> {
    let host = host_flags();
    isa.isa_flags()
        .iter()
        .filter(|v| v.as_bool() == Some(true))
        .filter(|v| host.iter().any(|(n, b)| n == v.name && !b))
        .map(|v| v.name.to_string())
        .collect()
}

/// ISA flags `case` enables that the host CPU lacks (empty for a foreign target, which never
/// runs natively). Code using them would die of SIGILL: not a Cranelift bug, so such a case is
/// compiled but not run (its engines report `Skipped`).
pub fn host_lacks(case: &TestCase) -> Vec<String> {
    if !case_arch(case).is_ok_and(|a| a == Arch::host()) {
        return Vec::new();
    }
    build_isa(case, &[])
        .map(|isa| lacking(&*isa))
        .unwrap_or_default()
}

/// Whether the host can run code for `arch` with the ISA flags `flags` (a `target` line's
/// flag list, e.g. `has_avx2 has_bmi2`): the generator draws only such sets for native runs.
pub fn host_runs(arch: Arch, flags: &str) -> bool {
    if arch != Arch::host() {
        return true;
    }
    let Ok(mut b) = isa::lookup(arch.linux_triple()) else {
        return false;
    };
    for f in flags.split_whitespace() {
        if b.enable(f).is_err() {
            return false;
        }
    }
    b.finish(settings::Flags::new(settings::builder()))
        .is_ok_and(|isa| lacking(&*isa).is_empty())
}

/// The [`crate::outcome::Outcome::Skipped`] reason for a case whose code this machine cannot
/// execute: ISA flags the host CPU lacks (see [`host_lacks`]), or, for a foreign target, flags
/// the emulator does not implement (see [`crate::emulator`]).
pub fn host_lacks_reason(case: &TestCase) -> Option<String> {
    let lacks = host_lacks(case);
    if !lacks.is_empty() {
        return Some(format!(
            "this CPU lacks {} (compiled, not run)",
            lacks.join(", ")
        ));
    }
    let arch = case_arch(case).ok().filter(|a| *a != Arch::host())?;
    let isa = build_isa(case, &[]).ok()?;
    let flags = isa.isa_flags();
    let enabled = flags
        .iter()
        .filter(|v| v.as_bool() == Some(true))
        .map(|v| v.name);
    let lacks = crate::emulator::lacks(arch, enabled);
    (!lacks.is_empty()).then(|| {
        format!(
            "{} cannot execute {} (compiled, not run)",
            crate::emulator::describe(arch),
            lacks.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(target: &str) -> TestCase {
        TestCase::parse(&format!(
            "test run\ntarget {target}\n\nfunction %f() {{\nblock0:\n    return\n}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn overrides_reach_the_isa_flags() {
        use cranelift_codegen::settings::{OptLevel, RegallocAlgorithm};
        let c = case("x86_64");
        let isa = build_isa(&c, &[("opt_level", "none")]).unwrap();
        assert_eq!(isa.flags().opt_level(), OptLevel::None);
        let isa = build_isa(&c, &[("opt_level", "speed_and_size")]).unwrap();
        assert_eq!(isa.flags().opt_level(), OptLevel::SpeedAndSize);
        let isa = build_isa(&c, &[("regalloc_algorithm", "single_pass")]).unwrap();
        assert_eq!(
            isa.flags().regalloc_algorithm(),
            RegallocAlgorithm::SinglePass
        );
        // Later overrides win over the case's own `set` lines.
        let mut c = case("aarch64");
        c.set_setting("opt_level", "speed");
        let isa = build_isa(&c, &[("opt_level", "none")]).unwrap();
        assert_eq!(isa.flags().opt_level(), OptLevel::None);
    }

    #[test]
    fn the_hosts_own_features_are_never_lacking() {
        // No target line: the host with its detected features.
        let host =
            TestCase::parse("test run\n\nfunction %f() {\nblock0:\n    return\n}\n").unwrap();
        assert!(host_lacks(&host).is_empty());
        // A foreign target never runs natively.
        assert!(host_lacks(&case("aarch64 has_lse")).is_empty());
        assert!(host_runs(Arch::Aarch64, "has_lse"));
        // The baseline always runs; a flag set is runnable exactly when nothing is lacking.
        assert!(host_runs(Arch::host(), ""));
        if Arch::host() == Arch::X86_64 {
            let avx2 = case("x86_64 has_avx has_avx2");
            assert_eq!(
                host_runs(Arch::X86_64, "has_avx has_avx2"),
                host_lacks(&avx2).is_empty()
            );
        }
    }

    #[test]
    fn a_bad_value_is_named_as_such() {
        let e = build_isa(&case("x86_64"), &[("opt_level", "fastest")])
            .err()
            .unwrap();
        assert!(e.to_string().contains("opt_level=fastest"), "{e}");
        let e = build_isa(&case("x86_64"), &[("no_such_flag", "1")])
            .err()
            .unwrap();
        assert!(e.to_string().contains("no_such_flag"), "{e}");
    }
}
