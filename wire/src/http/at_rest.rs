//! One-shot parsing of stored HTTP messages: a head ([`HeadView`], read by
//! the decoder's own head parser) and a chunked body ([`dechunk`], by the
//! decoder's own chunked push parser).

use super::chunked::{ChunkState, Step};
use super::head::{parse_head, HeadInfo, Parsed, Span, StartLine};
use super::message::HttpVersion;
use crate::ParseError;
use std::ops::Range;

/// A parsed request or response head, borrowing the bytes it was read from.
#[derive(Clone, Debug)]
pub struct HeadView<'a> {
    buf: &'a [u8],
    info: HeadInfo,
    spans: Vec<(Span, Span)>,
}

/// Parses the request head at the start of `buf`.
pub fn parse_request_head(buf: &[u8]) -> Result<HeadView<'_>, ParseError> {
    view(buf, true)
}

/// Parses the response head at the start of `buf` (as leniently as the
/// decoder reads responses).
pub fn parse_response_head(buf: &[u8]) -> Result<HeadView<'_>, ParseError> {
    view(buf, false)
}

pub(crate) fn view(buf: &[u8], request: bool) -> Result<HeadView<'_>, ParseError> {
    let mut spans = Vec::new();
    match parse_head(buf, request, &mut spans).map_err(ParseError::Invalid)? {
        Parsed::Complete(info) => Ok(HeadView { buf, info, spans }),
        Parsed::Partial => Err(ParseError::Incomplete { protocol: "http", have: buf.len() }),
    }
}

impl<'a> HeadView<'a> {
    pub(crate) fn info(&self) -> &HeadInfo {
        &self.info
    }

    /// Bytes in the head, its final empty line included: the body starts
    /// here.
    pub fn head_len(&self) -> usize {
        self.info.len
    }

    /// The head's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf.get(..self.info.len).unwrap_or(self.buf)
    }

    /// A request's method.
    pub fn method(&self) -> Option<&'a [u8]> {
        match self.info.start {
            StartLine::Request { method, .. } => Some(method.get(self.buf)),
            StartLine::Response { .. } => None,
        }
    }

    /// A request's target, as sent.
    pub fn target(&self) -> Option<&'a [u8]> {
        match self.info.start {
            StartLine::Request { target, .. } => Some(target.get(self.buf)),
            StartLine::Response { .. } => None,
        }
    }

    /// A response's status code.
    pub fn status(&self) -> Option<u16> {
        self.info.status()
    }

    pub fn version(&self) -> HttpVersion {
        self.info.version
    }

    /// The header fields (name, value), in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.spans.iter().map(|(n, v)| (n.get(self.buf), v.get(self.buf)))
    }

    /// True when a field named `name` (ASCII case-insensitive) is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers().any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The body uses the chunked transfer coding.
    pub fn chunked(&self) -> bool {
        self.info.chunked
    }
}

/// The content of a chunked body (what follows the head), as far as `body`
/// holds it: a chunk cut short gives what it has; a malformed size line
/// ends it.
pub fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for span in chunk_data_spans(body) {
        out.extend_from_slice(&body[span]);
    }
    out
}

/// Where the data of each chunk of a chunked body (what follows the head)
/// is in `body`, in order, as far as `body` holds it (as [`dechunk`]
/// reads it): for rewriting the content in place without touching the
/// framing (e.g. blanking secrets).
pub fn chunk_data_spans(body: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut state = ChunkState::Size;
    let mut at = 0;
    while let Ok(step) = state.step(body.get(at..).unwrap_or_default(), usize::MAX, usize::MAX) {
        match step {
            Step::Framing(n) => at += n,
            Step::Data(n) => {
                let end = (at + n).min(body.len());
                if at < end {
                    out.push(at..end);
                }
                at += n;
            }
            Step::Done(..) | Step::NeedMore => break,
        }
    }
    out
}

/// One line of a head that may be cut short, as positions in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadLine {
    /// `name: value`: the name before the colon, the value after it (both
    /// untrimmed, without the line ending).
    Field { name: Range<usize>, value: Range<usize> },
    /// A line starting with a space or tab: more of the previous field's
    /// value (obsolete line folding).
    Continuation(Range<usize>),
    /// A line without a colon.
    Other(Range<usize>),
}

