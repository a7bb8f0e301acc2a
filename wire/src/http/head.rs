//! Parsing a message head (start line + header fields) with `httparse`, and
//! reading the few header fields that decide how the body is framed.
//!
//! The parser works on the decoder's receive buffer before any byte is split
//! off, so it records positions ([`Span`]s) rather than slices. Once the
//! message's bytes are frozen, [`HeadInfo::parts`] makes the method and
//! reason [`Bytes`]; the target and header fields stay positions in the
//! frozen bytes.

use std::mem::MaybeUninit;

use bytes::Bytes;

use super::message::{FieldSpans, Header, Headers, HttpVersion};

/// A byte range inside the head. `u32` keeps a header field's pair of them
/// at 16 bytes, so a typical head's fields fit inline in [`Headers`]; heads
/// are at most [`MAX_HEAD`] bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

/// The longest head [`parse_head`] reads: positions in it fit a `u32`.
pub(crate) const MAX_HEAD: usize = u32::MAX as usize;

impl Span {
    /// `start..end`, both at most [`MAX_HEAD`] (larger values saturate).
    pub fn new(start: usize, end: usize) -> Span {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Span { start: clamp(start), end: clamp(end) }
    }

    fn of(base: &[u8], part: &[u8]) -> Span {
        // Both slices come from the same buffer: `part` lies inside `base`.
        let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
        Span::new(start, start + part.len())
    }

    pub fn start(&self) -> usize {
        self.start as usize
    }

    pub fn end(&self) -> usize {
        self.end as usize
    }

    pub fn get<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        head.get(self.start()..self.end()).unwrap_or_default()
    }

    pub fn bytes(&self, head: &Bytes) -> Bytes {
        if self.end() <= head.len() && self.start <= self.end {
            head.slice(self.start()..self.end())
        } else {
            Bytes::new()
        }
    }
}

/// The start line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request { method: Span, target: Span },
    Response { status: u16, reason: Span },
}

/// Everything the decoder needs from a head, as positions in it.
#[derive(Clone, Debug)]
pub(crate) struct HeadInfo {
    pub start: StartLine,
    pub version: HttpVersion,
    /// Bytes in the head, leading empty lines and the final empty line included.
    pub len: usize,
    /// `Content-Length`, when present and valid.
    pub content_length: Option<u64>,
    /// A `Transfer-Encoding` field is present.
    pub te_present: bool,
    /// The last transfer coding is `chunked`.
    pub chunked: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// `Connection: close` (or HTTP/1.0 without `keep-alive`).
    pub close: bool,
    /// The `Upgrade` field's value.
    pub upgrade: Option<Span>,
    /// The `Host` field's value.
    pub host: Option<Span>,
    /// The `Content-Type` field's value.
    pub content_type: Option<Span>,
}

/// The start line and header fields of a frozen head.
#[derive(Clone, Debug)]
pub(crate) struct Parts {
    pub start: PartsStart,
    pub version: HttpVersion,
    pub headers: Headers,
}

#[derive(Clone, Debug)]
pub(crate) enum PartsStart {
    Request { method: Bytes, target: Span },
    Response { status: u16, reason: Bytes },
}

impl HeadInfo {
    /// Reads the start line out of `head` (the frozen message, head first);
    /// the target and header fields stay positions in it (copied from
    /// `spans`), read on demand.
    pub fn parts(&self, head: &Bytes, spans: &[(Span, Span)]) -> Parts {
        let start = match self.start {
            StartLine::Request { method, target } => PartsStart::Request {
                method: known(method.get(head), KNOWN_METHODS).unwrap_or_else(|| method.bytes(head)),
                target,
            },
            StartLine::Response { status, reason } => PartsStart::Response {
                status,
                reason: known(reason.get(head), KNOWN_REASONS).unwrap_or_else(|| reason.bytes(head)),
            },
        };
        let headers = Headers::new(head.clone(), FieldSpans::from_slice(spans));
        Parts { start, version: self.version, headers }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }
}

// Well-known start-line tokens become static `Bytes`: cloning and dropping
// those costs nothing, while a slice of the frozen head costs two atomic
// operations on its reference count. On small keep-alive exchanges that is
// a fair share of the decoding time. (Header fields are not sliced at all
// until asked for: see `Headers`.)

