//! Property tests: encode -> decode identity for commands (RESP arrays and
//! inline lines) and for arbitrary RESP3 values, whole and split.

mod common;

use bytes::Bytes;
use proptest::prelude::*;
use wire::redis::*;
use wire::{Decoder, Direction, Event, Limits, MessageKind, Protocol};

fn line_text() -> impl Strategy<Value = Bytes> {
    // Simple strings and errors cannot hold CR or LF.
    proptest::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |c| *c != b'\r' && *c != b'\n'),
        0..24,
    )
    .prop_map(Bytes::from)
}

fn blob() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn leaf() -> impl Strategy<Value = RespValue> {
    prop_oneof![
        line_text().prop_map(RespValue::Simple),
        line_text().prop_map(RespValue::Error),
        any::<i64>().prop_map(RespValue::Integer),
        blob().prop_map(RespValue::Bulk),
        Just(RespValue::NullBulk),
        Just(RespValue::NullArray),
        Just(RespValue::Null),
        any::<bool>().prop_map(RespValue::Boolean),
        prop_oneof![
            any::<f64>().prop_map(|f| format!("{f}")),
            Just("inf".to_string()),
            Just("-inf".to_string()),
            Just("nan".to_string()),
            any::<i32>().prop_map(|i| format!("{i}e-3")),
        ]
        .prop_map(|s| RespValue::Double(s.into())),
        ("-?[0-9]{1,60}").prop_map(|s| RespValue::BigNumber(s.into())),
        blob().prop_map(RespValue::BulkError),
        (prop_oneof![Just("txt"), Just("mkd")], blob()).prop_map(|(f, t)| {
            let mut v = format!("{f}:").into_bytes();
            v.extend_from_slice(&t);
            RespValue::Verbatim(v.into())
        }),
    ]
}

/// Any RESP3 value, nested up to 4 levels, aggregates up to 6 elements.
fn value() -> impl Strategy<Value = RespValue> {
    leaf().prop_recursive(4, 64, 6, |inner| {
        let pairs = proptest::collection::vec((inner.clone(), inner.clone()), 0..4);
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(RespValue::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(RespValue::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(RespValue::Push),
            pairs.clone().prop_map(RespValue::Map),
            (pairs, inner).prop_map(|(attrs, v)| RespValue::Attribute {
                attrs,
                value: Box::new(v)
            }),
        ]
    })
}

fn args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..8)
}

/// Feeds `data` in `dir` split at `at`, after a PING when it is a reply.
fn decode(dir: Direction, data: &[u8], at: usize) -> Vec<Event> {
    let mut d = RedisDecoder::new(Limits::default());
    let mut out = Vec::new();
    if dir == Direction::ToClient {
        d.feed(
            Direction::ToServer,
            &encode_command(&[b"PING"]),
            0,
            &mut out,
        )
        .unwrap();
        out.clear();
    }
    let at = at.min(data.len());
    d.feed(dir, &data[..at], 1, &mut out).unwrap();
    d.feed(dir, &data[at..], 1, &mut out).unwrap();
    out
}

