#!/usr/bin/env bash
# Runs the whole test suite of a build tree with CTest; the last line is CTest's summary.
#   scripts/run-tests.sh BUILD_DIR [ctest args...]
# With FRUITPIPE_TEST_SUMMARY=FILE, appends "BUILD_DIR: <CTest's summary line>" to FILE
# (`make test` totals the suites with scripts/test-summary.sh).
set -euo pipefail
build=${1:-build}
shift || true
cd "$(dirname "$0")/.."
export FRUITPIPE_SHARED_DIR=${FRUITPIPE_SHARED_DIR:-$(cd .. && pwd)/shared}
# Tests never reach the EC2 metadata service (or any non-loopback address).
export AWS_EC2_METADATA_DISABLED=true
# CI makes the tests that need ../shared (real model, dev data) mandatory.
if [ "${CI:-}" = "true" ]; then export FRUITPIPE_REQUIRE_SHARED=1; fi
# Sanitized builds (make asan): UBSan stops at its first report, with a stack. Plain builds
# ignore it.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
(cd "$build" && ctest --output-on-failure --timeout 1200 -j2 "$@") 2>&1 | tee "$log" || status=$?
if [ -n "${FRUITPIPE_TEST_SUMMARY:-}" ]; then
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)
  mkdir -p "$(dirname "$FRUITPIPE_TEST_SUMMARY")"
  echo "$build: ${line:-no CTest summary (exit $status)}" >>"$FRUITPIPE_TEST_SUMMARY"
fi
exit "$status"
