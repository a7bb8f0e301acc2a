//! Secrets never reach a trace (issue 25): one canary secret sent by real
//! clients through `oltrace proxy` in every way the redaction rules cover
//! (psql: CREATE/ALTER ROLE ... PASSWORD, pgcrypto's crypt and
//! pgp_sym_encrypt; curl: query parameters, form and JSON bodies, a chunked
//! JSON body, credential headers, a JSON response and Set-Cookie;
//! redis-cli: CONFIG SET requirepass|masterauth, AUTH, ACL SETUSER >pw).
//! The servers did get it (the role's SCRAM verifier and the crypt hash
//! check out against it, the private Redis takes it as its password, the
//! HTTP upstream counts it in what it received), and no byte of the trace,
//! of its decoded records, nor of `oltrace cat`'s output holds it.
//!
//! Then the same traffic recorded with `--no-redact` (the canary is in
//! that trace, on purpose: scripts/test.sh lists this test as allowed to),
//! and `oltrace redact` blanks every canary while keeping every record.
//!
//! Needs PostgreSQL (with pgcrypto) on 127.0.0.1:5432, redis-server,
//! redis-cli, psql, curl and python3 (`.ci/run` provides them).

mod common;
#[path = "common/scram.rs"]
mod scram;

use common::{run, Proxy, CANARY};
use scram::scram_matches;
use format::{Body, ExchangeSummary, Record};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A process of this test's own, killed when dropped.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private redis-server (the test sets its password: the shared one
/// must stay open) and its port.
fn private_redis() -> (Owned, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let server = Owned(
        Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (is it installed? .ci/run installs it)"),
    );
    for _ in 0..100 {
        if Command::new("redis-cli").args(["-p", &port, "ping"]).output().is_ok_and(|o| o.stdout.starts_with(b"PONG")) {
            return (server, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the private redis-server did not answer on {port}");
}

/// An HTTP upstream (Python's http.server) that answers every request with
/// how many times it saw the canary in it (line, headers, de-chunked body),
/// a JSON field and a cookie holding the canary.
const ECHO: &str = r#"
import sys, json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
canary = sys.argv[1].encode()
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            out = b''
            while True:
                size = int(self.rfile.readline().split(b';')[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get('Content-Length') or 0))
    def answer(self):
        got = (self.requestline + '\r\n' + str(self.headers)).encode() + self.body()
        resp = json.dumps({'seen': got.count(canary), 'token': canary.decode()}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Set-Cookie', 'session=' + canary.decode())
        self.send_header('Content-Length', str(len(resp)))
        self.end_headers()
        self.wfile.write(resp)
    do_GET = do_POST = answer
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

fn echo_upstream() -> (Owned, String) {
    let mut child = Command::new("python3").args(["-c", ECHO, CANARY]).stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Owned(child), format!("127.0.0.1:{}", line.trim()))
}

fn psql_direct(sql: &str) -> String {
    run(Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-XtAq", "-v", "ON_ERROR_STOP=1", "-c", sql])).trim().to_string()
}

/// Sends the canary every way, through `proxy` (routes: postgres, redis
/// to `redis_port`, http to the echo upstream), and checks the servers got
/// it. The role it creates is dropped again.
fn scenarios(proxy: &Proxy, redis_port: &str, tag: &str) {
    let c = CANARY;
    // --- PostgreSQL ---
    // Concurrent CREATE EXTENSION IF NOT EXISTS can still fail on the
    // catalog's unique index (other tests and test runs share the server):
    // a transaction-level advisory lock makes them take turns.
    psql_direct("select pg_advisory_xact_lock(7406); create extension if not exists pgcrypto");
    let role = format!("oltrace_canary_{tag}_{}", std::process::id());
    psql_direct(&format!("drop role if exists {role}"));
    let pg = proxy.port(0);
    let out = run(Command::new("psql").args(["-h", "127.0.0.1", "-p", &pg, "-U", "postgres", "-d", "postgres", "-XtAq", "-v", "ON_ERROR_STOP=1"]).args([
        "-c",
        &format!("create role {role} login password '{c}'"),
        "-c",
        &format!("alter role {role} with encrypted password '{c}'"),
        "-c",
        &format!("select pgp_sym_decrypt(pgp_sym_encrypt('hello', '{c}'), '{c}')"),
        "-c",
        &format!("select crypt('{c}', gen_salt('bf', 4))"),
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"hello"), "{out}");
    let hash = lines.get(1).expect("crypt's hash");
    assert_eq!(psql_direct(&format!("select crypt('{c}', '{hash}') = '{hash}'")), "t", "the server hashed the canary itself");
    let verifier = psql_direct(&format!("select rolpassword from pg_authid where rolname = '{role}'"));
    assert!(scram_matches(&verifier, c), "the role's password is the canary: {verifier}");
    psql_direct(&format!("drop role {role}"));

    // --- Redis (a private server: its password is set here) ---
    let rp = proxy.port(1);
    let cli = |args: &[&str]| run(Command::new("redis-cli").args(["-p", &rp, "--no-auth-warning"]).args(args)).trim().to_string();
    assert_eq!(cli(&["CONFIG", "SET", "requirepass", c]), "OK");
    assert_eq!(cli(&["-a", c, "CONFIG", "SET", "masterauth", c]), "OK");
    assert_eq!(cli(&["-a", c, "ACL", "SETUSER", "canaryuser", "on", &format!(">{c}"), "~*", "+@all"]), "OK");
    let direct = |args: &[&str]| run(Command::new("redis-cli").args(["-p", redis_port, "--no-auth-warning"]).args(args)).trim().to_string();
    assert_eq!(direct(&["--user", "canaryuser", "--pass", c, "PING"]), "PONG", "the ACL user's password is the canary");
    assert!(direct(&["-a", c, "CONFIG", "GET", "masterauth"]).contains(c));

    // --- HTTP ---
    let base = format!("http://127.0.0.1:{}", proxy.port(2));
    let curl = |args: &[&str], sent: u64| {
        let out = run(Command::new("curl").args(["-sS", "-i", "--noproxy", "*"]).args(args));
        assert!(out.contains(&format!("\"seen\": {sent}")), "the upstream saw the canary {sent} times: {out}");
        assert!(out.contains(&format!("\"token\": \"{c}\"")) && out.contains(&format!("session={c}")), "the client got the canary back: {out}");
    };
    curl(&[&format!("{base}/run/x?password={c}&token={c}&page=2")], 2);
    curl(&[&format!("{base}/s3/o?X-Amz-Signature={c}&X-Amz-Credential={c}")], 2);
    curl(&["-d", &format!("user=ann&password={c}&remember=1"), &format!("{base}/login")], 1);
    curl(&["-H", "Content-Type: application/json", "-d", &format!(r#"{{"user":"ann","credentials":{{"api_key":"{c}"}},"list":[{{"secret":"{c}"}}]}}"#), &format!("{base}/json")], 2);
    curl(
        &["-H", "Content-Type: application/json", "-H", "Transfer-Encoding: chunked", "-d", &format!(r#"{{"password":"{c}"}}"#), &format!("{base}/chunked")],
        1,
    );
    curl(
        &[
            "-H",
            &format!("Authorization: Bearer {c}"),
            "-H",
            &format!("X-Api-Key: {c}"),
            "-H",
            &format!("X-Auth-Token: {c}"),
            "-H",
            &format!("Cookie: s={c}"),
            &format!("{base}/headers"),
        ],
        4,
    );
}

fn routes(redis_port: &str, http: &str) -> Vec<String> {
    vec!["postgres:0=127.0.0.1:5432".into(), format!("redis:0=127.0.0.1:{redis_port}"), format!("http:0={http}")]
}

/// `bytes` hold the canary.
fn holds(bytes: &[u8]) -> bool {
    bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes())
}

/// `oltrace cat TRACE`'s output.
fn cat(trace: &Path) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("cat").arg(trace))
}

/// Where the canary is in `records`: which records (kind and debug text)
/// hold it, in their bytes or their decoded fields.
fn canaries(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| {
            let bytes = match &r.body {
                Body::Message(m) => holds(&m.data.bytes.0),
                _ => false,
            };
            bytes || format!("{r:?}").contains(CANARY)
        })
        .map(|r| format!("{r:?}"))
        .collect()
}

/// The export formats whose output of `trace` holds the canary. Parquet is
/// compressed, so DuckDB reads its tables back as text first.
fn exports_holding_canary(trace: &Path, dir: &Path) -> Vec<&'static str> {
    let mut found = Vec::new();
    for format in ["jsonl", "perfetto", "otlp", "har", "pcap", "parquet"] {
        let out = dir.join(format!("export.{format}"));
        let o = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["export", "--format", format]).arg(trace).arg("-o").arg(&out).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "export {format}: {}", String::from_utf8_lossy(&o.stderr));
        let text = if format == "parquet" {
            let script = "import duckdb, glob, sys\nfor f in sorted(glob.glob(sys.argv[1] + '/*.parquet')):\n    print(duckdb.sql(f\"select * from '{f}'\").fetchall())";
            run(Command::new("python3").args(["-c", script]).arg(&out)).into_bytes()
        } else {
            std::fs::read(&out).unwrap()
        };
        if holds(&text) {
            found.push(format);
        }
    }
    found
}

#[test]
fn the_canary_reaches_the_servers_but_not_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, redis_port) = private_redis();
    let (_echo, http) = echo_upstream();
    let trace = dir.path().join("canary.mp");
    let proxy = Proxy::start(&trace, &routes(&redis_port, &http), &[]);
    scenarios(&proxy, &redis_port, "on");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(canaries(&records), Vec::<String>::new(), "no record holds the canary");
    assert!(!holds(&std::fs::read(&trace).unwrap()));
    let text = cat(&trace);
    assert!(!text.contains(CANARY), "oltrace cat shows no canary");
    // Exports are made from the redacted records: none carries it (OTLP's
    // url.query and db.query.text, HAR, Parquet, pcap).
    assert_eq!(exports_holding_canary(&trace, dir.path()), Vec::<&str>::new(), "exports hold no canary");

    // What was blanked is still there, star for star, where it was.
    let stars = "*".repeat(CANARY.len());
    let statements: Vec<&String> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Exchange(x) => match &x.summary {
                ExchangeSummary::Pg(p) => Some(&p.statements),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .collect();
    assert!(statements.iter().any(|s| s.ends_with(&format!("login password '{stars}'"))), "{statements:?}");
    assert!(statements.iter().any(|s| s.contains(&format!("crypt('{stars}', gen_salt('**', 4))"))), "{statements:?}");
    assert!(text.contains(&format!("/run/x?password={stars}&token={stars}&page=2")), "the query's other parameters stay");
    assert!(text.contains(&format!("\"CONFIG\",\"SET\",\"requirepass\",\"{stars}\"")) || text.contains(&format!("requirepass\",\"{stars}")), "redis arguments blanked in place");
    let redacted = records.iter().filter(|r| matches!(&r.body, Body::Message(m) if m.redacted)).count();
    assert!(redacted >= 12, "messages marked redacted: {redacted}");

    let header = format::Reader::open(&trace).unwrap().header().clone();
    let rules = header.redaction.expect("the header records the rules");
    assert_eq!((rules.enabled, rules.rules_version, rules.by.as_slice()), (true, convert::redact::RULES_VERSION, &["oltrace proxy".to_string()][..]));
    assert!(rules.fields.iter().any(|f| f == "password") && rules.headers.iter().any(|h| h == "x-api-key"));
    let info = run(Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("info").arg(&trace));
    assert!(info.contains(&format!("redaction:   rules v{} by oltrace proxy; fields password,", convert::redact::RULES_VERSION)), "{info}");
}

#[test]
fn oltrace_redact_blanks_a_no_redact_trace_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, redis_port) = private_redis();
    let (_echo, http) = echo_upstream();
    let raw = dir.path().join("raw.mp");
    let proxy = Proxy::start(&raw, &routes(&redis_port, &http), &["--no-redact"]);
    scenarios(&proxy, &redis_port, "off");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let before = canaries(&records).len();
    // Statements, targets, bodies, headers, arguments, replies.
    assert!(before >= 20, "the unredacted trace holds the canary in {before} records");
    assert!(cat(&raw).contains(CANARY));
    // The export check can fail: every format of the raw trace shows it.
    assert_eq!(exports_holding_canary(&raw, dir.path()), ["jsonl", "perfetto", "otlp", "har", "pcap", "parquet"]);

    let shared = dir.path().join("shared.mp");
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["redact", "--json"]).arg(&raw).arg("-o").arg(&shared).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let counts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let after = common::read_trace(&shared);
    common::keep_for_scan(&shared, false);
    assert_eq!(counts["records"], records.len() as u64, "{counts}");
    assert_eq!(after.len(), records.len(), "every record kept");
    assert_eq!(counts["unparsed"], 0, "{counts}");
    assert!(counts["blanked"].as_u64().unwrap() >= before as u64 - 2, "{counts}");
    // Only the Redis replies to CONFIG GET-like commands could hold it, and
    // none here echo it: nothing is left.
    assert_eq!(canaries(&after), Vec::<String>::new());
    assert!(!cat(&shared).contains(CANARY));
    assert!(stderr.contains(&format!("{} records into", records.len())), "{stderr}");
    // Same shapes: the kinds of the records, in order.
    let kinds = |rs: &[Record]| rs.iter().map(|r| r.body.kind()).collect::<Vec<_>>();
    assert_eq!(kinds(&after), kinds(&records));
    let rules = format::Reader::open(&shared).unwrap().header().redaction.clone().unwrap();
    assert!(rules.enabled && rules.by.len() == 2 && rules.by[1].starts_with("oltrace redact"), "{rules:?}");
    let info = run(Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("info").arg(&raw));
    assert!(info.contains("redaction:   off (--no-redact, by oltrace proxy)"), "{info}");

    // Its own output is refused as input, with a clear message and exit 2.
    let same = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["redact"]).arg(&shared).arg("-o").arg(&shared).output().unwrap();
    assert_eq!(same.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&same.stderr).contains("is the input trace"));
}

