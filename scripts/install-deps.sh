#!/usr/bin/env bash
# Installs everything fruitpipe needs to build, test and benchmark on a fresh Debian 12
# machine (as root, or with sudo): Debian packages and the npm test peers. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages (one concern per line).
PACKAGES=(
  build-essential cmake pkg-config git ca-certificates time
  libopencv-dev                      # image decoding, OpenCV DNN reference backend
  libeigen3-dev                      # PCA, classifier
  liblapacke-dev libopenblas-openmp-dev   # PCA eigensolver (LAPACK on OpenBLAS)
  libssl-dev libcurl4-openssl-dev libpugixml-dev   # hashes, S3 client
  libsnappy-dev libzstd-dev zlib1g-dev             # Parquet compression
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev
  openmpi-bin libopenmpi-dev         # cluster runs
  libcpp-httplib-dev                 # identification service
  libdnnl-dev libonnx-dev libprotobuf-dev protobuf-compiler   # oneDNN engine
  libsqlite3-dev                     # consent ledger
  libjpeg62-turbo-dev libpng-dev libwebp-dev   # image decoding; test images (CMYK JPEG, crafted PNG)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev libomp-dev   # libFuzzer (clang build: OpenMP from libomp)
  chromium                           # report tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js 20 ships with this machine image (with npm); Debian's nodejs is the fallback.
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm peers, pinned by tools/node/package-lock.json. onnxruntime-node's install script
# downloads GPU binaries we do not need: its CPU binary ships inside the package.
if [ ! -d tools/node/node_modules/@duckdb/node-api ] || [ ! -d tools/node/node_modules/@20minutes/s3rver ] \
   || [ tools/node/package-lock.json -nt tools/node/node_modules/.package-lock.json ]; then
  echo "install-deps: installing npm test peers into tools/node"
  (cd tools/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "install-deps: ok"
