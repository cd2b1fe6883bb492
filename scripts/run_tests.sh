#!/usr/bin/env bash
# Runs every test binary given, each printing its own "N passed, N failed" last line;
# prints one summary line per binary and, last, the totals as "N passed, N failed".
# Exits non-zero when any check failed or any binary crashed.
set -u
total_p=0; total_f=0; total_s=0; crashed=()
for t in "$@"; do
  name=$(basename "$t")
  start=$(date +%s.%N)
  out=$(cd "$(dirname "$0")/.." && timeout "${TEST_TIMEOUT:-1200}" "$t" 2>&1); rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$last" ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "CRASH  $name (exit $rc, no summary line) [${secs}s]"
    crashed+=("$name"); total_f=$((total_f + 1)); continue
  fi
  p=$(echo "$last" | awk '{print $1}'); f=$(echo "$last" | awk '{print $3}')
  s=$(echo "$last" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p'); s=${s:-0}
  total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
  if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
    printf '%s\n' "$out" | grep -vE '^[0-9]+ passed' | tail -n 40
    echo "FAIL   $name: $last (exit $rc) [${secs}s]"
    [ "$f" = 0 ] && total_f=$((total_f + 1))
  else
    echo "ok     $name: $last [${secs}s]"
  fi
done
[ ${#crashed[@]} -gt 0 ] && echo "crashed: ${crashed[*]}"
[ "$total_s" -gt 0 ] && echo "($total_s checks skipped: optional data or tools absent)"
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