/// `oltrace redact FLAGS... -o OUTPUT INPUT`: exit code, stdout, stderr.
fn redact(flags: &[&str], input: &Path, output: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("redact").args(flags).arg("-o").arg(output).arg(input).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// One curl request through an http route of `proxy` carrying `secret` in
/// a field `session_id` and a header `X-Tenant-Key`, the canary in a
/// default-secret field `token`, and an ordinary `key` parameter
/// `KeepMe42`. The upstream saw the canary.
fn named_secrets_request(proxy: &Proxy, secret: &str) {
    let c = CANARY;
    let url = format!("http://127.0.0.1:{}/run/x?session_id={secret}&key=KeepMe42&token={c}&page=2", proxy.port(0));
    let out = run(Command::new("curl").args(["-sS", "--noproxy", "*", "-H", &format!("X-Tenant-Key: {secret}"), &url]));
    let seen = if secret == c { 3 } else { 1 };
    assert!(out.contains(&format!("\"seen\": {seen}")), "the upstream saw the canary {seen} times: {out}");
}

/// The request of [`named_secrets_request`] (with the canary) as `cat`
/// shows it: the target and the header, blanked (stars) where the names
/// say.
fn check_named_blanked(trace: &Path) {
    let stars = "*".repeat(CANARY.len());
    let text = cat(trace);
    assert!(!text.contains(CANARY), "{text}");
    assert!(text.contains(&format!("/run/x?session_id={stars}&key=KeepMe42&token={stars}&page=2")), "session_id and token blanked, key kept: {text}");
    assert!(text.contains(&format!("X-Tenant-Key: {stars}")), "the header blanked: {text}");
}

#[test]
fn proxy_flags_name_fields_and_headers_to_blank_and_to_keep() {
    let dir = tempfile::tempdir().unwrap();
    let (_echo, http) = echo_upstream();
    let trace = dir.path().join("named.mp");
    let flags = ["--redact-field", "session_id", "--redact-header", "X-Tenant-Key", "--keep-field", "key"];
    let proxy = Proxy::start(&trace, &[format!("http:0={http}")], &flags);
    named_secrets_request(&proxy, CANARY);
    let (code, summary, _) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    check_named_blanked(&trace);
    let rules = format::Reader::open(&trace).unwrap().header().redaction.clone().unwrap();
    assert!(rules.fields.contains(&"session_id".to_string()) && !rules.fields.contains(&"key".to_string()), "{rules:?}");
    assert!(rules.headers.contains(&"x-tenant-key".to_string()) && rules.kept == ["key"], "{rules:?}");

    // Without the flags, only the default `token` and `key` are blanked
    // (another value than the canary: this trace holds it, on purpose).
    let plain = dir.path().join("plain.mp");
    let proxy = Proxy::start(&plain, &[format!("http:0={http}")], &[]);
    named_secrets_request(&proxy, "NotSecretByDefault");
    assert_eq!(proxy.stop().0, 0);
    let text = cat(&plain);
    assert!(text.contains("session_id=NotSecretByDefault&key=********&token=") && text.contains("X-Tenant-Key: NotSecretByDefault"), "the test can fail: {text}");
}

#[test]
fn oltrace_redact_takes_field_header_and_keep_field() {
    let dir = tempfile::tempdir().unwrap();
    let (_echo, http) = echo_upstream();
    let raw = dir.path().join("raw_named.mp");
    let proxy = Proxy::start(&raw, &[format!("http:0={http}")], &["--no-redact"]);
    named_secrets_request(&proxy, CANARY);
    assert_eq!(proxy.stop().0, 0);
    assert!(cat(&raw).contains(CANARY));
    let shared = dir.path().join("shared_named.mp");
    let (code, _, stderr) = redact(&["--field", "session_id", "--header", "X-Tenant-Key", "--keep-field", "key"], &raw, &shared);
    assert_eq!(code, 0, "{stderr}");
    common::keep_for_scan(&shared, false);
    check_named_blanked(&shared);
    let rules = format::Reader::open(&shared).unwrap().header().redaction.clone().unwrap();
    assert!(rules.fields.contains(&"session_id".to_string()) && rules.kept == ["key"] && rules.headers.contains(&"x-tenant-key".to_string()), "{rules:?}");
    // A bad name: exit 2, the flag named as given here.
    let (code, _, stderr) = redact(&["--field", "a b"], &raw, &shared);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--field \"a b\""), "{stderr}");
}

