//! Encoding messages for the replayer: [`encode_request`],
//! [`encode_response`], and [`rewrite_host`] to point recorded request bytes
//! at another server.

use super::head::{parse_head, Parsed, Span, StartLine};
use super::message::authority_range;

/// Encodes an HTTP/1.1 request.
///
/// Header fields are written in order, as given (names and values must be
/// valid: no CR/LF). With a `body`: if the fields declare
/// `Transfer-Encoding: chunked`, the body is sent as one chunk and the last
/// chunk; otherwise a `Content-Length` field is appended when none is
/// present. `None` sends no body and adds nothing.
///
/// ```
/// let raw = wire::http::encode_request("POST", "/x", &[("Host", "a")], Some(b"hi"));
/// assert_eq!(raw, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
/// ```
pub fn encode_request<H: AsRef<[u8]>, V: AsRef<[u8]>>(
    method: impl AsRef<[u8]>,
    target: impl AsRef<[u8]>,
    headers: &[(H, V)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let (method, target) = (method.as_ref(), target.as_ref());
    let mut out =
        Vec::with_capacity(method.len() + target.len() + 16 + fields_len(headers) + body.map_or(0, |b| b.len() + 32));
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    finish(&mut out, headers, body);
    out
}

/// Encodes an HTTP/1.1 response, with the same body rules as
/// [`encode_request`].
///
/// ```
/// let raw = wire::http::encode_response(200, "OK", &[("Content-Type", "text/plain")], Some(b"hi"));
/// assert_eq!(raw, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
/// ```
pub fn encode_response<H: AsRef<[u8]>, V: AsRef<[u8]>>(
    status: u16,
    reason: impl AsRef<[u8]>,
    headers: &[(H, V)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let reason = reason.as_ref();
    let mut out = Vec::with_capacity(reason.len() + 16 + fields_len(headers) + body.map_or(0, |b| b.len() + 32));
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(format!("{:03}", status % 1000).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    finish(&mut out, headers, body);
    out
}

fn fields_len<H: AsRef<[u8]>, V: AsRef<[u8]>>(headers: &[(H, V)]) -> usize {
    headers.iter().map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 4).sum()
}

/// Writes the fields, the empty line and the body.
fn finish<H: AsRef<[u8]>, V: AsRef<[u8]>>(out: &mut Vec<u8>, headers: &[(H, V)], body: Option<&[u8]>) {
    let mut has_length = false;
    let mut chunked = false;
    for (name, value) in headers {
        let (name, value) = (name.as_ref(), value.as_ref());
        if name.eq_ignore_ascii_case(b"content-length") {
            has_length = true;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .split(|&b| b == b',')
                .map(super::head::trim)
                .rfind(|t| !t.is_empty())
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let Some(body) = body else {
        out.extend_from_slice(b"\r\n");
        return;
    };
    if chunked {
        out.extend_from_slice(b"\r\n");
        if !body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        return;
    }
    if !has_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Rewrites recorded request bytes (head and body, as in
/// [`crate::Message::raw`]) to go to `new_host`: the value of the first
/// `Host` field is replaced (a `Host` field is added after the request line
/// if there is none), and an absolute-form target gets the new authority.
/// Everything else, the body included, is kept byte for byte. `None` when
/// `raw` does not start with a complete, valid request head.
///
/// ```
/// let out = wire::http::rewrite_host(b"GET / HTTP/1.1\r\nHost: old:80\r\n\r\n", "new:8080").unwrap();
/// assert_eq!(out, b"GET / HTTP/1.1\r\nHost: new:8080\r\n\r\n");
/// ```
pub fn rewrite_host(raw: &[u8], new_host: &str) -> Option<Vec<u8>> {
    let mut spans = Vec::new();
    let Ok(Parsed::Complete(info)) = parse_head(raw, true, &mut spans) else { return None };
    let StartLine::Request { target, .. } = info.start else { return None };
    let mut edits: Vec<(Span, Vec<u8>)> = Vec::with_capacity(2);
    if let Some(authority) = authority_range(target.get(raw)) {
        let at = target.start();
        edits.push((Span::new(at + authority.start, at + authority.end), new_host.as_bytes().to_vec()));
    }
    match info.host {
        Some(span) => edits.push((span, new_host.as_bytes().to_vec())),
        None => {
            // Insert right after the request line.
            let line_end = raw.get(target.end()..)?.iter().position(|&b| b == b'\n')? + target.end() + 1;
            edits.push((Span::new(line_end, line_end), format!("Host: {new_host}\r\n").into_bytes()));
        }
    }
    edits.sort_by_key(|(s, _)| s.start());
    let mut out = Vec::with_capacity(raw.len() + new_host.len() + 8);
    let mut at = 0;
    for (span, with) in edits {
        out.extend_from_slice(raw.get(at..span.start())?);
        out.extend_from_slice(&with);
        at = span.end();
    }
    out.extend_from_slice(raw.get(at..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_body() {
        let raw = encode_request("PUT", "/u", &[("Transfer-Encoding", "chunked")], Some(b"abc"));
        assert_eq!(raw, b"PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        let raw = encode_request("PUT", "/u", &[("Transfer-Encoding", "chunked")], Some(b""));
        assert_eq!(raw, b"PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    }

    #[test]
    fn keeps_given_length() {
        let raw = encode_request("POST", "/", &[("content-length", "3")], Some(b"abc"));
        assert_eq!(raw, b"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc");
        let none: &[(&str, &str)] = &[];
        assert_eq!(encode_request("GET", "/", none, None), b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn rewrite() {
        let out = rewrite_host(
            b"POST http://old:1/p?q HTTP/1.1\r\nA: b\r\nhost: old:1\r\nContent-Length: 2\r\n\r\nhi",
            "n:2",
        )
        .unwrap();
        assert_eq!(out, b"POST http://n:2/p?q HTTP/1.1\r\nA: b\r\nhost: n:2\r\nContent-Length: 2\r\n\r\nhi");
        let out = rewrite_host(b"GET / HTTP/1.0\r\nA: b\r\n\r\n", "n").unwrap();
        assert_eq!(out, b"GET / HTTP/1.0\r\nHost: n\r\nA: b\r\n\r\n");
        let out = rewrite_host(b"\r\nGET / HTTP/1.0\r\n\r\n", "n").unwrap();
        assert_eq!(out, b"\r\nGET / HTTP/1.0\r\nHost: n\r\n\r\n");
        assert!(rewrite_host(b"GET / HTTP/1.1\r\nHost: a\r\n", "n").is_none());
        assert!(rewrite_host(b"HTTP/1.1 200 OK\r\n\r\n", "n").is_none());
    }
}
