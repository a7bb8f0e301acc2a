#!/usr/bin/env bash
# The call-class table two ways, side by side on the same generated trace,
# alternating rounds and reporting medians and the ratio:
#
#   olanalyze:  `olanalyze --json TRACE` (reads the .mp trace; its call-class
#               table is one part of the full analysis it computes);
#   duckdb:     the `call_classes` recipe of docs/at-scale.md over the
#               trace's Parquet export (`oltrace export --format parquet`,
#               timed once, apart: where traces are recorded it is paid once,
#               then any number of queries read the columns).
#
# Both must find the same classes with the same call counts (checked once,
# before timing). DuckDB runs from Python (the `duckdb` package; process
# start and import included in the wall time, the query's own time printed
# too). This tells users when to switch: see docs/at-scale.md.
#
# Usage: benches/duckdb_vs_analyze.sh [RECORDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-10000000}
rounds=${2:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p oltrace-tracer -p oltrace-analyzer
oltrace=$target/release/oltrace
olanalyze=$target/release/olanalyze
tmp=$(mktemp -d /tmp/oltrace-duckdb-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. benches/lib.sh  # median, secs

"$oltrace" generate -o "$tmp/t.mp" --records "$records" >/dev/null
export_s=$(secs "$oltrace" export --format parquet "$tmp/t.mp" -o "$tmp/fleet/w1")
exchanges=$(python3 -c "import duckdb,sys; print(duckdb.sql(f\"SELECT count(*) FROM '{sys.argv[1]}'\").fetchone()[0])" "$tmp/fleet/w1/exchanges.parquet")
echo "trace: $records records, $exchanges exchanges; .mp $(du -h "$tmp/t.mp" | cut -f1), parquet $(du -sh "$tmp/fleet" | cut -f1)"
printf 'export --format parquet (once): %.2f s\n' "$export_s"

"$olanalyze" --no-progress --json "$tmp/t.mp" > "$tmp/analysis.json"
python3 benches/at_scale_query.py "$tmp/fleet" call_classes "$tmp/analysis.json"

: > "$tmp/an"; : > "$tmp/dq"; : > "$tmp/dq_query"
for _ in $(seq "$rounds"); do
  secs "$olanalyze" --no-progress --json "$tmp/t.mp" >> "$tmp/an"
  t0=$(date +%s.%N)
  python3 benches/at_scale_query.py "$tmp/fleet" call_classes 2>> "$tmp/dq_query" >/dev/null
  echo "$(date +%s.%N) - $t0" | bc -l >> "$tmp/dq"
done
an=$(median < "$tmp/an"); dq=$(median < "$tmp/dq"); dqq=$(median < "$tmp/dq_query")
printf 'call-class table (median of %s rounds, wall seconds; load %s):\n' "$rounds" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  olanalyze --json (.mp)          %8.2f s   %12.0f exchanges/s\n' "$an" "$(echo "$exchanges / $an" | bc -l)"
printf '  duckdb call_classes (parquet)   %8.2f s   %12.0f exchanges/s   (query alone %.2f s)\n' "$dq" "$(echo "$exchanges / $dq" | bc -l)" "$dqq"
printf '  olanalyze / duckdb              %8.2fx\n' "$(echo "$an / $dq" | bc -l)"
printf '  export + one duckdb query       %8.2f s   (%.2fx olanalyze)\n' "$(echo "$export_s + $dq" | bc -l)" "$(echo "($export_s + $dq) / $an" | bc -l)"
