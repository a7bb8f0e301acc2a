"""Runs one recipe of docs/at-scale.md in DuckDB over exported Parquet.

Usage: at_scale_query.py FLEET RECIPE [OLANALYZE_JSON]

FLEET is the folder the docs call `fleet/` (one sub-folder per worker, each
an `oltrace export --format parquet` output). The views and the recipe are
read from docs/at-scale.md, as the test suite reads them, so the bench runs
the SQL users are given. Prints the query's own time in seconds on stderr.

With OLANALYZE_JSON (an `olanalyze --json` of the same trace) and the
call_classes recipe, checks that both find the same classes with the same
call counts, and exits 1 when they do not.
"""
import json
import pathlib
import sys
import time

import duckdb

fleet, recipe = sys.argv[1], sys.argv[2]
doc = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "at-scale.md").read_text()
blocks = {}
for block in doc.split("```sql\n")[1:]:
    sql = block.split("```")[0]
    blocks[sql.splitlines()[0].removeprefix("-- ").strip()] = sql

con = duckdb.connect()
t0 = time.perf_counter()
con.execute(blocks["duckdb: views"].replace("'fleet/", "'" + fleet + "/"))
rel = con.sql(blocks["recipe: " + recipe])
rows = [dict(zip(rel.columns, row)) for row in rel.fetchall()]
print(f"{time.perf_counter() - t0:.3f}", file=sys.stderr)

if len(sys.argv) > 3:
    analysis = json.load(open(sys.argv[3]))
    classes = analysis["classes"]
    want = {r["key"]: r["count"] for r in classes["rows"]}
    got = {r["fingerprint"]: r["calls"] for r in rows}
    bad = [(k, n, got.get(k)) for k, n in want.items() if got.get(k) != n]
    total = sum(got.values())
    if bad or total != classes["calls"]:
        print(f"MISMATCH: (class, olanalyze, duckdb) {bad[:5]}; calls {classes['calls']} vs {total}", file=sys.stderr)
        sys.exit(1)
    print(f"same classes and counts: {len(want)} classes (olanalyze's table), {total} calls", file=sys.stderr)
