#!/usr/bin/env bash
# End-to-end time of `fruitpipe run` s3:// -> s3:// against local -> local on the same images
# (the dev Test split, 1,800 images): s3rver on 127.0.0.1 holds the images and receives the
# outputs. Figures, not a test; both runs must produce the same number of rows.
#   bench/s3_pipeline_bench.sh BUILD_DIR [SPLIT]
# FRUITPIPE_BENCH_LATENCY_MS=10 adds a third run through tests/harness/fault_proxy.mjs holding
# every request back that long (a round trip to S3 in the same region, from EC2).
# s3rver is single-threaded node on the same cores as fruitpipe: the S3 figure is a floor.
set -euo pipefail
build=${1:-build}
split=${2:-Test}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${FRUITPIPE_SHARED_DIR:-$root/../shared}
model=${FRUITPIPE_MODEL:-$shared/models/mobilenet_v2_features.json}
images=$shared/data/fruits360-dev/$split
bin=$root/$build/fruitpipe
latency=${FRUITPIPE_BENCH_LATENCY_MS:-0}
[ -x "$bin" ] || { echo "s3_pipeline_bench: $bin not built" >&2; exit 1; }
[ -d "$images" ] || { echo "s3_pipeline_bench: $images not found (set FRUITPIPE_SHARED_DIR)" >&2; exit 1; }

work=$(mktemp -d)
proxy_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  "$root/tests/harness/s3rver.sh" stop "$work/s3rver" || true
  rm -rf "$work"
}
trap cleanup EXIT

# Loopback only, test key pair, never a metadata service (s3rver.sh prints these).
eval "$("$root/tests/harness/s3rver.sh" start "$work/s3rver" fruits)"
unset AWS_PROFILE AWS_SESSION_TOKEN
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# Upload with curl's SigV4 (libcurl >= 7.75), 16 transfers in parallel; keys are
# <split>/<Class>/<file>, spaces escaped in the URL.
: >"$work/upload.cfg"
count=0
while IFS= read -r f; do
  printf 'upload-file = "%s"\nurl = "%s/fruits/%s/%s"\noutput = "/dev/null"\n' \
    "$images/$f" "$AWS_ENDPOINT_URL" "$split" "${f// /%20}" >>"$work/upload.cfg"
  count=$((count + 1))
done < <(cd "$images" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
t0=$(now)
curl --no-progress-meter --fail -Z --parallel-max 16 --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -K "$work/upload.cfg"
echo "== fruitpipe run, $split split: $count images uploaded to s3rver in $(elapsed "$t0" "$(now)") s"
echo "   $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"

common=(--model "$model" --quiet --json)
# run NAME SRC OUT [options]: wall seconds of one run; run.json kept in $work/NAME.json
run() {
  local name=$1 src=$2 out=$3
  shift 3
  local t0
  t0=$(now)
  "$bin" run "$src" "$out" "${common[@]}" "$@" >"$work/$name.json"
  elapsed "$t0" "$(now)"
}
# On a shared machine featurization time swings with the load; wall time minus the featurize
# stage is what storage adds (listing, reads not hidden behind compute, writes, PCA).
summary() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
    const st = Object.entries(r.stages).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ");
    const rest = Number(process.argv[2]) - r.stages.featurize;
    process.stdout.write(`${rest.toFixed(1).padStart(9)}  ${r.images} rows, ${r.rejected} rejected; stages (s): ${st}`);
  ' "$work/$1.json" "$2"
}

# The S3 run must hold what the local run holds.
same_rows() {
  node -e '
    const f = require("fs");
    const [a, b] = process.argv.slice(1).map((p) => JSON.parse(f.readFileSync(p)));
    if (a.images !== b.images || a.rejected !== b.rejected) process.exit(1);
  ' "$work/local.json" "$work/$1.json" || { echo "s3_pipeline_bench: the $1 run's rows differ from the local run's" >&2; exit 1; }
}

local_s=$(run local "$images" "$work/local-out")
s3_s=$(run s3 "s3://fruits/$split" "s3://fruits/out" --s3-endpoint "$AWS_ENDPOINT_URL" --region "$AWS_REGION")
printf '%-22s %9s %9s  %s\n' "" "wall (s)" "rest (s)" "(rest = wall - featurize stage)"
printf '%-22s %9s %s\n' "local -> local" "$local_s" "$(summary local "$local_s")"
printf '%-22s %9s %s\n' "s3 -> s3 (loopback)" "$s3_s" "$(summary s3 "$s3_s")"
same_rows s3
echo "ratio s3/local: $(awk -v a="$s3_s" -v b="$local_s" 'BEGIN { printf "%.2f", a / b }')"

if [ "$latency" -gt 0 ]; then
  port=$(cat "$work/s3rver/s3rver.port")
  node "$root/tests/harness/fault_proxy.mjs" --target "127.0.0.1:$port" --delay-ms "$latency" >"$work/proxy.out" &
  proxy_pid=$!
  for _ in $(seq 1 100); do [ -s "$work/proxy.out" ] && break; sleep 0.1; done
  proxy_port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$work/proxy.out")
  slow_s=$(run s3-latency "s3://fruits/$split" "s3://fruits/out-latency" --s3-endpoint "http://127.0.0.1:$proxy_port" \
    --region "$AWS_REGION")
  same_rows s3-latency
  printf '%-22s %9s %s\n' "s3 -> s3 (+${latency} ms)" "$slow_s" "$(summary s3-latency "$slow_s")"
  echo "ratio s3(+${latency} ms)/local: $(awk -v a="$slow_s" -v b="$local_s" 'BEGIN { printf "%.2f", a / b }')"
fi
