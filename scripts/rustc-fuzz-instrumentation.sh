#!/usr/bin/env bash
# The rustc wrapper of every build in fuzz/ (fuzz/.cargo/config.toml names it): it decides which
# code libFuzzer's SanitizerCoverage instruments, because cargo-fuzz's flags are the same for all
# crates and cargo's own profile-rustflags cannot override them (they come first, cargo-fuzz's
# RUSTFLAGS win).
#
# * Cranelift's crates and regalloc2 (which Cranelift's backends run) keep the edge counters and
#   the PC table: their coverage is what guides the fuzzer and what `clif-diff coverage` maps.
# * Every other crate (clif-diff's generator and engines, the CLIF parser, serde, ...) is built
#   without SanitizerCoverage: it adds no features and costs no per-input bookkeeping.
# * Comparison tracing (`-sanitizer-coverage-trace-compares`) is dropped everywhere: the callbacks
#   were half of `differential`'s time, and most values Cranelift compares are derived by the
#   generator rather than copied from input bytes. At equal time the tuned build runs 2.4 times
#   as many inputs and reaches more coverage, as the full instrumentation counts it; tracing
#   once solved a comparison with two `iconst` immediates that the tuned build has not (README,
#   *cargo fuzz*; scripts/instrumentation-ab.sh).
#
# Sanitizers (-Zsanitizer) stay on everywhere. CLIF_DIFF_FUZZ_INSTRUMENT=all passes cargo-fuzz's
# flags through unchanged (its defaults: every crate, with comparison tracing).
set -euo pipefail
rustc=$1
shift
[ "${CLIF_DIFF_FUZZ_INSTRUMENT:-}" = all ] && exec "$rustc" "$@"
crate=""
prev=""
for a in "$@"; do
  [ "$prev" = "--crate-name" ] && crate=$a
  prev=$a
done
args=()
case "$crate" in
  cranelift_* | regalloc2)
    for a in "$@"; do
      [ "$a" = -Cllvm-args=-sanitizer-coverage-trace-compares ] || args+=("$a")
    done ;;
  *)
    for a in "$@"; do
      case "$a" in
        -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage-*) ;;
        *) args+=("$a") ;;
      esac
    done ;;
esac
exec "$rustc" "${args[@]}"
