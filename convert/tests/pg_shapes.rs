//! Every shape of PostgreSQL message and exchange the converter knows, made
//! by hand (the captured fixtures hold only some of them: no Flush,
//! FunctionCall, NoticeResponse, Malformed, GSS, ...), converted by one
//! `Converter` right after every other shape: each record must equal the
//! fresh conversion of its event. The `Converter` writes a PostgreSQL
//! record over the one before (`convert/src/pg.rs`), so a field one shape
//! sets and the next one does not must still come out as a fresh record
//! has it.

use bytes::Bytes;
use format::Record;
use wire::pg::{self, Authentication, CopyDirection, ErrorFields, PgExchange, PgExchangeKind, PgMessage, PgValue, Target};
use wire::{CappedBytes, Direction, Event, Exchange, ExchangeDetail, ExchangeStatus, Message, MessageKind, Timings};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Longer than `convert::TEXT_CAP`, with a two-byte character across the cap.
fn long() -> Bytes {
    let mut s = "x".repeat(convert::TEXT_CAP - 1);
    s.push_str("éé and more");
    b(&s)
}

const NOT_UTF8: &[u8] = b"caf\xe9 \xff";

fn error(detail: Option<&str>, hint: Option<&str>) -> Box<ErrorFields> {
    Box::new(ErrorFields {
        severity: b("ERROR"),
        code: b("42P01"),
        message: b("relation \"nope\" does not exist"),
        detail: detail.map(b),
        hint: hint.map(b),
        position: Some(15),
        fields: Vec::new(),
    })
}

fn column(name: &[u8]) -> pg::Column {
    pg::Column {
        name: Bytes::copy_from_slice(name),
        table_oid: 0,
        column_id: 0,
        type_oid: 23,
        type_size: 4,
        type_modifier: -1,
        format: 0,
    }
}

fn bind(portal: &str, statement: &str, param_formats: Vec<i16>, params: Vec<Option<Bytes>>) -> PgMessage {
    PgMessage::Bind(Box::new(pg::Bind { portal: b(portal), statement: b(statement), param_formats, params, result_formats: Vec::new() }))
}

