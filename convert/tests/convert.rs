//! `convert`: real captured conversations (`wire/fixtures`) through
//! `wire::Session`, every event converted to a record, and the records
//! checked for what they say, for secrets, and for surviving a trace file.

use convert::event_to_records;
use format::{Body, Decoded, ExchangeSummary, Record};
use wire::testing::{fixtures_in as fixtures, load_fixture as load, Chunk};
use wire::{Direction, Event, Limits, Protocol, Session};

fn protocol_of(rel: &str) -> Protocol {
    match rel.split('/').next() {
        Some("http") => Protocol::Http,
        Some("pg") => Protocol::Postgres,
        Some("redis") => Protocol::Redis,
        _ => panic!("{rel}"),
    }
}

fn events_of(protocol: Protocol, chunks: &[Chunk]) -> Vec<Event> {
    let mut s = Session::new(protocol, Limits::default());
    let mut out = Vec::new();
    let mut last = 0;
    for c in chunks {
        s.feed(c.dir, &c.data, c.ts, &mut out);
        last = c.ts;
    }
    s.eof(Direction::ToServer, last + 1, &mut out);
    s.eof(Direction::ToClient, last + 1, &mut out);
    out
}

fn records(rel: &str, redact: bool) -> Vec<Record> {
    to_records(7, events_of(protocol_of(rel), &load(rel)), redact)
}

fn to_records(conn: u64, events: Vec<Event>, redact: bool) -> Vec<Record> {
    let mut out = Vec::new();
    for e in events {
        event_to_records(conn, e, redact, &mut out);
    }
    out
}

