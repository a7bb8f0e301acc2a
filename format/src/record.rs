//! The records a trace holds, inside their [`Record`] envelope.
//!
//! In a trace file every struct is a MessagePack map keyed by field index
//! and every enum with data a one-entry map keyed by variant index (see
//! [`crate::codec`]); the indices are listed after each type with
//! `codec_struct!`/`codec_enum!`. They are only ever appended: never
//! reorder, renumber or reuse one (a removed field keeps its index
//! reserved). JSON uses the serde implementations, with names.

use crate::bytes::Payload;
use crate::codec::{codec_enum, codec_struct};
use crate::decoded::{Decoded, ExchangeSummary};
use crate::small_enum::small_enum;
use serde::{Deserialize, Serialize};

small_enum! {
    /// Which way bytes travelled on a connection.
    pub enum Direction {
        /// From the client (the side that connected) to the server.
        ToServer = 0 => "to_server" | "to-server",
        /// From the server to the client.
        ToClient = 1 => "to_client" | "to-client",
    }
}

impl Direction {
    /// 0 for [`Direction::ToServer`], 1 for [`Direction::ToClient`]: an index
    /// for per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    /// The other way.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

small_enum! {
    /// The protocol a connection was recorded as, and the one a
    /// `wire::Session` decodes (`wire` re-exports this type: one protocol
    /// enum for every crate and the command line).
    pub enum Protocol {
        Http = 0 => "http",
        Postgres = 1 => "postgres" | "pg" | "postgresql",
        Redis = 2 => "redis",
        /// Plain TCP: opaque timed chunks.
        Tcp = 3 => "tcp",
        Mysql = 4 => "mysql",
    }
}

small_enum! {
    /// How an exchange ended.
    pub enum ExchangeStatus {
        /// Request and response both complete.
        Complete = 0 => "complete",
        /// The connection ended before the response was complete.
        Unanswered = 1 => "unanswered",
        /// The protocol says no reply comes (e.g. Redis `CLIENT REPLY OFF`).
        NoReply = 2 => "no_reply",
    }
}

small_enum! {
    /// Where a log line came from.
    pub enum LogStream {
        Stdout = 0 => "stdout",
        Stderr = 1 => "stderr",
        /// A log file folded into the trace (`oltrace wrap --log FILE`).
        File = 2 => "file",
    }
}

small_enum! {
    /// How a downstream call was tied to the invocation that caused it.
    pub enum AttributionMethod {
        /// A W3C `traceparent` header the proxy added to the invocation and
        /// the lambda propagated.
        Traceparent = 0 => "traceparent",
        /// A sqlcommenter comment in the SQL text.
        Sqlcommenter = 1 => "sqlcommenter",
        /// The only invocation in flight over the whole call (request
        /// first byte to response last byte), with no other overlapping
        /// it: inferred, not proven.
        ConnectionWindow = 2 => "connection_window",
    }
}

small_enum! {
    /// What became of TLS on a proxied connection's client side (see
    /// docs/recording.md, "TLS"). The trace says which, never key material.
    pub enum TlsMode {
        /// The client did not ask for TLS: plaintext as it came.
        None = 0 => "none",
        /// The client asked for TLS (PostgreSQL SSLRequest or
        /// GSSENCRequest) and the proxy answered no itself; the client went
        /// on in plaintext to the proxy. The request and answer are not in
        /// the trace (the server never saw them).
        Declined = 1 => "declined",
        /// The client's TLS went to the server untouched: recorded as
        /// opaque bytes.
        Passthrough = 2 => "passthrough",
        /// The proxy accepted the client's TLS with its own certificate and
        /// recorded the plaintext.
        Terminated = 3 => "terminated",
        /// A forward proxy's CONNECT tunnel, intercepted (`--tls-intercept`):
        /// the client's TLS accepted with a certificate for its host that
        /// the proxy's own CA signed, the server met with the proxy's own
        /// TLS, and the HTTP between them recorded as plaintext.
        Intercepted = 4 => "intercepted",
    }
}

/// The envelope of every record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Nanoseconds since the trace's anchor ([`crate::Header::anchor_unix_ns`]).
    /// What instant it marks is said per record kind.
    pub ts: u64,
    /// Index into [`crate::Header::sources`]: which recording this came
    /// from (0 in a trace that was not merged).
    #[serde(default)]
    pub src: u16,
    pub body: Body,
}

