//! One-shot parsing of stored PostgreSQL messages, in the style of
//! postgres-protocol's `Message::parse`: the frame checks are the
//! decoder's ([`frame_header`], [`startup_header`]), the bodies are read by
//! the decoder's own body parsers, and DataRow bodies stay [`Bytes`] until
//! a [`DataRow`] view is asked for its values.

use super::message::PgMessage;
use super::parse::{self, AuthState};
use super::tags::{backend as b, frontend as f, startup as st};
use crate::{Direction, Limits, ParseError};
use bytes::Bytes;

/// Checks a tagged message's 5-byte header (tag, length) as the decoder
/// does: a tag known for this direction, a length of at least 4, a frame
/// within `max_frame`. Returns the frame's total length (tag included).
pub(crate) fn frame_header(dir: Direction, tag: u8, len: usize, max_frame: usize) -> Result<usize, String> {
    let side_name = if dir == Direction::ToServer { "frontend" } else { "backend" };
    let known = match dir {
        Direction::ToServer => matches!(
            tag,
            f::BIND | f::CLOSE | f::COPY_DATA | f::COPY_DONE | f::COPY_FAIL | f::DESCRIBE | f::EXECUTE | f::FLUSH
                | f::FUNCTION_CALL | f::PARSE | f::PASSWORD | f::QUERY | f::SYNC | f::TERMINATE
        ),
        Direction::ToClient => matches!(
            tag,
            b::AUTHENTICATION | b::BACKEND_KEY_DATA | b::BIND_COMPLETE | b::CLOSE_COMPLETE | b::COMMAND_COMPLETE
                | b::COPY_DATA | b::COPY_DONE | b::COPY_IN_RESPONSE | b::COPY_OUT_RESPONSE | b::COPY_BOTH_RESPONSE
                | b::DATA_ROW | b::EMPTY_QUERY_RESPONSE | b::ERROR_RESPONSE | b::FUNCTION_CALL_RESPONSE
                | b::NEGOTIATE_PROTOCOL_VERSION | b::NO_DATA | b::NOTICE_RESPONSE | b::NOTIFICATION_RESPONSE
                | b::PARAMETER_DESCRIPTION | b::PARAMETER_STATUS | b::PARSE_COMPLETE | b::PORTAL_SUSPENDED
                | b::READY_FOR_QUERY | b::ROW_DESCRIPTION
        ),
    };
    if !known {
        return Err(format!("pg: unknown {side_name} message tag {tag:#04x}"));
    }
    if len < 4 {
        return Err(format!("pg: {side_name} message {:?} with invalid length {len}", tag as char));
    }
    let total = len + 1;
    if total > max_frame {
        return Err(format!("pg: {side_name} message {:?} of {total} bytes exceeds max_frame {max_frame}", tag as char));
    }
    Ok(total)
}

/// Checks an untagged startup packet's header (length, request code) as
/// the decoder does.
pub(crate) fn startup_header(len: usize, code: u32, max_frame: usize) -> Result<(), String> {
    if !(8..=st::MAX_STARTUP_LEN.min(max_frame)).contains(&len) {
        return Err(format!(
            "pg: startup packet of {len} bytes out of range (8..={}; max_frame {max_frame})",
            st::MAX_STARTUP_LEN
        ));
    }
    let known = matches!(code, st::SSL_REQUEST | st::GSSENC_REQUEST | st::CANCEL_REQUEST) || code >> 16 == 3;
    if !known {
        return Err(format!("pg: unknown startup request code {code:#x}"));
    }
    Ok(())
}

fn incomplete(raw: &[u8]) -> ParseError {
    ParseError::Incomplete { protocol: "pg", have: raw.len() }
}

/// The tagged frame at the start of `raw`: its tag, its body and its total
/// length.
fn frame(dir: Direction, raw: &Bytes) -> Result<(u8, Bytes, usize), ParseError> {
    let head = raw.get(..5).ok_or_else(|| incomplete(raw))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let total = frame_header(dir, head[0], len, Limits::default().max_frame).map_err(ParseError::Invalid)?;
    if raw.len() < total {
        return Err(incomplete(raw));
    }
    Ok((head[0], raw.slice(5..total), total))
}

/// Parses the backend message at the start of `raw`: the message and its
/// length. A DataRow comes back as a one-row [`PgMessage::DataRows`]
/// without decoded rows: read its values with [`DataRow`].
pub fn parse_backend(raw: &Bytes) -> Result<(PgMessage, usize), ParseError> {
    let (tag, body, total) = frame(Direction::ToClient, raw)?;
    let msg = match tag {
        b::DATA_ROW => PgMessage::DataRows { count: 1, len: total as u64, rows: Vec::new() },
        b::COPY_DATA => PgMessage::CopyData { count: 1, len: total as u64 },
        _ => parse::backend(tag, body),
    };
    Ok((msg, total))
}