/// The lines of a stored head, which may be cut anywhere (the recorder
/// keeps messages up to a cap): the request target (the start line's
/// second word; `None` when the start line is not whole) and the field
/// lines, up to the empty line that ends the head or the end of the bytes.
/// Nothing is validated: this finds where things are in bytes the decoder
/// already accepted, as far as they go, for rewriting them in place (e.g.
/// blanking secrets).
pub fn head_lines(raw: &[u8]) -> (Option<Range<usize>>, Vec<HeadLine>) {
    // Empty lines a client may send before the request line, then the
    // start line itself.
    let mut pos = raw.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(raw.len());
    let Some(nl) = memchr::memchr(b'\n', &raw[pos..]) else { return (None, Vec::new()) };
    let target = start_line_target(&raw[pos..pos + nl]).map(|r| pos + r.start..pos + r.end);
    pos += nl + 1;
    let mut lines = Vec::new();
    while pos < raw.len() {
        let nl = memchr::memchr(b'\n', &raw[pos..]).map(|i| pos + i);
        let mut end = nl.unwrap_or(raw.len());
        if end > pos && raw[end - 1] == b'\r' {
            end -= 1;
        }
        if end == pos {
            break; // the empty line: end of head
        }
        lines.push(if matches!(raw[pos], b' ' | b'\t') {
            HeadLine::Continuation(pos..end)
        } else {
            match memchr::memchr(b':', &raw[pos..end]) {
                Some(i) => HeadLine::Field { name: pos..pos + i, value: pos + i + 1..end },
                None => HeadLine::Other(pos..end),
            }
        });
        match nl {
            Some(n) => pos = n + 1,
            None => break,
        }
    }
    (target, lines)
}

/// The second space-separated word of a start line (a request's target).
fn start_line_target(line: &[u8]) -> Option<Range<usize>> {
    let sp = line.iter().position(|&b| b == b' ')? + 1;
    let end = line[sp..].iter().position(|&b| b == b' ').map_or(line.len(), |i| sp + i);
    Some(sp..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n";
        let h = parse_response_head(raw).unwrap();
        assert_eq!((h.status(), h.chunked(), h.method()), (Some(200), true, None));
        assert_eq!(h.headers().next(), Some((&b"Content-Type"[..], &b"text/plain"[..])));
        assert_eq!(dechunk(&raw[h.head_len()..]), b"Wikipedia");
        // Cut inside a chunk: what there is.
        assert_eq!(dechunk(b"4\r\nWiki\r\n5\r\npe"), b"Wikipe");
        assert_eq!(dechunk(b"zz\r\n"), b"");
        assert_eq!(chunk_data_spans(b"4\r\nWiki\r\n5\r\npe"), vec![3..7, 12..14]);
        let r = parse_request_head(b"GET http://a/b HTTP/1.0\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!((r.method(), r.target(), r.version()), (Some(&b"GET"[..]), Some(&b"http://a/b"[..]), HttpVersion::Http10));
        assert!(r.has_header("HOST"));
        assert_eq!(parse_request_head(b"GET / HTTP/1.1\r\nHo").unwrap_err(), ParseError::Incomplete { protocol: "http", have: 18 });
        assert!(matches!(parse_request_head(b"\x16\x03\x01\r\n\r\n"), Err(ParseError::Invalid(_))));
    }

    #[test]
    fn lines_of_cut_heads() {
        let raw = b"\r\nGET http://a/ HTTP/1.1\r\nA: 1\r\n  more\r\nodd\nB:2\r\n\r\nC: body";
        let (target, lines) = head_lines(raw);
        assert_eq!(&raw[target.unwrap()], b"http://a/");
        let shown: Vec<String> = lines
            .iter()
            .map(|l| match l {
                HeadLine::Field { name, value } => format!("F {}={}", bytes_str(&raw[name.clone()]), bytes_str(&raw[value.clone()])),
                HeadLine::Continuation(r) => format!("C {}", bytes_str(&raw[r.clone()])),
                HeadLine::Other(r) => format!("O {}", bytes_str(&raw[r.clone()])),
            })
            .collect();
        assert_eq!(shown, ["F A= 1", "C   more", "O odd", "F B=2"]);
        let (target, lines) = head_lines(b"HTTP/1.1 200 OK\r\nSet-Cookie: se");
        assert_eq!((target, lines), (Some(9..12), vec![HeadLine::Field { name: 17..27, value: 28..31 }]));
        assert_eq!(head_lines(b"GET / HT"), (None, vec![]));
    }

    fn bytes_str(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }
}
