#!/usr/bin/env bash
# The nightly job: a time-boxed host campaign, a JIT-relocation campaign (`far` memory), one
# campaign per foreign ISA, triage of what the campaigns left undecided (hits of coarse buckets,
# samples of known findings re-checked after reduction), replay of the regression corpus, and a
# report in Markdown and JSON. Exits non-zero on a new finding (including a known entry's hit
# whose reduced case lacks the entry's cause), a regression, a known bug that no longer
# reproduces, or an engine that could not run (a skipped engine is never agreement).
#
# Then C interop (`clif-diff abi`): random signatures and the generator's module plans,
# Cranelift against the C compiler in both directions, on x86_64 (host) and on aarch64, riscv64
# and s390x (cross gcc + qemu) when those targets are requested, plus the pinned regressions of
# corpus/abi; a divergence no known entry explains fails the night ("ABI DIVERGENCE").
# `--abi-cases 0` skips it.
#
# Then the coverage map (`clif-diff coverage`, with the cargo-fuzz build as workers) of a fixed
# case budget per target, published beside the report and compared with the saved baseline
# `corpus/coverage/<target>.json`: a backend whose share of hit ISLE rules falls by more than
# --coverage-drop points fails the night, loudly. `--coverage-cases 0` skips it.
#
#   scripts/nightly.sh [--budget 30m] [--targets host,jit-relocs,aarch64,riscv64,s390x]
#                      [--out nightly] [--jobs N] [--seed S]
#                      [--coverage-cases 600] [--coverage-drop 2] [--abi-cases 2000]
#
# The budget is shared: 50% host, 20% JIT relocations, 30% split over the foreign targets
# (re-balanced when some are not requested); triage gets another 25% of it on top. With state from an earlier night in OUT (CI caches
# it), each campaign resumes where it stopped instead of replaying old seeds.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=30m
targets=host,jit-relocs,aarch64,riscv64,s390x
out=nightly
jobs=$(nproc)
seed=""
coverage_cases=600
coverage_drop=2
abi_cases=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) budget=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --coverage-cases) coverage_cases=$2; shift 2 ;;
    --coverage-drop) coverage_drop=$2; shift 2 ;;
    --abi-cases) abi_cases=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "nightly: unknown argument $1" >&2; exit 2 ;;
  esac
done

to_seconds() {
  local v=${1%[smh]} u=${1##*[0-9]}
  case "$u" in s|"") echo "$v" ;; m) echo $((v * 60)) ;; h) echo $((v * 3600)) ;;
    *) echo "nightly: bad budget $1" >&2; exit 2 ;; esac
}
total=$(to_seconds "$budget")
IFS=, read -r -a wanted <<< "$targets"
foreign=()
weight_host=0 weight_relocs=0
for t in "${wanted[@]}"; do
  case "$t" in
    host) weight_host=50 ;;
    jit-relocs) weight_relocs=20 ;;
    aarch64|riscv64|s390x) foreign+=("$t") ;;
    *) echo "nightly: unknown target $t" >&2; exit 2 ;;
  esac
