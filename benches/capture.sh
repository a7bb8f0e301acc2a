#!/usr/bin/env bash
# Passive capture side by side with its peers, in one run:
#
#   import: `oltrace import F` vs `tshark -r F -T fields -e pgsql.query
#           -e http.request.uri -e resp.bulk_string.value` on the same pcap
#           of mixed PostgreSQL, Redis and HTTP traffic (target: 10x
#           faster). The pcap is `oltrace generate` (serverless mix) put
#           out by `oltrace export --format pcap`, about MB megabytes.
#           Rounds alternate; medians and the ratio are printed.
#   live:   `oltrace capture -i lo` and `tcpdump -i lo` at the same time
#           under `redis-benchmark -P 16` (the heaviest load here): the
#           requests redis-benchmark sent against the exchanges in the
#           capture, oltrace's kernel drops and missing bytes, and
#           tcpdump's kernel drops (target: 0 lost; GoReplay loses 18-25%).
#
# Needs root (capture), tshark, tcpdump, redis-benchmark, and Redis on
# 127.0.0.1:6379. OLTRACE=path uses that oltrace instead of building the
# release one (quote the build in the figures).
# Usage: benches/capture.sh [MB] [ROUNDS] [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-1000}
rounds=${2:-3}
requests=${3:-2000000}
if [ -z "${OLTRACE:-}" ]; then
  cargo build --release -q -p oltrace-tracer
  OLTRACE=${CARGO_TARGET_DIR:-target}/release/oltrace
fi
tmp=$(mktemp -d /tmp/oltrace-capture-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. benches/lib.sh  # median, secs

# --- import rate ----------------------------------------------------------
# About 86 bytes of pcap per generated record (serverless mix: messages,
# exchanges and the rest; 200,000 records made a 17.4 MB pcap).
records=$((mb * 1000000 / 86))
"$OLTRACE" generate -o "$tmp/gen.mp" --records "$records" >/dev/null 2>&1
"$OLTRACE" export --format pcap "$tmp/gen.mp" -o "$tmp/mixed.pcap" 2>/dev/null
size=$(stat -c %s "$tmp/mixed.pcap")
echo "pcap: $(echo "$size / 1000000" | bc) MB from $records generated records"
ours=(); theirs=()
for _ in $(seq "$rounds"); do
  ours+=("$(secs "$OLTRACE" import "$tmp/mixed.pcap" -o "$tmp/imported.mp")")
  theirs+=("$(secs tshark -r "$tmp/mixed.pcap" -T fields -e pgsql.query -e http.request.uri -e resp.bulk_string.value)")
done
o=$(printf '%s\n' "${ours[@]}" | median)
t=$(printf '%s\n' "${theirs[@]}" | median)
"$OLTRACE" import "$tmp/mixed.pcap" -o "$tmp/imported.mp" 2>&1 | head -1
printf 'import: oltrace %.2f s (%.0f MB/s), tshark fields %.2f s (%.0f MB/s): oltrace %.1fx faster\n' \
  "$o" "$(echo "$size / 1000000 / $o" | bc -l)" "$t" "$(echo "$size / 1000000 / $t" | bc -l)" "$(echo "$t / $o" | bc -l)"

# --- live capture loss ------------------------------------------------------
tcpdump -i lo -n -s 0 -B 65536 -w "$tmp/live.pcap" 'tcp port 6379' 2> "$tmp/tcpdump.err" &
dump=$!
"$OLTRACE" capture -i lo -o "$tmp/live.mp" --json 'tcp port 6379' > "$tmp/live.json" 2> "$tmp/live.err" &
cap=$!
sleep 1
redis-benchmark -h 127.0.0.1 -p 6379 -P 16 -n "$requests" -t set,get -q > /dev/null 2>&1
sleep 1
kill -INT "$cap" "$dump"
wait "$cap" || true
wait "$dump" || true
python3 - "$tmp/live.json" "$tmp/tcpdump.err" "$requests" <<'EOF'
import json, re, sys
live = json.load(open(sys.argv[1]))
tcpdump = open(sys.argv[2]).read()
sent = 2 * int(sys.argv[3])
got = live["exchanges"].get("redis", 0)
drops = int(re.search(r"(\d+) packets dropped by kernel", tcpdump).group(1))
# redis-benchmark also sends a CONFIG GET or two per run: count only SET and GET.
print(f"live: redis-benchmark -P 16 sent {sent} SET/GET; oltrace capture: {got} redis exchanges, "
      f"{live['kernel_drops']} kernel drops, {live['missing_bytes']} bytes missing, {live['gaps']} gaps; "
      f"tcpdump at the same time: {drops} kernel drops")
EOF
