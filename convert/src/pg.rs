//! PostgreSQL messages and exchanges to records, written over a record that
//! may already hold an earlier conversion's values, reusing their
//! allocations (as `redis.rs` and `http.rs` do for Redis and HTTP).
//!
//! Built fresh, every message and exchange record allocated each of its
//! strings and lists and freed them after encoding: malloc and free were
//! about a fifth of the recorder's CPU on PostgreSQL loads.
//!
//! A PostgreSQL summary has many optional strings and lists, and each kind
//! of message sets a different few of them (a Bind its statement and
//! parameters, the Execute after it two fields), so overwriting field by
//! field would free what one kind set and allocate it again for the next.
//! Instead a fill first empties the summary, keeping its strings (and
//! sample rows) in a [`Spare`] pool, then builds it as a fresh conversion
//! would, taking its strings from the pool. The emptying destructures the
//! structs, so a new field fails to compile until it is handled here; and
//! as every fill starts from an empty summary, a reused record carries
//! nothing over. The one-off path ([`crate::event_to_records`],
//! [`pg_decoded`]) runs the same code on an empty record and pool.

use std::fmt::{Display, Write};

use crate::fill::{self, set_lossy, set_str, Placement};
use crate::{exchange_status, redact, TEXT_CAP};
use format::{Decoded, ExchangeSummary};
use wire::pg::{self, PgMessage, PgValue};

/// Strings and sample rows emptied out of earlier records, for the next
/// ones to be written into.
#[derive(Default)]
pub(crate) struct Spare {
    strings: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

/// How many strings the pool keeps: more than a record usually holds (a
/// DataRow sample is ten rows), so a large record does not free its
/// strings only for the next to allocate them again.
const KEEP_STRINGS: usize = 1024;
/// Larger strings are freed, not kept: one huge statement should not pin
/// its memory for the rest of the run.
const KEEP_CAPACITY: usize = 4096;

impl Spare {
    fn keep(&mut self, s: String) {
        if self.strings.len() < KEEP_STRINGS && s.capacity() <= KEEP_CAPACITY {
            self.strings.push(s);
        }
    }

    fn keep_opt(&mut self, s: Option<String>) {
        if let Some(s) = s {
            self.keep(s);
        }
    }

    fn keep_error(&mut self, e: format::PgError) {
        let format::PgError { severity, code, message, detail, hint } = e;
        for s in [Some(severity), Some(code), Some(message), detail, hint] {
            self.keep_opt(s);
        }
    }

    fn keep_row(&mut self, mut row: Vec<Option<String>>) {
        while let Some(s) = row.pop() {
            self.keep_opt(s);
        }
        if self.rows.len() < pg::SAMPLE_ROWS {
            self.rows.push(row);
        }
    }

    /// An empty string: a kept one when there is one.
    fn string(&mut self) -> String {
        let mut s = self.strings.pop().unwrap_or_default();
        s.clear();
        s
    }

    /// An empty row: a kept one when there is one.
    fn row(&mut self) -> Vec<Option<String>> {
        self.rows.pop().unwrap_or_default()
    }

    fn text(&mut self, t: &str) -> String {
        let mut s = self.string();
        s.push_str(t);
        s
    }

    fn lossy(&mut self, b: &[u8]) -> String {
        let mut s = self.string();
        set_lossy(&mut s, b);
        s
    }

    fn display(&mut self, v: impl Display) -> String {
        let mut s = self.string();
        let _ = write!(s, "{v}");
        s
    }

    /// At most [`TEXT_CAP`] bytes of `t`, cut at a character boundary.
    fn capped_str(&mut self, t: &str) -> String {
        let mut end = t.len().min(TEXT_CAP);
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        self.text(&t[..end])
    }

    /// [`Spare::capped_str`] of `b` as text (lossy for non-UTF-8).
    fn capped(&mut self, b: &[u8]) -> String {
        // Only the bytes that can reach the text, and a few more: a
        // character across the cap is decoded whole (then left out), not
        // turned into U+FFFD.
        self.capped_str(&String::from_utf8_lossy(&b[..b.len().min(TEXT_CAP + 4)]))
    }

    /// `\x` and hex of at most [`TEXT_CAP`] / 2 bytes.
    fn hex(&mut self, b: &[u8]) -> String {
        let mut s = self.text("\\x");
        for x in &b[..b.len().min(TEXT_CAP / 2 - 1)] {
            let _ = write!(s, "{x:02x}");
        }
        s
    }

