//! Property tests: every frontend message the encoders write decodes back to
//! what was encoded, alone or in any sequence, fed whole or split.
mod common;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use wire::pg::encode as e;
use wire::pg::*;
use wire::{Decoder, Direction, Event, Limits, MessageKind};

#[derive(Clone, Debug)]
enum Fm {
    Query(Vec<u8>),
    Parse(Vec<u8>, Vec<u8>, Vec<u32>),
    Bind(Vec<u8>, Vec<u8>, Vec<i16>, Vec<Option<Vec<u8>>>, Vec<i16>),
    Describe(bool, Vec<u8>),
    Execute(Vec<u8>, u32),
    Close(bool, Vec<u8>),
    Sync,
    Flush,
    CopyData(Vec<u8>),
    CopyDone,
    CopyFail(Vec<u8>),
}

fn text() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes but NUL (wire strings are NUL-terminated).
    prop::collection::vec(1u8..=255, 0..24)
}

fn fm() -> impl Strategy<Value = Fm> {
    prop_oneof![
        text().prop_map(Fm::Query),
        (text(), text(), prop::collection::vec(any::<u32>(), 0..5)).prop_map(|(a, b, c)| Fm::Parse(a, b, c)),
        (
            text(),
            text(),
            prop::collection::vec(0i16..2, 0..4),
            prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..12)), 0..5),
            prop::collection::vec(0i16..2, 0..4)
        )
            .prop_map(|(a, b, c, d, f)| Fm::Bind(a, b, c, d, f)),
        (any::<bool>(), text()).prop_map(|(a, b)| Fm::Describe(a, b)),
        (text(), any::<u32>()).prop_map(|(a, b)| Fm::Execute(a, b)),
        (any::<bool>(), text()).prop_map(|(a, b)| Fm::Close(a, b)),
        Just(Fm::Sync),
        Just(Fm::Flush),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Fm::CopyData),
        Just(Fm::CopyDone),
        text().prop_map(Fm::CopyFail),
    ]
}

fn target(s: bool) -> Target {
    if s {
        Target::Statement
    } else {
        Target::Portal
    }
}

fn encode(m: &Fm, b: &mut BytesMut) {
    match m {
        Fm::Query(q) => e::query(b, q),
        Fm::Parse(n, q, t) => e::parse(b, n, q, t),
        Fm::Bind(p, s, pf, v, rf) => {
            let v: Vec<Option<&[u8]>> = v.iter().map(|x| x.as_deref()).collect();
            e::bind(b, p, s, pf, &v, rf)
        }
        Fm::Describe(t, n) => e::describe(b, target(*t), n),
        Fm::Execute(p, n) => e::execute(b, p, *n),
        Fm::Close(t, n) => e::close(b, target(*t), n),
        Fm::Sync => e::sync(b),
        Fm::Flush => e::flush(b),
        Fm::CopyData(d) => e::copy_data(b, d),
        Fm::CopyDone => e::copy_done(b),
        Fm::CopyFail(m) => e::copy_fail(b, m),
    }
}

fn by(v: &[u8]) -> Bytes {
    Bytes::copy_from_slice(v)
}

/// What the decoder must report for `ms`: one message each, except that
/// consecutive CopyData coalesce into one run.
fn expected(ms: &[Fm]) -> Vec<PgMessage> {
    let mut out: Vec<PgMessage> = Vec::new();
    for m in ms {
        let p = match m {
            Fm::Query(q) => PgMessage::Query { sql: by(q) },
            Fm::Parse(n, q, t) => PgMessage::Parse { name: by(n), sql: by(q), param_types: t.clone() },
            Fm::Bind(p, s, pf, v, rf) => PgMessage::Bind(Box::new(Bind {
                portal: by(p),
                statement: by(s),
                param_formats: pf.clone(),
                params: v.iter().map(|x| x.as_deref().map(by)).collect(),
                result_formats: rf.clone(),
            })),
            Fm::Describe(t, n) => PgMessage::Describe { target: target(*t), name: by(n) },
            Fm::Execute(p, n) => PgMessage::Execute { portal: by(p), max_rows: *n },
            Fm::Close(t, n) => PgMessage::Close { target: target(*t), name: by(n) },
            Fm::Sync => PgMessage::Sync,
            Fm::Flush => PgMessage::Flush,
            Fm::CopyData(d) => {
                let len = d.len() as u64 + 5;
                if let Some(PgMessage::CopyData { count, len: l }) = out.last_mut() {
                    *count += 1;
                    *l += len;
                    continue;
                }
                PgMessage::CopyData { count: 1, len }
            }
            Fm::CopyDone => PgMessage::CopyDone,
            Fm::CopyFail(m) => PgMessage::CopyFail { message: by(m) },
        };
        out.push(p);
    }
    out
}

