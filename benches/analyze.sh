#!/usr/bin/env bash
# olanalyze side by side with its peers, in one run, alternating rounds
# and reporting medians and ratios:
#
#   read:   olanalyze TRACE --json vs `oltrace cat --kind exchange` of the
#           same trace to /dev/null: the analysis against reading alone
#           (target: olanalyze's records/s at least 0.5 of cat's).
#   digest: olanalyze vs pt-query-digest --type rawlog over the trace's
#           PostgreSQL statements, one per line (target: 20x faster). The
#           analyzer reads the whole trace, every protocol; pt-query-digest
#           only the statements, so the ratio is conservative.
#   memory: peak RSS on the trace and on one a tenth its size. Class counts
#           of the classes both find are compared and printed.
#
# The trace is `oltrace generate` (serverless mix). Needs pt-query-digest
# (Debian's percona-toolkit).
# Usage: benches/analyze.sh [RECORDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
rounds=${2:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p oltrace-tracer -p oltrace-analyzer
oltrace=$target/release/oltrace
olanalyze=$target/release/olanalyze
tmp=$(mktemp -d /tmp/olanalyze-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. benches/lib.sh  # median, secs

"$oltrace" generate -o "$tmp/t.mp" --records "$records" >/dev/null
"$oltrace" cat --kind exchange --proto postgres "$tmp/t.mp" | python3 -c '
import json, sys
for line in sys.stdin:
    for s in json.loads(line)["summary"]["pg"]["statements"]:
        print(" ".join(s.split()) + ";")
' > "$tmp/raw.log"
statements=$(wc -l < "$tmp/raw.log")
echo "trace: $records records, $statements PostgreSQL statements, $(du -h "$tmp/t.mp" | cut -f1)"

for _ in $(seq "$rounds"); do
  secs "$olanalyze" --no-progress --json "$tmp/t.mp" >> "$tmp/analyze"
  secs "$oltrace" cat --kind exchange "$tmp/t.mp" >> "$tmp/cat"
  secs pt-query-digest --type rawlog "$tmp/raw.log" >> "$tmp/pt"
done
a=$(median < "$tmp/analyze"); c=$(median < "$tmp/cat"); p=$(median < "$tmp/pt")
printf 'olanalyze        median %8.3f s  %10.0f records/s\n' "$a" "$(echo "$records / $a" | bc -l)"
printf 'oltrace cat      median %8.3f s  %10.0f records/s\n' "$c" "$(echo "$records / $c" | bc -l)"
printf 'pt-query-digest  median %8.3f s  %10.0f statements/s\n' "$p" "$(echo "$statements / $p" | bc -l)"
printf 'ratio olanalyze/cat records/s: %.2f (target >= 0.5)\n' "$(echo "$c / $a" | bc -l)"
printf 'ratio pt-query-digest time / olanalyze time: %.1fx (target >= 20x)\n' "$(echo "$p / $a" | bc -l)"

# Bounded memory: peak RSS on this trace and on one of a tenth the size.
"$oltrace" generate -o "$tmp/small.mp" --records $((records / 10)) >/dev/null
for f in small t; do
  /usr/bin/time -f "olanalyze peak RSS on $f.mp: %M KB" "$olanalyze" --no-progress --json "$tmp/$f.mp" 2>&1 >/dev/null | tail -1
done

# Class counts: pt-query-digest's per-class counts against ours, for the
# classes both name (its fingerprint of the same statement).
"$olanalyze" --no-progress --json "$tmp/t.mp" | python3 -c '
import json, sys
a = json.load(sys.stdin)
rows = a["classes"]["rows"] + ([a["classes"]["rest"]] if a["classes"].get("rest") else [])
pg = [r for r in rows if r["protocol"] == "postgres"]
print("olanalyze: %d PostgreSQL calls in %d classes" % (sum(r["count"] for r in pg), len(pg)))
'
pt-query-digest --type rawlog --limit 100% "$tmp/raw.log" 2>/dev/null | awk '/^# Query [0-9]+:/ {q++} /^# Count/ {n+=$4} END {print "pt-query-digest: " n " statements in " q " classes"}'
echo "(machine shared with other jobs: ratios, not absolute figures, are the result)"
