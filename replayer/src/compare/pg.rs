//! PostgreSQL responses: what each statement of the exchange returned.
//!
//! The server's messages are walked in order and cut into one
//! [`StatementResult`] per statement (ended by CommandComplete,
//! EmptyQueryResponse, PortalSuspended or ErrorResponse). Columns come from
//! the RowDescription bytes (name, type, format code), rows from the
//! DataRow bytes, both read by `wire::pg`'s at-rest parsers: a recorded run of DataRows is one message holding many
//! `'D'` frames, each parsed for every value, so every kept row is compared
//! (the decoded summary only samples a few).
//!
//! Fields: `column[1]` (name and type), `rows` (row count), `row[3].balance`
//! (a value; `row[3][2]` when no RowDescription named the column), `tag[0]`
//! (the statement's command tag), `error.code` (SQLSTATE; the message is
//! shown beside it). With several statements in one exchange, column and
//! row fields are prefixed `stmt[1].`. A DataRow run cut by the recorder's
//! cap compares the rows both sides kept, then the row count, then the
//! hash of the whole run.

use bytes::Bytes;
use format::{Decoded, Message, PgError, PgKind};
use wire::pg::values::decode_value;
use wire::pg::{Column, PgMessage, PgValue};

use super::Sink;

/// What one statement returned.
#[derive(Clone, Debug, Default)]
pub struct StatementResult {
    pub columns: Option<Vec<Column>>,
    /// Every row the messages kept, every value (`None`: NULL).
    pub rows: Vec<Vec<Option<Bytes>>>,
    /// Rows the server sent (the decoded `row_count`, which counts past
    /// the cap).
    pub row_count: u64,
    /// A DataRow run was cut by the cap; then `kept_bytes` and `hashes`
    /// say how much was kept and what the whole was.
    pub cut: bool,
    pub kept_bytes: usize,
    pub hashes: Vec<Option<u64>>,
    pub tag: Option<String>,
    pub error: Option<PgError>,
}

impl StatementResult {
    fn is_empty(&self) -> bool {
        self.columns.is_none() && self.rows.is_empty() && self.row_count == 0 && self.tag.is_none() && self.error.is_none()
    }
}

