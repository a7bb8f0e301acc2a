//! The at-rest parsers read every message of every captured conversation
//! (`wire/fixtures`) exactly as the stream decoders read it in flight
//! (issue 18): the same Redis values and argument spans, the same
//! PostgreSQL messages and DataRow counts, the same HTTP heads and
//! de-chunked bodies.

mod common;

use bytes::Bytes;
use common::*;
use wire::http::{dechunk, parse_request_head, parse_response_head, HttpMessage};
use wire::pg::{data_rows, parse_backend, parse_frontend, parse_startup, PgMessage};
use wire::redis::{command_raw_spans, parse_reply, RedisMessage};
use wire::{Direction, Event, Limits, MessageKind, Protocol};

fn messages(dir: &str, protocol: Protocol) -> Vec<(String, wire::Message)> {
    let mut out = Vec::new();
    for rel in fixtures_in(dir) {
        for e in decode(protocol, Limits::default(), &load(&rel)) {
            if let Event::Message(m) = e {
                out.push((rel.clone(), m));
            }
        }
    }
    out
}

fn whole(m: &wire::Message) -> bool {
    m.raw.prefix.len() as u64 == m.raw.len
}

#[test]
fn redis_replies_and_commands() {
    let (mut replies, mut commands) = (0, 0);
    for (rel, m) in messages("redis", Protocol::Redis) {
        let raw = &m.raw.prefix;
        match &m.kind {
            MessageKind::Redis(RedisMessage::Reply(f) | RedisMessage::Push(f)) if whole(&m) => {
                assert_eq!(parse_reply(raw), Ok((f.value.clone(), raw.len())), "{rel} at {}", m.offset);
                replies += 1;
            }
            MessageKind::Redis(RedisMessage::Command(c)) if whole(&m) && !c.inline => {
                let spans: Vec<&[u8]> = command_raw_spans(raw).into_iter().map(|(s, e)| &raw[s..e]).collect();
                let args: Vec<&[u8]> = c.args.iter().collect();
                assert_eq!(spans, args, "{rel} at {}", m.offset);
                commands += 1;
            }
            _ => {}
        }
    }
    assert!(replies > 500 && commands > 500, "{replies} replies, {commands} commands");
}

#[test]
fn pg_messages() {
    let (mut backend, mut frontend, mut rows) = (0, 0, 0);
    for (rel, m) in messages("pg", Protocol::Postgres) {
        let raw: &Bytes = &m.raw.prefix;
        let MessageKind::Pg(pg) = &m.kind else { continue };
        let at = format!("{rel} at {} {:?}", m.offset, m.dir);
        match (m.dir, pg) {
            (_, PgMessage::SslResponse { .. } | PgMessage::GssEncResponse { .. } | PgMessage::CopyData { .. }) => {}
            (Direction::ToClient, PgMessage::DataRows { count, .. }) if whole(&m) => {
                assert_eq!(data_rows(raw).filter(|r| r.values().is_ok()).count() as u64, *count, "{at}");
                rows += count;
            }
            (Direction::ToClient, PgMessage::DataRows { .. }) => {}
            (Direction::ToClient, _) => {
                assert_eq!(parse_backend(raw), Ok((pg.clone(), raw.len())), "{at}");
                backend += 1;
            }
            (_, PgMessage::Startup(_) | PgMessage::SslRequest | PgMessage::CancelRequest { .. } | PgMessage::GssEncRequest) => {
                assert_eq!(parse_startup(raw), Ok((pg.clone(), raw.len())), "{at}");
                frontend += 1;
            }
            // `p` messages read by the authentication exchange in flight.
            (_, PgMessage::Password { .. } | PgMessage::SaslInitialResponse { .. } | PgMessage::SaslResponse { .. } | PgMessage::GssResponse { .. }) => {}
            (_, _) => {
                assert_eq!(parse_frontend(raw), Ok((pg.clone(), raw.len())), "{at}");
                frontend += 1;
            }
        }
    }
    assert!(backend > 1000 && frontend > 1000 && rows > 100, "{backend} backend, {frontend} frontend, {rows} rows");
}

#[test]
fn http_heads_and_bodies() {
    let (mut heads, mut chunked) = (0, 0);
    for (rel, m) in messages("http", Protocol::Http) {
        let raw = &m.raw.prefix[..];
        let at = format!("{rel} at {} {:?}", m.offset, m.dir);
        let MessageKind::Http(h) = &m.kind else { continue };
        let (head, body, is_chunked) = match h {
            HttpMessage::Request(r) => {
                let head = parse_request_head(raw).unwrap_or_else(|e| panic!("{at}: {e}"));
                assert_eq!(head.method(), Some(&r.method[..]), "{at}");
                (head, &r.body, r.chunked)
            }
            HttpMessage::Response(r) => {
                let head = parse_response_head(raw).unwrap_or_else(|e| panic!("{at}: {e}"));
                assert_eq!(head.status(), Some(r.status), "{at}");
                (head, &r.body, r.chunked)
            }
        };
        assert_eq!(head.chunked(), is_chunked, "{at}");
        heads += 1;
        if is_chunked && whole(&m) && body.prefix.len() as u64 == body.len {
            assert_eq!(dechunk(&raw[head.head_len()..]), body.prefix, "{at}");
            chunked += 1;
        }
    }
    assert!(heads > 30 && chunked >= 2, "{heads} heads, {chunked} chunked bodies");
}
