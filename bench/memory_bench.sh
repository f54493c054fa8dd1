#!/usr/bin/env bash
# Peak RSS of `fruitpipe run` against the number of images (issue 9): memory must not grow with
# the corpus. Figures, not a test (docs/robustness.md keeps the last ones).
#   bench/memory_bench.sh [BUILD_DIR] [COUNT_FOR_SYNTHETIC]
# Sources:
#   dev Test                1,800 images (100x100)
#   dev Training + Test     6,360 images as one source (class folders of per-file symlinks)
#   synthetic               50,000 generated 100x100 JPEGs (tests/hostile make_test_images)
# Each source runs at the model's 224x224 input and at --input-size 96 (the synthetic source
# only at 96, to keep it affordable): compare rows with the same input size. Peak RSS comes
# from /usr/bin/time (%M, the largest resident set of the process).
set -euo pipefail
build=${1:-build}
synthetic=${2:-50000}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${FRUITPIPE_SHARED_DIR:-$root/../shared}
model=${FRUITPIPE_MODEL:-$shared/models/mobilenet_v2_features.json}
bin=$root/$build/fruitpipe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --build "$root/$build" --target fruitpipe make_test_images >/dev/null

# Training and Test as one source: real class folders, one symlink per image (the splits
# share class names and some file names, hence the prefix).
for split in Training Test; do
  for dir in "$shared/data/fruits360-dev/$split"/*/; do
    cls=$(basename "$dir")
    mkdir -p "$work/both/$cls"
    for f in "$dir"*; do ln -s "$f" "$work/both/$cls/${split}_$(basename "$f")"; done
  done
done
start=$(date +%s)
"$root/$build/make_test_images" tiny "$work/synthetic" "$synthetic" 100 >/dev/null
echo "generated $synthetic synthetic images in $(($(date +%s) - start)) s ($(du -sh "$work/synthetic" | cut -f1))"

echo "== peak RSS of fruitpipe run ($(nproc) cores)"
printf '%-22s %7s %6s %7s %9s %9s %8s\n' source images input shards seconds "peak MiB" rejected
measure() {  # name source input_size
  local name=$1 src=$2 size=$3 out=$work/out-$1-$3
  /usr/bin/time -f "%M %e" -o "$work/time" \
    "$bin" run "$src" "$out" --model "$model" --input-size "$size" --pca-k 16 --quiet --json >"$work/run.json"
  read -r kb secs <"$work/time"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
    const [name, size, kb, secs] = process.argv.slice(2);
    console.log(`${name.padEnd(22)} ${String(r.images).padStart(7)} ${size.padStart(6)} ${String(r.shards_total).padStart(7)} ${Number(secs).toFixed(1).padStart(9)} ${(kb / 1024).toFixed(0).padStart(9)} ${String(r.rejected).padStart(8)}`);
  ' "$work/run.json" "$name" "$size" "$kb" "$secs"
  rm -rf "$out"
}
measure "dev Test" "$shared/data/fruits360-dev/Test" 224
measure "dev Training+Test" "$work/both" 224
measure "dev Test" "$shared/data/fruits360-dev/Test" 96
measure "dev Training+Test" "$work/both" 96
measure "synthetic" "$work/synthetic" 96