done
weight_foreign=$(( ${#foreign[@]} > 0 ? 30 : 0 ))
weights=$((weight_host + weight_relocs + weight_foreign))
[ "$weights" -gt 0 ] || { echo "nightly: no targets" >&2; exit 2; }
share() { echo $(( total * $1 / weights )); }

# The corpus replay covers every target whatever campaigns were asked for.
scripts/setup.sh
cargo build --release --quiet
bin=target/release/clif-diff
mkdir -p "$out"
# A fresh seed range per night unless told otherwise: campaigns with saved state resume instead.
[ -n "$seed" ] || seed=$(( $(date +%s) / 86400 * 1000000 ))

campaign() { # name, seconds, extra args...
  local name=$1 secs=$2; shift 2
  [ "$secs" -gt 0 ] || return 0
  local dir="$out/$name" resume=()
  [ -f "$dir/campaign.json" ] && resume=(--resume)
  echo "== $name: ${secs}s" >&2
  # A finding makes fuzz exit 1; the report decides the nightly's status.
  "$bin" fuzz --time "${secs}s" --jobs "$jobs" --seed "$seed" --out "$dir" --quiet "${resume[@]}" "$@" || true
  dirs+=(--campaign "$dir")
}

dirs=()
echo "== replay corpus/regressions" >&2
"$bin" replay corpus/regressions --json "$out/replay.json" > "$out/replay.txt" || true
campaign host "$(share "$weight_host")"
campaign jit-relocs "$(share "$weight_relocs")" --jit-memory far
for t in "${foreign[@]}"; do
  campaign "$t" $(( $(share "$weight_foreign") / ${#foreign[@]} )) --target "$t"
done
# What the campaigns could not decide in their time: a triage budget per campaign.
triage_secs=$(( total / 4 / (${#dirs[@]} / 2 > 0 ? ${#dirs[@]} / 2 : 1) ))
for ((i = 1; i < ${#dirs[@]}; i += 2)); do
  echo "== triage ${dirs[$i]}: ${triage_secs}s" >&2
  "$bin" triage "${dirs[$i]}" --budget "${triage_secs}s" || true
done
report_status=0
"$bin" report "${dirs[@]}" --replay "$out/replay.json" --markdown "$out/report.md" \
  --json "$out/report.json" || report_status=$?

# C interop: half random signatures, half the generator's plans, from the night's seed (printed,
# so a night replays with `clif-diff abi --seed S`); then the pinned regressions.
abi_status=0
if [ "$abi_cases" -gt 0 ]; then
  abi_seed=$seed
  : > "$out/abi.md"
  for t in "${wanted[@]}"; do
    case "$t" in host) abi_t=x86_64 ;; aarch64|riscv64|s390x) abi_t=$t ;; *) continue ;; esac
    for mode in random generator; do
      args=(--target "$abi_t" --cases $((abi_cases / 2)) --seed "$abi_seed"
            --json "$out/abi-$abi_t-$mode.json")
      [ "$mode" = generator ] && args+=(--from-generator)
      echo "== abi $abi_t ($mode, seed $abi_seed)" >&2
      if ! "$bin" abi "${args[@]}" > "$out/abi-$abi_t-$mode.txt" 2>&1; then
        echo "nightly: ABI DIVERGENCE on $abi_t (see $out/abi-$abi_t-$mode.txt)" >&2
        abi_status=1
      fi
      { echo "### C interop: $abi_t, $mode signatures (seed $abi_seed)"; echo '```';
        tail -n 12 "$out/abi-$abi_t-$mode.txt"; echo '```'; } >> "$out/abi.md"
    done
    if ! "$bin" abi --target "$abi_t" --replay corpus/abi/regressions.txt \
        > "$out/abi-$abi_t-replay.txt" 2>&1; then
      echo "nightly: ABI REGRESSIONS CHANGED on $abi_t (see $out/abi-$abi_t-replay.txt)" >&2
      abi_status=1
    fi
  done
fi

# The coverage map: the same seeds and case budget as the baselines, so a drop is the
# generator's or Cranelift's doing, not luck's.
coverage_status=0
if [ "$coverage_cases" -gt 0 ]; then
  if [ ! -x fuzz/target/x86_64-unknown-linux-gnu/release/differential ]; then
    command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
    (cd fuzz && cargo +nightly fuzz build -O differential)
  fi
  : > "$out/coverage.md"
  cov_targets=()
  for t in "${wanted[@]}"; do
    case "$t" in host) cov_targets+=(x86_64) ;; aarch64|riscv64|s390x) cov_targets+=("$t") ;; esac
  done
  for t in "${cov_targets[@]}"; do
    echo "== coverage $t: $coverage_cases cases" >&2
    cov_args=(--target "$t" --cases "$coverage_cases" --time 30m --jobs "$jobs" --quiet
              --out "$out/coverage-$t")
    [ -f "corpus/coverage/$t.json" ] &&
      cov_args+=(--diff "corpus/coverage/$t.json" --max-drop "$coverage_drop")
    if ! "$bin" coverage "${cov_args[@]}"; then
      echo "nightly: COVERAGE DROPPED on $t (see $out/coverage-$t/coverage.md)" >&2
      coverage_status=1
    fi
    cat "$out/coverage-$t/coverage.md" >> "$out/coverage.md" 2>/dev/null || true
  done
fi
if [ "$report_status" -ne 0 ]; then exit "$report_status"; fi
if [ "$abi_status" -ne 0 ]; then exit "$abi_status"; fi
exit "$coverage_status"
