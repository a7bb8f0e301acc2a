//! Secrets in log lines (a wrapped command's output, `--log` files): free
//! text, so the rules are lexical, over the same field and header names as
//! the protocol rules:
//!
//! - `name=value`, `name: value`, `"name": "value"`, `'name': 'value'`,
//!   `\"name\":\"value\"` (JSON in a string), where `name` is a field name
//!   as a whole word or the last part of one (`password`, `db_password`,
//!   `X-Api-Key`, not `passwords`): the value, quoted (its content) or bare
//!   (up to a space, `&`, `,`, `;`, a quote or a closing bracket; `true`,
//!   `false`, `null`, and objects or arrays are left);
//! - `Name: value` where `Name` is a header name (`Authorization: Basic
//!   x`, `Cookie: a=b; c=d`): the rest of the line (a quoted value: its
//!   content);
//! - `Bearer TOKEN` anywhere: the token;
//! - URL userinfo `scheme://user:password@host`: the password;
//! - SQL password literals (`statement: create role r password 'x'` in a
//!   PostgreSQL server log, `Query  CREATE USER ... IDENTIFIED BY 'x'` in
//!   MySQL's general log): the statement's literals as
//!   [`super::sql::sql_spans`] finds them, with the SQL scanner, from the
//!   statement's start (after `statement: `, `execute NAME: ` or `Query`)
//!   when the line has one, so an apostrophe in the log prefix does not
//!   open a string.
//!
//! Bytes are overwritten with `*`, the line keeps its length. One
//! Aho-Corasick search for any of the names (and `bearer`, `://`) comes
//! first: a line naming none costs that one pass.

use super::{Rules, STAR};
use std::ops::Range;

/// Ends a bare value.
fn ends_bare(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'&' | b',' | b';' | b'"' | b'\'' | b')' | b']' | b'}' | b'>' | b'\\')
}

/// Ends a URL's authority.
fn ends_authority(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\')
}

/// The spans of `line` to blank, per `rules` (see the module
/// documentation).
pub fn log_spans(rules: &Rules, line: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    if !rules.enabled() {
        return out;
    }
    if super::sql::mentions_trigger(line) {
        let from = sql_start(line);
        out.extend(super::sql::sql_spans(&line[from..]).into_iter().map(|r| r.start + from..r.end + from));
    }
    let Some(words) = rules.log_words.as_ref() else { return out };
    for m in words.find_iter(line) {
        let (s, e) = (m.start(), m.end());
        let word = &line[s..e];
        let whole_start = s == 0 || !line[s - 1].is_ascii_alphanumeric();
        if word == b"://" {
            let authority = &line[e..];
            let end = authority.iter().position(|&b| ends_authority(b)).unwrap_or(authority.len());
            let authority = &authority[..end];
            if let Some(at) = memchr::memrchr(b'@', authority) {
                if let Some(colon) = memchr::memchr(b':', &authority[..at]) {
                    push(&mut out, e + colon + 1..e + at);
                }
            }
        } else if word.eq_ignore_ascii_case(b"bearer") {
            if whole_start && line.get(e).is_some_and(|&b| b == b' ' || b == b'\t') {
                let from = e + line[e..].iter().take_while(|b| b.is_ascii_whitespace()).count();
                push(&mut out, bare(line, from));
            }
        } else if whole_start {
            if let Some(span) = value_after(rules, line, word, e) {
                push(&mut out, span);
            }
        }
    }
    out
}

/// Where the SQL of a database server's log line starts: after
/// PostgreSQL's `statement: ` (log_statement, and `STATEMENT:  ` after an
/// error) or `execute NAME: ` (extended protocol), or MySQL general log's
/// `Query` column; else the line's start.
fn sql_start(line: &[u8]) -> usize {
    let find = |what: &[u8]| memchr::memmem::find(line, what).map(|i| i + what.len());
    if let Some(i) = find(b"statement: ").or_else(|| find(b"STATEMENT:  ")).or_else(|| find(b"Query\t")) {
        return i;
    }
    if let Some(i) = find(b"execute ") {
        if let Some(colon) = memchr::memmem::find(&line[i..], b": ") {
            return i + colon + 2;
        }
    }
    0
}

fn push(out: &mut Vec<Range<usize>>, r: Range<usize>) {
    if r.start < r.end {
        out.push(r);
    }
}

/// The bare value starting at `from`.
fn bare(line: &[u8], from: usize) -> Range<usize> {
    let len = line[from.min(line.len())..].iter().position(|&b| ends_bare(b)).unwrap_or(line.len() - from.min(line.len()));
    from..from + len
}

