//! Blanking secrets in what is recorded, in place; never in what is
//! forwarded.
//!
//! Every function here overwrites secret bytes with `*` (a JSON number
//! with `0` and spaces) of the same length, so lengths, offsets and framing
//! (a PostgreSQL length field, a RESP `$len`, an HTTP `Content-Length` or
//! chunk size, the positions of the other header fields) stay valid, and a
//! blanked JSON body or SQL statement still parses. Each works on a
//! possibly truncated prefix of the message (the recorder keeps messages up
//! to a cap) and only blanks what is present. Where the fields and
//! arguments are in the bytes is `wire`'s to say
//! ([`wire::http::head_lines`], [`wire::http::chunk_data_spans`],
//! [`wire::redis::command_raw_spans`]) or the SQL scanner's
//! ([`crate::sql_scan`]); what is secret is decided here, by the [`Rules`].
//!
//! Modules: this file holds the [`Rules`] (default lists, added and
//! exempted names, what the trace header records of them) and the
//! PostgreSQL and Redis blanking; `http` blanks request targets (URL
//! userinfo, query parameters), header values and form and JSON bodies;
//! `json` finds the values of secret keys in a JSON body (walked with
//! serde_json); `sql` finds password literals in SQL text; `params` finds
//! the Bind parameters that stand for secrets (placeholders assigned to or
//! compared with secret columns) and keeps, per connection, the prepared
//! statements that have some; `log` blanks `name=value`, `name: value`,
//! JSON fields, credential headers, `Bearer` tokens and URL passwords in
//! log lines; [`record`]
//! redacts a record already written (`oltrace redact`), parsing its bytes
//! again.

mod http;
mod json;
mod log;
mod params;
pub mod record;
mod sql;

pub use http::{body_kind, http_body, http_head_with, target_password, target_spans, target_text, target_text_with, BodyKind};
pub use log::{log_line, log_spans};
pub use params::{bind_message, secret_params, BindSecrets};
pub use sql::{sql_in_place, sql_in_string, sql_spans};

use aho_corasick::AhoCorasick;
use std::sync::{Arc, LazyLock};

/// Query, form and JSON field names blanked by default (compared ASCII
/// case-insensitively, after percent-decoding).
pub const DEFAULT_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "auth",
    "signature",
    "sig",
    "client_secret",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// HTTP header fields whose values are blanked by default (compared ASCII
/// case-insensitively).
pub const DEFAULT_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"];

/// The default header list under its older name.
pub const HTTP_SECRET_HEADERS: &[&str] = DEFAULT_HEADERS;

/// The version of the built-in rules, recorded in the trace header: 1 for
/// traces written before it was recorded (PostgreSQL password and SASL
/// messages; `Authorization`, `Proxy-Authorization`, `Cookie`,
/// `Set-Cookie`; URL userinfo passwords; Redis `AUTH`, `HELLO AUTH`,
/// `MIGRATE AUTH|AUTH2`, `CONFIG SET requirepass|masterauth`, `ACL SETUSER`
/// passwords); 2 adds query, form and JSON fields, `X-Api-Key`,
/// `X-Auth-Token`, and SQL password literals; 3 adds Bind parameters of
/// secret columns and log lines.
pub const RULES_VERSION: u32 = 3;

/// What is blanked: on or off, and the field and header names. Built once
/// from the options (`--redact-field`, `--redact-header`, `--keep-field`,
/// `--no-redact`, or the TOML file) and shared by every conversion.
/// Cheap to clone (the lists are shared).
#[derive(Clone, Debug)]
pub struct Rules {
    enabled: bool,
    /// Lower-case, the defaults and the added ones, less the kept ones.
    fields: Arc<[String]>,
    /// Lower-case, the defaults and the added ones.
    headers: Arc<[String]>,
    /// Lower-case field names exempted from the defaults.
    kept: Arc<[String]>,
    /// `"name"` of every field, quoted as a JSON key: a body that has none
    /// of them (and no `\u` escape that could spell one) is not walked.
    json_keys: Option<AhoCorasick>,
    /// Every field name, bare: SQL naming none has no secret parameter.
    field_words: Option<AhoCorasick>,
    /// Every field and header name, `bearer` and `://`, longest first: a
    /// log line naming none is not looked at further.
    log_words: Option<AhoCorasick>,
}

