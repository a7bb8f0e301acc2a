#!/usr/bin/env bash
# Recording overhead, side by side in one run: clients straight to the
# servers ("direct"), through haproxy (TCP mode; and HTTP mode for wrk),
# and through `oltrace proxy` recording everything. Rounds alternate the
# order of the targets; one warm-up round is thrown away; the table gives
# medians over the rounds, as ratios to direct and oltrace/haproxy, and the
# median of the per-round oltrace/haproxy ratios (paired within a round,
# steadier when the machine's speed changes between rounds).
# A second table gives the CPU time each proxy process used per request
# (from /proc clock ticks), with oltrace's recorder thread apart. oltrace
# decodes in the traffic's pauses (`--defer`), so after each of its runs
# the script waits until the recorder has caught up before the next run:
# its catch-up is counted in its CPU (and timed), and it does not take CPU
# from the next target's run. Then: trace bytes per exchange against a
# tcpdump pcap of the same traffic, and the proxies' resident memory with
# 1,000 connections open.
# pgbench runs with its default settings (sslmode=prefer) against a server
# with ssl = on: straight and through haproxy (TCP mode) it speaks TLS to
# the server; through oltrace (tls=decline, its default) it is told no and
# goes on in plaintext, which is what a user recording gets.
# Two TLS loads put oltrace's terminating TLS against a peer terminating it
# with the same certificate (ECDSA P-256, made here with openssl), both
# forwarding in plaintext to the same server:
# - pgtls: pgbench with sslmode=require, so TLS on the client's hop: straight
#   to the server's own TLS, through pgbouncer (client_tls_sslmode=require,
#   session pooling) and through oltrace's `tls=terminate`. haproxy cannot
#   be the peer here: PostgreSQL 15 clients open with an SSLRequest before
#   the handshake, which haproxy does not speak.
# - redistls: redis-benchmark --tls against a private redis-server's TLS
#   port, through haproxy terminating TLS (`bind ... ssl crt`) and through a
#   `rediss` route, both to that server's plaintext port.
#
# Needs PostgreSQL on 127.0.0.1:5432 (database `test`), Redis on
# 127.0.0.1:6379, pgbench, redis-benchmark, wrk, haproxy, tcpdump (root),
# python3; for the TLS loads also openssl, redis-server and pgbouncer. Usage:
#   benches/record.sh            # ROUNDS=3 DURATION=10 by default
#   ROUNDS=5 DURATION=20 benches/record.sh > table.md
#   LOADS="redisP" SIZES=0 benches/record.sh   # some loads only (pg redis
#                                               # redisP http pgtls redistls);
#                                               # no pcap or memory tables
#   OLTRACE_FLAGS="--defer 0" benches/record.sh # extra flags for the proxy
#   PGBENCH_DB=mine benches/record.sh           # pgbench's tables in another
#                                               # database (created if absent)
# The markdown table goes to stdout; progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
REDIS_N=${REDIS_N:-100000}
REDIS_PN=${REDIS_PN:-1000000}
CONNS=${CONNS:-1000}
OLTRACE_FLAGS=${OLTRACE_FLAGS:-}
PGBENCH_DB=${PGBENCH_DB:-test}

