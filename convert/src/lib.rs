//! `convert`: decoded wire events ([`wire::Event`]) to trace records
//! ([`format::Record`]). Both the recorder (`oltrace`) and the replayer
//! (`olreplay`, which decodes the responses it gets the same way) use it;
//! it lives apart from `tracer` so `olreplay` does not link what recording
//! needs (libpcap).
//!
//! Modules: this file converts; `redis` and `http` convert Redis and HTTP
//! messages and exchanges over earlier records, reusing their allocations
//! (for the [`Converter`]), through the shared setters of `fill`;
//! [`redact`] blanks secrets in recorded bytes
//! (same length, in place); [`fingerprint`] normalises SQL to a query
//! fingerprint (literals to `?`), the key replay reports and the analyzer
//! group queries by.
//!
//! The recording proxy feeds each connection's bytes to a [`wire::Session`]
//! and turns every event it gets into records with [`event_to_records`]:
//!
//! - a message becomes a [`format::Message`]: its exact bytes (capped as the
//!   decoder capped them) and a [`format::Decoded`] summary;
//! - an exchange becomes a [`format::Exchange`] with the protocol's
//!   [`format::ExchangeSummary`] (attribution is left to the proxy);
//! - a switch to opaque mode becomes a [`format::Fallback`];
//! - a run of Redis messages ([`wire::Event::RedisRun`]) becomes the
//!   records of the events it expands to, made straight from the run.
//!
//! With `redact`, secrets are blanked in what is recorded (see
//! [`crate::redact`]): PostgreSQL password/SASL/GSS messages, the values of
//! HTTP `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie`
//! headers, and the Redis arguments [`wire::redis::RedisCommand::secret_args`]
//! flags (`AUTH`, `HELLO ... AUTH`, `MIGRATE ... AUTH|AUTH2`, `CONFIG SET
//! requirepass|masterauth`, `ACL SETUSER` passwords).

use std::borrow::Cow;

use format::{BStr, Payload};
use wire::pg::{self, PgMessage, PgValue};
use wire::redis::RedisMessage;

mod fill;
pub mod fingerprint;
mod http;
pub mod redact;
mod redis;

/// How many bytes of a Redis reply's text, a Redis argument, a PostgreSQL
/// parameter or a sample column value a decoded summary keeps. (The exact
/// bytes are in the message's `data`.)
pub const TEXT_CAP: usize = 256;
/// How many Redis arguments a decoded summary keeps (command name included).
pub const MAX_ARGS: usize = 64;

/// Turns one decoded event of connection `conn` into the record the trace
/// holds. `redact`: blank secrets in what is recorded (never in what is
/// forwarded); the message then says `redacted: true`.
///
/// Record times: a message's `ts` is its first byte, an exchange's the
/// request's first byte, a fallback's the moment of the switch; `src` is 0.
///
/// Messages (`decoded` is `None` for opaque chunks):
/// - HTTP: method, target, version, `Content-Type`, de-chunked body length
///   and the chunked flag of requests; status, reason and the same body
///   fields of responses.
/// - PostgreSQL: `kind` is the protocol documentation's message name
///   (`Query`, `Parse`, `Bind`, `DataRow` for a coalesced run of DataRows,
///   `AuthenticationMD5Password`, `PasswordMessage`, `StartupMessage`,
///   `SSLRequest`, `SSLResponse` for the one-byte answer, `Malformed` for a
///   message whose body did not parse, ...). `sql`, `statement`, `params`
///   (Bind and FunctionCall values as text: text-format values as sent,
///   binary ones as `\x` hex), `columns`, `rows` (the decoder's sample),
///   `row_count` (DataRow runs), `tag` and `error` (ErrorResponse and
///   NoticeResponse) where the message has them; everything else named in
///   `fields` (startup parameters, ParameterStatus, BackendKeyData `pid` and
///   `secret_key`, ReadyForQuery `status` as `I`/`T`/`E`, a notification's
///   `pid`/`channel`/`payload`, Describe/Close `target` and Execute
///   `portal`/`max_rows`, COPY `format`/`count`, SASL `mechanism`/`data`,
///   `password`, ...). Values are capped at [`TEXT_CAP`] bytes; SQL is not.
/// - Redis: `kind` `command` (arguments, name first, as sent, at most
///   [`MAX_ARGS`] of at most [`TEXT_CAP`] bytes each), `reply` or `push`
///   (a [`format::RedisReply`]: the RESP type, looking through attributes;
///   text of strings, errors, doubles, big numbers, verbatim strings and
///   booleans, capped; the integer; an aggregate's element count as its
///   header said).
///
/// Exchanges:
/// - HTTP: method, target, host, final status, de-chunked body lengths
///   (0 without a response).
/// - PostgreSQL: the SQL of each statement in order (`""` for a statement
///   prepared before the recording began), `extended` for Parse/Bind/Execute
///   exchanges, command tags, rows returned, the first error, the closing
///   transaction status. Startup, cancel, terminate and fast-path
///   function-call exchanges map too, with no statements and no tags: what
///   they carry of interest (how long the authentication took, whether it
///   failed and with which error, the transaction status) fits the common
///   fields, and the user, database and authentication method are in the
///   StartupMessage and Authentication message records of the same
///   connection.
/// - Redis: the upper-case command name, the other arguments (capped as
///   above), and the first reply's summary.
pub fn event_to_records(conn: u64, event: wire::Event, redact: bool, out: &mut Vec<format::Record>) {
    for_each_record(conn, event, redact, &mut |record| {
        // The record is the callee's; leave a cheap one in its place.
        let placeholder = format::Record { ts: 0, src: 0, body: format::Body::ConnClose(format::ConnClose::default()) };
        out.push(std::mem::replace(record, placeholder));
    });
}

