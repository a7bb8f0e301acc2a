#!/usr/bin/env bash
# The tests, set up from nothing: runs on a fresh Debian machine that has
# only the Rust toolchain (CI runs it through .ci/run).
# Installs what the tests need, makes sure PostgreSQL, Redis and MariaDB
# answer on their usual ports (starting its own where none does), then runs
# clippy and `cargo test --workspace`. README.md names this script as the
# way to run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- packages ---------------------------------------------------------------
need=()
# postgresql: initdb/pg_ctl for the replayer's private SCRAM/MD5 instance.
# openssl: a self-signed certificate when PostgreSQL's ssl is off;
# redis-server: the TLS-only Redis of tracer/tests/proxy_redis_tls.rs;
# python3: the 10,000-connection test's upstream runs in a process of its own;
# python3 also runs the demo application (traces/demo/, tracer/tests/demo_app.rs);
# chromium: olanalyze's HTML report is checked in a real headless browser.
# tcpdump, tshark: oltrace import is checked against real captures and tshark's counts;
# tcpdump's libpcap0.8 is also the library `oltrace capture` loads at run time (no
# build needs libpcap-dev or pkg-config: libpcap is never linked).
# ca-certificates: --tls-intercept verifies upstreams against the system's CAs
# (tracer/tests/tls_intercept.rs; its Node client uses undici, from conformance/).
for pkg in postgresql postgresql-client redis-tools redis-server curl wrk openssl python3 chromium tcpdump tshark ca-certificates; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# The PostgreSQL drivers the tests run with their default settings.
python3 -c 'import asyncpg, psycopg' 2>/dev/null || need+=(python3-asyncpg python3-psycopg)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- client libraries of the conformance suite (conformance/) ----------------
need=()
for pkg in python3 python3-pip nodejs; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Some nodejs packages ship npm themselves and conflict with Debian's npm:
# ask for it only when no npm is on the PATH.
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
log "conformance client libraries (pip, npm)"
# Debian's Python refuses system-wide pip installs without this flag; older pips do not know it.
python3 -m pip install -q -r conformance/requirements.txt 2>/dev/null \
  || python3 -m pip install -q --break-system-packages -r conformance/requirements.txt
(cd conformance && npm ci --no-audit --no-fund --loglevel=error)
# The demo application's clients: psycopg 3 (on the libpq of postgresql-client)
# and redis-py. Debian marks its python3 as externally managed: install beside it.
if ! python3 -c 'import psycopg, redis' 2>/dev/null; then
  log "installing psycopg and redis-py"
  as_root python3 -m pip install --quiet --break-system-packages 'psycopg>=3.1' 'redis>=5'
fi
# The readers `oltrace export`'s tests check each format with
# (tracer/tests/export.rs): DuckDB reads the Parquet tables and runs the SQL
# of docs/at-scale.md, the official OpenTelemetry protobufs parse the OTLP,
# jsonschema checks the HAR.
if ! python3 -c 'import duckdb, jsonschema, opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
  log "installing duckdb, jsonschema and opentelemetry-proto"
  as_root python3 -m pip install --quiet --break-system-packages duckdb jsonschema opentelemetry-proto
fi

# --- services -----------------------------------------------------------------
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
# The tests connect as postgres and root without a password.
pg_trusts() { psql -w -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
maria_up() { (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; }
wait_for() { for _ in $(seq 1 60); do "$1" && return 0; sleep 1; done; echo "CI: $2 did not come up" >&2; return 1; }

# Installing the postgresql package may itself start a cluster that asks
# for passwords: configure trust whenever the server does not give it.
if ! pg_up || ! pg_trusts; then
  log "starting PostgreSQL (trust auth on 127.0.0.1)"
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  as_root sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(local\s+all\s+all\s+)\S+/\1trust/' "/etc/postgresql/$ver/main/pg_hba.conf"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main restart || as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  wait_for pg_trusts PostgreSQL
  for db in test root; do
    psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -c "create database $db" >/dev/null
  done
  psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_roles where rolname='root'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "create role root superuser login" >/dev/null
fi
# Clients ask for TLS by default (sslmode=prefer): the tests must meet a
# server that accepts it, as Debian's own clusters do (ssl = on with the
# snakeoil certificate). A server without it gets a self-signed one.
if [ "$(psql -h 127.0.0.1 -U postgres -tAc 'show ssl')" != on ]; then
  log "enabling SSL on PostgreSQL (self-signed certificate)"
  data=$(psql -h 127.0.0.1 -U postgres -tAc 'show data_directory')
  as_root openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
    -keyout "$data/oltrace-ci.key" -out "$data/oltrace-ci.crt" 2>/dev/null
  owner=$(as_root stat -c %U "$data")
  as_root chown "$owner" "$data/oltrace-ci.key" "$data/oltrace-ci.crt"
  as_root chmod 600 "$data/oltrace-ci.key"
  psql -h 127.0.0.1 -U postgres -q \
    -c "alter system set ssl_cert_file = '$data/oltrace-ci.crt'" \
    -c "alter system set ssl_key_file = '$data/oltrace-ci.key'" \
    -c "alter system set ssl = on" -c "select pg_reload_conf()" >/dev/null
  for _ in $(seq 1 20); do [ "$(psql -h 127.0.0.1 -U postgres -tAc 'show ssl')" = on ] && break; sleep 0.5; done
  [ "$(psql -h 127.0.0.1 -U postgres -tAc 'show ssl')" = on ] || { echo "CI: PostgreSQL did not turn ssl on" >&2; exit 1; }
fi
if ! redis_up; then
  log "starting Redis"
  command -v redis-server >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_for redis_up Redis
fi
if ! maria_up; then
  log "starting MariaDB"
  command -v mariadbd >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_for maria_up MariaDB
fi

# --- build, lint, test ----------------------------------------------------------
log "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests (the command in README.md)"
# Every trace the tests record through common::Proxy is kept here, then
# scanned for the redaction tests' canary secret (scripts/scan_canary.sh).
OLTRACE_TEST_TRACES=$(mktemp -d)
export OLTRACE_TEST_TRACES
cargo test --workspace --locked

log "no trace the tests wrote holds the canary secret"
scripts/scan_canary.sh "$OLTRACE_TEST_TRACES" target/debug/oltrace
rm -rf "$OLTRACE_TEST_TRACES"

log "no binary links libpcap (oltrace capture loads it at run time)"
cargo build --workspace --bins --locked
for bin in oltrace olreplay olanalyze; do
  [ -x "target/debug/$bin" ] || { echo "CI: target/debug/$bin was not built" >&2; exit 1; }
  if ldd "target/debug/$bin" | grep -q libpcap; then
    echo "CI: $bin links libpcap" >&2
    exit 1
  fi
done
echo "CI: all checks passed"
