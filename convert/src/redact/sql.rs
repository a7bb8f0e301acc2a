//! Password literals in SQL text, found with the SQL scanner the query
//! fingerprints use ([`crate::sql_scan`]), never with patterns over raw
//! bytes, so a comment or a quoted identifier that looks like a keyword is
//! not taken for one. What is blanked is a string literal's content (its
//! quotes and prefix kept, so the statement still scans the same):
//!
//! - after `PASSWORD`: the literal that follows it, directly or after `=`
//!   or `(` (`CREATE ROLE r PASSWORD 'x'`, `ALTER USER u WITH ENCRYPTED
//!   PASSWORD 'x'`, MySQL's `PASSWORD('x')` and `SET PASSWORD = 'x'`, a
//!   `password = 'x'` comparison), or after `FOR user =` (`SET PASSWORD
//!   FOR 'u'@'h' = 'x'`);
//! - after `IDENTIFIED`: the literal after the next `BY` or `AS` (MySQL's
//!   `IDENTIFIED BY 'x'`, `IDENTIFIED WITH plugin BY 'x'`);
//! - every literal among the arguments of pgcrypto's `crypt`,
//!   `pgp_sym_encrypt`, `pgp_sym_decrypt` (and their `_bytea` forms),
//!   `pgp_pub_decrypt` (whose last arguments are a key and its password),
//!   `encrypt`, `decrypt`, `encrypt_iv`, `decrypt_iv` and `hmac`, and of
//!   MySQL's `aes_encrypt` and `aes_decrypt`.
//!
//! A statement only reaches the scanner when one of the words appears in
//! it at all (an Aho-Corasick search), so the common statement costs one
//! pass of a fast search.

use crate::sql_scan::{string_content, tokens, Kind, Token};
use aho_corasick::AhoCorasick;
use std::ops::Range;
use std::sync::LazyLock;

const CRYPTO_FUNCTIONS: &[&str] = &[
    "crypt",
    "pgp_sym_encrypt",
    "pgp_sym_decrypt",
    "pgp_sym_encrypt_bytea",
    "pgp_sym_decrypt_bytea",
    "pgp_pub_decrypt",
    "pgp_pub_decrypt_bytea",
    "encrypt",
    "decrypt",
    "encrypt_iv",
    "decrypt_iv",
    "hmac",
    "aes_encrypt",
    "aes_decrypt",
];

/// Any of the words that start a rule (the function names all contain
/// `crypt` or `hmac`).
static TRIGGERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(["password", "identified", "crypt", "hmac"])
        .expect("fixed patterns build")
});

/// `sql` names one of the words that start a rule (a cheap search: the
/// scanner runs only when it does).
pub(super) fn mentions_trigger(sql: &[u8]) -> bool {
    TRIGGERS.is_match(sql)
}

/// `word` is one of the crypto functions whose arguments are secret.
pub(super) fn is_crypto_function(word: &[u8]) -> bool {
    CRYPTO_FUNCTIONS.iter().any(|f| word.eq_ignore_ascii_case(f.as_bytes()))
}

