//! Legacy reproducers: the seed issue's original text imports, joins the corpus and replays.

use std::path::Path;
use std::process::Command;

fn bin(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clif-diff"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_seed_issue_text_imports_and_replays() {
    let legacy = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/legacy/wasmtime-8852.clif");
    let old = std::fs::read_to_string(&legacy).unwrap();
    assert!(
        old.contains("stack_store v0, ss0"),
        "the legacy file is the original text"
    );
    // Today's reader rejects the original.
    assert!(clif_diff::case::TestCase::parse(&old).is_err());

    let dir = tempfile::tempdir().unwrap();
    let imported = dir.path().join("imported.clif");
    let (code, out) = bin(&[
        "import",
        legacy.to_str().unwrap(),
        "--map-call-conv",
        "apple_aarch64=system_v",
        "-o",
        imported.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let corpus = dir.path().join("regressions");
    let (code, out) = bin(&[
        "corpus",
        "add",
        imported.to_str().unwrap(),
        "--dir",
        corpus.to_str().unwrap(),
        "--name",
        "seed",
    ]);
    assert_eq!(code, 0, "{out}");
    let added = std::fs::read_to_string(corpus.join("seed.clif")).unwrap();
    assert!(added.contains("; clif-diff: expect = agree"), "{added}");
    assert!(added.contains("; run: %main() == 42"), "{added}");
    let (code, out) = bin(&["replay", corpus.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 cases: 1 pass"), "{out}");
}

#[test]
fn import_of_unreadable_text_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("old.clif");
    std::fs::write(&f, "function %f() {\nblock0:\n    stack_store\n}\n").unwrap();
    let (code, out) = bin(&["import", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(out.lines().count(), 1, "{out}");
}
