#!/usr/bin/env bash
# MARCO experiment: greedy return against *real* environment steps for the model-free learner
# (VDN on the switch tasks, QMIX on particle simple-reference), MARCO without the exploration
# policy, and MARCO; then the sample-efficiency ratio (model-free real steps / MARCO real steps
# to the same return) as a curve over 10 target returns from the untrained policy's return to
# the model-free plateau, and plots.  Writes RESULTS.md (or RESULTS-quick.md), results.json (or
# results-quick.json) and SVG plots beside this script; raw runs go to $OUT (default
# experiments/marco/runs).
#
# 1. Tuning: the model-free learner's exploration annealing (--eps-anneal, real steps) and
#    gradient steps per collected episode (--updates per 4 episodes) are swept on tuning seeds
#    101.. (never reported); the setting with the largest area under the learning curve is
#    used for the reported seeds 1..N.  MARCO runs (reported seeds) share this phase.
# 2. The model-free learner with the chosen setting on the reported seeds.
#
#   experiments/marco/run.sh --quick   3 tasks, 3 seeds, 2x2 sweep on 1 tuning seed: about
#                                      900 CPU-s, 7-8 minutes on 2 idle cores (estimate)
#   experiments/marco/run.sh           3 harder tasks (switch with 4 and 5 agents, bridges of
#                                      length 5), 5 seeds, 3x2 sweep on 1 tuning seed: sized for
#                                      about an hour on 2 idle cores (RESULTS.md has the wall time)
#   options: --seeds N (default 3 quick, 5 full)  --jobs J (parallel runs, default 2)  --out DIR
#   Finished runs (summary.json present) are not rerun: rerunning the script resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=full SEEDS="" JOBS=2 OUT=experiments/marco/runs
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --seeds) SEEDS="$2"; shift ;;
    --jobs) JOBS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# BRAID: the binary to run (default ./braid, built here); a fixed copy keeps a long run on one build
if [ -z "${BRAID:-}" ]; then make -s CI=true braid >/dev/null; BRAID=./braid; fi
export BRAID
SWEEP="$OUT/$MODE-sweep"
OUT="$OUT/$MODE"
mkdir -p "$OUT" "$SWEEP"

# Tasks are LABEL:ENV:AGENTS.  MARCO's first evaluation comes after --init-steps random real
# steps and one model fit, then after every --collect-steps: both are set small so that MARCO is
# timed early and often (its evaluation points, not a cap, decide the ratio at low targets).
if [ "$MODE" = quick ]; then
  SEEDS=${SEEDS:-3} TUNE_SEEDS="101"
  TASKS="switch-n3:switch:3 switch-n4:switch:4 switch-bridges-4-n3:switch-bridges-4:3"
  ANNEALS="2000 5000" UPDATES="1 4"
  MF_SWITCH=12000 MB_SWITCH=3000 MF_PART=8000 MB_PART=2500
  INIT=200 COLLECT=280
  MARCO_ARGS="--members 3 --model-hidden 64 --model-epochs 40 --patience 5 --policy-updates 150 --explore-updates 60"
  MARCO_PART_ARGS="--members 3 --model-hidden 64 --model-epochs 30 --patience 5 --policy-updates 100 --explore-updates 40"
  EVAL_SWITCH=128 EVAL_PART=32 MF_EVAL_EVERY=150
else
  SEEDS=${SEEDS:-5} TUNE_SEEDS="101"
  TASKS="switch-n4:switch:4 switch-n5:switch:5 switch-bridges-5-n3:switch-bridges-5:3"
  ANNEALS="2000 5000 10000" UPDATES="1 4"
  MF_SWITCH=24000 MB_SWITCH=6000 MF_PART=24000 MB_PART=6000
  INIT=300 COLLECT=570
  MARCO_ARGS="--members 5 --model-hidden 96 --model-epochs 60 --patience 8 --policy-updates 300 --explore-updates 120"
  MARCO_PART_ARGS="--members 5 --model-hidden 128 --model-rows 20000 --policy-updates 400 --explore-updates 150"
  EVAL_SWITCH=256 EVAL_PART=64 MF_EVAL_EVERY=500
