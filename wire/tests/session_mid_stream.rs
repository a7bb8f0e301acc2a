//! `Session::mid_stream` (joining a connection already under way) and the
//! public split-invariance helper `wire::testing`.

use wire::pg::PgMessage;
use wire::testing::{assert_split_invariant, normalize, Chunk};
use wire::{Direction, Event, ExchangeDetail, Limits, MessageKind, Protocol, Session};

fn pg_conversation() -> Vec<Chunk> {
    // A simple query and its answer, as captured after the startup.
    let mut q = b"Q\0\0\0\x0dselect 1\0".to_vec();
    q.extend_from_slice(b"X\0\0\0\x04");
    let mut r = Vec::new();
    r.extend_from_slice(b"T\0\0\0\x21\0\x01?column?\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0");
    r.extend_from_slice(b"D\0\0\0\x0b\0\x01\0\0\0\x011");
    r.extend_from_slice(b"C\0\0\0\x0dSELECT 1\0");
    r.extend_from_slice(b"Z\0\0\0\x05I");
    vec![
        Chunk { dir: Direction::ToServer, ts: 10, data: q[..14].to_vec() },
        Chunk { dir: Direction::ToClient, ts: 20, data: r },
        Chunk { dir: Direction::ToServer, ts: 30, data: q[14..].to_vec() },
    ]
}

#[test]
fn pg_mid_stream_decodes_tagged_client_messages_and_shifts_offsets() {
    let mut s = Session::mid_stream(Protocol::Postgres, Limits::default(), [1000, 5000]);
    let mut out = Vec::new();
    for c in pg_conversation() {
        s.feed(c.dir, &c.data, c.ts, &mut out);
    }
    s.eof(Direction::ToServer, 40, &mut out);
    s.eof(Direction::ToClient, 40, &mut out);
    assert!(!s.is_opaque(), "{out:#?}");
    let Event::Message(first) = &out[0] else { panic!("{out:#?}") };
    assert_eq!(first.offset, 1000);
    assert!(matches!(&first.kind, MessageKind::Pg(PgMessage::Query { sql }) if &sql[..] == b"select 1\0" || &sql[..] == b"select 1"));
    let server: Vec<u64> = out
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if m.dir == Direction::ToClient => Some(m.offset),
            _ => None,
        })
        .collect();
    assert_eq!(server.first(), Some(&5000));
    let x = out.iter().find_map(|e| match e {
        Event::Exchange(x) => match &x.detail {
            ExchangeDetail::Pg(p) => Some(p.clone()),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(x.expect("a query exchange").rows_returned(), 1);
}

#[test]
fn pg_new_session_treats_the_same_bytes_as_a_bad_startup_packet() {
    // Without mid_stream, the first client bytes are read as a startup
    // packet: a capture joined late would fall back to opaque.
    let mut s = Session::new(Protocol::Postgres, Limits::default());
    let mut out = Vec::new();
    for c in pg_conversation() {
        s.feed(c.dir, &c.data, c.ts, &mut out);
    }
    assert!(s.is_opaque());
}

#[test]
fn split_invariance_helper_compares_events_and_opaque_bytes() {
    let http = vec![
        Chunk { dir: Direction::ToServer, ts: 1, data: b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n".to_vec() },
        Chunk { dir: Direction::ToClient, ts: 2, data: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec() },
        // Then something that is not HTTP: the session goes opaque.
        Chunk { dir: Direction::ToServer, ts: 3, data: b"\x16\x03\x01 not http at all \r\n\r\n".to_vec() },
        Chunk { dir: Direction::ToClient, ts: 4, data: b"bytes back".to_vec() },
    ];
    let events = assert_split_invariant(Protocol::Http, Limits::default(), &http, 1);
    let n = normalize(events);
    assert_eq!(n.after[Direction::ToServer.index()], b"\x16\x03\x01 not http at all \r\n\r\n");
    assert_eq!(n.after[Direction::ToClient.index()], b"bytes back");
    assert!(n.before.iter().any(|e| matches!(e, Event::Exchange(_))));
}