fn only_message(events: &[Event]) -> &wire::Message {
    let msgs: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let Event::Message(m) = e {
                Some(m)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(msgs.len(), 1, "{events:?}");
    msgs[0]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn values_round_trip(v in value(), at in 0usize..400) {
        let bytes = encode_value(&v);
        let events = decode(Direction::ToClient, &bytes, at);
        let m = only_message(&events);
        prop_assert_eq!(m.raw.len, bytes.len() as u64);
        let MessageKind::Redis(msg) = &m.kind else { panic!() };
        let f = msg.frame().unwrap();
        prop_assert!(!f.truncated);
        prop_assert_eq!(&f.value, &v);
        // Pushes are pushes; anything else answers the PING.
        let is_push = matches!(msg, RedisMessage::Push(_));
        prop_assert_eq!(is_push, matches!(v, RespValue::Push(_)));
        prop_assert_eq!(events.iter().filter(|e| matches!(e, Event::Exchange(_))).count(), usize::from(!is_push));
    }

    /// The at-rest parser agrees with the stream decoder, whatever the
    /// split; any prefix is incomplete to it, never a wrong value; spans of
    /// stored commands are the decoder's arguments, cut or not.
    #[test]
    fn at_rest_agrees_with_the_stream(v in value(), at in 0usize..400, a in args()) {
        let bytes = Bytes::from(encode_value(&v));
        let events = decode(Direction::ToClient, &bytes, at);
        let MessageKind::Redis(msg) = &only_message(&events).kind else { panic!() };
        prop_assert_eq!(parse_reply(&bytes), Ok((msg.frame().unwrap().value.clone(), bytes.len())));
        let cut = at.min(bytes.len() - 1);
        let is_incomplete = matches!(parse_reply(&bytes.slice(..cut)), Err(wire::ParseError::Incomplete { .. }));
        prop_assert!(is_incomplete);
        let refs: Vec<&[u8]> = a.iter().map(|x| &x[..]).collect();
        for command in [encode_command(&refs), encode_inline(&refs)] {
            let events = decode(Direction::ToServer, &command, at);
            let MessageKind::Redis(RedisMessage::Command(c)) = &only_message(&events).kind else { panic!() };
            let spans = command_raw_spans(&command);
            if !c.inline {
                let stored: Vec<&[u8]> = spans.iter().map(|&(s, e)| &command[s..e]).collect();
                prop_assert_eq!(stored, c.args.iter().collect::<Vec<_>>());
            }
            prop_assert_eq!(spans.len() as u64, c.args.count);
        }
    }

    #[test]
    fn commands_round_trip(a in args(), at in 0usize..200) {
        let refs: Vec<&[u8]> = a.iter().map(|x| &x[..]).collect();
        for (bytes, inline) in [(encode_command(&refs), false), (encode_inline(&refs), true)] {
            let events = decode(Direction::ToServer, &bytes, at);
            let m = only_message(&events);
            prop_assert_eq!(m.raw.len, bytes.len() as u64);
            let MessageKind::Redis(RedisMessage::Command(c)) = &m.kind else { panic!() };
            prop_assert_eq!(c.inline, inline);
            prop_assert_eq!(c.args.count, a.len() as u64);
            prop_assert_eq!(c.args.iter().map(|x| x.to_vec()).collect::<Vec<_>>(), a.clone());
        }
    }

    #[test]
    fn capped_values_are_prefixes(v in value(), cap in 0usize..64) {
        // With a small response cap the kept value is cut, never wrong:
        // re-encoded, it is a prefix of the wire bytes up to the cut
        // (checked on its first bytes), and the summary length is exact.
        let bytes = encode_value(&v);
        let limits = Limits { response_cap: cap, ..Limits::default() };
        let mut d = RedisDecoder::new(limits);
        let mut out = Vec::new();
        d.feed(Direction::ToServer, &encode_command(&[b"PING"]), 0, &mut out).unwrap();
        d.feed(Direction::ToClient, &bytes, 1, &mut out).unwrap();
        let m = only_message(&out[1..]);
        let MessageKind::Redis(msg) = &m.kind else { panic!() };
        let f = msg.frame().unwrap();
        prop_assert_eq!(f.truncated, bytes.len() > cap);
        if !f.truncated {
            prop_assert_eq!(&f.value, &v);
        }
        prop_assert_eq!(m.raw.prefix.len(), bytes.len().min(cap));
    }

    #[test]
    fn conversations_split_anywhere(vals in proptest::collection::vec(value(), 1..5), cmds in proptest::collection::vec(args(), 1..5)) {
        let mut client = Vec::new();
        for a in &cmds {
            let refs: Vec<&[u8]> = a.iter().map(|x| &x[..]).collect();
            client.extend(encode_command(&refs));
        }
        let mut server = Vec::new();
        for v in &vals {
            server.extend(encode_value(v));
        }
        let chunks = vec![
            common::Chunk { dir: Direction::ToServer, ts: 1, data: client },
            common::Chunk { dir: Direction::ToClient, ts: 2, data: server },
        ];
        common::assert_split_invariant(Protocol::Redis, Limits::default(), &chunks, 5);
    }
}
