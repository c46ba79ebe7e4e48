#!/usr/bin/env bash
# Proves the fuzzer on bugs we plant: builds clif-diff against a copy of the pinned
# cranelift-codegen with the miscompiles of scripts/planted/*.patch, runs a host campaign and
# triage with it, and checks that every planted bug comes out as a finding of its own whose
# reduced reproducer fails on the planted build and passes on the pristine one.
#
#   scripts/planted-bugs.sh [--time 150s] [--triage 10m] [--jobs N] [--seed S] [--dir DIR] [--keep]
#
# Not run by CI: it builds Cranelift twice (~12 min on 2 cores), then runs the campaign (--time,
# plus up to 2 min of urgent triage) and `clif-diff triage` (--triage, plus the reduction in
# flight when it runs out). Everything goes under DIR (default ${TMPDIR:-/tmp}/clif-diff-planted);
# the repository's target/ is not touched. Without --keep the build trees (~1 GB) are deleted at
# the end and only the run's results stay; with --keep they stay, and the next run reuses them.
#
# Each patch names the opcode of its bug on a `planted-opcode: OP` line above the diff; a finding
# is attributed to a planted bug when that opcode is in its identity. Exit status: 0 when every
# planted bug was found, 1 when one was missed, 2 for bad usage or a missing tool.
set -euo pipefail

die() { echo "planted-bugs: $*" >&2; exit 2; }

time_budget=150s
triage_budget=10m
jobs=""
seed=0
scratch="${TMPDIR:-/tmp}/clif-diff-planted"
keep=false
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_budget=${2:?--time needs a value}; shift 2 ;;
    --triage) triage_budget=${2:?--triage needs a value}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a value}; shift 2 ;;
    --seed) seed=${2:?--seed needs a value}; shift 2 ;;
    --dir) scratch=${2:?--dir needs a value}; shift 2 ;;
    --keep) keep=true; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

for tool in cargo patch git tar python3 cc; do
  command -v "$tool" >/dev/null || die "\`$tool\` not found on PATH; it is needed to build and check the planted bugs"
done

# JSON field of a file, by a Python expression over `d` (python3 is on every machine; jq is not).
jget() { # file expr
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}

repo=$(cd "$(dirname "$0")/.." && pwd)
patches=("$repo"/scripts/planted/*.patch)
[ -e "${patches[0]}" ] || die "no patches in $repo/scripts/planted"
opcode_of() { sed -n 's/^planted-opcode: *\([a-z_0-9]*\).*/\1/p' "$1" | head -n1; }
# The pipeline stage a finding's localisation names when the bug is this patch's
# (`planted-stage: mid-end`, `planted-stage: ISA features`): how findings that reduce to an
# opcode the optimizer rewrites into the planted one are attributed.
stage_of() { sed -n 's/^planted-stage: *\(.*\)$/\1/p' "$1" | head -n1; }
planted_ops=()
planted_stages=()
for p in "${patches[@]}"; do
  op=$(opcode_of "$p")
  [ -n "$op" ] || die "$p: no \`planted-opcode: OP\` line"
  planted_ops+=("$op")
  planted_stages+=("$(stage_of "$p")")
done
# [patch] only replaces a crate of exactly the pinned version.
version=$(sed -n 's/^cranelift-codegen = { version = "=\([0-9.]*\)".*/\1/p' "$repo/Cargo.toml")
[ -n "$version" ] || die "cannot read the pinned cranelift-codegen version from $repo/Cargo.toml"

mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
crate="$scratch/cranelift-codegen-$version"
target="$scratch/target"
results="$scratch/run-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$results"
if ! $keep; then
  trap 'rm -rf "$crate" "$scratch/ws-pristine" "$scratch/ws-planted" "$target" "$scratch/bin"' EXIT
fi

# Wall time per phase, for the summary at the end.
timings=()
phase_name="" phase_start=$SECONDS
phase() {
  if [ -n "$phase_name" ]; then
    timings+=("$phase_name $((SECONDS - phase_start)) s")
    echo "   ($((SECONDS - phase_start)) s)"
  fi
  phase_name=$1 phase_start=$SECONDS
  shift
  echo "== $*"
}

echo "== planted-bugs: builds in $scratch, results in $results"

phase copy "copying the workspace"
# The working tree, uncommitted edits included, ignored files (target/, findings/) left out.
# tar keeps mtimes, so a kept build sees unchanged files as unchanged.
copy_workspace() { # dest
  rm -rf "$1"
  mkdir -p "$1"
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
     | tar --null -T - -cf -) | tar -xf - -C "$1"
}
copy_workspace "$scratch/ws-pristine"
copy_workspace "$scratch/ws-planted"

