//! Building values out of complete, already framed messages.
//!
//! Everything here runs after [`super::scan`] said a message is complete and
//! well formed, on the message's kept prefix (its raw bytes up to the cap).
//! Values borrow that prefix (zero-copy [`Bytes::slice`]s); when the prefix
//! is shorter than the message the value is cut where the prefix ends.
//! Nothing here panics or allocates in proportion to a count read from the
//! wire: vectors grow with the elements actually present.

use super::scan::{find_crlf, read_int_line, Spans, MAX_DEPTH};
use super::value::{RespKind, RespValue};
use bytes::Bytes;

/// Parses the value at the start of `src` (a complete message, or the
/// prefix of one when `src` was cut by the cap; `type_byte` is the
/// message's first byte). Returns the value and whether parsing ran into
/// the end of `src` (the value is partial).
pub(crate) fn parse_value(src: &Bytes, type_byte: Option<u8>) -> (RespValue, bool) {
    let mut p = FrameParser {
        src,
        pos: 0,
        cut: false,
    };
    match p.value(0) {
        Some(v) => (v, p.cut),
        None => (empty_of(type_byte), true),
    }
}

/// The empty value of the type that `t` starts (for a message whose kept
/// prefix is too short to hold even its first value).
fn empty_of(t: Option<u8>) -> RespValue {
    match t {
        Some(b'-') => RespValue::Error(Bytes::new()),
        Some(b':') => RespValue::Integer(0),
        Some(b'$') => RespValue::Bulk(Bytes::new()),
        Some(b'*') => RespValue::Array(Vec::new()),
        Some(b'_') => RespValue::Null,
        Some(b'#') => RespValue::Boolean(false),
        Some(b',') => RespValue::Double(Bytes::new()),
        Some(b'(') => RespValue::BigNumber(Bytes::new()),
        Some(b'!') => RespValue::BulkError(Bytes::new()),
        Some(b'=') => RespValue::Verbatim(Bytes::new()),
        Some(b'%') => RespValue::Map(Vec::new()),
        Some(b'~') => RespValue::Set(Vec::new()),
        Some(b'|') => RespValue::Attribute {
            attrs: Vec::new(),
            value: Box::new(RespValue::Null),
        },
        Some(b'>') => RespValue::Push(Vec::new()),
        _ => RespValue::Simple(Bytes::new()),
    }
}

/// `src[start..end]`, as a static [`Bytes`] when it is one of the status
/// lines most replies are (`OK`, `QUEUED`, `PONG`): cloning and dropping
/// those costs nothing, while a slice of the message costs two atomic
/// operations on its reference count, a fair share of a small reply's
/// decoding time.
fn known_text(src: &Bytes, start: usize, end: usize) -> Bytes {
    match src.get(start..end) {
        Some(b"OK") => Bytes::from_static(b"OK"),
        Some(b"QUEUED") => Bytes::from_static(b"QUEUED"),
        Some(b"PONG") => Bytes::from_static(b"PONG"),
        _ => src.slice(start..end),
    }
}

struct FrameParser<'a> {
    src: &'a Bytes,
    pos: usize,
    /// Set once parsing ran into the end of `src`.
    cut: bool,
}

