#!/usr/bin/env bash
# make demo: the main job end to end.  (Grows as features land: see README.md.)
set -eu
cd "$(dirname "$0")/.."
echo "== braid demo: gradient checks and GEMM benchmark =="
make --no-print-directory build/tests/test_nn_grad >/dev/null 2>&1 && ./build/tests/test_nn_grad || true
./braid bench gemm --min-time 0.1
