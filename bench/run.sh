#!/usr/bin/env bash
# Every benchmark, one after the other, printing figures (not pass/fail):
#   bench/run.sh BUILD_DIR
# Each part can be run alone; see bench/README.md. Run on an otherwise idle machine:
# oneDNN's OpenMP team collapses when another process takes a core.
set -uo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
echo "fruitpipe benchmarks on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
run() {
  local script=$here/$1
  shift
  if [ -x "$script" ] || [ -f "$script" ]; then
    echo
    bash "$script" "$build" "$@" || echo "(benchmark $1 failed: exit $?)"
  fi
}
run pipeline_bench.sh                # end-to-end fruitpipe run: images/s, per stage, peak RSS
run engine_bench.sh                  # inference only: ORT vs oneDNN vs OpenCV, sizes, precisions
run s3_pipeline_bench.sh             # s3 -> s3 vs local -> local
[ -x "$build/bench/s3_read_bench" ] && { echo; "$build/bench/s3_read_bench"; }
run identify_bench.sh                # the identifier on real photos: top-1, species, flagged rates, training time
run serve_bench.sh                   # identification service: latency and req/s under load
run memory_bench.sh                  # peak RSS vs number of images
