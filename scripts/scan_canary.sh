#!/usr/bin/env bash
# Scans every trace the test suite kept for the canary secret the redaction
# tests send (tracer/tests/redaction.rs; CANARY in tracer/tests/common/mod.rs):
# no trace may hold it, in its file bytes or in `oltrace cat`'s output.
# scripts/test.sh sets OLTRACE_TEST_TRACES=DIR for the test run; the tests'
# common::Proxy copies each trace it recorded there, named TESTFILE-PID-N-NAME,
# with `noredact-` before NAME when recorded with --no-redact.
#
#   scripts/scan_canary.sh DIR [OLTRACE]
#
# Exit 0: no canary; 1: a trace holds it, or a test not listed below recorded
# with --no-redact; 2: no trace to scan (the suite kept none: a broken setup).
set -uo pipefail
dir=${1:?usage: scripts/scan_canary.sh DIR [OLTRACE]}
oltrace=${2:-target/debug/oltrace}
CANARY=Canary7d1eOltraceSecret
# Tests that record with --no-redact on purpose (their traces hold the canary).
NO_REDACT_TESTS=(redaction redaction_params)

scanned=0 skipped=0 bad=0
for f in "$dir"/*.mp; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  test=${name%%-*}
  if [[ $name == *-noredact-* ]]; then
    if [[ " ${NO_REDACT_TESTS[*]} " == *" $test "* ]]; then
      skipped=$((skipped + 1))
    else
      echo "CI: $name: test '$test' records with --no-redact but is not listed in scripts/scan_canary.sh" >&2
      bad=1
    fi
    continue
  fi
  scanned=$((scanned + 1))
  in_file=$(grep -ac "$CANARY" "$f")
  in_cat=$("$oltrace" cat "$f" 2>/dev/null | grep -c "$CANARY")
  if [ "${in_file:-0}" != 0 ] || [ "${in_cat:-0}" != 0 ]; then
    echo "CI: $name holds the canary secret ($in_file lines of its bytes, $in_cat records in oltrace cat)" >&2
    bad=1
  fi
done
echo "CI: scanned $scanned traces for the canary secret ($skipped --no-redact traces of listed tests skipped)"
[ "$scanned" -gt 0 ] || { echo "CI: no trace kept in $dir: is OLTRACE_TEST_TRACES passed to the tests?" >&2; exit 2; }
exit $bad
