#!/usr/bin/env bash
# `oltrace export` side by side with reading alone, in one run, alternating
# rounds and reporting medians and ratios:
#
#   rate:  records/s of `export --format parquet` and `--format otlp` against
#          `oltrace cat TRACE > /dev/null` on the same trace (target: Parquet
#          at least 1x cat's rate: cat writes JSON of every record, the
#          Parquet export columns of the exchanges, invocations, connections
#          and logs).
#   size:  the Parquet folder against the .mp trace and against the gzip'd
#          JSON lines of `cat`.
#
# The trace is `oltrace generate` (serverless mix).
# Usage: benches/export.sh [RECORDS] [ROUNDS]   (the issue's figure: 10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
rounds=${2:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p oltrace-tracer
oltrace=$target/release/oltrace
tmp=$(mktemp -d /tmp/oltrace-export-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. benches/lib.sh  # median, secs

"$oltrace" generate -o "$tmp/t.mp" --records "$records" >/dev/null
echo "trace: $records records, $(du -h "$tmp/t.mp" | cut -f1)"

: > "$tmp/cat"; : > "$tmp/parquet"; : > "$tmp/otlp"
for _ in $(seq "$rounds"); do
  secs sh -c "'$oltrace' cat '$tmp/t.mp' > /dev/null" >> "$tmp/cat"
  rm -rf "$tmp/pq"
  secs "$oltrace" export --format parquet "$tmp/t.mp" -o "$tmp/pq" >> "$tmp/parquet"
  secs "$oltrace" export --format otlp "$tmp/t.mp" -o "$tmp/spans.json" >> "$tmp/otlp"
done
cat_s=$(median < "$tmp/cat"); pq_s=$(median < "$tmp/parquet"); otlp_s=$(median < "$tmp/otlp")
rate() { echo "$records / $1" | bc; }
printf 'rate (median of %s rounds, records/s):\n' "$rounds"
printf '  oltrace cat > /dev/null   %12s\n' "$(rate "$cat_s")"
printf '  export --format parquet   %12s   %.2fx cat\n' "$(rate "$pq_s")" "$(echo "$cat_s / $pq_s" | bc -l)"
printf '  export --format otlp      %12s   %.2fx cat\n' "$(rate "$otlp_s")" "$(echo "$cat_s / $otlp_s" | bc -l)"

"$oltrace" cat "$tmp/t.mp" | gzip -6 > "$tmp/t.jsonl.gz"
mp=$(stat -c %s "$tmp/t.mp"); pq=$(du -cb "$tmp/pq"/*.parquet | tail -1 | cut -f1); gz=$(stat -c %s "$tmp/t.jsonl.gz")
printf 'size (bytes):\n'
printf '  .mp trace                 %12s\n' "$mp"
printf '  parquet folder            %12s   %.2fx the .mp\n' "$pq" "$(echo "$pq / $mp" | bc -l)"
printf '  cat | gzip -6             %12s   parquet is %.2fx of it\n' "$gz" "$(echo "$pq / $gz" | bc -l)"
