//! What one decoded HTTP/1.x message says: [`HttpMessage`] (a request or a
//! response), with helpers that read its headers and target.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::head::Span;
use crate::types::CappedBytes;

/// The protocol version on a start line. `httparse` only accepts `HTTP/1.x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

impl HttpVersion {
    /// From the minor version `httparse` reports (`0` or `1`).
    pub(crate) fn from_minor(minor: u8) -> HttpVersion {
        if minor == 0 {
            HttpVersion::Http10
        } else {
            HttpVersion::Http11
        }
    }

    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
        }
    }
}

/// A header field: name and value, exactly as sent (the value without the
/// surrounding whitespace `httparse` strips). Used for trailers and
/// [`Headers::to_vec`].
pub type Header = (Bytes, Bytes);

/// A message's header fields, in wire order, read on demand.
///
/// The fields stay positions in the message's frozen bytes: decoding a
/// message costs no per-field work (no slice, no reference count, no
/// allocation beyond the positions the parser wrote anyway), which is most
/// of what small keep-alive exchanges cost otherwise. Equality compares the
/// fields, not how they are stored.
#[derive(Clone, Default)]
pub struct Headers {
    /// The bytes the spans point into (the message, head first).
    data: Bytes,
    spans: FieldSpans,
}

/// Positions of the header fields (name, value). Inline up to 8 fields, as
/// most heads have: one allocation less per message.
pub(crate) type FieldSpans = SmallVec<[(Span, Span); 8]>;

impl Headers {
    pub(crate) fn new(data: Bytes, spans: FieldSpans) -> Headers {
        Headers { data, spans }
    }

    /// The bytes the fields point into: the message, head first. The
    /// request target and other start-line positions point into them too.
    pub(crate) fn data(&self) -> &Bytes {
        &self.data
    }

    /// Fields copied from pairs (for tests and encoders).
    pub fn from_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Headers {
        let mut data = Vec::new();
        let mut spans = FieldSpans::with_capacity(pairs.len());
        for (n, v) in pairs {
            let ns = data.len();
            data.extend_from_slice(n.as_ref());
            let vs = data.len();
            data.extend_from_slice(v.as_ref());
            spans.push((Span::new(ns, vs), Span::new(vs, data.len())));
        }
        Headers { data: Bytes::from(data), spans }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Field `i` (name, value).
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let (n, v) = self.spans.get(i)?;
        Some((n.get(&self.data), v.get(&self.data)))
    }

    /// The fields in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|(n, v)| (n.get(&self.data), v.get(&self.data)))
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn find(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// [`Headers::find`] as a zero-copy [`Bytes`].
    pub fn find_bytes(&self, name: &str) -> Option<Bytes> {
        let (_, v) = self.spans.iter().find(|(n, _)| n.get(&self.data).eq_ignore_ascii_case(name.as_bytes()))?;
        Some(v.bytes(&self.data))
    }

    /// Field `i` as zero-copy [`Bytes`] (name, value).
    pub fn get_bytes(&self, i: usize) -> Option<Header> {
        let (n, v) = self.spans.get(i)?;
        Some((n.bytes(&self.data), v.bytes(&self.data)))
    }

    /// Every field as zero-copy [`Bytes`] pairs.
    pub fn to_vec(&self) -> Vec<Header> {
        (0..self.len()).filter_map(|i| self.get_bytes(i)).collect()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> PartialEq<[(N, V)]> for Headers {
    fn eq(&self, other: &[(N, V)]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|((n, v), (on, ov))| n == on.as_ref() && v == ov.as_ref())
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> PartialEq<Vec<(N, V)>> for Headers {
    fn eq(&self, other: &Vec<(N, V)>) -> bool {
        *self == other[..]
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v))))
            .finish()
    }
}

