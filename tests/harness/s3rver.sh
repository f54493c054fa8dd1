#!/usr/bin/env bash
# Starts or stops a loopback s3rver for CI jobs and manual runs (the C++ tests start their
# own through the same s3rver.mjs).
#
#   tests/harness/s3rver.sh start DIR [BUCKET...]   # prints the environment to use
#   tests/harness/s3rver.sh stop DIR
#
# `start` keeps the server's pid and port in DIR/s3rver.pid and DIR/s3rver.port, and prints
# lines for `eval`: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID=S3RVER, AWS_SECRET_ACCESS_KEY=S3RVER,
# AWS_REGION=eu-west-1 and AWS_EC2_METADATA_DISABLED=true (never query a metadata service).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd="${1:-}"
dir="${2:-}"
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start DIR [BUCKET...] | stop DIR" >&2
  exit 2
fi
shift 2
case "$cmd" in
  start)
    command -v node >/dev/null || { echo "s3rver.sh: node is not installed" >&2; exit 1; }
    mkdir -p "$dir/data"
    args=()
    for b in "$@"; do args+=(--bucket "$b"); done
    node --openssl-legacy-provider "$here/s3rver.mjs" --directory "$dir/data" "${args[@]}" >"$dir/s3rver.out" 2>"$dir/s3rver.err" &
    echo $! >"$dir/s3rver.pid"
    for _ in $(seq 1 100); do
      if [[ -s "$dir/s3rver.out" ]]; then break; fi
      if ! kill -0 "$(cat "$dir/s3rver.pid")" 2>/dev/null; then
        echo "s3rver.sh: s3rver exited: $(cat "$dir/s3rver.err")" >&2
        exit 1
      fi
      sleep 0.1
    done
    port="$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$dir/s3rver.out" | head -1)"
    if [[ -z "$port" ]]; then
      echo "s3rver.sh: s3rver did not report a port within 10 s" >&2
      kill "$(cat "$dir/s3rver.pid")" 2>/dev/null || true
      exit 1
    fi
    echo "$port" >"$dir/s3rver.port"
    echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
    echo "export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=eu-west-1"
    echo "export AWS_EC2_METADATA_DISABLED=true"
    ;;
  stop)
    if [[ -f "$dir/s3rver.pid" ]]; then
      kill "$(cat "$dir/s3rver.pid")" 2>/dev/null || true
      rm -f "$dir/s3rver.pid" "$dir/s3rver.port"
    fi
    ;;
  *)
    echo "usage: $0 start DIR [BUCKET...] | stop DIR" >&2
    exit 2
    ;;
esac
