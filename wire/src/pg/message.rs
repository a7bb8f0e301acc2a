//! [`PgMessage`]: one decoded PostgreSQL message, either direction, and the
//! small types its variants carry.

use bytes::Bytes;
use std::borrow::Cow;

/// Lossy UTF-8 view of wire text (SQL, names, error texts).
pub fn text(b: &Bytes) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// One decoded message. Frontend (client) and backend (server) variants share
/// the enum; [`crate::Message::dir`] says which way it went.
///
/// Secrets (`Password`, `SaslInitialResponse`, `SaslResponse`,
/// `GssResponse`) are separate variants so a recorder can blank them: see
/// [`PgMessage::is_secret`].
#[derive(Clone, Debug, PartialEq)]
pub enum PgMessage {
    // ----- untagged startup phase (frontend) -----
    /// SSLRequest: the client asks for TLS; the server answers one byte.
    SslRequest,
    /// GSSENCRequest: the client asks for GSSAPI encryption.
    GssEncRequest,
    /// StartupMessage.
    Startup(Startup),
    /// CancelRequest (sent on a new connection; the server answers nothing).
    CancelRequest {
        /// Process id of the backend to cancel.
        pid: u32,
        /// Its secret key (from BackendKeyData).
        secret_key: u32,
    },
    // ----- one-byte answers (backend) -----
    /// The server's one-byte answer to SSLRequest: `S` (accepted, TLS
    /// follows) or `N` (refused, plain text continues).
    SslResponse {
        /// True for `S`.
        accepted: bool,
    },
    /// The server's one-byte answer to GSSENCRequest: `G` or `N`.
    GssEncResponse {
        /// True for `G`.
        accepted: bool,
    },
    // ----- authentication -----
    /// An `R` message from the server.
    Authentication(Authentication),
    /// PasswordMessage (answer to cleartext or MD5 requests). SECRET: holds
    /// the password or its MD5 hash, without the trailing NUL.
    Password {
        /// The password text or `md5...` hash.
        password: Bytes,
    },
    /// SASLInitialResponse. SECRET (the SCRAM client-first message is not
    /// secret, but other mechanisms may carry credentials here).
    SaslInitialResponse {
        /// Chosen mechanism, e.g. `SCRAM-SHA-256`.
        mechanism: Bytes,
        /// Initial response; `None` when sent as length -1.
        data: Option<Bytes>,
    },
    /// SASLResponse (e.g. SCRAM client-final with the proof). SECRET.
    SaslResponse {
        /// Mechanism data.
        data: Bytes,
    },
    /// GSSResponse, or a `p` message seen without any preceding
    /// authentication request. SECRET.
    GssResponse {
        /// Opaque token.
        data: Bytes,
    },
    // ----- session state (backend) -----
    /// ParameterStatus.
    ParameterStatus {
        /// Parameter name.
        name: Bytes,
        /// Its value.
        value: Bytes,
    },
    /// BackendKeyData: what a CancelRequest must quote.
    BackendKeyData {
        /// Backend process id.
        pid: u32,
        /// Secret key.
        secret_key: u32,
    },
    /// ReadyForQuery: ends every exchange.
    ReadyForQuery {
        /// Transaction status after the exchange.
        status: TransactionStatus,
    },
    /// NegotiateProtocolVersion.
    NegotiateProtocolVersion {
        /// Newest minor protocol version the server supports.
        minor: u32,
        /// Protocol options (`_pq_.*`) the server did not recognise.
        unrecognized: Vec<Bytes>,
    },
    // ----- simple and extended query (frontend) -----
    /// Simple Query.
    Query {
        /// The query string (one or more statements), without its NUL.
        sql: Bytes,
    },
    /// Parse.
    Parse {
        /// Prepared statement name (empty: the unnamed statement).
        name: Bytes,
        /// SQL text.
        sql: Bytes,
        /// Parameter type OIDs the client specified (0: let the server infer).
        param_types: Vec<u32>,
    },
    /// Bind.
    Bind(Box<Bind>),
    /// Describe a statement or a portal.
    Describe {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: Bytes,
    },
    /// Execute.
    Execute {
        /// Portal name.
        portal: Bytes,
        /// Row limit; 0 means no limit.
        max_rows: u32,
    },
    /// Sync: ends an extended-protocol batch; the server answers ReadyForQuery.
    Sync,
    /// Flush.
    Flush,
    /// Close a statement or portal.
    Close {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: Bytes,
    },
    /// Fast-path FunctionCall.
    FunctionCall {
        /// OID of the function.
        function: u32,
        /// Argument format codes (0 text, 1 binary), as sent.
        arg_formats: Vec<i16>,
        /// Argument values; `None` is NULL.
        args: Vec<Option<Bytes>>,
        /// Result format code.
        result_format: i16,
    },
    /// Terminate.
    Terminate,
    // ----- results (backend) -----
    /// ParseComplete.
    ParseComplete,
    /// BindComplete.
    BindComplete,
    /// CloseComplete.
    CloseComplete,
    /// ParameterDescription: parameter type OIDs of a described statement.
    ParameterDescription {
        /// Type OIDs.
        types: Vec<u32>,
    },
    /// RowDescription.
    RowDescription {
        /// The result columns.
        columns: Vec<Column>,
    },
    /// NoData: the described statement or portal returns no rows.
    NoData,
    /// PortalSuspended: Execute reached its row limit.
    PortalSuspended,
    /// A run of consecutive DataRow messages, coalesced into one event so
    /// that big result sets cost one event, not one per row. The message's
    /// `raw` covers the whole run (capped); only the first
    /// [`super::SAMPLE_ROWS`] rows are parsed and decoded.
    DataRows {
        /// Number of DataRow messages in the run.
        count: u64,
        /// Total bytes of the run on the wire (headers included).
        len: u64,
        /// The first rows, each value decoded with the current RowDescription.
        rows: Vec<Vec<super::PgValue>>,
    },
    /// CommandComplete.
    CommandComplete {
        /// Command tag, e.g. `SELECT 5`, `INSERT 0 1`, `UPDATE 3`.
        tag: Bytes,
    },
    /// EmptyQueryResponse.
    EmptyQueryResponse,
    /// CopyInResponse, CopyOutResponse or CopyBothResponse.
    CopyResponse(CopyResponse),
    /// A run of consecutive CopyData messages in one direction, coalesced
    /// like [`PgMessage::DataRows`]; `raw` covers the run (capped).
    CopyData {
        /// Number of CopyData messages.
        count: u64,
        /// Total bytes of the run on the wire (headers included).
        len: u64,
    },
    /// CopyDone.
    CopyDone,
    /// CopyFail (frontend).
    CopyFail {
        /// Reason the client gave.
        message: Bytes,
    },
    /// FunctionCallResponse.
    FunctionCallResponse {
        /// Result value; `None` is NULL.
        value: Option<Bytes>,
    },
    /// ErrorResponse.
    ErrorResponse(Box<ErrorFields>),
    /// NoticeResponse.
    NoticeResponse(Box<ErrorFields>),
    /// NotificationResponse (LISTEN/NOTIFY), asynchronous.
    NotificationResponse {
        /// Process id of the notifying backend.
        pid: u32,
        /// Channel name.
        channel: Bytes,
        /// Payload string.
        payload: Bytes,
    },
    /// A message whose frame was fine but whose body did not parse. Decoding
    /// goes on with the next message.
    Malformed {
        /// The message tag (0 for an untagged startup packet).
        tag: u8,
        /// What was wrong.
        reason: &'static str,
    },
}