/// One HTTP/1.x message.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpMessage {
    /// Client to server.
    Request(Box<HttpRequest>),
    /// Server to client: a final response, or an interim `1xx` (for example
    /// the `100 Continue` of `Expect: 100-continue`), which is emitted as its
    /// own message and does not end the exchange.
    Response(Box<HttpResponse>),
}

impl HttpMessage {
    /// The request, if this is one.
    pub fn request(&self) -> Option<&HttpRequest> {
        match self {
            HttpMessage::Request(r) => Some(r),
            HttpMessage::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn response(&self) -> Option<&HttpResponse> {
        match self {
            HttpMessage::Response(r) => Some(r),
            HttpMessage::Request(_) => None,
        }
    }

    /// The header fields, in wire order.
    pub fn headers(&self) -> &Headers {
        match self {
            HttpMessage::Request(r) => &r.headers,
            HttpMessage::Response(r) => &r.headers,
        }
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().find(name)
    }

    /// The decoded body (de-chunked content), capped.
    pub fn body(&self) -> &CappedBytes {
        match self {
            HttpMessage::Request(r) => &r.body,
            HttpMessage::Response(r) => &r.body,
        }
    }

    /// False for a message cut short: the connection ended (or the decoder
    /// fell back to opaque mode) before its last byte.
    pub fn is_complete(&self) -> bool {
        match self {
            HttpMessage::Request(r) => r.complete,
            HttpMessage::Response(r) => r.complete,
        }
    }
}

/// A request: start line, header fields, body and trailers.
///
/// The target is a position in the message's bytes (which [`Headers`] hold),
/// read with [`HttpRequest::target`]: one reference to those bytes per
/// message instead of one per field, which small keep-alive exchanges
/// notice. Equality compares what the request says, not where it lies.
#[derive(Clone)]
pub struct HttpRequest {
    /// The method token, e.g. `GET`.
    pub method: Bytes,
    /// Where the target lies in `headers`' bytes (see [`HttpRequest::target`]).
    pub(crate) target: Span,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: HttpVersion,
    /// Header fields in wire order.
    pub headers: Headers,
    /// The body content: de-chunked when `chunked`, capped at
    /// [`crate::Limits::request_cap`]. Empty when the request has no body.
    pub body: CappedBytes,
    /// True when the body used the chunked transfer coding.
    pub chunked: bool,
    /// Trailer fields after the last chunk, in wire order (chunked only).
    pub trailers: Vec<Header>,
    /// False when the message was cut short (see [`HttpMessage::is_complete`]).
    pub complete: bool,
}

impl HttpRequest {
    /// The method as text.
    pub fn method_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.method)
    }

    /// The request target exactly as sent: origin-form (`/path?query`),
    /// absolute-form (`http://host/path`, kept as is: see
    /// [`HttpRequest::absolute_form`]), authority-form (`host:443`, for
    /// `CONNECT`) or `*`.
    pub fn target(&self) -> &[u8] {
        self.target.get(self.headers.data())
    }

    /// [`HttpRequest::target`] as a zero-copy [`Bytes`].
    pub fn target_bytes(&self) -> Bytes {
        self.target.bytes(self.headers.data())
    }

    /// The target as text.
    pub fn target_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.target())
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.find(name)
    }

    /// The `Host` header, else the authority of an absolute-form target.
    pub fn host(&self) -> Option<Bytes> {
        if let Some(h) = self.headers.find_bytes("host") {
            return Some(h);
        }
        split_absolute_form(&self.target_bytes()).map(|(host, _)| host)
    }

    /// For an absolute-form target (`http://host:port/path?q`, as sent to a
    /// forward proxy): the authority (`host:port`) and the origin-form rest
    /// (`/path?q`, or `/` when the target has no path). `None` for any other
    /// form.
    pub fn absolute_form(&self) -> Option<(Bytes, Bytes)> {
        split_absolute_form(&self.target_bytes())
    }
}

