#!/usr/bin/env bash
# Trains the identification model once per test session, the way a user does: Fruits-360
# dev Training and real photos, with negatives (CTest fixture dev_model); the identify and
# serve tests read it. --augment-images keeps it quick: views of 64 photos per dataset.
#   dev_model.sh BINARY FIXTURE_DIR
# Exit 77 (skipped) when the datasets were skipped (no ../shared), unless
# FRUITPIPE_REQUIRE_SHARED=1.
set -euo pipefail
bin=$1 fixtures=$2
for d in dev-training real-training negatives; do
  if [ ! -f "$fixtures/$d/_SUCCESS" ]; then
    if [ "${FRUITPIPE_REQUIRE_SHARED:-0}" = 1 ]; then
      echo "dev_model: $fixtures/$d is missing and FRUITPIPE_REQUIRE_SHARED=1" >&2
      exit 1
    fi
    echo "SKIPPED: fixture $fixtures/$d not built (no ../shared)"
    exit 77
  fi
done
rm -rf "$fixtures/dev-model"
exec "$bin" train "$fixtures/dev-training" "$fixtures/real-training" --negatives "$fixtures/negatives" \
  --out "$fixtures/dev-model" --augment-images 64 --quiet
