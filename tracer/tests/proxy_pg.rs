//! PostgreSQL through `oltrace proxy`: pgbench TPC-B in the simple,
//! extended and prepared protocols and select-only with several clients,
//! every statement recorded with its command tag and ordered timings; and
//! tokio-postgres sending binary parameters, recorded as their text. The
//! clients keep their default settings: pgbench asks for TLS, and the
//! proxy declines it (see proxy_pg_tls.rs).
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (trust auth as `postgres`; the
//! tests create their own database) and pgbench: `.ci/run` provides them.
//! A missing service fails these tests.

mod common;

use common::{assert_timings_in_order, count_kind, pg_exchanges, run, tls_modes, Proxy};
use format::{Body, Decoded};
use std::process::Command;
use std::sync::Once;

/// A database of our own, so that other tests' `pgbench -i` (in `test`)
/// cannot drop the tables under these.
const DB: &str = "oltrace_proxy_pg";

/// The database and pgbench's tables in it, created once, directly (not
/// through the proxy).
fn pgbench_tables() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let psql = |sql: &str| run(Command::new("psql").args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "postgres", "-XAtc", sql]));
        if psql(&format!("select 1 from pg_database where datname = '{DB}'")).trim() != "1" {
            psql(&format!("create database {DB}"));
        }
        run(Command::new("pgbench").args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-i", "-s", "1", "-q", DB]));
    });
}

/// The statements of pgbench's built-in TPC-B script, in order, with the
/// tag each gets.
const TPCB: [(&str, &str); 7] = [
    ("BEGIN", "BEGIN"),
    ("UPDATE pgbench_accounts", "UPDATE 1"),
    ("SELECT abalance FROM pgbench_accounts", "SELECT 1"),
    ("UPDATE pgbench_tellers", "UPDATE 1"),
    ("UPDATE pgbench_branches", "UPDATE 1"),
    ("INSERT INTO pgbench_history", "INSERT 0 1"),
    ("END", "COMMIT"),
];

#[test]
fn pgbench_tpcb_in_every_protocol_is_recorded_statement_by_statement() {
    pgbench_tables();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("tpcb.mp"), &["postgres:0=127.0.0.1:5432".to_string()], &[]);
    let p = proxy.port(0);
    let (clients, txns) = (2, 30);
    let modes = ["simple", "extended", "prepared"];
    for mode in modes {
        let out = run(Command::new("pgbench").args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-n", "-M", mode])
            .args(["-c", &clients.to_string(), "-t", &txns.to_string(), DB]));
        assert!(out.contains(&format!("number of transactions actually processed: {}", clients * txns)), "{out}");
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(count_kind(&records, "gap"), 0, "nothing lost: {summary}");
    let tls = tls_modes(&records);
    assert!(tls.len() >= 3 * clients && tls.iter().all(|m| *m == Some(format::TlsMode::Declined)), "pgbench asked for TLS, was declined: {tls:?}");
    let ex = pg_exchanges(&records);
    let runs = modes.len() * clients * txns;
    // Each TPC-B statement: once per transaction, with its tag.
    for (prefix, tag) in TPCB {
        let mut sent = 0;
        for e in &ex {
            for (i, s) in e.statements.iter().enumerate() {
                if s.trim_start().starts_with(prefix) {
                    sent += 1;
                    assert_eq!(e.tags.get(i).map(String::as_str), Some(tag), "{s}: {e:?}");
                    assert!(e.error.is_none(), "{e:?}");
                }
            }
        }
        assert_eq!(sent, runs, "every '{prefix}' pgbench sent is in the trace");
    }
    let tpcb_statements: usize = ex.iter().map(|e| e.statements.iter().filter(|s| TPCB.iter().any(|(p, _)| s.trim_start().starts_with(p))).count()).sum();
    assert_eq!(tpcb_statements, 7 * runs);
    // The extended and prepared runs went through Parse/Bind/Execute.
    assert!(ex.iter().filter(|e| e.extended).count() >= 2 * 7 * clients * txns, "extended exchanges recorded as such");
    // SELECT abalance returned its one row every time.
    assert!(ex.iter().filter(|e| e.statements.iter().any(|s| s.starts_with("SELECT abalance"))).all(|e| e.rows == 1));
    assert_timings_in_order(&records);
}

