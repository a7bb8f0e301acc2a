//! The conformance suite of real client libraries (issue 24): each
//! scenario script under `conformance/` drives a library with its default
//! settings through `oltrace proxy` against the real servers, then:
//!
//! - the exchanges recorded on each connection are as many as the
//!   operations the script counted (it prints `{"conns": [n, ...]}`, or
//!   `{"exchanges": n}` for a library whose connection reuse depends on
//!   timing);
//! - every exchange is paired with its own response: a marker `mkNNN` in a
//!   request (an ECHO, a SELECT, a URL) is in the bytes of the response the
//!   replayer ties to it (exempt: replies the protocol defers, a queued
//!   Redis command's `QUEUED`, and failed exchanges);
//! - `olreplay` against the same servers, with noise learned by
//!   `--learn-noise` first, has no failures and no differences except the
//!   keys the scenario declares.
//!
//! The Node libraries are installed in `conformance/node_modules` and the
//! Python ones with pip, by `.ci/run`. Needs Redis on 127.0.0.1:6379 and
//! PostgreSQL on 127.0.0.1:5432; a missing service or library fails.

mod support;

use format::{Body, Direction, ExchangeSummary};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use support::*;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance")
}

/// What a scenario runs and against what.
struct Scenario<'a> {
    name: &'a str,
    /// The program and its arguments (scripts relative to `conformance/`).
    program: &'a str,
    args: Vec<String>,
    /// `PROTO:0=UPSTREAM` routes; the script finds each proxy port in
    /// `ENV_VARS[i]`.
    routes: Vec<String>,
    env_vars: &'a [&'a str],
    /// Keys (`olreplay`'s exchange keys) allowed to differ at replay, and why.
    declared: &'a [&'a str],
    /// Skip reasons of the replay besides authentication (redone), and why.
    declared_skips: &'a [&'a str],
}

