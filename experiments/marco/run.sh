#!/usr/bin/env bash
# MARCO experiment: greedy return against *real* environment steps for model-free VDN/QMIX,
# MARCO without the exploration policy, and MARCO, on the switch riddle, the switch riddle
# with bridges and particle simple_reference, several seeds; then the sample-efficiency ratio
# (real steps to reach a fixed return, model-free / MARCO) and plots.  Writes RESULTS.md and
# plots beside this script; the raw runs go to $OUT (default experiments/marco/runs).
#
#   experiments/marco/run.sh --quick     small budgets, 3 seeds: under 10 minutes on 2 idle cores
#   experiments/marco/run.sh             full budgets, 3 seeds: about 25 minutes on 2 cores (AMD EPYC)
#   options: --seeds N (default 3)  --jobs J (parallel runs, default 2)  --out DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=full SEEDS=3 JOBS=2 OUT=experiments/marco/runs
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --seeds) SEEDS="$2"; shift ;;
    --jobs) JOBS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
make -s CI=true braid >/dev/null
OUT="$OUT/$MODE"
mkdir -p "$OUT"

# Per task: the learner the MARCO paper uses (VDN for the switch tasks, QMIX for the particle
# task), the model-free budget, the MARCO budget and MARCO's loop sizes.
if [ "$MODE" = quick ]; then
  MF_SWITCH=12000 MB_SWITCH=3000 MF_PART=8000 MB_PART=2500
  MARCO_ARGS="--members 3 --model-hidden 64 --model-epochs 40 --patience 5 --policy-updates 150 --explore-updates 60"
  MARCO_PART_ARGS="--members 3 --model-hidden 64 --model-epochs 30 --patience 5 --policy-updates 100 --explore-updates 40"
  EVAL_SWITCH=128 EVAL_PART=32 MF_EVAL_EVERY=150
else
  MF_SWITCH=100000 MB_SWITCH=20000 MF_PART=60000 MB_PART=20000
  MARCO_ARGS="--members 5 --model-hidden 128 --policy-updates 500 --explore-updates 200"
  MARCO_PART_ARGS="--members 5 --model-hidden 128 --model-rows 20000 --policy-updates 400 --explore-updates 150"
  EVAL_SWITCH=256 EVAL_PART=64 MF_EVAL_EVERY=1000
fi
# The model-free learners are evaluated every MF_EVAL_EVERY real steps: finer than MARCO's
# iterations (budget/10 real steps each), so that "real steps to reach the target" is timed at
# least as precisely for them as for MARCO (a coarse grid would flatter MARCO's ratio).

jobs_file="$OUT/jobs.txt"
: > "$jobs_file"
for seed in $(seq 1 "$SEEDS"); do
  for task in switch switch-bridges simple-reference; do
    if [ "$task" = simple-reference ]; then
      mf=qmix MF=$MF_PART MB=$MB_PART MA="$MARCO_PART_ARGS --mixer qmix" EV=$EVAL_PART
    else
      mf=vdn MF=$MF_SWITCH MB=$MB_SWITCH MA="$MARCO_ARGS --mixer vdn" EV=$EVAL_SWITCH
    fi
    echo "rl $mf --env $task --real-steps $MF --seed $seed --eval-episodes $EV --eval-every $MF_EVAL_EVERY --out $OUT/$task/$mf/seed$seed" >> "$jobs_file"
    echo "rl marco --env $task --real-steps $MB --seed $seed --eval-episodes $EV $MA --no-explore --out $OUT/$task/marco-no-explore/seed$seed" >> "$jobs_file"
    echo "rl marco --env $task --real-steps $MB --seed $seed --eval-episodes $EV $MA --out $OUT/$task/marco/seed$seed" >> "$jobs_file"
  done
done
n=$(wc -l < "$jobs_file")
echo "running $n runs ($MODE, $SEEDS seeds, $JOBS at a time) into $OUT" >&2
start=$(date +%s)
export BRAID_QUIET=1
# shellcheck disable=SC2016
xargs -P "$JOBS" -I CMD sh -c 'nice -n 10 ./braid CMD >/dev/null || echo "FAILED: braid CMD" >&2' < "$jobs_file"
end=$(date +%s)
echo "$((end - start)) s for $n runs" >&2
/usr/bin/python3 experiments/marco/analyze.py "$OUT" "$MODE" "$((end - start))" "$SEEDS"
