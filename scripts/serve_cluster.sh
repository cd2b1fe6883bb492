#!/usr/bin/env bash
# Serving replicas (docs/serve.md "Replicas", issue 18): N `braid serve` processes on
# 127.0.0.1 behind one HAProxy, requests for the same adapter routed to the same replica.
#
#   scripts/serve_cluster.sh [--replicas N] [--port P] [--host ADDR] [--dir D]
#                            [--balance model|roundrobin] [--balance-factor PCT] [--no-restart]
#                            -- BRAID SERVE OPTIONS...
#
# HAProxy listens on ADDR:P (default 127.0.0.1:8080); replica i (1..N) on 127.0.0.1:P+i.
# Writes D/haproxy.cfg (D: a new temporary folder unless given), starts the replicas and
# HAProxy, waits until every replica answers /health, writes the URL to D/url and prints it.
# Replica i's pid is in D/replica<i>.pid, its log in D/replica<i>.log.  A replica that dies is
# restarted on its port after 1 s (HAProxy's health check brings it back); --no-restart leaves
# it down.  SIGTERM/SIGINT stops everything cleanly: HAProxy stops accepting and lets the
# requests it is proxying finish, then each replica gets SIGTERM (finishes in-flight work), then
# the script exits 0.
#
# Every option after `--` goes to each `braid serve` (--model is required; --port, --host,
# --port-file and --drain-grace-s are set here; --max-connections-per-ip 0 is added because
# every connection comes from HAProxy's address -- HAProxy limits clients instead).
set -u
cd "$(dirname "$0")/.."
N=2; PORT=8080; HOST=127.0.0.1; DIR=; BALANCE=model; FACTOR=0; RESTART=1
BRAID=${BRAID:-./braid}; HAPROXY=${HAPROXY:-haproxy}
die() { echo "serve_cluster: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) N=${2:-}; shift 2 ;;
    --port) PORT=${2:-}; shift 2 ;;
    --host) HOST=${2:-}; shift 2 ;;
    --dir) DIR=${2:-}; shift 2 ;;
    --balance) BALANCE=${2:-}; shift 2 ;;
    --balance-factor) FACTOR=${2:-}; shift 2 ;;
    --no-restart) RESTART=0; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (braid serve options go after --; see --help)" ;;
  esac
done
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 64 ] || die "--replicas must be 1..64, not '$N'"
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ $((PORT + N)) -le 65535 ] || die "--port must leave room for P+N <= 65535"
case "$BALANCE" in model|roundrobin) ;; *) die "--balance must be model or roundrobin, not '$BALANCE'" ;; esac
[[ "$FACTOR" =~ ^[0-9]+$ ]] && { [ "$FACTOR" = 0 ] || [ "$FACTOR" -gt 100 ]; } \
  || die "--balance-factor must be 0 (pure affinity) or a percentage above 100, not '$FACTOR'"
command -v "$HAPROXY" >/dev/null 2>&1 || die "haproxy not found: install Debian's haproxy (make deps)"
[ -x "$BRAID" ] || die "$BRAID not found: build it with make"
for a in "$@"; do
  case "$a" in --port|--host|--port-file|--drain-grace-s|--port=*|--host=*) die "'$a' is set by the script; remove it" ;; esac
done
# braid refuses a non-loopback --host without --tenants; the proxy must not bypass that
if [[ "$HOST" != 127.* && "$HOST" != localhost ]] && [[ " $* " != *" --tenants "* && " $* " != *" --tenants="* ]]; then
  die "--host $HOST is not loopback: give the replicas --tenants (keys), as braid serve itself requires"
fi
[ -n "$DIR" ] || DIR=$(mktemp -d -t braid-cluster.XXXXXX)
mkdir -p "$DIR" || die "cannot create $DIR"
SERVE_ARGS=("$@")

# ---- HAProxy configuration ----
if [ "$BALANCE" = model ]; then
  # the body's "model" (the adapter) picks the replica; consistent hashing moves only a dead
  # replica's adapters; --balance-factor 150 adds bounded load (a replica with more than 1.5x
  # the average of requests in flight passes the request on to the next one on the ring: evens
  # out a hot adapter, but a burst of 32 requests over 8 adapters and 3 replicas then loads
  # 14-15 adapters instead of 8, so it is off by default); requests without a JSON model (GET)
  # fall back to round robin
  BAL="    balance hash req.body,json_query('\$.model')
    hash-type consistent"
  [ "$FACTOR" = 0 ] || BAL+="
    hash-balance-factor $FACTOR"
else
  BAL="    balance roundrobin"