registry_copy() { ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cranelift-codegen-$version" 2>/dev/null | head -n1 || true; }
pristine_src=$(registry_copy)
if [ -z "$pristine_src" ]; then
  # A fresh machine has no registry sources until something fetches them.
  (cd "$scratch/ws-pristine" && cargo fetch --quiet) || die "cargo fetch failed"
  pristine_src=$(registry_copy)
  [ -n "$pristine_src" ] || die "cranelift-codegen-$version is not in the cargo registry even after cargo fetch"
fi

phase patch "planting the bugs in a copy of $pristine_src"
stamp=$(cat "${patches[@]}" | cksum)
if [ "$(cat "$crate/.planted-stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$crate"
  # -p keeps the registry mtimes, so that only the patched files look new to cargo.
  cp -rp "$pristine_src" "$crate"
  for p in "${patches[@]}"; do
    echo "   $(basename "$p") (planted-opcode: $(opcode_of "$p"))"
    patch -p1 --quiet --forward -d "$crate" < "$p" || die "$p does not apply to cranelift-codegen-$version"
  done
  echo "$stamp" > "$crate/.planted-stamp"
else
  echo "   the kept copy already carries these patches"
fi
printf '\n[patch.crates-io]\ncranelift-codegen = { path = "%s" }\n' "$crate" >> "$scratch/ws-planted/Cargo.toml"

build() { # pristine|planted: builds ws-NAME into bin/NAME/clif-diff
  # One target dir for both: only the cranelift crates differ, the rest builds once.
  (cd "$scratch/ws-$1" && CARGO_TARGET_DIR="$target" cargo build --release --quiet) \
    || die "building the $1 clif-diff failed"
  mkdir -p "$scratch/bin/$1"
  # Still named clif-diff: it starts copies of itself as workers.
  cp "$target/release/clif-diff" "$scratch/bin/$1/clif-diff"
}
phase build-pristine "building pristine clif-diff"
build pristine
phase build-planted "building planted clif-diff (cranelift-codegen's build script recompiles the patched ISLE)"
build planted
(cd "$scratch/ws-planted" && cargo pkgid cranelift-codegen) | grep -q "^path+file://$crate#" \
  || die "the planted build does not use $crate"
pristine="$scratch/bin/pristine/clif-diff"
planted="$scratch/bin/planted/clif-diff"

out="$results/findings"
phase campaign "campaign with the planted build: fuzz --time $time_budget --seed $seed --out $out"
# Exit 1 means findings, which is the point here; anything else is a real failure.
rc=0
"$planted" fuzz --time "$time_budget" --seed "$seed" --out "$out" ${jobs:+--jobs "$jobs"} || rc=$?
[ "$rc" -le 1 ] || die "the campaign failed (exit $rc)"

phase triage "triage of what the campaign left undecided: triage --budget $triage_budget"
rc=0
"$planted" triage "$out" --budget "$triage_budget" | tee "$results/triage.log" || rc=$?
[ "$rc" -le 1 ] || die "triage failed (exit $rc)"

phase check "running every new finding's reproducer on both builds"
# The planted bug a finding is: the planted opcode its identity names; else the one its code
# computes after the mid-end (`(after the mid-end)`: a `udiv` by a constant becomes a `umulhi`);
# else the planted bug whose stage its localisation names (`(by stage)`); else none.
attribute() { # identity tokens, optimised tokens (space-separated), localisation (|-separated)
  local hit=() i
  for i in "${!planted_ops[@]}"; do
    case " $1 " in *" ${planted_ops[$i]} "*) hit+=("${planted_ops[$i]}") ;; esac
  done
  if [ ${#hit[@]} -eq 0 ]; then
    for i in "${!planted_ops[@]}"; do
      case " $2 " in *" ${planted_ops[$i]} "*) hit+=("${planted_ops[$i]} (after the mid-end)") ;; esac
    done
  fi
  if [ ${#hit[@]} -eq 0 ]; then
    for i in "${!planted_ops[@]}"; do
      local stage=${planted_stages[$i]}
      [ -n "$stage" ] && case "$3" in "$stage"*|*"|$stage"*) hit+=("${planted_ops[$i]} (by stage)") ;; esac
    done
  fi
  case ${#hit[@]} in
    0) echo "none" ;;
    1) echo "${hit[0]}" ;;
    *) echo "ambiguous:$(IFS=+; echo "${hit[*]}")" ;;
  esac
}
table="$results/table.txt"
fmt='%-40s  %-24s  %-14s  %-8s  %-9s  %s\n'
# shellcheck disable=SC2059
{
  printf "$fmt" "finding" "identity" "insts" "fails on" "passes on" "planted bug"
  printf "$fmt" "" "" "before->after" "planted" "pristine" ""
} > "$table"
notes=()
declare -A proven=()
new=0 known=0
for info in "$out"/*/finding.json; do
  [ -e "$info" ] || continue
  if [ -n "$(jget "$info" 'd.get("known")')" ]; then
    known=$((known + 1))
    continue
  fi
  new=$((new + 1))
  dir=$(dirname "$info")
  key=$(jget "$info" 'd["key"]')
  bucket=$(jget "$info" 'd["bucket"]')
  tokens=$(jget "$info" '" ".join(d.get("signature") or [])')
  identity=$(jget "$info" '"+".join(d["signature"]) if d.get("signature") else "(none yet)"')
  stages=$(jget "$info" '"|".join(d.get("localised") or [])')
  optimised=$(jget "$info" '" ".join(d.get("optimised") or [])')
  reduced="$dir/reduced.clif"
  # Only a bucket's first finding gets reduce.json; for those triage splits off later, the
  # reducer's header line in reduced.clif says it.
  insts=$(jget "$dir/reduce.json" '"%d->%d" % (d["stats"]["insts_before"], d["stats"]["insts_after"])' 2>/dev/null \
    || sed -n '1s/.*: \([0-9]*\) instructions in .* -> \([0-9]*\) in .*/\1->\2/p' "$reduced" 2>/dev/null || true)
  fails=no passes=no
  if [ -f "$reduced" ]; then
    # Planted: a finding (exit 1) in the very bucket it was filed under. Pristine: every engine
    # agrees (exit 0); the file's `expect` directive is for `replay`, not `run`.
    set +e
    "$planted" run --json "$reduced" > "$dir/run-planted.json" 2>/dev/null
    rc_planted=$?
    "$planted" run "$reduced" > "$dir/run-planted.txt" 2>&1
    "$pristine" run "$reduced" > "$dir/run-pristine.txt" 2>&1
    rc_pristine=$?
    set -e
    got=$(jget "$dir/run-planted.json" 'd["bucket"]' 2>/dev/null || true)
    [ "$rc_planted" -eq 1 ] && [ "$got" = "$bucket" ] && fails=yes
    [ "$rc_pristine" -eq 0 ] && passes=yes
  else
    insts="(not reduced)"
  fi
  bug=$(attribute "$tokens" "$optimised" "$stages")
  # shellcheck disable=SC2059
  printf "$fmt" "$key" "$identity" "${insts:--}" "$fails" "$passes" "$bug" >> "$table"
  related=$(jget "$info" '", ".join(d.get("related") or [])')
  [ -z "$related" ] || notes+=("$key: related to $related (identities overlap, or localised alike: possibly the same bug)")
  [ -z "$stages" ] || notes+=("$key: localised: ${stages//|/; }")
  op=${bug%% (*}
  if [ "$fails" = yes ] && [ "$passes" = yes ] && [ "$bug" = "$op" ] && [ "$bug" != none ] && [[ "$bug" != ambiguous:* ]]; then
    proven[$op]="${proven[$op]:-}${proven[$op]:+, }$key (${reduced#"$results"/})"
  fi
done
phase "" "result"
cat "$table"
for n in "${notes[@]}"; do echo "note: $n"; done
if grep -q ' none$' "$table"; then
  # The mid-end rewrites some opcodes into others (udiv by a constant into umulhi, bxor with -1
  # into bnot), so a planted bug can reduce to a case without its opcode.
  echo "note: 'none' = neither the identity nor the optimised code names a planted opcode, nor the localisation a planted stage"
fi
left=$(sed -n 's/.*; \([0-9]*\) left$/\1/p' "$results/triage.log" | tail -n1)
echo "new findings: $new, known: $known; triage items left on disk: ${left:-?}"
echo "wall time: $(IFS=,; echo "${timings[*]}" | sed 's/,/, /g')"

status=0
for i in "${!planted_ops[@]}"; do
  op=${planted_ops[$i]}
  if [ -n "${proven[$op]:-}" ]; then
    echo "FOUND   $(basename "${patches[$i]}") ($op): ${proven[$op]}"
  else
    echo "MISSED  $(basename "${patches[$i]}") ($op): no new finding names $op with a reproducer that fails on planted and passes on pristine"
    status=1
  fi
done
echo "results: $results (findings/, table.txt, triage.log; run-planted.txt and run-pristine.txt beside each new finding's reduced.clif)"
if $keep; then
  echo "builds kept: $scratch/bin/planted/clif-diff, $scratch/bin/pristine/clif-diff"
fi
exit $status
