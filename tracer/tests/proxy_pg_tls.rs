//! PostgreSQL clients with their default settings ask for TLS
//! (`sslmode=prefer`), and the shared server (`ssl = on`) would accept:
//! through a postgres route the proxy declines instead (`tls=decline`, the
//! default), so psql, asyncpg and psycopg 3 go on in plaintext and every
//! statement is recorded. `tls=passthrough` keeps TLS end to end, recorded
//! as opaque with the reason. Declining on a listener other hosts can reach
//! must be asked for. Around the declined requests, and through terminated
//! TLS, bytes are forwarded exactly, however they are chunked. Clients that
//! insist on TLS are terminated (`tls=terminate`) with the same counts.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 with `ssl = on` (trust, database
//! `test`), psql and python3 with asyncpg and psycopg: `.ci/run` provides
//! them. No test sets sslmode: the clients' defaults are the point.

mod common;

use common::{count_kind, localhost_cert, pg_exchanges, run, test_ca, tls_modes, Proxy};
use format::{Body, TlsMode};
use std::io::{Read, Write};
use std::process::Command;

const ROUTE: &str = "postgres:0=127.0.0.1:5432";

fn psql(port: &str, sql: &str) -> String {
    run(Command::new("psql").args(["-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "test", "-XAtc", sql]))
}

fn python(script: &str, port: &str) -> String {
    run(Command::new("python3").args(["-c", script, port]))
}

const ASYNCPG: &str = r#"
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="postgres", database="test")
    print(await conn.fetchval("select $1::text || ' from asyncpg'", "tls_decline"))
    await conn.close()
asyncio.run(main())
"#;

const PSYCOPG: &str = r#"
import sys, psycopg
with psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="postgres", dbname="test") as conn:
    print(conn.execute("select %s::text || ' from psycopg'", ("tls_decline",)).fetchone()[0])
"#;

#[test]
fn default_clients_are_declined_tls_and_every_statement_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("decline.mp");
    let proxy = Proxy::start(&trace, &[ROUTE.to_string()], &[]);
    let p = proxy.port(0);
    assert_eq!(psql(&p, "select 'tls_decline from ' || 'psql', 6 * 7"), "tls_decline from psql|42\n");
    assert_eq!(python(ASYNCPG, &p), "tls_decline from asyncpg\n");
    assert_eq!(python(PSYCOPG, &p), "tls_decline from psycopg\n");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");

    // Each client asked for TLS (its default) and was told no.
    assert_eq!(tls_modes(&records), [Some(TlsMode::Declined); 3], "{summary}");
    assert!(summary.contains("TLS on the clients' side: declined 3"), "{summary}");
    assert_eq!(count_kind(&records, "fallback"), 0, "nothing opaque: {summary}");
    // Every statement decoded, with its answer.
    let statements: Vec<&String> = pg_exchanges(&records).iter().flat_map(|e| &e.statements).collect();
    for sql in [
        "select 'tls_decline from ' || 'psql', 6 * 7",
        "select $1::text || ' from asyncpg'",
        "select $1::text || ' from psycopg'",
    ] {
        let runs: Vec<_> = pg_exchanges(&records).into_iter().filter(|e| e.statements.iter().any(|s| s == sql)).collect();
        assert!(runs.iter().any(|e| e.rows == 1 && e.error.is_none()), "{sql}: {runs:?}\nall: {statements:?}");
    }
    // The request the proxy answered is not in the trace: the server never saw it.
    let kinds: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Message(m) => match &m.decoded {
                Some(format::Decoded::Pg(pg)) => Some(pg.kind.as_str()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(!kinds.iter().any(|k| k.contains("SSL") || k.contains("GSS")), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "StartupMessage").count(), 3, "{kinds:?}");

    // `oltrace info` says which mode each connection used.
    let info = run(Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("info").arg(&trace));
    assert!(info.contains("tls:         declined 3"), "{info}");
    let json: serde_json::Value = serde_json::from_str(&run(Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["info", "--json"]).arg(&trace))).unwrap();
    assert_eq!(json["connections_by_tls"]["declined"], 3, "{json}");
    let cat = run(Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["cat", "--kind", "conn_open"]).arg(&trace));
    assert_eq!(cat.matches(r#""tls":"declined""#).count(), 3, "{cat}");
}

#[test]
fn passthrough_keeps_tls_end_to_end_and_says_why_the_trace_is_opaque() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("pass.mp"), &[format!("{ROUTE},tls=passthrough")], &[]);
    let p = proxy.port(0);
    // The server's own answer reaches psql: TLS, end to end.
    assert_eq!(psql(&p, "select ssl from pg_stat_ssl where pid = pg_backend_pid()"), "t\n");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(tls_modes(&records), [Some(TlsMode::Passthrough)]);
    assert!(summary.contains("passthrough 1 (passthrough: recorded as opaque bytes)"), "{summary}");
    let reasons: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Fallback(f) => Some(f.reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["pg: TLS accepted, connection encrypted"]);
    assert!(pg_exchanges(&records).iter().all(|e| e.statements.iter().all(|s| !s.contains("pg_stat_ssl"))), "nothing decoded past TLS");
}

