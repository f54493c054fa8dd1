#!/usr/bin/env bash
# Load test of `fruitpipe serve` over loopback (a benchmark, not a test): p50/p99 latency and
# requests/s at 1, 4 and 16 concurrent clients, then the same with 25% hostile requests.
#   bench/serve_bench.sh [BUILD_DIR]        (default: build)
# Environment: DURATION (seconds per level, default 10), THREADS (server workers, default all
# cores), CLIENTS (default 1,4,16), SHARED (default ../shared).
# Uses BUILD_DIR/fixtures/dev-training and dev-model when the tests built them; otherwise
# builds the Training dataset and trains a model under BUILD_DIR/bench-serve.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/fruitpipe
loadgen=$build/loadgen
shared=${SHARED:-$(cd .. && pwd)/shared}
duration=${DURATION:-10}
clients=${CLIENTS:-1,4,16}
threads=${THREADS:-$(nproc)}
for f in "$bin" "$loadgen"; do
  [ -x "$f" ] || { echo "serve_bench: $f missing: cmake --build $build --target fruitpipe loadgen" >&2; exit 1; }
done
[ -d "$shared/data/fruits360-dev/Test" ] || { echo "serve_bench: no dev data at $shared" >&2; exit 1; }
export FRUITPIPE_MODEL=${FRUITPIPE_MODEL:-$shared/models/mobilenet_v2_features.json}

work=$build/bench-serve
mkdir -p "$work"
train=$build/fixtures/dev-training
model=$build/fixtures/dev-model
if [ ! -f "$model/model.json" ]; then
  if [ ! -f "$train/_SUCCESS" ]; then
    train=$work/dev-training
    [ -f "$train/_SUCCESS" ] || "$bin" run "$shared/data/fruits360-dev/Training" "$train" --quiet
  fi
  model=$work/model
  grep -qs "fruitpipe-identifier/2" "$model/model.json" || "$bin" train "$train" --out "$model"
fi

log=$work/serve.log
"$bin" serve "$model" --port 0 --threads "$threads" --quiet-requests >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
port=
for _ in $(seq 1 600); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log")
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "serve_bench: server did not start" >&2; cat "$log" >&2; exit 1; }

echo "fruitpipe serve: $(head -1 "$log" | sed 's/.*(\(.*\))/\1/'); $(nproc) cores; ${duration}s per level"
"$loadgen" --port "$port" --images "$shared/data/fruits360-dev/Test" --clients "$clients" --duration "$duration"
"$loadgen" --port "$port" --images "$shared/data/fruits360-dev/Test" --clients "$clients" --duration "$duration" \
  --hostile 0.25 --oversize-bytes $(((20 << 20) + 1))
echo "columns: req/s all requests; good/s and latencies of the good (non-hostile) requests only;"
echo "bad-good = good requests not answered 200; errors = transport errors (hostile oversized bodies may be cut off)"

kill -TERM $pid
wait $pid
trap - EXIT
echo "server exit status 0 after SIGTERM; $(tail -1 "$log")"
