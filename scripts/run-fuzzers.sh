#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in BUILD_DIR and runs each
# for SECONDS from its committed seed corpus, printing the executions per target. Exit status
# non-zero when any target finds a crash, leak, timeout or out-of-memory input.
#   scripts/run-fuzzers.sh [BUILD_DIR] [SECONDS] [TARGET...]
# Longer campaigns and reproducing a finding: docs/robustness.md.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-30}
shift 2 || shift $#
targets=${*:-parquet_fuzzer image_fuzzer model_card_fuzzer pca_fuzzer serve_fuzzer}
cd "$(dirname "$0")/.."
export FRUITPIPE_SHARED_DIR=${FRUITPIPE_SHARED_DIR:-$(cd .. && pwd)/shared}
export FRUITPIPE_SOURCE_DIR=$PWD
if [ "${CI:-}" = "true" ]; then export FRUITPIPE_REQUIRE_SHARED=1; fi

# Every library is instrumented for coverage (fuzzer-no-link) and sanitized; only the fuzz
# binaries link libFuzzer's main.
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFRUITPIPE_BUILD_FUZZERS=ON -DFRUITPIPE_SANITIZE=ON -DFRUITPIPE_BUILD_BENCH=OFF \
  -DFRUITPIPE_FUZZ_SECONDS="$seconds" \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
build_targets=$targets
case " $targets " in *" serve_fuzzer "*) build_targets="$targets fruitpipe" ;; esac
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $build_targets

failed=0
for t in $targets; do
  export FRUITPIPE_FUZZ_FRUITPIPE=$PWD/$build/fruitpipe
  status=0
  fuzz/run_fuzzer.sh "$build/fuzz/$t" "fuzz/corpus/$t" "$build/fuzz/work/$t" "$seconds" || status=$?
  if [ "$status" = 77 ]; then continue; fi
  if [ "$status" != 0 ]; then failed=1; fi
done
exit "$failed"
