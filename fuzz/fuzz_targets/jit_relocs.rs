//! The JIT with every allocation ≥ 4 GiB apart, on the host and (finalize only) foreign ISAs.
#![no_main]

use clif_diff::fuzzing::{AnyTargetCase, jit_relocs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: AnyTargetCase| jit_relocs(&case));
