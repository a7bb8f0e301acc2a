//! Property tests: what the encoders write, the decoder reads back; any
//! valid conversation decodes the same however it is split.

mod common;
mod http_support;

use bytes::Bytes;
use common::{decode, split_at, Chunk};
use http_support::*;
use proptest::prelude::*;
use wire::http::{encode_request, encode_response, rewrite_host, HttpDecoder};
use wire::{Decoder, Direction, Event, Limits, MessageKind, Protocol};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}"
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![Just("GET".to_string()), Just("POST".to_string()), Just("PUT".to_string()), "[A-Z]{1,10}"]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[A-Za-z0-9/._~%?=&-]{0,40}",
        Just("*".to_string()),
        "http://[a-z]{1,10}(:[0-9]{2,5})?/[a-z0-9/]{0,10}"
    ]
}

/// Header fields the encoder passes through as is (framing fields are
/// tested separately).
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let field = (token(), "([!-~]([ !-~]{0,30}[!-~])?)?").prop_filter("framing fields", |(n, _)| {
        !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("transfer-encoding")
    });
    prop::collection::vec(field, 0..12)
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..3000))
}

fn feed_all(dir: Direction, parts: &[&[u8]]) -> Vec<Event> {
    let mut d = HttpDecoder::new(Limits::default());
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        d.feed(dir, p, i as u64, &mut out).expect("valid message");
    }
    d.eof(Direction::ToServer, 99, &mut out);
    d.eof(Direction::ToClient, 99, &mut out);
    out
}

