#!/usr/bin/env bash
# R-FOS: the PAC count (meta-steps where R-max's current policy is not epsilon-optimal) on the
# exactly solvable qgrid meta-MDP (K = 1, 3, 7, 15), the history meta-state (h = 1..4) against a
# brute-force optimum (h = 1, 2), Boltzmann and greedy R-max, 5 seeds each; M-FOS vs a naive
# learner in the IPD (the extortion check); a wall-clock speed run alone on one core.  Collects
# every run into experiments/rfos/results.json (committed; the raw runs stay in the git-ignored
# experiments/rfos/runs/), then RESULTS.md and the SVG plots (report.py).
#   experiments/rfos/run.sh            # full run (~30-60 min on 2 idle cores)
#   JOBS=1 experiments/rfos/run.sh     # one run at a time
#   QUICK=1 experiments/rfos/run.sh    # smaller caps, 2 seeds (a few minutes; writes RESULTS-quick.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s braid >/dev/null
OUT=experiments/rfos/runs
JOBS=${JOBS:-2}
SEEDS="1 2 3 4 5"
CAPH=3000000000 CAPQ=3000000000 BRUTE=20000000 SPEED=200000000 SUFFIX=""
if [ -n "${QUICK:-}" ]; then
  SEEDS="1 2"; CAPH=100000000; CAPQ=100000000; BRUTE=2000000; SPEED=20000000; SUFFIX="-quick"
fi
rm -rf "$OUT"
mkdir -p "$OUT"
export BRAID_QUIET=1
jobs_file=$(mktemp)
trap 'rm -f "$jobs_file" "$jobs_file.order"' EXIT
common="--block 1000 --after-known 1000000 --eval-steps 1000000"
for s in $SEEDS; do
  for pol in boltzmann greedy; do
    flag=""; [ $pol = greedy ] && flag="--greedy"
    for h in 1 2 3 4; do
      cap=20000000000; { [ $h -ge 3 ] || [ $pol = greedy ]; } && cap=$CAPH
      bf=""; [ $h -le 2 ] && [ $pol = boltzmann ] && [ "$s" -le 3 ] && bf="--brute-force $BRUTE"
      echo "./braid rl rfos $flag --history $h --seed $s --max-steps $cap $common $bf --out $OUT/history-$pol-h$h-s$s"
    done
    for K in 1 3 7 15; do
      # Greedy R-max may never try some pairs (no Boltzmann noise): cap it like the large grids.
      cap=20000000000; { [ $K -ge 7 ] || [ $pol = greedy ]; } && cap=$CAPQ
      echo "./braid rl rfos $flag --state qgrid --grid $K --seed $s --max-steps $cap $common --out $OUT/qgrid-$pol-k$K-s$s"
    done
  done
done >"$jobs_file"
for s in 1 2 3; do
  echo "./braid rl mfos --game ipd --opponent naive --algo es --seed $s --out $OUT/mfos-ipd-naive-es-s$s"
  echo "./braid rl mfos --game ipd --opponent naive --algo ppo --lr 0.001 --batch 64 --iterations 200 --seed $s --out $OUT/mfos-ipd-naive-ppo-s$s"
done >>"$jobs_file"
echo "./braid rl mfos --game ipd --opponent lola --algo es --seed 1 --out $OUT/mfos-ipd-lola-es-s1" >>"$jobs_file"
echo "./braid rl mfos --game matching-pennies --opponent naive --algo es --seed 1 --out $OUT/mfos-imp-naive-es-s1" >>"$jobs_file"
n=$(wc -l <"$jobs_file")
echo "running $n jobs, $JOBS at a time"
start=$(date +%s)
# Longest first so that the lanes finish together.
grep -E 'history [34]|grid (7|15)' "$jobs_file" >"$jobs_file.order" || true
grep -vE 'history [34]|grid (7|15)' "$jobs_file" >>"$jobs_file.order"
nice -n 10 xargs -P "$JOBS" -I{} sh -c '{} >/dev/null 2>&1 || echo "FAILED: {}"' <"$jobs_file.order"
echo "runs took $(( $(date +%s) - start )) s"
# Speed: alone, pinned to one core, in wall time (h = 2: train until all known, then SPEED more
# meta-steps); the load average before it goes into the results so a reader can judge "idle".
cat /proc/loadavg >"$OUT/speed-loadavg.txt"
taskset -c 0 ./braid rl rfos --history 2 --seed 1 --after-known "$SPEED" --eval-steps 0 --out "$OUT/speed-h2" >/dev/null
/usr/bin/python3 experiments/rfos/report.py --collect "$OUT" "experiments/rfos/results$SUFFIX.json"
/usr/bin/python3 experiments/rfos/report.py "experiments/rfos/results$SUFFIX.json" experiments/rfos "$SUFFIX"