impl FrameParser<'_> {
    fn stop(&mut self) -> Option<RespValue> {
        self.cut = true;
        self.pos = self.src.len();
        None
    }

    /// Room for at most as many elements as the remaining bytes can hold.
    fn capacity(&self, n: u64) -> usize {
        let room = self.src.len().saturating_sub(self.pos) / 3 + 1;
        usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(room)
            .min(1 << 16)
    }

    fn value(&mut self, depth: usize) -> Option<RespValue> {
        if depth > MAX_DEPTH + 1 {
            return self.stop();
        }
        let src = self.src;
        let at = self.pos;
        let Some(&t) = src.get(at) else {
            return self.stop();
        };
        match t {
            b'+' | b'-' | b',' | b'(' => {
                let (text, next) = match find_crlf(src, at + 1) {
                    Ok(Some(i)) => (known_text(src, at + 1, i), i + 2),
                    _ => {
                        // The line is cut by the cap: keep its start.
                        self.cut = true;
                        let end = if src.last() == Some(&b'\r') {
                            src.len() - 1
                        } else {
                            src.len()
                        };
                        (src.slice((at + 1).min(end)..end), src.len())
                    }
                };
                self.pos = next;
                Some(match t {
                    b'+' => RespValue::Simple(text),
                    b'-' => RespValue::Error(text),
                    b',' => RespValue::Double(text),
                    _ => RespValue::BigNumber(text),
                })
            }
            b':' => match read_int_line(src, at + 1) {
                Ok(Some((v, next))) => {
                    self.pos = next;
                    Some(RespValue::Integer(v))
                }
                _ => self.stop(),
            },
            b'_' => match src.get(at + 1..at + 3) {
                Some(b"\r\n") => {
                    self.pos = at + 3;
                    Some(RespValue::Null)
                }
                _ => self.stop(),
            },
            b'#' => match src.get(at + 1..at + 4) {
                Some(b"t\r\n") => {
                    self.pos = at + 4;
                    Some(RespValue::Boolean(true))
                }
                Some(b"f\r\n") => {
                    self.pos = at + 4;
                    Some(RespValue::Boolean(false))
                }
                _ => self.stop(),
            },
            b'$' | b'!' | b'=' => {
                let Ok(Some((len, start))) = read_int_line(src, at + 1) else {
                    return self.stop();
                };
                if len < 0 {
                    self.pos = start;
                    return Some(RespValue::NullBulk);
                }
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| start.checked_add(l))
                    .unwrap_or(usize::MAX);
                let payload = if end <= src.len().saturating_sub(2) {
                    self.pos = end + 2;
                    src.slice(start..end)
                } else {
                    self.cut = true;
                    self.pos = src.len();
                    src.slice(start.min(src.len())..end.min(src.len()))
                };
                Some(match t {
                    b'$' => RespValue::Bulk(payload),
                    b'!' => RespValue::BulkError(payload),
                    _ => RespValue::Verbatim(payload),
                })
            }
            b'*' | b'~' | b'>' => {
                let Ok(Some((n, next))) = read_int_line(src, at + 1) else {
                    return self.stop();
                };
                self.pos = next;
                if n < 0 {
                    return Some(RespValue::NullArray);
                }
                let n = n as u64;
                let mut items = Vec::with_capacity(self.capacity(n));
                for _ in 0..n {
                    match self.value(depth + 1) {
                        Some(v) => items.push(v),
                        None => break,
                    }
                }
                Some(match t {
                    b'*' => RespValue::Array(items),
                    b'~' => RespValue::Set(items),
                    _ => RespValue::Push(items),
                })
            }
            b'%' | b'|' => {
                let Ok(Some((n, next))) = read_int_line(src, at + 1) else {
                    return self.stop();
                };
                self.pos = next;
                let n = n.max(0) as u64;
                let mut pairs = Vec::with_capacity(self.capacity(n.saturating_mul(2)));
                for _ in 0..n {
                    let Some(k) = self.value(depth + 1) else {
                        break;
                    };
                    let Some(v) = self.value(depth + 1) else {
                        break;
                    };
                    pairs.push((k, v));
                }
                if t == b'%' {
                    return Some(RespValue::Map(pairs));
                }
                let value = self.value(depth + 1).unwrap_or(RespValue::Null);
                Some(RespValue::Attribute {
                    attrs: pairs,
                    value: Box::new(value),
                })
            }
            _ => self.stop(),
        }
    }
}

/// Declared length of the message's top value, read from its header:
/// payload bytes for `$ ! =`, element count for `* ~ >`, pairs for `%`.
/// `None` for other types, nulls, and attributes (see [`summary_len`]).
pub(crate) fn header_len(raw: &[u8]) -> Option<u64> {
    match raw.first()? {
        b'$' | b'!' | b'=' | b'*' | b'~' | b'>' | b'%' => match read_int_line(raw, 1) {
            Ok(Some((n, _))) if n >= 0 => Some(n as u64),
            _ => None,
        },
        _ => None,
    }
}

/// The length a summary reports: the header's for plain values; for an
/// attributed value, what was kept of the inner value.
pub(crate) fn summary_len(raw: &[u8], value: &RespValue) -> Option<u64> {
    if raw.first() != Some(&b'|') {
        return header_len(raw);
    }
    match value.unattributed() {
        RespValue::Bulk(b) | RespValue::BulkError(b) | RespValue::Verbatim(b) => {
            Some(b.len() as u64)
        }
        RespValue::Array(v) | RespValue::Set(v) | RespValue::Push(v) => Some(v.len() as u64),
        RespValue::Map(v) => Some(v.len() as u64),
        _ => None,
    }
}