    /// Type OIDs, comma-separated.
    fn oids(&mut self, v: &[u32]) -> String {
        let mut s = self.string();
        for (i, oid) in v.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(s, "{sep}{oid}");
        }
        s
    }

    /// A named field of [`format::PgMessage::fields`].
    fn field(&mut self, name: &str, value: impl Display) -> (String, String) {
        (self.text(name), self.display(value))
    }

    fn value(&mut self, v: &PgValue) -> Option<String> {
        match v {
            PgValue::Null => None,
            PgValue::Text(t) => Some(self.capped_str(t)),
            PgValue::Raw { data, .. } => Some(self.hex(data)),
        }
    }

    /// Bind or FunctionCall `values` (of unknown type, in `formats`) onto
    /// `dst`.
    fn push_values(&mut self, dst: &mut Vec<Option<String>>, formats: &[i16], values: &[Option<bytes::Bytes>]) {
        for (i, v) in values.iter().enumerate() {
            dst.push(self.value(&pg::values::decode_value(0, pg::format_at(formats, i), v.as_ref())));
        }
    }

    fn error(&mut self, e: &pg::ErrorFields) -> format::PgError {
        format::PgError {
            severity: self.lossy(&e.severity),
            code: self.lossy(&e.code),
            message: self.lossy(&e.message),
            detail: e.detail.as_deref().map(|d| self.lossy(d)),
            hint: e.hint.as_deref().map(|h| self.lossy(h)),
        }
    }

    /// A transaction status as `I`, `T` or `E` (or the byte as sent).
    fn txn(&mut self, status: pg::TransactionStatus) -> String {
        match status {
            pg::TransactionStatus::Idle => self.text("I"),
            pg::TransactionStatus::InTransaction => self.text("T"),
            pg::TransactionStatus::Failed => self.text("E"),
            pg::TransactionStatus::Unknown(b) => self.capped(&[b]),
        }
    }
}

/// Fills `record` with PostgreSQL message `m` (whose kind is `p`) of
/// connection `conn`. With `rules` on, a message that carries a secret is
/// blanked after its header in the recorded bytes, and summarised as
/// [`PgMessage::redacted`] (the secret as `***`); the password literals of
/// a Query's or Parse's SQL ([`redact::sql_spans`]) are blanked in the
/// bytes and in the decoded `sql`; the parameters of a Bind to a statement
/// whose placeholders stand for secrets (`binds`, fed here with the
/// connection's Parse and Close messages) in the bytes and in the decoded
/// `params`.
pub(crate) fn fill_message(
    record: &mut format::Record,
    conn: u64,
    m: &wire::Message,
    p: &PgMessage,
    rules: &redact::Rules,
    binds: &mut redact::BindSecrets,
    spare: &mut Spare,
) {
    let redact = rules.enabled();
    let (data, decoded, redacted) = fill::message_fields(record, conn, &Placement::of(m), &m.raw.prefix);
    if !matches!(decoded, Some(Decoded::Pg(_))) {
        *decoded = Some(Decoded::Pg(format::PgMessage::default()));
    }
    let Some(Decoded::Pg(d)) = decoded else { unreachable!("set just above") };
    if redact && p.is_secret() {
        redact::pg_secret_message(&mut data.0);
        *redacted = true;
        fill_decoded(d, &p.redacted(), spare);
    } else {
        fill_decoded(d, p, spare);
        if redact && m.dir == wire::Direction::ToServer {
            match p {
                PgMessage::Parse { name, sql, .. } => binds.parse(rules, (0, conn), name, sql),
                PgMessage::Close { target: pg::Target::Statement, name } => binds.close((0, conn), name),
                PgMessage::Bind(b) => {
                    if let Some(secret) = binds.of((0, conn), &b.statement) {
                        *redacted |= redact::bind_message(&mut data.0, &mut d.params, &secret);
                    }
                }
                _ => {}
            }
        }
        if let (true, PgMessage::Query { sql } | PgMessage::Parse { sql, .. }) = (redact, p) {
            if let Some(text) = d.sql.as_mut() {
                if redact::sql_in_string(text) {
                    *redacted = true;
                    blank_sql_bytes(&mut data.0, &m.raw.prefix, sql);
                }
            }
        }
    }
}

