//! Table tests of hand-built PostgreSQL byte strings: the paths the captured
//! fixtures do not reach (fallbacks, limits, GSS, cancel, fast-path calls,
//! pipelined errors, portal suspension, unnamed statement reuse, COPY fail).
mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::Chunk;
use wire::pg::encode as e;
use wire::pg::*;
use wire::{Direction, Event, ExchangeDetail, ExchangeStatus, Limits, MessageKind, Protocol};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn be(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut b = vec![tag];
    b.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    b.extend_from_slice(body);
    b
}
fn z() -> Vec<u8> {
    be(b'Z', b"I")
}
fn cc(tag: &str) -> Vec<u8> {
    be(b'C', format!("{tag}\0").as_bytes())
}
fn row(vals: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u16(vals.len() as u16);
    for v in vals {
        match v {
            Some(v) => {
                b.put_i32(v.len() as i32);
                b.put_slice(v);
            }
            None => b.put_i32(-1),
        }
    }
    be(b'D', &b)
}
fn rowdesc(cols: &[(&str, u32)]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u16(cols.len() as u16);
    for (n, oid) in cols {
        b.put_slice(n.as_bytes());
        b.put_u8(0);
        b.put_u32(0);
        b.put_i16(0);
        b.put_u32(*oid);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i16(0);
    }
    be(b'T', &b)
}
fn error(code: &str, msg: &str) -> Vec<u8> {
    be(b'E', format!("SERROR\0VERROR\0C{code}\0M{msg}\0\0").as_bytes())
}
fn startup() -> Vec<u8> {
    let mut b = BytesMut::new();
    e::startup(&mut b, &[("user", "u"), ("database", "d")]);
    b.to_vec()
}
fn hello() -> Vec<u8> {
    [be(b'R', &[0, 0, 0, 0]), z()].concat()
}
fn fe(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    f(&mut b);
    b.to_vec()
}

/// Decodes a conversation, checking it is split-invariant at every offset.
fn run(conv: &[(Direction, Vec<u8>)]) -> Vec<Event> {
    run_with(Limits::default(), conv)
}
fn run_with(limits: Limits, conv: &[(Direction, Vec<u8>)]) -> Vec<Event> {
    let chunks: Vec<Chunk> = conv.iter().enumerate().map(|(i, (d, b))| Chunk { dir: *d, ts: i as u64, data: b.clone() }).collect();
    common::assert_split_invariant(Protocol::Postgres, limits, &chunks, 1)
}
/// For conversations that fall back: splits must agree up to the hand-over
/// (the session then emits one opaque chunk per feed), and every byte must
/// be accounted for.
fn run_fallback(limits: Limits, conv: &[(Direction, Vec<u8>)]) -> Vec<Event> {
    let chunks: Vec<Chunk> = conv.iter().enumerate().map(|(i, (d, b))| Chunk { dir: *d, ts: i as u64, data: b.clone() }).collect();
    let whole = common::coalesce(&chunks);
    let upto = |ev: Vec<Event>| -> Vec<Event> {
        let n = ev.iter().position(|e| matches!(e, Event::Opaque { .. })).expect("no fallback");
        ev[..=n].to_vec()
    };
    let all = common::decode(Protocol::Postgres, limits, &whole);
    let expected = upto(all.clone());
    let total: usize = whole.iter().map(|c| c.data.len()).sum();
    for at in 1..total {
        let ev = common::decode(Protocol::Postgres, limits, &common::split_at(&whole, at));
        for d in [C, S] {
            let fed: usize = whole.iter().filter(|c| c.dir == d).map(|c| c.data.len()).sum();
            let got: u64 = ev.iter().map(|e| match e {
                Event::Message(m) if m.dir == d => m.raw.len,
                _ => 0,
            }).sum();
            assert_eq!(got, fed as u64, "split at {at}: {d:?} bytes lost");
        }
        assert!(upto(ev) == expected, "split at {at} differs");
    }
    all
}