/// [`event_to_records`] handing each record to `sink` by reference instead
/// of collecting them. A record is several hundred bytes: the recorder,
/// which encodes each one straight away, saves moving it into and out of
/// a vector (that was a sixth of its time on pipelined Redis).
pub fn for_each_record(conn: u64, event: wire::Event, redact: bool, sink: &mut dyn FnMut(&mut format::Record)) {
    Converter::new(redact).for_each_record(conn, event, sink);
}

/// [`for_each_record`] for a stream of events: it keeps the records it
/// last handed out for Redis commands, replies and exchanges, and for HTTP
/// requests, responses and exchanges, and writes the next ones over them,
/// reusing their allocations (`convert/src/redis.rs`, `convert/src/http.rs`).
/// The recorder holds one for its whole run.
pub struct Converter {
    redact: bool,
    command: format::Record,
    reply: format::Record,
    exchange: format::Record,
    spare: redis::Spare,
    http_request: format::Record,
    http_response: format::Record,
    http_exchange: format::Record,
}

impl Converter {
    /// `redact`: as for [`event_to_records`].
    pub fn new(redact: bool) -> Converter {
        let empty = <format::Record as format::codec::Codec>::empty;
        Converter {
            redact,
            command: empty(),
            reply: empty(),
            exchange: empty(),
            spare: redis::Spare::default(),
            http_request: empty(),
            http_response: empty(),
            http_exchange: empty(),
        }
    }

    /// Hands `sink` the records of `event`, as [`for_each_record`] does.
    /// A record `sink` gets is valid only during the call.
    pub fn for_each_record(&mut self, conn: u64, event: wire::Event, sink: &mut dyn FnMut(&mut format::Record)) {
        let redact = self.redact;
        let mut record = match event {
            wire::Event::Message(m) => match &m.kind {
                wire::MessageKind::Redis(r) => {
                    let record = if matches!(r, RedisMessage::Command(_)) { &mut self.command } else { &mut self.reply };
                    redis::fill_message(record, conn, &m, r, redact, &mut self.spare);
                    return sink(record);
                }
                wire::MessageKind::Http(h) => {
                    let record = if h.request().is_some() { &mut self.http_request } else { &mut self.http_response };
                    http::fill_message(record, conn, &m, h, redact);
                    return sink(record);
                }
                _ => message_record(conn, m, redact),
            },
            wire::Event::Exchange(e) => match &e.detail {
                wire::ExchangeDetail::Redis(r) => {
                    redis::fill_exchange(&mut self.exchange, conn, &e, r, redact, &mut self.spare);
                    return sink(&mut self.exchange);
                }
                wire::ExchangeDetail::Http(h) => {
                    http::fill_exchange(&mut self.http_exchange, conn, &e, h, redact);
                    return sink(&mut self.http_exchange);
                }
                _ => exchange_record(conn, *e, redact),
            },
            wire::Event::Opaque { reason, dir, offset, ts } => format::Record {
                ts,
                src: 0,
                body: format::Body::Fallback(format::Fallback { conn, dir: direction(dir), offset, reason }),
            },
            wire::Event::RedisRun(run) => return self.for_each_run_record(conn, &run, sink),
        };
        sink(&mut record);
    }

