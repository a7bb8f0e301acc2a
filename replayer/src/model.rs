//! What the replay driver hands to comparison ([`crate::compare`]) and to
//! the report ([`crate::report`]): one [`Replayed`] per exchange, holding
//! the recorded side and the replayed side in the same shape (trace
//! records), so that both are compared like with like.
//!
//! The driver builds the recorded [`Side`] from the trace (an `exchange`
//! record and the server's `message` records of that exchange) and the
//! replayed one by decoding what the target answered with the same `wire`
//! codecs and `convert::event_to_records` the recorder uses.

/// One side (recorded, or replayed) of an exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    /// Request first byte to response last byte, in nanoseconds; `None`
    /// when no response came.
    pub latency: Option<u64>,
    pub status: format::ExchangeStatus,
    /// The protocol's summary (HTTP method/target/status, PostgreSQL
    /// statements/tags/rows/error, Redis command/reply).
    pub summary: format::ExchangeSummary,
    /// The server's messages of this exchange, in order: HTTP response
    /// heads (an interim 100 too) with their bodies; PostgreSQL everything
    /// from the first reply to ReadyForQuery; the Redis reply (or replies).
    /// Bytes are capped as the recorder capped them; `data.hash` lets a
    /// truncated body still be compared whole.
    pub responses: Vec<format::Message>,
}

/// One exchange, recorded and replayed.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// Source and connection of the recorded exchange (a merged trace
    /// names a connection by both).
    pub src: u16,
    pub conn: u64,
    /// The route the connection was recorded on (`conn_open.route`).
    pub route: String,
    pub protocol: format::Protocol,
    /// The lambda of the invocation this exchange is, or was attributed to.
    pub lambda: Option<String>,
    /// What the report groups by: `GET /path` (HTTP, query string
    /// dropped), the query fingerprint (PostgreSQL), the command name (Redis).
    pub key: String,
    pub recorded: Side,
    /// The replayed side, or why there is none (connection refused,
    /// closed mid-exchange, timed out).
    pub replayed: Result<Side, String>,
    /// When the request was due and when its first byte was sent, in
    /// nanoseconds since the replay started.
    pub scheduled: u64,
    pub sent: u64,
}

/// One way a replayed response differs from the recorded one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Difference {
    /// Where: `status`, `header content-type`, `body $.items[2].price`,
    /// `tag[0]`, `row[3].balance`, `error.code`, `reply`, ...; noise rules
    /// match on it.
    pub field: String,
    pub recorded: String,
    pub replayed: String,
}
