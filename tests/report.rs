//! The nightly report from real campaign and replay output: green when only known buckets are
//! hit and the corpus replays, red on a flipped known-bug expectation.

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

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn known_buckets_are_green_and_a_flipped_expectation_is_red() {
    let dir = tempfile::tempdir().unwrap();
    let camp = dir.path().join("jit-relocs");
    let (code, out) = bin(&[
        "fuzz",
        "--cases",
        "8",
        "--jobs",
        "1",
        "--jit-memory",
        "far",
        "--quiet",
        "--out",
        p(&camp),
    ]);
    assert_eq!(code, 0, "{out}");

    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let far = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/regressions/jit-far-colocated-call.clif");
    let text = std::fs::read_to_string(&far).unwrap();
    std::fs::write(corpus.join("far.clif"), &text).unwrap();

    let report = |name: &str| {
        let replay = dir.path().join(format!("{name}.replay.json"));
        bin(&["replay", p(&corpus), "--json", p(&replay)]);
        let md = dir.path().join(format!("{name}.md"));
        let json = dir.path().join(format!("{name}.json"));
        let (code, out) = bin(&[
            "report",
            "--campaign",
            p(&camp),
            "--replay",
            p(&replay),
            "--markdown",
            p(&md),
            "--json",
            p(&json),
        ]);
        (code, out, std::fs::read_to_string(md).unwrap())
    };

    let (code, out, md) = report("green");
    assert_eq!(code, 0, "{out}\n{md}");
    assert!(md.contains("**green**"), "{md}");
    assert!(
        md.contains("jit-x64-far-colocated-reloc"),
        "known bucket listed: {md}"
    );
    assert!(md.contains("| jit-relocs | 8 |"), "throughput row: {md}");

    // The known bug "fixed": the file now expects agreement, so the panic is a regression...
    std::fs::write(
        corpus.join("far.clif"),
        text.replace(
            "expect = panic:cranelift-jit/src/compiled_blob.rs:142",
            "expect = agree",
        ),
    )
    .unwrap();
    let (code, _, md) = report("regression");
    assert_eq!(code, 1, "{md}");
    assert!(
        md.contains("**RED**") && md.contains("got `panic:cranelift-jit/src/compiled_blob.rs:142`"),
        "{md}"
    );

    // ...and without the far memory directive the bug no longer shows: reported as fixed.
    std::fs::write(
        corpus.join("far.clif"),
        text.replace("; clif-diff: jit-memory = far\n", ""),
    )
    .unwrap();
    let (code, _, md) = report("fixed");
    assert_eq!(code, 1, "{md}");
    assert!(
        md.contains("Fixed (known finding no longer reproduces):** \n\n- "),
        "{md}"
    );

    // A corpus file whose engine cannot run here is SKIPPED, and the nightly is red for it:
    // it was asked to cover that target and could not.
    std::fs::write(corpus.join("far.clif"), &text).unwrap();
    let aarch64 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/regressions/aarch64-apple-stack-arg-ext-clobbers-caller.clif");
    std::fs::copy(&aarch64, corpus.join("apple.clif")).unwrap();
    let replay = dir.path().join("skip.replay.json");
    let out = Command::new(env!("CARGO_BIN_EXE_clif-diff"))
        .env("CLIF_DIFF_QEMU_AARCH64", "/nonexistent/qemu-aarch64")
        .args(["replay", p(&corpus), "--json", p(&replay)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "a skip is no regression");
    let md = dir.path().join("skip.md");
    let (code, out) = bin(&[
        "report",
        "--campaign",
        p(&camp),
        "--replay",
        p(&replay),
        "--markdown",
        p(&md),
    ]);
    let md = std::fs::read_to_string(md).unwrap();
    assert_eq!(code, 1, "{out}\n{md}");
    assert!(md.contains("**RED**") && md.contains("SKIPPED"), "{md}");
    assert!(md.contains("/nonexistent/qemu-aarch64"), "{md}");
}
