#!/usr/bin/env bash
# The identifier on real photos (a benchmark, not a test): the checks' own commands at their
# defaults, then the figures of docs/serving.md.
#   bench/identify_bench.sh [BUILD_DIR]      (SHARED: default ../shared)
# Runs Fruits-360 dev Training, realworld-dev Training and the even half of the negatives
# (Unknown/<name>/ and Offtopic/, by file order) with `fruitpipe run DIR OUT`, trains
# `fruitpipe train F360 REAL --negatives NEG --out CLF` (time per stage), then evaluates on
# realworld-dev Validation with the odd half of Offtopic/ as the off-topic folder, on the odd
# half of Unknown/, and on the dev Test split.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$(realpath "$build/fruitpipe")
shared=${SHARED:-$(cd .. && pwd)/shared}
export FRUITPIPE_MODEL=${FRUITPIPE_MODEL:-$shared/models/mobilenet_v2_features.json}
real=$shared/data/realworld-dev
[ -d "$real/Training" ] || { echo "identify_bench: no realworld-dev at $shared" >&2; exit 1; }
work=$build/bench-identify
rm -rf "$work"
mkdir -p "$work/neg-src/Offtopic" "$work/unk-src" "$work/offtopic"
half() {  # half SRC LEARN KEEP: alternate files in name order
  mkdir -p "$2" "$3"
  local i=0
  while IFS= read -r f; do
    if ((i % 2 == 0)); then cp "$f" "$2/"; else cp "$f" "$3/"; fi
    i=$((i + 1))
  done < <(find "$1" -maxdepth 1 -type f -name '*.jpg' | LC_ALL=C sort)
}
for d in "$real"/Unknown/*/; do half "$d" "$work/neg-src/$(basename "$d")" "$work/unk-src/$(basename "$d")"; done
half "$real/Offtopic" "$work/neg-src/Offtopic" "$work/offtopic"

t0=$(date +%s.%N)
for pair in "$shared/data/fruits360-dev/Training:f360" "$real/Training:real" "$work/neg-src:neg" \
            "$real/Validation:val" "$work/unk-src:unk" "$shared/data/fruits360-dev/Test:test"; do
  "$bin" run "${pair%%:*}" "$work/${pair##*:}" --quiet >/dev/null
done
t1=$(date +%s.%N)
echo "identify_bench: datasets built in $(echo "$t1 - $t0" | bc) s"
"$bin" train "$work/f360" "$work/real" --negatives "$work/neg" --out "$work/clf" --quiet
for args in "$work/val --offtopic $work/offtopic" "$work/unk" "$work/test"; do
  # shellcheck disable=SC2086
  "$bin" evaluate "$work/clf" $args --quiet --no-report
done