    /// Hands `sink` the records of a run of Redis messages: exactly those
    /// of the events [`wire::redis::RedisRun::expand`] gives, in the same
    /// order, without building the events (which cost several allocations
    /// and reference counts per message).
    pub fn for_each_run_record(&mut self, conn: u64, run: &wire::redis::RedisRun, sink: &mut dyn FnMut(&mut format::Record)) {
        let redact = self.redact;
        match run.dir {
            wire::Direction::ToServer => {
                for i in 0..run.len() {
                    redis::fill_run_command(&mut self.command, conn, run, i, redact, &mut self.spare);
                    sink(&mut self.command);
                }
            }
            wire::Direction::ToClient => {
                for (i, answered) in run.answered().enumerate() {
                    let (value, _) = run.reply_value(i);
                    redis::fill_run_reply(&mut self.reply, conn, run, i, &value, &mut self.spare);
                    sink(&mut self.reply);
                    redis::fill_run_exchange(&mut self.exchange, conn, (run, i), answered, &value, redact, &mut self.spare);
                    sink(&mut self.exchange);
                }
            }
        }
    }
}

/// Direction, one to one.
pub fn direction(d: wire::Direction) -> format::Direction {
    match d {
        wire::Direction::ToServer => format::Direction::ToServer,
        wire::Direction::ToClient => format::Direction::ToClient,
    }
}

/// Exchange status, one to one.
pub fn exchange_status(s: wire::ExchangeStatus) -> format::ExchangeStatus {
    match s {
        wire::ExchangeStatus::Complete => format::ExchangeStatus::Complete,
        wire::ExchangeStatus::Unanswered => format::ExchangeStatus::Unanswered,
        wire::ExchangeStatus::NoReply => format::ExchangeStatus::NoReply,
    }
}

fn message_record(conn: u64, m: wire::Message, redact: bool) -> format::Record {
    // HTTP and Redis messages are not reached through `Converter`, which
    // takes them first; kept total with the same conversion.
    let mut record = <format::Record as format::codec::Codec>::empty();
    match &m.kind {
        wire::MessageKind::Http(h) => {
            http::fill_message(&mut record, conn, &m, h, redact);
            return record;
        }
        wire::MessageKind::Redis(r) => {
            redis::fill_message(&mut record, conn, &m, r, redact, &mut redis::Spare::default());
            return record;
        }
        wire::MessageKind::Opaque | wire::MessageKind::Pg(_) => {}
    }
    let mut bytes = m.raw.prefix.to_vec();
    let mut redacted = false;
    let decoded = match &m.kind {
        wire::MessageKind::Pg(p) => {
            if redact && p.is_secret() {
                redact::pg_secret_message(&mut bytes);
                redacted = true;
                Some(format::Decoded::Pg(pg_decoded(&p.redacted())))
            } else {
                Some(format::Decoded::Pg(pg_decoded(p)))
            }
        }
        _ => None,
    };
    format::Record {
        ts: m.first_ts,
        src: 0,
        body: format::Body::Message(format::Message {
            conn,
            dir: direction(m.dir),
            last_ts: m.last_ts,
            offset: m.offset,
            data: Payload { bytes: BStr(bytes), len: m.raw.len, hash: m.raw.hash },
            decoded,
            redacted,
        }),
    }
}

