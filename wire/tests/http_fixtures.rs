//! The HTTP decoder on conversations captured from real clients (curl,
//! python sockets) talking to `fixtures/http/server.py` (see
//! `fixtures/http/README.md` for how each was captured).

mod common;
mod http_support;

use common::*;
use http_support::*;
use wire::http::HttpVersion;
use wire::{Direction, Event, ExchangeStatus, Limits, Protocol};

/// Every fixture: same events whole, split at every offset (with a stride
/// for the big download) and byte by byte; every byte accounted for.
#[test]
fn split_invariant_and_accounting() {
    for f in fixtures_in("http") {
        let chunks = load(&f);
        let total: u64 = totals(&chunks).iter().sum();
        let stride = if total > 100_000 { 4999 } else { 1 };
        for limits in [Limits::default(), Limits { max_frame: 64 << 10, request_cap: 100, response_cap: 1000 }] {
            // Connections that switch to opaque mode are compared with the
            // opaque tail normalised (see `normalize`).
            let events = if f.contains("connect") || f.contains("upgrade") {
                assert_split_invariant_normalized(limits, &chunks, stride)
            } else {
                assert_split_invariant(Protocol::Http, limits, &chunks, stride)
            };
            assert_accounts_for_every_byte(&events, totals(&chunks));
            // Feeding the capture as it was read (different timestamps)
            // decodes the same messages and exchanges.
            let as_read = normalize(decode(Protocol::Http, limits, &chunks));
            let norm = normalize(events);
            assert_eq!(summary(&as_read.before), summary(&norm.before), "{f}");
            assert_eq!(as_read.after, norm.after, "{f}");
        }
    }
}

/// `curl http://a http://b http://c`: three exchanges on one connection.
#[test]
fn curl_keepalive() {
    let chunks = load("http/curl-keepalive.fx");
    let ev = decode(Protocol::Http, Limits::default(), &chunks);
    assert_eq!(
        summary(&ev),
        [
            "req GET /a body=0",
            "resp 200 body=14",
            "exchange GET /a Some(200) Complete",
            "req GET /b body=0",
            "resp 200 body=14",
            "exchange GET /b Some(200) Complete",
            "req GET /hello?x=1 body=0",
            "resp 200 body=18",
            "exchange GET /hello?x=1 Some(200) Complete",
        ]
    );
    let reqs = requests(&ev);
    assert_eq!(reqs[0].version, HttpVersion::Http11);
    assert_eq!(reqs[0].headers.len(), 3);
    assert_eq!(reqs[0].headers.get(1).unwrap().0, b"User-Agent");
    assert_eq!(reqs[0].headers.get(1).unwrap().1, b"curl/7.88.1");
    assert_eq!(reqs[2].header("HOST"), Some(&b"127.0.0.1:18081"[..]));
    let resps = responses(&ev);
    assert_eq!(&resps[1].body.prefix[..], b"hello from /b\n");
    assert_eq!(resps[1].reason_str(), "OK");

    // The second response's head and body came in two reads, 41 ms apart.
    let msgs = http_messages(&ev);
    let (m, _) = msgs[3];
    assert_eq!((m.dir, m.first_ts, m.last_ts, m.offset), (Direction::ToClient, 1_540_520, 42_846_474, 143));
    assert_eq!(m.raw.len, 143);
    assert_eq!(&m.raw.prefix[..15], b"HTTP/1.1 200 OK");

    let xs = exchanges(&ev);
    let (x, h) = xs[1];
    assert_eq!(x.timings.request_first, 1_317_942);
    assert_eq!(x.timings.request_last, 1_317_942);
    assert_eq!(x.timings.response_first, Some(1_540_520));
    assert_eq!(x.timings.response_last, Some(42_846_474));
    assert_eq!((x.request_bytes, x.response_bytes), (80, 143));
    assert_eq!(h.host(), Some(&b"127.0.0.1:18081"[..]));
    assert_eq!(h.response_content_type.as_deref(), Some(&b"text/plain"[..]));
    assert_eq!((h.request_content_length, h.response_content_length), (0, Some(14)));
    assert!(h.request_complete && !h.connection_close && h.switched_to.is_none());
}

