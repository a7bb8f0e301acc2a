//! Table tests of known byte strings: framing rules, pairing, fall-backs.
//! Every case is also checked for split invariance (every offset and byte
//! by byte) and for accounting of every byte.

mod common;
mod http_support;

use common::Chunk;
use http_support::*;
use wire::http::{HttpDecoder, HttpMessage};
use wire::{Decoder, Direction, Event, ExchangeStatus, Limits};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn conv(parts: &[(Direction, &[u8])]) -> Vec<Chunk> {
    parts
        .iter()
        .enumerate()
        .map(|(i, (dir, data))| Chunk { dir: *dir, ts: (i as u64 + 1) * 100, data: data.to_vec() })
        .collect()
}

/// Decodes with the default limits, checking split invariance and byte
/// accounting on the way.
fn run(parts: &[(Direction, &[u8])]) -> Vec<Event> {
    run_with(Limits::default(), parts)
}

fn run_with(limits: Limits, parts: &[(Direction, &[u8])]) -> Vec<Event> {
    let chunks = conv(parts);
    let events = assert_split_invariant_normalized(limits, &chunks, 1);
    assert_accounts_for_every_byte(&events, totals(&chunks));
    events
}

fn switch_reason(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::Opaque { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn leading_empty_lines_belong_to_the_request() {
    let ev =
        run(&[(C, b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")]);
    assert_eq!(summary(&ev), ["req GET / body=0", "resp 200 body=0", "exchange GET / Some(200) Complete"]);
    let (m, _) = http_messages(&ev)[0];
    assert_eq!((m.offset, m.raw.len), (0, 31));
}

#[test]
fn head_response_has_no_body_and_the_next_one_does() {
    let ev = run(&[
        (C, b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    ]);
    assert_eq!(
        summary(&ev),
        [
            "req HEAD /x body=0",
            "req GET /x body=0",
            "resp 200 body=0",
            "exchange HEAD /x Some(200) Complete",
            "resp 200 body=5",
            "exchange GET /x Some(200) Complete",
        ]
    );
}

#[test]
fn status_204_304_and_1xx_have_no_body() {
    let ev = run(&[
        (C, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"),
        (S, b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&ev),
        [
            "req GET /a body=0",
            "req GET /b body=0",
            "resp 304 body=0",
            "exchange GET /a Some(304) Complete",
            "resp 103 body=0",
            "resp 204 body=0",
            "exchange GET /b Some(204) Complete",
        ]
    );
    let (x, h) = exchanges(&ev)[1];
    // (Consecutive reads in one direction are coalesced, first timestamp kept.)
    assert_eq!((h.interim_responses, h.interim_first), (1, Some(200)));
    assert_eq!(x.timings.response_first, Some(200));
    assert_eq!(x.response_bytes, 44 + 46);
}

#[test]
fn close_delimited_bodies() {
    let ev = run(&[(C, b"GET / HTTP/1.0\r\n\r\n"), (S, b"HTTP/1.0 200 OK\r\n\r\npart one, "), (S, b"part two")]);
    assert_eq!(summary(&ev), ["req GET / body=0", "resp 200 body=18", "exchange GET / Some(200) Complete"]);
    let (x, h) = exchanges(&ev)[0];
    assert_eq!(x.timings.response_last, Some(200)); // reads coalesced
    assert!(h.connection_close);
    // Transfer-Encoding without chunked also reads until close.
    let ev = run(&[(C, b"GET / HTTP/1.1\r\n\r\n"), (S, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzzz")]);
    assert_eq!(responses(&ev)[0].body.len, 4);
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let ev = run(&[
        (C, b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;name=x\r\nabc\r\n"),
        (C, b"2\r\nde\r\n0\r\nX-Sum: 5\r\nX-More: yes\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ]);
    let req = requests(&ev)[0];
    assert!(req.chunked && req.complete);
    assert_eq!(&req.body.prefix[..], b"abcde");
    assert_eq!(req.trailers.len(), 2);
    assert_eq!(&req.trailers[1].1[..], b"yes");
    assert_eq!(responses(&ev)[0].body.len, 0);
    assert_eq!(exchanges(&ev)[0].1.request_content_length, 5);
}

#[test]
fn unanswered_requests_at_end_of_stream() {
    let ev = run(&[
        (C, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    let xs = exchanges(&ev);
    assert_eq!(xs.len(), 2);
    assert_eq!((xs[1].0.status, xs[1].1.status), (ExchangeStatus::Unanswered, None));
    assert_eq!(xs[1].0.timings.response_first, None);
}

#[test]
fn response_cut_short() {
    let ev = run(&[(C, b"GET / HTTP/1.1\r\n\r\n"), (S, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")]);
    assert_eq!(summary(&ev), ["req GET / body=0", "resp 200 body=3 partial", "exchange GET / Some(200) Unanswered"]);
    let (x, _) = exchanges(&ev)[0];
    assert_eq!((x.timings.response_first, x.timings.response_last), (Some(200), Some(200)));
    // A partial head is handed over as opaque bytes.
    let ev = run(&[(C, b"GET / HTTP/1.1\r\n\r\n"), (S, b"HTTP/1.1 200 OK\r\nContent-Le")]);
    assert_eq!(summary(&ev), ["req GET / body=0", "opaque ToClient 27", "exchange GET / None Unanswered"]);
}

#[test]
fn early_response_before_the_request_body() {
    let ev = run(&[
        (C, b"POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly a part"),
        (S, b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&ev),
        ["resp 413 body=0", "req POST /big body=11 partial", "exchange POST /big Some(413) Complete"]
    );
    let (_, h) = exchanges(&ev)[0];
    assert!(!h.request_complete && h.connection_close);
}

#[test]
fn declined_upgrade_and_refused_connect_keep_decoding() {
    let ev = run(&[
        (C, b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        summary(&ev),
        [
            "req GET / body=0",
            "resp 200 body=2",
            "exchange GET / Some(200) Complete",
            "req GET /next body=0",
            "resp 200 body=0",
            "exchange GET /next Some(200) Complete",
        ]
    );
    // The request after the Upgrade request is timed by its arrival.
    assert_eq!(http_messages(&ev)[2].0.first_ts, 100);

    let ev = run(&[
        (C, b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n"),
        (S, b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nauth"),
        (C, b"CONNECT db:5432 HTTP/1.1\r\nProxy-Authorization: x\r\n\r\n\x16\x03\x01"),
        (S, b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03"),
    ]);
    assert_eq!(switch_reason(&ev).as_deref(), Some("http: CONNECT tunnel to db:5432"));
    assert_eq!(exchanges(&ev).len(), 2);
    assert_eq!(opaque_bytes(&ev), [b"\x16\x03\x01".to_vec(), b"\x16\x03\x03".to_vec()]);
}

#[test]
fn upgrade_without_request_header_still_switches() {
    let ev = run(&[
        (C, b"GET / HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo/2\r\n\r\nbinary"),
    ]);
    assert_eq!(switch_reason(&ev).as_deref(), Some("http: upgraded to foo/2"));
    assert_eq!(opaque_bytes(&ev)[1], b"binary");
}

#[test]
fn fallbacks_name_the_problem() {
    type Case<'a> = (&'a [(Direction, &'a [u8])], &'a str);
    let cases: &[Case] = &[
        (&[(C, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")], "http: malformed request head: invalid token"),
        (&[(C, b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n")], "http: invalid or conflicting Content-Length"),
        (
            &[(C, b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")],
            "http: invalid or conflicting Content-Length",
        ),
        (
            &[(C, b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")],
            "http: request Transfer-Encoding does not end in chunked",
        ),
        (
            &[(C, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")],
            "http: invalid byte 0x7a in chunk-size line",
        ),
        (
            &[(C, b"GET / HTTP/1.1\r\n\r\n"), (S, b"SSH-2.0-OpenSSH_9.2\r\n")],
            "http: malformed response head: invalid HTTP version",
        ),
        (&[(C, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")], "http: malformed request head: invalid header name"),
    ];
    for (parts, reason) in cases {
        let ev = run(parts);
        assert_eq!(switch_reason(&ev).as_deref(), Some(*reason), "{parts:?}");
        // Every byte that was not in a message is replayed as opaque.
        let fed: Vec<u8> = parts.iter().filter(|(d, _)| *d == C).flat_map(|(_, b)| b.to_vec()).collect();
        let emitted: usize =
            http_messages(&ev).iter().filter(|(m, _)| m.dir == C).map(|(m, _)| m.raw.len as usize).sum();
        assert_eq!(opaque_bytes(&ev)[0], fed[emitted..].to_vec());
    }
}

#[test]
fn garbage_is_caught_before_a_head_terminator_arrives() {
    let mut d = HttpDecoder::new(Limits::default());
    let mut out = Vec::new();
    let err = d.feed(C, b"\x16\x03\x01\x02\x00", 1, &mut out).unwrap_err();
    assert_eq!(err.pending[0], &b"\x16\x03\x01\x02\x00"[..]);
    assert!(out.is_empty());
    // Fed again after the hand-over, it refuses and returns the bytes.
    let err = d.feed(S, b"abc", 2, &mut out).unwrap_err();
    assert_eq!(err.pending[1], &b"abc"[..]);
}

#[test]
fn oversized_heads_and_trailers_fall_back() {
    let limits = Limits { max_frame: 64, ..Limits::default() };
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
    let ev = run_with(limits, &[(C, long.as_bytes())]);
    assert_eq!(switch_reason(&ev).as_deref(), Some("http: request head exceeds max_frame (64 bytes)"));
    let trailer = format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: {}\r\n\r\n", "b".repeat(100));
    let ev = run_with(limits, &[(C, trailer.as_bytes())]);
    assert!(switch_reason(&ev).unwrap().contains("trailer section"), "{ev:?}");
}

#[test]
fn streaming_body_cut_by_a_bad_chunk_is_emitted_partial() {
    let limits = Limits { request_cap: 16, ..Limits::default() };
    let mut body = b"POST /s HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    body.extend_from_slice(b"20\r\n0123456789abcdef0123456789abcdef\r\nnot-hex\r\n");
    let ev = run_with(limits, &[(C, &body)]);
    assert_eq!(
        summary(&ev),
        [
            "req POST /s body=32 partial",
            "exchange POST /s None Unanswered",
            "opaque-switch ToServer: http: invalid byte 0x6e in chunk-size line",
            "opaque ToServer 9"
        ]
    );
    let req = requests(&ev)[0];
    assert_eq!(&req.body.prefix[..], b"0123456789abcdef");
    assert_eq!(req.body.hash, Some(xxhash_rust::xxh3::xxh3_64(b"0123456789abcdef0123456789abcdef")));
}

#[test]
fn big_bodies_stream_in_bounded_memory() {
    let limits = Limits { response_cap: 1000, ..Limits::default() };
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut chunks = conv(&[(C, b"GET /big HTTP/1.1\r\n\r\n")]);
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    let mut resp = head.clone().into_bytes();
    resp.extend_from_slice(&body);
    for (i, piece) in resp.chunks(1460).enumerate() {
        chunks.push(Chunk { dir: S, ts: 1000 + i as u64, data: piece.to_vec() });
    }
    let ev = common::decode(wire::Protocol::Http, limits, &chunks);
    assert_accounts_for_every_byte(&ev, totals(&chunks));
    let (m, h) = http_messages(&ev)[1];
    let HttpMessage::Response(r) = h else { panic!() };
    assert_eq!(r.body.len, 200_000);
    assert_eq!(&r.body.prefix[..], &body[..1000]);
    assert_eq!(r.body.hash, Some(xxhash_rust::xxh3::xxh3_64(&body)));
    assert_eq!(m.raw.len, (head.len() + body.len()) as u64);
    assert_eq!(m.raw.prefix.len(), 1000);
    assert_eq!((m.first_ts, m.last_ts), (1000, 1000 + (resp.len() as u64 - 1) / 1460));
    assert_eq!(r.header("content-length"), Some(&b"200000"[..]));
}

#[test]
fn absolute_form_targets() {
    let ev = run(&[
        (C, b"GET http://example.com:8080/p?q=1 HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    let req = requests(&ev)[0];
    assert_eq!(req.target_str(), "http://example.com:8080/p?q=1");
    let (host, path) = req.absolute_form().unwrap();
    assert_eq!((&host[..], &path[..]), (&b"example.com:8080"[..], &b"/p?q=1"[..]));
    assert_eq!(exchanges(&ev)[0].1.host(), Some(&b"example.com:8080"[..]));
}

#[test]
fn exchange_keeps_request_fields_and_content_types() {
    // Leading empty lines shift every position in the request; a common and
    // an uncommon response content type take different paths.
    let ev = run(&[
        (C, b"\r\nPOST /a?b=1 HTTP/1.1\r\nContent-Type: text/csv\r\nHOST: h:1\r\nContent-Length: 2\r\n\r\nxy"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
        (C, b"GET /c HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Type: application/x-thing\r\nContent-Length: 0\r\n\r\n"),
    ]);
    let x = exchanges(&ev);
    let (a, b) = (x[0].1, x[1].1);
    assert_eq!((a.target(), a.host(), a.request_content_type()), (&b"/a?b=1"[..], Some(&b"h:1"[..]), Some(&b"text/csv"[..])));
    assert_eq!(a.response_content_type.as_deref(), Some(&b"application/json"[..]));
    assert_eq!((b.target(), b.host(), b.request_content_type()), (&b"/c"[..], None, None));
    assert_eq!(b.response_content_type.as_deref(), Some(&b"application/x-thing"[..]));
    assert_eq!(requests(&ev)[0].target(), b"/a?b=1");
    assert_ne!(a, b);
}

#[test]
fn many_headers_and_duplicate_lengths() {
    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..150 {
        head.extend_from_slice(format!("X-H{i}: v{i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let ev = run(&[(C, &head), (S, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc")]);
    assert_eq!(requests(&ev)[0].headers.len(), 150);
    assert_eq!(requests(&ev)[0].headers.get(149).unwrap().1, b"v149");
    assert_eq!(responses(&ev)[0].body.len, 3);
}

#[test]
fn response_without_a_request() {
    let ev = run(&[(S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")]);
    assert_eq!(summary(&ev), ["resp 200 body=2"]);
}

#[test]
fn upgrade_request_bytes_wait_for_the_answer() {
    // The client sends websocket bytes right after its request; they are not
    // mistaken for a request, and go opaque once the 101 arrives.
    let ev = run(&[
        (C, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"),
        (S, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
    ]);
    assert_eq!(switch_reason(&ev).as_deref(), Some("http: upgraded to websocket"));
    assert_eq!(opaque_bytes(&ev)[0], b"\x81\x02hi");
    // Without an answer they end up opaque at end of stream.
    let ev = run(&[(C, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x02hi")]);
    assert_eq!(summary(&ev), ["req GET /ws body=0", "opaque ToServer 4", "exchange GET /ws None Unanswered"]);
}

#[test]
fn composite_conversation_every_split() {
    // Pipelining, 100-continue, chunked both ways with trailers, HEAD, 304,
    // close-delimited last response: every offset and byte by byte.
    let ev = run(&[
        (C, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
        (C, b"PUT /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
        (S, b"HTTP/1.1 100 Continue\r\n\r\n"),
        (C, b"body"),
        (S, b"HTTP/1.1 304 Not Modified\r\n\r\n"),
        (C, b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"),
        (S, b"HTTP/1.0 200 OK\r\n\r\nuntil close"),
    ]);
    assert_eq!(
        summary(&ev),
        [
            "req GET /a body=0",
            "req HEAD /b body=0",
            "resp 200 body=5",
            "exchange GET /a Some(200) Complete",
            "resp 200 body=0",
            "exchange HEAD /b Some(200) Complete",
            "resp 100 body=0",
            "req PUT /c body=4",
            "resp 304 body=0",
            "exchange PUT /c Some(304) Complete",
            "req POST /d body=1",
            "resp 200 body=11",
            "exchange POST /d Some(200) Complete",
        ]
    );
}
