//! Redaction of every captured conversation (`wire/fixtures`) is exactly
//! what it was before the at-rest parsers moved into `wire` (issue 18):
//! `snapshots/redaction.txt` was written once by main's code (with
//! `UPDATE_SNAPSHOT=1`) and is compared byte for byte. Each fixture's
//! section lists its message count and every redacted message's bytes as
//! recorded; every other message must be recorded exactly as without
//! redaction. Beside the fixtures (whose only secrets are PostgreSQL
//! passwords and Redis `AUTH`/`HELLO`), a few made-up conversations put
//! secrets where the fixtures have none (HTTP header fields in odd forms,
//! inline Redis commands), and every conversation is also recorded with
//! caps small enough to cut messages inside their secrets.

use convert::event_to_records;
use format::{Body, Record};
use wire::testing::{decode, fixtures_in, load_fixture, Chunk};
use wire::{Direction, Limits, Protocol};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/redaction.txt");

/// Conversations with secrets the fixtures lack.
fn crafted() -> Vec<(&'static str, Protocol, Vec<Chunk>)> {
    let (c, s) = (Direction::ToServer, Direction::ToClient);
    let chunk = |dir, data: &[u8]| Chunk { dir, ts: 1, data: data.to_vec() };
    vec![
        (
            "crafted/http",
            Protocol::Http,
            vec![
                chunk(c, b"GET http://user:pw@example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                chunk(s, b"HTTP/1.1 200 OK\r\nSet-Cookie : a=b\r\nContent-Length: 0\r\n\r\n"),
                chunk(c, b"GET / HTTP/1.1\r\nauthorization: Basic eHl6\r\ncookie:a=b\r\nX-Cookie: kept\r\n\r\n"),
                chunk(s, b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b;\r\n  c=d\r\nX-Set-Cookie: kept\r\nContent-Length: 2\r\n\r\nok"),
                chunk(c, b"POST /u HTTP/1.1\r\nProxy-Authorization: Basic abcdefghijklmnopqrstuvwxyz\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nAuthorization: trailer\r\n\r\n"),
                chunk(s, b"HTTP/1.1 204 No Content\r\n\r\n"),
                chunk(c, b"\r\nGET /plain HTTP/1.1\nCookie: bare-lf\n\n"),
                chunk(s, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            ],
        ),
        (
            "crafted/redis",
            Protocol::Redis,
            vec![
                chunk(c, b"AUTH  \"my pass\" 'x'\r\n"),
                chunk(s, b"+OK\r\n"),
                chunk(c, b"AUTH \"oops pw\r\n"),
                chunk(s, b"-ERR Protocol error: unbalanced quotes in request\r\n"),
                chunk(c, b"*3\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n"),
                chunk(s, b"-ERR wrong number of arguments\r\n"),
                chunk(c, b"*4\r\n$7\r\nMIGRATE\r\n$1\r\nh\r\n$4\r\nAUTH\r\n$20\r\nabcdefghijklmnopqrst\r\n"),
                chunk(s, b"-ERR syntax\r\n"),
            ],
        ),
    ]
}

/// Small enough to cut messages inside their secrets.
fn small_caps() -> Limits {
    Limits { request_cap: 30, response_cap: 30, ..Limits::default() }
}

fn messages(protocol: Protocol, chunks: &[Chunk], limits: Limits, redact: bool) -> Vec<format::Message> {
    let mut out: Vec<Record> = Vec::new();
    for e in decode(protocol, limits, chunks) {
        event_to_records(1, e, redact, &mut out);
    }
    out.into_iter()
        .filter_map(|r| match r.body {
            Body::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn render() -> String {
    let mut conversations: Vec<(String, Protocol, Vec<Chunk>)> = Vec::new();
    for (dir, protocol) in [("http", Protocol::Http), ("pg", Protocol::Postgres), ("redis", Protocol::Redis)] {
        conversations.extend(fixtures_in(dir).into_iter().map(|rel| (rel.clone(), protocol, load_fixture(&rel))));
    }
    conversations.extend(crafted().into_iter().map(|(rel, p, chunks)| (rel.to_owned(), p, chunks)));
    let mut text = String::new();
    for (name, protocol, chunks) in &conversations {
        for (caps, limits) in [("", Limits::default()), (" (small caps)", small_caps())] {
            let rel = format!("{name}{caps}");
            let plain = messages(*protocol, chunks, limits, false);
            let redacted = messages(*protocol, chunks, limits, true);
            assert_eq!(plain.len(), redacted.len(), "{rel}");
            let n = redacted.iter().filter(|m| m.redacted).count();
            text.push_str(&format!("== {rel}: {} messages, {n} redacted\n", redacted.len()));
            for (i, (p, r)) in plain.iter().zip(&redacted).enumerate() {
                if r.redacted {
                    assert_eq!(p.data.bytes.0.len(), r.data.bytes.0.len(), "{rel} #{i}: same length");
                    text.push_str(&format!("#{i} {:?} {}\n", r.dir, format::bytes::escape(&r.data.bytes.0)));
                } else {
                    assert_eq!(p.data.bytes.0, r.data.bytes.0, "{rel} #{i}: not redacted, so unchanged");
                }
            }
        }
    }
    text
}

#[test]
fn redaction_of_every_fixture_is_unchanged() {
    let now = render();
    if std::env::var_os("UPDATE_SNAPSHOT").is_some() {
        std::fs::write(SNAPSHOT, &now).unwrap();
    }
    let before = std::fs::read_to_string(SNAPSHOT).expect("tests/snapshots/redaction.txt (UPDATE_SNAPSHOT=1 writes it)");
    assert!(before.matches(" redacted\n").count() >= 2 * (47 + 2), "every fixture is in the snapshot");
    assert!(before.lines().any(|l| l.starts_with('#')), "some fixture has secrets");
    for (a, b) in before.lines().zip(now.lines()) {
        assert_eq!(a, b);
    }
    assert_eq!(before, now);
}