/// One message of every kind, several of some (fields present or not,
/// text over the cap, bytes that are not UTF-8, binary values, NULLs).
fn messages() -> Vec<(Direction, PgMessage)> {
    use pg::tags::auth;
    use Direction::{ToClient as S, ToServer as C};
    let startup = |protocol, params: &[(&str, Bytes)]| {
        PgMessage::Startup(pg::Startup { protocol, params: params.iter().map(|(k, v)| (b(k), v.clone())).collect() })
    };
    vec![
        (C, PgMessage::SslRequest),
        (C, PgMessage::GssEncRequest),
        (C, startup(3 << 16, &[("user", b("alice")), ("database", b("db")), ("application_name", long())])),
        (C, startup((3 << 16) | 2, &[])),
        (C, PgMessage::CancelRequest { pid: 42, secret_key: 7 }),
        (S, PgMessage::SslResponse { accepted: true }),
        (S, PgMessage::SslResponse { accepted: false }),
        (S, PgMessage::GssEncResponse { accepted: false }),
        (S, PgMessage::Authentication(Authentication::Ok)),
        (S, PgMessage::Authentication(Authentication::CleartextPassword)),
        (S, PgMessage::Authentication(Authentication::Md5Password { salt: [1, 2, 0xab, 0xff] })),
        (S, PgMessage::Authentication(Authentication::Sasl { mechanisms: vec![b("SCRAM-SHA-256"), b("SCRAM-SHA-256-PLUS")] })),
        (S, PgMessage::Authentication(Authentication::SaslContinue { data: b("r=abc,s=c2FsdA==,i=4096") })),
        (S, PgMessage::Authentication(Authentication::SaslFinal { data: long() })),
        (S, PgMessage::Authentication(Authentication::Other { code: auth::KERBEROS_V5, data: Bytes::new() })),
        (S, PgMessage::Authentication(Authentication::Other { code: auth::GSS, data: Bytes::new() })),
        (S, PgMessage::Authentication(Authentication::Other { code: auth::GSS_CONTINUE, data: b("tok") })),
        (S, PgMessage::Authentication(Authentication::Other { code: auth::SSPI, data: Bytes::new() })),
        (S, PgMessage::Authentication(Authentication::Other { code: 99, data: Bytes::from_static(NOT_UTF8) })),
        (C, PgMessage::Password { password: b("hunter2") }),
        (C, PgMessage::SaslInitialResponse { mechanism: b("SCRAM-SHA-256"), data: Some(b("n,,n=,r=nonce")) }),
        (C, PgMessage::SaslInitialResponse { mechanism: b("PLAIN"), data: None }),
        (C, PgMessage::SaslResponse { data: b("c=biws,r=nonce,p=proof") }),
        (C, PgMessage::GssResponse { data: Bytes::from_static(NOT_UTF8) }),
        (S, PgMessage::ParameterStatus { name: b("application_name"), value: Bytes::from_static(NOT_UTF8) }),
        (S, PgMessage::BackendKeyData { pid: 1234, secret_key: 987654321 }),
        (S, PgMessage::ReadyForQuery { status: pg::TransactionStatus::Idle }),
        (S, PgMessage::ReadyForQuery { status: pg::TransactionStatus::InTransaction }),
        (S, PgMessage::ReadyForQuery { status: pg::TransactionStatus::Failed }),
        (S, PgMessage::ReadyForQuery { status: pg::TransactionStatus::Unknown(0xff) }),
        (S, PgMessage::NegotiateProtocolVersion { minor: 0, unrecognized: vec![b("_pq_.a"), b("_pq_.b")] }),
        (C, PgMessage::Query { sql: b("select 1") }),
        (C, PgMessage::Query { sql: Bytes::from([&long()[..], NOT_UTF8].concat()) }),
        (C, PgMessage::Parse { name: b("s1"), sql: b("select $1::int, $2"), param_types: vec![23, 25] }),
        (C, PgMessage::Parse { name: Bytes::new(), sql: b("begin"), param_types: Vec::new() }),
        (C, bind("", "s1", Vec::new(), vec![Some(b("1")), None, Some(long())])),
        (C, bind("p", "", vec![1], vec![Some(Bytes::from_static(&[0, 0, 0, 7])), Some(Bytes::from(vec![0xab; 200]))])),
        (C, bind("", "", vec![0, 1], vec![Some(Bytes::from_static(NOT_UTF8)), None])),
        (C, PgMessage::Describe { target: Target::Statement, name: b("s1") }),
        (C, PgMessage::Describe { target: Target::Portal, name: b("p") }),
        (C, PgMessage::Execute { portal: Bytes::new(), max_rows: 0 }),
        (C, PgMessage::Execute { portal: b("p"), max_rows: 10 }),
        (C, PgMessage::Sync),
        (C, PgMessage::Flush),
        (C, PgMessage::Close { target: Target::Statement, name: b("s1") }),
        (C, PgMessage::Close { target: Target::Portal, name: b("p") }),
        (
            C,
            PgMessage::FunctionCall {
                function: 1598,
                arg_formats: vec![1],
                args: vec![Some(Bytes::from_static(&[1, 2])), None],
                result_format: 1,
            },
        ),
        (C, PgMessage::Terminate),
        (S, PgMessage::ParseComplete),
        (S, PgMessage::BindComplete),
        (S, PgMessage::CloseComplete),
        (S, PgMessage::ParameterDescription { types: vec![23, 25, 1043] }),
        (S, PgMessage::ParameterDescription { types: Vec::new() }),
        (S, PgMessage::RowDescription { columns: vec![column(b"id"), column(b"na\xefve"), column(b"")] }),
        (S, PgMessage::NoData),
        (S, PgMessage::PortalSuspended),
        (
            S,
            PgMessage::DataRows {
                count: 12,
                len: 300,
                rows: vec![
                    vec![
                        PgValue::Text("1".into()),
                        PgValue::Null,
                        PgValue::Raw { type_oid: 17, format: 1, data: Bytes::from(vec![0xcd; 300]) },
                    ],
                    vec![PgValue::Text(String::from_utf8_lossy(&long()).into_owned())],
                    Vec::new(),
                ],
            },
        ),
        (S, PgMessage::DataRows { count: 1, len: 11, rows: vec![vec![PgValue::Text("x".into())]] }),
        (S, PgMessage::CommandComplete { tag: b("SELECT 2") }),
        (S, PgMessage::EmptyQueryResponse),
        (S, PgMessage::CopyResponse(pg::CopyResponse { direction: CopyDirection::In, format: 0, column_formats: vec![0, 0] })),
        (S, PgMessage::CopyResponse(pg::CopyResponse { direction: CopyDirection::Out, format: 1, column_formats: vec![1] })),
        (S, PgMessage::CopyResponse(pg::CopyResponse { direction: CopyDirection::Both, format: 0, column_formats: Vec::new() })),
        (C, PgMessage::CopyData { count: 3, len: 100 }),
        (C, PgMessage::CopyDone),
        (C, PgMessage::CopyFail { message: long() }),
        (S, PgMessage::FunctionCallResponse { value: Some(long()) }),
        (S, PgMessage::FunctionCallResponse { value: None }),
        (S, PgMessage::ErrorResponse(error(Some("detail"), None))),
        (S, PgMessage::NoticeResponse(error(None, Some("hint")))),
        (S, PgMessage::NotificationResponse { pid: 5, channel: b("ch"), payload: long() }),
        (S, PgMessage::Malformed { tag: b'Q', reason: "body too short" }),
        (C, PgMessage::Malformed { tag: 0, reason: "bad startup packet" }),
    ]
}

