#!/usr/bin/env bash
# make bench: every benchmark, one after another.  Speed goals are judged here (never in tests).
set -u
cd "$(dirname "$0")/.."
./braid bench gemm
# tokenizer vs npm tiktoken (needs `braid data fetch` and the npm packages from scripts/npm_deps.sh)
if [ -f data/raw/MANIFEST.json ]; then ./braid bench tokenizer; else echo "bench tokenizer: skipped (run ./braid data fetch)"; fi
./braid bench parden
