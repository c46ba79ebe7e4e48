#!/usr/bin/env bash
# Executions per second of each cargo-fuzz target, as libFuzzer itself reports them, with the
# build flags used: the figures of the README's cargo-fuzz section come from here. Outside CI
# (it builds the targets and fuzzes for the given time).
#
#   scripts/bench-libfuzzer.sh [--time 60] [--sanitizer address|none] [--targets differential,jit_relocs]
#                              [--max-len 4096] [--flags '-entropic=0'] [--instrument all]
#                              [--no-build] [--repeat 1]
#
# `-entropic=0` by default: with entropic scheduling libFuzzer spent a third of its time in
# feature bookkeeping that grows with the square of features per input (these inputs reach
# 40,000 PCs each); `--flags ''` measures without it.
# Each target starts from a fresh corpus with corpus/fuzz-seeds as read-only seeds, on one job.
# `--repeat N` fuzzes each target N times (-seed=1..N) and prints every run and the median
# exec/s: this machine's speed drifts by a third over a day, so one run is a weak figure.
# The instrumentation is fuzz/.cargo/config.toml's (Cranelift's crates, no comparison tracing;
# see scripts/rustc-fuzz-instrumentation.sh); `--instrument all` measures cargo-fuzz's defaults
# (every crate, comparison tracing).
# Builds other than the default (ASan, tuned instrumentation) live in their own target
# directories (fuzz/target-nosan, fuzz/target-all, fuzz/target-nosan-all) so they do not replace
# the build that CI and `clif-diff coverage` use.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

time=60
san=address
targets=differential,jit_relocs
max_len=4096
flags=-entropic=0
build=1
inst=tuned
repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time=$2; shift 2 ;;
    --sanitizer) san=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --max-len) max_len=$2; shift 2 ;;
    --flags) flags=$2; shift 2 ;;
    --instrument) inst=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --repeat) repeat=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench-libfuzzer: unknown argument $1" >&2; exit 2 ;;
  esac
done
dir_args=()
suffix=""
[ "$san" = none ] && suffix=-nosan
case "$inst" in
  tuned) ;;
  all) suffix=$suffix-all; export CLIF_DIFF_FUZZ_INSTRUMENT=all ;;
  *) echo "bench-libfuzzer: --instrument tuned|all, not $inst" >&2; exit 2 ;;
esac
[ -n "$suffix" ] && dir_args+=(--target-dir "target$suffix")
if [ "$build" = 1 ]; then
  cargo +nightly fuzz build -O -s "$san" "${dir_args[@]}" >&2
fi
printf '%-13s %-9s %8s %10s %8s %8s %9s\n' target sanitizer seconds executions exec/s cov ft
IFS=, read -r -a list <<< "$targets"
for t in "${list[@]}"; do
  rates=()
  for ((k = 1; k <= repeat; k++)); do
    corpus=$(mktemp -d)
    log=$(mktemp)
    seed=()
    [ "$repeat" -gt 1 ] && seed=(-seed="$k")
    cargo +nightly fuzz run -O -s "$san" "${dir_args[@]}" "$t" "$corpus" ../corpus/fuzz-seeds -- \
      -max_total_time="$time" -max_len="$max_len" -print_final_stats=1 "${seed[@]}" $flags >"$log" 2>&1 || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    [ -n "$secs" ] || secs=$time
    if [ -z "$execs" ]; then
      echo "bench-libfuzzer: $t did not finish; log: $log" >&2
      continue
    fi
    rate=$(( execs / (secs > 0 ? secs : 1) ))
    rates+=("$rate")
    printf '%-13s %-9s %8s %10s %8s %8s %9s\n' "$t" "$san" "$secs" "$execs" "$rate" "${cov:-?}" "${ft:-?}"
    grep -q '^==[0-9]*== ERROR\|deadly signal\|clif-diff finding' "$log" &&
      echo "  (stopped at a finding; log: $log)" >&2
    rm -rf "$corpus"
  done
  if [ "$repeat" -gt 1 ] && [ ${#rates[@]} -gt 0 ]; then
    median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '%-13s %-9s median exec/s over %d runs: %s\n' "$t" "$san" "${#rates[@]}" "$median"
  fi
done
if [ "$inst" = all ]; then
  what='sancov inline-8bit-counters, pc-table, trace-compares in every crate (CLIF_DIFF_FUZZ_INSTRUMENT=all)'
else
  what='sancov inline-8bit-counters, pc-table in Cranelift crates and regalloc2 only (fuzz/.cargo/config.toml)'
fi
echo "flags: cargo +nightly fuzz build -O -s $san ${dir_args[*]} ($what; -O: no debug assertions), -max_len=$max_len $flags, 1 job" >&2
