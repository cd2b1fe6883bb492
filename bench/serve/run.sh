#!/usr/bin/env bash
# Regenerates bench/serve/results.json (the reviewer suite: capacity, load at 50%/80% of it under
# Zipf skew, eviction and cold starts, two tenants with and without VTC) and bench/serve/RESULTS.md.
#   bash bench/serve/run.sh            full: 10 and 100 adapters, 3 repeats, then the policy
#                                      comparison (bench/serve/policies.json); about an hour here
#   bash bench/serve/run.sh --quick    10 adapters, 3 repeats, suite only (~6-8 minutes on the
#                                      shared 2-core VM)
# Run under nice on a shared machine.  The load average before and after goes into RESULTS.md.
set -eu
cd "$(dirname "$0")/../.."
# BRAID: the binary to run (default ./braid, built here if missing)
B=${BRAID:-./braid}
[ -n "${BRAID:-}" ] || [ -x ./braid ] || make -j2 braid
quick=()
[ "${1:-}" = "--quick" ] && quick=(--quick)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start_load=$(cut -d' ' -f1-3 /proc/loadavg); start=$(date -u +%Y-%m-%dT%H:%MZ)
"$B" bench serve --suite "${quick[@]}" --json "$tmp/results.json"
if [ ${#quick[@]} = 0 ]; then
    "$B" bench serve --requests 120 --json "$tmp/policies.json"
    mv "$tmp/policies.json" bench/serve/policies.json
fi
end_load=$(cut -d' ' -f1-3 /proc/loadavg); end=$(date -u +%H:%MZ)
mv "$tmp/results.json" bench/serve/results.json
mode=full; [ ${#quick[@]} = 0 ] || mode=quick
/usr/bin/python3 bench/serve/report.py "Mode: $mode. Run $start-$end on $(nproc) cores shared with other engineers' builds and tests: load average (1, 5, 15 min) $start_load at the start, $end_load at the end (from /proc/loadavg; a load of 20 on 2 cores means this benchmark got a fraction of the CPU, so absolute rates are low and noisy)."
echo "bench/serve/RESULTS.md and bench/serve/results.json written"