const KNOWN_METHODS: &[&[u8]] = &[b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"];

const KNOWN_REASONS: &[&[u8]] = &[
    b"OK",
    b"Continue",
    b"Switching Protocols",
    b"Created",
    b"Accepted",
    b"No Content",
    b"Moved Permanently",
    b"Found",
    b"Not Modified",
    b"Bad Request",
    b"Unauthorized",
    b"Forbidden",
    b"Not Found",
    b"Internal Server Error",
    b"Bad Gateway",
    b"Service Unavailable",
    b"Gateway Timeout",
    b"Connection established",
];

/// Content types of most API traffic (an exchange keeps the response's).
const KNOWN_CONTENT_TYPES: &[&[u8]] = &[
    b"application/json",
    b"application/json; charset=utf-8",
    b"text/plain",
    b"text/plain; charset=utf-8",
    b"text/html",
    b"text/html; charset=utf-8",
    b"application/octet-stream",
    b"application/x-www-form-urlencoded",
];

fn known(s: &[u8], table: &'static [&'static [u8]]) -> Option<Bytes> {
    table.iter().find(|k| **k == s).map(|k| Bytes::from_static(k))
}

/// A `Content-Type` value at `span` in `head`: a static [`Bytes`] for the
/// common ones, else a slice.
pub(crate) fn content_type_bytes(span: Span, head: &Bytes) -> Bytes {
    known(span.get(head), KNOWN_CONTENT_TYPES).unwrap_or_else(|| span.bytes(head))
}

/// How a request's body is framed (RFC 9112 §6.3): the rule the decoder
/// and the [`super::RequestFramer`] share.
pub(crate) enum RequestBody {
    Chunked,
    /// This many bytes (0: no body).
    Length(u64),
}

/// [`RequestBody`] of a request head, or why it cannot be known.
pub(crate) fn request_body(info: &HeadInfo) -> Result<RequestBody, &'static str> {
    if info.chunked {
        Ok(RequestBody::Chunked)
    } else if info.te_present {
        Err("http: request Transfer-Encoding does not end in chunked")
    } else {
        match info.content_length {
            Some(u64::MAX) => Err("http: invalid or conflicting Content-Length"),
            n => Ok(RequestBody::Length(n.unwrap_or(0))),
        }
    }
}

/// Outcome of trying to parse a head.
pub(crate) enum Parsed {
    /// A complete head; its spans were written to the caller's vector.
    Complete(HeadInfo),
    /// More bytes needed.
    Partial,
}

/// How many header fields fit in the stack array; more fall back to a heap
/// array sized by counting lines.
const STACK_HEADERS: usize = 64;

/// Parses `buf` as a request (`request == true`) or response head. Spans of
/// the header fields go to `spans` (cleared first). `Err` carries a reason.
pub(crate) fn parse_head(buf: &[u8], request: bool, spans: &mut Vec<(Span, Span)>) -> Result<Parsed, String> {
    // Longer heads read as unfinished: the caller's `max_frame` rules apply.
    let buf = buf.get(..MAX_HEAD).unwrap_or(buf);
    let mut stack: [MaybeUninit<httparse::Header<'_>>; STACK_HEADERS] =
        [const { MaybeUninit::uninit() }; STACK_HEADERS];
    match parse_with(buf, request, &mut stack, spans) {
        Err(httparse::Error::TooManyHeaders) => {
            // Every field takes at least one line: the line count bounds them.
            let lines = buf.iter().filter(|&&b| b == b'\n').count() + 1;
            let mut heap: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::with_capacity(lines);
            heap.resize_with(lines, MaybeUninit::uninit);
            parse_with(buf, request, &mut heap, spans).map_err(|e| reason(request, e))
        }
        other => other.map_err(|e| reason(request, e)),
    }
}

fn reason(request: bool, e: httparse::Error) -> String {
    format!("http: malformed {} head: {e}", if request { "request" } else { "response" })
}

fn parse_with<'b>(
    buf: &'b [u8],
    request: bool,
    storage: &mut [MaybeUninit<httparse::Header<'b>>],
    spans: &mut Vec<(Span, Span)>,
) -> Result<Parsed, httparse::Error> {
    spans.clear();
    if request {
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(buf, storage)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(Parsed::Partial),
        };
        let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
            return Ok(Parsed::Partial);
        };
        let start =
            StartLine::Request { method: Span::of(buf, method.as_bytes()), target: Span::of(buf, path.as_bytes()) };
        Ok(Parsed::Complete(info(buf, start, minor, len, req.headers, spans)))
    } else {
        let mut resp = httparse::Response::new(&mut []);
        let mut config = httparse::ParserConfig::default();
        // Be as lenient as real clients are with what servers send.
        config
            .allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .allow_multiple_spaces_in_response_status_delimiters(true);
        let len = match config.parse_response_with_uninit_headers(&mut resp, buf, storage)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(Parsed::Partial),
        };
        let (Some(minor), Some(code), Some(reason)) = (resp.version, resp.code, resp.reason) else {
            return Ok(Parsed::Partial);
        };
        let start = StartLine::Response { status: code, reason: Span::of(buf, reason.as_bytes()) };
        Ok(Parsed::Complete(info(buf, start, minor, len, resp.headers, spans)))
    }
}