/// Blanks the password literals of `sql` where it is in `data` (the
/// recorded copy of `prefix`, the message's kept bytes). The decoder's
/// `sql` is a slice of the message's bytes, so its place is where it
/// points; failing that, where its text is found; failing that, the whole
/// message after its 5-byte header is scanned.
fn blank_sql_bytes(data: &mut [u8], prefix: &[u8], sql: &[u8]) {
    let start = (sql.as_ptr() as usize).checked_sub(prefix.as_ptr() as usize).filter(|&o| o < prefix.len());
    let start = start.or_else(|| memchr::memmem::find(prefix, sql));
    let region = match start {
        Some(s) => s..(s + sql.len()).min(data.len()),
        None => 5.min(data.len())..data.len(),
    };
    redact::sql_in_place(&mut data[region]);
}

/// Fills `record` with PostgreSQL exchange `e` (whose detail is `p`) of
/// connection `conn`.
pub(crate) fn fill_exchange(record: &mut format::Record, conn: u64, e: &wire::Exchange, p: &pg::PgExchange, rules: &redact::Rules, spare: &mut Spare) {
    let summary =
        fill::exchange_fields(record, conn, e.timings, e.request_bytes, e.response_bytes, exchange_status(e.status));
    if !matches!(summary, ExchangeSummary::Pg(_)) {
        *summary = ExchangeSummary::Pg(format::PgExchange::default());
    }
    let ExchangeSummary::Pg(s) = summary else { unreachable!("set just above") };
    // Emptied into `spare` as `empty` does a message's summary, then built.
    let format::PgExchange { statements, extended, tags, rows, error, txn } = s;
    while let Some(old) = statements.pop() {
        spare.keep(old);
    }
    while let Some(old) = tags.pop() {
        spare.keep(old);
    }
    spare.keep_opt(txn.take());
    if let Some(old) = error.take() {
        spare.keep_error(old);
    }
    // What `PgStatement::sql_str` and `PgExchange::command_tags` give,
    // through `Spare::lossy`: their text conversion reads byte by byte,
    // and the tags would be collected into a vector first.
    statements.extend(p.statements.iter().map(|s| spare.lossy(s.sql.as_deref().unwrap_or_default())));
    if rules.enabled() {
        for s in statements.iter_mut() {
            redact::sql_in_string(s);
        }
    }
    *extended = p.kind == pg::PgExchangeKind::Extended;
    tags.extend(p.command_tag_bytes().map(|t| spare.lossy(t)));
    *rows = p.rows_returned();
    *error = p.error.as_ref().map(|e| spare.error(e));
    *txn = p.transaction_status.map(|t| spare.txn(t));
}

/// The [`format::PgMessage`] summary of one message (see
/// [`crate::event_to_records`]).
pub fn pg_decoded(p: &PgMessage) -> format::PgMessage {
    let mut d = format::PgMessage::default();
    fill_decoded(&mut d, p, &mut Spare::default());
    d
}

/// [`pg_decoded`] over `d`.
fn fill_decoded(d: &mut format::PgMessage, p: &PgMessage, spare: &mut Spare) {
    empty(d, spare);
    let kind = summarize(d, p, spare);
    set_str(&mut d.kind, kind.name());
}

/// Makes `d` as [`format::PgMessage::default`] is, its strings and rows
/// kept in `spare`.
fn empty(d: &mut format::PgMessage, spare: &mut Spare) {
    // Popped one by one rather than drained: most of these are empty, and
    // an empty drain still costs a few dozen instructions.
    let format::PgMessage { kind, sql, statement, params, columns, rows, row_count, tag, error, fields } = d;
    kind.clear();
    for old in [sql, statement, tag] {
        spare.keep_opt(old.take());
    }
    while let Some(old) = params.pop() {
        spare.keep_opt(old);
    }
    while let Some(old) = columns.pop() {
        spare.keep(old);
    }
    while let Some(old) = rows.pop() {
        spare.keep_row(old);
    }
    *row_count = None;
    if let Some(old) = error.take() {
        spare.keep_error(old);
    }
    while let Some((name, value)) = fields.pop() {
        spare.keep(name);
        spare.keep(value);
    }
}

