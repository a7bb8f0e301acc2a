//! Helpers shared by the HTTP tests (`mod http_support;`).
#![allow(dead_code)]

use wire::http::{HttpExchange, HttpMessage, HttpRequest, HttpResponse};
use wire::{Direction, Event, Exchange, ExchangeDetail, Message, MessageKind};

/// The HTTP messages among `events`, in order.
pub fn http_messages(events: &[Event]) -> Vec<(&Message, &HttpMessage)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => match &m.kind {
                MessageKind::Http(h) => Some((m, h)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub fn requests(events: &[Event]) -> Vec<&HttpRequest> {
    http_messages(events).into_iter().filter_map(|(_, h)| h.request()).collect()
}

pub fn responses(events: &[Event]) -> Vec<&HttpResponse> {
    http_messages(events).into_iter().filter_map(|(_, h)| h.response()).collect()
}

pub fn exchanges(events: &[Event]) -> Vec<(&Exchange, &HttpExchange)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Exchange(x) => match &x.detail {
                ExchangeDetail::Http(h) => Some((&**x, h)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[allow(unused_imports)] // each test file uses a different part
pub use wire::testing::{normalize, opaque_bytes};

/// A compact one-line-per-event rendering, for readable assertions.
pub fn summary(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Message(m) => match &m.kind {
                MessageKind::Http(HttpMessage::Request(r)) => {
                    format!(
                        "req {} {} body={}{}",
                        r.method_str(),
                        r.target_str(),
                        r.body.len,
                        if r.complete { "" } else { " partial" }
                    )
                }
                MessageKind::Http(HttpMessage::Response(r)) => {
                    format!("resp {} body={}{}", r.status, r.body.len, if r.complete { "" } else { " partial" })
                }
                MessageKind::Opaque => format!("opaque {:?} {}", m.dir, m.raw.len),
                other => format!("{other:?}"),
            },
            Event::Exchange(x) => match &x.detail {
                ExchangeDetail::Http(h) => {
                    format!(
                        "exchange {} {} {:?} {:?}",
                        String::from_utf8_lossy(&h.method),
                        String::from_utf8_lossy(h.target()),
                        h.status,
                        x.status
                    )
                }
                other => format!("{other:?}"),
            },
            Event::Opaque { reason, dir, .. } => format!("opaque-switch {dir:?}: {reason}"),
            Event::RedisRun(r) => format!("{r:?}"),
        })
        .collect()
}

/// Every byte fed is inside exactly one message, in stream order: message
/// offsets per direction are contiguous from 0 and end at `totals`.
pub fn assert_accounts_for_every_byte(events: &[Event], totals: [u64; 2]) {
    let mut next = [0u64; 2];
    for e in events {
        if let Event::Message(m) = e {
            let i = m.dir.index();
            assert_eq!(
                m.offset, next[i],
                "message at {:?} offset {} does not follow the previous one",
                m.dir, m.offset
            );
            next[i] += m.raw.len;
            assert!(m.first_ts <= m.last_ts);
        }
    }
    assert_eq!(next, totals, "bytes accounted per direction");
}

pub fn totals(chunks: &[crate::common::Chunk]) -> [u64; 2] {
    let mut t = [0u64; 2];
    for c in chunks {
        t[c.dir.index()] += c.data.len() as u64;
    }
    t
}

pub fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "C",
        Direction::ToClient => "S",
    }
}

/// `wire::testing::assert_split_invariant` for HTTP conversations (it
/// compares normalized events, so those that switch to opaque mode too).
pub fn assert_split_invariant_normalized(limits: wire::Limits, chunks: &[crate::common::Chunk], stride: usize) -> Vec<Event> {
    wire::testing::assert_split_invariant(wire::Protocol::Http, limits, chunks, stride)
}
