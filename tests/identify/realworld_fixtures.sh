#!/usr/bin/env bash
# Builds the real-photo datasets from ../shared/data/realworld-dev once per test session
# (CTest fixture realworld); the identify and serve tests read them.
#   realworld_fixtures.sh BINARY FIXTURE_DIR
# Negatives are split in two by file order: even-numbered photos are learnt (negatives),
# odd-numbered ones are kept apart to measure the unknown answer on photos never trained on
# (unknown-eval, a dataset, and offtopic-eval, a flat folder).
# Exit 77 (skipped) without ../shared unless FRUITPIPE_REQUIRE_SHARED=1.
set -euo pipefail
bin=$1 fixtures=$2
shared=${FRUITPIPE_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/../shared}
real=$shared/data/realworld-dev
model=$shared/models/mobilenet_v2_features.json
if [ ! -d "$real/Training" ] || [ ! -f "$model" ]; then
  if [ "${FRUITPIPE_REQUIRE_SHARED:-0}" = 1 ]; then
    echo "realworld_fixtures: $real is missing and FRUITPIPE_REQUIRE_SHARED=1" >&2
    exit 1
  fi
  echo "SKIPPED: realworld-dev data/model not found at $shared (set FRUITPIPE_SHARED_DIR)"
  exit 77
fi
run() { "$bin" run "$1" "$2" --model "$model" --quiet; }
rm -rf "$fixtures"/real-training "$fixtures"/real-validation "$fixtures"/negatives "$fixtures"/unknown-eval \
  "$fixtures"/negatives-src "$fixtures"/unknown-eval-src "$fixtures"/offtopic-eval
mkdir -p "$fixtures"/negatives-src/Offtopic "$fixtures"/offtopic-eval
# split SRC_DIR LEARN_DIR KEEP_DIR: alternate files (name order) between the two folders.
split() {
  mkdir -p "$2" "$3"
  local i=0
  while IFS= read -r f; do
    if ((i % 2 == 0)); then cp "$f" "$2/"; else cp "$f" "$3/"; fi
    i=$((i + 1))
  done < <(find "$1" -maxdepth 1 -type f -name '*.jpg' | LC_ALL=C sort)
}
for d in "$real"/Unknown/*/; do
  name=$(basename "$d")
  split "$d" "$fixtures/negatives-src/$name" "$fixtures/unknown-eval-src/$name"
done
split "$real/Offtopic" "$fixtures/negatives-src/Offtopic" "$fixtures/offtopic-eval"
run "$real/Training" "$fixtures/real-training"
run "$real/Validation" "$fixtures/real-validation"
run "$fixtures/negatives-src" "$fixtures/negatives"
run "$fixtures/unknown-eval-src" "$fixtures/unknown-eval"
