//! HTTP: the request target (URL userinfo password, query parameters),
//! header values, and `application/x-www-form-urlencoded` and JSON bodies.
//! Where things are in the bytes is `wire`'s to say
//! ([`wire::http::head_lines`], [`wire::http::parse_request_head`],
//! [`wire::http::chunk_data_spans`]); the `name=value&...` pairs of a
//! query or form are split here (there is nothing to parse beyond `&` and
//! `=`; names are percent-decoded by `percent-encoding`).

use super::json::{self, Fill};
use super::{is_ows, Rules, STAR};
use std::borrow::Cow;
use std::ops::Range;

/// An HTTP/1.x message (head first, then whatever body was kept): blanks,
/// per `rules`, the password of the request target's userinfo, the values
/// of secret query parameters, and the values of secret header fields,
/// continuation lines (obsolete line folding) included. Stops at the empty
/// line that ends the head, or at the end of the kept bytes. Returns true
/// when something was blanked.
pub fn http_head_with(rules: &Rules, raw: &mut [u8]) -> bool {
    use wire::http::HeadLine;
    if !rules.enabled() {
        return false;
    }
    let (target, lines) = wire::http::head_lines(raw);
    let Some(target) = target else { return false };
    let mut found = false;
    for span in target_spans(rules, &raw[target.clone()]) {
        raw[target.start + span.start..target.start + span.end].fill(STAR);
        found = true;
    }
    let mut in_secret = false;
    for line in lines {
        match line {
            HeadLine::Field { name, value } => {
                in_secret = rules.is_secret_header(&raw[name]);
                if in_secret {
                    found = true;
                    blank_trimmed(&mut raw[value]);
                }
            }
            // obs-fold: the previous field's value goes on.
            HeadLine::Continuation(value) if in_secret => blank_trimmed(&mut raw[value]),
            HeadLine::Continuation(_) => {}
            HeadLine::Other(_) => in_secret = false,
        }
    }
    found
}

/// Where a request target holds secrets, per `rules`: its userinfo
/// password and the values of its secret query parameters.
pub fn target_spans(rules: &Rules, target: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    if !rules.enabled() {
        return out;
    }
    out.extend(target_password(target));
    if let Some(q) = memchr::memchr(b'?', target) {
        let end = memchr::memchr(b'#', &target[q..]).map_or(target.len(), |i| q + i);
        out.extend(form_value_spans(rules, &target[q + 1..end]).into_iter().map(|r| q + 1 + r.start..q + 1 + r.end));
    }
    out
}

/// The spans of the values, in `name=value&name=value` text (a query
/// string or a form body), whose names are secret per `rules`.
pub(super) fn form_value_spans(rules: &Rules, s: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 0;
    for pair in s.split(|&b| b == b'&') {
        if let Some(eq) = memchr::memchr(b'=', pair) {
            let name: Cow<[u8]> = percent_encoding::percent_decode(&pair[..eq]).into();
            if eq + 1 < pair.len() && rules.is_secret_field(&name) {
                out.push(pos + eq + 1..pos + pair.len());
            }
        }
        pos += pair.len() + 1;
    }
    out
}

/// Where the password sits in a request target's userinfo
/// (`scheme://user:password@host...`), if it has one.
pub fn target_password(target: &[u8]) -> Option<Range<usize>> {
    // Only an absolute-form target has userinfo, and it starts with its
    // scheme, a letter: the common origin-form `/path` is settled at once.
    if !target.first()?.is_ascii_alphabetic() {
        return None;
    }
    let authority_start = memchr::memmem::find(target, b"://")? + 3;
    let authority = &target[authority_start..];
    let authority_end = authority.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(authority.len());
    let at = authority[..authority_end].iter().rposition(|&b| b == b'@')?;
    let colon = authority[..at].iter().position(|&b| b == b':')?;
    Some(authority_start + colon + 1..authority_start + at)
}