#[test]
fn pgbench_select_only_with_concurrent_clients() {
    pgbench_tables();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("select.mp"), &["postgres:0=127.0.0.1:5432".to_string()], &[]);
    let p = proxy.port(0);
    let (clients, txns) = (8, 100);
    for mode in ["simple", "prepared"] {
        run(Command::new("pgbench").args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-n", "-S", "-M", mode, "-j", "2"])
            .args(["-c", &clients.to_string(), "-t", &txns.to_string(), DB]));
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let ex = pg_exchanges(&records);
    let selects: Vec<_> = ex.iter().filter(|e| e.statements.iter().any(|s| s.starts_with("SELECT abalance FROM pgbench_accounts"))).collect();
    assert_eq!(selects.len(), 2 * clients * txns, "every select pgbench sent");
    assert!(selects.iter().all(|e| e.tags == ["SELECT 1"] && e.rows == 1), "each with its tag and row");
    let opens = count_kind(&records, "conn_open");
    assert_eq!(opens, count_kind(&records, "conn_close"), "every connection closed");
    assert!(opens >= 2 * clients, "a connection per client per run: {opens}");
    assert_timings_in_order(&records);
}

#[test]
fn tokio_postgres_binary_parameters_are_recorded_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("bin.mp"), &["postgres:0=127.0.0.1:5432".to_string()], &[]);
    let p = proxy.port(0);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sql = "select $1::int4 as i, $2::int8 as l, $3::text as t, $4::bool as b, $5::float8 as f, $6::bytea as y, $7::int4 as n";
    let row = runtime.block_on(async {
        let conninfo = format!("host=127.0.0.1 port={p} user=postgres dbname=test");
        let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.expect("connect through the proxy");
        let conn = tokio::spawn(connection);
        let bytes: Vec<u8> = vec![0, 1, 0xfe, 0xff];
        let none: Option<i32> = None;
        let row = client
            .query_one(sql, &[&42i32, &-7_000_000_000i64, &"héllo, wörld", &true, &-1.25f64, &bytes, &none])
            .await
            .expect("query through the proxy");
        let values = (
            row.get::<_, i32>(0),
            row.get::<_, i64>(1),
            row.get::<_, String>(2),
            row.get::<_, bool>(3),
            row.get::<_, f64>(4),
            row.get::<_, Vec<u8>>(5),
            row.get::<_, Option<i32>>(6),
        );
        drop(client);
        let _ = conn.await;
        values
    });
    assert_eq!(row, (42, -7_000_000_000, "héllo, wörld".to_string(), true, -1.25, vec![0, 1, 0xfe, 0xff], None), "the answer came back intact");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");

    // The trace keeps binary parameters as their bytes (`\x` hex) in the
    // Bind record, and the statement's parameter types in the
    // ParameterDescription record the server sent for tokio-postgres's
    // prepare: together they give the values back as text.
    let pg_messages: Vec<&format::PgMessage> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Message(m) => match &m.decoded {
                Some(Decoded::Pg(pg)) => Some(pg),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let binds: Vec<_> = pg_messages.iter().filter(|m| m.kind == "Bind").collect();
    assert_eq!(binds.len(), 1, "{binds:?}");
    let types: Vec<u32> = pg_messages
        .iter()
        .find(|m| m.kind == "ParameterDescription")
        .and_then(|m| m.fields.iter().find(|(k, _)| k == "types"))
        .map(|(_, v)| v.split(',').map(|t| t.parse().unwrap()).collect())
        .expect("the parameter types are recorded");
    assert_eq!(types, [23, 20, 25, 16, 701, 17, 23], "int4 int8 text bool float8 bytea int4");
    let decoded: Vec<Option<String>> = binds[0]
        .params
        .iter()
        .zip(&types)
        .map(|(p, &oid)| {
            p.as_ref().map(|hex| {
                let hex = hex.strip_prefix("\\x").expect("binary values are recorded as \\x hex");
                let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
                wire::pg::values::decode_binary(oid, &bytes).expect("a type the codec knows")
            })
        })
        .collect();
    let expect: Vec<Option<String>> = ["42", "-7000000000", "héllo, wörld", "t", "-1.25", "\\x0001feff"]
        .iter()
        .map(|s| Some(s.to_string()))
        .chain([None])
        .collect();
    assert_eq!(decoded, expect, "binary parameters decode to their text form");
    // The statement and its one row are in the exchange.
    let ex = pg_exchanges(&records);
    // (tokio-postgres prepares first, in an exchange of its own.)
    let runs: Vec<_> = ex.iter().filter(|e| e.statements.iter().any(|s| s == sql)).collect();
    assert!(runs.iter().any(|e| e.extended && e.rows == 1 && e.tags == ["SELECT 1"]), "{runs:?}");
    assert_timings_in_order(&records);
}