/// The `mkNNN` markers in `text`.
fn markers(text: &[u8]) -> Vec<String> {
    text.windows(5)
        .filter(|w| w.starts_with(b"mk") && w[2..].iter().all(u8::is_ascii_digit))
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// What the request of an exchange says, as text holding its markers.
fn request_text(s: &ExchangeSummary) -> Vec<u8> {
    match s {
        // Only a SELECT's rows echo its marker (a NOTIFY's payload comes
        // back asynchronously, outside any exchange).
        ExchangeSummary::Pg(p) => p.statements.iter().filter(|s| s.trim_start().to_ascii_lowercase().starts_with("select")).flat_map(|s| s.bytes().chain([b'\n'])).collect(),
        ExchangeSummary::Redis(r) => r.args.iter().flat_map(|a| a.0.iter().copied().chain([b' '])).collect(),
        ExchangeSummary::Http(h) => h.target.clone().into_bytes(),
    }
}

/// The exchange failed or its reply is deferred: no marker to expect.
fn exempt(s: &ExchangeSummary) -> bool {
    match s {
        ExchangeSummary::Pg(p) => p.error.is_some(),
        ExchangeSummary::Redis(r) => r.reply.as_ref().is_some_and(|r| r.kind == "error" || r.text.as_ref().is_some_and(|t| t.0 == b"QUEUED")),
        ExchangeSummary::Http(h) => h.status.is_none_or(|s| s >= 400),
    }
}

fn run_scenario(s: Scenario) {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join(format!("{}.mp", s.name));
    let t = trace.to_str().unwrap();
    let proxy = Proxy::start(&trace, &s.routes);
    let mut cmd = Command::new(s.program);
    cmd.current_dir(conformance_dir()).args(&s.args).env("KEY_PREFIX", format!("{}:{}", unique("fidelity"), s.name));
    cmd.env("NODE_PATH", conformance_dir().join("node_modules")).env("PGHOST", "127.0.0.1").env("PGUSER", "postgres");
    for (i, var) in s.env_vars.iter().enumerate() {
        cmd.env(var, proxy.port(i));
    }
    let out = run(&mut cmd);
    proxy.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let counted: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{}: no counts ({e}): {stdout}", s.name));

    // Exchanges per connection.
    let mut per_conn: HashMap<u64, u64> = HashMap::new();
    for r in format::Reader::open(&trace).unwrap() {
        if let Body::Exchange(e) = r.expect("an intact trace").body {
            *per_conn.entry(e.conn).or_default() += 1;
        }
    }
    let mut got: Vec<u64> = per_conn.values().copied().collect();
    got.sort_unstable();
    if let Some(conns) = counted["conns"].as_array() {
        let mut expected: Vec<u64> = conns.iter().map(|n| n.as_u64().unwrap()).collect();
        expected.sort_unstable();
        assert_eq!(got, expected, "{}: exchanges per connection, recorded vs counted by the script", s.name);
    } else {
        // Libraries whose connection reuse depends on timing count the total.
        let total = counted["exchanges"].as_u64().unwrap_or_else(|| panic!("{}: neither conns nor exchanges: {stdout}", s.name));
        assert_eq!(got.iter().sum::<u64>(), total, "{}: exchanges recorded vs counted by the script", s.name);
    }

    // Each exchange's markers are in its own response.
    let plan = replayer::load::load(&trace, &format::view::Filter::default(), false).unwrap();
    let mut checked = 0;
    for c in &plan.conns {
        for x in &c.exchanges {
            let summary = &x.recorded.summary;
            let wanted = markers(&request_text(summary));
            if wanted.is_empty() || exempt(summary) {
                continue;
            }
            let response: Vec<u8> = x.recorded.responses.iter().filter(|m| m.dir == Direction::ToClient).flat_map(|m| m.data.bytes.0.clone()).collect();
            for m in wanted {
                assert!(markers(&response).contains(&m), "{}: {} answered without its marker {m}: {summary:?}", s.name, x.key);
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "{}: no marker checked", s.name);

    // Replay against the same servers, after learning the noise.
    let noise = dir.path().join("noise.toml");
    let (code, learned, err) = olreplay(&[t, "--learn-noise", noise.to_str().unwrap()]);
    assert_eq!(code, 0, "{}: --learn-noise: {learned}\n{err}", s.name);
    let (_, v, err) = olreplay_json(&[t, "--noise", noise.to_str().unwrap()]);
    assert_eq!(v["failed"], 0, "{}: {v}\n{err}", s.name);
    assert!(v["damage"].as_array().unwrap().is_empty(), "{}: {v}", s.name);
    // Nothing left out but authentication, which replay redoes, and what
    // the scenario declares.
    for reason in v["skipped"].as_object().unwrap().keys() {
        let declared = reason.starts_with("authentication") || s.declared_skips.iter().any(|d| reason.starts_with(d));
        assert!(declared, "{}: skipped at replay: {reason}: {v}", s.name);
    }
    let listed = v["differences"].as_array().unwrap();
    assert_eq!(v["differed"].as_u64(), Some(listed.len() as u64), "{}: every difference listed: {v}", s.name);
    for d in listed {
        let key = d["key"].as_str().unwrap_or("");
        assert!(s.declared.iter().any(|k| key.starts_with(k)), "{}: undeclared difference at replay: {d}\n(learned noise: {})", s.name, std::fs::read_to_string(&noise).unwrap_or_default());
    }
    assert!(v["matched"].as_u64().unwrap() > 0, "{}: {v}", s.name);
}

fn redis_route() -> Vec<String> {
    vec!["redis:0=127.0.0.1:6379".into()]
}

fn script(path: &str) -> Vec<String> {
    vec![path.to_string()]
}

#[test]
fn redis_py_resp2_resp3_pipelines_multi_pubsub_tracking() {
    run_scenario(Scenario {
        name: "redis_py",
        program: "python3",
        args: script("redis_py.py"),
        routes: redis_route(),
        env_vars: &["REDIS_PORT"],
        // A PUBLISH counts the subscribers connected at that instant: at
        // replay the subscriber's connection may not be there yet.
        declared: &["PUBLISH"],
        // Known: wire counts a RESP3 (un)subscribe confirmation (a push
        // frame) as its command's reply while the replayer's loader leaves
        // every push out of replies, so those two exchanges are re-sent but
        // not compared.
        declared_skips: &["recorded response shorter than the exchange's byte count"],
    });
}

#[test]
fn ioredis_pipelines_multi_and_auto_pipelining() {
    run_scenario(Scenario {
        name: "ioredis",
        program: "node",
        args: script("ioredis.js"),
        routes: redis_route(),
        env_vars: &["REDIS_PORT"],
        declared: &[],
        declared_skips: &[],
    });
}

#[test]
fn http_requests_httpx_fetch_and_curl_on_keep_alive() {
    let upstream = Upstream::start();
    let route = vec![format!("http:0={}", upstream.addr)];
    for (name, program, args) in [
        ("http_py", "python3", script("http_py.py")),
        ("http_fetch", "node", script("http_fetch.js")),
        ("http_curl", "sh", script("http_curl.sh")),
    ] {
        run_scenario(Scenario { name, program, args, routes: route.clone(), env_vars: &["HTTP_PORT"], declared: &[], declared_skips: &[] });
    }
}

fn pg_route() -> Vec<String> {
    vec!["postgres:0=127.0.0.1:5432".into()]
}

const PG_ENV: &[&str] = &["PGPORT"];

/// node-postgres does not ask for TLS by default: it runs today.
#[test]
fn node_postgres_named_statements_errors_and_a_transaction() {
    run_scenario(Scenario {
        name: "pg_node",
        program: "node",
        args: script("pg_node.js"),
        routes: pg_route(),
        env_vars: PG_ENV,
        declared: &[],
        declared_skips: &[],
    });
}

fn asyncpg(routes: Vec<String>) -> Scenario<'static> {
    Scenario { name: "pg_asyncpg", program: "python3", args: script("pg_asyncpg.py"), routes, env_vars: PG_ENV, declared: &[], declared_skips: &[] }
}

fn psycopg(routes: Vec<String>) -> Scenario<'static> {
    Scenario { name: "pg_psycopg", program: "python3", args: script("pg_psycopg.py"), routes, env_vars: PG_ENV, declared: &[], declared_skips: &[] }
}

/// asyncpg and psycopg default to sslmode=prefer against the shared
/// server, which has `ssl = on`: the proxy declines TLS on postgres routes,
/// so they go on in plaintext and every statement is recorded. asyncpg's
/// binary COPY followed by a query and a LISTEN (issue 24), its cursors and
/// prepared statements; psycopg's pipelines, COPY, named cursors and NOTIFY.
#[test]
fn asyncpg_against_the_shared_server() {
    run_scenario(asyncpg(pg_route()));
}

#[test]
fn psycopg_against_the_shared_server() {
    run_scenario(psycopg(pg_route()));
}
