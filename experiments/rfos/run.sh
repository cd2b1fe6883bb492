#!/usr/bin/env bash
# R-FOS scaling (h = 1..4 and the exact qgrid variant K = 1, 3, 7, 15; 5 seeds each) and M-FOS
# vs a naive learner in the IPD (the extortion check), then RESULTS.md and the SVG plots.
#   experiments/rfos/run.sh            # full run (~10-20 min on 2 shared cores)
#   JOBS=1 experiments/rfos/run.sh     # one run at a time
#   QUICK=1 experiments/rfos/run.sh    # smaller caps, 2 seeds (a few minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s braid >/dev/null
OUT=experiments/rfos/runs
JOBS=${JOBS:-2}
SEEDS="1 2 3 4 5"
CAP3=3000000000 CAP4=3000000000 CAPQ=500000000
if [ -n "${QUICK:-}" ]; then SEEDS="1 2"; CAP3=300000000; CAP4=300000000; CAPQ=100000000; fi
rm -rf "$OUT"
mkdir -p "$OUT"
export BRAID_QUIET=1
jobs_file=$(mktemp)
trap 'rm -f "$jobs_file"' EXIT
common="--block 1000 --after-known 1000000 --eval-steps 1000000"
for s in $SEEDS; do
  for h in 1 2 3 4; do
    cap=20000000000; [ $h = 3 ] && cap=$CAP3; [ $h = 4 ] && cap=$CAP4
    echo "./braid rl rfos --history $h --seed $s --max-steps $cap $common --out $OUT/history-h$h-s$s"
  done
  for K in 1 3 7 15; do
    cap=20000000000; [ $K -ge 7 ] && cap=$CAPQ
    echo "./braid rl rfos --state qgrid --grid $K --seed $s --max-steps $cap $common --out $OUT/qgrid-k$K-s$s"
  done
done >"$jobs_file"
for s in 1 2 3; do
  echo "./braid rl mfos --game ipd --opponent naive --algo es --seed $s --out $OUT/mfos-ipd-naive-es-s$s"
  echo "./braid rl mfos --game ipd --opponent naive --algo ppo --lr 0.001 --batch 64 --iterations 200 --seed $s --out $OUT/mfos-ipd-naive-ppo-s$s"
done >>"$jobs_file"
echo "./braid rl mfos --game ipd --opponent lola --algo es --seed 1 --out $OUT/mfos-ipd-lola-es-s1" >>"$jobs_file"
echo "./braid rl mfos --game matching-pennies --opponent naive --algo es --seed 1 --out $OUT/mfos-imp-naive-es-s1" >>"$jobs_file"
# Steady-state speed on one core (h = 2: train until all known, then 2e8 more meta-steps).
echo "./braid rl rfos --history 2 --seed 1 --after-known 200000000 --eval-steps 0 --out $OUT/speed-h2" >>"$jobs_file"
n=$(wc -l <"$jobs_file")
echo "running $n jobs, $JOBS at a time"
start=$(date +%s)
# Longest first so that the two lanes finish together.
grep -E 'history 4|history 3' "$jobs_file" >"$jobs_file.order" || true
grep -vE 'history 4|history 3' "$jobs_file" >>"$jobs_file.order"
nice -n 10 xargs -P "$JOBS" -I{} sh -c '{} >/dev/null 2>&1 || echo "FAILED: {}"' <"$jobs_file.order"
rm -f "$jobs_file.order"
echo "runs took $(( $(date +%s) - start )) s"
/usr/bin/python3 experiments/rfos/report.py "$OUT" experiments/rfos