say() { printf '%s\n' "$*" >&2; }
read -r -a loads <<< "${LOADS:-pg redis redisP http pgtls redistls}"
tls_loads=""
for load in "${loads[@]}"; do case $load in pgtls|redistls) tls_loads=1 ;; esac; done
for tool in pgbench redis-benchmark wrk haproxy tcpdump python3 ${tls_loads:+openssl redis-server pgbouncer}; do
  command -v "$tool" >/dev/null || { say "record.sh: $tool is missing (apt-get install postgresql-client redis-tools redis-server wrk haproxy tcpdump python3 openssl pgbouncer)"; exit 2; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say "building release binaries"
cargo build --release -q -p oltrace-tracer --bin oltrace --example http_upstream
target=${CARGO_TARGET_DIR:-target}
oltrace="$target/release/oltrace"
upstream_bin="$target/release/examples/http_upstream"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- servers and proxies -------------------------------------------------------
"$upstream_bin" --port 0 > "$tmp/upstream.out" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$tmp/upstream.out" && break; sleep 0.1; done
http_port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/upstream.out")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hp_pg=$(free_port); hp_redis=$(free_port); hp_http_tcp=$(free_port); hp_http=$(free_port)
hp_redistls=$(free_port); ol_pgtls=$(free_port); ol_redistls=$(free_port)
bouncer_port=$(free_port); redis_plain=$(free_port); redis_tls=$(free_port)
tls_haproxy=""; bouncer_pid=""; tls_routes=()
if [ -n "$tls_loads" ]; then
  say "TLS: certificate, a private redis-server with a TLS port, pgbouncer"
  # The tmp dir holds pgbouncer's files too: pgbouncer will not run as root.
  chmod 755 "$tmp"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  cat "$tmp/cert.pem" "$tmp/key.pem" > "$tmp/haproxy.pem"
  chmod 644 "$tmp/key.pem"
  redis-server --port "$redis_plain" --tls-port "$redis_tls" --tls-cert-file "$tmp/cert.pem" --tls-key-file "$tmp/key.pem" \
    --tls-auth-clients no --save "" --appendonly no --bind 127.0.0.1 > "$tmp/redis.log" 2>&1 &
  pids+=($!)
  printf '"postgres" ""\n' > "$tmp/userlist.txt"
  cat > "$tmp/pgbouncer.ini" <<EOF
[databases]
$PGBENCH_DB = host=127.0.0.1 port=5432 dbname=$PGBENCH_DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $tmp/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
client_tls_sslmode = require
client_tls_cert_file = $tmp/cert.pem
client_tls_key_file = $tmp/key.pem
server_tls_sslmode = disable
logfile = $tmp/pgbouncer.log
EOF
  chown -R postgres "$tmp"
  # setpriv execs pgbouncer itself (runuser would stay its parent), so
  # bouncer_pid is pgbouncer's and its CPU can be read.
  setpriv --reuid=postgres --regid=postgres --init-groups pgbouncer "$tmp/pgbouncer.ini" > "$tmp/pgbouncer.out" 2>&1 &
  bouncer_pid=$!
  pids+=($bouncer_pid)
  tls_haproxy="listen redistls
  mode tcp
  bind 127.0.0.1:$hp_redistls ssl crt $tmp/haproxy.pem
  server s 127.0.0.1:$redis_plain"
  tls_routes=(--route "postgres:$ol_pgtls=127.0.0.1:5432,tls=terminate,cert=$tmp/cert.pem,key=$tmp/key.pem"
    --route "rediss:$ol_redistls=127.0.0.1:$redis_plain,cert=$tmp/cert.pem,key=$tmp/key.pem")
  for port in "$bouncer_port" "$redis_tls"; do
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { say "pgbouncer or redis-server did not start:"; cat "$tmp"/pgbouncer.* "$tmp/redis.log" >&2; exit 2; }
  done
fi
cat > "$tmp/haproxy.cfg" <<EOF
global
  maxconn 5000
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen pg
  mode tcp
  bind 127.0.0.1:$hp_pg
  server s 127.0.0.1:5432
listen redis
  mode tcp
  bind 127.0.0.1:$hp_redis
  server s 127.0.0.1:6379
listen http_tcp
  mode tcp
  bind 127.0.0.1:$hp_http_tcp
  server s 127.0.0.1:$http_port
listen http
  mode http
  option http-keep-alive
  bind 127.0.0.1:$hp_http
  server s 127.0.0.1:$http_port
$tls_haproxy
EOF
haproxy -f "$tmp/haproxy.cfg" -db > "$tmp/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=($haproxy_pid)
for port in "$hp_pg" "$hp_redis" "$hp_http_tcp" "$hp_http" ${tls_loads:+"$hp_redistls"}; do
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { say "haproxy did not start:"; cat "$tmp/haproxy.log" >&2; exit 2; }
done

# Starts `oltrace proxy` writing $1 with routes for all three servers (and
# the TLS routes, on their fixed ports); sets ol_pid, ol_pg, ol_redis, ol_http.
start_oltrace() {
  "$oltrace" proxy -o "$1" --route postgres:0=127.0.0.1:5432 --route redis:0=127.0.0.1:6379 \
    --route "http:0=127.0.0.1:$http_port" "${tls_routes[@]}" $OLTRACE_FLAGS 2> "$1.log" &
  ol_pid=$!
  pids+=($ol_pid)
  local want=$((3 + ${#tls_routes[@]} / 2))
  for _ in $(seq 100); do [ "$(grep -c listening "$1.log" 2>/dev/null)" = "$want" ] && break; sleep 0.1; done
  port_of() { grep "$1:127.0.0.1:0 " "$2" | sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p'; }
  ol_pg=$(port_of postgres "$1.log"); ol_redis=$(port_of redis "$1.log"); ol_http=$(port_of http "$1.log")
}
stop_oltrace() { kill -INT "$ol_pid"; wait "$ol_pid" || true; }
start_oltrace "$tmp/bench.mp"
sleep 0.5

say "pgbench tables (scale 10)"
psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = '$PGBENCH_DB'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $PGBENCH_DB"
pgbench -h 127.0.0.1 -p 5432 -U postgres -i -s 10 -q "$PGBENCH_DB" >/dev/null 2>&1

# --- one measurement: prints "THROUGHPUT MEDIAN_LATENCY_MS" -------------------------
pg_run() { # port [sslmode: only the pgtls load sets one; the others run with pgbench's default]
  rm -f "$tmp"/pglog*
  local out
  out=$(env ${2:+PGSSLMODE=$2} pgbench -h 127.0.0.1 -p "$1" -U postgres -n -S -c 8 -j 2 -T "$DURATION" -l --log-prefix="$tmp/pglog" "$PGBENCH_DB" 2>&1)
  local tps
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n1)
  # Per-transaction log: the third field is the latency in microseconds.
  local p50
  p50=$(cat "$tmp"/pglog* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]/1000}')
  echo "$tps $p50"
}
redis_run() { # port, extra args...; GET and SET together: summed rps, mean of the two p50s
  local port=$1; shift
  redis-benchmark -h 127.0.0.1 -p "$port" -t get,set -c 50 --csv "$@" 2>/dev/null \
    | awk -F'"' '/^"(GET|SET)"/ {rps += $4; p50 += $10; n++} END {printf "%.0f %.3f\n", rps, p50 / n}'
}
wrk_run() { # port
  wrk -t2 -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$1/" 2>&1 | awk '
    /Requests\/sec/ {rps = $2}
    $1 == "50%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; p50 = v}
    END {printf "%.0f %.3f\n", rps, p50}'
}

# load name -> command per target
declare -A label=(
  [pg]="pgbench -S -c 8 -j 2 -T $DURATION (default sslmode)"
  [redis]="redis-benchmark -t get,set -c 50 -n $REDIS_N"
  [redisP]="redis-benchmark -t get,set -c 50 -P 16 -n $REDIS_PN"
  [http]="wrk -t2 -c32 -d${DURATION}s"
  [pgtls]="pgbench -S -c 8 -j 2 -T $DURATION, sslmode=require, TLS terminated"
  [redistls]="redis-benchmark --tls -t get,set -c 50 -n $REDIS_N, TLS terminated"
)
# The proxy oltrace is compared with, per load (see the top of the file).
peer_of() { if [ "$1" = pgtls ]; then echo pgbouncer; else echo haproxy; fi; }
targets_for() { if [ "$1" = http ]; then echo "direct haproxy haproxy_http oltrace"; else echo "direct $(peer_of "$1") oltrace"; fi; }
measure() { # load target
  case "$1:$2" in
    pg:direct) pg_run 5432 ;;
    pg:haproxy) pg_run "$hp_pg" ;;
    pg:oltrace) pg_run "$ol_pg" ;;
    redis:direct) redis_run 6379 -n "$REDIS_N" ;;
    redis:haproxy) redis_run "$hp_redis" -n "$REDIS_N" ;;
    redis:oltrace) redis_run "$ol_redis" -n "$REDIS_N" ;;
    redisP:direct) redis_run 6379 -n "$REDIS_PN" -P 16 ;;
    redisP:haproxy) redis_run "$hp_redis" -n "$REDIS_PN" -P 16 ;;
    redisP:oltrace) redis_run "$ol_redis" -n "$REDIS_PN" -P 16 ;;
    http:direct) wrk_run "$http_port" ;;
    http:haproxy) wrk_run "$hp_http_tcp" ;;
    http:haproxy_http) wrk_run "$hp_http" ;;
    http:oltrace) wrk_run "$ol_http" ;;
    pgtls:direct) pg_run 5432 require ;;
    pgtls:pgbouncer) pg_run "$bouncer_port" require ;;
    pgtls:oltrace) pg_run "$ol_pgtls" require ;;
    redistls:direct) redis_run "$redis_tls" --tls --insecure -n "$REDIS_N" ;;
    redistls:haproxy) redis_run "$hp_redistls" --tls --insecure -n "$REDIS_N" ;;
    redistls:oltrace) redis_run "$ol_redistls" --tls --insecure -n "$REDIS_N" ;;
  esac
}

