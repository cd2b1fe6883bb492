#!/usr/bin/env bash
# Serving replicas benchmark (issue 18; not in make test): the S-LoRA-style workload
# (bench/serve/cluster.py) through HAProxy (scripts/serve_cluster.sh) with
#   1 replica, 2 replicas hashing on the body's model (pure affinity, and with bounded load
#   --balance-factor 150), 2 replicas round robin,
# each replica with BRAID_THREADS=1; the three setups run interleaved, REPS times each.
# Prints one JSON line per run and a markdown table of the medians (by req/s) for
# docs/distributed.md "Serving replicas".
#   bash bench/serve/cluster.sh [REQUESTS] [RATE] [REPS]     (defaults 300 40 2)
# Environment: NAD (adapters, default 100), ALPHA (popularity, default 1), CV (default 1).
set -eu
cd "$(dirname "$0")/../.."
NREQ=${1:-300}; RATE=${2:-40}; REPS=${3:-2}; NAD=${NAD:-100}; ALPHA=${ALPHA:-1}; CV=${CV:-1}
command -v haproxy >/dev/null || { echo "cluster.sh: haproxy not installed (make deps)" >&2; exit 2; }
tmp=$(mktemp -d)
cpid=
trap '[ -n "$cpid" ] && kill -TERM $cpid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
./braid bench serve --write-fixture "$tmp" --adapters "$NAD" 2>/dev/null
port=$(python3 - <<'PY'
import socket
for p in range(21000, 29000, 10):   # below the ephemeral range: P..P+2 all free
    try:
        ss = [socket.socket() for _ in range(3)]
        for i, s in enumerate(ss): s.bind(("127.0.0.1", p + i))
        print(p); break
    except OSError:
        pass
    finally:
        for s in ss: s.close()
PY
)
run() { # replicas balance(model|bounded|roundrobin) rep
  local n=$1 bal=$2 rep=$3 dir="$tmp/c-$1-$2-$3" f=0
  [ "$bal" = bounded ] && f=150
  BRAID_THREADS=1 bash scripts/serve_cluster.sh --replicas "$n" --port "$port" --balance "${bal/bounded/model}" \
      --balance-factor "$f" --dir "$dir" \
      -- --model "$tmp/model" --adapters "$tmp/adapters" > "$tmp/url" 2> "$tmp/cluster.log" &
  cpid=$!
  for _ in $(seq 300); do [ -s "$dir/url" ] && break; kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
  [ -s "$dir/url" ] || { cat "$tmp/cluster.log" >&2; exit 1; }
  local rports=(); for i in $(seq "$n"); do rports+=($((port + i))); done
  local res
  res=$(python3 bench/serve/cluster.py "$(cat "$dir/url")" "$NREQ" "$RATE" "$CV" "$ALPHA" "$NAD" "$rep" "${rports[@]}")
  kill -TERM $cpid; wait $cpid || true; cpid=
  echo "{\"replicas\": $n, \"balance\": \"$bal\", \"rep\": $rep, \"result\": $res}" | tee -a "$tmp/runs.jsonl"
}
for rep in $(seq "$REPS"); do
  run 1 model "$rep"; run 2 model "$rep"; run 2 bounded "$rep"; run 2 roundrobin "$rep"
done
echo "## $NREQ requests, lambda $RATE req/s, cv $CV, alpha $ALPHA, $NAD adapters, BRAID_THREADS=1 per replica, median of $REPS by req/s"
python3 - "$tmp/runs.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("| replicas | balance | req/s | tok/s | p50 s | p99 s | cold starts | cold start mean ms | errors |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
names = {"model": "hash(model)", "bounded": "hash(model), bounded load 150%", "roundrobin": "round robin"}
for n, bal in [(1, "model"), (2, "model"), (2, "bounded"), (2, "roundrobin")]:
    rs = sorted((r["result"] for r in runs if r["replicas"] == n and r["balance"] == bal), key=lambda r: r["req_s"])
    r = rs[len(rs) // 2]
    print("| %d | %s | %.1f | %.0f | %.2f | %.2f | %d | %.1f | %d |" % (n, names[bal],
          r["req_s"], r["tok_s"], r["p50_s"], r["p99_s"], r["cold_starts"], 1000 * r["cold_start_mean_s"], r["n_errors"]))
PY