/// A message whose bytes no longer parse as what it says it is (here: an
/// HTTP request that is not one) is blanked whole by `oltrace redact`,
/// and counted as such on stderr and in --json; the other records are
/// redacted as usual and all are kept.
#[test]
fn oltrace_redact_blanks_a_message_it_cannot_parse_whole_and_counts_it() {
    use format::{BStr, ConnOpen, Decoded, Direction, Message, Payload, Protocol};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("odd.mp");
    let mut w = format::Writer::create(&input, &format::Header::new("test", "test"), format::WriterOptions::default()).unwrap();
    let open = ConnOpen { conn: 1, protocol: Protocol::Http, client: "127.0.0.1:40000".into(), server: "127.0.0.1:8080".into(), route: "http:8080".into(), tls: None };
    w.write(&Record { ts: 1, src: 0, body: Body::ConnOpen(open) }).unwrap();
    let message = |ts: u64, raw: String, target: &str| {
        let raw = raw.into_bytes();
        let request = format::HttpRequest { method: "GET".into(), target: target.into(), ..Default::default() };
        let body = Body::Message(Message {
            conn: 1,
            dir: Direction::ToServer,
            last_ts: ts,
            offset: 0,
            data: Payload { len: raw.len() as u64, bytes: BStr(raw), hash: None },
            decoded: Some(Decoded::HttpRequest(request)),
            redacted: false,
        });
        Record { ts, src: 0, body }
    };
    // Not a request line (bytes damaged, or a recorder's bug): the canary
    // in it cannot be found by parsing.
    let bad = format!("\u{16}\u{3}\u{1} GARBLED {CANARY} no request line\r\n\r\n");
    w.write(&message(2, bad.clone(), "/")).unwrap();
    let good = format!("GET /a?password={CANARY} HTTP/1.1\r\nHost: x\r\n\r\n");
    w.write(&message(3, good, &format!("/a?password={CANARY}"))).unwrap();
    w.finish().unwrap();
    common::keep_for_scan(&input, true);

    let output = dir.path().join("odd_redacted.mp");
    let (code, stdout, stderr) = redact(&["--json"], &input, &output);
    assert_eq!(code, 0, "{stderr}");
    common::keep_for_scan(&output, false);
    let counts: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((counts["records"].as_u64(), counts["unparsed"].as_u64(), counts["blanked"].as_u64()), (Some(3), Some(1), Some(2)), "{counts}");
    assert!(stderr.contains("3 records into") && stderr.contains("1 messages that no longer parse blanked whole"), "{stderr}");
    let after = common::read_trace(&output);
    assert_eq!(canaries(&after), Vec::<String>::new());
    let Body::Message(m) = &after[1].body else { panic!("{:?}", after[1]) };
    assert!(m.redacted && m.data.bytes.0.len() == bad.len() && m.data.bytes.0.iter().all(|&b| b == b'*'), "blanked whole, its length kept: {m:?}");
}
