#!/usr/bin/env bash
# braid vs llama.cpp inference on random-weight Llama GGUF files (issue #14), writes
# bench/infer/RESULTS.md.  Usage:
#   bash bench/infer/run.sh [--quick] [--rounds N] [--sizes "24m 134m 1b"] [--types "f32 f16 ..."]
#                           [--big-types "f16 q8_0 q4_0"]
# A size may carry its own rounds, prefill, decode and types: --sizes "24m:3 134m:2 1b:1:128:32:q8_0,q4_0".
# --prior FILE adds the JSON lines of an earlier (interrupted) run to the report.
# --llama-max-s S: llama.cpp's decode stops after S seconds (default 60).
# Every (model, type, threads) cell runs braid with OPENBLAS_CORETYPE=Haswell (what these
# machines set), for F32 also braid with OpenBLAS's own choice (env -u OPENBLAS_CORETYPE -u
# OPENBLAS_L2_SIZE; OpenBLAS only runs F32 matrices, so the other types would time the same
# code twice), and llama.cpp (node-llama-cpp 3.21.1, bench/infer/llama_bench.mjs) on the same file, each in
# its own process pinned with taskset (1 thread: CPU 0; 2 threads: CPUs 0,1), in rounds whose
# order alternates; the table reports medians.  A stream-like copy bandwidth is measured before
# and after (median) on the same CPUs.  The model files are written once into
# $BRAID_BENCH_CACHE (default ~/.cache/braid/bench-infer), outside git.
# --quick: 24m and 134m, prefill 128, decode 32, one round (a smoke run: minutes).
set -u
cd "$(dirname "$0")/../.."
cmdline="bash bench/infer/run.sh $*"
quick=0 rounds=3 sizes="24m 134m 1b" types="f32 f16 bf16 q8_0 q4_0 q4_k" np=512 nd=128
big_types="$types" # the 1b model's types
prior=""
max_decode_s=60    # llama.cpp's decode stops after this long (its spinning threads crawl on a busy machine)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 rounds=1 sizes="24m 134m" np=128 nd=32 ;;
    --rounds) rounds="$2"; shift ;;
    --sizes) sizes="$2"; shift ;;
    --types) types="$2"; shift ;;
    --big-types) big_types="$2"; shift ;;
    --prior) prior="$2"; shift ;;
    --llama-max-s) max_decode_s="$2"; shift ;;
    *) echo "usage: $0 [--quick] [--rounds N] [--sizes LIST] [--types LIST]" >&2; exit 2 ;;
  esac
  shift
done
cache="${BRAID_BENCH_CACHE:-$HOME/.cache/braid/bench-infer}"
mods="${BRAID_NODE_MODULES:-.npm-local/llama-cpp/node_modules}"
mkdir -p "$cache"
braid="${BRAID:-./braid}" # run.sh of a copy while the tree is rebuilt: BRAID=/path/to/braid
[ -x "$braid" ] || make -j2 braid >/dev/null || exit 1
have_llama=1
if ! node --version >/dev/null 2>&1 || [ ! -f "$mods/node-llama-cpp/dist/index.js" ]; then
  echo "node-llama-cpp not found under $mods: braid only" >&2; have_llama=0
fi
raw=$(mktemp -d "${TMPDIR:-/tmp}/braid-bench-infer.XXXXXX")
trap 'rm -rf "$raw"' EXIT
log="$raw/raw.jsonl"
[ -n "$prior" ] && cat "$prior" > "$log"
cpus() { [ "$1" = 1 ] && echo 0 || echo 0-$(($1 - 1)); }
mem_avail_mb() { awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo; }

bandwidth() {
  for t in 1 2; do
    taskset -c "$(cpus $t)" "$braid" bench infer --bandwidth --threads $t --json >> "$log"
  done
}

cell() { # size type threads rounds prefill decode
  local f="$cache/$1-$2.gguf" t=$3 r order np=$5 nd=$6
  for r in $(seq 1 "$4"); do
    if [ $((r % 2)) = 1 ]; then order="hw own llama"; else order="llama own hw"; fi
    [ "$2" = f32 ] || order="${order/own /}"
    for e in $order; do
      case $e in
        hw) OPENBLAS_CORETYPE=Haswell taskset -c "$(cpus $t)" "$braid" bench infer --gguf "$f" \
              --threads $t --prefill $np --decode $nd --json | sed 's/"engine": "braid"/"engine": "braid-haswell"/' ;;
        own) env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c "$(cpus $t)" "$braid" bench infer \
              --gguf "$f" --threads $t --prefill $np --decode $nd --json | sed 's/"engine": "braid"/"engine": "braid-own"/' ;;
        llama) [ $have_llama = 1 ] && taskset -c "$(cpus $t)" timeout 1200 node bench/infer/llama_bench.mjs \
                 "$mods" "$f" $t $np $nd "$max_decode_s" ;;
      esac
    done
  done >> "$log"
}

{ echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) CPUs; flags: $(grep -o -w -E 'avx2|fma|f16c|avx512f|avx512_vnni|avx512_bf16|avx_vnni' /proc/cpuinfo | sort -u | tr '\n' ' '))"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "args: rounds=$rounds sizes=\"$sizes\" types=\"$types\" 1b types=\"$big_types\" prefill=$np decode=$nd (a size's own :rounds:prefill:decode win)"
} > "$raw/machine.txt"
bandwidth
for spec in $sizes; do
  IFS=: read -r s r_s np_s nd_s ty_s <<< "$spec"
  r_s=${r_s:-$rounds} np_s=${np_s:-$np} nd_s=${nd_s:-$nd}
  tl="" tys="$types"
  [ "$s" = 1b ] && tys="$big_types"
  [ -n "$ty_s" ] && tys="${ty_s//,/ }"
  for ty in $tys; do
    # Q4_K's super-blocks hold 256 values: the 24m model's width (288) has no Q4_K file
    if [ "$s" = 24m ] && [ "$ty" = q4_k ]; then continue; fi
    # F32 of the 1.1B model needs ~4.4 GB for the file and as much again per process
    if [ "$s" = 1b ] && [ "$ty" = f32 ] && [ "$(mem_avail_mb)" -lt 14000 ]; then
      echo "{\"skip\": \"$s-$ty\", \"why\": \"MemAvailable $(mem_avail_mb) MB < 14000\"}" >> "$log"; continue
    fi
    tl="$tl,$ty"
  done
  nice -n 10 "$braid" bench infer --make "$s" --dir "$cache" --types "${tl#,}" || exit 1
  for ty in ${tl//,/ }; do
    for t in 1 2; do
      echo "$(date -u +%H:%M:%S) $s $ty $t threads" >&2
      cell "$s" "$ty" "$t" "$r_s" "$np_s" "$nd_s"
    done
  done
done
bandwidth
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$raw/machine.txt"
out=bench/infer/RESULTS.md
[ $quick = 1 ] && out="$raw/RESULTS.md"
/usr/bin/python3 bench/infer/report.py "$log" "$raw/machine.txt" "$cmdline" > "$out.tmp" && mv "$out.tmp" "$out"
cp "$log" "${out%.md}.jsonl" 2>/dev/null
[ $quick = 1 ] && cat "$out"
echo "wrote $out" >&2
