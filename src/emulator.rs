//! What the user-mode emulator (qemu) can execute for a foreign target.
//!
//! Foreign object files run under `qemu-<arch>`. Code for an ISA extension the emulator does not
//! implement dies of SIGILL there, which says nothing about Cranelift — so, as for host CPU
//! features ([`crate::target::host_lacks`]), such a configuration is compiled but not run, and its
//! engines report `Skipped` with the reason. Extensions the emulator implements but leaves off by
//! default are switched on through `QEMU_CPU` instead.
//!
//! The knowledge is data, checked against the emulator's reported version: an entry applies only
//! while the installed qemu is older than the release that added the extension.

use crate::target::Arch;
use std::process::Command;
use std::sync::OnceLock;

/// A qemu release, (major, minor).
type Version = (u32, u32);

/// (architecture, Cranelift ISA flag, extension, first qemu release that executes it).
/// `None`: no qemu release known to this table executes it.
const MISSING: &[(Arch, &str, &str, Option<Version>)] = &[
    (Arch::Riscv64, "has_zfa", "Zfa", Some((8, 1))),
    (Arch::Riscv64, "has_zcb", "Zcb", Some((8, 1))),
    (Arch::Riscv64, "has_zcd", "Zcd", Some((8, 1))),
    (Arch::Riscv64, "has_zicond", "Zicond", Some((8, 1))),
    (Arch::Riscv64, "has_zvbb", "Zvbb", Some((8, 2))),
    // Implemented by qemu but off by default, and not switched on by [`cpu`].
    (Arch::Riscv64, "has_zfh", "Zfh, off in this qemu", None),
    (
        Arch::Riscv64,
        "has_zfhmin",
        "Zfhmin, off in this qemu",
        None,
    ),
    (
        Arch::S390x,
        "has_mie4",
        "z17 miscellaneous-instruction-extensions 4",
        None,
    ),
    (
        Arch::S390x,
        "has_vxrs_ext3",
        "z17 vector-enhancements 3",
        None,
    ),
];

/// `QEMU_CPU` for `arch`: the extensions Cranelift can use that qemu implements but does not
/// enable by default. A user's own `QEMU_CPU` wins. Property names change between qemu releases
/// (7.2 spells `Zfh`, later ones `zfh`), so this is given only for the releases it was tried on.
pub fn cpu(arch: Arch) -> Option<&'static str> {
    match (arch, version(arch)) {
        (Arch::Riscv64, Some((7..=8, _))) => Some("rv64,v=true,vlen=128,elen=64,zbkb=true"),
        _ => None,
    }
}

/// The enabled ISA flags (of `flags`, the names of those set to true) that the emulator for
/// `arch` cannot execute, each with a one-line reason.
pub fn lacks<'a>(arch: Arch, flags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let version = version(arch);
    flags
        .into_iter()
        .filter_map(|flag| {
            let (_, _, ext, since) = MISSING.iter().find(|(a, f, ..)| *a == arch && *f == flag)?;
            let missing = match (since, version) {
                (None, _) | (_, None) => true,
                (Some(since), Some(v)) => v < *since,
            };
            missing.then(|| format!("{flag} ({ext})"))
        })
        .collect()
}

/// The emulator's name for `arch` in messages, with its version when known.
pub fn describe(arch: Arch) -> String {
    match version(arch) {
        Some((a, b)) => format!("qemu-{} {a}.{b}", arch.name()),
        None => format!("qemu-{}", arch.name()),
    }
}

/// The installed emulator's (major, minor) version, asked once per architecture.
fn version(arch: Arch) -> Option<Version> {
    static CACHE: OnceLock<Vec<(Arch, Option<Version>)>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x]
            .into_iter()
            .filter(|a| *a != Arch::host())
            .map(|a| (a, ask_version(a)))
            .collect()
    });
    all.iter().find(|(a, _)| *a == arch).and_then(|(_, v)| *v)
}

fn ask_version(arch: Arch) -> Option<Version> {
    let tc = crate::toolchain::Toolchain::for_arch(arch).ok()?;
    let out = Command::new(tc.runner?).arg("--version").output().ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

/// `qemu-riscv64 version 7.2.22 (Debian …)` → (7, 2).
fn parse_version(text: &str) -> Option<Version> {
    let v = text.split("version ").nth(1)?.split_whitespace().next()?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_qemus_banner() {
        assert_eq!(
            parse_version("qemu-riscv64 version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"),
            Some((7, 2))
        );
        assert_eq!(parse_version("qemu-s390x version 10.0.2\n"), Some((10, 0)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn only_listed_extensions_are_lacking() {
        let l = lacks(Arch::Riscv64, ["has_m", "has_zba", "has_zicond"]);
        // Whatever qemu is installed, the base and Zba are never listed; Zicond is listed unless
        // this qemu is new enough to run it.
        assert!(l.iter().all(|r| r.starts_with("has_zicond")), "{l:?}");
        if version(Arch::Riscv64).is_some_and(|v| v < (8, 1)) {
            assert_eq!(l, ["has_zicond (Zicond)"]);
        }
    }
}
