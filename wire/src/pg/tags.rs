//! Message tags and startup codes of the PostgreSQL protocol 3.0, as named
//! constants. Frontend and backend reuse some letters with different meanings
//! (`D` is Describe one way and DataRow the other), hence two modules.

/// Tags of messages the client sends (after the untagged startup packet).
pub mod frontend {
    /// Bind a prepared statement to parameters, creating a portal.
    pub const BIND: u8 = b'B';
    /// Close a prepared statement or portal.
    pub const CLOSE: u8 = b'C';
    /// COPY data.
    pub const COPY_DATA: u8 = b'd';
    /// End of COPY data.
    pub const COPY_DONE: u8 = b'c';
    /// COPY failed on the client side.
    pub const COPY_FAIL: u8 = b'f';
    /// Describe a statement or portal.
    pub const DESCRIBE: u8 = b'D';
    /// Execute a portal.
    pub const EXECUTE: u8 = b'E';
    /// Ask the server to flush its output.
    pub const FLUSH: u8 = b'H';
    /// Fast-path function call.
    pub const FUNCTION_CALL: u8 = b'F';
    /// Parse a statement.
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse:
    /// which one depends on the preceding authentication request.
    pub const PASSWORD: u8 = b'p';
    /// Simple query.
    pub const QUERY: u8 = b'Q';
    /// End of an extended-protocol batch.
    pub const SYNC: u8 = b'S';
    /// Connection end.
    pub const TERMINATE: u8 = b'X';
}

/// Tags of messages the server sends.
pub mod backend {
    /// Authentication request or result (`AuthenticationOk`, ...).
    pub const AUTHENTICATION: u8 = b'R';
    /// Process id and secret key for cancel requests.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// Bind succeeded.
    pub const BIND_COMPLETE: u8 = b'2';
    /// Close succeeded.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// A command finished; carries its tag (`SELECT 3`).
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// COPY data.
    pub const COPY_DATA: u8 = b'd';
    /// End of COPY data.
    pub const COPY_DONE: u8 = b'c';
    /// Server is ready to receive COPY data (COPY FROM STDIN).
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// Server starts sending COPY data (COPY TO STDOUT).
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// Both-ways COPY (replication).
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    /// One result row.
    pub const DATA_ROW: u8 = b'D';
    /// The query string was empty.
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// Error, with typed fields.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// Result of a fast-path function call.
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// The server does not support the requested minor version or options.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// Describe found no result columns.
    pub const NO_DATA: u8 = b'n';
    /// Notice (warning), same fields as an error.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// Asynchronous LISTEN/NOTIFY notification.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// Parameter types of a described statement.
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// A run-time parameter's value (`server_version`, `TimeZone`, ...).
    pub const PARAMETER_STATUS: u8 = b'S';
    /// Parse succeeded.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// Execute stopped at its row limit.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// Ready for a new query; carries the transaction status.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// Result columns.
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// Request codes of the untagged startup packets (the 4 bytes after the length).
pub mod startup {
    /// Protocol 3.0 StartupMessage (`3 << 16`); minor versions add to it.
    pub const PROTOCOL_3_0: u32 = 196_608;
    /// SSLRequest.
    pub const SSL_REQUEST: u32 = 80_877_103;
    /// GSSENCRequest.
    pub const GSSENC_REQUEST: u32 = 80_877_104;
    /// CancelRequest.
    pub const CANCEL_REQUEST: u32 = 80_877_102;
    /// Largest startup packet the server accepts (its MAX_STARTUP_PACKET_LENGTH).
    pub const MAX_STARTUP_LEN: usize = 10_000;
}

/// Authentication request codes (first int32 of an `R` message).
pub mod auth {
    pub const OK: u32 = 0;
    pub const KERBEROS_V5: u32 = 2;
    pub const CLEARTEXT_PASSWORD: u32 = 3;
    pub const MD5_PASSWORD: u32 = 5;
    pub const GSS: u32 = 7;
    pub const GSS_CONTINUE: u32 = 8;
    pub const SSPI: u32 = 9;
    pub const SASL: u32 = 10;
    pub const SASL_CONTINUE: u32 = 11;
    pub const SASL_FINAL: u32 = 12;
}

/// Type OIDs the codec decodes to text (from `pg_type.dat`).
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}
