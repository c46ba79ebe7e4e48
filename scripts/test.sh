#!/usr/bin/env bash
# The whole test suite, as the README gives it: tools, format, lints, every test, and the
# cargo-fuzz targets (built and run on their seed inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
scripts/fuzz-smoke.sh
