//! What the cargo-fuzz build (ASan, the default sanitizer) runs with: both targets carry
//! clif-diff's AddressSanitizer defaults (`clif_diff::fuzzing::ASAN_DEFAULT_OPTIONS`), and
//! `ASAN_OPTIONS` still overrides them, as ClusterFuzz's own settings must.
//!
//! `#[ignore]`d for a bare `cargo test`: it needs the cargo-fuzz build, which `scripts/test.sh`
//! makes (`scripts/fuzz-smoke.sh`) before running it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn targets() -> Vec<PathBuf> {
    let differential =
        clif_diff::coverage::default_instrumented_binary(Path::new(env!("CARGO_MANIFEST_DIR")));
    let both = vec![differential.with_file_name("jit_relocs"), differential];
    for p in &both {
        assert!(
            p.exists(),
            "{} is missing: build it with scripts/fuzz-smoke.sh",
            p.display()
        );
    }
    both
}

/// ASan's value of `flag` in `bin` under `asan_options` (`help=1` prints every flag's current
/// value at start-up; the target then runs one empty input).
fn asan_flag(bin: &Path, asan_options: &str, flag: &str) -> String {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .env("ASAN_OPTIONS", format!("help=1:{asan_options}"))
        .arg(empty.path())
        .arg("-runs=0")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    lines
        .find(|l| l.trim() == flag)
        .and_then(|_| lines.next())
        .and_then(|l| l.split("(Current Value: ").nth(1))
        .map(|v| v.trim_end_matches(')').to_string())
        .unwrap_or_else(|| {
            panic!(
                "{}: ASan printed no value for {flag}\n{text}",
                bin.display()
            )
        })
}

#[test]
#[ignore = "needs the cargo-fuzz build (scripts/test.sh runs it after scripts/fuzz-smoke.sh)"]
fn asan_builds_have_clif_diffs_defaults_and_the_environment_wins() {
    for bin in targets() {
        let uar = "detect_stack_use_after_return";
        assert_eq!(asan_flag(&bin, "", uar), "false", "{}", bin.display());
        assert_eq!(asan_flag(&bin, &format!("{uar}=1"), uar), "true");
        // Only that default changes: the checks that matter here are still on.
        assert_eq!(asan_flag(&bin, "", "detect_leaks"), "true");
        assert_eq!(asan_flag(&bin, "", "detect_odr_violation"), "2");
    }
}
