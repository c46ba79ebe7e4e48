//! The libFuzzer seed corpus reaches every generator feature through the fuzz targets' own
//! input path (`HostCase::arbitrary` over the file's bytes).

use arbitrary::{Arbitrary, Unstructured};
use clif_diff::fuzzing::HostCase;
use clif_diff::generator::features::features;
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn shipped_seed_inputs_reach_every_feature() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/fuzz-seeds");
    let index = std::fs::read_to_string(dir.join("FEATURES.txt")).unwrap();
    let mut reached = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "bin") {
            let bytes = std::fs::read(&p).unwrap();
            // A seed sets libFuzzer's default -max_len (at least 4096): a 64 KiB seed would make
            // every mutated input that large.
            assert!(
                bytes.len() <= 8192,
                "{}: {} bytes",
                p.display(),
                bytes.len()
            );
            let case = HostCase::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
            for f in features(&case.case).names() {
                reached.insert(f.replace(' ', "_"));
            }
        }
    }
    for line in index.lines().filter(|l| !l.starts_with('#')) {
        let feature = line.split_whitespace().next().unwrap();
        assert!(
            reached.contains(feature),
            "{feature} not reached; reached {reached:?}"
        );
    }
    for must in [
        "sarg_read_write",
        "stack_args",
        "call_call_indirect",
        "call_return_call",
        "i128",
        "br_table",
    ] {
        assert!(
            reached.contains(must),
            "{must} missing from the seed corpus"
        );
    }
}