# --- CPU the proxies use: clock ticks of a process, all threads; for oltrace
# also of its recorder thread (which decodes once the run's traffic has
# paused; see settle).
tick_us=$(awk -v hz="$(getconf CLK_TCK)" 'BEGIN {print 1e6 / hz}')
cpu_ticks() { # pid -> "total recorder"
  local rec=0 t
  for t in /proc/"$1"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = oltrace-recorde ] && rec=$(awk '{print $14 + $15}' "$t/stat")
  done
  echo "$(awk '{print $14 + $15}' "/proc/$1/stat") $rec"
}
# Waits until oltrace's recorder has used no CPU for half a second (it has
# decoded everything spooled); prints the seconds that took.
settle() { # pid
  local start prev now
  start=$(date +%s.%N)
  prev=$(cpu_ticks "$1")
  while sleep 0.5; now=$(cpu_ticks "$1"); [ "${now#* }" != "${prev#* }" ]; do prev=$now; done
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a - 0.5}'
}
requests_of() { # load throughput -> requests in one run
  case $1 in
    pg|pgtls|http) awk -v r="$2" -v d="$DURATION" 'BEGIN {printf "%.0f", r * d}' ;;
    redis|redistls) echo $((2 * REDIS_N)) ;;
    redisP) echo $((2 * REDIS_PN)) ;;
  esac
}