codec_struct!(Record { ts = 0, src = 1, body = 2 });

impl Record {
    /// Moves the record `by` nanoseconds later: its `ts` and the other
    /// times it holds on the same clock (a message's last byte, an
    /// exchange's request end and response times), as a merge does onto
    /// an earlier anchor.
    pub fn shift(&mut self, by: u64) {
        self.ts += by;
        match &mut self.body {
            Body::Message(m) => m.last_ts += by,
            Body::Exchange(e) => {
                e.request_last += by;
                for t in [&mut e.response_first, &mut e.response_last].into_iter().flatten() {
                    *t += by;
                }
            }
            _ => {}
        }
    }
}

/// What a record says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    ConnOpen(ConnOpen),
    ConnClose(ConnClose),
    Message(Message),
    Exchange(Exchange),
    Invocation(Invocation),
    Log(LogLine),
    Gap(Gap),
    Fallback(Fallback),
}

codec_enum!(Body { ConnOpen = 0, ConnClose = 1, Message = 2, Exchange = 3, Invocation = 4, Log = 5, Gap = 6, Fallback = 7 });

impl Body {
    /// The record kind's name, as in JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::ConnOpen(_) => "conn_open",
            Body::ConnClose(_) => "conn_close",
            Body::Message(_) => "message",
            Body::Exchange(_) => "exchange",
            Body::Invocation(_) => "invocation",
            Body::Log(_) => "log",
            Body::Gap(_) => "gap",
            Body::Fallback(_) => "fallback",
        }
    }

    /// Every kind name, in the order above.
    pub const KINDS: &'static [&'static str] =
        &["conn_open", "conn_close", "message", "exchange", "invocation", "log", "gap", "fallback"];

    /// The connection this record belongs to, if any.
    pub fn conn(&self) -> Option<u64> {
        match self {
            Body::ConnOpen(c) => Some(c.conn),
            Body::ConnClose(c) => Some(c.conn),
            Body::Message(m) => Some(m.conn),
            Body::Exchange(e) => Some(e.conn),
            Body::Invocation(i) => Some(i.conn),
            Body::Gap(g) => g.conn,
            Body::Fallback(f) => Some(f.conn),
            Body::Log(_) => None,
        }
    }

    /// The direction of a message, gap or fallback.
    pub fn direction(&self) -> Option<Direction> {
        match self {
            Body::Message(m) => Some(m.dir),
            Body::Gap(g) => g.dir,
            Body::Fallback(f) => Some(f.dir),
            _ => None,
        }
    }
}

/// A connection was accepted (`ts`: when). Connection ids are unique within
/// one source; `(src, conn)` names a connection in a merged trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnOpen {
    pub conn: u64,
    pub protocol: Protocol,
    /// The client's address, `ip:port`.
    pub client: String,
    /// The upstream server's address as configured (`host:port`).
    pub server: String,
    /// The route's name (by default `PROTO:LISTEN`).
    #[serde(default)]
    pub route: String,
    /// On routes that handle TLS (postgres), what became of it on the
    /// client's side; absent on other routes and in older traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsMode>,
}

codec_struct!(ConnOpen { conn = 0, protocol = 1, client = 2, server = 3, route = 4, tls = 5 });

/// A connection ended (`ts`: when the last side closed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnClose {
    pub conn: u64,
    /// Bytes forwarded client to server, and server to client.
    pub bytes_to_server: u64,
    pub bytes_to_client: u64,
    /// Why it ended abnormally (reset, upstream unreachable, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

codec_struct!(ConnClose { conn = 0, bytes_to_server = 1, bytes_to_client = 2, error = 3 });

