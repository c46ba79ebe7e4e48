#!/usr/bin/env bash
# The whole test suite, as the README gives it: tools, format, lints, every test, the
# cargo-fuzz targets (built and run on their seed inputs), and the tests that need that build
# (the coverage map, artifacts of planted bugs, the ASan defaults; `#[ignore]`d for a bare
# `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
scripts/fuzz-smoke.sh
cargo test --test coverage --test fuzz_artifacts --test fuzz_build -- --ignored