# --- rounds: warm-up (round 0, discarded), then ROUNDS, order rotating -----------
declare -A results cpu
for round in $(seq 0 "$ROUNDS"); do
  for load in "${loads[@]}"; do
    read -r -a ts <<< "$(targets_for "$load")"
    n=${#ts[@]}
    for i in $(seq 0 $((n - 1))); do
      t=${ts[$(((i + round) % n))]}
      case $t in haproxy*) pid=$haproxy_pid ;; pgbouncer) pid=$bouncer_pid ;; oltrace) pid=$ol_pid ;; *) pid="" ;; esac
      [ -n "$pid" ] && read -r c0 r0 <<< "$(cpu_ticks "$pid")"
      r=$(measure "$load" "$t")
      caught_up=""
      [ "$t" = oltrace ] && caught_up=$(settle "$pid")
      if [ -n "$pid" ]; then
        read -r c1 r1 <<< "$(cpu_ticks "$pid")"
        reqs=$(requests_of "$load" "${r%% *}")
        # microseconds per request: all threads but the recorder, and the recorder
        c=$(awk -v a=$((c1 - c0 - r1 + r0)) -v b=$((r1 - r0)) -v u="$tick_us" -v n="$reqs" 'BEGIN {printf "%.2f %.2f", a * u / n, b * u / n}')
        [ -n "$caught_up" ] && c+=" $caught_up"
        say "round $round $load $t: $r; CPU us/request $c${caught_up:+; recorder caught up ${caught_up}s after}"
        [ "$round" = 0 ] || cpu[$load:$t]+="$c;"
      else
        say "round $round $load $t: $r"
      fi
      [ "$round" = 0 ] || results[$load:$t]+="$r;"
    done
  done
done
stop_oltrace
summary_line=$(grep 'connections, exchanges' "$tmp/bench.mp.log" || true)
lost_line=$(grep 'fell behind' "$tmp/bench.mp.log" || true)
behind_line=$(grep 'decoding ran' "$tmp/bench.mp.log" || true)

