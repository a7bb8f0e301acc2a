//! One-shot parsing of stored HTTP messages: a head ([`HeadView`], read by
//! the decoder's own head parser) and a chunked body ([`dechunk`], by the
//! decoder's own chunked push parser).

use super::chunked::{ChunkState, Step};
use super::head::{parse_head, HeadInfo, Parsed, Span, StartLine};
use super::message::HttpVersion;
use crate::ParseError;

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
    let mut state = ChunkState::Size;
    let mut at = 0;
    while let Ok(step) = state.step(body.get(at..).unwrap_or_default(), usize::MAX, usize::MAX) {
        match step {
            Step::Framing(n) => at += n,
            Step::Data(n) => {
                out.extend_from_slice(body.get(at..at + n).unwrap_or_default());
                at += n;
            }
            Step::Done(..) | Step::NeedMore => break,
        }
    }
    out
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
        let r = parse_request_head(b"GET http://a/b HTTP/1.0\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!((r.method(), r.target(), r.version()), (Some(&b"GET"[..]), Some(&b"http://a/b"[..]), HttpVersion::Http10));
        assert!(r.has_header("HOST"));
        assert_eq!(parse_request_head(b"GET / HTTP/1.1\r\nHo").unwrap_err(), ParseError::Incomplete { protocol: "http", have: 18 });
        assert!(matches!(parse_request_head(b"\x16\x03\x01\r\n\r\n"), Err(ParseError::Invalid(_))));
    }
}
