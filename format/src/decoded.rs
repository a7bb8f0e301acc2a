//! Decoded summaries of messages and exchanges: what the analyzer and
//! `oltrace cat` read without decoding bytes again. The exact bytes are in
//! [`crate::Message::data`]; these summaries hold what a person asks about
//! (SQL text, Redis command words, HTTP method, path and status).

use crate::bytes::BStr;
use crate::codec::{codec_enum, codec_struct};
use serde::{Deserialize, Serialize};

/// What one message says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoded {
    HttpRequest(HttpRequest),
    HttpResponse(HttpResponse),
    Pg(PgMessage),
    Redis(RedisMessage),
}

codec_enum!(Decoded { HttpRequest = 0, HttpResponse = 1, Pg = 2, Redis = 3 });

crate::small_enum::small_enum! {
    /// What a Redis message is ([`RedisMessage::kind`] as text; read it
    /// with [`RedisMessage::typed_kind`]).
    pub enum RedisKind {
        Command = 0 => "command",
        Reply = 1 => "reply",
        /// A server frame that answers no command (pub/sub, tracking).
        Push = 2 => "push",
    }
}

impl RedisMessage {
    /// [`RedisMessage::kind`] as a [`RedisKind`].
    pub fn typed_kind(&self) -> Option<RedisKind> {
        RedisKind::from_name(&self.kind)
    }
}

crate::small_enum::small_enum! {
    /// What a PostgreSQL message is ([`PgMessage::kind`] as text, named as
    /// the protocol documentation names it; read it with
    /// [`PgMessage::typed_kind`]). `Authentication` is an authentication
    /// request of a code the protocol does not define; `Malformed` a
    /// message the decoder could not read.
    pub enum PgKind {
        SslRequest = 0 => "SSLRequest",
        GssEncRequest = 1 => "GSSENCRequest",
        StartupMessage = 2 => "StartupMessage",
        CancelRequest = 3 => "CancelRequest",
        SslResponse = 4 => "SSLResponse",
        GssEncResponse = 5 => "GSSENCResponse",
        Query = 6 => "Query",
        Parse = 7 => "Parse",
        Bind = 8 => "Bind",
        Describe = 9 => "Describe",
        Execute = 10 => "Execute",
        Close = 11 => "Close",
        Sync = 12 => "Sync",
        Flush = 13 => "Flush",
        FunctionCall = 14 => "FunctionCall",
        Terminate = 15 => "Terminate",
        CopyData = 16 => "CopyData",
        CopyDone = 17 => "CopyDone",
        CopyFail = 18 => "CopyFail",
        PasswordMessage = 19 => "PasswordMessage",
        SaslInitialResponse = 20 => "SASLInitialResponse",
        SaslResponse = 21 => "SASLResponse",
        GssResponse = 22 => "GSSResponse",
        AuthenticationOk = 23 => "AuthenticationOk",
        AuthenticationCleartextPassword = 24 => "AuthenticationCleartextPassword",
        AuthenticationMd5Password = 25 => "AuthenticationMD5Password",
        AuthenticationSasl = 26 => "AuthenticationSASL",
        AuthenticationSaslContinue = 27 => "AuthenticationSASLContinue",
        AuthenticationSaslFinal = 28 => "AuthenticationSASLFinal",
        AuthenticationKerberosV5 = 29 => "AuthenticationKerberosV5",
        AuthenticationGss = 30 => "AuthenticationGSS",
        AuthenticationGssContinue = 31 => "AuthenticationGSSContinue",
        AuthenticationSspi = 32 => "AuthenticationSSPI",
        Authentication = 33 => "Authentication",
        BackendKeyData = 34 => "BackendKeyData",
        ParameterStatus = 35 => "ParameterStatus",
        ReadyForQuery = 36 => "ReadyForQuery",
        NegotiateProtocolVersion = 37 => "NegotiateProtocolVersion",
        ParseComplete = 38 => "ParseComplete",
        BindComplete = 39 => "BindComplete",
        CloseComplete = 40 => "CloseComplete",
        ParameterDescription = 41 => "ParameterDescription",
        RowDescription = 42 => "RowDescription",
        NoData = 43 => "NoData",
        PortalSuspended = 44 => "PortalSuspended",
        DataRow = 45 => "DataRow",
        CommandComplete = 46 => "CommandComplete",
        EmptyQueryResponse = 47 => "EmptyQueryResponse",
        CopyInResponse = 48 => "CopyInResponse",
        CopyOutResponse = 49 => "CopyOutResponse",
        CopyBothResponse = 50 => "CopyBothResponse",
        FunctionCallResponse = 51 => "FunctionCallResponse",
        ErrorResponse = 52 => "ErrorResponse",
        NoticeResponse = 53 => "NoticeResponse",
        NotificationResponse = 54 => "NotificationResponse",
        Malformed = 55 => "Malformed",
    }
}

impl PgMessage {
    /// [`PgMessage::kind`] as a [`PgKind`] (`None` for a name no decoder
    /// writes).
    pub fn typed_kind(&self) -> Option<PgKind> {
        PgKind::from_name(&self.kind)
    }
}

crate::small_enum::small_enum! {
    /// The RESP type of a Redis reply ([`RedisReply::kind`] as text; read
    /// it with [`RedisReply::typed_kind`]). RESP2 and RESP3 errors are both
    /// `error`, null bulk strings and arrays both `null`.
    pub enum ReplyType {
        Simple = 0 => "simple",
        Error = 1 => "error",
        Integer = 2 => "integer",
        Bulk = 3 => "bulk",
        Null = 4 => "null",
        Array = 5 => "array",
        Map = 6 => "map",
        Set = 7 => "set",
        Push = 8 => "push",
        Bool = 9 => "bool",
        Double = 10 => "double",
        BigNumber = 11 => "big_number",
        Verbatim = 12 => "verbatim",
        Attribute = 13 => "attribute",
    }
}