/// Which subscription set a pub/sub command or confirmation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubKind {
    /// `SUBSCRIBE` channels.
    Channel,
    /// `PSUBSCRIBE` patterns.
    Pattern,
    /// `SSUBSCRIBE` shard channels.
    Shard,
}

/// What a server frame is, as far as pub/sub is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PubSub {
    /// Not a pub/sub frame.
    Other,
    /// A published message: `message`, `pmessage` or `smessage` with the
    /// right number of elements.
    Message,
    /// A (un)subscribe confirmation and the subscription count it reports.
    Confirm {
        kind: SubKind,
        unsub: bool,
        count: i64,
    },
}

/// Reads a bulk or simple string element at `at`: its bytes and the offset
/// after it. `Some(None)` for a null element.
fn word_at(raw: &[u8], at: usize) -> Option<(Option<&[u8]>, usize)> {
    match raw.get(at)? {
        b'$' => {
            let (len, start) = read_int_line(raw, at + 1).ok()??;
            if len < 0 {
                return Some((None, start));
            }
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            Some((Some(raw.get(start..end)?), end.checked_add(2)?))
        }
        b'+' => {
            let i = find_crlf(raw, at + 1).ok()??;
            Some((Some(raw.get(at + 1..i)?), i + 2))
        }
        b'_' => Some((None, at + 3)),
        _ => None,
    }
}

/// Classifies a complete server frame (`raw` is the whole message) for the
/// pub/sub logic: published messages and (un)subscribe confirmations.
pub(crate) fn peek_pubsub(raw: &[u8]) -> PubSub {
    peek(raw).unwrap_or(PubSub::Other)
}

fn peek(raw: &[u8]) -> Option<PubSub> {
    if !matches!(raw.first()?, b'*' | b'>') {
        return Some(PubSub::Other);
    }
    let (n, at) = read_int_line(raw, 1).ok()??;
    if !(3..=4).contains(&n) {
        return Some(PubSub::Other);
    }
    let (word, at) = word_at(raw, at)?;
    let word = word?;
    if word.len() > 12 {
        return Some(PubSub::Other);
    }
    let mut lower = [0u8; 12];
    let lower = &mut lower[..word.len()];
    lower.copy_from_slice(word);
    lower.make_ascii_lowercase();
    let (kind, unsub) = match (&*lower, n) {
        (b"message" | b"smessage", 3) | (b"pmessage", 4) => return Some(PubSub::Message),
        (b"subscribe", 3) => (SubKind::Channel, false),
        (b"psubscribe", 3) => (SubKind::Pattern, false),
        (b"ssubscribe", 3) => (SubKind::Shard, false),
        (b"unsubscribe", 3) => (SubKind::Channel, true),
        (b"punsubscribe", 3) => (SubKind::Pattern, true),
        (b"sunsubscribe", 3) => (SubKind::Shard, true),
        _ => return Some(PubSub::Other),
    };
    let (_, at) = word_at(raw, at)?;
    if raw.get(at) != Some(&b':') {
        return Some(PubSub::Other);
    }
    let (count, _) = read_int_line(raw, at + 1).ok()??;
    Some(PubSub::Confirm { kind, unsub, count })
}

/// Splits an inline command line (without its `\n` and optional `\r`) into
/// arguments the way Redis does (`sdssplitargs`: spaces separate, `"..."`
/// with `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` with `\'`). Returns the
/// arguments' bytes laid end to end and their spans, or `None` when quotes
/// are unbalanced (Redis then answers with a protocol error).
pub(crate) fn split_inline(line: &[u8]) -> Option<(Vec<u8>, Spans)> {
    split_inline_with(line, None)
}

/// The byte spans, within `line`, of the arguments the decoder finds in an
/// inline command line, quotes included: what to blank to hide an argument
/// in the raw bytes. The same rules as the decoder: `sdssplitargs`, or
/// whitespace-separated words when quotes are unbalanced.
pub fn inline_raw_spans(line: &[u8]) -> Vec<(usize, usize)> {
    let mut raw = Vec::new();
    match split_inline_with(line, Some(&mut raw)) {
        Some(_) => raw,
        None => word_spans(line),
    }
}

