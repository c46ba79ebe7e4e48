//! Generator → interpreter, JIT and object → oracle. A new finding aborts with its `.clif`.
//!
//! The same binary is the instrumented worker of `clif-diff coverage` (see
//! `clif_diff::fuzzing::serve_if_coverage_worker`).
#![no_main]

use clif_diff::fuzzing::{HostCase, differential, serve_if_coverage_worker};
use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};

clif_diff::asan_default_options!();

fuzz_target!(
    init: serve_if_coverage_worker(),
    |case: HostCase| differential(&case)
);

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    clif_diff::fuzzing::mutate(data, size, max_size, seed, fuzzer_mutate)
});