fn msgs(ev: &[Event]) -> Vec<PgMessage> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Message(m) => match &m.kind {
                MessageKind::Pg(p) => Some(p.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
fn xs(ev: &[Event]) -> Vec<(ExchangeStatus, PgExchange)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Exchange(x) => match &x.detail {
                ExchangeDetail::Pg(p) => Some((x.status, p.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
fn opaque_reason(ev: &[Event]) -> Option<String> {
    ev.iter().find_map(|e| match e {
        Event::Opaque { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn frame_over_max_frame_falls_back_keeping_bytes() {
    let q = fe(|b| e::query(b, &[b'x'; 200]));
    let limits = Limits { max_frame: 100, ..Limits::default() };
    let ev = run_fallback(limits, &[(C, startup()), (S, hello()), (C, q.clone())]);
    assert_eq!(opaque_reason(&ev).unwrap(), "pg: frontend message 'Q' of 206 bytes exceeds max_frame 100");
    // The query's bytes come back as one opaque chunk.
    let Some(Event::Message(m)) = ev.last() else { panic!() };
    assert_eq!((m.kind.clone(), m.raw.len), (MessageKind::Opaque, q.len() as u64));
}

#[test]
fn unknown_tags_and_non_pg_clients_fall_back() {
    let ev = run_fallback(Limits::default(), &[(C, startup()), (S, be(b'x', b"??"))]);
    assert_eq!(opaque_reason(&ev).unwrap(), "pg: unknown backend message tag 0x78");
    let ev = run_fallback(Limits::default(), &[(C, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec())]);
    assert!(opaque_reason(&ev).unwrap().starts_with("pg: startup packet of 1195725856 bytes out of range"));
    let ev = run_fallback(Limits::default(), &[(C, [0, 0, 0, 8, 0, 2, 0, 0].to_vec())]);
    assert_eq!(opaque_reason(&ev).unwrap(), "pg: unknown startup request code 0x20000");
    let ev = run_fallback(Limits::default(), &[(C, startup()), (S, vec![b'Z', 0, 0, 0, 3])]);
    assert_eq!(opaque_reason(&ev).unwrap(), "pg: backend message 'Z' with invalid length 3");
}

#[test]
fn strict_prefixes_wait_for_more() {
    let conv = [startup(), fe(|b| e::query(b, b"select 1"))].concat();
    for n in 0..conv.len() {
        let mut d = PgDecoder::new(Limits::default());
        let mut out = Vec::new();
        wire::Decoder::feed(&mut d, C, &conv[..n], 0, &mut out).unwrap();
        let want = if n < 27 { 0 } else { 1 };
        assert_eq!(out.len(), want, "prefix {n}");
    }
}

#[test]
fn cancel_request_and_gssenc_refused() {
    let ev = run(&[(C, fe(|b| e::cancel_request(b, 42, 7)))]);
    assert_eq!(msgs(&ev), [PgMessage::CancelRequest { pid: 42, secret_key: 7 }]);
    assert_eq!(xs(&ev)[0].0, ExchangeStatus::NoReply);
    assert_eq!(xs(&ev)[0].1.kind, PgExchangeKind::Cancel);

    let ev = run(&[(C, fe(e::gssenc_request)), (S, b"N".to_vec()), (C, startup()), (S, hello())]);
    let m = msgs(&ev);
    assert_eq!(m[0], PgMessage::GssEncRequest);
    assert_eq!(m[1], PgMessage::GssEncResponse { accepted: false });
    assert!(matches!(m[2], PgMessage::Startup(_)));
    let x = xs(&ev);
    assert_eq!(x.len(), 1);
    assert!(x[0].1.ssl_requested);

    let ev = run_fallback(Limits::default(), &[(C, fe(e::gssenc_request)), (S, b"G\x16\x03".to_vec())]);
    assert_eq!(opaque_reason(&ev).unwrap(), "pg: GSS encryption accepted, connection encrypted");
}

#[test]
fn startup_error_ends_the_startup_exchange() {
    let ev = run(&[(C, startup()), (S, be(b'E', b"SFATAL\0C28000\0Mno pg_hba.conf entry\0\0"))]);
    let x = xs(&ev);
    assert_eq!(x[0].0, ExchangeStatus::Complete);
    assert_eq!(x[0].1.error.as_ref().unwrap().code_str(), "28000");
    assert_eq!(x[0].1.error.as_ref().unwrap().severity_str(), "FATAL");
}

#[test]
fn function_call_and_negotiate_version() {
    let mut call = BytesMut::new();
    call.put_u8(b'F');
    let body = [&1598u32.to_be_bytes()[..], &[0, 1, 0, 1, 0, 1, 0, 0, 0, 4], &7i32.to_be_bytes(), &[0, 1]].concat();
    call.put_u32(body.len() as u32 + 4);
    call.put_slice(&body);
    let ev = run(&[
        (C, startup()),
        (S, [be(b'v', &[0, 0, 0, 0, 0, 0, 0, 1, b'_', b'p', b'q', b'_', b'.', b'x', 0]), hello()].concat()),
        (C, call.to_vec()),
        (S, [be(b'V', &[0, 0, 0, 1, 9]), z()].concat()),
    ]);
    let m = msgs(&ev);
    assert_eq!(m[1], PgMessage::NegotiateProtocolVersion { minor: 0, unrecognized: vec![Bytes::from_static(b"_pq_.x")] });
    assert!(matches!(&m[4], PgMessage::FunctionCall { function: 1598, args, result_format: 1, .. } if args[0].as_deref() == Some(&7i32.to_be_bytes()[..])));
    assert_eq!(m[5], PgMessage::FunctionCallResponse { value: Some(Bytes::from_static(&[9])) });
    let x = xs(&ev);
    assert_eq!((x[1].1.kind, x[1].1.function), (PgExchangeKind::FunctionCall, Some(1598)));
}

#[test]
fn pipelined_error_skips_to_sync() {
    let req = fe(|b| {
        e::parse(b, b"", b"select 1/0", &[]);
        e::bind(b, b"", b"", &[], &[], &[]);
        e::execute(b, b"", 0);
        e::parse(b, b"", b"select 2", &[]);
        e::bind(b, b"", b"", &[], &[], &[]);
        e::execute(b, b"", 0);
        e::sync(b);
    });
    let ev = run(&[
        (C, startup()),
        (S, hello()),
        (C, req),
        (S, [be(b'1', b""), be(b'2', b""), error("22012", "division by zero"), z()].concat()),
        (C, fe(|b| e::query(b, b"select 3"))),
        (S, [rowdesc(&[("x", 23)]), row(&[Some(b"3")]), cc("SELECT 1"), z()].concat()),
    ]);
    let x = xs(&ev);
    let p = &x[1].1;
    assert_eq!(p.statements.len(), 2);
    assert_eq!(p.statements[0].error.as_ref().unwrap().code_str(), "22012");
    assert!(p.statements[1].results.is_empty() && p.statements[1].error.is_none());
    assert_eq!(p.error.as_ref().unwrap().message_str(), "division by zero");
    assert_eq!(x[2].1.statements[0].results[0].sample_rows[0], [PgValue::Text("3".into())]);
}

#[test]
fn portal_suspension_and_unnamed_statement_reuse() {
    // Two unnamed statements pipelined: each Execute keeps its own SQL,
    // columns and binary row decoding.
    let req = fe(|b| {
        e::parse(b, b"", b"select a from t", &[]);
        e::describe(b, Target::Statement, b"");
        e::bind(b, b"", b"", &[], &[], &[1]);
        e::execute(b, b"", 2);
        e::execute(b, b"", 0);
        e::parse(b, b"", b"select $1::text", &[25]);
        e::bind(b, b"p", b"", &[0], &[Some(b"hi")], &[]);
        e::describe(b, Target::Portal, b"p");
        e::execute(b, b"p", 0);
        e::close(b, Target::Portal, b"p");
        e::sync(b);
    });
    let resp = [
        be(b'1', b""),
        be(b't', &[0, 0]),
        rowdesc(&[("a", 20)]),
        be(b'2', b""),
        row(&[Some(&1i64.to_be_bytes())]),
        row(&[Some(&2i64.to_be_bytes())]),
        be(b's', b""),
        row(&[Some(&3i64.to_be_bytes())]),
        cc("SELECT 1"),
        be(b'1', b""),
        be(b'2', b""),
        rowdesc(&[("text", 25)]),
        row(&[Some(b"hi")]),
        cc("SELECT 1"),
        be(b'3', b""),
        z(),
    ]
    .concat();
    let ev = run(&[(C, startup()), (S, hello()), (C, req), (S, resp)]);
    let x = xs(&ev);
    let st = &x[1].1.statements;
    assert_eq!(st.len(), 3);
    assert_eq!(st[0].sql_str(), "select a from t");
    assert!(st[0].results[0].suspended);
    assert_eq!(st[0].results[0].rows_returned, 2);
    assert_eq!(st[0].results[0].sample_rows, [[PgValue::Text("1".into())], [PgValue::Text("2".into())]]);
    assert_eq!(st[0].results[0].columns[0].format, 1);
    assert_eq!(st[1].sql_str(), "select a from t");
    assert_eq!(st[1].results[0].sample_rows, [[PgValue::Text("3".into())]]);
    assert_eq!(st[2].sql_str(), "select $1::text");
    assert_eq!(st[2].portal, "p");
    assert_eq!(st[2].params, [PgValue::Text("hi".into())]);
    assert_eq!(st[2].param_types, [25]);
    assert_eq!(x[1].1.command_tags(), ["SELECT 1", "SELECT 1"]);
}

#[test]
fn closed_statement_is_forgotten_and_unknown_sql_is_none() {
    let ev = run(&[
        (C, startup()),
        (S, hello()),
        (C, fe(|b| {
            e::parse(b, b"s1", b"select 1", &[]);
            e::close(b, Target::Statement, b"s1");
            e::bind(b, b"", b"s1", &[], &[], &[]);
            e::execute(b, b"", 0);
            e::sync(b);
        })),
        (S, [be(b'1', b""), be(b'3', b""), error("26000", "prepared statement \"s1\" does not exist"), z()].concat()),
    ]);
    let x = xs(&ev);
    assert_eq!(x[1].1.statements[0].sql, None);
    assert_eq!(x[1].1.statements[0].error.as_ref().unwrap().code_str(), "26000");
}

#[test]
fn malformed_body_is_reported_and_decoding_goes_on() {
    let ev = run(&[(C, startup()), (S, hello()), (C, [be(b'Q', b"no nul"), fe(|b| e::query(b, b"select 1"))].concat())]);
    let m = msgs(&ev);
    assert_eq!(m[3], PgMessage::Malformed { tag: b'Q', reason: "string without NUL terminator" });
    assert_eq!(m[4], PgMessage::Query { sql: Bytes::from_static(b"select 1") });
}

#[test]
fn copy_fail_notice_and_unanswered() {
    let ev = run(&[
        (C, startup()),
        (S, hello()),
        (C, fe(|b| e::query(b, b"copy t from stdin"))),
        (S, be(b'G', &[0, 0, 1, 0, 0])),
        (C, fe(|b| {
            e::copy_data(b, b"1\n");
            e::copy_data(b, b"2\n");
            e::copy_fail(b, b"client gave up");
        })),
        (S, [be(b'N', b"SNOTICE\0C00000\0Mhello\0\0"), error("57014", "COPY from stdin failed"), z()].concat()),
        (C, fe(|b| e::query(b, b"select pg_sleep(10)"))),
    ]);
    let m = msgs(&ev);
    assert!(m.contains(&PgMessage::CopyData { count: 2, len: 14 }));
    let x = xs(&ev);
    let copy = x[1].1.statements[0].results[0].copy.as_ref().unwrap();
    assert_eq!((copy.direction, copy.messages, copy.bytes, copy.failed), (CopyDirection::In, 2, 14, true));
    assert_eq!(x[1].1.notices[0].message_str(), "hello");
    assert_eq!(x[1].1.error.as_ref().unwrap().code_str(), "57014");
    // The last query never got its answer: reported at end of stream.
    assert_eq!(x[2].0, ExchangeStatus::Unanswered);
    assert_eq!(x[2].1.statements[0].sql_str(), "select pg_sleep(10)");
}

#[test]
fn torn_tail_is_kept_as_opaque_at_eof() {
    let ev = run(&[(C, startup()), (S, [hello(), vec![b'T', 0, 0]].concat())]);
    let Some(Event::Message(m)) = ev.iter().rev().find(|e| matches!(e, Event::Message(_))) else { panic!() };
    assert_eq!((m.kind.clone(), m.raw.len, m.offset), (MessageKind::Opaque, 3, 15));
}

#[test]
fn secrets_are_marked_and_redacted() {
    let ev = run(&[
        (C, startup()),
        (S, be(b'R', &[0, 0, 0, 5, 1, 2, 3, 4])),
        (C, fe(|b| e::password(b, b"md5abc"))),
        (S, hello()),
    ]);
    let m = msgs(&ev);
    assert_eq!(m[2], PgMessage::Password { password: Bytes::from_static(b"md5abc") });
    assert!(m[2].is_secret() && !m[1].is_secret());
    assert_eq!(m[2].redacted(), PgMessage::Password { password: Bytes::from_static(b"***") });
    assert_eq!(xs(&ev)[0].1.auth_method, Some("md5"));
}

#[test]
fn data_rows_runs_coalesce_with_a_sample() {
    let mut resp = rowdesc(&[("n", 23)]);
    for i in 0..1000 {
        resp.extend(row(&[Some(i.to_string().as_bytes())]));
    }
    resp.extend(cc("SELECT 1000"));
    resp.extend(z());
    let chunks = vec![
        Chunk { dir: C, ts: 1, data: [startup(), fe(|b| e::query(b, b"q"))].concat() },
        Chunk { dir: S, ts: 2, data: resp },
    ];
    let ev = common::assert_split_invariant(Protocol::Postgres, Limits::default(), &chunks, 97);
    let runs: Vec<_> = msgs(&ev).into_iter().filter(|m| matches!(m, PgMessage::DataRows { .. })).collect();
    assert_eq!(runs.len(), 1);
    let PgMessage::DataRows { count, rows, .. } = &runs[0] else { unreachable!() };
    assert_eq!((*count, rows.len()), (1000, SAMPLE_ROWS));
    assert_eq!(rows[9], [PgValue::Text("9".into())]);
}
