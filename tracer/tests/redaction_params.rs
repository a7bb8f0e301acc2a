//! Secrets sent as Bind parameters and printed in log lines never reach a
//! trace (the redaction contract's follow-up to tests/redaction.rs).
//!
//! PostgreSQL: psycopg 3 (its default unnamed statements, and named ones
//! with `prepare_threshold=0`) and asyncpg (named statements, binary
//! parameters) write the canary through `oltrace proxy` with `INSERT ...
//! (name, password) VALUES ($1, $2)`, `UPDATE ... SET token = $1` and
//! compare it in `WHERE password = $1`; the server got it (read back
//! directly), and no byte of the trace, of its decoded records, nor of
//! `oltrace cat` holds it, while the other parameters stay. Recorded with
//! `--no-redact` (the canary is in that trace, on purpose: listed in
//! scripts/scan_canary.sh), `oltrace redact` blanks the same parameters.
//!
//! Logs: `oltrace wrap` around a command printing the canary as
//! `password=`, a JSON `"token"`, an `Authorization: Bearer` header and a
//! URL password: its output passes through as printed, the trace's log
//! lines hold stars instead, the rest of each line stays.
//!
//! Needs PostgreSQL on 127.0.0.1:5432, psql, python3 with psycopg 3 and
//! asyncpg (scripts/test.sh installs them).

mod common;

use common::{run, Proxy, CANARY};
use format::{Body, Decoded, Record};
use std::path::Path;
use std::process::Command;

/// `bytes` hold the canary.
fn holds(bytes: &[u8]) -> bool {
    bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes())
}

/// The records that hold the canary, in their bytes or decoded fields.
fn canaries(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| matches!(&r.body, Body::Message(m) if holds(&m.data.bytes.0)) || format!("{r:?}").contains(CANARY))
        .map(|r| format!("{r:?}"))
        .collect()
}

fn cat(trace: &Path) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("cat").arg(trace))
}