/// The spans of `sql` holding password literals (see the module
/// documentation): string literals' contents.
pub fn sql_spans(sql: &[u8]) -> Vec<Range<usize>> {
    if !TRIGGERS.is_match(sql) {
        return Vec::new();
    }
    let toks: Vec<Token> = tokens(sql).filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment)).collect();
    let text = |t: &Token| &sql[t.span.clone()];
    let word = |t: &Token, w: &str| t.kind == Kind::Word && text(t).eq_ignore_ascii_case(w.as_bytes());
    let punct = |t: &Token, p: &str| t.kind == Kind::Punct && text(t) == p.as_bytes();
    let mut out = Vec::new();
    let mut blank = |t: &Token| {
        let c = string_content(sql, t.span.clone());
        if !c.is_empty() {
            out.push(c);
        }
    };
    // The tokens after `i` up to the end of its statement.
    let statement = |i: usize| toks[i + 1..].iter().take_while(|t| !punct(t, ";"));
    for (i, t) in toks.iter().enumerate() {
        if word(t, "password") {
            let mut next = statement(i);
            match next.next() {
                Some(s) if s.kind == Kind::String => blank(s),
                Some(p) if punct(p, "=") || punct(p, "(") => {
                    if let Some(s) = next.next().filter(|s| s.kind == Kind::String) {
                        blank(s);
                    }
                }
                Some(f) if word(f, "for") => {
                    if let Some(s) = next.skip_while(|p| !punct(p, "=")).nth(1).filter(|s| s.kind == Kind::String) {
                        blank(s);
                    }
                }
                _ => {}
            }
        } else if word(t, "identified") {
            let mut after_by = statement(i).skip_while(|w| !(word(w, "by") || word(w, "as"))).skip(1);
            if let Some(s) = after_by.find(|s| s.kind == Kind::String) {
                blank(s);
            }
        } else if t.kind == Kind::Word && is_crypto_function(text(t)) {
            if !toks.get(i + 1).is_some_and(|p| punct(p, "(")) {
                continue;
            }
            let mut depth = 0usize;
            for a in &toks[i + 1..] {
                if punct(a, "(") {
                    depth += 1;
                } else if punct(a, ")") {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                } else if a.kind == Kind::String {
                    blank(a);
                }
            }
        }
    }
    out.sort_by_key(|r| r.start);
    out.dedup();
    out
}

/// Blanks the password literals of the SQL text `sql` (bytes) in place.
/// Returns true when something was blanked.
pub fn sql_in_place(sql: &mut [u8]) -> bool {
    let spans = sql_spans(sql);
    for s in &spans {
        sql[s.clone()].fill(super::STAR);
    }
    !spans.is_empty()
}

/// [`sql_in_place`] over a string (string literal contents are whole
/// characters, and `*` is one byte: it stays valid UTF-8, of the same
/// byte length).
pub fn sql_in_string(sql: &mut String) -> bool {
    if sql_spans(sql.as_bytes()).is_empty() {
        return false;
    }
    let mut bytes = std::mem::take(sql).into_bytes();
    sql_in_place(&mut bytes);
    *sql = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blanked(sql: &str) -> String {
        let mut s = sql.to_string();
        sql_in_string(&mut s);
        s
    }

    #[test]
    fn password_literals() {
        assert_eq!(blanked("create role tmpx password 'hunter2'"), "create role tmpx password '*******'");
        assert_eq!(blanked("ALTER USER u WITH ENCRYPTED PASSWORD E'a\\'b' VALID UNTIL '2030-01-01'"), "ALTER USER u WITH ENCRYPTED PASSWORD E'****' VALID UNTIL '2030-01-01'");
        assert_eq!(blanked("ALTER ROLE r PASSWORD $p$pw$p$; select 'x'"), "ALTER ROLE r PASSWORD $p$**$p$; select 'x'");
        assert_eq!(blanked("CREATE USER 'u'@'%' IDENTIFIED WITH caching_sha2_password BY 'pw'"), "CREATE USER 'u'@'%' IDENTIFIED WITH caching_sha2_password BY '**'");
        assert_eq!(blanked("SET PASSWORD FOR 'u'@'h' = 'pw'"), "SET PASSWORD FOR 'u'@'h' = '**'");
        assert_eq!(blanked("SET PASSWORD = PASSWORD('pw')"), "SET PASSWORD = PASSWORD('**')");
        assert_eq!(blanked("select * from users where password='pw' and name = 'bob'"), "select * from users where password='**' and name = 'bob'");
        assert_eq!(blanked("select pgp_sym_decrypt(c, 'k1', 'cipher-algo=aes256'), crypt('pw', gen_salt('bf')), 'x' from t"), "select pgp_sym_decrypt(c, '**', '******************'), crypt('**', gen_salt('**')), 'x' from t");
    }

    #[test]
    fn lookalikes_are_left() {
        for sql in ["select 'password' from t", "/* password 'x' */ select 1", "select \"password\" from t where a = 'x'", "alter role r password null", "select encrypted from t where x = 'a'"] {
            assert_eq!(blanked(sql), sql);
        }
    }
}