fn as_pairs(h: &[(String, String)]) -> Vec<(Bytes, Bytes)> {
    h.iter().map(|(n, v)| (Bytes::from(n.clone()), Bytes::from(v.clone()))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn request_roundtrip(m in method(), t in target(), h in headers(), b in body(), chunked in any::<bool>(), cut in any::<prop::sample::Index>()) {
        let mut fields = h.clone();
        if chunked && b.is_some() {
            fields.push(("Transfer-Encoding".into(), "chunked".into()));
        }
        let raw = encode_request(&m, &t, &fields, b.as_deref());
        let at = cut.index(raw.len() + 1);
        let ev = feed_all(Direction::ToServer, &[&raw[..at], &raw[at..]]);
        let reqs = requests(&ev);
        prop_assert_eq!(reqs.len(), 1);
        let r = reqs[0];
        prop_assert!(r.complete);
        prop_assert_eq!(&r.method[..], m.as_bytes());
        prop_assert_eq!(r.target(), t.as_bytes());
        let mut expect = as_pairs(&fields);
        if let (Some(b), false) = (&b, chunked) {
            expect.push((Bytes::from_static(b"Content-Length"), Bytes::from(b.len().to_string())));
        }
        prop_assert_eq!(&r.headers, &expect);
        prop_assert_eq!(&r.body.prefix[..], b.as_deref().unwrap_or_default());
        prop_assert_eq!(r.chunked, chunked && b.is_some());
        let (msg, _) = http_messages(&ev)[0];
        prop_assert_eq!(&msg.raw.prefix[..], &raw[..]);
    }

    /// The at-rest head parser, `dechunk` and the request framer read what
    /// the decoder reads, whatever the split.
    #[test]
    fn at_rest_and_framer_agree_with_the_decoder(m in method(), t in target(), h in headers(), b in body(), chunked in any::<bool>(), cut in any::<prop::sample::Index>()) {
        let mut fields = h.clone();
        if chunked && b.is_some() {
            fields.push(("Transfer-Encoding".into(), "chunked".into()));
        }
        let raw = encode_request(&m, &t, &fields, b.as_deref());
        let ev = feed_all(Direction::ToServer, &[&raw]);
        let r = requests(&ev)[0];
        let head = wire::http::parse_request_head(&raw).unwrap();
        prop_assert_eq!(head.method(), Some(&r.method[..]));
        prop_assert_eq!(head.target(), Some(r.target()));
        prop_assert_eq!(head.headers().collect::<Vec<_>>(), r.headers.iter().collect::<Vec<_>>());
        let body = &raw[head.head_len()..];
        let content = if r.chunked { wire::http::dechunk(body) } else { body.to_vec() };
        prop_assert_eq!(&content[..], &r.body.prefix[..]);
        // The framer, fed in two pieces: one head, then body to the end.
        let at = cut.index(raw.len() + 1);
        let mut framer = wire::http::RequestFramer::new(usize::MAX);
        let (mut held, mut steps) = (Vec::new(), Vec::new());
        for piece in [&raw[..at], &raw[at..]] {
            held.extend_from_slice(piece);
            loop {
                let n = match framer.next(&held) {
                    wire::http::Framed::Head(h) => { steps.push(('H', h.head_len())); h.head_len() }
                    wire::http::Framed::Body(n) => { steps.push(('B', n)); n }
                    wire::http::Framed::NeedMore => break,
                    wire::http::Framed::Unframeable(why) => panic!("{why}"),
                };
                held.drain(..n);
            }
        }
        prop_assert!(held.is_empty() && framer.at_head());
        prop_assert_eq!(steps[0], ('H', head.head_len()));
        prop_assert_eq!(steps[1..].iter().map(|s| s.1).sum::<usize>(), body.len());
    }

    #[test]
    fn response_roundtrip(status in 200u16..600, reason in "[A-Za-z ]{0,20}", h in headers(), b in body(), chunked in any::<bool>()) {
        prop_assume!(status != 204 && status != 304);
        let mut fields = h.clone();
        if chunked {
            fields.push(("Transfer-Encoding".into(), "chunked".into()));
        }
        // Without a body the response would be delimited by the close: give it one.
        let b = b.unwrap_or_default();
        let raw = encode_response(status, &reason, &fields, Some(&b));
        let mut d = HttpDecoder::new(Limits::default());
        let mut out = Vec::new();
        d.feed(Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n", 1, &mut out).unwrap();
        d.feed(Direction::ToClient, &raw, 2, &mut out).unwrap();
        let resps = responses(&out);
        prop_assert_eq!(resps.len(), 1);
        prop_assert_eq!(resps[0].status, status);
        prop_assert_eq!(&resps[0].body.prefix[..], &b[..]);
        prop_assert_eq!(exchanges(&out).len(), 1);
    }

    #[test]
    fn rewrite_host_changes_only_the_host(m in method(), h in headers(), b in body(), host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?") {
        let mut fields = vec![("Host".to_string(), "old.example:80".to_string())];
        fields.extend(h.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("host")).cloned());
        let raw = encode_request(&m, "/p", &fields, b.as_deref());
        let out = rewrite_host(&raw, &host).expect("valid request");
        let ev = feed_all(Direction::ToServer, &[&out]);
        let r = requests(&ev)[0];
        prop_assert_eq!(r.header("host"), Some(host.as_bytes()));
        prop_assert_eq!(&r.headers.to_vec()[1..fields.len()], &as_pairs(&fields[1..])[..]);
        prop_assert_eq!(&r.body.prefix[..], b.as_deref().unwrap_or_default());
    }

    /// A random valid conversation decodes to the same events however it is
    /// split, with every byte accounted for.
    #[test]
    fn conversation_split_invariant(
        exchanges_spec in prop::collection::vec((method(), body(), any::<bool>(), 0u8..4, body()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut chunks = Vec::new();
        let mut ts = 0;
        for (m, req_body, chunked, kind, resp_body) in &exchanges_spec {
            ts += 10;
            let m = if m == "CONNECT" || m == "HEAD" { "GET" } else { m.as_str() };
            let mut f = vec![("Host".to_string(), "h".to_string())];
            if *chunked && req_body.is_some() {
                f.push(("Transfer-Encoding".into(), "chunked".into()));
            }
            chunks.push(Chunk { dir: Direction::ToServer, ts, data: encode_request(m, "/x", &f, req_body.as_deref()) });
            let resp = match kind {
                0 => encode_response(204, "No Content", &[] as &[(&str, &str)], None),
                1 => encode_response(200, "OK", &[("Transfer-Encoding", "chunked")], Some(resp_body.as_deref().unwrap_or_default())),
                2 => {
                    let mut r = encode_response(100, "Continue", &[] as &[(&str, &str)], None);
                    r.extend(encode_response(200, "OK", &[] as &[(&str, &str)], Some(resp_body.as_deref().unwrap_or_default())));
                    r
                }
                _ => encode_response(404, "Not Found", &[("Content-Type", "text/plain")], Some(resp_body.as_deref().unwrap_or_default())),
            };
            chunks.push(Chunk { dir: Direction::ToClient, ts: ts + 5, data: resp });
        }
        let limits = Limits { max_frame: 1 << 16, request_cap: 500, response_cap: 700 };
        let whole = decode(Protocol::Http, limits, &chunks);
        let total: usize = chunks.iter().map(|c| c.data.len()).sum();
        let split = decode(Protocol::Http, limits, &split_at(&chunks, cut.index(total)));
        prop_assert_eq!(&split, &whole);
        assert_accounts_for_every_byte(&whole, totals(&chunks));
        prop_assert_eq!(exchanges(&whole).len(), exchanges_spec.len());
        let no_switch = whole.iter().all(|e| !matches!(e, Event::Opaque { .. }));
        prop_assert!(no_switch, "unexpected fallback: {:?}", summary(&whole));
        let all_complete = whole.iter().all(|e| match e {
            Event::Message(m) => matches!(&m.kind, MessageKind::Http(h) if h.is_complete()),
            _ => true,
        });
        prop_assert!(all_complete, "cut short: {:?}", summary(&whole));
    }
}