fn exchange_record(conn: u64, e: wire::Exchange, redact: bool) -> format::Record {
    let summary = match &e.detail {
        wire::ExchangeDetail::Http(h) => {
            // As for Redis: not reached through `Converter`.
            let mut record = <format::Record as format::codec::Codec>::empty();
            http::fill_exchange(&mut record, conn, &e, h, redact);
            return record;
        }
        wire::ExchangeDetail::Pg(p) => format::ExchangeSummary::Pg(pg_exchange(p)),
        wire::ExchangeDetail::Redis(r) => {
            // As for messages: not reached through `Converter`.
            let mut record = <format::Record as format::codec::Codec>::empty();
            redis::fill_exchange(&mut record, conn, &e, r, redact, &mut redis::Spare::default());
            return record;
        }
    };
    format::Record {
        ts: e.timings.request_first,
        src: 0,
        body: format::Body::Exchange(format::Exchange {
            conn,
            request_last: e.timings.request_last,
            response_first: e.timings.response_first,
            response_last: e.timings.response_last,
            request_bytes: e.request_bytes,
            response_bytes: e.response_bytes,
            status: exchange_status(e.status),
            summary,
            attribution: None,
        }),
    }
}

// ----- helpers -----

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// At most [`TEXT_CAP`] bytes of `s`, cut at a character boundary.
fn cap_str(s: &str) -> String {
    if s.len() <= TEXT_CAP {
        return s.to_owned();
    }
    let mut end = TEXT_CAP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn cap_text(b: &[u8]) -> String {
    cap_str(&String::from_utf8_lossy(&b[..b.len().min(TEXT_CAP + 4)]))
}


// ----- PostgreSQL -----

fn pg_value(v: &PgValue) -> Option<String> {
    match v {
        PgValue::Null => None,
        PgValue::Text(s) => Some(cap_str(s)),
        PgValue::Raw { data, .. } => Some(hex(data)),
    }
}

/// `\x` and hex of at most [`TEXT_CAP`] / 2 bytes.
fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let b = &b[..b.len().min(TEXT_CAP / 2 - 1)];
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("\\x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn pg_error(e: &pg::ErrorFields) -> format::PgError {
    format::PgError {
        severity: lossy(&e.severity),
        code: lossy(&e.code),
        message: lossy(&e.message),
        detail: e.detail.as_deref().map(lossy),
        hint: e.hint.as_deref().map(lossy),
    }
}

fn txn_char(s: pg::TransactionStatus) -> String {
    match s {
        pg::TransactionStatus::Idle => "I".to_owned(),
        pg::TransactionStatus::InTransaction => "T".to_owned(),
        pg::TransactionStatus::Failed => "E".to_owned(),
        pg::TransactionStatus::Unknown(b) => cap_text(&[b]),
    }
}

fn target_char(t: pg::Target) -> String {
    (t.byte() as char).to_string()
}

fn oids(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The [`format::PgMessage`] summary of one message (see [`event_to_records`]).
pub fn pg_decoded(p: &PgMessage) -> format::PgMessage {
    use pg::Authentication as A;
    let mut d = format::PgMessage::default();
    let f = |k: &str, v: String| (k.to_owned(), v);
    let kind: Cow<'static, str> = match p {
        PgMessage::SslRequest => "SSLRequest".into(),
        PgMessage::GssEncRequest => "GSSENCRequest".into(),
        PgMessage::Startup(s) => {
            let (major, minor) = (s.protocol >> 16, s.protocol & 0xffff);
            if (major, minor) != (3, 0) {
                d.fields.push(f("protocol", format!("{major}.{minor}")));
            }
            d.fields.extend(s.params.iter().map(|(k, v)| (lossy(k), cap_text(v))));
            "StartupMessage".into()
        }
        PgMessage::CancelRequest { pid, secret_key } => {
            d.fields.push(f("pid", pid.to_string()));
            d.fields.push(f("secret_key", secret_key.to_string()));
            "CancelRequest".into()
        }
        PgMessage::SslResponse { accepted } => {
            d.fields.push(f("accepted", accepted.to_string()));
            "SSLResponse".into()
        }
        PgMessage::GssEncResponse { accepted } => {
            d.fields.push(f("accepted", accepted.to_string()));
            "GSSENCResponse".into()
        }
        PgMessage::Authentication(a) => match a {
            A::Ok => "AuthenticationOk".into(),
            A::CleartextPassword => "AuthenticationCleartextPassword".into(),
            A::Md5Password { salt } => {
                d.fields.push(f("salt", hex(salt)));
                "AuthenticationMD5Password".into()
            }
            A::Sasl { mechanisms } => {
                d.fields.extend(mechanisms.iter().map(|m| f("mechanism", lossy(m))));
                "AuthenticationSASL".into()
            }
            A::SaslContinue { data } => {
                d.fields.push(f("data", cap_text(data)));
                "AuthenticationSASLContinue".into()
            }
            A::SaslFinal { data } => {
                d.fields.push(f("data", cap_text(data)));
                "AuthenticationSASLFinal".into()
            }
            A::Other { code, data } => {
                use pg::tags::auth;
                if !data.is_empty() {
                    d.fields.push(f("data", hex(data)));
                }
                match *code {
                    auth::KERBEROS_V5 => "AuthenticationKerberosV5".into(),
                    auth::GSS => "AuthenticationGSS".into(),
                    auth::GSS_CONTINUE => "AuthenticationGSSContinue".into(),
                    auth::SSPI => "AuthenticationSSPI".into(),
                    other => {
                        d.fields.insert(0, f("code", other.to_string()));
                        "Authentication".into()
                    }
                }
            }
        },
        PgMessage::Password { password } => {
            d.fields.push(f("password", cap_text(password)));
            "PasswordMessage".into()
        }
        PgMessage::SaslInitialResponse { mechanism, data } => {
            d.fields.push(f("mechanism", lossy(mechanism)));
            if let Some(data) = data {
                d.fields.push(f("data", cap_text(data)));
            }
            "SASLInitialResponse".into()
        }
        PgMessage::SaslResponse { data } => {
            d.fields.push(f("data", cap_text(data)));
            "SASLResponse".into()
        }
        PgMessage::GssResponse { data } => {
            d.fields.push(f("data", cap_text(data)));
            "GSSResponse".into()
        }
        PgMessage::ParameterStatus { name, value } => {
            d.fields.push((lossy(name), cap_text(value)));
            "ParameterStatus".into()
        }
        PgMessage::BackendKeyData { pid, secret_key } => {
            d.fields.push(f("pid", pid.to_string()));
            d.fields.push(f("secret_key", secret_key.to_string()));
            "BackendKeyData".into()
        }
        PgMessage::ReadyForQuery { status } => {
            d.fields.push(f("status", txn_char(*status)));
            "ReadyForQuery".into()
        }
        PgMessage::NegotiateProtocolVersion { minor, unrecognized } => {
            d.fields.push(f("minor", minor.to_string()));
            d.fields.extend(unrecognized.iter().map(|o| f("unrecognized", lossy(o))));
            "NegotiateProtocolVersion".into()
        }
        PgMessage::Query { sql } => {
            d.sql = Some(lossy(sql));
            "Query".into()
        }
        PgMessage::Parse { name, sql, param_types } => {
            d.statement = Some(lossy(name));
            d.sql = Some(lossy(sql));
            if !param_types.is_empty() {
                d.fields.push(f("param_types", oids(param_types)));
            }
            "Parse".into()
        }
        PgMessage::Bind(b) => {
            d.statement = Some(lossy(&b.statement));
            if !b.portal.is_empty() {
                d.fields.push(f("portal", lossy(&b.portal)));
            }
            d.params = b
                .params
                .iter()
                .enumerate()
                .map(|(i, v)| pg_value(&pg::values::decode_value(0, pg::format_at(&b.param_formats, i), v.as_ref())))
                .collect();
            "Bind".into()
        }
        PgMessage::Describe { target, name } => {
            d.fields.push(f("target", target_char(*target)));
            match target {
                pg::Target::Statement => d.statement = Some(lossy(name)),
                pg::Target::Portal => d.fields.push(f("portal", lossy(name))),
            }
            "Describe".into()
        }
        PgMessage::Execute { portal, max_rows } => {
            d.fields.push(f("portal", lossy(portal)));
            d.fields.push(f("max_rows", max_rows.to_string()));
            "Execute".into()
        }
        PgMessage::Sync => "Sync".into(),
        PgMessage::Flush => "Flush".into(),
        PgMessage::Close { target, name } => {
            d.fields.push(f("target", target_char(*target)));
            match target {
                pg::Target::Statement => d.statement = Some(lossy(name)),
                pg::Target::Portal => d.fields.push(f("portal", lossy(name))),
            }
            "Close".into()
        }
        PgMessage::FunctionCall { function, arg_formats, args, result_format: _ } => {
            d.fields.push(f("function", function.to_string()));
            d.params = args
                .iter()
                .enumerate()
                .map(|(i, v)| pg_value(&pg::values::decode_value(0, pg::format_at(arg_formats, i), v.as_ref())))
                .collect();
            "FunctionCall".into()
        }
        PgMessage::Terminate => "Terminate".into(),
        PgMessage::ParseComplete => "ParseComplete".into(),
        PgMessage::BindComplete => "BindComplete".into(),
        PgMessage::CloseComplete => "CloseComplete".into(),
        PgMessage::ParameterDescription { types } => {
            d.fields.push(f("types", oids(types)));
            "ParameterDescription".into()
        }
        PgMessage::RowDescription { columns } => {
            d.columns = columns.iter().map(|c| c.name_str().into_owned()).collect();
            "RowDescription".into()
        }
        PgMessage::NoData => "NoData".into(),
        PgMessage::PortalSuspended => "PortalSuspended".into(),
        PgMessage::DataRows { count, len: _, rows } => {
            d.row_count = Some(*count);
            d.rows = rows.iter().map(|r| r.iter().map(pg_value).collect()).collect();
            "DataRow".into()
        }
        PgMessage::CommandComplete { tag } => {
            d.tag = Some(lossy(tag));
            "CommandComplete".into()
        }
        PgMessage::EmptyQueryResponse => "EmptyQueryResponse".into(),
        PgMessage::CopyResponse(c) => {
            d.fields.push(f("format", c.format.to_string()));
            d.fields.push(f("columns", c.column_formats.len().to_string()));
            match c.direction {
                pg::CopyDirection::In => "CopyInResponse".into(),
                pg::CopyDirection::Out => "CopyOutResponse".into(),
                pg::CopyDirection::Both => "CopyBothResponse".into(),
            }
        }
        PgMessage::CopyData { count, len: _ } => {
            d.fields.push(f("count", count.to_string()));
            "CopyData".into()
        }
        PgMessage::CopyDone => "CopyDone".into(),
        PgMessage::CopyFail { message } => {
            d.fields.push(f("message", cap_text(message)));
            "CopyFail".into()
        }
        PgMessage::FunctionCallResponse { value } => {
            d.rows = vec![vec![value.as_ref().map(|v| cap_text(v))]];
            d.row_count = Some(1);
            "FunctionCallResponse".into()
        }
        PgMessage::ErrorResponse(e) => {
            d.error = Some(pg_error(e));
            "ErrorResponse".into()
        }
        PgMessage::NoticeResponse(e) => {
            d.error = Some(pg_error(e));
            "NoticeResponse".into()
        }
        PgMessage::NotificationResponse { pid, channel, payload } => {
            d.fields.push(f("pid", pid.to_string()));
            d.fields.push(f("channel", lossy(channel)));
            d.fields.push(f("payload", cap_text(payload)));
            "NotificationResponse".into()
        }
        PgMessage::Malformed { tag, reason } => {
            d.fields.push(f("tag", if tag.is_ascii_graphic() { (*tag as char).to_string() } else { tag.to_string() }));
            d.fields.push(f("reason", (*reason).to_owned()));
            "Malformed".into()
        }
    };
    d.kind = kind.into_owned();
    d
}

fn pg_exchange(p: &pg::PgExchange) -> format::PgExchange {
    format::PgExchange {
        statements: p.statements.iter().map(|s| s.sql_str().into_owned()).collect(),
        extended: p.kind == pg::PgExchangeKind::Extended,
        tags: p.command_tags().into_iter().map(Cow::into_owned).collect(),
        rows: p.rows_returned(),
        error: p.error.as_ref().map(pg_error),
        txn: p.transaction_status.map(txn_char),
    }
}
