#!/usr/bin/env bash
# olanalyze against pt-query-digest and pgbadger on the same PostgreSQL
# workload, side by side in one run: the fair comparison, since the trace
# holds PostgreSQL traffic alone (a pgbench TPC-B run recorded through
# `oltrace proxy`), as the tools' own inputs do.
#
#   olanalyze        reads the trace (every record: connections, messages,
#                    exchanges)
#   pt-query-digest  reads the same statements, one per line
#                    (`--type rawlog`, the cheapest input it takes)
#   pgbadger         reads the server's log of the same run
#                    (log_min_duration_statement = 0, set on the bench
#                    database only, so other sessions do not add lines)
#
# Rounds alternate the tools; medians and ratios are printed, then each
# tool's class counts for the classes both olanalyze and pt-query-digest
# name. Targets (issue 19): 20x pt-query-digest, 10x pgbadger.
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres), pgbench,
# pt-query-digest (percona-toolkit) and pgbadger; the server's log in
# /var/log/postgresql (Debian's layout, log_destination = stderr).
# Usage: benches/analyze_pg.sh [TRANSACTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
transactions=${1:-150000}
rounds=${2:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p oltrace-tracer -p oltrace-analyzer
oltrace=$PWD/$target/release/oltrace
olanalyze=$PWD/$target/release/olanalyze
tmp=$(mktemp -d /tmp/olanalyze-pg-bench.XXXXXX)
db=olanalyze_bench
port=25432
proxy=
cleanup() {
  [ -n "$proxy" ] && kill "$proxy" 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "alter database $db reset log_min_duration_statement" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
. benches/lib.sh  # median, secs

psql -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists $db" -c "create database $db"
pgbench -q -i -s 1 -h 127.0.0.1 -U postgres "$db" >/dev/null 2>&1
psql -q -h 127.0.0.1 -U postgres -d postgres -c "alter database $db set log_min_duration_statement = 0"
log=$(ls -t /var/log/postgresql/postgresql-*-main.log | head -n1)
offset=$(($(stat -c %s "$log") + 1))

"$oltrace" proxy --route "postgres:$port=127.0.0.1:5432" -o "$tmp/pg.mp" 2>"$tmp/proxy.err" &
proxy=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
clients=4
pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c "$clients" -j 2 -t $((transactions / clients)) "$db" > "$tmp/pgbench.out"
kill -INT "$proxy"; wait "$proxy" || true; proxy=
psql -q -h 127.0.0.1 -U postgres -d postgres -c "alter database $db reset log_min_duration_statement"
tail -c +"$offset" "$log" > "$tmp/server.log"

# The trace's statements, one per line, for pt-query-digest.
"$oltrace" cat --kind exchange --proto postgres "$tmp/pg.mp" | python3 -c '
import json, sys
for line in sys.stdin:
    for s in json.loads(line)["summary"]["pg"]["statements"]:
        print(" ".join(s.split()) + ";")
' > "$tmp/raw.log"
statements=$(wc -l < "$tmp/raw.log")
records=$("$oltrace" info --json "$tmp/pg.mp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
logged=$(grep -c 'duration: .* statement: ' "$tmp/server.log" || true)
echo "pgbench: $(grep -E '^(tps|number of transactions actually)' "$tmp/pgbench.out" | tr '\n' ' ')"
echo "trace: $records records, $statements statements, $(du -h "$tmp/pg.mp" | cut -f1); server log: $logged statements, $(du -h "$tmp/server.log" | cut -f1)"

prefix=$(psql -h 127.0.0.1 -U postgres -d postgres -tAc 'show log_line_prefix')
for _ in $(seq "$rounds"); do
  secs "$olanalyze" --no-progress --json "$tmp/pg.mp" >> "$tmp/analyze"
  secs pt-query-digest --type rawlog "$tmp/raw.log" >> "$tmp/pt"
  secs pgbadger -q -j 1 -f stderr -p "$prefix" -o "$tmp/badger.txt" "$tmp/server.log" >> "$tmp/badger"
done
a=$(median < "$tmp/analyze"); p=$(median < "$tmp/pt"); b=$(median < "$tmp/badger")
printf 'olanalyze        median %8.3f s  %10.0f statements/s\n' "$a" "$(echo "$statements / $a" | bc -l)"
printf 'pt-query-digest  median %8.3f s  %10.0f statements/s\n' "$p" "$(echo "$statements / $p" | bc -l)"
printf 'pgbadger         median %8.3f s  %10.0f statements/s\n' "$b" "$(echo "$logged / $b" | bc -l)"
printf 'ratio pt-query-digest / olanalyze: %.1fx (target >= 20x)\n' "$(echo "$p / $a" | bc -l)"
printf 'ratio pgbadger / olanalyze:        %.1fx (target >= 10x)\n' "$(echo "$b / $a" | bc -l)"

# Class counts, per tool, sorted by count.
echo "olanalyze classes (count, class):"
"$olanalyze" --no-progress --json "$tmp/pg.mp" | python3 -c '
import json, sys
a = json.load(sys.stdin)
rows = a["classes"]["rows"] + ([a["classes"]["rest"]] if a["classes"].get("rest") else [])
for r in sorted((r for r in rows if r["protocol"] == "postgres"), key=lambda r: -r["count"]):
    print("  %8d  %s" % (r["count"], r["key"][:70]))
'
echo "pt-query-digest classes (count, fingerprint):"
pt-query-digest --type rawlog --limit 100% --output json "$tmp/raw.log" 2>/dev/null | python3 -c '
import json, sys
for c in sorted(json.load(sys.stdin)["classes"], key=lambda c: -c["query_count"]):
    print("  %8d  %s" % (c["query_count"], c["fingerprint"][:70]))
'
echo "(machine shared with other jobs: ratios, not absolute figures, are the result)"
