//! Generator → interpreter, JIT and object → oracle. A new finding aborts with its `.clif`.
//!
//! The same binary is the instrumented worker of `clif-diff coverage` (see
//! `clif_diff::fuzzing::serve_if_coverage_worker`).
#![no_main]

use clif_diff::fuzzing::{HostCase, differential, serve_if_coverage_worker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: serve_if_coverage_worker(),
    |case: HostCase| differential(&case)
);