/// The byte spans of a stored command's arguments (0: the command name),
/// clipped to the bytes present: what to blank to hide an argument in a
/// message that may be cut anywhere. An array of bulk strings is walked by
/// its lengths; anything else is an inline command line, split as the
/// decoder splits it ([`inline_raw_spans`]).
pub fn command_raw_spans(raw: &[u8]) -> Vec<(usize, usize)> {
    if raw.first() != Some(&b'*') {
        let line = &raw[..memchr::memchr(b'\n', raw).unwrap_or(raw.len())];
        return inline_raw_spans(line.strip_suffix(b"\r").unwrap_or(line));
    }
    let mut spans = Vec::new();
    let Ok(Some((n, mut pos))) = read_int_line(raw, 1) else { return spans };
    for _ in 0..n.max(0) {
        if raw.get(pos) != Some(&b'$') {
            break;
        }
        let Ok(Some((len, start))) = read_int_line(raw, pos + 1) else { break };
        let Some(end) = usize::try_from(len).ok().and_then(|len| start.checked_add(len)) else { break };
        spans.push((start.min(raw.len()), end.min(raw.len())));
        if end >= raw.len() {
            break;
        }
        pos = end + 2;
    }
    spans
}

/// [`split_inline`], also pushing each argument's raw span onto `raw`.
fn split_inline_with(line: &[u8], mut raw: Option<&mut Vec<(usize, usize)>>) -> Option<(Vec<u8>, Spans)> {
    let mut out = Vec::with_capacity(line.len());
    let mut spans = Spans::new();
    let mut p = 0;
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    loop {
        while line.get(p).is_some_and(|&c| is_space(c)) {
            p += 1;
        }
        // Like Redis' C string parsing, a NUL byte ends the line.
        let Some(&c0) = line.get(p) else { break };
        if c0 == 0 {
            break;
        }
        let start = out.len();
        let raw_start = p;
        // Where the argument's raw bytes end (after a closing quote, before
        // a separator).
        let raw_end;
        let mut inq = false;
        let mut insq = false;
        loop {
            let c = line.get(p).copied();
            if inq {
                let c = c?;
                if c == b'\\' && line.get(p + 1) == Some(&b'x') {
                    let hex = |i: usize| line.get(i).and_then(|&h| (h as char).to_digit(16));
                    if let (Some(h), Some(l)) = (hex(p + 2), hex(p + 3)) {
                        out.push((h * 16 + l) as u8);
                        p += 4;
                        continue;
                    }
                }
                if let (b'\\', Some(&e)) = (c, line.get(p + 1)) {
                    out.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    p += 2;
                } else if c == b'"' {
                    if line.get(p + 1).is_some_and(|&n| !is_space(n)) {
                        return None;
                    }
                    p += 1;
                    raw_end = p;
                    break;
                } else {
                    out.push(c);
                    p += 1;
                }
            } else if insq {
                let c = c?;
                if c == b'\\' && line.get(p + 1) == Some(&b'\'') {
                    out.push(b'\'');
                    p += 2;
                } else if c == b'\'' {
                    if line.get(p + 1).is_some_and(|&n| !is_space(n)) {
                        return None;
                    }
                    p += 1;
                    raw_end = p;
                    break;
                } else {
                    out.push(c);
                    p += 1;
                }
            } else {
                match c {
                    None | Some(0) => {
                        raw_end = p;
                        break;
                    }
                    Some(b' ' | b'\n' | b'\r' | b'\t') => {
                        raw_end = p;
                        p += 1;
                        break;
                    }
                    Some(b'"') => inq = true,
                    Some(b'\'') => insq = true,
                    Some(c) => out.push(c),
                }
                p += 1;
            }
        }
        let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(out.len())) else {
            return None;
        };
        spans.push((s, e));
        if let Some(raw) = raw.as_deref_mut() {
            raw.push((raw_start, raw_end));
        }
    }
    Some((out, spans))
}

