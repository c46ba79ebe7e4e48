#!/usr/bin/env bash
# A RUSTC_WRAPPER that keeps cargo-fuzz's SanitizerCoverage for Cranelift's crates (and
# regalloc2, which Cranelift's backends run) and builds every other crate without it: clif-diff's
# generator and engines, the CLIF parser, serde, ... Their code then adds no libFuzzer features
# and costs no per-input bookkeeping; sanitizers (-Zsanitizer) stay on everywhere.
#
#   RUSTC_WRAPPER=$PWD/scripts/rustc-cranelift-only.sh cargo +nightly fuzz build -O --target-dir target-cr
#
# scripts/bench-libfuzzer.sh --cranelift-only builds and measures with it.
set -euo pipefail
rustc=$1
shift
crate=""
prev=""
for a in "$@"; do
  [ "$prev" = "--crate-name" ] && crate=$a
  prev=$a
done
case "$crate" in
  cranelift_* | regalloc2) exec "$rustc" "$@" ;;
esac
args=()
for a in "$@"; do
  case "$a" in
    -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage-*) ;;
    *) args+=("$a") ;;
  esac
done
exec "$rustc" "${args[@]}"
