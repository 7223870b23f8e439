#!/usr/bin/env bash
# `run --jobs` 1 vs 2 vs 3 on the built-in demo cohort, each from the same prepared cohort and slice
# store, in the order given by ORDER (default "1 2 3 1": the repeat of 1 shows the drift of the
# machine's load). Prints each run's stage times (provenance.json), wall time and peak memory.
# Not a test; numbers depend on the machine and its load: compare the ratios within one run.
# Usage: bash bench/jobs_bench.sh [build/gliomagrade] [work dir] [extra run options]
set -euo pipefail
exe=$(readlink -f "${1:-build/gliomagrade}")
work=${2:-$(mktemp -d)}
extra=${3:---epochs 1}
export GLIOMAGRADE_WEIGHTS_DIR=${GLIOMAGRADE_WEIGHTS_DIR:-$(dirname "$exe")/../../shared/weights}
cd "$work"
[ -f base/store/store.json ] || "$exe" --quiet run --out base --stop-after 1 --jobs 1 >base.log 2>&1
n=0
for j in ${ORDER:-1 2 3 1}; do
  n=$((n + 1))
  d=run${n}_jobs$j
  rm -rf "$d" && mkdir "$d" && cp -r base/cohort base/store base/run.json "$d"/
  echo "== --jobs $j ($d), load $(cut -d' ' -f1-3 /proc/loadavg) at $(date +%T)"
  # shellcheck disable=SC2086
  /usr/bin/time -v "$exe" --quiet run --out "$d" --jobs "$j" $extra >"$d.log" 2>"$d.err"
  python3 - "$d" <<'PY'
import json, sys
p = json.load(open(sys.argv[1] + "/provenance.json"))
for k, v in p["stages"].items():
    print(f"   {k}: {v['seconds']:.1f} s")
PY
  grep -E "Maximum resident|Elapsed" "$d.err" | sed 's/^\t*/   /'
done
