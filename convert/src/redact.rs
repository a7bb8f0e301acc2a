//! Blanking secrets in recorded message bytes, in place.
//!
//! Every function here overwrites secret bytes with `*` of the same length,
//! so lengths, offsets and framing (a PostgreSQL length field, a RESP
//! `$len`, the positions of the other HTTP header fields) stay valid. Each
//! works on a possibly truncated prefix of the message (the recorder keeps
//! messages up to a cap) and only blanks what is present. They change what
//! is recorded, never what the proxy forwards. Where the fields and
//! arguments are in the bytes is `wire`'s to say
//! ([`wire::http::head_lines`], [`wire::redis::command_raw_spans`]); what
//! is secret is decided here.

/// The byte secrets are replaced with.
pub const STAR: u8 = b'*';

/// HTTP header fields whose values are blanked (compared ASCII
/// case-insensitively).
pub const HTTP_SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// A header field name (spaces and tabs around it ignored) is one of the
/// [`HTTP_SECRET_HEADERS`].
pub fn is_secret_header(name: &[u8]) -> bool {
    let name = trim_ows(name);
    HTTP_SECRET_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

/// `n` stars.
pub fn stars(n: usize) -> Vec<u8> {
    vec![STAR; n]
}

/// A PostgreSQL message that carries a secret (PasswordMessage,
/// SASLInitialResponse, SASLResponse, GSSResponse: all tagged, so a 1-byte
/// tag and a 4-byte length): blanks everything after the 5-byte header.
/// Returns true when something was blanked.
pub fn pg_secret_message(raw: &mut [u8]) -> bool {
    match raw.get_mut(5..) {
        Some(body) if !body.is_empty() => {
            body.fill(STAR);
            true
        }
        _ => false,
    }
}

/// An HTTP/1.x message (head first, then whatever body was kept): blanks the
/// values of the [`HTTP_SECRET_HEADERS`] fields in the head, continuation
/// lines (obsolete line folding) included. Stops at the empty line that ends
/// the head, or at the end of the kept bytes. Returns true when a secret
/// field was found.
pub fn http_head(raw: &mut [u8]) -> bool {
    use wire::http::HeadLine;
    let (target, lines) = wire::http::head_lines(raw);
    let Some(target) = target else { return false };
    let mut found = match target_password(&raw[target.clone()]) {
        Some(span) => {
            raw[target.start + span.start..target.start + span.end].fill(STAR);
            true
        }
        None => false,
    };
    let mut in_secret = false;
    for line in lines {
        match line {
            HeadLine::Field { name, value } => {
                in_secret = is_secret_header(&raw[name]);
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

/// Where the password sits in a request target's userinfo
/// (`scheme://user:password@host...`), if it has one.
pub fn target_password(target: &[u8]) -> Option<std::ops::Range<usize>> {
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

/// `target` as text (lossy for non-UTF-8), with the password of its
/// userinfo, if any, blanked.
pub fn target_text(target: impl AsRef<[u8]>) -> String {
    let target = target.as_ref();
    match target_password(target) {
        None => String::from_utf8_lossy(target).into_owned(),
        Some(span) => {
            let mut bytes = target.to_vec();
            bytes[span].fill(STAR);
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Blanks `s` without its leading and trailing spaces and tabs.
fn blank_trimmed(s: &mut [u8]) {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |i| i + 1);
    s[start..end.max(start)].fill(STAR);
}

/// A Redis command's raw bytes: blanks the arguments at `indices` (0 = the
/// command name), for a RESP array of bulk strings or an inline command
/// line (where they are: [`wire::redis::command_raw_spans`]). Returns true
/// when some bytes were blanked.
pub fn redis_command(raw: &mut [u8], indices: &[usize]) -> bool {
    if indices.is_empty() {
        return false;
    }
    let spans = wire::redis::command_raw_spans(raw);
    let mut any = false;
    for &i in indices {
        if let Some(&(s, e)) = spans.get(i) {
            if s < e {
                raw[s..e].fill(STAR);
                any = true;
            }
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_userinfo_passwords_in_targets() {
        let mut head = b"GET http://ann:s3cret@example.com:8080/a?b=c@d HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
        assert!(http_head(&mut head));
        assert!(head.starts_with(b"GET http://ann:******@example.com:8080/a?b=c@d HTTP/1.1\r\n"));
        assert_eq!(target_text("http://ann:pw@h/"), "http://ann:**@h/");
        // No password, or an '@' only after the authority: untouched.
        assert_eq!(target_text("http://ann@h/x"), "http://ann@h/x");
        assert_eq!(target_text("/path?to=a@b:c"), "/path?to=a@b:c");
        let mut plain = b"GET /x?u=a:b@c HTTP/1.1\r\n\r\n".to_vec();
        assert!(!http_head(&mut plain));
    }

    #[test]
    fn only_the_secret_fields_among_lookalikes_are_blanked() {
        // Fields sharing a secret field's first letter, or its name as a
        // prefix, stay; a folded line after a skipped field stays too.
        let mut raw = b"HTTP/1.1 200 OK\r\nAccept: a\r\nset-cookie: s=1\r\nServer: x\r\n cont\r\nCookie2: c\r\nProxy-Authorization: p\r\npragma: n\r\n\r\n".to_vec();
        assert!(http_head(&mut raw));
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            "HTTP/1.1 200 OK\r\nAccept: a\r\nset-cookie: ***\r\nServer: x\r\n cont\r\nCookie2: c\r\nProxy-Authorization: *\r\npragma: n\r\n\r\n"
        );
    }

    #[test]
    fn http_values_blanked_in_place() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization:  Bearer x \r\nCOOKIE: a=b;\r\n c=d\r\nX: y\r\n\r\nCookie: body".to_vec();
        assert!(http_head(&mut raw));
        assert_eq!(
            &raw[..],
            &b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization:  ******** \r\nCOOKIE: ****\r\n ***\r\nX: y\r\n\r\nCookie: body"[..]
        );
        let mut cut = b"HTTP/1.1 200 OK\r\nSet-Cookie: sess=12".to_vec();
        assert!(http_head(&mut cut));
        assert_eq!(&cut[..], &b"HTTP/1.1 200 OK\r\nSet-Cookie: *******"[..]);
        let mut none = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        assert!(!http_head(&mut none));
    }

    #[test]
    fn resp_and_inline_spans() {
        let mut raw = b"*3\r\n$5\r\nHELLO\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n".to_vec();
        assert!(redis_command(&mut raw, &[2]));
        assert_eq!(&raw[..], &b"*3\r\n$5\r\nHELLO\r\n$4\r\nAUTH\r\n$6\r\n******\r\n"[..]);
        let mut cut = b"*2\r\n$4\r\nAUTH\r\n$6\r\nsec".to_vec();
        assert!(redis_command(&mut cut, &[1, 5]));
        assert_eq!(&cut[..], &b"*2\r\n$4\r\nAUTH\r\n$6\r\n***"[..]);
        let mut inline = b"AUTH  \"my pass\" 'x'\r\n".to_vec();
        assert!(redis_command(&mut inline, &[1, 2]));
        assert_eq!(&inline[..], &b"AUTH  ********* ***\r\n"[..]);
        let mut unbalanced = b"AUTH \"oops pw\r\n".to_vec();
        assert!(redis_command(&mut unbalanced, &[1, 2]));
        assert_eq!(&unbalanced[..], &b"AUTH ***** **\r\n"[..]);
    }

    #[test]
    fn pg_body_blanked() {
        let mut raw = b"p\x00\x00\x00\x0dpassword\x00".to_vec();
        assert!(pg_secret_message(&mut raw));
        assert_eq!(&raw[..], &b"p\x00\x00\x00\x0d*********"[..]);
        let mut short = b"p\x00\x00".to_vec();
        assert!(!pg_secret_message(&mut short));
    }
}