/// `target` as text (lossy for non-UTF-8), with what the default [`Rules`]
/// blank in it blanked ([`target_text_with`]).
pub fn target_text(target: impl AsRef<[u8]>) -> String {
    target_text_with(&Rules::default(), target.as_ref())
}

/// `target` as text (lossy for non-UTF-8), with its userinfo password and
/// secret query values blanked per `rules`.
pub fn target_text_with(rules: &Rules, target: &[u8]) -> String {
    let spans = target_spans(rules, target);
    if spans.is_empty() {
        return String::from_utf8_lossy(target).into_owned();
    }
    let mut bytes = target.to_vec();
    for span in spans {
        bytes[span].fill(STAR);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The kinds of body whose fields are blanked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`, `application/*+json`, any `...json` type.
    Json,
}

/// The [`BodyKind`] a `Content-Type` value names, if any.
pub fn body_kind(content_type: &[u8]) -> Option<BodyKind> {
    let media = content_type.split(|&b| b == b';').next().unwrap_or_default();
    let media = super::trim_ows(media);
    if media.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        Some(BodyKind::Form)
    } else if media.len() >= 4 && media[media.len() - 4..].eq_ignore_ascii_case(b"json") {
        Some(BodyKind::Json)
    } else {
        None
    }
}

/// A recorded HTTP message (head and whatever of the body was kept) whose
/// body is of `kind`: blanks, per `rules`, the values of secret form
/// fields, or of secret JSON keys at any depth (in request and response
/// bodies alike). A chunked body is blanked in its chunks' data, never in
/// the framing. A JSON body that does not parse (cut by the recording cap,
/// or not JSON) but names a secret key is blanked whole. Returns true when
/// something was blanked.
pub fn http_body(rules: &Rules, raw: &mut [u8], request: bool, kind: BodyKind) -> bool {
    if !rules.enabled() {
        return false;
    }
    let head = if request { wire::http::parse_request_head(raw) } else { wire::http::parse_response_head(raw) };
    let Ok(head) = head else { return false };
    let (head_len, chunked) = (head.head_len(), head.chunked());
    let head_len = head_len.min(raw.len());
    let body = &mut raw[head_len..];
    if body.is_empty() {
        return false;
    }
    let spans: Vec<Range<usize>> = if chunked { wire::http::chunk_data_spans(body) } else { std::iter::once(0..body.len()).collect() };
    let content: Cow<[u8]> = match spans.as_slice() {
        [one] if *one == (0..body.len()) => Cow::Borrowed(&*body),
        _ => Cow::Owned(spans.iter().flat_map(|s| body[s.clone()].iter().copied()).collect()),
    };
    let blanks: Vec<(Range<usize>, Fill)> = match kind {
        BodyKind::Form => form_value_spans(rules, &content).into_iter().map(|r| (r, Fill::Star)).collect(),
        BodyKind::Json => json::blanks(rules, &content),
    };
    drop(content);
    for (range, fill) in &blanks {
        write_through(body, &spans, range.clone(), *fill);
    }
    !blanks.is_empty()
}

/// Writes `fill` over `range` of the body's content, which lies in `body`
/// at `spans` (in order).
fn write_through(body: &mut [u8], spans: &[Range<usize>], range: Range<usize>, fill: Fill) {
    let mut content_at = 0;
    for s in spans {
        let (lo, hi) = (range.start.max(content_at), range.end.min(content_at + s.len()));
        for k in lo..hi {
            body[s.start + (k - content_at)] = fill.byte(k - range.start);
        }
        content_at += s.len();
        if content_at >= range.end {
            break;
        }
    }
}

/// Blanks `s` without its leading and trailing spaces and tabs.
fn blank_trimmed(s: &mut [u8]) {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |i| i + 1);
    s[start..end.max(start)].fill(STAR);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: Vec<u8>) -> String {
        String::from_utf8(raw).unwrap()
    }

    #[test]
    fn query_parameters_and_userinfo() {
        let r = Rules::default();
        assert_eq!(target_text_with(&r, b"/run/x?password=hunter2&token=abc&page=2#password=x"), "/run/x?password=*******&token=***&page=2#password=x");
        assert_eq!(target_text_with(&r, b"/a?X-Amz-Signature=abcd&pass%77ord=pw&key="), "/a?X-Amz-Signature=****&pass%77ord=**&key=");
        assert_eq!(target_text_with(&r, b"http://u:pw@h/?sig=1"), "http://u:**@h/?sig=*");
        assert_eq!(target_text_with(&Rules::off(), b"/?token=1"), "/?token=1");
        let kept = Rules::new(&["session".into()], &[], &["token".into()]).unwrap();
        assert_eq!(target_text_with(&kept, b"/?token=1&session=22"), "/?token=1&session=**");
    }

    #[test]
    fn head_with_added_headers() {
        let r = Rules::new(&[], &["X-Tenant-Key".into()], &[]).unwrap();
        let mut raw = b"GET /?pwd=abc HTTP/1.1\r\nX-Api-Key: k1\r\nx-tenant-key: k2\r\nX-Auth-Token: t\r\n\r\n".to_vec();
        assert!(http_head_with(&r, &mut raw));
        assert_eq!(text(raw), "GET /?pwd=*** HTTP/1.1\r\nX-Api-Key: **\r\nx-tenant-key: **\r\nX-Auth-Token: *\r\n\r\n");
    }

    #[test]
    fn form_and_json_bodies_keep_their_length() {
        let r = Rules::default();
        let mut form = b"POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\nuser=ann&password=s3cr%20et&x".to_vec();
        assert!(http_body(&r, &mut form, true, BodyKind::Form));
        assert!(text(form).ends_with("\r\n\r\nuser=ann&password=*********&x"));
        let body = r#"{"user":"ann","Password":"p\"w","nested":{"api_key":123,"list":[{"token":"t"}]},"auth":{"a":"b","n":-1.5}}"#;
        let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes();
        assert!(http_body(&r, &mut raw, false, BodyKind::Json));
        let out = text(raw);
        let out = out.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(out, r#"{"user":"ann","Password":"****","nested":{"api_key":0  ,"list":[{"token":"*"}]},"auth":{"a":"*","n":0   }}"#);
        serde_json::from_str::<serde_json::Value>(out).unwrap();
    }

    #[test]
    fn chunked_bodies_blank_data_not_framing() {
        let r = Rules::default();
        let mut raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"token\"\r\n6\r\n:\"abc\"\r\n1\r\n}\r\n0\r\n\r\n".to_vec();
        assert!(http_body(&r, &mut raw, true, BodyKind::Json));
        assert!(text(raw).ends_with("\r\n\r\n8\r\n{\"token\"\r\n6\r\n:\"***\"\r\n1\r\n}\r\n0\r\n\r\n"));
    }

    #[test]
    fn cut_json_naming_a_secret_is_blanked_whole() {
        let r = Rules::default();
        let mut raw = b"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"password\":\"abc".to_vec();
        assert!(http_body(&r, &mut raw, true, BodyKind::Json));
        assert!(text(raw).ends_with("\r\n\r\n****************"));
        // Cut, but naming nothing secret: kept.
        let mut plain = b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"author\":\"abc".to_vec();
        assert!(!http_body(&r, &mut plain, true, BodyKind::Json));
    }

    #[test]
    fn body_kinds() {
        assert_eq!(body_kind(b"application/json; charset=utf-8"), Some(BodyKind::Json));
        assert_eq!(body_kind(b"application/problem+json"), Some(BodyKind::Json));
        assert_eq!(body_kind(b"Application/X-WWW-Form-Urlencoded"), Some(BodyKind::Form));
        assert_eq!(body_kind(b"text/plain"), None);
    }
}