/// `curl -H 'Transfer-Encoding: chunked' --data-binary @file`.
#[test]
fn curl_chunked_upload() {
    let upload: String = (0..100).map(|i| format!("line {i:04} of the chunked upload\n")).collect();
    let ev = decode(Protocol::Http, Limits::default(), &load("http/curl-chunked-upload.fx"));
    let req = requests(&ev)[0];
    assert!(req.chunked && req.complete);
    assert_eq!(&req.body.prefix[..], upload.as_bytes());
    assert_eq!(req.body.hash, None);
    assert!(req.trailers.is_empty());
    let resp = responses(&ev)[0];
    assert!(!resp.chunked);
    assert_eq!(&resp.body.prefix[..], upload.as_bytes());
    let (x, h) = exchanges(&ev)[0];
    assert_eq!(h.request_content_length, 3200);
    assert_eq!(h.request_content_type(), Some(&b"text/plain"[..]));
    assert_eq!(x.request_bytes, 3350); // head, one 3200-byte chunk, last chunk
    assert_eq!(x.status, ExchangeStatus::Complete);

    // With a 100-byte request cap the body streams: prefix + hash of the whole.
    let small = Limits { request_cap: 100, ..Limits::default() };
    let ev2 = decode(Protocol::Http, small, &load("http/curl-chunked-upload.fx"));
    let req2 = requests(&ev2)[0];
    assert_eq!(req2.body.len, 3200);
    assert_eq!(&req2.body.prefix[..], &upload.as_bytes()[..100]);
    assert_eq!(req2.body.hash, Some(xxhash_rust::xxh3::xxh3_64(upload.as_bytes())));
    assert_eq!(req2.headers, req.headers);
}

/// `curl -H 'Expect: 100-continue' --data-binary @file` (1920 bytes): the
/// interim 100 comes before the request body and does not end the exchange.
#[test]
fn curl_expect_100_continue() {
    let body: String = (0..64).map(|i| format!("expect-continue body line {i:03}\n")).collect();
    let ev = decode(Protocol::Http, Limits::default(), &load("http/curl-expect-100.fx"));
    assert_eq!(
        summary(&ev),
        ["resp 100 body=0", "req POST /echo body=1920", "resp 200 body=1920", "exchange POST /echo Some(200) Complete"]
    );
    let msgs = http_messages(&ev);
    let (m, interim) = msgs[0];
    assert!(interim.response().unwrap().is_interim());
    assert_eq!((m.first_ts, m.raw.len), (692_008, 25));
    let req = requests(&ev)[0];
    assert_eq!(req.header("expect"), Some(&b"100-continue"[..]));
    assert_eq!(&req.body.prefix[..], body.as_bytes());
    let (x, h) = exchanges(&ev)[0];
    assert_eq!((x.timings.request_first, x.timings.request_last), (62_567, 824_677));
    assert_eq!((x.timings.response_first, x.timings.response_last), (Some(1_006_618), Some(44_145_110)));
    assert_eq!((h.interim_responses, h.interim_first), (1, Some(692_008)));
    assert_eq!(x.response_bytes, 25 + 131 + 1920);
    assert_eq!(x.request_bytes, 154 + 1920);
}

/// A 300 000-byte download read in 64 KiB pieces: the body is capped at
/// `response_cap` and hashed.
#[test]
fn curl_big_download() {
    let pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n";
    let full: Vec<u8> = pattern.iter().cycle().take(300_000).copied().collect();
    let chunks = load("http/curl-big.fx");
    let ev = decode(Protocol::Http, Limits::default(), &chunks);
    let resp = responses(&ev)[0];
    assert_eq!(resp.body.len, 300_000);
    assert_eq!(resp.body.prefix.len(), 64 << 10);
    assert_eq!(&resp.body.prefix[..], &full[..64 << 10]);
    assert_eq!(resp.body.hash, Some(xxhash_rust::xxh3::xxh3_64(&full)));
    let msgs = http_messages(&ev);
    let (m, _) = msgs[1];
    let head_len = 300_329 - 91 - 13 * 7 - 300_000;
    assert_eq!(m.raw.len, 300_000 + head_len as u64);
    assert_eq!(m.raw.prefix.len(), 64 << 10);
    assert_eq!(m.last_ts, chunks.last().unwrap().ts);
    // A cap big enough for all of it keeps it whole.
    let big = Limits { response_cap: 1 << 20, ..Limits::default() };
    let ev = decode(Protocol::Http, big, &chunks);
    assert_eq!(&responses(&ev)[0].body.prefix[..], &full[..]);
    assert_eq!(responses(&ev)[0].body.hash, None);
}

/// `curl -I`: the response to HEAD has Content-Length but no body.
#[test]
fn curl_head() {
    let ev = decode(Protocol::Http, Limits::default(), &load("http/curl-head.fx"));
    assert_eq!(summary(&ev), ["req HEAD /hello body=0", "resp 200 body=0", "exchange HEAD /hello Some(200) Complete"]);
    assert_eq!(responses(&ev)[0].header("content-length"), Some(&b"18"[..]));
    assert_eq!(exchanges(&ev)[0].1.response_content_length, Some(0));
}

/// 204 and 304: no body, and the connection goes on.
#[test]
fn curl_204_304() {
    let ev = decode(Protocol::Http, Limits::default(), &load("http/curl-204-304.fx"));
    let st: Vec<_> = exchanges(&ev).iter().map(|(x, h)| (h.status, x.status)).collect();
    assert_eq!(st, [(Some(204), ExchangeStatus::Complete), (Some(304), ExchangeStatus::Complete)]);
    assert_eq!(responses(&ev)[1].header("etag"), Some(&b"\"v1\""[..]));
}

