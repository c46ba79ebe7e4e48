//! The JIT with every allocation ≥ 4 GiB apart, on the host and (finalize only) foreign ISAs.
#![no_main]

use clif_diff::fuzzing::{AnyTargetCase, jit_relocs};
use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};

clif_diff::asan_default_options!();

fuzz_target!(|case: AnyTargetCase| jit_relocs(&case));

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    clif_diff::fuzzing::mutate(data, size, max_size, seed, fuzzer_mutate)
});