/// One protocol message (or, on an opaque connection, one chunk), with its
/// exact bytes. `ts` is the time of its first byte.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub conn: u64,
    pub dir: Direction,
    /// Time of its last byte, same clock as `ts`.
    pub last_ts: u64,
    /// Offset of its first byte in its direction's stream.
    pub offset: u64,
    /// The exact bytes as they crossed the wire, capped (see
    /// [`Payload::is_truncated`]); redacted where secrets were.
    pub data: Payload,
    /// What the message says, for the protocols we decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<Decoded>,
    /// True when secrets in `data` (and `decoded`) were blanked.
    #[serde(default, skip_serializing_if = "is_false")]
    pub redacted: bool,
}

codec_struct!(Message { conn = 0, dir = 1, last_ts = 2, offset = 3, data = 4, decoded = 5, redacted = 6 } skip_if lean_part, reading dir);

/// In lean reading, a message's bytes (4) and decoded form (5) are skipped
/// when it goes the lean way (its direction, 1, comes first as written),
/// or its bytes alone when its direction's bytes are lean.
fn lean_part(m: &Message, index: u64, r: &crate::codec::Rd<'_>) -> bool {
    let dir = Some(m.dir);
    match index {
        4 => r.lean.messages == dir || r.lean.bytes == dir,
        5 => r.lean.messages == dir,
        _ => false,
    }
}

/// A request paired with its response. `ts` is the request's first byte.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub conn: u64,
    /// Time of the request's last byte.
    pub request_last: u64,
    /// Times of the response's first and last byte; absent when none came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_first: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_last: Option<u64>,
    /// Bytes on the wire, request side and response side.
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub status: ExchangeStatus,
    pub summary: ExchangeSummary,
    /// The invocation that caused this call, and how we know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
}

codec_struct!(Exchange {
    conn = 0,
    request_last = 1,
    response_first = 2,
    response_last = 3,
    request_bytes = 4,
    response_bytes = 5,
    status = 6,
    summary = 7,
    attribution = 8,
});

impl Exchange {
    /// Request start to response end, when a response came.
    pub fn latency(&self, ts: u64) -> Option<u64> {
        self.response_last.map(|end| end.saturating_sub(ts))
    }
}

/// Ties a downstream call to an invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// [`Invocation::id`] (same source).
    pub invocation: u64,
    pub method: AttributionMethod,
}

codec_struct!(Attribution { invocation = 0, method = 1 });

/// An invocation of a lambda: one request from the gateway to a worker.
/// `ts` is the request's first byte; its [`Exchange`] on the same
/// connection carries the timings and status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// Unique within the source.
    pub id: u64,
    pub conn: u64,
    /// The lambda's name, from the platform profile.
    pub lambda: String,
    /// The platform profile that named it: `openlambda`, `openwhisk`,
    /// `aws`, `azure`, or a user pattern's name.
    pub platform: String,
    /// A request id the platform sent (e.g. `x-request-id`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The W3C trace id used to attribute downstream calls, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

codec_struct!(Invocation { id = 0, conn = 1, lambda = 2, platform = 3, request_id = 4, trace_id = 5 });

/// One log line (`ts`: when it was read).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Who wrote it: the wrapped command's name, or the log file's path.
    pub origin: String,
    pub stream: LogStream,
    /// The line, without its line ending.
    pub text: String,
    /// True when secrets in `text` were blanked.
    #[serde(default, skip_serializing_if = "is_false")]
    pub redacted: bool,
}

codec_struct!(LogLine { origin = 0, stream = 1, text = 2, redacted = 3 });

/// Data the recorder lost, and why (`ts`: when the loss was noticed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<Direction>,
    /// Bytes not recorded.
    pub bytes: u64,
    /// Records not recorded.
    pub records: u64,
    pub reason: String,
}

codec_struct!(Gap { conn = 0, dir = 1, bytes = 2, records = 3, reason = 4 });

/// A connection switched to opaque recording (TLS, an HTTP upgrade, or
/// bytes the decoder did not understand). `ts`: when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    pub conn: u64,
    /// The direction whose bytes caused the switch.
    pub dir: Direction,
    /// Offset in that direction's stream from which bytes are opaque.
    pub offset: u64,
    pub reason: String,
}

codec_struct!(Fallback { conn = 0, dir = 1, offset = 2, reason = 3 });

fn is_false(b: &bool) -> bool {
    !*b
}
