#!/usr/bin/env bash
# The whole test suite, as the README gives it: tools, then every test, lint and format check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