fi
{
  cat <<EOF
# written by scripts/serve_cluster.sh
global
    maxconn 4096
    tune.bufsize 65536            # request bodies up to 64 KiB are hashed on their model
    hard-stop-after 120s          # soft stop waits at most this for proxied requests
defaults
    mode http
    timeout connect 2s
    timeout client 600s
    timeout server 600s           # long generations and streams
    timeout http-request 10s
    timeout queue 60s             # waiting for a replica slot (default: timeout connect)
    option http-buffer-request    # wait for the body so its "model" can be hashed
    retries 3
    option redispatch 1           # a refused connection is retried on another replica
    retry-on conn-failure 503     # ... and so is a 503 from a replica that is stopping
frontend api
    bind $HOST:$PORT
    http-request deny deny_status 404 if { path_beg /metrics }   # per replica, admin key
    default_backend braid
backend braid
$BAL
    option httpchk GET /health
    # maxconn below braid's --max-connections (256): beyond it HAProxy queues; below it braid
    # queues itself, in VTC order across tenants
    # two failed checks 250 ms apart take a replica out (one slow answer on a busy machine does
    # not move its adapters); a check may take up to 2 s
    timeout check 2s
    # weight 100: more points per replica on the consistent-hash ring; with the default weight 1,
    # 100 adapters split 34/66 over two replicas, with 100 they split 49/51 (24-27 each over 4)
    default-server check inter 250ms fall 2 rise 2 maxconn 200 weight 100
EOF
  for i in $(seq "$N"); do echo "    server r$i 127.0.0.1:$((PORT + i))"; done
} > "$DIR/haproxy.cfg.tmp" && mv "$DIR/haproxy.cfg.tmp" "$DIR/haproxy.cfg"
"$HAPROXY" -c -q -f "$DIR/haproxy.cfg" || die "haproxy rejected $DIR/haproxy.cfg"

# ---- processes ----
declare -A RPID=()
HPID=; STOPPING=0
start_replica() {
  local i=$1
  rm -f "$DIR/replica$i.port"
  "$BRAID" serve "${SERVE_ARGS[@]}" --host 127.0.0.1 --port $((PORT + i)) --port-file "$DIR/replica$i.port" \
      --max-connections-per-ip 0 --drain-grace-s 1 >> "$DIR/replica$i.log" 2>&1 &
  RPID[$i]=$!
  echo "${RPID[$i]}" > "$DIR/replica$i.pid"
}
stop_all() {
  STOPPING=1
  trap '' TERM INT
  # HAProxy first: SIGUSR1 = soft stop (stop accepting, finish what it is proxying)
  if [ -n "$HPID" ]; then kill -USR1 "$HPID" 2>/dev/null; wait "$HPID" 2>/dev/null; fi
  for i in "${!RPID[@]}"; do kill -TERM "${RPID[$i]}" 2>/dev/null; done
  local rc=0
  for i in "${!RPID[@]}"; do wait "${RPID[$i]}" 2>/dev/null || rc=1; done
  echo "serve_cluster: stopped" >&2
  exit $rc
}
trap stop_all TERM INT

for i in $(seq "$N"); do start_replica "$i"; done
for i in $(seq "$N"); do
  ok=0
  for _ in $(seq 600); do
    [ -s "$DIR/replica$i.port" ] && { ok=1; break; }
    kill -0 "${RPID[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ok" = 0 ]; then
    tail -n 5 "$DIR/replica$i.log" >&2
    for j in "${!RPID[@]}"; do kill -TERM "${RPID[$j]}" 2>/dev/null; done
    die "replica $i did not start (log: $DIR/replica$i.log)"
  fi
done
"$HAPROXY" -db -f "$DIR/haproxy.cfg" >> "$DIR/haproxy.log" 2>&1 &
HPID=$!
echo "$HPID" > "$DIR/haproxy.pid"
URL="http://$HOST:$PORT"
for _ in $(seq 100); do
  curl -sf -o /dev/null "$URL/health" && break
  kill -0 "$HPID" 2>/dev/null || { cat "$DIR/haproxy.log" >&2; stop_all; }
  sleep 0.1
done
echo "$URL" > "$DIR/url.tmp" && mv "$DIR/url.tmp" "$DIR/url"
echo "serve_cluster: $N replicas behind $URL (config and logs in $DIR; Ctrl-C or SIGTERM to stop)" >&2
echo "$URL"

# ---- supervise: restart a replica that died (not while stopping) ----
while :; do
  sleep 1 & wait $! 2>/dev/null
  [ "$STOPPING" = 1 ] && break
  kill -0 "$HPID" 2>/dev/null || { echo "serve_cluster: haproxy exited (log: $DIR/haproxy.log)" >&2; stop_all; }
  for i in "${!RPID[@]}"; do
    if ! kill -0 "${RPID[$i]}" 2>/dev/null; then
      wait "${RPID[$i]}" 2>/dev/null; rc=$?
      if [ "$RESTART" = 1 ]; then
        echo "serve_cluster: replica $i exited ($rc); restarting" >&2
        start_replica "$i"
      else
        echo "serve_cluster: replica $i exited ($rc); left down (--no-restart)" >&2
        unset "RPID[$i]"
      fi
    fi
  done
done