impl PartialEq for HttpRequest {
    fn eq(&self, o: &HttpRequest) -> bool {
        self.method == o.method
            && self.target() == o.target()
            && self.version == o.version
            && self.headers == o.headers
            && self.body == o.body
            && self.chunked == o.chunked
            && self.trailers == o.trailers
            && self.complete == o.complete
    }
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("target", &self.target_str())
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .field("chunked", &self.chunked)
            .field("trailers", &self.trailers)
            .field("complete", &self.complete)
            .finish()
    }
}

/// A response: status line, header fields, body and trailers.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    /// The three-digit status code.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: Bytes,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: HttpVersion,
    /// Header fields in wire order.
    pub headers: Headers,
    /// The body content: de-chunked when `chunked`, capped at
    /// [`crate::Limits::response_cap`]. Empty for bodiless responses
    /// (to `HEAD`, `1xx`, `204`, `304`).
    pub body: CappedBytes,
    /// True when the body used the chunked transfer coding.
    pub chunked: bool,
    /// Trailer fields after the last chunk, in wire order (chunked only).
    pub trailers: Vec<Header>,
    /// False when the message was cut short (see [`HttpMessage::is_complete`]).
    pub complete: bool,
}

impl HttpResponse {
    /// The reason phrase as text.
    pub fn reason_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.reason)
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.find(name)
    }

    /// An interim `1xx` response other than `101 Switching Protocols`: the
    /// final response to the same request follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// The first header in `headers` named `name` (ASCII case-insensitive).
pub fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a Bytes> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
}

/// Text of a header value or other wire bytes, lossy for non-UTF-8.
pub fn bytes_str(b: &Bytes) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Where the authority of an absolute-form target (`scheme://authority/rest`)
/// lies in it; `None` for any other form.
pub(crate) fn authority_range(t: &[u8]) -> Option<Range<usize>> {
    let colon = t.iter().position(|&b| b == b':')?;
    let scheme = t.get(..colon)?;
    if scheme.is_empty() || !scheme.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
        return None;
    }
    if t.get(colon + 1..colon + 3)? != b"//" {
        return None;
    }
    let auth_start = colon + 3;
    let rest = t.get(auth_start..)?;
    let auth_len = rest.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    Some(auth_start..auth_start + auth_len)
}

/// Splits `scheme://authority/rest` into authority and `/rest` (zero-copy).
pub(crate) fn split_absolute_form(target: &Bytes) -> Option<(Bytes, Bytes)> {
    let t: &[u8] = target;
    let authority = authority_range(t)?;
    let auth_end = authority.end;
    let path = if auth_end == t.len() {
        Bytes::from_static(b"/")
    } else if t.get(auth_end) == Some(&b'/') {
        target.slice(auth_end..)
    } else {
        // `http://host?q`: origin-form needs a leading slash.
        let mut p = Vec::with_capacity(t.len() - auth_end + 1);
        p.push(b'/');
        p.extend_from_slice(t.get(auth_end..).unwrap_or_default());
        Bytes::from(p)
    };
    Some((target.slice(authority), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form() {
        let t = Bytes::from_static(b"http://example.com:8080/a/b?c=d");
        let (h, p) = split_absolute_form(&t).unwrap();
        assert_eq!(&h[..], b"example.com:8080");
        assert_eq!(&p[..], b"/a/b?c=d");
        let (h, p) = split_absolute_form(&Bytes::from_static(b"https://x")).unwrap();
        assert_eq!((&h[..], &p[..]), (&b"x"[..], &b"/"[..]));
        let (h, p) = split_absolute_form(&Bytes::from_static(b"http://x?q")).unwrap();
        assert_eq!((&h[..], &p[..]), (&b"x"[..], &b"/?q"[..]));
        assert!(split_absolute_form(&Bytes::from_static(b"/a:b//c")).is_none());
        assert!(split_absolute_form(&Bytes::from_static(b"host:443")).is_none());
        assert!(split_absolute_form(&Bytes::from_static(b"*")).is_none());
    }
}