/// Parses the frontend message at the start of `raw` (a `p` message, whose
/// meaning depends on the authentication exchange, reads as a
/// GSSResponse).
pub fn parse_frontend(raw: &Bytes) -> Result<(PgMessage, usize), ParseError> {
    let (tag, body, total) = frame(Direction::ToServer, raw)?;
    let msg = match tag {
        f::COPY_DATA => PgMessage::CopyData { count: 1, len: total as u64 },
        _ => parse::frontend(tag, body, AuthState::None),
    };
    Ok((msg, total))
}

/// Parses the untagged startup packet at the start of `raw` (StartupMessage,
/// SSLRequest, GSSENCRequest, CancelRequest).
pub fn parse_startup(raw: &Bytes) -> Result<(PgMessage, usize), ParseError> {
    let head = raw.get(..8).ok_or_else(|| incomplete(raw))?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    startup_header(len, code, Limits::default().max_frame).map_err(ParseError::Invalid)?;
    if raw.len() < len {
        return Err(incomplete(raw));
    }
    Ok((parse::startup(code, raw.slice(8..len)), len))
}

/// The DataRow frames of a stored run of them (a recorded
/// [`PgMessage::DataRows`] message's bytes), as lazy views; a frame cut
/// short (by the recorder's cap) ends it, as does any other tag.
pub fn data_rows(raw: &Bytes) -> impl Iterator<Item = DataRow> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (tag, body, total) = frame(Direction::ToClient, &raw.slice(at.min(raw.len())..)).ok()?;
        at += total;
        (tag == b::DATA_ROW).then_some(DataRow { body })
    })
}

/// Where a stored Bind message's parameter values are in its bytes `raw`
/// (tag and length first, possibly cut short by the recorder's cap): one
/// entry per parameter the bytes reach, in order, `None` for a NULL, the
/// span clipped to `raw` for a value cut short. Empty when `raw` is not a
/// Bind or its header fields are cut or malformed. Redaction blanks the
/// secret ones in place, so the framing stays.
pub fn bind_param_spans(raw: &[u8]) -> Vec<Option<std::ops::Range<usize>>> {
    let mut out = Vec::new();
    if raw.first() != Some(&f::BIND) {
        return out;
    }
    let cstr_end = |at: usize| raw.get(at..).and_then(|s| s.iter().position(|&b| b == 0)).map(|i| at + i + 1);
    let u16_at = |at: usize| raw.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize);
    let Some(after_names) = cstr_end(5).and_then(cstr_end) else { return out };
    let Some(formats) = u16_at(after_names) else { return out };
    let count_at = after_names + 2 + 2 * formats;
    let Some(count) = u16_at(count_at) else { return out };
    let mut at = count_at + 2;
    for _ in 0..count {
        let Some(len) = raw.get(at..at + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { break };
        at += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let end = at.saturating_add(len as usize);
        out.push(Some(at.min(raw.len())..end.min(raw.len())));
        if end >= raw.len() {
            break;
        }
        at = end;
    }
    out
}

/// One DataRow, its values unread until asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataRow {
    body: Bytes,
}

impl DataRow {
    /// The row's values (`None`: NULL), zero-copy slices of the message.
    pub fn values(&self) -> Result<Vec<Option<Bytes>>, ParseError> {
        parse::data_row(self.body.clone()).map_err(|e| ParseError::Invalid(format!("pg: DataRow: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::encode;

    #[test]
    fn stored_messages() {
        let rd = Bytes::from_static(b"T\x00\x00\x00\x1b\x00\x01id\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00");
        let (m, n) = parse_backend(&rd).unwrap();
        assert_eq!(n, rd.len());
        let PgMessage::RowDescription { columns } = m else { panic!("{m:?}") };
        assert_eq!((columns[0].name_str(), columns[0].type_oid), ("id".into(), 23));
        let rows = Bytes::from_static(b"D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x017D\x00\x00\x00\x0a\x00\x01\xff\xff\xff\xffD\x00\x00");
        let values: Vec<_> = data_rows(&rows).map(|r| r.values().unwrap()).collect();
        assert_eq!(values, vec![vec![Some(Bytes::from_static(b"7"))], vec![None]]);
        assert_eq!(parse_backend(&rows.slice(..4)), Err(ParseError::Incomplete { protocol: "pg", have: 4 }));
        assert!(matches!(parse_backend(&Bytes::from_static(b"?\x00\x00\x00\x04")), Err(ParseError::Invalid(e)) if e.contains("unknown backend")));
        let mut buf = bytes::BytesMut::new();
        encode::startup(&mut buf, &[("user", "ann"), ("database", "db")]);
        let (PgMessage::Startup(s), _) = parse_startup(&buf.split().freeze()).unwrap() else { panic!() };
        assert_eq!(s.user_str().as_deref(), Some("ann"));
        encode::query(&mut buf, b"select 1");
        let (q, _) = parse_frontend(&buf.split().freeze()).unwrap();
        assert!(matches!(q, PgMessage::Query { .. }));
    }
}