/// The fallback for unbalanced quotes: words separated by whitespace, as is.
pub(crate) fn split_words(line: &[u8]) -> (Vec<u8>, Spans) {
    let mut out = Vec::with_capacity(line.len());
    let mut spans = Spans::new();
    for (ws, we) in word_spans(line) {
        let s = out.len();
        out.extend_from_slice(&line[ws..we]);
        if let (Ok(s), Ok(e)) = (u32::try_from(s), u32::try_from(out.len())) {
            spans.push((s, e));
        }
    }
    (out, spans)
}

/// Spans of the whitespace-separated words of `line`.
fn word_spans(line: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in line.iter().enumerate() {
        match (c.is_ascii_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, line.len()));
    }
    spans
}

/// [`RespKind`] of the frame's top value, looking through attributes.
pub(crate) fn top_kind(value: &RespValue) -> RespKind {
    value.unattributed().kind()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[u8]) -> Option<Vec<Vec<u8>>> {
        let (data, spans) = split_inline(line)?;
        Some(
            spans
                .iter()
                .map(|&(s, e)| data[s as usize..e as usize].to_vec())
                .collect(),
        )
    }

    #[test]
    fn inline_splitting() {
        assert_eq!(
            words(b"GET k").unwrap(),
            vec![b"GET".to_vec(), b"k".to_vec()]
        );
        assert_eq!(
            words(b"  set  k \"a b\"  ").unwrap(),
            vec![b"set".to_vec(), b"k".to_vec(), b"a b".to_vec()]
        );
        assert_eq!(
            words(b"ECHO \"\\x41\\n\" 'it\\'s'").unwrap(),
            vec![b"ECHO".to_vec(), b"A\n".to_vec(), b"it's".to_vec()]
        );
        assert_eq!(words(b"").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(words(b"a\"b\"").unwrap(), vec![b"ab".to_vec()]);
        assert_eq!(words(b"a\0b c").unwrap(), vec![b"a".to_vec()]);
        assert_eq!(words(b"a \0").unwrap(), vec![b"a".to_vec()]);
        assert_eq!(words(b"\0").unwrap(), Vec::<Vec<u8>>::new());
        assert!(words(b"ECHO 'it''s'").is_none());
        assert!(words(b"ECHO \"abc").is_none());
        assert!(words(b"ECHO \"abc\\").is_none());
    }

    #[test]
    fn pubsub_peek() {
        assert_eq!(
            peek_pubsub(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"),
            PubSub::Message
        );
        assert_eq!(
            peek_pubsub(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"),
            PubSub::Confirm {
                kind: SubKind::Channel,
                unsub: true,
                count: 0
            }
        );
        assert_eq!(
            peek_pubsub(b">3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n"),
            PubSub::Confirm {
                kind: SubKind::Pattern,
                unsub: false,
                count: 3
            }
        );
        assert_eq!(
            peek_pubsub(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
            PubSub::Other
        );
        assert_eq!(peek_pubsub(b"$7\r\nmessage\r\n"), PubSub::Other);
    }

    #[test]
    fn cut_values() {
        let full = Bytes::from_static(b"*3\r\n$5\r\nhello\r\n:1\r\n+ok\r\n");
        assert!(!parse_value(&full, Some(b'*')).1);
        let (v, cut) = parse_value(&full.slice(..10), Some(b'*'));
        assert!(cut);
        assert_eq!(
            v,
            RespValue::Array(vec![RespValue::Bulk(Bytes::from_static(b"he"))])
        );
        let (v, cut) = parse_value(&Bytes::new(), Some(b'$'));
        assert!(cut);
        assert_eq!(v, RespValue::Bulk(Bytes::new()));
    }

    #[test]
    fn raw_spans_cover_each_argument_as_written() {
        let line = b"SET  \"a b\" 'it\\'s' plain";
        let spans = inline_raw_spans(line);
        let raw: Vec<&[u8]> = spans.iter().map(|&(s, e)| &line[s..e]).collect();
        assert_eq!(raw, [&b"SET"[..], b"\"a b\"", b"'it\\'s'", b"plain"]);
        // One raw span per decoded argument.
        assert_eq!(split_inline(line).unwrap().1.len(), spans.len());
        // Unbalanced quotes: the decoder's whitespace words.
        let odd = b"AUTH \"oops pw";
        assert_eq!(inline_raw_spans(odd), [(0, 4), (5, 10), (11, 13)]);
        assert_eq!(split_words(odd).1.len(), 3);
    }
}
