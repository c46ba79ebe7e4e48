//! Coverage map: which of Cranelift's ISLE rules, opcodes and relocations a campaign reaches.
//!
//! ```text
//!  cargo-fuzz build ──► campaign whose workers ──► merge ──► symbolize ──► map ──► Markdown,
//!  (sancov counters      are that build            dumps     (DWARF of    (rules,   JSON, SVG,
//!   + PC table)          (CLIF_DIFF_EXE)                     the build)   dirs)     --diff
//! ```
//!
//! The instrumented binary is the cargo-fuzz `differential` target, which CI builds anyway: it
//! has SanitizerCoverage counters on every crate, Cranelift's included, and line tables. Started
//! as `differential worker` with [`worker::DIR_VAR`] set, it serves sandbox requests like
//! `clif-diff worker` and records ([`sancov`], [`worker`]). An ordinary campaign drives it, so
//! the map shows what a campaign reaches, engines, qemu and all. No LLVM tool is involved:
//! Debian's `llvm-profdata` cannot read rustc 1.95's profiles and the `llvm-tools` component is
//! not installable here, while the PC table plus DWARF (read with `addr2line`) need nothing but
//! crates.io.
//!
//! [`isle`] maps a PC to the ISLE rule whose right-hand side it executes, using the
//! `// Rule at FILE line N.` comments of the generated code; [`map`] builds the
//! [`map::CoverageMap`] and compares it with a baseline; [`render`] writes it.

pub mod isle;
pub mod map;
pub mod render;
pub mod sancov;
pub mod symbols;
pub mod worker;

use std::path::{Path, PathBuf};

/// Where `cargo +nightly fuzz build -O` leaves the `differential` target for the crate at
/// `root`: under `$CARGO_TARGET_DIR` when that is set (cargo-fuzz builds there too), else under
/// `root/fuzz/target`.
pub fn default_instrumented_binary(root: &Path) -> PathBuf {
    let dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root.join(d),
        None => root.join("fuzz/target"),
    };
    dir.join("x86_64-unknown-linux-gnu/release/differential")
}