/// The value of the name `word` ending at `e`, if a `=` or `:` follows it
/// (after closing quotes and spaces).
fn value_after(rules: &Rules, line: &[u8], word: &[u8], e: usize) -> Option<Range<usize>> {
    let skip = |mut j: usize, what: &dyn Fn(u8) -> bool| {
        while line.get(j).is_some_and(|&b| what(b)) {
            j += 1;
        }
        j
    };
    let j = skip(e, &|b| matches!(b, b'"' | b'\'' | b'\\'));
    let j = skip(j, &|b| b == b' ' || b == b'\t');
    let sep = *line.get(j)?;
    if !(sep == b'=' || sep == b':') || line.get(j + 1) == Some(&sep) {
        return None;
    }
    let v = skip(j + 1, &|b| b == b' ' || b == b'\t');
    let rest = &line[v.min(line.len())..];
    if rest.starts_with(b"\\\"") {
        let end = memchr::memmem::find(&rest[2..], b"\\\"").map_or(line.len(), |i| v + 2 + i);
        return Some(v + 2..end);
    }
    match rest.first() {
        Some(&q @ (b'"' | b'\'')) => {
            let mut k = v + 1;
            while k < line.len() && !(line[k] == q && line[k - 1] != b'\\') {
                k += 1;
            }
            Some(v + 1..k)
        }
        Some(b'{' | b'[') | None => None,
        Some(_) if rules.is_secret_header(word) => {
            let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(v, |i| i + 1);
            Some(v..end.max(v))
        }
        Some(_) => {
            let r = bare(line, v);
            let value = &line[r.clone()];
            let literal = [&b"true"[..], b"false", b"null"].iter().any(|l| value.eq_ignore_ascii_case(l));
            (!literal).then_some(r)
        }
    }
}

/// Blanks the secrets of one log line in place (see the module
/// documentation). Returns true when something was blanked.
pub fn log_line(rules: &Rules, text: &mut String) -> bool {
    let spans = log_spans(rules, text.as_bytes());
    if spans.is_empty() {
        return false;
    }
    // Spans start and end next to ASCII bytes (or the line's ends), so
    // they cover whole characters: all stars, the text stays UTF-8.
    let mut bytes = std::mem::take(text).into_bytes();
    for s in &spans {
        bytes[s.clone()].fill(STAR);
    }
    *text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blanked(line: &str) -> String {
        let mut s = line.to_string();
        log_line(&Rules::default(), &mut s);
        s
    }

    #[test]
    fn secrets_in_log_lines() {
        assert_eq!(blanked("login user=bob password=hunter2 ok"), "login user=bob password=******* ok");
        assert_eq!(blanked("DB_PASSWORD: s3cr=t, next"), "DB_PASSWORD: ******, next");
        assert_eq!(blanked(r#"{"user":"bob","token": "abc\"d","n":1,"api_key":null}"#), r#"{"user":"bob","token": "******","n":1,"api_key":null}"#);
        assert_eq!(blanked("{'secret': 'xy z'}"), "{'secret': '****'}");
        assert_eq!(blanked(r#"msg="{\"password\":\"pw\"}""#), r#"msg="{\"password\":\"**\"}""#);
        assert_eq!(blanked("Authorization: Bearer abc.def"), "Authorization: **************");
        assert_eq!(blanked("sent header Bearer abc.def to x"), "sent header Bearer ******* to x");
        assert_eq!(blanked("connect postgres://app:pw@db:5432/x?sslmode=require"), "connect postgres://app:**@db:5432/x?sslmode=require");
        assert_eq!(blanked("GET /cb?code=1&access_token=zz&x=2"), "GET /cb?code=1&access_token=**&x=2");
        assert_eq!(blanked("naïve password=é€ done"), "naïve password=***** done");
    }

    #[test]
    fn sql_password_literals_in_server_logs() {
        // PostgreSQL with log_statement = 'all' or 'ddl'.
        assert_eq!(
            blanked("2026-12-04 16:00:00.123 UTC [4242] postgres@postgres LOG:  statement: create role r password 'x'"),
            "2026-12-04 16:00:00.123 UTC [4242] postgres@postgres LOG:  statement: create role r password '*'"
        );
        // An apostrophe before the statement does not open a string.
        assert_eq!(
            blanked("[app's pool] LOG:  execute <unnamed>: ALTER USER u WITH ENCRYPTED PASSWORD 'hunter2' VALID UNTIL 'infinity'"),
            "[app's pool] LOG:  execute <unnamed>: ALTER USER u WITH ENCRYPTED PASSWORD '*******' VALID UNTIL 'infinity'"
        );
        // MySQL's general log, and pgcrypto arguments.
        assert_eq!(
            blanked("2026-12-04T16:00:00.000000Z\t   12 Query\tCREATE USER 'u'@'%' IDENTIFIED BY 'pw'"),
            "2026-12-04T16:00:00.000000Z\t   12 Query\tCREATE USER 'u'@'%' IDENTIFIED BY '**'"
        );
        assert_eq!(blanked("LOG:  statement: select crypt('pw', gen_salt('bf'))"), "LOG:  statement: select crypt('**', gen_salt('**'))");
        // A word that only looks like a rule's is left (the scanner, not a pattern).
        assert_eq!(blanked("LOG:  statement: select 'password' from t"), "LOG:  statement: select 'password' from t");
        let mut s = "LOG:  statement: create role r password 'x'".to_string();
        assert!(!log_line(&Rules::off(), &mut s));
    }

    #[test]
    fn lookalikes_stay() {
        for line in [
            "passwords=3 keyboard=us monkey=1",
            "the password is changed",
            "signal: SIGTERM",
            "token == expected",
            "http://host/path@x",
            "no secrets here",
        ] {
            assert_eq!(blanked(line), line);
        }
        let mut s = "password=x".to_string();
        assert!(!log_line(&Rules::off(), &mut s));
    }
}