impl PgMessage {
    /// True for messages that carry credentials: a recorder blanks them
    /// (both this decoded form and the message's raw bytes).
    pub fn is_secret(&self) -> bool {
        matches!(
            self,
            PgMessage::Password { .. }
                | PgMessage::SaslInitialResponse { .. }
                | PgMessage::SaslResponse { .. }
                | PgMessage::GssResponse { .. }
        )
    }

    /// A copy with secrets replaced by `***` (other messages unchanged).
    pub fn redacted(&self) -> PgMessage {
        let stars = Bytes::from_static(b"***");
        match self {
            PgMessage::Password { .. } => PgMessage::Password { password: stars },
            PgMessage::SaslInitialResponse { mechanism, data } => PgMessage::SaslInitialResponse {
                mechanism: mechanism.clone(),
                data: data.as_ref().map(|_| stars),
            },
            PgMessage::SaslResponse { .. } => PgMessage::SaslResponse { data: stars },
            PgMessage::GssResponse { .. } => PgMessage::GssResponse { data: stars },
            other => other.clone(),
        }
    }
}

/// The StartupMessage.
#[derive(Clone, Debug, PartialEq)]
pub struct Startup {
    /// Protocol version: major in the high 16 bits (3), minor in the low.
    pub protocol: u32,
    /// Parameters in order: `user`, `database`, `application_name`,
    /// `options`, `client_encoding`, `_pq_.*` ...
    pub params: Vec<(Bytes, Bytes)>,
}

impl Startup {
    /// The value of parameter `name`, if sent.
    pub fn param(&self, name: &str) -> Option<&Bytes> {
        self.params.iter().find(|(k, _)| k.as_ref() == name.as_bytes()).map(|(_, v)| v)
    }
    /// `user`, lossily decoded.
    pub fn user_str(&self) -> Option<Cow<'_, str>> {
        self.param("user").map(text)
    }
    /// `database` (defaults to the user name on the server when absent).
    pub fn database_str(&self) -> Option<Cow<'_, str>> {
        self.param("database").map(text)
    }
}

