#!/usr/bin/env bash
# make bench: every benchmark, one after another.  Speed goals are judged here (never in tests).
set -u
cd "$(dirname "$0")/.."
./braid bench gemm
# tokenizer vs npm tiktoken (needs `braid data fetch` and the npm packages from scripts/npm_deps.sh)
if [ -f data/raw/MANIFEST.json ]; then ./braid bench tokenizer; else echo "bench tokenizer: skipped (run ./braid data fetch)"; fi
./braid bench moe
# nn layers, then the same operations in PyTorch (same shapes and threads) with ratios
./braid bench nn --json --min-time 0.2 > /tmp/braid-bench-nn.$$.json
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then bench/nn_torch.py /tmp/braid-bench-nn.$$.json 0.2
else echo "(PyTorch not installed for /usr/bin/python3: nn results without the peer)"; cat /tmp/braid-bench-nn.$$.json; fi
rm -f /tmp/braid-bench-nn.$$.json
./braid bench parden
./braid bench rfos --steps 50000000
bash bench/lm_train.sh
# data-parallel: 1 process x 2 threads vs 2 ranks x 1 thread (docs/distributed.md)
bash bench/dist_train.sh
# serving: S-LoRA workload, batched LoRA vs one-adapter-per-batch vs merge (bench/serve/RESULTS.md),
# then a wrk load test on the demo model (skips without wrk or runs/demo)
# (regenerate the committed report with: bash bench/serve/run.sh [--quick]: the reviewer suite
#  into bench/serve/results.json, the full mode also this comparison into bench/serve/policies.json)
./braid bench serve --requests 120
bash bench/serve/wrk.sh
# Dec-POMDP tasks of MARCO: agent-steps/s on one core (goal >= 1e7 for the switch tasks)
./braid bench rl-env
