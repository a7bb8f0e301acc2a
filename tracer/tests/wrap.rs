//! `oltrace wrap` runs a worker behind recording proxies: its queries and
//! its output lines land in the trace, its output still reaches the
//! terminal, and its exit code is passed on.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (trust, database `test`) and Redis on
//! 127.0.0.1:6379, with psql and redis-cli (`.ci/run` provides them).

use format::{Body, ExchangeSummary, LogStream, Reader, Record};
use std::process::Command;

#[test]
fn wrapped_worker_is_recorded_with_its_logs_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("w.mp");
    let script = r#"
        echo "via port $PGPORT"
        psql -U postgres -d test -XAtc "select 6 * 7"
        redis-cli -u "$REDIS_URL" set oltrace:wrapped yes
        echo "something went wrong" >&2
        exit 3
    "#;
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["wrap", "-o"])
        .arg(&trace)
        .args(["--route", "postgres:0=127.0.0.1:5432", "--route", "redis:0=127.0.0.1:6379", "--", "sh", "-c", script])
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "the command's exit code is passed on; stderr: {stderr}");
    // Output passes through.
    assert!(stdout.contains("42\n") && stdout.contains("OK\n"), "{stdout}");
    assert!(stderr.contains("something went wrong"), "{stderr}");
    let port_line = stdout.lines().find(|l| l.starts_with("via port ")).unwrap();
    assert_ne!(port_line, "via port 5432", "PGPORT points at the proxy, not the server");
    assert_ne!(port_line, "via port ", "PGPORT is set");

    let records: Vec<Record> = Reader::open(&trace).unwrap().map(|r| r.unwrap()).collect();
    let logs: Vec<(LogStream, String)> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Log(l) => Some((l.stream, l.text.clone())),
            _ => None,
        })
        .collect();
    assert!(logs.contains(&(LogStream::Stdout, "42".to_string())), "{logs:?}");
    assert!(logs.contains(&(LogStream::Stdout, "OK".to_string())), "{logs:?}");
    assert!(logs.contains(&(LogStream::Stderr, "something went wrong".to_string())), "{logs:?}");
    assert!(records.iter().all(|r| !matches!(&r.body, Body::Log(l) if l.origin != "sh")), "logs name their command");

    let mut saw_query = false;
    let mut saw_set = false;
    for r in &records {
        if let Body::Exchange(e) = &r.body {
            match &e.summary {
                ExchangeSummary::Pg(p) if p.statements.iter().any(|s| s == "select 6 * 7") => saw_query = p.rows == 1,
                ExchangeSummary::Redis(x) if x.command == "SET" => saw_set = true,
                _ => {}
            }
        }
    }
    assert!(saw_query, "the worker's query and its row are in the trace");
    assert!(saw_set, "the worker's Redis command is in the trace");
}

#[test]
fn missing_command_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["wrap", "-o"])
        .arg(dir.path().join("t.mp"))
        .args(["--", "/nonexistent/worker"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run /nonexistent/worker"));
}

/// A signal sent to oltrace the moment the command starts (here by the
/// command itself) is passed on to the command, not taken by oltrace's
/// default action: the command ends by it, oltrace exits with 128 + 15
/// and the trace is finished, holding the line the command printed first.
#[test]
fn a_signal_at_once_is_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("s.mp");
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["wrap", "-o"])
        .arg(&trace)
        .args(["--", "sh", "-c", "echo started; kill -TERM $PPID; exec sleep 30"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + 15), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    let records: Vec<Record> = Reader::open(&trace).unwrap().map(|r| r.unwrap()).collect();
    assert!(
        records.iter().any(|r| matches!(&r.body, Body::Log(l) if l.text == "started" && l.stream == LogStream::Stdout)),
        "{records:?}"
    );
}
