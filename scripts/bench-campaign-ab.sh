#!/usr/bin/env bash
# Throughput of a default host campaign at another revision against the working tree's build:
# the "does not fall by more than 20%" check of generator work. Outside CI (it builds BASE).
#
#   scripts/bench-campaign-ab.sh BASE_REV [--cases 6000] [--repeat 2] [--seed 900000000]
#
# BASE_REV is built in a git worktree under $TMPDIR with its own target directory (a cold
# release build: about 6 minutes here). Both binaries then run the same seeds, alternating
# (base, new, base, new, …) so that the machine's drift hits both alike, with `--no-reduce` so
# that triage running beside the cases does not blur the figure. Prints each run's cases/s
# and the medians.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
base=${1:?usage: scripts/bench-campaign-ab.sh BASE_REV [--cases N] [--repeat N] [--seed S]}
shift
cases=6000
repeat=2
seed=900000000
while [ $# -gt 0 ]; do
  case "$1" in
    --cases) cases=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
tmp="${TMPDIR:-/tmp}/clif-diff-ab"
rev=$(git -C "$root" rev-parse --short "$base")
mkdir -p "$tmp"
if [ ! -d "$tmp/src-$rev" ]; then
  git -C "$root" worktree add -f --detach "$tmp/src-$rev" "$rev" >/dev/null
fi
(cd "$tmp/src-$rev" && CARGO_TARGET_DIR="$tmp/target-$rev" cargo build --release --quiet)
(cd "$root" && cargo build --release --quiet)
bins=("$tmp/target-$rev/release/clif-diff" "$root/target/release/clif-diff")
names=("base $rev" "new")
declare -a rates0 rates1
for i in $(seq 1 "$repeat"); do
  for k in 0 1; do
    out="$tmp/out-$k"
    rm -rf "$out"
    line=$("${bins[$k]}" fuzz --cases "$cases" --seed "$seed" --jobs 2 --quiet --no-reduce \
      --out "$out" 2>&1 | grep '^campaign:')
    rate=$(sed -E 's/.*\(([0-9.]+) cases\/s\).*/\1/' <<<"$line")
    echo "${names[$k]} run $i: $rate cases/s"
    if [ "$k" = 0 ]; then rates0+=("$rate"); else rates1+=("$rate"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m0=$(median "${rates0[@]}")
m1=$(median "${rates1[@]}")
echo "median: base $rev $m0 cases/s, new $m1 cases/s ($(awk -v a="$m0" -v b="$m1" 'BEGIN {printf "%+.1f%%", (b-a)/a*100}'))"