/// The statement results in the server's messages `msgs`.
pub fn results(msgs: &[Message]) -> Vec<StatementResult> {
    let mut out = Vec::new();
    let mut cur = StatementResult::default();
    for m in msgs.iter().filter(|m| m.dir == format::Direction::ToClient) {
        let Some(Decoded::Pg(d)) = &m.decoded else { continue };
        let bytes = &m.data.bytes.0;
        let Some(kind) = d.typed_kind() else { continue };
        match kind {
            PgKind::RowDescription => cur.columns = Some(row_description(bytes)),
            PgKind::DataRow => {
                let run = Bytes::copy_from_slice(bytes);
                cur.rows.extend(wire::pg::data_rows(&run).filter_map(|row| row.values().ok()));
                cur.row_count += d.row_count.unwrap_or(0);
                cur.cut |= (bytes.len() as u64) < m.data.len;
                cur.kept_bytes += bytes.len();
                cur.hashes.push(m.data.hash);
            }
            PgKind::CommandComplete | PgKind::EmptyQueryResponse | PgKind::PortalSuspended | PgKind::ErrorResponse => {
                match kind {
                    PgKind::CommandComplete => cur.tag = d.tag.clone(),
                    PgKind::EmptyQueryResponse => cur.tag = Some("(empty query)".into()),
                    PgKind::PortalSuspended => cur.tag = Some("(portal suspended)".into()),
                    _ => cur.error = d.error.clone(),
                }
                out.push(std::mem::take(&mut cur));
            }
            _ => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The columns of a RowDescription message.
fn row_description(msg: &[u8]) -> Vec<Column> {
    match wire::pg::parse_backend(&Bytes::copy_from_slice(msg)) {
        Ok((PgMessage::RowDescription { columns }, _)) => columns,
        _ => Vec::new(),
    }
}

/// A type OID as PostgreSQL names it, for the common types.
pub fn type_name(oid: u32) -> String {
    use wire::pg::tags::oid::*;
    let name = match oid {
        BOOL => "bool",
        BYTEA => "bytea",
        CHAR => "char",
        NAME => "name",
        INT8 => "int8",
        INT2 => "int2",
        INT4 => "int4",
        TEXT => "text",
        OID => "oid",
        JSON => "json",
        FLOAT4 => "float4",
        FLOAT8 => "float8",
        UNKNOWN => "unknown",
        BPCHAR => "bpchar",
        VARCHAR => "varchar",
        DATE => "date",
        TIME => "time",
        TIMESTAMP => "timestamp",
        TIMESTAMPTZ => "timestamptz",
        NUMERIC => "numeric",
        UUID => "uuid",
        JSONB => "jsonb",
        other => return format!("oid {other}"),
    };
    name.to_owned()
}

/// A value as text: PostgreSQL's output for text format and the common
/// binary types, `\x` hex for other binary values, `NULL` for NULL. Text
/// with control characters (a binary value whose column was described in
/// an earlier exchange, so its format is unknown here) is escaped.
pub fn value_text(v: Option<&Bytes>, col: Option<&Column>) -> String {
    let (oid, format) = col.map_or((0, 0), |c| (c.type_oid, c.format));
    match decode_value(oid, format, v) {
        PgValue::Null => "NULL".into(),
        PgValue::Text(s) if s.chars().any(char::is_control) => format::bytes::escape(s.as_bytes()),
        PgValue::Text(s) => s,
        PgValue::Raw { data, .. } => format!("\\x{}", data.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

fn column_text(c: Option<&Column>) -> String {
    c.map_or("(absent)".into(), |c| format!("{} {}", c.name_str(), type_name(c.type_oid)))
}

fn error_text(e: Option<&PgError>) -> (String, String) {
    match e {
        None => (String::new(), "(none)".into()),
        Some(e) => (e.code.clone(), format!("{} {}", e.code, e.message)),
    }
}

/// Differences between the recorded and replayed server messages.
pub fn compare(rec: &[Message], rep: &[Message], sink: &mut Sink) {
    let (ra, rb) = (results(rec), results(rep));
    let many = ra.len().max(rb.len()) > 1;
    let empty = StatementResult::default();
    for i in 0..ra.len().max(rb.len()) {
        let (a, b) = (ra.get(i).unwrap_or(&empty), rb.get(i).unwrap_or(&empty));
        let prefix = if many { format!("stmt[{i}].") } else { String::new() };
        compare_result(&prefix, a, b, sink);
        if a.tag != b.tag {
            let t = |r: &StatementResult| r.tag.clone().unwrap_or_else(|| "(none)".into());
            sink.push(format!("tag[{i}]"), &t(a), &t(b));
        }
    }
    let ea = ra.iter().find_map(|r| r.error.as_ref());
    let eb = rb.iter().find_map(|r| r.error.as_ref());
    if ea.map(|e| &e.code) != eb.map(|e| &e.code) {
        let ((ca, sa), (cb, sb)) = (error_text(ea), error_text(eb));
        sink.push_shown("error.code".into(), &ca, &cb, super::show(&sa), super::show(&sb));
    }
}

fn compare_result(prefix: &str, a: &StatementResult, b: &StatementResult, sink: &mut Sink) {
    let no_cols = Vec::new();
    let (ca, cb) = (a.columns.as_ref().unwrap_or(&no_cols), b.columns.as_ref().unwrap_or(&no_cols));
    for j in 0..ca.len().max(cb.len()) {
        let (x, y) = (ca.get(j), cb.get(j));
        if x.map(|c| (&c.name, c.type_oid)) != y.map(|c| (&c.name, c.type_oid)) {
            sink.push(format!("{prefix}column[{j}]"), &column_text(x), &column_text(y));
        }
    }
    if a.row_count != b.row_count {
        sink.push(format!("{prefix}rows"), &a.row_count.to_string(), &b.row_count.to_string());
    }
    let kept = a.rows.len().min(b.rows.len());
    let mut all_same = true;
    for r in 0..kept {
        let (x, y) = (&a.rows[r], &b.rows[r]);
        for j in 0..x.len().max(y.len()) {
            let (vx, vy) = (x.get(j).cloned().flatten(), y.get(j).cloned().flatten());
            let present = (j < x.len(), j < y.len());
            if vx == vy && present.0 == present.1 {
                continue;
            }
            all_same = false;
            let name = ca.get(j).or(cb.get(j)).map_or(format!("[{j}]"), |c| format!(".{}", c.name_str()));
            let text = |v: Option<Bytes>, here: bool, col: Option<&Column>| if here { value_text(v.as_ref(), col) } else { "(absent)".into() };
            sink.push(format!("{prefix}row[{r}]{name}"), &text(vx, present.0, ca.get(j)), &text(vy, present.1, cb.get(j)));
        }
    }
    // Past the kept rows: the hash of the whole run, when both runs were
    // cut at the same byte (same framing up to there, so same hash = same
    // content) and nothing before differed.
    if all_same && a.row_count == b.row_count && a.cut && b.cut && a.kept_bytes == b.kept_bytes && a.hashes != b.hashes {
        sink.push_shown(
            format!("{prefix}rows"),
            "",
            "",
            format!("{} rows (past row {kept}: hash)", a.row_count),
            "differ".into(),
        );
    }
}