#[test]
fn declining_on_a_reachable_address_must_be_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("open.mp");
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["proxy", "-o"])
        .arg(&trace)
        .args(["--route", "postgres:0.0.0.0:0=127.0.0.1:5432"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tls=decline on 0.0.0.0:0") && stderr.contains("--allow-plaintext-listen"), "{stderr}");
    assert!(!trace.exists(), "no trace is left behind");

    // Asked for: it runs, with a warning.
    let proxy = Proxy::start(&trace, &["postgres:0.0.0.0:0=127.0.0.1:5432".to_string()], &["--allow-plaintext-listen"]);
    assert_eq!(psql(&proxy.port(0), "select 'reachable'"), "reachable\n");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains("warning: postgres:0.0.0.0:0 declines TLS") && summary.contains("plaintext"), "{summary}");
    assert_eq!(tls_modes(&records), [Some(TlsMode::Declined)]);
}

/// An upstream that answers `reply` at once, then keeps what it reads
/// until the client half-closes, and hands it over.
fn capturing_upstream(reply: Vec<u8>) -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (mut s, reply, tx) = (stream, reply.clone(), tx.clone());
            std::thread::spawn(move || {
                s.write_all(&reply).unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                tx.send(got).unwrap();
            });
        }
    });
    (addr, rx)
}

