//! Table tests of the Redis codec on known byte strings: every RESP type,
//! every strict prefix, the fallbacks, the caps, and the pairing rules.

mod common;

use bytes::Bytes;
use wire::redis::*;
use wire::{
    Decoder, Direction, Event, ExchangeDetail, ExchangeStatus, Limits, MessageKind, Protocol,
    Session,
};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Feeds a conversation to a fresh decoder; panics on fallback.
fn feed_all(limits: Limits, steps: &[(Direction, &[u8])]) -> Vec<Event> {
    let mut d = RedisDecoder::new(limits);
    let mut out = Vec::new();
    for (i, (dir, data)) in steps.iter().enumerate() {
        d.feed(*dir, data, i as u64 * 10, &mut out)
            .unwrap_or_else(|f| panic!("fallback: {}", f.reason));
    }
    out
}

fn frames(events: &[Event]) -> Vec<(bool, RespValue)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => match &m.kind {
                MessageKind::Redis(RedisMessage::Reply(f)) => Some((false, f.value.clone())),
                MessageKind::Redis(RedisMessage::Push(f)) => Some((true, f.value.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn exchanges(events: &[Event]) -> Vec<(wire::Exchange, RedisExchange)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Exchange(x) => match &x.detail {
                ExchangeDetail::Redis(r) => Some(((**x).clone(), r.clone())),
                #[allow(unreachable_patterns)]
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn commands(events: &[Event]) -> Vec<RedisCommand> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => match &m.kind {
                MessageKind::Redis(RedisMessage::Command(c)) => Some(c.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn values() -> Vec<(&'static [u8], RespValue)> {
    use RespValue::*;
    vec![
        (b"+OK\r\n", Simple(b("OK"))),
        (b"+\r\n", Simple(b(""))),
        (b"-ERR unknown command\r\n", Error(b("ERR unknown command"))),
        (b":0\r\n", Integer(0)),
        (b":-9223372036854775808\r\n", Integer(i64::MIN)),
        (b":9223372036854775807\r\n", Integer(i64::MAX)),
        (b"$5\r\nhello\r\n", Bulk(b("hello"))),
        (b"$0\r\n\r\n", Bulk(b(""))),
        (b"$4\r\na\r\nb\r\n", Bulk(b("a\r\nb"))),
        (b"$-1\r\n", NullBulk),
        (b"*-1\r\n", NullArray),
        (b"*0\r\n", Array(vec![])),
        (
            b"*2\r\n$1\r\na\r\n:1\r\n",
            Array(vec![Bulk(b("a")), Integer(1)]),
        ),
        (
            b"*1\r\n*1\r\n*0\r\n",
            Array(vec![Array(vec![Array(vec![])])]),
        ),
        (b"_\r\n", Null),
        (b"#t\r\n", Boolean(true)),
        (b"#f\r\n", Boolean(false)),
        (b",1.5\r\n", Double(b("1.5"))),
        (b",-inf\r\n", Double(b("-inf"))),
        (
            b"(3492890328409238509324850943850943825024385\r\n",
            BigNumber(b("3492890328409238509324850943850943825024385")),
        ),
        (
            b"!21\r\nSYNTAX invalid syntax\r\n",
            BulkError(b("SYNTAX invalid syntax")),
        ),
        (
            b"=15\r\ntxt:Some string\r\n",
            Verbatim(b("txt:Some string")),
        ),
        (
            b"%1\r\n+first\r\n:1\r\n",
            Map(vec![(Simple(b("first")), Integer(1))]),
        ),
        (b"%0\r\n", Map(vec![])),
        (
            b"~2\r\n+a\r\n#f\r\n",
            Set(vec![Simple(b("a")), Boolean(false)]),
        ),
        (
            b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*1\r\n:2039123\r\n",
            Attribute {
                attrs: vec![(
                    Simple(b("key-popularity")),
                    Map(vec![(Bulk(b("a")), Double(b("0.1923")))]),
                )],
                value: Box::new(Array(vec![Integer(2039123)])),
            },
        ),
        (
            b">2\r\n+pubsub\r\n+x\r\n",
            Push(vec![Simple(b("pubsub")), Simple(b("x"))]),
        ),
    ]
}

#[test]
fn every_resp_type() {
    for (wire_bytes, want) in values() {
        // A PING first so that the value is a reply (pushes aside).
        let ev = feed_all(
            Limits::default(),
            &[(C, b"*1\r\n$4\r\nPING\r\n"), (S, wire_bytes)],
        );
        let f = frames(&ev);
        assert_eq!(f.len(), 1, "{:?}", String::from_utf8_lossy(wire_bytes));
        assert_eq!(f[0].1, want, "{:?}", String::from_utf8_lossy(wire_bytes));
        assert_eq!(f[0].0, matches!(want, RespValue::Push(_)), "push flag");
        // And it encodes back to the same bytes.
        assert_eq!(encode_value(&want), wire_bytes);
    }
}

#[test]
fn every_strict_prefix_is_incomplete() {
    let mut all: Vec<(Direction, Vec<u8>)> =
        values().into_iter().map(|(w, _)| (S, w.to_vec())).collect();
    all.push((C, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n".to_vec()));
    all.push((C, b"SET k \"a b\"\r\n".to_vec()));
    all.push((C, b"PING\n".to_vec()));
    all.push((C, b"*0\r\n".to_vec()));
    for (dir, msg) in all {
        for n in 0..msg.len() {
            let mut d = RedisDecoder::new(Limits::default());
            let mut out = Vec::new();
            d.feed(dir, &msg[..n], 0, &mut out).unwrap();
            assert!(
                out.is_empty(),
                "prefix {n} of {:?} emitted {out:?}",
                String::from_utf8_lossy(&msg)
            );
            d.feed(dir, &msg[n..], 1, &mut out).unwrap();
            let Event::Message(m) = &out[0] else { panic!() };
            assert_eq!(m.raw.len, msg.len() as u64);
            assert_eq!((m.first_ts, m.last_ts), (if n == 0 { 1 } else { 0 }, 1));
        }
    }
}

#[test]
fn attributes_summarise_the_value() {
    let ev = feed_all(
        Limits::default(),
        &[
            (C, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            (S, b"|1\r\n+ttl\r\n:3600\r\n$3\r\nabc\r\n"),
        ],
    );
    let (_, r) = &exchanges(&ev)[0];
    let s = r.reply.as_ref().unwrap();
    assert_eq!(s.kind, RespKind::Bulk);
    assert_eq!(s.len, Some(3));
    assert_eq!(
        r.value.as_ref().unwrap().unattributed(),
        &RespValue::Bulk(b("abc"))
    );
}

fn fallback(limits: Limits, steps: &[(Direction, &[u8])]) -> (Vec<Event>, wire::Fallback) {
    let mut d = RedisDecoder::new(limits);
    let mut out = Vec::new();
    for (dir, data) in steps {
        if let Err(f) = d.feed(*dir, data, 0, &mut out) {
            return (out, f);
        }
    }
    panic!("no fallback: {out:?}");
}

#[test]
fn fallbacks_keep_every_byte() {
    let l = Limits::default();
    type Case<'a> = (Limits, Vec<(Direction, &'a [u8])>, &'a str);
    let cases: Vec<Case> = vec![
        (l, vec![(S, b"?what\r\n")], "unknown RESP type byte 0x3f"),
        (l, vec![(S, b"$3\r\nabcd\r\n")], "not followed by CRLF"),
        (l, vec![(S, b":12a\r\n")], "invalid integer"),
        (l, vec![(S, b":99999999999999999999\r\n")], "out of range"),
        (l, vec![(S, b"$-2\r\n")], "invalid length"),
        (l, vec![(S, b"#x\r\n")], "invalid boolean"),
        (l, vec![(S, b"+a\rb\r\n")], "bare CR"),
        (l, vec![(C, b"*1\r\n:1\r\n")], "expected '$'"),
        (l, vec![(C, b"*1\r\n$-1\r\n")], "invalid bulk length -1"),
        (l, vec![(C, b"*x\r\n")], "invalid multibulk length"),
        // A count that could never fit: refused before any allocation.
        (
            l,
            vec![(S, b"*1000000000\r\n")],
            "aggregate of 1000000000 elements cannot fit max_frame 67108864",
        ),
        (
            l,
            vec![(S, b"%1000000000\r\n")],
            "aggregate of 2000000000 elements",
        ),
        (
            l,
            vec![(C, b"*1000000000\r\n")],
            "command of 1000000000 arguments cannot fit max_frame",
        ),
        (
            l,
            vec![(S, b"$1000000000\r\n")],
            "bulk string of 1000000000 bytes exceeds max_frame 67108864",
        ),
        (
            l,
            vec![(C, b"*1\r\n$1000000000\r\n")],
            "bulk string of 1000000000 bytes exceeds max_frame",
        ),
    ];
    for (limits, steps, want) in cases {
        // The client sends a partial command first: its bytes must be in
        // `pending` too.
        let mut all = vec![(C, &b"*2\r\n$3\r\nGET"[..])];
        let partial_client = steps.iter().all(|(d, _)| *d == S);
        if !partial_client {
            all.clear();
        }
        all.extend(steps.iter().cloned());
        let (out, f) = fallback(limits, &all);
        assert!(out.is_empty());
        assert!(
            f.reason.starts_with("redis: ") && f.reason.contains(want),
            "{:?} !~ {want:?}",
            f.reason
        );
        let fed_s: Vec<u8> = all
            .iter()
            .filter(|(d, _)| *d == S)
            .flat_map(|(_, b)| b.to_vec())
            .collect();
        let fed_c: Vec<u8> = all
            .iter()
            .filter(|(d, _)| *d == C)
            .flat_map(|(_, b)| b.to_vec())
            .collect();
        assert_eq!(&f.pending[0][..], &fed_c[..]);
        assert_eq!(&f.pending[1][..], &fed_s[..]);
    }
}

#[test]
fn depth_limit() {
    let nested = |n: usize| {
        let mut m = b"*1\r\n".repeat(n);
        m.extend_from_slice(b":1\r\n");
        m
    };
    let ok = nested(MAX_DEPTH);
    let ev = feed_all(Limits::default(), &[(C, b"*1\r\n$4\r\nPING\r\n"), (S, &ok)]);
    assert_eq!(frames(&ev).len(), 1);
    let deep = nested(MAX_DEPTH + 1);
    let (_, f) = fallback(Limits::default(), &[(S, &deep)]);
    assert!(f.reason.contains("nested deeper than 128"), "{}", f.reason);
}

#[test]
fn max_frame_bounds_lines_and_messages() {
    let limits = Limits {
        max_frame: 64,
        ..Limits::default()
    };
    // A simple string line without its CRLF yet, longer than max_frame.
    let long = [b'+'; 80];
    let (_, f) = fallback(limits, &[(S, &long[..])]);
    assert!(
        f.reason.contains("at least 80 bytes exceeds max_frame 64"),
        "{}",
        f.reason
    );
    assert_eq!(f.pending[1].len(), 80);
    // An inline command line, the same.
    let (_, f) = fallback(limits, &[(C, &[b'a'; 65][..])]);
    assert!(f.reason.contains("max_frame 64"), "{}", f.reason);
    // A message of many small elements over max_frame.
    let mut m = b"*20\r\n".to_vec();
    for _ in 0..20 {
        m.extend_from_slice(b":1\r\n");
    }
    let (_, f) = fallback(limits, &[(S, &m)]);
    assert!(f.reason.contains("exceeds max_frame 64"), "{}", f.reason);
    // Exactly max_frame is fine.
    let mut m = b"$54\r\n".to_vec();
    m.extend_from_slice(&[b'x'; 54]);
    m.extend_from_slice(b"\r\n");
    assert_eq!(m.len(), 61);
    feed_all(limits, &[(S, &m)]);
}

#[test]
fn session_switches_to_opaque() {
    let mut s = Session::new(Protocol::Redis, Limits::default());
    let mut out = Vec::new();
    s.feed(C, b"*1\r\n$4\r\nPING\r\n", 1, &mut out);
    s.feed(S, b"+PONG\r\n-", 2, &mut out);
    s.feed(S, b"E\r\n", 3, &mut out);
    s.feed(C, b"GET k\r\n", 4, &mut out);
    assert!(!s.is_opaque());
    s.feed(S, b"\x16\x03\x01", 5, &mut out);
    assert!(s.is_opaque());
    let kinds: Vec<String> = out
        .iter()
        .map(|e| match e {
            Event::Message(m) => format!("{:?}:{}:{}", m.dir, m.offset, m.raw.len),
            Event::Exchange(_) => "X".into(),
            Event::Opaque { reason, offset, .. } => format!("opaque@{offset}:{reason}"),
            Event::RedisRun(_) => "run".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ToServer:0:14",
            "ToClient:0:7",
            "X",
            "ToClient:7:4",
            "ToServer:14:7",
            "opaque@11:redis: unknown RESP type byte 0x16",
            "ToClient:11:3"
        ]
    );
}

#[test]
fn caps_cut_values_not_summaries() {
    let limits = Limits {
        max_frame: 1 << 20,
        request_cap: 29,
        response_cap: 16,
    };
    let ev = feed_all(
        limits,
        &[
            (
                C,
                b"*4\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$10\r\n0123456789\r\n$1\r\nz\r\n",
            ),
            (S, b":2\r\n"),
            (
                C,
                b"*4\r\n$6\r\nLRANGE\r\n$1\r\nk\r\n$1\r\n0\r\n$2\r\n-1\r\n",
            ),
            (S, b"*2\r\n$10\r\n0123456789\r\n$1\r\nz\r\n"),
        ],
    );
    let cmds = commands(&ev);
    assert_eq!(cmds[0].args.count, 4);
    assert!(cmds[0].args.truncated);
    assert_eq!(
        cmds[0].args.iter().collect::<Vec<_>>(),
        vec![&b"RPUSH"[..], b"k", b"01"]
    );
    let xs = exchanges(&ev);
    let (_, lrange) = &xs[1];
    assert_eq!(lrange.reply.as_ref().unwrap().len, Some(2));
    assert!(lrange.value_truncated);
    assert_eq!(
        lrange.value,
        Some(RespValue::Array(vec![RespValue::Bulk(b("0123456"))]))
    );
    let Event::Message(m) = ev
        .iter()
        .rev()
        .find(|e| matches!(e, Event::Message(_)))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(m.raw.len, 28);
    assert_eq!(m.raw.prefix.len(), 16);
    assert!(m.raw.hash.is_some());
}

#[test]
fn zero_caps() {
    let limits = Limits {
        max_frame: 1 << 20,
        request_cap: 0,
        response_cap: 0,
    };
    let ev = feed_all(
        limits,
        &[(C, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), (S, b"$1\r\nv\r\n")],
    );
    let (x, r) = &exchanges(&ev)[0];
    assert_eq!(x.status, ExchangeStatus::Complete);
    assert_eq!(r.args.count, 2);
    assert!(r.args.is_empty());
    assert_eq!(r.reply.as_ref().unwrap().kind, RespKind::Bulk);
    assert_eq!(r.reply.as_ref().unwrap().len, Some(1));
}

#[test]
fn pipelined_pairing_and_timings() {
    let ev = feed_all(
        Limits::default(),
        &[
            (
                C,
                b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*1\r\n$4\r\nPI",
            ),
            (C, b"NG\r\n"),
            (S, b"$1\r\n1\r\n$-1\r\n+PO"),
            (S, b"NG\r\n"),
        ],
    );
    let xs = exchanges(&ev);
    let got: Vec<_> = xs
        .iter()
        .map(|(x, r)| {
            (
                r.command_str().into_owned(),
                r.args.str(1).map(|s| s.into_owned()),
                r.value.clone().unwrap(),
                x.timings,
            )
        })
        .collect();
    let t = |a, b, c, d| wire::Timings {
        request_first: a,
        request_last: b,
        response_first: Some(c),
        response_last: Some(d),
    };
    assert_eq!(
        got,
        vec![
            (
                "GET".into(),
                Some("a".into()),
                RespValue::Bulk(b("1")),
                t(0, 0, 20, 20)
            ),
            (
                "GET".into(),
                Some("b".into()),
                RespValue::NullBulk,
                t(0, 0, 20, 20)
            ),
            (
                "PING".into(),
                None,
                RespValue::Simple(b("PONG")),
                t(0, 10, 20, 30)
            ),
        ]
    );
    assert_eq!(xs[2].0.request_bytes, 14);
    assert_eq!(xs[2].0.response_bytes, 7);
}

#[test]
fn unsolicited_frames() {
    // A reply with no command (e.g. "-ERR max number of clients reached"
    // right after connect): a reply message, no exchange.
    let ev = feed_all(
        Limits::default(),
        &[(S, b"-ERR max number of clients reached\r\n")],
    );
    assert_eq!(
        frames(&ev),
        vec![(
            false,
            RespValue::Error(b("ERR max number of clients reached"))
        )]
    );
    assert!(exchanges(&ev).is_empty());
    // A RESP2 array that looks like a pub/sub message is a plain reply on a
    // connection that never subscribed and awaits a reply.
    let ev = feed_all(
        Limits::default(),
        &[
            (
                C,
                b"*4\r\n$6\r\nLRANGE\r\n$1\r\nk\r\n$1\r\n0\r\n$2\r\n-1\r\n",
            ),
            (S, b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"),
        ],
    );
    assert!(!frames(&ev)[0].0);
    assert_eq!(exchanges(&ev).len(), 1);
    // RESP3 pushes never answer a command.
    let ev = feed_all(
        Limits::default(),
        &[
            (C, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            (S, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"),
            (S, b"$1\r\nv\r\n"),
        ],
    );
    assert_eq!(
        frames(&ev).iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![true, false]
    );
    assert_eq!(exchanges(&ev)[0].1.value, Some(RespValue::Bulk(b("v"))));
}

#[test]
fn empty_commands_expect_nothing() {
    let ev = feed_all(
        Limits::default(),
        &[
            (C, b"*0\r\n\r\n*-1\r\n*1\r\n$4\r\nPING\r\n"),
            (S, b"+PONG\r\n"),
        ],
    );
    let cmds = commands(&ev);
    assert_eq!(cmds.len(), 4);
    assert!(cmds[..3]
        .iter()
        .all(|c| c.args.is_empty() && c.name().is_none()));
    assert!(cmds[1].inline);
    let xs = exchanges(&ev);
    assert_eq!(xs.len(), 1);
    assert_eq!(&xs[0].1.command[..], b"PING");
}

#[test]
fn subscribe_without_channels_gets_one_error() {
    let ev = feed_all(
        Limits::default(),
        &[
            (C, b"*1\r\n$9\r\nSUBSCRIBE\r\n*1\r\n$4\r\nPING\r\n"),
            (
                S,
                b"-ERR wrong number of arguments for 'subscribe' command\r\n+PONG\r\n",
            ),
        ],
    );
    let xs = exchanges(&ev);
    assert_eq!(xs.len(), 2);
    assert!(xs[0].1.is_error());
    assert_eq!(xs[1].1.value, Some(RespValue::Simple(b("PONG"))));
}

#[test]
fn client_reply_skip_behind_pending_commands() {
    // SKIP while two commands still await replies: the NoReply exchanges
    // come out in command order, after the earlier ones complete.
    let ev = feed_all(
        Limits::default(),
        &[
            (C, b"*1\r\n$4\r\nPING\r\n*3\r\n$6\r\nclient\r\n$5\r\nreply\r\n$4\r\nskip\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*1\r\n$4\r\nPING\r\n"),
            (S, b"+PONG\r\n+PONG\r\n"),
        ],
    );
    let xs: Vec<_> = exchanges(&ev)
        .into_iter()
        .map(|(x, r)| (r.command_str().into_owned(), x.status))
        .collect();
    assert_eq!(
        xs,
        vec![
            ("PING".into(), ExchangeStatus::Complete),
            ("CLIENT".into(), ExchangeStatus::NoReply),
            ("INCR".into(), ExchangeStatus::NoReply),
            ("PING".into(), ExchangeStatus::Complete),
        ]
    );
}

#[test]
fn client_reply_off_then_on_and_skip_while_off() {
    let cmd = |args: &[&[u8]]| encode_command(args);
    let mut c = Vec::new();
    for a in [
        &[&b"CLIENT"[..], b"REPLY", b"OFF"][..],
        &[b"CLIENT", b"REPLY", b"SKIP"],
        &[b"SET", b"k", b"v"],
        &[b"CLIENT", b"REPLY", b"ON"],
        &[b"GET", b"k"],
    ] {
        c.extend(cmd(a));
    }
    let ev = feed_all(Limits::default(), &[(C, &c), (S, b"+OK\r\n$1\r\nv\r\n")]);
    let xs: Vec<_> = exchanges(&ev).into_iter().map(|(x, _)| x.status).collect();
    use ExchangeStatus::*;
    assert_eq!(xs, vec![NoReply, NoReply, NoReply, Complete, Complete]);
}

#[test]
fn reset_and_hello_switch_protocol_state() {
    // After HELLO 3 a RESP2-shaped "message" array is a reply; after RESET
    // (back to RESP2, subscriptions dropped) too, as nothing is subscribed.
    let ev = feed_all(
        Limits::default(),
        &[
            (C, b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"),
            (S, b"%1\r\n$5\r\nproto\r\n:3\r\n"),
            (C, b"*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nc\r\n"),
            (S, b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"),
            (C, b"*3\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n"),
            (S, b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"),
            (C, b"*1\r\n$5\r\nRESET\r\n"),
            (S, b"+RESET\r\n"),
            (C, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            (S, b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"),
        ],
    );
    let pushes: Vec<bool> = frames(&ev).iter().map(|f| f.0).collect();
    assert_eq!(pushes, vec![false, true, false, false, false]);
    assert_eq!(exchanges(&ev).len(), 5);
}

#[test]
fn monitor_lines_are_pushes() {
    let ev = feed_all(
        Limits::default(),
        &[
            (C, b"*1\r\n$7\r\nMONITOR\r\n"),
            (
                S,
                b"+OK\r\n+1700000000.123456 [0 127.0.0.1:1234] \"get\" \"k\"\r\n",
            ),
            (C, b"*1\r\n$4\r\nQUIT\r\n"),
            (S, b"+OK\r\n"),
        ],
    );
    assert_eq!(
        frames(&ev).iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![false, true, false]
    );
    assert_eq!(exchanges(&ev).len(), 2);
}

#[test]
fn end_of_stream() {
    let mut d = RedisDecoder::new(Limits::default());
    let mut out = Vec::new();
    d.feed(
        C,
        b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$3\r\nTI",
        1,
        &mut out,
    )
    .unwrap();
    d.feed(S, b"+PONG\r\n$1", 2, &mut out).unwrap();
    out.clear();
    d.eof(C, 3, &mut out);
    d.eof(S, 4, &mut out);
    // The torn tails come out as opaque messages, then the unanswered GET.
    let Event::Message(m) = &out[0] else { panic!() };
    assert_eq!(
        (m.dir, m.offset, m.raw.len, m.first_ts, m.last_ts),
        (C, 34, 10, 1, 3)
    );
    assert_eq!(m.kind, MessageKind::Opaque);
    let Event::Message(m) = &out[1] else { panic!() };
    assert_eq!((m.dir, m.offset, m.raw.len), (S, 7, 2));
    let xs = exchanges(&out);
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].0.status, ExchangeStatus::Unanswered);
    assert_eq!(&xs[0].1.command[..], b"GET");
    // A command after the server closed is unanswered at once.
    out.clear();
    d.feed(C, b"*1\r\n$4\r\nPING\r\n", 5, &mut out).unwrap();
    assert_eq!(exchanges(&out)[0].0.status, ExchangeStatus::Unanswered);
}

#[test]
fn lowercase_names_are_uppercased() {
    let ev = feed_all(
        Limits::default(),
        &[(C, b"*2\r\n$3\r\nget\r\n$1\r\nk\r\n"), (S, b"$-1\r\n")],
    );
    let (_, r) = &exchanges(&ev)[0];
    assert_eq!(&r.command[..], b"GET");
    assert_eq!(r.args.get(0), Some(&b"get"[..]));
}

#[test]
fn secrets() {
    let c = |args: &[&[u8]]| RedisCommand {
        args: RedisArgs::from_slices(args),
        inline: false,
    };
    assert_eq!(c(&[b"auth", b"user", b"pw"]).secret_args(), vec![1, 2]);
    assert!(c(&[b"auth", b"pw"]).is_auth());
    assert!(c(&[b"HELLO", b"3", b"auth", b"u", b"p"]).is_auth());
    assert!(!c(&[b"HELLO", b"3"]).is_auth());
    assert_eq!(
        c(&[b"HELLO", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"x"]).secret_args(),
        vec![3, 4]
    );
    assert_eq!(
        c(&[b"MIGRATE", b"h", b"1", b"k", b"0", b"5", b"AUTH", b"pw"]).secret_args(),
        vec![7]
    );
    assert_eq!(
        c(&[b"MIGRATE", b"h", b"1", b"k", b"0", b"5", b"AUTH2", b"u", b"pw"]).secret_args(),
        vec![7, 8]
    );
    assert_eq!(
        c(&[b"CONFIG", b"SET", b"maxmemory", b"1", b"requirepass", b"x"]).secret_args(),
        vec![5]
    );
    assert_eq!(
        c(&[b"ACL", b"SETUSER", b"bob", b"on", b">pw", b"~*", b"#abc"]).secret_args(),
        vec![4, 6]
    );
    assert!(c(&[b"GET", b"auth"]).secret_args().is_empty());
}

#[test]
fn encoders() {
    assert_eq!(
        encode_command(&[b"GET", b"k"]),
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    );
    assert_eq!(encode_command(&[]), b"*0\r\n");
    assert_eq!(encode_inline(&[b"SET", b"k", b"a b"]), b"SET k \"a b\"\r\n");
    assert_eq!(
        encode_inline(&[b"ECHO", b"", b"q\"\\\n\x01"]),
        b"ECHO \"\" \"q\\\"\\\\\\n\\x01\"\r\n"
    );
    // RespArgs equality is by content.
    let a = RedisArgs::from_slices(&[b"GET", b"k"]);
    let ev = feed_all(Limits::default(), &[(C, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")]);
    assert_eq!(commands(&ev)[0].args, a);
    assert_eq!(format!("{a:?}"), "[\"GET\", \"k\"]");
}

#[test]
fn value_helpers() {
    assert_eq!(RespValue::Double(b("inf")).as_f64(), Some(f64::INFINITY));
    assert_eq!(RespValue::Bulk(b("2.5")).as_f64(), Some(2.5));
    assert!(RespValue::Double(b("nan")).as_f64().unwrap().is_nan());
    assert_eq!(
        RespValue::Verbatim(b("mkd:# hi")).verbatim_parts(),
        Some((&b"mkd"[..], &b"# hi"[..]))
    );
    assert_eq!(RespValue::BulkError(b("X y")).error_text(), Some(&b("X y")));
    assert_eq!(RespKind::Map.name(), "map");
    assert_eq!(RespKind::Map.type_byte(), b'%');
}

#[test]
fn split_invariant_on_a_synthetic_conversation() {
    // Every kind of frame in one conversation, fed at every offset.
    let mut server = Vec::new();
    let mut client = Vec::new();
    for (w, _) in values() {
        client.extend(encode_command(&[b"PING"]));
        server.extend_from_slice(w);
    }
    let chunks = vec![
        common::Chunk {
            dir: C,
            ts: 1,
            data: client,
        },
        common::Chunk {
            dir: S,
            ts: 2,
            data: server,
        },
        common::Chunk {
            dir: C,
            ts: 3,
            data: b"SET k \"v w\"\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
        },
        common::Chunk {
            dir: S,
            ts: 4,
            data: b"+OK\r\n+PONG\r\n".to_vec(),
        },
    ];
    let ev = common::assert_split_invariant(Protocol::Redis, Limits::default(), &chunks, 1);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Exchange(_)))
            .count(),
        values().len() + 2
    );
}

#[test]
fn short_confirmations_resync_past_silent_commands() {
    // SUBSCRIBE a b gets one confirmation only, then a plain reply: the
    // SUBSCRIBE is closed, the silent commands behind it are skipped, and
    // the reply goes to the PING.
    let mut c = encode_command(&[b"SUBSCRIBE", b"a", b"b"]);
    c.extend(encode_command(&[b"CLIENT", b"REPLY", b"SKIP"]));
    c.extend(encode_command(&[b"INCR", b"n"]));
    c.extend(encode_command(&[b"PING"]));
    let ev = feed_all(
        Limits::default(),
        &[(C, &c), (S, b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"), (S, b"+PONG\r\n")],
    );
    let xs: Vec<_> = exchanges(&ev)
        .into_iter()
        .map(|(x, r)| (r.command_str().into_owned(), x.status, r.replies))
        .collect();
    use ExchangeStatus::*;
    assert_eq!(
        xs,
        vec![
            ("SUBSCRIBE".into(), Complete, 1),
            ("CLIENT".into(), NoReply, 0),
            ("INCR".into(), NoReply, 0),
            ("PING".into(), Complete, 1),
        ]
    );
}

/// Past `MAX_PENDING` commands awaiting replies the decoder gives up, and
/// the fast path gives up at the same command as the per-message path.
#[test]
fn too_many_waiting_commands_fall_back_at_the_same_command_on_both_paths() {
    let ping = b"*1\r\n$4\r\nPING\r\n";
    let total = wire::redis::MAX_PENDING + 3;
    let stream: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * total).collect();
    let outcome = |runs: bool| {
        let mut s = Session::new(Protocol::Redis, Limits::default());
        let (mut commands, mut fallback) = (0usize, None);
        let mut out = Vec::new();
        for chunk in stream.chunks(64 << 10) {
            if runs {
                s.feed_runs(C, chunk, 1, &mut out);
            } else {
                s.feed(C, chunk, 1, &mut out);
            }
            for e in out.drain(..) {
                match e {
                    Event::RedisRun(r) => commands += r.len(),
                    Event::Message(m) if matches!(m.kind, wire::MessageKind::Redis(_)) => commands += 1,
                    Event::Opaque { offset, reason, .. } if fallback.is_none() => fallback = Some((offset, reason)),
                    _ => {}
                }
            }
        }
        (commands, fallback)
    };
    let per_message = outcome(false);
    assert_eq!(per_message.0, wire::redis::MAX_PENDING + 1);
    assert!(per_message.1.as_ref().is_some_and(|(_, r)| r.contains("awaiting replies")), "{per_message:?}");
    assert_eq!(outcome(true), per_message);
}
