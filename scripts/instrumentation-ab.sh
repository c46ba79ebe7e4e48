#!/usr/bin/env bash
# Which instrumentation finds more in the same time? Two builds of a cargo-fuzz target fuzz from
# corpus/fuzz-seeds side by side (one job each, one per core) for the same wall time; then both
# grown corpora are replayed (`-runs=0`) by both binaries, so each pair of `cov:`/`ft:` figures
# is counted by the same instrumentation. Prints executions, exec/s, corpus size and the replayed
# cov/ft of each.
#
#   scripts/instrumentation-ab.sh --a fuzz/target-nosan-all --b fuzz/target-nosan \
#       [--target differential] [--time 600] [--seed 1]
#
# --a/--b are target directories of existing builds (see scripts/bench-libfuzzer.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=differential
time=600
seed=1
a=""
b=""
while [ $# -gt 0 ]; do
  case "$1" in
    --a) a=$2; shift 2 ;;
    --b) b=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --time) time=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "instrumentation-ab: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$a" ] && [ -n "$b" ] || { echo "instrumentation-ab: --a and --b are required" >&2; exit 2; }
a=$(realpath "$a")
b=$(realpath "$b")
bin() { echo "$1/x86_64-unknown-linux-gnu/release/$target"; }
for d in "$a" "$b"; do
  [ -x "$(bin "$d")" ] || { echo "instrumentation-ab: no build at $(bin "$d")" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(-max_len=4096 -entropic=0 -timeout=30 -print_final_stats=1 -seed="$seed")
cd "$root/fuzz"
for v in A B; do
  d=$a
  [ "$v" = B ] && d=$b
  mkdir "$work/$v"
  "$(bin "$d")" "${common[@]}" -max_total_time="$time" "$work/$v" ../corpus/fuzz-seeds \
    >"$work/$v.log" 2>&1 &
done
wait
# Each corpus is replayed by both binaries: A's features count what the fuller instrumentation
# sees, B's what the tuned build itself is guided by.
replay() { # binary corpus -> "cov ft"
  local inited
  inited=$("$1" -runs=0 -max_len=4096 -entropic=0 "$2" 2>&1 | grep -E 'INITED' | tail -1 || true)
  echo "$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$inited") $(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$inited")"
}
printf '%-3s %-24s %10s %7s %7s %16s %16s\n' run build executions exec/s corpus 'cov/ft by A' 'cov/ft by B'
for v in A B; do
  d=$a
  [ "$v" = B ] && d=$b
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$v.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$v.log" | tail -1)
  read -r ca fa <<<"$(replay "$(bin "$a")" "$work/$v")"
  read -r cb fb <<<"$(replay "$(bin "$b")" "$work/$v")"
  printf '%-3s %-24s %10s %7s %7s %16s %16s\n' "$v" "${d#"$root"/}" "${execs:-?}" "${rate:-?}" \
    "$(ls "$work/$v" | wc -l)" "$ca/$fa" "$cb/$fb"
  grep -q 'deadly signal\|clif-diff finding\|==ERROR' "$work/$v.log" &&
    { cp "$work/$v.log" "/tmp/instrumentation-ab-$v.log"; echo "  ($v stopped at a finding: /tmp/instrumentation-ab-$v.log)" >&2; }
done
echo "target $target, ${time} s each, both at once, -max_len=4096 -entropic=0 -seed=$seed" >&2
