#!/usr/bin/env bash
# olreplay side by side with its peers, in one run, alternating A/B rounds
# and reporting medians and ratios:
#
#   http:   wrk -t2 -c32 against a small HTTP upstream (haproxy answering
#           200 itself) vs olreplay --max --concurrency 32 replaying a wrk
#           run recorded through oltrace proxy, comparing every response.
#   pg:     pgreplay -j -s 1000 (its fastest: idle time skipped, the rest
#           1000 times faster) fed the CSV log of
#           a private PostgreSQL instance vs olreplay --max of the trace of
#           the same pgbench -S run (recorded through the proxy at the same
#           time as the log).
#   timing: olreplay at 1x on a trace of 100,000 Redis exchanges
#           (redis-benchmark): p99 of send lateness (sent - scheduled).
#
# Needs: wrk, haproxy, redis-benchmark, pgbench, psql, pgreplay and the
# PostgreSQL server binaries (/usr/lib/postgresql/*/bin), Redis on 6379.
# Usage: benches/replay.sh [ROUNDS] [http|pg|timing ...]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
parts=${*:-http pg timing}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p oltrace-replayer -p oltrace-tracer
oltrace=$target/release/oltrace
olreplay=$target/release/olreplay
tmp=$(mktemp -d /tmp/olreplay-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$tmp/pg/postmaster.pid" ]; then as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
. benches/lib.sh  # median
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Records with `oltrace proxy` while "$@" runs; $route_up is set to the
# listening port. Usage: record TRACE ROUTE -- command (with @PORT@ replaced).
record() {
  local trace=$1 route=$2; shift 3
  "$oltrace" proxy -o "$trace" --route "$route" 2>"$trace.log" &
  local pid=$!
  for _ in $(seq 50); do grep -q "listening on" "$trace.log" && break; sleep 0.1; done
  local port
  port=$(sed -nE 's/.*listening on [0-9.]+:([0-9]+) .*/\1/p' "$trace.log" | head -n1)
  local args=()
  for a in "$@"; do args+=("${a//@PORT@/$port}"); done
  "${args[@]}" >/dev/null || true
  kill -INT "$pid"; wait "$pid"
}

if [[ " $parts " == *" http "* ]]; then
  port=$(free_port)
  cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
frontend small
  bind 127.0.0.1:$port
  http-request return status 200 content-type text/plain string "hello from the small upstream"
EOF
  haproxy -f "$tmp/haproxy.cfg" -db >/dev/null 2>&1 &
  pids+=($!)
  sleep 0.5
  record "$tmp/http.mp" "http:0=127.0.0.1:$port" -- wrk -t2 -c32 -d3s "http://127.0.0.1:@PORT@/"
  n=$("$olreplay" "$tmp/http.mp" --max --report json --no-progress | json 'd["replayed"]')
  echo "http: trace of $n exchanges on 32 connections (wrk -t2 -c32 -d3s through oltrace proxy)"
  : >"$tmp/wrk"; : >"$tmp/olr"
  for r in $(seq "$rounds"); do
    wrk -t2 -c32 -d5s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}' >>"$tmp/wrk"
    "$olreplay" "$tmp/http.mp" --max --concurrency 32 --report json --no-progress \
      | json 'round(d["replayed"] / d["elapsed_s"]) if d["matched"] == d["replayed"] else "MISMATCH"' >>"$tmp/olr"
    echo "  round $r: wrk $(tail -n1 "$tmp/wrk") req/s, olreplay --max $(tail -n1 "$tmp/olr") req/s (every response compared)"
  done
  w=$(median <"$tmp/wrk"); o=$(median <"$tmp/olr")
  awk -v w="$w" -v o="$o" 'BEGIN { printf "http: median wrk %.0f req/s, olreplay --max %.0f req/s: olreplay/wrk = %.2f\n", w, o, o / w }'
fi

if [[ " $parts " == *" pg "* ]]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  mkdir "$tmp/pg"; [ "$(id -u)" = 0 ] && chown postgres "$tmp/pg"
  as_pg "$pgbin/initdb" -A trust -U postgres --no-sync -D "$tmp/pg" >/dev/null
  pgport=$(free_port)
  cat >>"$tmp/pg/postgresql.conf" <<EOF
