"""asyncpg flows for the wire fixtures (see ../README.md): binary COPY via
copy_records_to_table, then a query and a LISTEN (issue 24), NOTIFY to
itself, a transaction with a server-side cursor (Execute with a row limit),
a prepared statement run twice and an error. Every query's result echoes a
marker `mkNNN` so a test can check each exchange got its own answer.
Connects to $PGHOST:$PGPORT as $PGUSER, database test, with asyncpg's
default settings. Prints {"conns": [exchanges on the connection]}.

Also captured as wire/fixtures/pg/asyncpg_flows.fx (wire/tests/pg_pairing.rs)."""
import asyncio, json, os
import asyncpg


async def main():
    c = await asyncpg.connect(host=os.environ.get("PGHOST", "127.0.0.1"), port=int(os.environ["PGPORT"]),
                              user=os.environ.get("PGUSER", "postgres"), database="test")
    await c.execute("create temp table fidelity_copy(a int, b text)")
    await c.copy_records_to_table("fidelity_copy", records=[(i, "r%d" % i) for i in range(10)])
    assert await c.fetchval("select count(*)::text || ' mk501' from fidelity_copy") == "10 mk501"
    await c.execute('LISTEN "fidelity_chan"')
    got = asyncio.get_running_loop().create_future()
    await c.add_listener("fidelity_chan", lambda *a: got.done() or got.set_result(a[3]))
    await c.execute("NOTIFY fidelity_chan, 'mk502'")
    assert await asyncio.wait_for(got, 5) == "mk502"
    assert await c.fetchval("select 'mk503'") == "mk503"
    async with c.transaction():
        rows = [r[0] async for r in c.cursor("select 'mk504-' || g from generate_series(1, 5) g", prefetch=2)]
        assert rows == ["mk504-%d" % i for i in range(1, 6)], rows
    st = await c.prepare("select 'mk505-' || $1::int")
    assert await st.fetchval(1) == "mk505-1" and await st.fetchval(2) == "mk505-2"
    try:
        await c.fetchval("select 1/0, 'mk506'")
        raise SystemExit("no error")
    except asyncpg.DivisionByZeroError:
        pass
    assert await c.fetchval("select 'mk507'") == "mk507"
    await c.close()
    # Each statement asyncpg prepares is a round trip of its own
    # (Parse/Describe/Flush), then Bind/Execute/Sync. Startup; create;
    # copy_records_to_table's prepare and its COPY; the count (2); LISTEN;
    # add_listener's LISTEN (2); NOTIFY; mk503 (2); BEGIN, the cursor's
    # prepare, 3 fetches, the portal's Close, COMMIT; the prepare, 2 runs;
    # 1/0 (2); mk507 (2); Terminate.
    print(json.dumps({"conns": [27]}))


asyncio.run(main())
