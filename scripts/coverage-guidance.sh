#!/usr/bin/env bash
# Does libFuzzer's coverage guidance pay here? The same number of executions of a cargo-fuzz
# target in up to two modes, one job each, side by side (one per core):
#   fresh    — libFuzzer from corpus/fuzz-seeds with the targets' mutator: its own mutations, and
#              one mutation in two a fresh random input (`clif_diff::fuzzing::mutate`);
#   plain    — the same with libFuzzer's mutations only (CLIF_DIFF_FUZZ_FRESH_EVERY=0);
#   unguided — the seeds plus N-24 inputs of random bytes (lengths uniform in 64..max_len, from
#              a seeded generator), each executed once (`-runs=0`): generation without feedback.
# Prints executions, seconds, `cov:` and `ft:` of each (the final figures libFuzzer reports).
#
#   scripts/coverage-guidance.sh [--modes fresh,unguided] [--target differential] [--runs 30000]
#                                [--sanitizer none] [--max-len 4096] [--seed 1]
# Uses an existing build (scripts/bench-libfuzzer.sh builds: `-s none` → fuzz/target-nosan).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

target=differential
runs=30000
san=none
max_len=4096
seed=1
modes=fresh,unguided
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --sanitizer) san=$2; shift 2 ;;
    --max-len) max_len=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "coverage-guidance: unknown argument $1" >&2; exit 2 ;;
  esac
done
dir=target
[ "$san" = none ] && dir=target-nosan
bin=$PWD/$dir/x86_64-unknown-linux-gnu/release/$target
[ -x "$bin" ] || { echo "coverage-guidance: no build at $bin (run scripts/bench-libfuzzer.sh first)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
IFS=, read -r -a mode_list <<< "$modes"
for m in "${mode_list[@]}"; do
  case "$m" in fresh | plain | unguided) ;;
    *) echo "coverage-guidance: modes are fresh, plain, unguided, not $m" >&2; exit 2 ;;
  esac
done
if [[ ",$modes," == *,unguided,* ]]; then
  mkdir "$work/unguided"
  cp ../corpus/fuzz-seeds/*.bin "$work/unguided/"
  nseeds=$(ls "$work/unguided" | wc -l)
  # Random inputs from a seeded stream (reproducible): awk's srand/rand for lengths, and the
  # bytes from openssl's keystream keyed by the seed.
  awk -v n=$((runs - nseeds)) -v lo=64 -v hi="$max_len" -v s="$seed" \
    'BEGIN { srand(s); for (i = 0; i < n; i++) print int(lo + rand() * (hi - lo + 1)) }' >"$work/lengths"
  openssl enc -aes-128-ctr -nosalt -pass "pass:clif-diff-$seed" -in /dev/zero 2>/dev/null |
    head -c "$(awk '{ s += $1 } END { print s }' "$work/lengths")" >"$work/stream" || true
  offset=0
  i=0
  while read -r len; do
    dd if="$work/stream" of="$work/unguided/r$i" iflag=skip_bytes,count_bytes \
      skip="$offset" count="$len" bs=64K status=none
    offset=$((offset + len))
    i=$((i + 1))
  done <"$work/lengths"
fi

common=(-max_len="$max_len" -entropic=0 -timeout=30 -print_final_stats=1 -seed="$seed")
start=$(date +%s)
# One mode in the background: its log, and its end time for the seconds column.
run_mode() {
  local m=$1
  shift
  ("$@" >"$work/$m.log" 2>&1; date +%s >"$work/$m.end") &
}
guided=("$bin" "${common[@]}" -runs="$runs")
for m in "${mode_list[@]}"; do
  case "$m" in
    fresh) mkdir "$work/fresh"; run_mode fresh "${guided[@]}" "$work/fresh" ../corpus/fuzz-seeds ;;
    plain) mkdir "$work/plain"; run_mode plain env CLIF_DIFF_FUZZ_FRESH_EVERY=0 "${guided[@]}" "$work/plain" ../corpus/fuzz-seeds ;;
    unguided) run_mode unguided "$bin" "${common[@]}" -runs=0 "$work/unguided" ;;
  esac
done
wait
printf '%-9s %10s %8s %8s %9s %7s\n' run executions seconds cov ft corpus
for r in "${mode_list[@]}"; do
  log=$work/$r.log
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  printf '%-9s %10s %8s %8s %9s %7s\n' "$r" "${execs:-?}" "$(( $(cat "$work/$r.end") - start ))" \
    "$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")" \
    "$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")" \
    "$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")"
  grep -q 'deadly signal\|clif-diff finding\|==ERROR' "$log" && { echo "  ($r stopped early; log kept: $r.log)" >&2; cp "$log" "/tmp/coverage-guidance-$r.log"; }
done
echo "target $target, -s $san, -max_len=$max_len -entropic=0 -seed=$seed, one job per run, both runs at once" >&2
