#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in BUILD_DIR and runs each
# for SECONDS from its committed seed corpus through CTest (label "fuzz", two at a time), then
# prints executions and corpus size per target. Exit status non-zero when any target finds a
# crash, leak, timeout or out-of-memory input (the failing target's log tail is printed).
#   scripts/run-fuzzers.sh [BUILD_DIR] [SECONDS] [TARGET...]
# Longer campaigns and reproducing a finding: docs/robustness.md.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-60}
shift 2 || shift $#
targets=${*:-parquet_fuzzer image_fuzzer model_card_fuzzer pca_fuzzer serve_fuzzer metadata_strip_fuzzer}
cd "$(dirname "$0")/.."

# Every library is instrumented for coverage (fuzzer-no-link) and sanitized; only the fuzz
# binaries link libFuzzer's main. No unit tests in this tree: it exists for the fuzzers.
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFRUITPIPE_BUILD_FUZZERS=ON -DFRUITPIPE_SANITIZE=ON -DFRUITPIPE_BUILD_BENCH=OFF -DFRUITPIPE_BUILD_TESTS=OFF \
  -DFRUITPIPE_FUZZ_SECONDS="$seconds" \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
build_targets=$targets
case " $targets " in *" serve_fuzzer "*) build_targets="$targets fruitpipe" ;; esac
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $build_targets

status=0
bash scripts/run-tests.sh "$build" -L fuzz -R "^fuzz\.($(echo $targets | tr ' ' '|'))\$" || status=$?
echo "fuzz figures ($seconds s per target):"
for t in $targets; do
  log=$build/fuzz/work/$t/fuzz.log
  execs=$( [ -f "$log" ] && sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 )
  printf '  %-18s %10s executions  %5s corpus files\n' "$t" "${execs:-skipped}" \
    "$(ls "$build/fuzz/work/$t/corpus" 2>/dev/null | wc -l)"
done
exit "$status"