fn psql_direct(sql: &str) -> String {
    run(Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-XtAq", "-v", "ON_ERROR_STOP=1", "-c", sql])).trim().to_string()
}

/// The clients' traffic, through the proxy on `port`, to table `table`.
const CLIENTS: &str = r#"
import asyncio, sys, psycopg, asyncpg
port, table, canary = sys.argv[1], sys.argv[2], sys.argv[3]
dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
with psycopg.connect(dsn, autocommit=True) as c:
    # psycopg 3's default: Parse/Bind/Execute with the unnamed statement.
    c.execute(f"INSERT INTO {table} (name, password) VALUES (%s, %s)", ("ann", canary))
with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as c:
    # Named prepared statements from the first run.
    c.execute(f"UPDATE {table} SET token = %s WHERE name = %s", (canary, "ann"))
    c.execute(f"UPDATE {table} SET note = %s WHERE name = %s", ("kept-note", "ann"))
async def main():
    c = await asyncpg.connect(host="127.0.0.1", port=int(port), user="postgres", database="postgres")
    # asyncpg: named statements, parameters in binary format.
    print(await c.fetchval(f"SELECT name FROM {table} WHERE password = $1 AND name = $2", canary, "ann"))
    await c.close()
asyncio.run(main())
"#;

/// Runs the clients through `proxy` and checks the server got the canary.
fn clients(proxy: &Proxy, table: &str) {
    psql_direct(&format!("drop table if exists {table}; create table {table} (name text, password text, token text, note text)"));
    let out = run(Command::new("python3").args(["-c", CLIENTS, &proxy.port(0), table, CANARY]));
    assert_eq!(out.trim(), "ann", "the server compared the canary");
    let stored = psql_direct(&format!("select password || ' ' || token || ' ' || note from {table}"));
    assert_eq!(stored, format!("{CANARY} {CANARY} kept-note"), "the server got the canary");
    psql_direct(&format!("drop table {table}"));
}

/// The decoded parameters of the Bind messages.
fn bind_params(records: &[Record]) -> Vec<(bool, Vec<Option<String>>)> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Message(m) => match &m.decoded {
                Some(Decoded::Pg(p)) if p.kind == "Bind" => Some((m.redacted, p.params.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn bind_parameters_of_secret_columns_reach_the_server_but_not_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("bind.mp");
    let proxy = Proxy::start(&trace, &["postgres:0=127.0.0.1:5432".into()], &[]);
    clients(&proxy, &format!("oltrace_bind_on_{}", std::process::id()));
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(canaries(&records), Vec::<String>::new(), "no record holds the canary");
    assert!(!holds(&std::fs::read(&trace).unwrap()));
    assert!(!cat(&trace).contains(CANARY));

    // Blanked star for star, in the Binds of the three clients; the other
    // parameters stay.
    let stars = Some("*".repeat(CANARY.len()));
    let binds = bind_params(&records);
    let ann = Some("ann".to_string());
    assert!(binds.contains(&(true, vec![ann.clone(), stars.clone()])), "psycopg's INSERT: {binds:?}");
    assert!(binds.contains(&(true, vec![stars.clone(), ann.clone()])), "psycopg's named UPDATE: {binds:?}");
    assert!(binds.contains(&(false, vec![Some("kept-note".into()), ann.clone()])), "a statement without secrets is left: {binds:?}");
    // asyncpg sends text in binary format: summarised as `\x` hex, blanked
    // all the same.
    assert!(binds.iter().any(|(r, p)| *r && p.len() == 2 && p[0].as_ref().is_some_and(|v| v.chars().all(|c| c == '*')) && p[1] != p[0]), "asyncpg's SELECT: {binds:?}");
}

#[test]
fn oltrace_redact_blanks_bind_parameters_of_a_no_redact_trace() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.mp");
    let proxy = Proxy::start(&raw, &["postgres:0=127.0.0.1:5432".into()], &["--no-redact"]);
    clients(&proxy, &format!("oltrace_bind_off_{}", std::process::id()));
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert!(canaries(&records).len() >= 3, "the unredacted trace holds the canary: {}", canaries(&records).len());

    let shared = dir.path().join("shared.mp");
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["redact", "--json"]).arg(&raw).arg("-o").arg(&shared).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    common::keep_for_scan(&shared, false);
    let after = common::read_trace(&shared);
    assert_eq!(after.len(), records.len(), "every record kept");
    assert_eq!(canaries(&after), Vec::<String>::new());
    assert!(!holds(&std::fs::read(&shared).unwrap()));
    // The same Binds blanked as when recording.
    let redacted = bind_params(&after).iter().filter(|(r, _)| *r).count();
    assert_eq!(redacted, 3, "{:?}", bind_params(&after));
}

/// A command printing the canary in the ways the log rules cover, and
/// lines without secrets.
fn printer() -> String {
    let c = CANARY;
    format!(
        "echo 'login user=bob password={c} ok'; \
         echo '{{\"level\":\"info\",\"token\": \"{c}\",\"n\":3}}' >&2; \
         echo 'Authorization: Bearer {c}'; \
         echo 'connect postgres://app:{c}@db:5432/x'; \
         echo 'plain line, nothing secret'"
    )
}

/// The log lines of `records`: (redacted, text).
fn logs(records: &[Record]) -> Vec<(bool, String)> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Log(l) => Some((l.redacted, l.text.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn wrapped_commands_log_lines_hold_no_canary() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("logs.mp");
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["wrap", "-o"]).arg(&trace).args(["--", "sh", "-c", &printer()]).output().unwrap();
    common::keep_for_scan(&trace, false);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // What the command printed passes through as it was.
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("password={CANARY} ok")));
    let records = common::read_trace(&trace);
    assert_eq!(canaries(&records), Vec::<String>::new());
    assert!(!holds(&std::fs::read(&trace).unwrap()));
    let s = "*".repeat(CANARY.len());
    // The header's copy of the command line is blanked too.
    let header = format::Reader::open(&trace).unwrap().header().clone();
    let command = &header.meta["command"];
    assert!(command.starts_with(&format!("sh -c echo 'login user=bob password={s} ok'")), "{command}");
    let lines = logs(&records);
    for expected in [
        format!("login user=bob password={s} ok"),
        format!("{{\"level\":\"info\",\"token\": \"{s}\",\"n\":3}}"),
        format!("connect postgres://app:{s}@db:5432/x"),
    ] {
        assert!(lines.contains(&(true, expected.clone())), "{expected} in {lines:?}");
    }
    assert!(lines.iter().any(|(r, l)| *r && l.starts_with("Authorization: ") && !l.contains("Bearer")), "{lines:?}");
    assert!(lines.contains(&(false, "plain line, nothing secret".into())), "{lines:?}");

    // Recorded with --no-redact, the lines are as printed; `oltrace redact`
    // blanks them the same way.
    let raw = dir.path().join("raw.mp");
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["wrap", "--no-redact", "-o"]).arg(&raw).args(["--", "sh", "-c", &printer()]).output().unwrap();
    common::keep_for_scan(&raw, true);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(canaries(&common::read_trace(&raw)).len(), 4);
    let shared = dir.path().join("shared.mp");
    run(Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("redact").arg(&raw).arg("-o").arg(&shared));
    common::keep_for_scan(&shared, false);
    // (stdout and stderr lines may interleave differently in two runs.)
    let sorted = |mut v: Vec<(bool, String)>| {
        v.sort();
        v
    };
    let again = logs(&common::read_trace(&shared));
    assert_eq!(sorted(again), sorted(lines), "the same lines, blanked the same way");
}
