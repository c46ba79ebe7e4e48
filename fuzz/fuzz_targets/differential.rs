//! Generator → interpreter, JIT and object → oracle. A new finding aborts with its `.clif`.
#![no_main]

use clif_diff::fuzzing::{HostCase, differential};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: HostCase| differential(&case));