#[test]
fn bytes_around_declined_requests_are_forwarded_exactly_in_any_chunking() {
    const GSSENC: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
    const SSL: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut rng = fastrand::Rng::with_seed(20);
    let reply: Vec<u8> = (0..50_000).map(|_| rng.u8(..)).collect();
    let (upstream, captured) = capturing_upstream(reply.clone());
    let dir = tempfile::tempdir().unwrap();
    let routes = [format!("postgres:0={upstream}"), format!("postgres:0={upstream},tls=passthrough")];
    let proxy = Proxy::start(&dir.path().join("exact.mp"), &routes, &[]);
    for round in 0..6 {
        let passthrough = round % 2 == 1;
        let payload: Vec<u8> = (0..rng.usize(1..40_000)).map(|_| rng.u8(..)).collect();
        let mut opening = GSSENC.to_vec();
        opening.extend_from_slice(&SSL);
        let mut client = std::net::TcpStream::connect(&proxy.addrs[usize::from(passthrough)]).unwrap();
        if passthrough {
            // The requests go on like any bytes; the upstream answers.
            payload_in_pieces(&mut client, &[&opening[..], &payload[..]].concat(), &mut rng);
        } else {
            // Each request in random pieces, each answered N.
            for request in [GSSENC, SSL] {
                payload_in_pieces(&mut client, &request, &mut rng);
                let mut answer = [0u8; 1];
                client.read_exact(&mut answer).unwrap();
                assert_eq!(&answer, b"N");
            }
            payload_in_pieces(&mut client, &payload, &mut rng);
        }
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert!(back == reply, "round {round}: the client got the upstream's bytes exactly ({} of {})", back.len(), reply.len());
        let got = captured.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        let expect = if passthrough { [&opening[..], &payload[..]].concat() } else { payload };
        assert!(got == expect, "round {round}: the upstream got the client's bytes exactly, minus the answered requests");
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(tls_modes(&records).iter().filter(|m| **m == Some(TlsMode::Declined)).count(), 3);
    assert_eq!(tls_modes(&records).iter().filter(|m| **m == Some(TlsMode::Passthrough)).count(), 3);
}

/// Writes `data` in random pieces, with pauses so that they arrive apart.
fn payload_in_pieces(s: &mut std::net::TcpStream, data: &[u8], rng: &mut fastrand::Rng) {
    let mut at = 0;
    while at < data.len() {
        let n = rng.usize(1..=(data.len() - at).min(5_000));
        s.write_all(&data[at..at + n]).unwrap();
        at += n;
        if rng.u8(..4) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// pgbench select-only in each protocol through `port`, with `sslmode`
/// (None: the default): the select exchanges recorded in `proxy`'s trace.
fn pgbench_selects(route: &str, sslmode: Option<&str>) -> (Vec<Option<TlsMode>>, usize, String) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("bench.mp"), &[route.to_string()], &[]);
    let p = proxy.port(0);
    for mode in ["simple", "extended", "prepared"] {
        let mut cmd = Command::new("pgbench");
        if let Some(m) = sslmode {
            cmd.env("PGSSLMODE", m);
        }
        let script = "SELECT 'tls_bench', 1 + 1;";
        let file = dir.path().join("s.sql");
        std::fs::write(&file, script).unwrap();
        run(cmd.args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-n", "-M", mode, "-c", "2", "-t", "15", "-f"]).arg(&file).arg("test"));
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let selects = pg_exchanges(&records)
        .iter()
        .filter(|e| e.statements.iter().any(|s| s.starts_with("SELECT 'tls_bench'")) && e.rows == 1 && e.error.is_none())
        .count();
    (tls_modes(&records), selects, summary)
}

#[test]
fn clients_that_insist_on_tls_are_terminated_and_recorded_alike() {
    // The same runs: default clients declined, sslmode=require clients
    // terminated (with a certificate made at start), re-encrypted upstream.
    let (declined, by_default, _) = pgbench_selects(ROUTE, None);
    let (terminated, insisting, summary) = pgbench_selects(&format!("{ROUTE},tls=terminate,upstream-tls=require"), Some("require"));
    assert_eq!(by_default, 3 * 2 * 15);
    assert_eq!(insisting, by_default, "the same counts: {summary}");
    assert!(declined.iter().all(|m| *m == Some(TlsMode::Declined)), "{declined:?}");
    assert!(!terminated.is_empty() && terminated.iter().all(|m| *m == Some(TlsMode::Terminated)), "{terminated:?}");
    assert!(summary.contains("TLS on the clients' side: terminated"), "{summary}");

    // Without tls=terminate, a client that insists is told no and gives up.
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("no.mp"), &[ROUTE.to_string()], &[]);
    let out = Command::new("psql").env("PGSSLMODE", "require").args(["-h", "127.0.0.1", "-p", &proxy.port(0), "-U", "postgres", "-d", "test", "-c", "select 1"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("does not support SSL"), "{out:?}");
    proxy.stop();
}

#[test]
fn terminate_presents_the_given_certificate_and_the_upstream_sees_tls() {
    // A test CA signs the proxy's certificate for localhost: a client that
    // verifies it (sslmode=verify-full) connects.
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca();
    let (cert, key) = localhost_cert(&ca);
    let (ca_file, cert_file, key_file) = (dir.path().join("ca.pem"), dir.path().join("proxy.pem"), dir.path().join("proxy.key"));
    std::fs::write(&ca_file, ca.0.pem()).unwrap();
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let route = format!("{ROUTE},tls=terminate,cert={},key={},upstream-tls=require", cert_file.display(), key_file.display());
    let proxy = Proxy::start(&dir.path().join("cert.mp"), &[route], &[]);
    let conninfo = format!("host=localhost port={} user=postgres dbname=test sslmode=verify-full sslrootcert={}", proxy.port(0), ca_file.display());
    let out = run(Command::new("psql").args([&conninfo, "-XAtc", "select ssl from pg_stat_ssl where pid = pg_backend_pid()"]));
    assert_eq!(out, "t\n", "the proxy's own connection to the server is TLS too");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(tls_modes(&records), [Some(TlsMode::Terminated)]);
    assert!(pg_exchanges(&records).iter().any(|e| e.statements.iter().any(|s| s.contains("pg_stat_ssl")) && e.rows == 1), "decoded");

    // A key that is not the certificate's: a clear error at start, exit 2.
    let other = dir.path().join("other.key");
    std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["proxy", "-o"])
        .arg(dir.path().join("bad.mp"))
        .args(["--route", &format!("{ROUTE},tls=terminate,cert={},key={}", cert_file.display(), other.display())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tls=terminate") && stderr.contains("do not go together"), "{stderr}");
}

#[test]
fn bytes_through_terminated_tls_are_forwarded_exactly_in_any_chunking() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut rng = fastrand::Rng::with_seed(12);
    let reply: Vec<u8> = (0..60_000).map(|_| rng.u8(..)).collect();
    let (upstream, captured) = capturing_upstream(reply.clone());
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("terminated.mp"), &[format!("postgres:0={upstream},tls=terminate")], &[]);
    let addr = proxy.addrs[0].clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for round in 0..4 {
        let payload: Vec<u8> = (0..rng.usize(1..50_000)).map(|_| rng.u8(..)).collect();
        let pieces: Vec<usize> = std::iter::repeat_with(|| rng.usize(1..4_000)).take(200).collect();
        let back = runtime.block_on(async {
            let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            tls::pg_request_tls(&mut tcp).await.expect("the proxy answers S");
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut s = tokio_rustls::TlsConnector::from(tls::unverified_client().unwrap()).connect(name, tcp).await.unwrap();
            let (mut at, mut i) = (0, 0);
            while at < payload.len() {
                let n = pieces[i % pieces.len()].min(payload.len() - at);
                s.write_all(&payload[at..at + n]).await.unwrap();
                s.flush().await.unwrap();
                (at, i) = (at + n, i + 1);
            }
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            let _ = s.read_to_end(&mut back).await;
            back
        });
        assert!(back == reply, "round {round}: the client got the upstream's bytes exactly, decrypted ({} of {})", back.len(), reply.len());
        let got = captured.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert!(got == payload, "round {round}: the upstream got the client's bytes exactly, decrypted ({} of {})", got.len(), payload.len());
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(tls_modes(&records), [Some(TlsMode::Terminated); 4]);
}
