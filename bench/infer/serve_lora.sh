#!/usr/bin/env bash
# braid serve: 8 concurrent requests on a Q8_0 base, each with a different LoRA adapter, vs the
# same server and requests without adapters (issue #14's goal: >= 0.9x).  Alternating rounds,
# medians of the wall time of each batch of 8.  Usage: bash bench/infer/serve_lora.sh [ROUNDS] [f32]
# (f32: the same on the F32 base folder, which serve runs on every build).
# Needs `braid serve --model FILE.gguf` with LoRA on a quantised base (wip-attn); prints why not
# otherwise.
set -u
cd "$(dirname "$0")/../.."
rounds=${1:-5}
base=${2:-q8_0}
braid="${BRAID:-./braid}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/braid-serve-lora.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$braid" bench serve --write-fixture "$dir" --adapters 8 >/dev/null || exit 1
mkdir -p "$dir/q8"
"$braid" quantize --model "$dir/model" --type q8_0 --out "$dir/q8/model.gguf" >/dev/null || exit 1
cp "$dir/model/tokenizer.json" "$dir/q8/"
port=$((20000 + RANDOM % 20000))
model="$dir/q8/model.gguf"
[ "$base" = f32 ] && model="$dir/model"
"$braid" serve --model "$model" --adapters "$dir/adapters" --name base --port $port \
  > "$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 0.2; done
if ! curl -sf "localhost:$port/health" >/dev/null; then
  echo "serve_lora: braid serve did not start on the $base base:"; cat "$dir/serve.log"; exit 1
fi
batch() { # adapters|base -> seconds for 8 concurrent requests of 64 tokens
  local t0 t1 i
  t0=$(date +%s.%N)
  for i in 0 1 2 3 4 5 6 7; do
    local m=base
    [ "$1" = adapters ] && m=ad000$i
    curl -sf "localhost:$port/v1/completions" -H 'Content-Type: application/json' \
      -d "{\"model\": \"$m\", \"prompt\": \"The license of request $i says\", \"max_tokens\": 64, \"temperature\": 0, \"ignore_eos\": true}" \
      -o "$dir/out.$i" &
  done
  wait $(jobs -p | grep -v "^$pid$") 2>/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
batch base >/dev/null; batch adapters >/dev/null # warm up (adapters load on demand)
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then echo "base $(batch base)"; echo "adapters $(batch adapters)"
  else echo "adapters $(batch adapters)"; echo "base $(batch base)"; fi
done | /usr/bin/python3 -c '
import statistics, sys
v = {}
for line in sys.stdin:
    k, t = line.split()
    v.setdefault(k, []).append(float(t))
b, a = statistics.median(v["base"]), statistics.median(v["adapters"])
print(f"'"$base"' base, 8 concurrent requests x 64 tokens: no adapters {b:.3f} s, 8 adapters {a:.3f} s "
      f"(medians of {len(v[min(v)])}): adapters/base throughput {b / a:.2f}x")'