fi
# The model-free learners are evaluated every MF_EVAL_EVERY real steps: at least as finely as
# MARCO, so that "real steps to reach a target" is timed at least as precisely for them.

task_args() { # LABEL:ENV:AGENTS -> sets label env agents mf MF MB MA EV
  IFS=: read -r label env agents <<< "$1"
  if [ "$env" = simple-reference ]; then
    mf=qmix MF=$MF_PART MB=$MB_PART MA="$MARCO_PART_ARGS --mixer qmix" EV=$EVAL_PART
  else
    mf=vdn MF=$MF_SWITCH MB=$MB_SWITCH MA="$MARCO_ARGS --mixer vdn" EV=$EVAL_SWITCH
  fi
}

run_jobs() { # FILE: one braid command line per run, JOBS at a time; runs whose output folder
  # already has a summary.json (a finished run) are skipped, so an interrupted run.sh resumes
  local todo="$1.todo"
  while read -r line; do
    [ -f "${line##* --out }/summary.json" ] || echo "$line"
  done < "$1" > "$todo"
  echo "  $(wc -l < "$todo") of $(wc -l < "$1") still to run" >&2
  # shellcheck disable=SC2016
  BRAID_QUIET=1 xargs -P "$JOBS" -I CMD sh -c 'nice -n 10 "$BRAID" CMD >/dev/null 2>&1 || echo "FAILED: braid CMD" >&2' < "$todo"
}

start=$(date +%s)
phase1="$OUT/jobs-tune-and-marco.txt" phase2="$OUT/jobs-model-free.txt"
: > "$phase1"
for t in $TASKS; do
  task_args "$t"
  for seed in $TUNE_SEEDS; do
    for an in $ANNEALS; do
      for up in $UPDATES; do
        echo "rl $mf --env $env --agents $agents --real-steps $MF --seed $seed --eval-episodes $EV --eval-every $MF_EVAL_EVERY --eps-anneal $an --updates $up --out $SWEEP/$label/a$an-u$up/seed$seed" >> "$phase1"
      done
    done
  done
done
for seed in $(seq 1 "$SEEDS"); do
  for t in $TASKS; do
    task_args "$t"
    common="--env $env --agents $agents --real-steps $MB --seed $seed --eval-episodes $EV --init-steps $INIT --collect-steps $COLLECT $MA"
    echo "rl marco $common --no-explore --out $OUT/$label/marco-no-explore/seed$seed" >> "$phase1"
    echo "rl marco $common --out $OUT/$label/marco/seed$seed" >> "$phase1"
  done
done
echo "phase 1: $(wc -l < "$phase1") runs (model-free sweep on tuning seeds $TUNE_SEEDS, MARCO on seeds 1-$SEEDS), $JOBS at a time" >&2
run_jobs "$phase1"

: > "$phase2"
for t in $TASKS; do
  task_args "$t"
  best=$(/usr/bin/python3 experiments/marco/analyze.py select "$SWEEP/$label")  # "ANNEAL UPDATES"
  read -r an up <<< "$best"
  echo "$label: model-free setting chosen on tuning seeds: --eps-anneal $an --updates $up" >&2
  for seed in $(seq 1 "$SEEDS"); do
    echo "rl $mf --env $env --agents $agents --real-steps $MF --seed $seed --eval-episodes $EV --eval-every $MF_EVAL_EVERY --eps-anneal $an --updates $up --out $OUT/$label/$mf/seed$seed" >> "$phase2"
  done
done
echo "phase 2: $(wc -l < "$phase2") model-free runs on seeds 1-$SEEDS" >&2
run_jobs "$phase2"
end=$(date +%s)
echo "$((end - start)) s for all runs" >&2
/usr/bin/python3 experiments/marco/analyze.py report "$OUT" "$SWEEP" "$MODE" "$((end - start))" "$SEEDS" "$TUNE_SEEDS"
