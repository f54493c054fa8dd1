#!/usr/bin/env bash
# Featurization figures in one command (issue 8): ONNX Runtime via onnxruntime-node (the peer),
# fruitpipe inference-only per backend/precision/input size, fruitpipe end-to-end
# (`fruitpipe run` on the dev Test split), ratios to ONNX Runtime and percent of FMA peak; then
# the decode/inference arrangements and the int8/size accuracy study (engine_bench sections).
# Rounds interleave ORT and fruitpipe and keep each configuration's best, so a neighbour's
# burst on a shared machine costs a round, not the figure.
#
# Usage: bench/engine_bench.sh [BUILD_DIR]      (default build/)
#   ROUNDS=3  SECONDS_PER=3  THREADS=1,2  SIZES=224,160,128,96  SECTIONS=arrangements,accuracy
#   (SECTIONS= empty skips the slow studies)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bench=$build/bench/engine_bench
card=${FRUITPIPE_MODEL:-$root/../shared/models/mobilenet_v2_features.json}
data=$root/../shared/data/fruits360-dev
rounds=${ROUNDS:-3}
seconds=${SECONDS_PER:-3}
threads=${THREADS:-1,2}
sizes=${SIZES:-224,160,128,96}
sections=${SECTIONS-arrangements,accuracy}

[[ -x $bench ]] || { echo "engine_bench.sh: build $bench first (cmake --build $build --target engine_bench)" >&2; exit 1; }
model=$(node -e 'const p = require("path"), c = JSON.parse(require("fs").readFileSync(process.argv[1]));
  console.log(p.resolve(p.dirname(process.argv[1]), c.file))' "$card")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# model $model, batch 32, $rounds interleaved rounds of ${seconds}s, best per configuration"
for ((r = 1; r <= rounds; r++)); do
  node "$root/bench/ort_bench.mjs" --model "$model" --threads "$threads" --seconds "$seconds" >>"$tmp/ort.tsv"
  "$bench" --card "$card" --sections throughput --threads "$threads" --sizes "$sizes" --seconds "$seconds" \
    >>"$tmp/fp.tsv"
  echo "# round $r/$rounds done (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
done
grep '^# FMA' "$tmp/fp.tsv" | sort -t: -k2 -g | tail -1
peak=$(grep '^# FMA' "$tmp/fp.tsv" | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/' | sort -g | tail -1)
gflop224=$(grep '^# GFLOP' "$tmp/fp.tsv" | head -1 | sed 's/.*224 \([0-9.]*\),.*/\1/')

echo
printf '%-8s %-10s %-5s %5s %8s %9s %7s %9s %9s %8s\n' engine precision size thr img/s GFLOP/s %peak img/cpu-s %peak/cpu "x ORT"
awk -F'\t' -v peak="$peak" -v g224="$gflop224" '
  FILENAME ~ /ort/ { if ($5 > ort[$2]) ort[$2] = $5; if ($8 > ortcpu[$2]) ortcpu[$2] = $8; next }
  /^fruitpipe/ { key = $2 "\t" $3 "\t" $4 "\t" $5; if ($7 > best[key]) { best[key] = $7; gf[key] = $8; cpu[key] = $10 }
                 if ($10 > cpu[key]) cpu[key] = $10; order[key] = ++n }
  END {
    for (t in ort) printf "%-8s %-10s %-5s %5s %8.1f %9.1f %6.0f%% %9.1f %8.0f%% %8s\n", "ort", "fp32", 224, t, ort[t],
                          ort[t] * g224, 100 * ort[t] * g224 / (peak * t), ortcpu[t], 100 * ortcpu[t] * g224 / peak, "1.00"
    for (k in best) {
      split(k, f, "\t")
      ratio = (f[4] in ort) ? sprintf("%.2f", best[k] / ort[f[4]]) : "-"
      printf "%-8s %-10s %-5s %5s %8.1f %9.1f %6.0f%% %9.1f %8.0f%% %8s\n", f[1], f[2], f[3], f[4], best[k], gf[k],
             100 * gf[k] / (peak * f[4]), cpu[k], 100 * cpu[k] * gf[k] / best[k] / peak, ratio
    }
  }' "$tmp/ort.tsv" "$tmp/fp.tsv" | sort -k1,1r -k2,2 -k3,3nr -k4,4n
echo "# %peak: GFLOP/s over threads x the FMA peak; img/cpu-s and %peak/cpu: per CPU-second of the process, what"
echo "#   one core delivers even on a shared machine (for a team of threads it includes their spinning)"
echo "# x ORT: images/s over ONNX Runtime's at 224 with the same threads (smaller sizes: the speed-up of the trade)"

if [[ -x $build/fruitpipe && -d $data/Test ]]; then
  echo
  echo "# end-to-end: fruitpipe run $data/Test (decode -> features -> Parquet -> PCA), images/s from run.json"
  for config in "onednn fp32" "onednn int8" "opencv fp32"; do
    set -- $config
    extra=()
    [[ $2 == int8 ]] && extra=(--calibration-dir "$data/Training")
    best=0
    for ((r = 1; r <= rounds; r++)); do
      rm -rf "$tmp/run"
      rate=$("$build/fruitpipe" run "$data/Test" "$tmp/run" --model "$card" --backend "$1" --precision "$2" \
        "${extra[@]}" --quiet --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>
        console.log(JSON.parse(s).images_per_second))')
      best=$(awk -v a="$best" -v b="$rate" 'BEGIN { print (b > a) ? b : a }')
    done
    ort2=$(awk -F'\t' '$2 == 2 && $5 > m { m = $5 } END { print m + 0 }' "$tmp/ort.tsv")
    awk -v c="$config" -v b="$best" -v o="$ort2" \
      'BEGIN { printf "end-to-end %-12s %8.1f img/s   x ORT inference-only (2 threads): %s\n", c, b, (o > 0) ? sprintf("%.2f", b / o) : "-" }'
  done
fi

if [[ -n $sections ]]; then
  echo
  "$bench" --card "$card" --sections "$sections" --sizes "$sizes" --seconds "$seconds"
fi
