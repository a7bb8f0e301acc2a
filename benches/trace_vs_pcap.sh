#!/usr/bin/env bash
# Bytes per small keep-alive HTTP exchange: an oltrace trace against a
# tcpdump pcap of the same exchanges (same bytes), side by side in one run.
# Needs tcpdump and root (for the capture). Usage: benches/trace_vs_pcap.sh [EXCHANGES]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
cargo build --release -q --bin oltrace
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./target/release/oltrace generate -o "$tmp/t.mp" --mix small-http --records $((n * 3)) 2>/dev/null
trace=$(stat -c %s "$tmp/t.mp")
pcap_line=$(python3 benches/pcap_size.py --exchanges "$n" --conns 4)
echo "$pcap_line"
pcap_per=$(echo "$pcap_line" | sed -E 's/.*: ([0-9.]+) bytes\/exchange/\1/')
awk -v t="$trace" -v n="$n" -v p="$pcap_per" 'BEGIN { printf "trace: %d bytes for %d exchanges: %.1f bytes/exchange; trace/pcap = %.3f\n", t, n, t / n, (t / n) / p }'
