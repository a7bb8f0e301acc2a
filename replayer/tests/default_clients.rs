//! PostgreSQL clients with their default settings, which ask for TLS
//! (`sslmode=prefer`) of a server that has it (`ssl = on`): recorded
//! through `oltrace proxy`, which declines TLS (its default), then replayed
//! clean. psql, pgbench in the simple, extended and prepared protocols,
//! asyncpg and psycopg 3; no test here sets sslmode.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 with `ssl = on` (trust, database
//! `test`), psql, pgbench and python3 with asyncpg and psycopg: `.ci/run`
//! provides them.

mod support;

use std::process::Command;
use support::*;

#[test]
fn default_clients_recorded_through_declined_tls_replay_clean() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("defaults.mp");
    let table = unique("tls_defaults");
    psql_direct(&format!("create table {table} (id int primary key, v text); insert into {table} select i, 'v' || i from generate_series(1, 20) i"));
    let script = dir.path().join("select.sql");
    std::fs::write(&script, format!("\\set id random(1, 20)\nSELECT v FROM {table} WHERE id = :id;\n")).unwrap();

    let proxy = Proxy::start(&trace, &["postgres:0=127.0.0.1:5432".into()]);
    let port = proxy.port(0);
    for mode in ["simple", "extended", "prepared"] {
        run(Command::new("pgbench")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-n", "-M", mode, "-c", "1", "-t", "10", "-f"])
            .arg(&script)
            .arg("test"));
    }
    assert_eq!(psql_via(&port, &format!("SELECT v FROM {table} WHERE id = 3")), "v3\n");
    let asyncpg = format!(
        "import asyncio, asyncpg\n\
         async def main():\n    c = await asyncpg.connect(host='127.0.0.1', port={port}, user='postgres', database='test')\n    \
         print(await c.fetchval('SELECT v FROM {table} WHERE id = $1', 4))\n    await c.close()\n\
         asyncio.run(main())\n"
    );
    let psycopg = format!(
        "import psycopg\n\
         with psycopg.connect(host='127.0.0.1', port={port}, user='postgres', dbname='test') as c:\n    \
         print(c.execute('SELECT v FROM {table} WHERE id = %s', (5,)).fetchone()[0])\n"
    );
    for (code, expect) in [(asyncpg, "v4\n"), (psycopg, "v5\n")] {
        let out = run(Command::new("python3").args(["-c", &code]));
        assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
    }
    proxy.stop();

    // Every connection asked for TLS and was declined, so nothing is opaque.
    let info = run(Command::new(oltrace_bin()).args(["info", "--json"]).arg(&trace));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["connections_by_tls"]["declined"], info["connections"], "{info}");
    // (pgbench opens one connection of its own before its client's.)
    assert_eq!(info["connections"], 3 * 2 + 3, "{info}");
    assert!(info["records_by_kind"].get("fallback").is_none(), "{info}");

    let t = trace.to_str().unwrap();
    let (code, v, err) = olreplay_json(&[t]);
    psql_direct(&format!("drop table {table}"));
    assert_eq!(code, 0, "{v}\n{err}");
    // 30 pgbench selects, psql's, asyncpg's and psycopg's (and the
    // drivers' own set-up queries).
    assert!(v["replayed"].as_u64().unwrap() >= 33, "{v}");
    assert_eq!(v["matched"], v["replayed"], "{v}");
}
