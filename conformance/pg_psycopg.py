"""psycopg 3 flows for the wire fixtures (see ../README.md): pipeline mode
with a Sync point in the middle and an error in the middle of a pipeline,
COPY in and out (text and binary), a server-side (named) cursor fetched in
batches, LISTEN/NOTIFY interleaved with queries, executemany. Every query's
result echoes a marker `mkNNN`. Connects with libpq's environment variables
($PGHOST, $PGPORT, $PGUSER), database test, with psycopg's default
settings. Prints {"conns": [exchanges on the connection]}.

Also captured as wire/fixtures/pg/psycopg_flows.fx (wire/tests/pg_pairing.rs)."""
import json
import psycopg

with psycopg.connect(dbname="test", autocommit=True) as c:
    cur = c.cursor()
    cur.execute("create temp table fidelity_pc(a int, b text)")
    with c.pipeline() as p:
        c.execute("select 'mk601'")
        c.execute("select 'mk602-' || %s::text", ["x"])
        p.sync()
        r = c.execute("select 'mk603'")
    assert r.fetchone() == ("mk603",)
    try:
        with c.pipeline():
            c.execute("select 'mk604'")
            c.execute("select 1/0, 'mk605'")
            c.execute("select 'mk606'")
        raise SystemExit("no error")
    except psycopg.errors.DivisionByZero:
        pass
    assert c.execute("select 'mk607'").fetchone() == ("mk607",)
    with cur.copy("copy fidelity_pc from stdin") as cp:
        for i in range(5):
            cp.write_row((i, "t%d" % i))
    with cur.copy("copy fidelity_pc from stdin (format binary)") as cp:
        cp.set_types(["int4", "text"])
        for i in range(5, 8):
            cp.write_row((i, "b%d" % i))
    with cur.copy("copy (select a, b || ' mk608' from fidelity_pc order by a) to stdout") as cp:
        rows = list(cp.rows())
    assert len(rows) == 8 and rows[0] == ("0", "t0 mk608"), rows
    with cur.copy("copy (select a from fidelity_pc) to stdout (format binary)") as cp:
        cp.set_types(["int4"])
        assert len(list(cp.rows())) == 8
    with c.transaction():
        with c.cursor(name="fidelity_cur") as sc:
            sc.itersize = 3
            sc.execute("select 'mk609-' || g from generate_series(1, 7) g")
            assert [r[0] for r in sc] == ["mk609-%d" % i for i in range(1, 8)]
    c.execute("listen fidelity_pchan")
    c.execute("notify fidelity_pchan, 'mk610'")
    assert c.execute("select 'mk611'").fetchone() == ("mk611",)
    assert [n.payload for n in c.notifies(timeout=1, stop_after=1)] == ["mk610"]
    cur.executemany("insert into fidelity_pc values (%s, %s)", [(100, "mk612"), (101, "mk612")])
    assert c.execute("select count(*)::text || ' mk613' from fidelity_pc").fetchone() == ("10 mk613",)
# Startup; create; pipeline 1 (the Sync point, then the closing Sync: 2);
# pipeline 2 (the error, to its Sync; the Flush psycopg sends after a Sync
# asks for nothing); mk607; 4 COPYs; BEGIN, DECLARE, the Describe of its
# portal, 3 FETCHes, CLOSE, COMMIT; LISTEN, NOTIFY, mk611; executemany (one
# pipeline); the count; Terminate.
print(json.dumps({"conns": [24]}))
