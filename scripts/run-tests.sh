#!/usr/bin/env bash
# Runs the whole test suite of a build tree with CTest; the last line is CTest's summary.
#   scripts/run-tests.sh BUILD_DIR [ctest args...]
set -euo pipefail
build=${1:-build}
shift || true
cd "$(dirname "$0")/.."
export FRUITPIPE_SHARED_DIR=${FRUITPIPE_SHARED_DIR:-$(cd .. && pwd)/shared}
# Tests never reach the EC2 metadata service (or any non-loopback address).
export AWS_EC2_METADATA_DISABLED=true
# CI makes the tests that need ../shared (real model, dev data) mandatory.
if [ "${CI:-}" = "true" ]; then export FRUITPIPE_REQUIRE_SHARED=1; fi
cd "$build"
ctest --output-on-failure --timeout 1200 -j2 "$@"