fn statement(sql: Option<&str>, tags: &[Option<&str>]) -> pg::PgStatement {
    pg::PgStatement {
        sql: sql.map(b),
        statement: Bytes::new(),
        portal: Bytes::new(),
        params: Vec::new(),
        param_types: Vec::new(),
        results: tags
            .iter()
            .map(|t| pg::PgResult { command_tag: t.map(b), rows_returned: 3, ..Default::default() })
            .collect(),
        error: None,
    }
}

/// Exchanges of every kind: with statements, tags and rows or none, with
/// an error or not, with a closing transaction status or not.
fn exchanges() -> Vec<PgExchange> {
    let exchange = |kind, statements: Vec<pg::PgStatement>| PgExchange {
        kind,
        statement_count: statements.len() as u64,
        statements,
        prepared: Vec::new(),
        error: None,
        notices: Vec::new(),
        transaction_status: Some(pg::TransactionStatus::Idle),
        startup: None,
        auth_method: None,
        ssl_requested: false,
        function: None,
    };
    let mut failed = exchange(PgExchangeKind::Simple, vec![statement(Some("select * from nope"), &[None])]);
    failed.error = Some(*error(Some("detail"), Some("hint")));
    failed.transaction_status = Some(pg::TransactionStatus::Failed);
    let mut unanswered = exchange(PgExchangeKind::Startup, Vec::new());
    unanswered.transaction_status = None;
    vec![
        exchange(PgExchangeKind::Simple, vec![statement(Some("begin; select 1"), &[Some("BEGIN"), Some("SELECT 1")])]),
        exchange(
            PgExchangeKind::Extended,
            vec![statement(Some("select $1"), &[Some("SELECT 1")]), statement(None, &[None]), statement(Some("x\u{e9}"), &[])],
        ),
        failed,
        unanswered,
        exchange(PgExchangeKind::FunctionCall, Vec::new()),
        exchange(PgExchangeKind::Cancel, Vec::new()),
        exchange(PgExchangeKind::Terminate, Vec::new()),
    ]
}

/// Every shape as an event, with placements, sizes and timings that differ
/// from one event to the next.
pub fn shapes() -> Vec<Event> {
    let mut events = Vec::new();
    for (i, (dir, m)) in messages().into_iter().enumerate() {
        let i = i as u64;
        // The message's Debug text stands for its bytes: secrets show in it.
        let raw = format!("{}{m:?}", if i % 2 == 1 { "p\0\0\0\0" } else { "" });
        let hash = (i % 3 == 1).then_some(i);
        events.push(Event::Message(Message {
            dir,
            first_ts: 100 * i,
            last_ts: 100 * i + 7,
            offset: 1000 * i,
            raw: CappedBytes { len: raw.len() as u64 + i % 3, prefix: Bytes::from(raw), hash },
            kind: MessageKind::Pg(m),
        }));
    }
    for (i, x) in exchanges().into_iter().enumerate() {
        let i = i as u64;
        let answered = x.transaction_status.is_some();
        events.push(Event::Exchange(Box::new(Exchange {
            timings: Timings {
                request_first: 10 * i,
                request_last: 10 * i + 1,
                response_first: answered.then_some(10 * i + 2),
                response_last: answered.then_some(10 * i + 3),
            },
            request_bytes: 40 + i,
            response_bytes: if answered { 80 + i } else { 0 },
            status: if answered { ExchangeStatus::Complete } else { ExchangeStatus::Unanswered },
            detail: ExchangeDetail::Pg(x),
        })));
    }
    events
}

fn fresh(e: &Event, redact: bool) -> Record {
    let mut out = Vec::new();
    convert::event_to_records(1, e.clone(), redact, &mut out);
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

#[test]
fn every_pg_shape_converts_over_every_other_as_fresh() {
    let events = shapes();
    for redact in [true, false] {
        let fresh: Vec<Record> = events.iter().map(|e| fresh(e, redact)).collect();
        let kinds: std::collections::BTreeSet<&str> = fresh
            .iter()
            .filter_map(|r| match &r.body {
                format::Body::Message(format::Message { decoded: Some(format::Decoded::Pg(p)), .. }) => Some(p.kind.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds.len(), 56, "every kind the converter names: {kinds:?}");
        let mut converter = convert::Converter::new(redact);
        let mut convert = |e: &Event| {
            let mut got = None;
            converter.for_each_record(1, e.clone(), &mut |r| got = Some(r.clone()));
            got.expect("one record")
        };
        for (i, before) in events.iter().enumerate() {
            for (j, after) in events.iter().enumerate() {
                convert(before);
                assert_eq!(convert(after), fresh[j], "{after:?} after {before:?} (redact {redact}, {i} {j})");
            }
        }
        // Redaction applies to the reused records as to fresh ones.
        let secrets = fresh.iter().filter(|r| matches!(&r.body, format::Body::Message(m) if m.redacted)).count();
        assert_eq!(secrets, if redact { 5 } else { 0 });
    }
}
