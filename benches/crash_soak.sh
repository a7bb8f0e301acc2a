#!/usr/bin/env bash
# A longer soak of what tracer/tests/crash_recovery.rs checks in 3 rounds:
# `oltrace proxy` under `redis-benchmark -P 16` (INCR on a key of its own)
# is killed with SIGKILL at a random moment, ROUNDS times; after `oltrace
# recover`, the trace must hold at least the count Redis had 100 ms before
# the kill and at most its final count. Also times each recovery (MB/s).
#
#   benches/crash_soak.sh                 # ROUNDS=20
#   ROUNDS=50 MAX_MS=8000 benches/crash_soak.sh
#
# Needs redis-server on 127.0.0.1:6379, redis-benchmark, redis-cli.
set -euo pipefail
ROUNDS=${ROUNDS:-20}
MIN_MS=${MIN_MS:-200}
MAX_MS=${MAX_MS:-3000}
cargo build --release -q -p oltrace-tracer --bin oltrace
oltrace="${CARGO_TARGET_DIR:-target}/release/oltrace"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
key="crash_soak:$$"
now_ms() { date +%s%3N; }
failed=0
for round in $(seq 1 "$ROUNDS"); do
  trace="$work/r$round.mp"
  "$oltrace" proxy -o "$trace" --route redis:0=127.0.0.1:6379 2>"$work/err" &
  proxy=$!
  while ! grep -q "listening on" "$work/err"; do sleep 0.05; done
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/err" | head -1 | cut -d: -f2)
  redis-cli DEL "$key$round" >/dev/null
  redis-benchmark -p "$port" -P 16 -c 8 -n 100000000 INCR "$key$round" >/dev/null 2>&1 &
  bench=$!
  # Sample the server's count (the key's value) every 5 ms, with times.
  ( while :; do echo "$(now_ms) $(redis-cli GET "$key$round")"; sleep 0.005; done ) >"$work/samples" 2>/dev/null &
  sampler=$!
  sleep "$(awk -v a="$MIN_MS" -v b="$MAX_MS" -v s="$RANDOM" 'BEGIN { srand(s); printf "%.3f", (a + rand() * (b - a)) / 1000 }')"
  kill -9 "$proxy"; killed=$(now_ms)
  wait "$proxy" 2>/dev/null || true
  kill "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true
  sleep 0.05; kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  before=$(awk -v k="$killed" '$1 + 100 <= k && $2 ~ /^[0-9]+$/ { if ($2 > m) m = $2 } END { print m + 0 }' "$work/samples")
  after=$(redis-cli GET "$key$round")
  spool_mb=$(du -m --apparent-size "$trace.spool" | cut -f1)
  start=$(now_ms)
  "$oltrace" recover "$trace" 2>"$work/recover"
  took=$(( $(now_ms) - start ))
  ours=$("$oltrace" cat "$trace" --kind message --dir to_server | grep -c "$key$round" || true)
  verdict=ok
  if (( ours < before || ours > after )); then verdict=FAIL; failed=$((failed + 1)); fi
  echo "round $round: trace $ours, server $before at kill-100ms, $after at end; spool ${spool_mb} MB recovered in ${took} ms: $verdict"
  redis-cli DEL "$key$round" >/dev/null
done
echo "$failed of $ROUNDS rounds failed"
exit $(( failed > 0 ))