impl Default for Rules {
    /// The built-in lists, on.
    fn default() -> Rules {
        static DEFAULT: LazyLock<Rules> = LazyLock::new(|| Rules::new(&[], &[], &[]).expect("the built-in names are valid"));
        DEFAULT.clone()
    }
}

impl Rules {
    /// The built-in lists with `add_fields` and `add_headers` added and
    /// `keep_fields` exempted. A name must be non-empty printable ASCII
    /// without spaces, `=`, `&`, `:` or quotes.
    pub fn new(add_fields: &[String], add_headers: &[String], keep_fields: &[String]) -> Result<Rules, String> {
        for (flag, names) in [("--redact-field", add_fields), ("--redact-header", add_headers), ("--keep-field", keep_fields)] {
            for n in names {
                check_name(flag, n)?;
            }
        }
        let lower = |v: &[String]| v.iter().map(|n| n.to_ascii_lowercase()).collect::<Vec<_>>();
        let kept = lower(keep_fields);
        let mut fields: Vec<String> = DEFAULT_FIELDS.iter().map(|s| s.to_string()).chain(lower(add_fields)).collect();
        fields.retain(|f| !kept.contains(f));
        let headers: Vec<String> = DEFAULT_HEADERS.iter().map(|s| s.to_string()).chain(lower(add_headers)).collect();
        Ok(Rules::from_lists(true, fields, headers, kept))
    }

    /// Nothing blanked (`--no-redact`).
    pub fn off() -> Rules {
        Rules { enabled: false, fields: Arc::new([]), headers: Arc::new([]), kept: Arc::new([]), json_keys: None, field_words: None, log_words: None }
    }

    fn from_lists(enabled: bool, mut fields: Vec<String>, mut headers: Vec<String>, mut kept: Vec<String>) -> Rules {
        dedup(&mut fields);
        dedup(&mut headers);
        dedup(&mut kept);
        let json_keys = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(fields.iter().map(|f| format!("\"{f}\"")))
            .ok();
        let field_words = AhoCorasick::builder().ascii_case_insensitive(true).build(&fields).ok();
        let log_words = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(fields.iter().chain(headers.iter()).map(String::as_str).chain(["bearer", "://"]))
            .ok();
        Rules { enabled, fields: fields.into(), headers: headers.into(), kept: kept.into(), json_keys, field_words, log_words }
    }

    /// The rules a trace header records ([`Rules::record`]).
    pub fn from_record(r: &format::Redaction) -> Rules {
        if !r.enabled {
            return Rules::off();
        }
        Rules::from_lists(true, r.fields.clone(), r.headers.clone(), r.kept.clone())
    }

    /// These rules and `more` together: every name either blanks, `more`'s
    /// exemptions apply (`oltrace redact` over a trace's recorded rules).
    pub fn union(&self, more: &Rules) -> Rules {
        if !self.enabled {
            return more.clone();
        }
        let mut fields: Vec<String> = self.fields.iter().chain(more.fields.iter()).cloned().collect();
        fields.retain(|f| !more.kept.contains(f));
        let headers = self.headers.iter().chain(more.headers.iter()).cloned().collect();
        let mut kept = self.kept.to_vec();
        kept.extend(more.kept.iter().cloned());
        kept.retain(|k| !fields.contains(k));
        Rules::from_lists(self.enabled || more.enabled, fields, headers, kept)
    }

    /// What the trace header says of these rules; `by` names what applied
    /// them (`oltrace proxy`, `oltrace redact`).
    pub fn record(&self, by: &str) -> format::Redaction {
        format::Redaction {
            enabled: self.enabled,
            rules_version: if self.enabled { RULES_VERSION } else { 0 },
            fields: self.fields.to_vec(),
            headers: self.headers.to_vec(),
            kept: self.kept.to_vec(),
            by: vec![by.to_string()],
        }
    }

    /// Blanking is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The field names blanked (lower-case).
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The header names blanked (lower-case).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// `name` (a query, form or JSON field name, already decoded) is one
    /// whose value is blanked.
    pub fn is_secret_field(&self, name: &[u8]) -> bool {
        self.enabled && self.fields.iter().any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
    }