/// The one record an event of `Session::feed` (never a run) becomes.
fn one_record(conn: u64, e: Event, redact: bool) -> Record {
    let mut out = Vec::new();
    event_to_records(conn, e, redact, &mut out);
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

fn encoded(r: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    format::codec::encode_record(r, &mut out);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// True when `needle` occurs in any record, encoded or as JSON.
fn anywhere(recs: &[Record], needle: &str) -> bool {
    recs.iter().any(|r| contains(&encoded(r), needle.as_bytes()) || serde_json::to_string(r).unwrap().contains(needle))
}

fn messages(recs: &[Record]) -> impl Iterator<Item = &format::Message> {
    recs.iter().filter_map(|r| match &r.body {
        Body::Message(m) => Some(m),
        _ => None,
    })
}

fn pg_messages(recs: &[Record]) -> impl Iterator<Item = (&format::Message, &format::PgMessage)> {
    messages(recs).filter_map(|m| match &m.decoded {
        Some(Decoded::Pg(p)) => Some((m, p)),
        _ => None,
    })
}

fn pg_exchanges(recs: &[Record]) -> Vec<&format::PgExchange> {
    recs.iter()
        .filter_map(|r| match &r.body {
            Body::Exchange(format::Exchange { summary: ExchangeSummary::Pg(p), .. }) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn pgbench_simple_statements_and_queries() {
    let recs = records("pg/pgbench_simple.fx", true);
    let ex = pg_exchanges(&recs);
    let sql: Vec<&str> = ex.iter().flat_map(|e| e.statements.iter().map(String::as_str)).collect();
    let updates = sql.iter().filter(|s| s.starts_with("UPDATE pgbench_accounts SET abalance = abalance + ")).count();
    assert_eq!(updates, 20, "{sql:?}");
    assert!(sql.iter().any(|s| s.starts_with("SELECT abalance FROM pgbench_accounts WHERE aid = ")));
    assert!(sql.iter().any(|s| s.starts_with("INSERT INTO pgbench_history")));
    assert!(ex.iter().all(|e| !e.extended));
    assert!(ex.iter().flat_map(|e| &e.tags).any(|t| t == "UPDATE 1"));
    assert!(ex.iter().flat_map(|e| &e.tags).any(|t| t == "BEGIN"));
    // The SELECT returns one row each time.
    assert!(ex.iter().any(|e| e.rows == 1 && e.tags == ["SELECT 1"]));
    assert!(ex.iter().any(|e| e.txn.as_deref() == Some("T")));
    let queries = pg_messages(&recs).filter(|(m, p)| p.kind == "Query" && m.dir == format::Direction::ToServer).count();
    assert!(queries >= 20 * 7, "{queries} Query messages");
    let (_, q) = pg_messages(&recs).find(|(_, p)| p.kind == "Query").unwrap();
    assert!(q.sql.is_some());
    // The startup exchange maps with no statements.
    assert!(ex[0].statements.is_empty() && ex[0].tags.is_empty() && ex[0].txn.as_deref() == Some("I"));
    let (_, startup) = pg_messages(&recs).find(|(_, p)| p.kind == "StartupMessage").unwrap();
    assert!(startup.fields.iter().any(|(k, v)| k == "database" && v == "test"), "{startup:?}");
    for kind in [
        "ReadyForQuery",
        "CommandComplete",
        "RowDescription",
        "DataRow",
        "AuthenticationOk",
        "ParameterStatus",
        "BackendKeyData",
    ] {
        assert!(pg_messages(&recs).any(|(_, p)| p.kind == kind), "no {kind}");
    }
    let (_, rows) = pg_messages(&recs).find(|(_, p)| p.kind == "DataRow").unwrap();
    assert_eq!(rows.row_count, Some(1));
    assert_eq!(rows.rows.len(), 1);
    assert!(rows.rows[0][0].as_deref().is_some_and(|v| v.parse::<i64>().is_ok()), "{rows:?}");
    let (_, rfq) = pg_messages(&recs).find(|(_, p)| p.kind == "ReadyForQuery").unwrap();
    assert!(matches!(rfq.fields[0].1.as_str(), "I" | "T"), "{rfq:?}");
}

#[test]
fn pgbench_extended_and_prepared() {
    for (fx, named) in [("pg/pgbench_extended.fx", false), ("pg/pgbench_prepared.fx", true)] {
        let recs = records(fx, true);
        let ex = pg_exchanges(&recs);
        let stmts: Vec<&format::PgExchange> = ex.iter().copied().filter(|e| !e.statements.is_empty()).collect();
        assert!(stmts.len() >= 20 * 7, "{fx}: {}", stmts.len());
        assert!(stmts.iter().all(|e| e.extended), "{fx}");
        assert!(
            stmts.iter().any(|e| e.statements[0].starts_with("UPDATE pgbench_accounts SET abalance = abalance + $1")),
            "{fx}"
        );
        let parses: Vec<&format::PgMessage> =
            pg_messages(&recs).map(|(_, p)| p).filter(|p| p.kind == "Parse").collect();
        assert!(parses.iter().any(|p| p.sql.as_deref().is_some_and(|s| s.contains("pgbench_accounts"))), "{fx}");
        let binds: Vec<&format::PgMessage> = pg_messages(&recs).map(|(_, p)| p).filter(|p| p.kind == "Bind").collect();
        assert!(binds.len() >= 20 * 5, "{fx}");
        // Parameters as text: the UPDATE binds (delta, aid).
        assert!(binds
            .iter()
            .any(|b| b.params.len() == 2
                && b.params.iter().all(|v| v.as_deref().is_some_and(|t| t.parse::<i64>().is_ok()))));
        if named {
            assert!(parses.iter().all(|p| p.statement.as_deref().is_some_and(|s| s.starts_with("P_"))), "{parses:?}");
            assert!(binds.iter().all(|b| b.statement.as_deref().is_some_and(|s| s.starts_with("P_"))));
        } else {
            assert!(parses.len() >= 20 * 7);
        }
        for kind in ["Execute", "Sync", "ParseComplete", "BindComplete", "CommandComplete"] {
            assert!(pg_messages(&recs).any(|(_, p)| p.kind == kind), "{fx}: no {kind}");
        }
    }
}

#[test]
fn pgbench_pipeline_has_three_statements_per_sync() {
    let recs = records("pg/pgbench_pipeline.fx", true);
    let ex: Vec<&format::PgExchange> = pg_exchanges(&recs).into_iter().filter(|e| !e.statements.is_empty()).collect();
    assert_eq!(ex.len(), 5);
    for e in ex {
        assert_eq!(e.statements.len(), 3, "{e:?}");
        assert!(e.statements[0].starts_with("SELECT abalance FROM pgbench_accounts"));
        assert!(e.statements[2].starts_with("SELECT count(*) FROM pgbench_branches"));
        assert_eq!(e.tags.len(), 3);
        assert_eq!(e.rows, 2);
    }
}

#[test]
fn pg_errors_notifications_and_copy() {
    let recs = records("pg/psql.fx", true);
    let (_, err) = pg_messages(&recs).find(|(_, p)| p.kind == "ErrorResponse").unwrap();
    let e = err.error.as_ref().unwrap();
    assert_eq!((e.severity.as_str(), e.code.as_str()), ("ERROR", "42P01"));
    assert!(e.message.contains("no_such_table"));
    assert!(pg_exchanges(&recs).iter().any(|x| x.error.as_ref().is_some_and(|e| e.code == "42P01")));
    let (_, rd) = pg_messages(&recs).find(|(_, p)| p.kind == "RowDescription").unwrap();
    assert_eq!(rd.columns, ["one", "t"]);

    let recs = records("pg/listen_notify.fx", true);
    let (_, n) = pg_messages(&recs).find(|(_, p)| p.kind == "NotificationResponse").unwrap();
    assert!(
        n.fields.contains(&("channel".into(), "ch1".into())) && n.fields.contains(&("payload".into(), "hello".into()))
    );

    let recs = records("pg/copy_in.fx", true);
    assert!(pg_messages(&recs).any(|(_, p)| p.kind == "CopyInResponse"));
    assert!(pg_messages(&recs).any(|(_, p)| p.kind == "CopyData"));
    let recs = records("pg/tokio_postgres.fx", true);
    let (_, e) = pg_messages(&recs).find(|(_, p)| p.kind == "ErrorResponse").unwrap();
    assert_eq!(e.error.as_ref().unwrap().code, "22012");
    // Binary parameters of an unknown type show as hex.
    assert!(
        pg_messages(&recs).any(|(_, p)| p.kind == "Bind" && p.params.iter().flatten().any(|v| v.starts_with("\\x")))
    );
    let recs = records("pg/big_result.fx", true);
    let total: u64 = pg_messages(&recs).filter(|(_, p)| p.kind == "DataRow").filter_map(|(_, p)| p.row_count).sum();
    assert_eq!(total, 5000);
    assert!(pg_exchanges(&recs).iter().any(|e| e.rows == 5000 && e.tags == ["SELECT 5000"]));
}

/// The secret messages of an auth fixture: (kind, record) pairs with
/// `redact` on and off, matched by position.
fn secret_pairs(fx: &str) -> Vec<(format::Message, format::Message)> {
    let on = records(fx, true);
    let off = records(fx, false);
    assert_eq!(on.len(), off.len());
    let secret = ["PasswordMessage", "SASLInitialResponse", "SASLResponse", "GSSResponse"];
    let mut pairs = Vec::new();
    for (a, b) in on.iter().zip(&off) {
        if let (Body::Message(a), Body::Message(b)) = (&a.body, &b.body) {
            let is_secret = matches!(&b.decoded, Some(Decoded::Pg(p)) if secret.contains(&p.kind.as_str()));
            assert_eq!(a.redacted, is_secret, "{fx}: {a:?}");
            assert!(!b.redacted);
            if is_secret {
                pairs.push((a.clone(), b.clone()));
            } else {
                assert_eq!(a, b, "{fx}: only secret messages change");
            }
        }
    }
    for (a, b) in &pairs {
        // Same length, header intact, body all stars.
        let (ab, bb) = (a.data.bytes.as_bytes(), b.data.bytes.as_bytes());
        assert_eq!(ab.len(), bb.len());
        assert_eq!(ab[..5], bb[..5]);
        assert!(ab[5..].iter().all(|&c| c == b'*'), "{fx}: {:?}", a.data);
        assert_eq!(a.data.len, b.data.len);
    }
    pairs
}

fn field<'a>(m: &'a format::Message, name: &str) -> Option<&'a str> {
    match &m.decoded {
        Some(Decoded::Pg(p)) => p.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()),
        _ => None,
    }
}

#[test]
fn cleartext_password_is_redacted() {
    let pairs = secret_pairs("pg/cleartext.fx");
    assert_eq!(pairs.len(), 1);
    assert_eq!(field(&pairs[0].1, "password"), Some("plainpass"));
    assert_eq!(field(&pairs[0].0, "password"), Some("***"));
    assert!(!anywhere(&records("pg/cleartext.fx", true), "plainpass"));
    assert!(anywhere(&records("pg/cleartext.fx", false), "plainpass"));
}

#[test]
fn md5_hash_is_redacted() {
    let pairs = secret_pairs("pg/md5.fx");
    assert_eq!(pairs.len(), 1);
    let hash = field(&pairs[0].1, "password").unwrap().to_owned();
    assert!(hash.starts_with("md5") && hash.len() == 35, "{hash}");
    // It is the password's hash with the server's salt.
    let off = records("pg/md5.fx", false);
    let salt_hex = pg_messages(&off)
        .find(|(_, p)| p.kind == "AuthenticationMD5Password")
        .and_then(|(m, _)| field(m, "salt").map(str::to_owned))
        .unwrap();
    let salt: Vec<u8> = (0..4).map(|i| u8::from_str_radix(&salt_hex[2 + 2 * i..4 + 2 * i], 16).unwrap()).collect();
    assert_eq!(wire::pg::auth::md5_password(b"md5u", b"md5pass", salt.try_into().unwrap()), hash);
    assert!(!anywhere(&records("pg/md5.fx", true), &hash));
    assert!(anywhere(&off, &hash));
    assert!(!anywhere(&off, "md5pass"));
}

#[test]
fn scram_responses_are_redacted() {
    let pairs = secret_pairs("pg/scram.fx");
    assert_eq!(pairs.len(), 2, "SASLInitialResponse and SASLResponse");
    // The client-final message carries the proof.
    let proof = field(&pairs[1].1, "data").unwrap();
    let p = proof.split(',').find(|kv| kv.starts_with("p=")).unwrap().to_owned();
    assert!(p.len() > 20);
    assert_eq!(field(&pairs[1].0, "data"), Some("***"));
    assert_eq!(field(&pairs[0].0, "mechanism"), Some("SCRAM-SHA-256"));
    assert!(!anywhere(&records("pg/scram.fx", true), &p));
    assert!(anywhere(&records("pg/scram.fx", false), &p));
    assert!(!anywhere(&records("pg/scram.fx", false), "scrampass"));
}

#[test]
fn redis_auth_is_redacted() {
    const PW: &str = "s3cret-password";
    let on = records("redis/auth-1.fx", true);
    let off = records("redis/auth-1.fx", false);
    assert!(!anywhere(&on, PW));
    assert!(anywhere(&off, PW));
    let redacted: Vec<&format::Message> = messages(&on).filter(|m| m.redacted).collect();
    assert_eq!(redacted.len(), 2, "AUTH and HELLO ... AUTH");
    for m in &redacted {
        let raw = m.data.bytes.as_bytes();
        assert!(contains(raw, b"$15\r\n***************\r\n"), "{:?}", m.data);
        assert_eq!(raw.len() as u64, m.data.len);
    }
    let hello = redacted.iter().find(|m| contains(m.data.bytes.as_bytes(), b"HELLO")).unwrap();
    let Some(Decoded::Redis(d)) = &hello.decoded else { panic!() };
    let args: Vec<String> = d.args.iter().map(|a| a.to_text().into_owned()).collect();
    assert_eq!(args, ["HELLO", "3", "AUTH", "*******", "***************", "SETNAME", "fx"]);
    // Exchanges: arguments blanked too; the reply summary kept.
    let ex: Vec<&format::RedisExchange> = on
        .iter()
        .filter_map(|r| match &r.body {
            Body::Exchange(format::Exchange { summary: ExchangeSummary::Redis(x), .. }) => Some(x),
            _ => None,
        })
        .collect();
    assert_eq!(ex[0].command, "AUTH");
    assert_eq!(ex[0].args, [format::BStr::from("***************")]);
    let reply = ex[0].reply.as_ref().unwrap();
    assert_eq!(reply.kind, "error");
    assert!(reply.text.as_ref().unwrap().to_text().starts_with("ERR AUTH"));
    assert_eq!(ex[1].command, "HELLO");
    assert_eq!(ex[1].reply.as_ref().unwrap().kind, "map");
    assert_eq!(ex[1].reply.as_ref().unwrap().len, Some(7));
    assert_eq!(ex[2].command, "PING");
    assert_eq!(ex[2].reply.as_ref().unwrap().text, Some(format::BStr::from("PONG")));
}

#[test]
fn redis_commands_and_replies() {
    let kinds = [
        "simple",
        "error",
        "integer",
        "bulk",
        "null",
        "array",
        "map",
        "set",
        "push",
        "bool",
        "double",
        "big_number",
        "verbatim",
    ];
    for fx in fixtures("redis") {
        for r in records(&fx, true) {
            let reply = match &r.body {
                Body::Message(format::Message { decoded: Some(Decoded::Redis(m)), .. }) => {
                    assert!(["command", "reply", "push"].contains(&m.kind.as_str()));
                    assert_eq!(m.kind == "command", m.reply.is_none(), "{fx}: {m:?}");
                    m.reply.clone()
                }
                Body::Exchange(format::Exchange { summary: ExchangeSummary::Redis(x), .. }) => {
                    assert!(!x.command.is_empty() && x.command.bytes().all(|b| !b.is_ascii_lowercase()), "{fx}: {x:?}");
                    x.reply.clone()
                }
                _ => None,
            };
            if let Some(rep) = reply {
                assert!(kinds.contains(&rep.kind.as_str()), "{fx}: {rep:?}");
                assert!(rep.text.as_ref().is_none_or(|t| t.0.len() <= convert::TEXT_CAP));
            }
        }
    }
    let recs = records("redis/cli-basic-1.fx", true);
    assert!(recs.iter().any(|r| matches!(&r.body, Body::Exchange(format::Exchange { summary: ExchangeSummary::Redis(x), .. }) if x.command == "SET")));
    let recs = records("redis/pubsub-resp3-1.fx", true);
    assert!(messages(&recs).any(|m| matches!(&m.decoded, Some(Decoded::Redis(r)) if r.kind == "push")));
}

#[test]
fn http_authorization_is_blanked_in_place() {
    let req = wire::http::encode_request(
        "POST",
        "/invoke?x=1",
        &[
            ("Host", "fn.local"),
            ("Authorization", "Bearer secret"),
            ("Cookie", "sid=abc; t=1"),
            ("Content-Type", "application/json"),
        ],
        Some(b"{\"a\":1}"),
    );
    let resp = wire::http::encode_response(200, "OK", &[("Set-Cookie", "sid=xyz; HttpOnly")], Some(b"ok"));
    let chunks = vec![Chunk { dir: Direction::ToServer, ts: 10, data: req.clone() }, Chunk { dir: Direction::ToClient, ts: 20, data: resp.clone() }];
    let recs: Vec<Record> =
        to_records(1, events_of(Protocol::Http, &chunks), true);
    let msgs: Vec<&format::Message> = messages(&recs).collect();
    assert_eq!(msgs.len(), 2);
    let expect = String::from_utf8(req.clone())
        .unwrap()
        .replace("Bearer secret", "*************")
        .replace("sid=abc; t=1", "************");
    assert_eq!(msgs[0].data.bytes.as_bytes(), expect.as_bytes());
    assert!(msgs[0].redacted);
    assert_eq!(msgs[0].data.len, req.len() as u64);
    assert_eq!(
        msgs[0].decoded,
        Some(Decoded::HttpRequest(format::HttpRequest {
            method: "POST".into(),
            target: "/invoke?x=1".into(),
            version: 1,
            content_type: Some("application/json".into()),
            body_len: 7,
            chunked: false,
        }))
    );
    let expect = String::from_utf8(resp.clone()).unwrap().replace("sid=xyz; HttpOnly", "*****************");
    assert_eq!(msgs[1].data.bytes.as_bytes(), expect.as_bytes());
    assert!(msgs[1].redacted);
    let Some(Decoded::HttpResponse(r)) = &msgs[1].decoded else { panic!() };
    assert_eq!((r.status, r.reason.as_str(), r.body_len), (200, "OK", 2));
    assert!(!anywhere(&recs, "secret") && !anywhere(&recs, "sid="));
    let Body::Exchange(x) = &recs[2].body else { panic!("{:?}", recs[2]) };
    assert_eq!(recs[2].ts, 10);
    assert_eq!(x.status, format::ExchangeStatus::Complete);
    assert_eq!(
        x.summary,
        ExchangeSummary::Http(format::HttpExchange {
            method: "POST".into(),
            target: "/invoke?x=1".into(),
            host: Some("fn.local".into()),
            status: Some(200),
            request_body_len: 7,
            response_body_len: 2,
        })
    );
    // Not redacted: bytes as sent.
    let plain: Vec<Record> =
        to_records(1, events_of(Protocol::Http, &chunks), false);
    let Body::Message(m) = &plain[0].body else { panic!() };
    assert_eq!(m.data.bytes.as_bytes(), &req[..]);
    assert!(!m.redacted);
}

#[test]
fn http_fixtures_map() {
    let recs = records("http/curl-keepalive.fx", true);
    let n_req = messages(&recs).filter(|m| matches!(m.decoded, Some(Decoded::HttpRequest(_)))).count();
    let n_ex = recs.iter().filter(|r| matches!(r.body, Body::Exchange(_))).count();
    assert!(n_req >= 2 && n_req == n_ex, "{n_req} requests, {n_ex} exchanges");
    let recs = records("http/python-upgrade.fx", true);
    assert!(recs.iter().any(|r| matches!(&r.body, Body::Fallback(f) if !f.reason.is_empty())));
    assert!(messages(&recs).any(|m| m.decoded.is_none()), "opaque chunks after the upgrade");
    let recs = records("http/curl-chunked-response.fx", true);
    assert!(
        messages(&recs).any(|m| matches!(&m.decoded, Some(Decoded::HttpResponse(r)) if r.chunked && r.body_len > 0))
    );
}

#[test]
fn message_fields_follow_the_event() {
    for fx in ["pg/psql.fx", "redis/bench-p16-1.fx", "http/curl-big.fx"] {
        let p = protocol_of(fx);
        let events = events_of(p, &load(fx));
        for e in events {
            let r = one_record(42, e.clone(), false);
            assert_eq!(r.src, 0);
            match (e, &r.body) {
                (Event::Message(m), Body::Message(fm)) => {
                    assert_eq!((r.ts, fm.last_ts, fm.offset, fm.conn), (m.first_ts, m.last_ts, m.offset, 42));
                    assert_eq!(fm.data.bytes.as_bytes(), &m.raw.prefix[..]);
                    assert_eq!((fm.data.len, fm.data.hash), (m.raw.len, m.raw.hash));
                    assert_eq!(fm.dir == format::Direction::ToServer, m.dir == Direction::ToServer);
                }
                (Event::Exchange(x), Body::Exchange(fx)) => {
                    assert_eq!(r.ts, x.timings.request_first);
                    assert_eq!(
                        (fx.request_last, fx.response_first, fx.response_last),
                        (x.timings.request_last, x.timings.response_first, x.timings.response_last)
                    );
                    assert_eq!((fx.request_bytes, fx.response_bytes), (x.request_bytes, x.response_bytes));
                    assert!(fx.attribution.is_none());
                }
                (Event::Opaque { offset, ts, .. }, Body::Fallback(f)) => assert_eq!((r.ts, f.offset), (ts, offset)),
                (e, b) => panic!("{e:?} became {b:?}"),
            }
        }
    }
}

#[test]
fn every_fixture_round_trips_through_a_trace() {
    let mut all = Vec::new();
    for dir in ["http", "pg", "redis"] {
        for fx in fixtures(dir) {
            for redact in [true, false] {
                all.extend(records(&fx, redact));
            }
        }
    }
    assert!(all.len() > 10_000, "{}", all.len());
    let header = format::Header::new("test", "convert");
    let mut w = format::Writer::new(Vec::new(), &header, format::WriterOptions::default()).unwrap();
    for r in &all {
        w.write(r).unwrap();
    }
    let file = w.finish().unwrap();
    let back: Vec<Record> = format::Reader::new(&file[..]).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(back.len(), all.len());
    for (a, b) in all.iter().zip(&back) {
        assert_eq!(a, b);
    }
}

/// What the recorder may do to a record it is handed (it attributes an
/// exchange), and more: junk in its fields (every field of a PostgreSQL
/// summary, some of the others), so that a field the next conversion over
/// the record leaves as it was shows.
fn scribble(r: &mut Record) {
    r.ts = u64::MAX;
    match &mut r.body {
        Body::Exchange(x) => {
            x.attribution = Some(format::Attribution { invocation: 99, method: format::AttributionMethod::Sqlcommenter });
            x.response_first = Some(1);
            match &mut x.summary {
                ExchangeSummary::Http(h) => {
                    h.target.push_str("junk");
                    h.host = Some("junk".into());
                }
                ExchangeSummary::Pg(p) => {
                    let format::PgExchange { statements, extended, tags, rows, error, txn } = p;
                    statements.push("junk".into());
                    *extended = !*extended;
                    tags.push("junk".into());
                    *rows += 1;
                    *error = Some(format::PgError { detail: Some("junk".into()), ..Default::default() });
                    *txn = Some("junk".into());
                }
                ExchangeSummary::Redis(_) => {}
            }
        }
        Body::Message(m) => {
            m.redacted = !m.redacted;
            m.data.hash = Some(1);
            match &mut m.decoded {
                Some(Decoded::Redis(d)) => {
                    d.args.push(format::BStr::from("junk"));
                    d.reply.get_or_insert_with(Default::default).integer = Some(-1);
                }
                Some(Decoded::HttpRequest(d)) => {
                    d.target.push_str("junk");
                    d.content_type = Some("junk".into());
                }
                Some(Decoded::HttpResponse(d)) => {
                    d.reason.push_str("junk");
                    d.content_type = None;
                }
                Some(Decoded::Pg(d)) => {
                    let format::PgMessage { kind, sql, statement, params, columns, rows, row_count, tag, error, fields } = d;
                    kind.push_str("junk");
                    *sql = Some("junk".into());
                    *statement = Some("junk".into());
                    params.push(Some("junk".into()));
                    columns.push("junk".into());
                    rows.push(vec![None]);
                    rows[0].push(Some("junk".into()));
                    *row_count = Some(u64::MAX);
                    *tag = Some("junk".into());
                    *error = Some(format::PgError { hint: Some("junk".into()), ..Default::default() });
                    fields.push(("junk".into(), "junk".into()));
                }
                None => {}
            }
        }
        _ => {}
    }
}

/// One `Converter` over every fixture's events in a row (Redis, HTTP and
/// PostgreSQL ones write over the records of the commands, replies,
/// requests, responses, messages and exchanges before them: `SET` then
/// `GET`, text replies then nulls, `AUTH` redacted then a plain command, a
/// request with a content type then one without, a Bind then an Execute)
/// gives exactly the records fresh conversions give, even though its sink
/// [`scribble`]s on each record it is handed.
#[test]
fn a_reused_converter_carries_nothing_over() {
    let mut events = Vec::new();
    for dir in ["redis", "http", "pg"] {
        for fx in fixtures(dir) {
            events.extend(events_of(protocol_of(&fx), &load(&fx)));
        }
    }
    for redact in [true, false] {
        let fresh = to_records(3, events.clone(), redact);
        let mut reused = Vec::new();
        let mut converter = convert::Converter::new(redact);
        for e in events.clone() {
            converter.for_each_record(3, e, &mut |r| {
                reused.push(r.clone());
                scribble(r);
            });
        }
        let exchanges = |summary: fn(&ExchangeSummary) -> bool| {
            fresh.iter().filter(|r| matches!(&r.body, Body::Exchange(x) if summary(&x.summary))).count()
        };
        assert!(exchanges(|s| matches!(s, ExchangeSummary::Redis(_))) > 100);
        assert!(exchanges(|s| matches!(s, ExchangeSummary::Http(_))) > 10);
        assert!(exchanges(|s| matches!(s, ExchangeSummary::Pg(_))) > 100);
        assert_eq!(fresh.len(), reused.len());
        for (i, (a, b)) in fresh.iter().zip(&reused).enumerate() {
            assert_eq!(a, b, "record {i} (redact {redact})");
        }
    }
}

/// The PostgreSQL records of one `Converter` kept over every PostgreSQL
/// fixture in turn, scribbled on as above, equal fresh conversions of the
/// same events, fixture by fixture and record by record; the secret
/// messages of the authentication fixtures among them, redacted or not.
#[test]
fn pg_fixtures_convert_alike_fresh_and_reused() {
    for redact in [true, false] {
        let mut converter = convert::Converter::new(redact);
        let (mut n_messages, mut n_exchanges, mut n_redacted) = (0, 0, 0);
        for fx in fixtures("pg") {
            let events = events_of(Protocol::Postgres, &load(&fx));
            let fresh = to_records(4, events.clone(), redact);
            let mut reused = Vec::new();
            for e in events {
                converter.for_each_record(4, e, &mut |r| {
                    reused.push(r.clone());
                    scribble(r);
                });
            }
            assert_eq!(fresh.len(), reused.len(), "{fx}");
            for (i, (a, b)) in fresh.iter().zip(&reused).enumerate() {
                assert_eq!(a, b, "{fx}: record {i} (redact {redact})");
            }
            n_messages += pg_messages(&fresh).count();
            n_exchanges += pg_exchanges(&fresh).len();
            n_redacted += messages(&fresh).filter(|m| m.redacted).count();
        }
        assert!(n_messages > 3000 && n_exchanges > 500, "{n_messages} messages, {n_exchanges} exchanges");
        assert_eq!(n_redacted, if redact { 4 } else { 0 }, "cleartext, md5 and the two SCRAM responses");
    }
}

/// The records the `Converter` makes straight from runs (`feed_runs`)
/// equal those of the per-message events (`feed`), in the same order: on
/// every Redis fixture, and on a pipeline whose one-read runs hold secrets
/// (`AUTH`, `CONFIG SET requirepass`, `MIGRATE ... AUTH`), a lower-case
/// name, and replies of many shapes; redacted and not.
#[test]
fn redis_runs_convert_like_their_events() {
    let commands: &[&[&str]] = &[
        &["AUTH", "s3cret"],
        &["get", "k"],
        &["CONFIG", "SET", "requirepass", "hunter2"],
        &["MIGRATE", "h", "6379", "", "0", "5000", "AUTH", "pw", "KEYS", "a"],
        &["INCR", "n"],
        &["LRANGE", "l", "0", "-1"],
        &["GET", "missing"],
        &["HGETALL", "h"],
    ];
    let replies = b"-WRONGPASS invalid\r\n$3\r\nabc\r\n+OK\r\n+NOKEY\r\n:42\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n%1\r\n+f\r\n:1\r\n";
    let mut pipeline = Vec::new();
    for c in commands {
        pipeline.extend_from_slice(&wire::redis::encode_command(&c.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()));
    }
    let conversation = vec![
        Chunk { dir: Direction::ToServer, ts: 10, data: pipeline },
        Chunk { dir: Direction::ToClient, ts: 20, data: replies.to_vec() },
    ];
    let mut cases: Vec<(String, Vec<Chunk>)> = fixtures("redis").into_iter().map(|fx| (fx.clone(), load(&fx))).collect();
    cases.push(("pipeline".into(), conversation));
    let mut runs_seen = 0;
    for (name, chunks) in &cases {
        for redact in [true, false] {
            let mut s = Session::new(Protocol::Redis, Limits::default());
            let mut runs = Vec::new();
            for c in chunks {
                s.feed_runs(c.dir, &c.data, c.ts, &mut runs);
            }
            let last = chunks.last().map_or(0, |c| c.ts) + 1;
            s.eof(Direction::ToServer, last, &mut runs);
            s.eof(Direction::ToClient, last, &mut runs);
            runs_seen += runs.iter().filter(|e| matches!(e, Event::RedisRun(_))).count();
            let convert_all = |events: Vec<Event>| {
                let mut converter = convert::Converter::new(redact);
                let mut out = Vec::new();
                for e in events {
                    converter.for_each_record(5, e, &mut |r| out.push(r.clone()));
                }
                out
            };
            let from_runs = convert_all(runs);
            let from_events = convert_all(events_of(Protocol::Redis, chunks));
            assert_eq!(from_runs.len(), from_events.len(), "{name} (redact {redact})");
            for (i, (a, b)) in from_runs.iter().zip(&from_events).enumerate() {
                assert_eq!(a, b, "{name}: record {i} (redact {redact})");
            }
            if name == "pipeline" {
                assert_eq!(from_runs.iter().filter(|r| matches!(&r.body, Body::Message(m) if m.redacted)).count(), if redact { 3 } else { 0 });
                assert_eq!(anywhere(&from_runs, "hunter2"), !redact);
            }
        }
    }
    assert!(runs_seen >= 10, "the fixtures and the pipeline take the fast path ({runs_seen} runs)");
}

/// HTTP messages skip the redaction scan of their head when the decoded
/// fields show nothing secret; the recorded bytes must be what the scan
/// gives anyway. Every HTTP fixture, and heads with secrets in odd forms:
/// lower case, no space after the colon, a space before it (responses),
/// a folded value, a password in an absolute-form target, a trailer.
#[test]
fn http_redaction_skips_only_heads_without_secrets() {
    let c = wire::Direction::ToServer;
    let s = wire::Direction::ToClient;
    let chunk = |dir, data: &[u8]| Chunk { dir, ts: 1, data: data.to_vec() };
    let crafted = vec![
        chunk(c, b"GET http://user:pw@example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        chunk(s, b"HTTP/1.1 200 OK\r\nSet-Cookie : a=b\r\nContent-Length: 0\r\n\r\n"),
        chunk(c, b"GET / HTTP/1.1\r\nauthorization: Basic eHl6\r\ncookie:a=b\r\nX-Cookie: kept\r\n\r\n"),
        chunk(s, b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b;\r\n  c=d\r\nX-Set-Cookie: kept\r\nContent-Length: 2\r\n\r\nok"),
        chunk(c, b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nAuthorization: trailer\r\n\r\n"),
        chunk(s, b"HTTP/1.1 204 No Content\r\n\r\n"),
        chunk(c, b"GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"),
        chunk(s, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ];
    let mut conversations = vec![crafted];
    conversations.extend(fixtures("http").iter().map(|fx| load(fx)));
    let (mut checked, mut secret) = (0, 0);
    for chunks in conversations {
        for event in events_of(Protocol::Http, &chunks) {
            let Event::Message(m) = &event else { continue };
            let mut scanned = m.raw.prefix.to_vec();
            let found = convert::redact::http_head(&mut scanned);
            for r in to_records(1, vec![event.clone()], true) {
                let Body::Message(rm) = r.body else { continue };
                assert_eq!((&rm.data.bytes.0, rm.redacted), (&scanned, found), "{}", String::from_utf8_lossy(&m.raw.prefix));
                checked += 1;
                secret += usize::from(found);
            }
        }
    }
    assert!(checked > 20 && secret >= 4, "{checked} messages, {secret} with secrets");
}