/// A chunked response with a trailer, in two reads.
#[test]
fn curl_chunked_response() {
    let ev = decode(Protocol::Http, Limits::default(), &load("http/curl-chunked-response.fx"));
    let resp = responses(&ev)[0];
    assert!(resp.chunked);
    assert_eq!(&resp.body.prefix[..], b"first chunk\nsecond, a bit longer chunk\nthird\n");
    assert_eq!(resp.trailers.len(), 1);
    assert_eq!((&resp.trailers[0].0[..], &resp.trailers[0].1[..]), (&b"X-Checksum"[..], &b"42"[..]));
    let (m, _) = http_messages(&ev)[1];
    assert_eq!((m.first_ts, m.last_ts, m.raw.len), (804_910, 881_343, 158 + 61 + 21));
}

/// A body delimited by the connection close completes at end of stream.
#[test]
fn curl_close_delimited() {
    let ev = decode(Protocol::Http, Limits::default(), &load("http/curl-close.fx"));
    let resp = responses(&ev)[0];
    assert!(resp.complete);
    assert_eq!(&resp.body.prefix[..], "body delimited by close\n".repeat(3).as_bytes());
    let (x, h) = exchanges(&ev)[0];
    assert_eq!(x.status, ExchangeStatus::Complete);
    assert!(h.connection_close);
}

/// `curl -p -x proxy http://host/`: CONNECT, then the tunnel is opaque.
#[test]
fn curl_connect_tunnel() {
    let ev = decode(Protocol::Http, Limits::default(), &load("http/curl-connect.fx"));
    let (_, h) = exchanges(&ev)[0];
    assert_eq!(&h.method[..], b"CONNECT");
    assert_eq!(h.switched_to.as_deref(), Some(&b"127.0.0.1:18080"[..]));
    assert_eq!(h.host(), Some(&b"127.0.0.1:18080"[..]));
    let switch = ev.iter().find_map(|e| match e {
        Event::Opaque { reason, dir, offset, .. } => Some((reason.clone(), *dir, *offset)),
        _ => None,
    });
    assert_eq!(switch, Some(("http: CONNECT tunnel to 127.0.0.1:18080".to_string(), Direction::ToClient, 103)));
    let [c, s] = opaque_bytes(&ev);
    assert!(c.starts_with(b"GET /hello HTTP/1.1\r\n"));
    assert!(s.starts_with(b"HTTP/1.1 200 OK\r\n") && s.ends_with(b"hello from /hello\n"));
}

/// Three requests in one write; responses pair in order.
#[test]
fn python_pipelined() {
    let ev = decode(Protocol::Http, Limits::default(), &load("http/python-pipelined.fx"));
    assert_eq!(
        summary(&ev),
        [
            "req GET /a body=0",
            "req POST /echo body=5",
            "req GET /b body=0",
            "resp 200 body=14",
            "exchange GET /a Some(200) Complete",
            "resp 200 body=5",
            "exchange POST /echo Some(200) Complete",
            "resp 200 body=14",
            "exchange GET /b Some(200) Complete",
        ]
    );
    let xs = exchanges(&ev);
    assert!(xs.iter().all(|(x, _)| x.timings.request_first == 66_765));
    assert_eq!(xs[1].0.timings.response_first, Some(752_281));
    assert!(xs[2].1.connection_close && !xs[0].1.connection_close);
    let msgs = http_messages(&ev);
    assert_eq!(msgs.iter().take(3).map(|(m, _)| m.offset).collect::<Vec<_>>(), [0, 42, 112]);
}

/// A websocket upgrade: 101, then the frames go opaque.
#[test]
fn python_upgrade() {
    let ev = decode(Protocol::Http, Limits::default(), &load("http/python-upgrade.fx"));
    assert_eq!(exchanges(&ev)[0].1.switched_to.as_deref(), Some(&b"websocket"[..]));
    assert!(summary(&ev).contains(&"opaque-switch ToClient: http: upgraded to websocket".to_string()));
    assert_eq!(opaque_bytes(&ev), [b"\x81\x05hello".to_vec(), b"\x81\x05hello".to_vec()]);
}

/// A head larger than max_frame falls back with a reason naming the limit,
/// and no byte is lost.
#[test]
fn head_over_max_frame() {
    let chunks = load("http/curl-keepalive.fx");
    let limits = Limits { max_frame: 50, ..Limits::default() };
    let ev = decode(Protocol::Http, limits, &chunks);
    let reason = ev.iter().find_map(|e| match e {
        Event::Opaque { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("http: request head exceeds max_frame (50 bytes)"));
    assert_accounts_for_every_byte(&ev, totals(&chunks));
}
