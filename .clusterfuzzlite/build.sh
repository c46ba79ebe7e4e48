#!/bin/bash -eu
# Builds clif-diff's cargo-fuzz targets into $OUT, as OSS-Fuzz/ClusterFuzzLite expect. Also works
# by hand outside Docker: `SRC` and `OUT` default to this checkout's parent and `./out`.
here=$(cd "$(dirname "$0")/.." && pwd)
SRC=${SRC:-$(dirname "$here")}
OUT=${OUT:-$here/out}
mkdir -p "$OUT"
cd "$here/fuzz"
# OSS-Fuzz images default to nightly; elsewhere ask rustup for it.
toolchain=()
if ! rustc --version | grep -q nightly && rustup toolchain list 2>/dev/null | grep -q nightly; then
  toolchain=(+nightly)
fi
cargo "${toolchain[@]}" fuzz build -O --debug-assertions
target_dir=$(cargo "${toolchain[@]}" metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
triple=$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')
for t in differential jit_relocs; do
  cp "$target_dir/$triple/release/$t" "$OUT/"
  # Entropic scheduling's bookkeeping grows with the square of the features of an input, and
  # these inputs reach tens of thousands of PCs: off, the targets run 1.5x more inputs.
  printf '[libfuzzer]\nentropic = 0\n' > "$OUT/$t.options"
done
# Seed inputs: one libFuzzer input per generator feature (see corpus/fuzz-seeds/).
for t in differential jit_relocs; do
  if [ -d "$here/corpus/fuzz-seeds" ]; then
    (cd "$here/corpus/fuzz-seeds" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
  fi
done
echo "built: $(ls "$OUT")"
