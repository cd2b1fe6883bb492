#!/usr/bin/env bash
# make deps: make sure every Debian package braid builds or tests with is installed.
# `scripts/deps.sh bench` (make bench) adds the peers the benchmarks compare against.
# As root with apt available, installs what is missing (one `apt-get update` first);
# otherwise prints the exact apt-get line and fails.
set -u
PKGS=(
  build-essential        # gcc, make
  libopenblas-dev        # GEMM (cblas_sgemm)
  libjansson-dev         # JSON: configs, safetensors headers, HTTP bodies
  libpcre2-dev           # tokenizer pre-tokenisation regex (JIT)
  libmicrohttpd-dev      # braid serve: HTTP server
  libcurl4-openssl-dev   # PARDEN upstream client (OpenAI-compatible servers)
  libcsv-dev             # RFC 4180 CSV reader
  python3                # reference-fixture generators and conformance tests
  python3-numpy          # safetensors conformance files written by another implementation
  nodejs npm             # tokenizer / OpenAI-client conformance tests (skip when absent)
  curl                   # server tests
  chromium               # web console tests in a real browser (driven by npm puppeteer-core)
  haproxy                # serving replicas: scripts/serve_cluster.sh and test_serve_cluster
  unicode-data           # NFC conformance test (NormalizationTest.txt) and the NFC table generator
  bzip2                  # bzcat: NormalizationTest.txt ships compressed
  openmpi-bin            # mpirun: data-parallel training and its tests (docs/distributed.md)
  libopenmpi-dev         # mpi.h, libmpi (src/base/comm.c)
)
if [ "${1:-}" = bench ]; then
  PKGS+=(
    python3-nltk         # bench parden: NLTK's sentence_bleu, the reference BLEU
    python3-torch        # bench nn / lm_train: PyTorch on the same shapes and threads
    wrk                  # bench serve: HTTP load generator
  )
fi
missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
  [[ "$st" == *"ok installed"* ]] || missing+=("$p")
done
# nodejs may come from outside Debian (a node binary already on PATH is fine)
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  m2=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || m2+=("$p"); done
  missing=("${m2[@]}")
fi
# npm reference packages for the tokenizer tests (data area; best effort)
bash "$(dirname "$0")/npm_deps.sh"
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y ${missing[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; then exit 0; fi
  echo "deps: installation failed; run as root: $line" >&2
  exit 1
fi
echo "deps: missing Debian packages; run as root: $line" >&2
exit 1