/// An authentication message from the server.
#[derive(Clone, Debug, PartialEq)]
pub enum Authentication {
    /// AuthenticationOk.
    Ok,
    /// AuthenticationCleartextPassword.
    CleartextPassword,
    /// AuthenticationMD5Password.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// AuthenticationSASL.
    Sasl {
        /// Offered mechanisms, e.g. `SCRAM-SHA-256`, `SCRAM-SHA-256-PLUS`.
        mechanisms: Vec<Bytes>,
    },
    /// AuthenticationSASLContinue (e.g. SCRAM server-first).
    SaslContinue {
        /// Mechanism data.
        data: Bytes,
    },
    /// AuthenticationSASLFinal (e.g. SCRAM server-final).
    SaslFinal {
        /// Mechanism data.
        data: Bytes,
    },
    /// KerberosV5, GSS, GSSContinue, SSPI or anything newer.
    Other {
        /// The request code (see [`super::tags::auth`]).
        code: u32,
        /// Remaining bytes.
        data: Bytes,
    },
}

/// Transaction status in ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block (queries rejected until ROLLBACK).
    Failed,
    /// Any other byte.
    Unknown(u8),
}

impl TransactionStatus {
    /// From the status byte.
    pub fn from_byte(b: u8) -> TransactionStatus {
        match b {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            o => TransactionStatus::Unknown(o),
        }
    }
}

/// What Describe and Close name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `S`: a prepared statement.
    Statement,
    /// `P`: a portal.
    Portal,
}

impl Target {
    /// The wire byte.
    pub fn byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// The Bind message.
#[derive(Clone, Debug, PartialEq)]
pub struct Bind {
    /// Destination portal (empty: unnamed).
    pub portal: Bytes,
    /// Source prepared statement (empty: unnamed).
    pub statement: Bytes,
    /// Parameter format codes as sent: none (all text), one (applies to
    /// all), or one per parameter. 0 text, 1 binary.
    pub param_formats: Vec<i16>,
    /// Parameter values as sent; `None` is NULL.
    pub params: Vec<Option<Bytes>>,
    /// Result-column format codes, same convention as `param_formats`.
    pub result_formats: Vec<i16>,
}

/// The format code that applies to item `i` under PostgreSQL's convention
/// (none: all text, one: all use it, else one each).
pub fn format_at(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

/// One column of a RowDescription.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Column name (label).
    pub name: Bytes,
    /// OID of the source table, 0 if not a plain column.
    pub table_oid: u32,
    /// Attribute number in that table, 0 if none.
    pub column_id: i16,
    /// Type OID.
    pub type_oid: u32,
    /// Type size (`pg_type.typlen`; negative: variable).
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// Format code: 0 text, 1 binary (always 0 when describing a statement).
    pub format: i16,
}

impl Column {
    /// The column name, lossily decoded.
    pub fn name_str(&self) -> Cow<'_, str> {
        text(&self.name)
    }
}

/// Which COPY response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyDirection {
    /// CopyInResponse: the client sends data (COPY FROM STDIN).
    In,
    /// CopyOutResponse: the server sends data (COPY TO STDOUT).
    Out,
    /// CopyBothResponse (streaming replication).
    Both,
}

/// CopyInResponse / CopyOutResponse / CopyBothResponse.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyResponse {
    /// Which of the three.
    pub direction: CopyDirection,
    /// Overall format: 0 text, 1 binary.
    pub format: i8,
    /// Per-column format codes.
    pub column_formats: Vec<i16>,
}

/// Fields of an ErrorResponse or NoticeResponse. The common fields are
/// pulled out; `fields` keeps every field as received (type byte, value).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ErrorFields {
    /// `V` (non-localized) or else `S`: `ERROR`, `FATAL`, `PANIC`, `WARNING`,
    /// `NOTICE`, `DEBUG`, `INFO`, `LOG`.
    pub severity: Bytes,
    /// `C`: SQLSTATE code, e.g. `42P01`.
    pub code: Bytes,
    /// `M`: primary message.
    pub message: Bytes,
    /// `D`: detail.
    pub detail: Option<Bytes>,
    /// `H`: hint.
    pub hint: Option<Bytes>,
    /// `P`: cursor position in the query string (1-based, characters).
    pub position: Option<u32>,
    /// Every field in order, including the ones above.
    pub fields: Vec<(u8, Bytes)>,
}

impl ErrorFields {
    /// The value of field `ty` (e.g. `b'n'` constraint name), if present.
    pub fn field(&self, ty: u8) -> Option<&Bytes> {
        self.fields.iter().find(|(t, _)| *t == ty).map(|(_, v)| v)
    }
    /// The message, lossily decoded.
    pub fn message_str(&self) -> Cow<'_, str> {
        text(&self.message)
    }
    /// The SQLSTATE, lossily decoded.
    pub fn code_str(&self) -> Cow<'_, str> {
        text(&self.code)
    }
    /// The severity, lossily decoded.
    pub fn severity_str(&self) -> Cow<'_, str> {
        text(&self.severity)
    }
}