impl RedisReply {
    /// [`RedisReply::kind`] as a [`ReplyType`].
    pub fn typed_kind(&self) -> Option<ReplyType> {
        ReplyType::from_name(&self.kind)
    }

    /// An error reply (`-ERR ...`, or a RESP3 bulk error).
    pub fn is_error(&self) -> bool {
        self.typed_kind() == Some(ReplyType::Error)
    }
}

impl Decoded {
    /// A server message that answers no request: a PostgreSQL
    /// NotificationResponse or a Redis push.
    pub fn is_unsolicited(&self) -> bool {
        match self {
            Decoded::Pg(p) => p.typed_kind() == Some(PgKind::NotificationResponse),
            Decoded::Redis(r) => r.typed_kind() == Some(RedisKind::Push),
            _ => false,
        }
    }
}

/// An HTTP request head.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: String,
    /// The request target as sent (origin-form or absolute-form).
    pub target: String,
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    #[serde(default)]
    pub version: u8,
    /// `Content-Type`, when present. (The other headers are in the
    /// message's exact bytes, [`crate::Message::data`].)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Body length after removing chunked framing.
    #[serde(default)]
    pub body_len: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub chunked: bool,
}

codec_struct!(HttpRequest { method = 0, target = 1, version = 2, content_type = 3, body_len = 4, chunked = 5 });

/// An HTTP response head (an interim `100 Continue` too).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub version: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub body_len: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub chunked: bool,
}

codec_struct!(HttpResponse { status = 0, reason = 1, version = 2, content_type = 3, body_len = 4, chunked = 5 });

/// A PostgreSQL message. `kind` names it as the protocol documentation
/// does (`Query`, `Parse`, `Bind`, `DataRow`, `CommandComplete`, ...); the
/// other fields are set where that message has them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PgMessage {
    pub kind: String,
    /// SQL text (Query, Parse; Execute and Bind when the statement is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Prepared statement name (Parse, Bind, Describe, Close).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Bind parameters as text (`None` is SQL NULL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Option<String>>,
    /// Column names (RowDescription).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Row values as text: a sample, capped (DataRow runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Vec<Option<String>>>,
    /// How many rows the message (or run of DataRow messages) holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    /// Command tag (CommandComplete), e.g. `SELECT 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<PgError>,
    /// Other named fields: startup parameters, ParameterStatus, a
    /// notification's channel and payload, the transaction status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

codec_struct!(PgMessage {
    kind = 0,
    sql = 1,
    statement = 2,
    params = 3,
    columns = 4,
    rows = 5,
    row_count = 6,
    tag = 7,
    error = 8,
    fields = 9,
});

/// An ErrorResponse or NoticeResponse.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgError {
    pub severity: String,
    /// SQLSTATE code, e.g. `42P01`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

codec_struct!(PgError { severity = 0, code = 1, message = 2, detail = 3, hint = 4 });

/// A Redis command, reply or push.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisMessage {
    /// `command`, `reply` or `push`.
    pub kind: String,
    /// Command words (commands), capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<BStr>,
    /// The reply (replies and pushes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<RedisReply>,
}

codec_struct!(RedisMessage { kind = 0, args = 1, reply = 2 });

/// A summary of a RESP value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisReply {
    /// RESP type: `simple`, `error`, `integer`, `bulk`, `null`, `array`,
    /// `map`, `set`, `push`, `bool`, `double`, `big_number`, `verbatim`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Text of a string, error, double or big number, capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<BStr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integer: Option<i64>,
    /// Element count of an aggregate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

codec_struct!(RedisReply { kind = 0, text = 1, integer = 2, len = 3 });

/// The protocol's summary of an exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeSummary {
    Http(HttpExchange),
    Pg(PgExchange),
    Redis(RedisExchange),
}

codec_enum!(ExchangeSummary { Http = 0, Pg = 1, Redis = 2 });

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpExchange {
    pub method: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Final status; absent when no response came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Body lengths (after de-chunking).
    #[serde(default)]
    pub request_body_len: u64,
    #[serde(default)]
    pub response_body_len: u64,
}

codec_struct!(HttpExchange {
    method = 0,
    target = 1,
    host = 2,
    status = 3,
    request_body_len = 4,
    response_body_len = 5,
});

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PgExchange {
    /// The statements run, in order (one for a simple Query without `;`,
    /// several for a pipeline before one Sync).
    pub statements: Vec<String>,
    /// True for the extended protocol (Parse/Bind/Execute).
    #[serde(default, skip_serializing_if = "is_false")]
    pub extended: bool,
    /// Command tags, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Rows returned (DataRow messages).
    #[serde(default)]
    pub rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<PgError>,
    /// Transaction status after ReadyForQuery: `I`, `T` or `E`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
}

codec_struct!(PgExchange { statements = 0, extended = 1, tags = 2, rows = 3, error = 4, txn = 5 });

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisExchange {
    /// The command name, upper case (`GET`, `SET`, ...).
    pub command: String,
    /// The remaining arguments, capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<BStr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<RedisReply>,
}

codec_struct!(RedisExchange { command = 0, args = 1, reply = 2 });

fn is_false(b: &bool) -> bool {
    !*b
}
