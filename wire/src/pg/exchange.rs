//! [`PgExchange`]: what one request/response round trip did, as an analyzer
//! wants it: statements with SQL and parameters, results with command tags,
//! row counts, columns and a sample of rows, errors, transaction status.

use super::message::{text, Column, CopyDirection, ErrorFields, Startup, TransactionStatus};
use super::values::PgValue;
use bytes::Bytes;
use std::borrow::Cow;

/// How many rows per result (and per DataRows message) are decoded and kept.
pub const SAMPLE_ROWS: usize = 10;
/// How many statements one exchange keeps (a pipeline may hold thousands;
/// [`PgExchange::statement_count`] still counts them all).
pub const MAX_STATEMENTS: usize = 1024;
/// How many notices one exchange keeps.
pub const MAX_NOTICES: usize = 16;

/// What started the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgExchangeKind {
    /// Connection start: SSLRequest/GSSENCRequest, StartupMessage and the
    /// authentication dialogue, up to the first ReadyForQuery (or the error
    /// that ends the connection).
    Startup,
    /// A simple Query.
    Simple,
    /// Extended protocol: Parse/Bind/Describe/Execute/Close... up to Sync.
    Extended,
    /// A fast-path FunctionCall.
    FunctionCall,
    /// A CancelRequest (no reply comes).
    Cancel,
    /// Terminate (no reply comes).
    Terminate,
}

/// One exchange: from the client's Query (or first extended-protocol message,
/// or startup packet) to the server's ReadyForQuery.
#[derive(Clone, Debug, PartialEq)]
pub struct PgExchange {
    /// What started it.
    pub kind: PgExchangeKind,
    /// The statements executed, in order: one per simple Query, one per
    /// Execute in the extended protocol (pipelined statements before one
    /// Sync are all here). At most [`MAX_STATEMENTS`].
    pub statements: Vec<PgStatement>,
    /// Total statements, including any beyond [`MAX_STATEMENTS`].
    pub statement_count: u64,
    /// Statements prepared (Parse) in this exchange: name and SQL.
    pub prepared: Vec<PgPrepared>,
    /// The first ErrorResponse, if any.
    pub error: Option<ErrorFields>,
    /// NoticeResponses received during the exchange (at most [`MAX_NOTICES`]).
    pub notices: Vec<ErrorFields>,
    /// Transaction status from the closing ReadyForQuery (`None` if none came).
    pub transaction_status: Option<TransactionStatus>,
    /// For [`PgExchangeKind::Startup`]: the StartupMessage (user, database...).
    pub startup: Option<Startup>,
    /// For [`PgExchangeKind::Startup`]: the authentication method the server
    /// asked for (`"trust"` when AuthenticationOk came first, else
    /// `"cleartext"`, `"md5"`, `"sasl"`, `"gss"`, `"other"`), and whether TLS
    /// was requested is visible in [`PgExchange::ssl_requested`].
    pub auth_method: Option<&'static str>,
    /// For [`PgExchangeKind::Startup`]: an SSLRequest/GSSENCRequest was sent.
    pub ssl_requested: bool,
    /// For [`PgExchangeKind::FunctionCall`]: the function OID.
    pub function: Option<u32>,
}

impl PgExchange {
    pub(crate) fn new(kind: PgExchangeKind) -> PgExchange {
        PgExchange {
            kind,
            statements: Vec::new(),
            statement_count: 0,
            prepared: Vec::new(),
            error: None,
            notices: Vec::new(),
            transaction_status: None,
            startup: None,
            auth_method: None,
            ssl_requested: false,
            function: None,
        }
    }

    /// Rows returned by all statements (DataRow messages).
    pub fn rows_returned(&self) -> u64 {
        self.statements.iter().flat_map(|s| &s.results).map(|r| r.rows_returned).sum()
    }

    /// Command tags of all results, in order.
    pub fn command_tags(&self) -> Vec<Cow<'_, str>> {
        self.command_tag_bytes().map(text).collect()
    }

    /// [`PgExchange::command_tags`] as sent, without collecting them (for
    /// callers that copy each one somewhere anyway).
    pub fn command_tag_bytes(&self) -> impl Iterator<Item = &Bytes> {
        self.statements.iter().flat_map(|s| &s.results).filter_map(|r| r.command_tag.as_ref())
    }
}

/// A Parse seen in an exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct PgPrepared {
    /// Statement name (empty: unnamed).
    pub name: Bytes,
    /// SQL text.
    pub sql: Bytes,
}

/// One executed statement.
#[derive(Clone, Debug, PartialEq)]
pub struct PgStatement {
    /// SQL text: the Query string, or the SQL of the prepared statement the
    /// Execute ran. `None` when the statement was prepared before the
    /// decoder saw the connection.
    pub sql: Option<Bytes>,
    /// Prepared statement name (empty: unnamed or simple query).
    pub statement: Bytes,
    /// Portal name (empty: unnamed or simple query).
    pub portal: Bytes,
    /// Parameter values from Bind, decoded with the statement's parameter
    /// types (from Parse or ParameterDescription) and the Bind formats.
    pub params: Vec<PgValue>,
    /// Parameter type OIDs as known when the exchange ended (0: unknown).
    pub param_types: Vec<u32>,
    /// What came back: one result per command (a simple Query string may
    /// hold several commands; an Execute yields one).
    pub results: Vec<PgResult>,
    /// The error that ended this statement, if any.
    pub error: Option<ErrorFields>,
}

impl PgStatement {
    /// The SQL text, lossily decoded (empty when unknown).
    pub fn sql_str(&self) -> Cow<'_, str> {
        self.sql.as_ref().map(text).unwrap_or(Cow::Borrowed(""))
    }
}

/// One command's result.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PgResult {
    /// CommandComplete tag (`SELECT 5`, `INSERT 0 1`, ...); `None` for an
    /// empty query, a suspended portal or an error.
    pub command_tag: Option<Bytes>,
    /// The row count the tag states (INSERT/UPDATE/DELETE/SELECT/MERGE/
    /// MOVE/FETCH/COPY n).
    pub rows_affected: Option<u64>,
    /// DataRow messages received.
    pub rows_returned: u64,
    /// Result columns (RowDescription), with the formats actually used.
    pub columns: Vec<Column>,
    /// The first [`SAMPLE_ROWS`] rows, decoded to text where the type is known.
    pub sample_rows: Vec<Vec<PgValue>>,
    /// EmptyQueryResponse.
    pub empty_query: bool,
    /// PortalSuspended: Execute hit its row limit.
    pub suspended: bool,
    /// COPY, if the command was one.
    pub copy: Option<PgCopy>,
}

/// A COPY's traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct PgCopy {
    /// In (client sends), Out (server sends), Both.
    pub direction: CopyDirection,
    /// Overall format: 0 text, 1 binary.
    pub format: i8,
    /// CopyData messages seen (either direction).
    pub messages: u64,
    /// Bytes of those messages on the wire, headers included.
    pub bytes: u64,
    /// The client ended it with CopyFail.
    pub failed: bool,
}

/// The row count in a command tag: the last number of `INSERT 0 5`,
/// `UPDATE 3`, `SELECT 7`, `COPY 10`...; `None` for tags without one.
pub fn tag_rows(tag: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(tag).ok()?;
    let mut words = s.split(' ');
    let cmd = words.next()?;
    if !matches!(cmd, "INSERT" | "UPDATE" | "DELETE" | "SELECT" | "MERGE" | "MOVE" | "FETCH" | "COPY") {
        return None;
    }
    s.rsplit(' ').next()?.parse().ok()
}
