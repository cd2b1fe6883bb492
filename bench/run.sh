#!/usr/bin/env bash
# make bench: every benchmark, one after another.  Speed goals are judged here (never in tests).
set -u
cd "$(dirname "$0")/.."
./braid bench gemm
./braid bench parden
bash bench/lm_train.sh