port = $pgport
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmp/pg'
fsync = off
logging_collector = on
log_destination = 'csvlog'
log_directory = 'log'
log_filename = 'pg.log'
log_statement = 'none'
log_min_messages = error
EOF
  as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/server.log" -w start >/dev/null
  pgbench -h 127.0.0.1 -p "$pgport" -U postgres -i -s 2 postgres >/dev/null 2>&1
  # Log what pgreplay needs for exactly the recorded run.
  psql -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -q -c "alter system set log_statement = 'all'" -c "alter system set log_connections = on" -c "alter system set log_disconnections = on" -c "select pg_reload_conf()" >/dev/null
  sleep 0.5
  record "$tmp/pg.mp" "postgres:0=127.0.0.1:$pgport" -- pgbench -h 127.0.0.1 -p @PORT@ -U postgres -n -S -c 4 -t 5000 postgres
  psql -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -q -c "alter system set log_statement = 'none'" -c "alter system set log_connections = off" -c "alter system set log_disconnections = off" -c "select pg_reload_conf()" >/dev/null
  sleep 0.5
  log=$tmp/pg/log/pg.csv
  n=$("$olreplay" "$tmp/pg.mp" --max --report json --no-progress | json 'd["replayed"]')
  echo "pg: pgbench -S -c 4 -t 5000: $n exchanges in the trace, $(grep -c 'statement: ' "$log" || true) statements in the CSV log"
  : >"$tmp/pgr"; : >"$tmp/olp"
  for r in $(seq "$rounds"); do
    s=$(date +%s.%N)
    pgreplay -c -j -s 1000 -h 127.0.0.1 -p "$pgport" "$log" >/dev/null 2>&1
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", e - s }' >>"$tmp/pgr"
    "$olreplay" "$tmp/pg.mp" --max --report json --no-progress \
      | json 'd["elapsed_s"] if d["matched"] == d["replayed"] else "MISMATCH"' >>"$tmp/olp"
    echo "  round $r: pgreplay -j -s 1000 $(tail -n1 "$tmp/pgr") s, olreplay --max $(tail -n1 "$tmp/olp") s"
  done
  p=$(median <"$tmp/pgr"); o=$(median <"$tmp/olp")
  awk -v p="$p" -v o="$o" -v n="$n" 'BEGIN { printf "pg: median pgreplay -j -s 1000 %.2f s (%.0f stmt/s), olreplay --max %.2f s (%.0f stmt/s): pgreplay/olreplay time = %.2f\n", p, n / p, o, n / o, p / o }'
fi

if [[ " $parts " == *" timing "* ]]; then
  # A paced workload (a saturating one measures throughput, not timing):
  # 100,000 redis-benchmark GETs on 10 connections, replayed through the
  # proxy at 10,000/s, is recorded again; that trace is replayed at 1x.
  record "$tmp/redis.mp" "redis:0=127.0.0.1:6379" -- redis-benchmark -h 127.0.0.1 -p @PORT@ -t get -n 100000 -c 10 -q
  record "$tmp/paced.mp" "redis:0=127.0.0.1:6379" -- "$olreplay" "$tmp/redis.mp" --rate 10000/s --no-progress --target redis=redis://127.0.0.1:@PORT@
  : >"$tmp/p99"; : >"$tmp/own99"
  for r in $(seq "$rounds"); do
    "$olreplay" "$tmp/paced.mp" --report json --no-progress >"$tmp/t.json" || true
    json '"%d exchanges, span %.2f s, replay %.2f s, lateness p50 %d us, p99 %d us, max %d us; not held back by the target (%d sends): p50 %d us, p99 %d us" % (d["replayed"], d["recorded_span_s"], d["elapsed_s"], d["lateness"]["p50_us"], d["lateness"]["p99_us"], d["lateness"]["max_us"], d["own_lateness"]["count"], d["own_lateness"]["p50_us"], d["own_lateness"]["p99_us"])' <"$tmp/t.json" | sed "s/^/  round $r: /"
    json 'd["lateness"]["p99_us"]' <"$tmp/t.json" >>"$tmp/p99"
    json 'd["own_lateness"]["p99_us"]' <"$tmp/t.json" >>"$tmp/own99"
  done
  echo "timing: median p99 send lateness at 1x: $(median <"$tmp/p99") us; of sends not held back by the target: $(median <"$tmp/own99") us (target: under 1000 us)"
fi
