#!/usr/bin/env bash
# The local side of the S3 end-to-end tests, built once per test session (CTest fixture): the
# first 10 images (sorted) of each of the first 8 classes of the dev Test split, and a local
# `fruitpipe run` of them. The tests upload the same images to s3rver, run s3:// -> s3://
# with the same options, and expect the same rows.
#   reference.sh BINARY DIR   ->  DIR/src/<Class>/*.jpg, DIR/reference/
# Exit 77 (skipped) without ../shared unless FRUITPIPE_REQUIRE_SHARED=1.
set -euo pipefail
bin=$1 dir=$2
shared=${FRUITPIPE_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/../shared}
test_split=$shared/data/fruits360-dev/Test
model=$shared/models/mobilenet_v2_features.json
if [ ! -d "$test_split" ] || [ ! -f "$model" ]; then
  if [ "${FRUITPIPE_REQUIRE_SHARED:-0}" = 1 ]; then
    echo "reference.sh: $shared is missing and FRUITPIPE_REQUIRE_SHARED=1" >&2
    exit 1
  fi
  echo "SKIPPED: dev data/model not found at $shared (set FRUITPIPE_SHARED_DIR)"
  exit 77
fi
export LC_ALL=C  # bytewise order, as fruitpipe lists
rm -rf "$dir"
mkdir -p "$dir/src"
ls "$test_split" | sort | head -8 | while IFS= read -r class; do
  mkdir -p "$dir/src/$class"
  ls "$test_split/$class" | sort | head -10 | while IFS= read -r f; do
    cp "$test_split/$class/$f" "$dir/src/$class/"
  done
done
# 80 images in 5 shards of 16; the tests pass the same --shard-size and --pca-k.
exec "$bin" run "$dir/src" "$dir/reference" --model "$model" --shard-size 16 --pca-k 8 --quiet