fn decode_client(stream: &[u8], split: usize, mid_stream: bool) -> Vec<PgMessage> {
    let mut d = if mid_stream { PgDecoder::new_mid_stream(Limits::default()) } else { PgDecoder::new(Limits::default()) };
    let mut out = Vec::new();
    let split = split.min(stream.len());
    d.feed(Direction::ToServer, &stream[..split], 1, &mut out).unwrap();
    d.feed(Direction::ToServer, &stream[split..], 1, &mut out).unwrap();
    d.eof(Direction::ToServer, 2, &mut out);
    d.eof(Direction::ToClient, 2, &mut out);
    let mut total = 0;
    let ms = out
        .into_iter()
        .filter_map(|ev| match ev {
            Event::Message(m) => {
                total += m.raw.len;
                match m.kind {
                    MessageKind::Pg(p) => Some(p),
                    k => panic!("undecoded {k:?}"),
                }
            }
            _ => None,
        })
        .collect();
    assert_eq!(total, stream.len() as u64);
    ms
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn frontend_messages_round_trip(ms in prop::collection::vec(fm(), 1..12), split in any::<prop::sample::Index>()) {
        let mut b = BytesMut::new();
        for m in &ms {
            encode(m, &mut b);
        }
        let got = decode_client(&b, split.index(b.len() + 1), true);
        prop_assert_eq!(got, expected(&ms));
    }

    #[test]
    fn startup_and_ssl_request_round_trip(
        params in prop::collection::vec(("[a-z_]{1,12}", "[ -~]{0,16}"), 0..5),
        ssl in any::<bool>(),
        split in any::<prop::sample::Index>(),
    ) {
        let mut b = BytesMut::new();
        if ssl {
            e::ssl_request(&mut b);
        }
        let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        e::startup(&mut b, &p);
        e::terminate(&mut b);
        let got = decode_client(&b, split.index(b.len() + 1), false);
        let mut want = Vec::new();
        if ssl {
            want.push(PgMessage::SslRequest);
        }
        // Without the server's answer the decoder cannot know the SSL request
        // was refused, but the client's stream is still framed correctly.
        want.push(PgMessage::Startup(Startup {
            protocol: 196_608,
            params: params.iter().map(|(k, v)| (by(k.as_bytes()), by(v.as_bytes()))).collect(),
        }));
        want.push(PgMessage::Terminate);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn auth_responses_round_trip(pw in text(), data in prop::collection::vec(any::<u8>(), 0..40), none in any::<bool>()) {
        // The meaning of 'p' depends on the server's request before it.
        let conv = |req: &[u8], resp: &dyn Fn(&mut BytesMut)| -> PgMessage {
            let mut d = PgDecoder::new(Limits::default());
            let mut out = Vec::new();
            let mut b = BytesMut::new();
            e::startup(&mut b, &[("user", "u")]);
            d.feed(Direction::ToServer, &b, 0, &mut out).unwrap();
            d.feed(Direction::ToClient, req, 0, &mut out).unwrap();
            let mut b = BytesMut::new();
            resp(&mut b);
            d.feed(Direction::ToServer, &b, 0, &mut out).unwrap();
            match out.into_iter().last() {
                Some(Event::Message(m)) => match m.kind { MessageKind::Pg(p) => p, k => panic!("{k:?}") },
                other => panic!("{other:?}"),
            }
        };
        let got = conv(b"R\0\0\0\x08\0\0\0\x03", &|b| e::password(b, &pw));
        prop_assert_eq!(got, PgMessage::Password { password: by(&pw) });
        let init = if none { None } else { Some(&data[..]) };
        let got = conv(b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0", &|b| e::sasl_initial_response(b, "SCRAM-SHA-256", init));
        prop_assert_eq!(got, PgMessage::SaslInitialResponse { mechanism: by(b"SCRAM-SHA-256"), data: init.map(by) });
        let got = conv(b"R\0\0\0\x0a\0\0\0\x0bxy", &|b| e::sasl_response(b, &data));
        prop_assert!(got.is_secret());
        prop_assert_eq!(got, PgMessage::SaslResponse { data: by(&data) });
    }
}

#[test]
fn cancel_and_gssenc_round_trip() {
    let mut b = BytesMut::new();
    e::cancel_request(&mut b, 1234, 0xdead_beef);
    assert_eq!(decode_client(&b, 3, false), [PgMessage::CancelRequest { pid: 1234, secret_key: 0xdead_beef }]);
    let mut b = BytesMut::new();
    e::gssenc_request(&mut b);
    assert_eq!(decode_client(&b, 5, false), [PgMessage::GssEncRequest]);
}
