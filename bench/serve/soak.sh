#!/usr/bin/env bash
# Soak test of braid serve (not in make test): DURATION seconds (default 600) of mixed load on
# 127.0.0.1 only -- completions and chat over three tenants' adapters, streams dropped
# mid-way, expected 4xx, adapter churn (run-time register/use/delete; a small --adapter-mem
# and --adapter-idle-s keep evicting), /health probed twice a second -- while the server's RSS
# is sampled.  Prints a JSON summary (bench/serve/soak.py) and fails on any unexpected answer.
#   bash bench/serve/soak.sh [DURATION_S]
set -eu
cd "$(dirname "$0")/../.."
DURATION=${1:-600}; NAD=${NAD:-16}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
./braid bench serve --write-fixture "$tmp" --adapters "$NAD" --hidden 64 --layers 2 --vocab 352 2>/dev/null
# adapters: ad0000.. owned round-robin by t0, t1, t2; every fourth one shared
/usr/bin/python3 - "$tmp/tenants.json" "$NAD" <<'PY'
import json, sys
n = int(sys.argv[2])
ten = [{"name": "t%d" % i, "keys": ["sk-soak-t%d-0001" % i], "adapters": ["ad%04d" % k for k in range(n) if k % 4 == i],
        "rps": 100, "weight": 1 + i} for i in range(3)]
ten.append({"name": "ops", "keys": ["sk-soak-ops-001"], "admin": True})
json.dump({"tenants": ten}, open(sys.argv[1], "w"))
PY
./braid serve --model "$tmp/model" --adapters "$tmp/adapters" --tenants "$tmp/tenants.json" --host 127.0.0.1 \
    --port 0 --port-file "$tmp/port" --adapter-mem 0.2 --adapter-idle-s 5 --kv-mem 16 --max-body-kb 256 \
    2> "$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
rc=0
/usr/bin/python3 bench/serve/soak.py "$(cat "$tmp/port")" "$pid" "$DURATION" "$NAD" || rc=$?
kill -TERM $pid; wait $pid || rc=1
pid=
echo "soak exit status: $rc (braid serve stopped with SIGTERM)"
exit $rc
