#!/usr/bin/env bash
# Data-parallel training throughput on one machine: 1 rank x 2 threads against 2 ranks x 1 thread
# (torchrun), the whole GoogLeNet learning (--freeze 0: 7 M parameters, 28 MB of gradients per
# step), the paper's global mini-batch of 10. Prints images/s and the share of the time spent in
# the gradients' all-reduce, as `gliomagrade train` reports them. Not a test; numbers depend on
# the machine and its load. Usage: bash bench/dist_bench.sh [build/gliomagrade] [work dir]
set -euo pipefail
exe=${1:-build/gliomagrade}
work=${2:-$(mktemp -d)}
exe=$(readlink -f "$exe")
cd "$work"
[ -d store ] || {
  "$exe" --quiet synth --out cohort --lgg 4 --hgg 10
  "$exe" --quiet prepare cohort --out store
  "$exe" --quiet split store --out split.csv --seed 1
}
common=(train store --split split.csv --sequences flair --epochs 1 --freeze 0 --validate-every 1000)
echo "== 1 rank x 2 threads"
rm -rf one && /usr/bin/time -f "wall %e s" "$exe" --quiet --threads 2 "${common[@]}" --out one
echo "== 2 ranks x 1 thread (torchrun --standalone, Gloo on loopback)"
rm -rf two && /usr/bin/time -f "wall %e s" torchrun --no_python --standalone --nproc_per_node=2 --redirects 9:0 --tee 9:0 \
  "$exe" --quiet --threads 1 "${common[@]}" --out two
