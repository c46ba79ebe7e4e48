#!/usr/bin/env bash
# The cargo-fuzz targets build from a clean clone and run their seed inputs: installs cargo-fuzz
# when missing, builds both targets, and executes every seed input of `corpus/fuzz-seeds` once
# (no mutation, so the result does not depend on luck).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup toolchain list | grep -q nightly; then
  echo "fuzz-smoke: no nightly toolchain (cargo fuzz needs it)" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
cd fuzz
cargo +nightly fuzz build -O
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
cp ../corpus/fuzz-seeds/*.bin "$seeds/"
# -runs=0: execute the given inputs only.
cargo +nightly fuzz run -O differential "$seeds" -- -runs=0
cargo +nightly fuzz run -O jit_relocs "$seeds" -- -runs=0
echo "fuzz-smoke: ok"