/// Sets the fields of the empty `d` that message `p` has, and returns its
/// kind.
fn summarize(d: &mut format::PgMessage, p: &PgMessage, sp: &mut Spare) -> format::PgKind {
    use format::PgKind as K;
    use pg::Authentication as A;
    match p {
        PgMessage::SslRequest => K::SslRequest,
        PgMessage::GssEncRequest => K::GssEncRequest,
        PgMessage::Startup(s) => {
            let (major, minor) = (s.protocol >> 16, s.protocol & 0xffff);
            if (major, minor) != (3, 0) {
                d.fields.push(sp.field("protocol", format_args!("{major}.{minor}")));
            }
            d.fields.extend(s.params.iter().map(|(k, v)| (sp.lossy(k), sp.capped(v))));
            K::StartupMessage
        }
        PgMessage::CancelRequest { pid, secret_key } => {
            d.fields.push(sp.field("pid", pid));
            d.fields.push(sp.field("secret_key", secret_key));
            K::CancelRequest
        }
        PgMessage::SslResponse { accepted } => {
            d.fields.push(sp.field("accepted", accepted));
            K::SslResponse
        }
        PgMessage::GssEncResponse { accepted } => {
            d.fields.push(sp.field("accepted", accepted));
            K::GssEncResponse
        }
        PgMessage::Authentication(a) => match a {
            A::Ok => K::AuthenticationOk,
            A::CleartextPassword => K::AuthenticationCleartextPassword,
            A::Md5Password { salt } => {
                d.fields.push((sp.text("salt"), sp.hex(salt)));
                K::AuthenticationMd5Password
            }
            A::Sasl { mechanisms } => {
                d.fields.extend(mechanisms.iter().map(|m| (sp.text("mechanism"), sp.lossy(m))));
                K::AuthenticationSasl
            }
            A::SaslContinue { data } => {
                d.fields.push((sp.text("data"), sp.capped(data)));
                K::AuthenticationSaslContinue
            }
            A::SaslFinal { data } => {
                d.fields.push((sp.text("data"), sp.capped(data)));
                K::AuthenticationSaslFinal
            }
            A::Other { code, data } => {
                use pg::tags::auth;
                if !data.is_empty() {
                    d.fields.push((sp.text("data"), sp.hex(data)));
                }
                match *code {
                    auth::KERBEROS_V5 => K::AuthenticationKerberosV5,
                    auth::GSS => K::AuthenticationGss,
                    auth::GSS_CONTINUE => K::AuthenticationGssContinue,
                    auth::SSPI => K::AuthenticationSspi,
                    other => {
                        d.fields.insert(0, sp.field("code", other));
                        K::Authentication
                    }
                }
            }
        },
        PgMessage::Password { password } => {
            d.fields.push((sp.text("password"), sp.capped(password)));
            K::PasswordMessage
        }
        PgMessage::SaslInitialResponse { mechanism, data } => {
            d.fields.push((sp.text("mechanism"), sp.lossy(mechanism)));
            if let Some(data) = data {
                d.fields.push((sp.text("data"), sp.capped(data)));
            }
            K::SaslInitialResponse
        }
        PgMessage::SaslResponse { data } => {
            d.fields.push((sp.text("data"), sp.capped(data)));
            K::SaslResponse
        }
        PgMessage::GssResponse { data } => {
            d.fields.push((sp.text("data"), sp.capped(data)));
            K::GssResponse
        }
        PgMessage::ParameterStatus { name, value } => {
            d.fields.push((sp.lossy(name), sp.capped(value)));
            K::ParameterStatus
        }
        PgMessage::BackendKeyData { pid, secret_key } => {
            d.fields.push(sp.field("pid", pid));
            d.fields.push(sp.field("secret_key", secret_key));
            K::BackendKeyData
        }
        PgMessage::ReadyForQuery { status } => {
            d.fields.push((sp.text("status"), sp.txn(*status)));
            K::ReadyForQuery
        }
        PgMessage::NegotiateProtocolVersion { minor, unrecognized } => {
            d.fields.push(sp.field("minor", minor));
            d.fields.extend(unrecognized.iter().map(|o| (sp.text("unrecognized"), sp.lossy(o))));
            K::NegotiateProtocolVersion
        }
        PgMessage::Query { sql } => {
            d.sql = Some(sp.lossy(sql));
            K::Query
        }
        PgMessage::Parse { name, sql, param_types } => {
            d.statement = Some(sp.lossy(name));
            d.sql = Some(sp.lossy(sql));
            if !param_types.is_empty() {
                d.fields.push((sp.text("param_types"), sp.oids(param_types)));
            }
            K::Parse
        }
        PgMessage::Bind(b) => {
            d.statement = Some(sp.lossy(&b.statement));
            if !b.portal.is_empty() {
                d.fields.push((sp.text("portal"), sp.lossy(&b.portal)));
            }
            sp.push_values(&mut d.params, &b.param_formats, &b.params);
            K::Bind
        }
        PgMessage::Describe { target, name } => {
            describe_or_close(d, *target, name, sp);
            K::Describe
        }
        PgMessage::Execute { portal, max_rows } => {
            d.fields.push((sp.text("portal"), sp.lossy(portal)));
            d.fields.push(sp.field("max_rows", max_rows));
            K::Execute
        }
        PgMessage::Sync => K::Sync,
        PgMessage::Flush => K::Flush,
        PgMessage::Close { target, name } => {
            describe_or_close(d, *target, name, sp);
            K::Close
        }
        PgMessage::FunctionCall { function, arg_formats, args, result_format: _ } => {
            d.fields.push(sp.field("function", function));
            sp.push_values(&mut d.params, arg_formats, args);
            K::FunctionCall
        }
        PgMessage::Terminate => K::Terminate,
        PgMessage::ParseComplete => K::ParseComplete,
        PgMessage::BindComplete => K::BindComplete,
        PgMessage::CloseComplete => K::CloseComplete,
        PgMessage::ParameterDescription { types } => {
            d.fields.push((sp.text("types"), sp.oids(types)));
            K::ParameterDescription
        }
        PgMessage::RowDescription { columns } => {
            d.columns.extend(columns.iter().map(|c| sp.text(&c.name_str())));
            K::RowDescription
        }
        PgMessage::NoData => K::NoData,
        PgMessage::PortalSuspended => K::PortalSuspended,
        PgMessage::DataRows { count, len: _, rows } => {
            d.row_count = Some(*count);
            for values in rows {
                let mut row = sp.row();
                row.extend(values.iter().map(|v| sp.value(v)));
                d.rows.push(row);
            }
            K::DataRow
        }
        PgMessage::CommandComplete { tag } => {
            d.tag = Some(sp.lossy(tag));
            K::CommandComplete
        }
        PgMessage::EmptyQueryResponse => K::EmptyQueryResponse,
        PgMessage::CopyResponse(c) => {
            d.fields.push(sp.field("format", c.format));
            d.fields.push(sp.field("columns", c.column_formats.len()));
            match c.direction {
                pg::CopyDirection::In => K::CopyInResponse,
                pg::CopyDirection::Out => K::CopyOutResponse,
                pg::CopyDirection::Both => K::CopyBothResponse,
            }
        }
        PgMessage::CopyData { count, len: _ } => {
            d.fields.push(sp.field("count", count));
            K::CopyData
        }
        PgMessage::CopyDone => K::CopyDone,
        PgMessage::CopyFail { message } => {
            d.fields.push((sp.text("message"), sp.capped(message)));
            K::CopyFail
        }
        PgMessage::FunctionCallResponse { value } => {
            let mut row = sp.row();
            row.push(value.as_ref().map(|v| sp.capped(v)));
            d.rows.push(row);
            d.row_count = Some(1);
            K::FunctionCallResponse
        }
        PgMessage::ErrorResponse(e) => {
            d.error = Some(sp.error(e));
            K::ErrorResponse
        }
        PgMessage::NoticeResponse(e) => {
            d.error = Some(sp.error(e));
            K::NoticeResponse
        }
        PgMessage::NotificationResponse { pid, channel, payload } => {
            d.fields.push(sp.field("pid", pid));
            d.fields.push((sp.text("channel"), sp.lossy(channel)));
            d.fields.push((sp.text("payload"), sp.capped(payload)));
            K::NotificationResponse
        }
        PgMessage::Malformed { tag, reason } => {
            let tag = if tag.is_ascii_graphic() { sp.display(*tag as char) } else { sp.display(tag) };
            d.fields.push((sp.text("tag"), tag));
            d.fields.push(sp.field("reason", reason));
            K::Malformed
        }
    }
}

/// The target of a Describe or Close, and the statement or portal named.
fn describe_or_close(d: &mut format::PgMessage, target: pg::Target, name: &[u8], sp: &mut Spare) {
    let mut byte = sp.string();
    byte.push(target.byte() as char);
    d.fields.push((sp.text("target"), byte));
    match target {
        pg::Target::Statement => d.statement = Some(sp.lossy(name)),
        pg::Target::Portal => d.fields.push((sp.text("portal"), sp.lossy(name))),
    }
}