median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
field() { # key index -> median of that field over rounds
  echo "${results[$1]}" | tr ';' '\n' | awk -v i="$2" 'NF {print $i}' | median
}
# load other -> median over the rounds of oltrace's throughput / other's in
# the same round: paired, so a round where the whole machine ran slower
# weighs on both sides of its ratio alike.
paired() {
  paste -d' ' <(echo "${results[$1:oltrace]}" | tr ';' '\n' | awk 'NF {print $1}') \
    <(echo "${results[$1:$2]}" | tr ';' '\n' | awk 'NF {print $1}') | awk 'NF == 2 {print $1 / $2}' | median
}

echo "Recording overhead, $ROUNDS rounds after a warm-up, medians; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work on the machine)."
echo
echo "| load | target | throughput | vs direct | p50 latency ms | added p50 ms | oltrace / peer | oltrace / peer, per round |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for load in "${loads[@]}"; do
  d_rate=$(field "$load:direct" 1); d_lat=$(field "$load:direct" 2)
  peer=$(peer_of "$load")
  h_rate=$(field "$load:$peer" 1)
  hh_rate=$([ "$load" = http ] && field "$load:haproxy_http" 1 || echo "")
  for t in $(targets_for "$load"); do
    rate=$(field "$load:$t" 1); lat=$(field "$load:$t" 2)
    unit=$(case $load in pg*) echo tps ;; *) echo req/s ;; esac)
    ratio=""; per_round=""
    if [ "$t" = oltrace ]; then
      ratio=$(awk -v a="$rate" -v b="$h_rate" -v c="$hh_rate" 'BEGIN {printf "%.2f", a / b; if (c != "") printf " (tcp), %.2f (http)", a / c}')
      per_round=$(awk -v a="$(paired "$load" "$peer")" -v c="$([ "$load" = http ] && paired "$load" haproxy_http)" \
        'BEGIN {printf "%.2f", a; if (c != "") printf " (tcp), %.2f (http)", c}')
    fi
    awk -v l="${label[$load]}" -v t="$t" -v r="$rate" -v u="$unit" -v d="$d_rate" -v lat="$lat" -v dl="$d_lat" -v x="$ratio" -v p="$per_round" \
      'BEGIN {printf "| `%s` | %s | %.0f %s | %.2f | %.3f | %+.3f | %s | %s |\n", l, t, r, u, r / d, lat, lat - dl, x, p}'
  done
done
echo
echo "CPU time the proxy process used per request, in microseconds (medians; clock ticks of $tick_us us, so short runs are coarse). oltrace's forwarding threads, spooler and main thread, against the peer (haproxy; pgbouncer for pgtls); its recorder thread apart, including its catch-up after the run, and the seconds that catch-up took once the run ended."
echo
echo "| load | peer | oltrace without recorder | oltrace / peer | oltrace recorder | recorder caught up after, s |"
echo "| --- | --- | --- | --- | --- | --- |"
cpu_field() { echo "${cpu[$1]}" | tr ';' '\n' | awk -v i="$2" 'NF {print $i}' | median; }
for load in "${loads[@]}"; do
  h=$(cpu_field "$load:$(peer_of "$load")" 1); o=$(cpu_field "$load:oltrace" 1); rec=$(cpu_field "$load:oltrace" 2); late=$(cpu_field "$load:oltrace" 3)
  hh=$([ "$load" = http ] && cpu_field "$load:haproxy_http" 1 || echo "")
  awk -v l="${label[$load]}" -v h="$h" -v hh="$hh" -v o="$o" -v r="$rec" -v late="$late" \
    'BEGIN {if (hh != "") printf "| `%s` | %.2f (tcp), %.2f (http) | %.2f | %.2f (tcp), %.2f (http) | %.2f | %.1f |\n", l, h, hh, o, o / h, o / hh, r, late;
            else printf "| `%s` | %.2f | %.2f | %.2f | %.2f | %.1f |\n", l, h, o, o / h, r, late}'
