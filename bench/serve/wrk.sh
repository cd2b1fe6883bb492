#!/usr/bin/env bash
# Load test of braid serve with wrk (Debian): GET /health, then POST /v1/completions (base model
# and, when present, an adapter), each for DURATION seconds with CONNS connections.  Fails when
# wrk reports any socket error or non-2xx response.
#   bash bench/serve/wrk.sh [MODEL_DIR [TOKENIZER [ADAPTERS_DIR]]]
# Default: the demo's model (runs/demo/serve-base, data/demo-tok/tokenizer.json, runs/demo/adapters).
set -u
cd "$(dirname "$0")/../.."
MODEL=${1:-runs/demo/serve-base}; TOKZ=${2:-data/demo-tok/tokenizer.json}; ADS=${3:-runs/demo/adapters}
DURATION=${DURATION:-10}; CONNS=${CONNS:-16}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk): skipped"; exit 0; }
[ -f "$MODEL/config.json" ] || { echo "no model at $MODEL (run make demo first): skipped"; exit 0; }
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
extra=(); [ -d "$ADS" ] && extra=(--adapters "$ADS")
./braid serve --model "$MODEL" --tokenizer "$TOKZ" "${extra[@]}" --port 0 --port-file "$tmp/port" \
    --max-connections 512 --max-connections-per-ip 0 2> "$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
name=$(basename "$MODEL")
fail=0
run() {  # label, wrk args...
    local label=$1; shift
    echo "== $label"
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" 2>&1)
    echo "$out" | grep -E "Requests/sec|Latency  |50%|99%|requests in|Socket errors|Non-2xx"
    if echo "$out" | grep -qE "Socket errors|Non-2xx"; then echo "   -> ERRORS"; fail=1; else echo "   -> zero errors"; fi
}
run "GET /health" "http://127.0.0.1:$port/health"
for model in "$name" $( [ -d "$ADS" ] && ls "$ADS" | head -1 ); do
    cat > "$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "$model", "prompt": "The licensee shall", "max_tokens": 8, "temperature": 0.8}'
LUA
    run "POST /v1/completions (model $model, 8 tokens)" -s "$tmp/post.lua" "http://127.0.0.1:$port/v1/completions"
done
kill -TERM $pid; wait $pid; st=$?
echo "braid serve exit status after SIGTERM: $st"
[ $st = 0 ] || fail=1
exit $fail
