//! `convert`: decoded wire events ([`wire::Event`]) to trace records
//! ([`format::Record`]). Both the recorder (`oltrace`) and the replayer
//! (`olreplay`, which decodes the responses it gets the same way) use it;
//! it lives apart from `tracer` so `olreplay` does not link what recording
//! needs (libpcap).
//!
//! Modules: this file routes events to the conversions; `pg`, `redis` and
//! `http` convert PostgreSQL, Redis and HTTP messages and exchanges over
//! earlier records, reusing their allocations (for the [`Converter`]),
//! through the shared setters of `fill`;
//! [`redact`] blanks secrets in recorded bytes
//! (same length, in place; where the fields and arguments sit in the bytes
//! is `wire`'s to say, what is secret is decided here, by
//! [`redact::Rules`]); [`sql_scan`] cuts SQL into tokens, for
//! [`fingerprint`] and for redaction; [`fingerprint`] normalises SQL to a query
//! fingerprint (literals to `?`), the key replay reports and the analyzer
//! group queries by; [`call_key`] keys any call (SQL, Redis, HTTP) by
//! class, for olanalyze's call classes and olreplay's reports;
//! [`classify`] says whether a call writes.
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
//! With redaction on, secrets are blanked in what is recorded, in the
//! bytes and in the decoded summaries alike (see [`crate::redact`]):
//! PostgreSQL password/SASL/GSS messages and SQL password literals
//! (`PASSWORD '...'`, `IDENTIFIED BY '...'`, pgcrypto arguments) in
//! Query and Parse messages and exchange statements; Bind parameters that
//! a statement assigns to or compares with a secret column
//! (`password = $1`, `INSERT ... (name, password) VALUES ($1, $2)`; the
//! [`Converter`] keeps, per connection, the prepared statements that have
//! some); HTTP URL userinfo
//! passwords, secret query parameters (in the request line, the decoded
//! target and the exchange's target), secret header values, and secret
//! fields of form and JSON bodies; and the Redis arguments
//! [`wire::redis::RedisCommand::secret_args`] flags (`AUTH`, `HELLO ...
//! AUTH`, `MIGRATE ... AUTH|AUTH2`, `CONFIG SET requirepass|masterauth`,
//! `ACL SETUSER` passwords). Which names count is [`redact::Rules`]'
//! to say.

use wire::redis::RedisMessage;

pub mod call_key;
pub mod classify;
mod fill;
pub mod fingerprint;
mod http;
mod pg;
pub mod redact;
mod redis;
pub mod sql_scan;

pub use pg::pg_decoded;

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
/// last handed out for Redis commands, replies and exchanges, for HTTP
/// requests, responses and exchanges, and for PostgreSQL messages and
/// exchanges, and writes the next ones over them, reusing their
/// allocations (`convert/src/redis.rs`, `convert/src/http.rs`,
/// `convert/src/pg.rs`). The recorder holds one for its whole run.
pub struct Converter {
    rules: redact::Rules,
    command: format::Record,
    reply: format::Record,
    exchange: format::Record,
    spare: redis::Spare,
    http_request: format::Record,
    http_response: format::Record,
    http_exchange: format::Record,
    // One message record serves both directions: whatever kind of message
    // comes next, the strings of the last one wait for it in `pg_spare`.
    pg_message: format::Record,
    pg_exchange: format::Record,
    pg_spare: pg::Spare,
    /// Each connection's prepared statements whose Bind parameters are
    /// secret.
    binds: redact::BindSecrets,
}

impl Converter {
    /// `redact`: as for [`event_to_records`] (the default
    /// [`redact::Rules`], or none).
    pub fn new(redact: bool) -> Converter {
        Converter::with_rules(if redact { redact::Rules::default() } else { redact::Rules::off() })
    }

    /// A converter that blanks what `rules` say.
    pub fn with_rules(rules: redact::Rules) -> Converter {
        let empty = <format::Record as format::codec::Codec>::empty;
        Converter {
            rules,
            command: empty(),
            reply: empty(),
            exchange: empty(),
            spare: redis::Spare::default(),
            http_request: empty(),
            http_response: empty(),
            http_exchange: empty(),
            pg_message: empty(),
            pg_exchange: empty(),
            pg_spare: pg::Spare::default(),
            binds: redact::BindSecrets::default(),
        }
    }

    /// Hands `sink` the records of `event`, as [`for_each_record`] does.
    /// A record `sink` gets is valid only during the call.
    pub fn for_each_record(&mut self, conn: u64, event: wire::Event, sink: &mut dyn FnMut(&mut format::Record)) {
        let rules = &self.rules;
        let redact = rules.enabled();
        let mut record = match event {
            wire::Event::Message(m) => match &m.kind {
                wire::MessageKind::Redis(r) => {
                    let record = if matches!(r, RedisMessage::Command(_)) { &mut self.command } else { &mut self.reply };
                    redis::fill_message(record, conn, &m, r, redact, &mut self.spare);
                    return sink(record);
                }
                wire::MessageKind::Http(h) => {
                    let record = if h.request().is_some() { &mut self.http_request } else { &mut self.http_response };
                    http::fill_message(record, conn, &m, h, rules);
                    return sink(record);
                }
                wire::MessageKind::Pg(p) => {
                    pg::fill_message(&mut self.pg_message, conn, &m, p, rules, &mut self.binds, &mut self.pg_spare);
                    return sink(&mut self.pg_message);
                }
                wire::MessageKind::Opaque => {
                    // Bytes no decoder reads (TLS, a connection after its
                    // decoder gave up): a fresh record, whose one
                    // allocation is the bytes.
                    let mut record = <format::Record as format::codec::Codec>::empty();
                    let (_, decoded, _) = fill::message_fields(&mut record, conn, &fill::Placement::of(&m), &m.raw.prefix);
                    *decoded = None;
                    record
                }
            },
            wire::Event::Exchange(e) => match &e.detail {
                wire::ExchangeDetail::Redis(r) => {
                    redis::fill_exchange(&mut self.exchange, conn, &e, r, redact, &mut self.spare);
                    return sink(&mut self.exchange);
                }
                wire::ExchangeDetail::Http(h) => {
                    http::fill_exchange(&mut self.http_exchange, conn, &e, h, rules);
                    return sink(&mut self.http_exchange);
                }
                wire::ExchangeDetail::Pg(p) => {
                    pg::fill_exchange(&mut self.pg_exchange, conn, &e, p, rules, &mut self.pg_spare);
                    return sink(&mut self.pg_exchange);
                }
            },
            wire::Event::Opaque { reason, dir, offset, ts } => format::Record {
                ts,
                src: 0,
                body: format::Body::Fallback(format::Fallback { conn, dir, offset, reason }),
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
        let redact = self.rules.enabled();
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

    /// Connection `conn` ended: what was kept of its prepared statements
    /// is dropped.
    pub fn conn_closed(&mut self, conn: u64) {
        self.binds.conn_closed((0, conn));
    }

    /// The rules this converter blanks by.
    pub fn rules(&self) -> &redact::Rules {
        &self.rules
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
