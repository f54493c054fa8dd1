#!/usr/bin/env bash
# Trains the identification model on the dev-training fixture once per test session; the
# identify and serve tests read it (CTest fixture dev_model).
#   dev_model.sh BINARY TRAIN_DATASET MODEL_DIR
# Exit 77 (skipped) when the training fixture was skipped (no ../shared), unless
# FRUITPIPE_REQUIRE_SHARED=1.
set -euo pipefail
bin=$1 train=$2 out=$3
if [ ! -f "$train/_SUCCESS" ]; then
  if [ "${FRUITPIPE_REQUIRE_SHARED:-0}" = 1 ]; then
    echo "dev_model: $train is missing and FRUITPIPE_REQUIRE_SHARED=1" >&2
    exit 1
  fi
  echo "SKIPPED: training fixture $train not built (no ../shared)"
  exit 77
fi
rm -rf "$out"
exec "$bin" train "$train" --out "$out"
