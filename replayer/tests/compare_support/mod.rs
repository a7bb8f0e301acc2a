//! Sides built from real captured conversations (`wire/fixtures`, format in
//! `wire/fixtures/capture.py`) through `wire::Session` and
//! `convert::event_to_records`, the way the recorder and the replayer build
//! them; and helpers to alter the server's bytes before decoding, so the
//! "replayed" side is a real decode of a changed response.

#![allow(dead_code)]

use format::{Body, Direction as FDir, ExchangeSummary};
use replayer::model::{Replayed, Side};
use wire::{Direction, Limits, Protocol, Session};

pub type Chunks = Vec<(Direction, u64, Vec<u8>)>;

/// The chunks of a fixture (`wire/fixtures/<rel>`), through wire's own
/// fixture loader, as (direction, time, bytes).
pub fn load(rel: &str) -> Chunks {
    wire::testing::load_fixture(rel).into_iter().map(|c| (c.dir, c.ts, c.data)).collect()
}

pub fn protocol_of(rel: &str) -> Protocol {
    match rel.split('/').next() {
        Some("http") => Protocol::Http,
        Some("pg") => Protocol::Postgres,
        Some("redis") => Protocol::Redis,
        _ => panic!("{rel}"),
    }
}

/// One side per exchange, in order: the exchange record's status, summary
/// and latency, and the server's messages since the previous exchange.
pub fn sides(protocol: Protocol, chunks: &Chunks) -> Vec<Side> {
    let mut s = Session::new(protocol, Limits::default());
    let mut events = Vec::new();
    let mut last = 0;
    for (dir, ts, data) in chunks {
        s.feed(*dir, data, *ts, &mut events);
        last = *ts;
    }
    s.eof(Direction::ToServer, last + 1, &mut events);
    s.eof(Direction::ToClient, last + 1, &mut events);
    let mut out = Vec::new();
    let mut pending = Vec::new();
    let mut records = Vec::new();
    for e in events {
        convert::event_to_records(1, e, false, &mut records);
    }
    for r in records {
        match r.body {
            Body::Message(m) if m.dir == FDir::ToClient => pending.push(m),
            Body::Exchange(x) => out.push(Side {
                latency: x.response_last.map(|l| l.saturating_sub(r.ts)),
                status: x.status,
                summary: x.summary,
                responses: std::mem::take(&mut pending),
            }),
            _ => {}
        }
    }
    out
}

pub fn fixture_sides(rel: &str) -> Vec<Side> {
    sides(protocol_of(rel), &load(rel))
}

/// Replaces the first occurrence of `from` in a server chunk by `to`.
pub fn replace_first(chunks: &mut Chunks, from: &[u8], to: &[u8]) {
    for (dir, _, data) in chunks.iter_mut() {
        if *dir != Direction::ToClient {
            continue;
        }
        if let Some(at) = find(data, from) {
            data.splice(at..at + from.len(), to.iter().copied());
            return;
        }
    }
    panic!("{:?} not found in a server chunk", String::from_utf8_lossy(from));
}

/// Replaces the last occurrence of `from` in the server chunks by `to`.
pub fn replace_last(chunks: &mut Chunks, from: &[u8], to: &[u8]) {
    for (dir, _, data) in chunks.iter_mut().rev() {
        if *dir != Direction::ToClient {
            continue;
        }
        if let Some(at) = data.windows(from.len()).rposition(|w| w == from) {
            data.splice(at..at + from.len(), to.iter().copied());
            return;
        }
    }
    panic!("{:?} not found in a server chunk", String::from_utf8_lossy(from));
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The index of the first exchange whose first statement (PostgreSQL),
/// command (Redis) or target (HTTP) is `what`.
pub fn index_of(sides: &[Side], what: &str) -> usize {
    sides
        .iter()
        .position(|s| match &s.summary {
            ExchangeSummary::Pg(p) => p.statements.first().is_some_and(|q| q == what),
            ExchangeSummary::Redis(r) => {
                let mut full = r.command.clone();
                for a in &r.args {
                    full.push(' ');
                    full.push_str(&a.to_text());
                }
                full == what
            }
            ExchangeSummary::Http(h) => format!("{} {}", h.method, h.target) == what,
        })
        .unwrap_or_else(|| panic!("no exchange {what:?}"))
}

/// A replayed exchange from two sides.
pub fn replayed(protocol: format::Protocol, key: &str, recorded: Side, replayed: Result<Side, String>) -> Replayed {
    Replayed {
        src: 0,
        conn: 1,
        route: "test".into(),
        protocol,
        lambda: Some("fn".into()),
        key: key.into(),
        recorded,
        replayed,
        scheduled: 0,
        sent: 0,
    }
}

/// A one-exchange HTTP conversation: `GET target`, answered by `response`
/// (the whole response, head and body, sent in two reads).
pub fn http_side(target: &str, response: &[u8]) -> Side {
    let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
    let split = response.len() / 2;
    let chunks = vec![
        (Direction::ToServer, 1, req),
        (Direction::ToClient, 1_000, response[..split].to_vec()),
        (Direction::ToClient, 2_000, response[split..].to_vec()),
    ];
    let mut v = sides(Protocol::Http, &chunks);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

/// An HTTP/1.1 response with a `Content-Length` body.
pub fn http_response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.into_bytes()
}