/// Reads the framing-relevant fields and records every field's spans.
fn info(
    buf: &[u8],
    start: StartLine,
    minor: u8,
    len: usize,
    headers: &[httparse::Header<'_>],
    spans: &mut Vec<(Span, Span)>,
) -> HeadInfo {
    let version = HttpVersion::from_minor(minor);
    let mut h = HeadInfo {
        start,
        version,
        len,
        content_length: None,
        te_present: false,
        chunked: false,
        expect_continue: false,
        close: version == HttpVersion::Http10,
        upgrade: None,
        host: None,
        content_type: None,
    };
    let mut bad_length = false;
    spans.reserve(headers.len());
    for hd in headers {
        let name = hd.name.as_bytes();
        let value = hd.value;
        let vspan = Span::of(buf, value);
        spans.push((Span::of(buf, name), vspan));
        // Dispatch on length first: most fields are none of these.
        match name.len() {
            4 if h.host.is_none() && is_name(name, b"host") => h.host = Some(vspan),
            6 if is_name(name, b"expect") => {
                h.expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
            }
            7 if is_name(name, b"upgrade") => h.upgrade = Some(vspan),
            10 if is_name(name, b"connection") => {
                for token in value.split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        h.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && version == HttpVersion::Http10 {
                        h.close = false;
                    }
                }
            }
            12 if h.content_type.is_none() && is_name(name, b"content-type") => {
                h.content_type = Some(vspan)
            }
            14 if is_name(name, b"content-length") => {
                // A list of identical values ("5, 5") is allowed; anything
                // else makes the length unknowable.
                for item in value.split(|&b| b == b',').map(trim) {
                    match parse_decimal(item) {
                        Some(n) if h.content_length.is_none() || h.content_length == Some(n) => {
                            h.content_length = Some(n)
                        }
                        _ => bad_length = true,
                    }
                }
            }
            17 if is_name(name, b"transfer-encoding") => {
                h.te_present = true;
                // The last coding of the last field is what frames the body.
                if let Some(last) = value.split(|&b| b == b',').map(trim).rfind(|t| !t.is_empty()) {
                    h.chunked = last.eq_ignore_ascii_case(b"chunked");
                }
            }
            _ => {}
        }
    }
    if bad_length && !h.te_present {
        // Signalled to the decoder as an absurd length it then rejects; keeps
        // HeadInfo free of an error variant.
        h.content_length = Some(u64::MAX);
    }
    h
}

/// `name` (a header field name as `httparse` accepts it: a token) equals
/// `lower` (lowercase letters and `-`), ignoring ASCII case.
///
/// Setting bit 0x20 lowercases a letter and leaves `-` alone; among token
/// characters only the letter's two cases (or `-` itself) map onto a letter
/// or `-` that way, so the comparison is exact. Branch-free, unlike
/// `eq_ignore_ascii_case`: every field of every head goes through here.
fn is_name(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.iter().zip(lower).fold(0, |diff, (&n, &l)| diff | ((n | 0x20) ^ l)) == 0
}

/// A Content-Length value: 1 to 19 ASCII digits.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Strips spaces and tabs at both ends.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |p| p + 1);
    s.get(start..end).unwrap_or_default()
}