    /// `name` (a header field name; spaces and tabs around it ignored) is
    /// one whose value is blanked.
    pub fn is_secret_header(&self, name: &[u8]) -> bool {
        let name = trim_ows(name);
        self.enabled && self.headers.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
    }

    /// `text` holds one of the field names somewhere (ASCII
    /// case-insensitively; a cheap search before a closer look).
    pub fn mentions_field(&self, text: &[u8]) -> bool {
        self.field_words.as_ref().is_some_and(|a| a.is_match(text))
    }

    /// `body` may hold a secret JSON key: one quoted as a key, or a `\u`
    /// escape that could spell one.
    fn mentions_json_key(&self, body: &[u8]) -> bool {
        self.json_keys.as_ref().is_some_and(|a| a.is_match(body)) || memchr::memmem::find(body, b"\\u").is_some()
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

fn check_name(flag: &str, name: &str) -> Result<(), String> {
    let bad = name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic() || matches!(b, b'=' | b'&' | b':' | b'"' | b'\''));
    if bad {
        return Err(format!(
            "{flag} {name:?}: a name is one or more printable ASCII characters without spaces, '=', '&', ':' or quotes (e.g. {flag} session_id)"
        ));
    }
    Ok(())
}

/// The byte secrets are replaced with.
pub const STAR: u8 = b'*';

/// A header field name (spaces and tabs around it ignored) is one of the
/// [`DEFAULT_HEADERS`].
pub fn is_secret_header(name: &[u8]) -> bool {
    let name = trim_ows(name);
    DEFAULT_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
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

/// An HTTP/1.x message (head first, then whatever body was kept): blanks
/// what the default [`Rules`] blank in its head ([`http_head_with`]).
/// Returns true when something was blanked.
pub fn http_head(raw: &mut [u8]) -> bool {
    http_head_with(&Rules::default(), raw)
}

pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |i| i + 1);
    &s[start..end.max(start)]
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

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// `oltrace redact`: the rules a trace's header records, with the
    /// command's own flags over them.
    #[test]
    fn union_of_recorded_rules_and_redact_flags() {
        let recorded = Rules::new(&names(&["Session_ID"]), &names(&["X-Tenant-Key"]), &names(&["key"])).unwrap();
        let recorded = Rules::from_record(&recorded.record("oltrace proxy"));
        assert!(recorded.is_secret_field(b"session_id") && !recorded.is_secret_field(b"key"));

        // `--field otp --header X-Other`: every name of both blanks; the
        // recording's exemption of `key` is not the command's (its
        // defaults hold `key`), so `key` blanks again.
        let more = Rules::new(&names(&["otp"]), &names(&["X-Other"]), &[]).unwrap();
        let u = recorded.union(&more);
        assert!(u.enabled());
        for f in ["session_id", "otp", "password", "key"] {
            assert!(u.is_secret_field(f.as_bytes()), "{f}");
        }
        assert!(u.is_secret_header(b"x-tenant-key") && u.is_secret_header(b"X-Other") && u.is_secret_header(b"Authorization"));
        assert!(!u.is_secret_field(b"page"));
        let rec = u.record("oltrace redact");
        assert!(rec.kept.is_empty(), "{rec:?}");
        assert_eq!(rec.fields.iter().filter(|f| *f == "password").count(), 1, "no name twice: {:?}", rec.fields);

        // `--keep-field key` (or a name the recording added): exempted,
        // and said so in the header.
        let keep = Rules::new(&[], &[], &names(&["key", "session_id"])).unwrap();
        let u = recorded.union(&keep);
        assert!(!u.is_secret_field(b"key") && !u.is_secret_field(b"session_id") && u.is_secret_field(b"token"));
        assert_eq!(u.record("oltrace redact").kept, names(&["key", "session_id"]));
        // The header round trip keeps the same rules.
        let back = Rules::from_record(&u.record("x"));
        assert_eq!((back.fields(), back.headers()), (u.fields(), u.headers()));

        // A trace recorded with --no-redact: the command's rules alone.
        let u = Rules::off().union(&more);
        assert!(u.is_secret_field(b"otp") && !u.is_secret_field(b"session_id") && u.is_secret_header(b"x-other"));
        assert!(!Rules::off().union(&Rules::off()).enabled());
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