done
echo
echo "oltrace recorded: ${summary_line#oltrace: }"
[ -n "$lost_line" ] && echo "LOST: ${lost_line#oltrace: }"
[ -n "$behind_line" ] && echo "Recorder: ${behind_line#oltrace: }"

[ "${SIZES:-1}" = 0 ] && exit 0

# --- trace size vs pcap ------------------------------------------------------------
say "trace bytes vs pcap"
echo
echo "| traffic | exchanges | trace bytes/exchange | pcap bytes/exchange | trace / pcap |"
echo "| --- | --- | --- | --- | --- |"
size_run() { # name load-command-using-$port
  local name=$1 cmd=$2
  start_oltrace "$tmp/size-$name.mp"
  local port
  case $name in pg) port=$ol_pg ;; redis) port=$ol_redis ;; http) port=$ol_http ;; esac
  tcpdump -i lo -s 0 -w "$tmp/size-$name.pcap" -U "tcp port $port" 2> "$tmp/tcpdump.log" &
  local tcpdump_pid=$!
  sleep 1
  port=$port eval "$cmd" >/dev/null 2>&1
  sleep 0.5
  kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" || true
  stop_oltrace
  local exchanges
  exchanges=$(sed -n 's/.*exchanges: [a-z]* \([0-9]*\).*/\1/p' "$tmp/size-$name.mp.log")
  local trace pcap
  trace=$(stat -c %s "$tmp/size-$name.mp"); pcap=$(stat -c %s "$tmp/size-$name.pcap")
  awk -v n="$name" -v e="$exchanges" -v t="$trace" -v p="$pcap" \
    'BEGIN {printf "| %s | %d | %.1f | %.1f | %.3f |\n", n, e, t / e, p / e, t / p}'
}
size_run pg 'pgbench -h 127.0.0.1 -p $port -U postgres -n -S -c 8 -j 2 -t 5000 "$PGBENCH_DB"'
size_run redis 'redis-benchmark -p $port -t get,set -c 50 -n 100000'
size_run http 'wrk -t2 -c32 -d5s http://127.0.0.1:$port/'

# --- memory with many connections ------------------------------------------------------
say "memory with $CONNS connections"
cat > "$tmp/conns.py" <<'EOF'
# Opens N connections to a Redis port, PINGs on each (so each is
# established end to end), keeps them all open; then keeps a tenth of them
# busy with PINGs until stdin closes. Prints "ready" once all are open.
import socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PING\r\n")
    socks.append(s)
for s in socks:
    assert s.recv(64).startswith(b"+PONG")
stop = threading.Event()
def busy(group):
    while not stop.is_set():
        for s in group:
            s.sendall(b"PING\r\n")
        for s in group:
            s.recv(64)
threading.Thread(target=busy, args=(socks[: n // 10],), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
stop.set()
EOF
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s %d ", $1, $2}' "/proc/$1/status"; }
mem_run() { # name pid port
  coproc CONNS_PROC { python3 "$tmp/conns.py" "$3" "$CONNS"; }
  local line
  read -r line <&"${CONNS_PROC[0]}"
  sleep 2
  local m
  m=$(rss "$2")
  local in_fd=${CONNS_PROC[1]}
  exec {in_fd}>&-
  wait "$CONNS_PROC_PID" 2>/dev/null || true
  echo "$1 $m"
}
start_oltrace "$tmp/mem.mp"
before_ol=$(rss "$ol_pid"); before_hp=$(rss "$haproxy_pid")
mem_ol=$(mem_run oltrace "$ol_pid" "$ol_redis")
mem_hp=$(mem_run haproxy "$haproxy_pid" "$hp_redis")
stop_oltrace
echo
echo "| proxy | RSS idle (KiB) | RSS with $CONNS connections, a tenth busy (KiB) | peak RSS (KiB) |"
echo "| --- | --- | --- | --- |"
for pair in "oltrace|$before_ol|$mem_ol" "haproxy|$before_hp|$mem_hp"; do
  IFS='|' read -r name before during <<< "$pair"
  idle=$(echo "$before" | awk '{print $4}')
  now=$(echo "$during" | awk '{print $5}'); peak=$(echo "$during" | awk '{print $3}')
  echo "| $name | $idle | $now | $peak |"
done