/// Searches `buf[from..]` for the empty line that ends a head (`\n\n` or
/// `\n\r\n`). Returns the index just past it, or `None` with the position
/// from which to resume once more bytes arrive.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Result<usize, usize> {
    let mut i = from;
    while let Some(off) = buf.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'\n')) {
        let nl = i + off;
        match (buf.get(nl + 1), buf.get(nl + 2)) {
            (Some(b'\n'), _) => return Ok(nl + 2),
            (Some(b'\r'), Some(b'\n')) => return Ok(nl + 3),
            (Some(b'\r'), None) | (None, _) => return Err(nl),
            _ => i = nl + 1,
        }
    }
    Err(buf.len())
}

/// Parses trailer fields (the `field-line`s after the last chunk, ending with
/// the empty line) with `httparse`. Copies them: trailers are rare.
pub(crate) fn parse_trailers(section: &[u8]) -> Result<Vec<Header>, String> {
    let mut stack = [httparse::EMPTY_HEADER; 32];
    let parsed = match httparse::parse_headers(section, &mut stack) {
        Err(httparse::Error::TooManyHeaders) => {
            let lines = section.iter().filter(|&&b| b == b'\n').count() + 1;
            let mut heap = vec![httparse::EMPTY_HEADER; lines];
            collect_trailers(httparse::parse_headers(section, &mut heap))
        }
        other => collect_trailers(other),
    };
    parsed.map_err(|e| format!("http: malformed chunked trailer: {e}"))
}

fn collect_trailers(r: httparse::Result<(usize, &[httparse::Header<'_>])>) -> Result<Vec<Header>, httparse::Error> {
    match r? {
        httparse::Status::Complete((_, hs)) => Ok(hs
            .iter()
            .map(|h| (Bytes::copy_from_slice(h.name.as_bytes()), Bytes::copy_from_slice(h.value)))
            .collect()),
        httparse::Status::Partial => Err(httparse::Error::NewLine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nxx", 0), Ok(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nxx", 0), Ok(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), Err(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r", 0), Err(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b", 0), Err(20));
    }

    #[test]
    fn names_ignore_case_only() {
        assert!(is_name(b"Content-Length", b"content-length"));
        assert!(is_name(b"CONTENT-LENGTH", b"content-length"));
        assert!(!is_name(b"Content_Length", b"content-length"));
        assert!(!is_name(b"Content-Lengt", b"content-length"));
        assert!(!is_name(b"Content-Lengtg", b"content-length"));
        // Every token character other than a letter's two cases and `-`.
        let tchar = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for &c in tchar {
            for &l in b"abcdefghijklmnopqrstuvwxyz-" {
                assert_eq!(is_name(&[c], &[l]), c.eq_ignore_ascii_case(&l), "{} vs {}", c as char, l as char);
            }
        }
    }

    #[test]
    fn decimal() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), None); // 20 digits
        assert_eq!(parse_decimal(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
        assert_eq!(parse_decimal(b"+5"), None);
        assert_eq!(parse_decimal(b""), None);
    }

    #[test]
    fn framing_fields() {
        let mut spans = Vec::new();
        let head = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-Continue\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let Ok(Parsed::Complete(h)) = parse_head(head, true, &mut spans) else { panic!() };
        assert_eq!(h.len, head.len());
        assert_eq!(h.content_length, Some(5));
        assert!(h.chunked && h.te_present && h.expect_continue && !h.close);
        assert_eq!(h.upgrade.unwrap().get(head), b"websocket");
        assert_eq!(h.host.unwrap().get(head), b"h");
        assert_eq!(spans.len(), 6);
        let Ok(Parsed::Complete(h)) = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 1, 2\r\n\r\n", false, &mut spans)
        else {
            panic!()
        };
        assert_eq!(h.content_length, Some(u64::MAX));
        assert!(h.close);
    }

    #[test]
    fn many_headers() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..200 {
            head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let mut spans = Vec::new();
        let Ok(Parsed::Complete(h)) = parse_head(&head, true, &mut spans) else { panic!() };
        assert_eq!(h.len, head.len());
        assert_eq!(spans.len(), 200);
    }
}
