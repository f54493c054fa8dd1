#!/usr/bin/env bash
# End-to-end figures of `fruitpipe run` (decode -> features -> Parquet -> PCA) on the dev
# subset: images/s overall and per stage, with the machine's core count. Figures, not a test.
#   bench/pipeline_bench.sh BUILD_DIR [SPLIT ...]
set -euo pipefail
build=${1:-build}
shift || true
splits=${*:-Test}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${FRUITPIPE_SHARED_DIR:-$root/../shared}
model=${FRUITPIPE_MODEL:-$shared/models/mobilenet_v2_features.json}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== fruitpipe run, end to end ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
printf '%-10s %-8s %7s %9s %10s  %s\n' split backend images seconds images/s "stage seconds (summed over shards)"
for split in $splits; do
  for backend in ${FRUITPIPE_BENCH_BACKENDS:-auto opencv}; do
    out=$work/$split-$backend
    "$root/$build/fruitpipe" run "$shared/data/fruits360-dev/$split" "$out" --model "$model" --backend "$backend" --quiet --json >"$out.json"
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
      const st = Object.entries(r.stages).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
      console.log(`${process.argv[2].padEnd(10)} ${r.model.backend.padEnd(8)} ${String(r.images).padStart(7)} ${r.seconds.toFixed(2).padStart(9)} ${r.images_per_second.toFixed(1).padStart(10)}  ${st}`);
      const shards = r.shard_timeline.filter(s => s.this_run);
      const per = shards.map(s => s.end - s.start);
      console.log(`           per shard: ${shards.length} shards, mean ${(per.reduce((a, b) => a + b, 0) / per.length).toFixed(2)} s; write ${(r.stages.write / shards.length * 1000).toFixed(0)} ms/shard; pca k=${r.pca.k}`);
    ' "$out.json" "$split"
    /usr/bin/time -f "           peak RSS %M KB" "$root/$build/fruitpipe" run "$shared/data/fruits360-dev/$split" "$out-rss" --model "$model" --backend "$backend" --quiet >/dev/null 2>"$out.time" || true
    tail -1 "$out.time"
  done
done

# Issue 4: one process against `mpirun -np 2` on the same cores (each rank sizes its threads to
# its share), and the largest rank's peak RSS (GNU time reports the biggest reaped descendant).
if command -v mpirun >/dev/null 2>&1; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  split=${splits%% *}
  echo "== $split: one process vs mpirun ($(nproc) cores)"
  printf '%-16s %7s %9s %10s %7s %13s\n' launch images seconds images/s shards "peak RSS MiB"
  for np in 1 2 3; do
    out=$work/mpi-$np
    launch=(mpirun -np "$np") label="mpirun -np $np"
    if [ "$np" = 1 ]; then launch=() label="single process"; fi
    /usr/bin/time -f "%M" -o "$out.rss" "${launch[@]}" "$root/$build/fruitpipe" run "$shared/data/fruits360-dev/$split" "$out" \
      --model "$model" --quiet --json >"$out.json"
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
      const rss = Number(require("fs").readFileSync(process.argv[3], "utf8").trim()) / 1024;
      console.log(`${process.argv[2].padEnd(16)} ${String(r.images).padStart(7)} ${r.seconds.toFixed(2).padStart(9)} ${r.images_per_second.toFixed(1).padStart(10)} ${String(r.shard_timeline.length).padStart(7)} ${rss.toFixed(0).padStart(13)}`);
    ' "$out.json" "$label" "$out.rss"
  done
fi
