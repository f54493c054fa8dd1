#!/usr/bin/env bash
# One bounded libFuzzer run (the CTest "fuzz" label and scripts/run-fuzzers.sh):
#   run_fuzzer.sh FUZZER SEED_DIR WORK_DIR SECONDS [libFuzzer flags...]
# Seeds are read from SEED_DIR (committed, never written); new inputs go to WORK_DIR/corpus,
# crashes to WORK_DIR/crash-*. Prints "<target>: N executions in S s" and exits non-zero on
# any finding. serve_fuzzer needs a model directory: FRUITPIPE_FUZZ_MODEL_DIR, or one trained
# here on 20 dev images with $FRUITPIPE_FUZZ_FRUITPIPE (exit 77 = skipped without ../shared).
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4
shift 4
name=$(basename "$fuzzer")
mkdir -p "$work/corpus"

if [ "$name" = serve_fuzzer ] && [ -z "${FRUITPIPE_FUZZ_MODEL_DIR:-}" ]; then
  src_dir=${FRUITPIPE_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
  shared=${FRUITPIPE_SHARED_DIR:-$src_dir/../shared}
  card=$shared/models/mobilenet_v2_features.json
  if [ ! -f "$card" ] || [ -z "${FRUITPIPE_FUZZ_FRUITPIPE:-}" ]; then
    if [ "${FRUITPIPE_REQUIRE_SHARED:-0}" = 1 ]; then
      echo "serve_fuzzer: needs $card and FRUITPIPE_FUZZ_FRUITPIPE" >&2
      exit 1
    fi
    echo "SKIPPED: serve_fuzzer needs the dev model at $shared"
    exit 77
  fi
  if ! grep -qs "fruitpipe-identifier/2" "$work/model/model.json"; then
    rm -rf "$work/images" "$work/dataset" "$work/model"
    for cls in Banana Kiwi; do
      mkdir -p "$work/images/$cls"
      ls "$shared/data/fruits360-dev/Test/$cls" | sort | head -10 |
        while read -r f; do ln -s "$shared/data/fruits360-dev/Test/$cls/$f" "$work/images/$cls/$f"; done
    done
    "$FRUITPIPE_FUZZ_FRUITPIPE" run "$work/images" "$work/dataset" --model "$card" --pca-k 4 --quiet >/dev/null
    "$FRUITPIPE_FUZZ_FRUITPIPE" train "$work/dataset" --out "$work/model" --augment-images 4 --quiet >/dev/null
  fi
  export FRUITPIPE_FUZZ_MODEL_DIR=$work/model FRUITPIPE_MODEL=$card
fi

# ASan: leaks are findings; UBSan: stop at the first report (docs/robustness.md).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log=$work/fuzz.log
status=0
# -error_exitcode=1: libFuzzer's default (77) is the code this script and CTest read as "skipped".
"$fuzzer" "$work/corpus" "$seeds" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 -error_exitcode=1 -artifact_prefix="$work/" "$@" >"$log" 2>&1 || status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
echo "$name: ${execs:-?} executions in $seconds s, corpus $(ls "$work/corpus" | wc -l) files (log: $log)"
if [ "$status" != 0 ]; then
  tail -60 "$log"
  echo "$name: FAILED (exit $status); reproduce with: $fuzzer $(ls -t "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | head -1)"
fi
exit "$status"
