//! The SQL scanner: one pass over a statement's bytes, cutting it into
//! tokens (words, literals, quoted identifiers, punctuation, whitespace,
//! comments) with their byte spans. No SQL parser: statements in traces
//! may be in any dialect, cut short, or wrong, so the rules are lexical,
//! and any bytes scan without a panic.
//!
//! Two users: [`crate::fingerprint`] turns the tokens into a query
//! fingerprint (literals to `?`), and [`crate::redact`] finds the string
//! literals that hold passwords (`PASSWORD '...'`, `IDENTIFIED BY '...'`,
//! `crypt('...')`) to blank them in place. Both see the same tokens, so a
//! literal the fingerprint hides is exactly one redaction can blank.
//!
//! Tokens:
//! - strings: `'it''s'`, `E'a\'b'` (escapes), `B'01'`, `X'ff'`, `N'x'`,
//!   `U&'x'`, dollar-quoted `$tag$...$tag$` (the prefix is in the span);
//! - numbers: `42`, `1.5e3`, `.5` (not after a word: `t.5` is not one),
//!   `0x1f`, `1_000`;
//! - placeholders: `$1`, `?`;
//! - `"quoted identifiers"` (`""` inside);
//! - words: letters, digits, `_`, `$` and any non-ASCII byte, not starting
//!   with a digit or `$`;
//! - comments: `-- to the end of the line`, `/* nested /* ok */ */`;
//! - punctuation: `::`, runs of operator characters, any other one
//!   character.

use std::ops::Range;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Space,
    Comment,
    /// A string literal, its prefix and quotes included.
    String,
    Number,
    /// `$1`, `?`.
    Placeholder,
    /// `"..."`, quotes included.
    QuotedIdent,
    Word,
    Punct,
}

/// One token: its kind and where it is in the scanned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub span: Range<usize>,
}

/// The tokens of `sql`, in order; their spans cover it all.
pub fn tokens(sql: &[u8]) -> Tokens<'_> {
    Tokens { b: sql, i: 0, after_word: false }
}

/// The iterator [`tokens`] returns.
pub struct Tokens<'a> {
    b: &'a [u8],
    i: usize,
    /// The last token other than space or comment was a word or quoted
    /// identifier (then `.5` is `.` and `5`, as in `t.5`).
    after_word: bool,
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let b = self.b;
        let start = self.i;
        let c = *b.get(start)?;
        let mut i = start;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                    i += 1;
                }
                Kind::Space
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                Kind::Comment
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(b, i);
                Kind::Comment
            }
            b'\'' => {
                i = skip_string(b, i + 1, false);
                Kind::String
            }
            b'"' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                i = i.min(b.len());
                Kind::QuotedIdent
            }
            b'$' => {
                if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    Kind::Placeholder
                } else if let Some(end) = dollar_quote_end(b, i) {
                    i = end;
                    Kind::String
                } else {
                    i += 1;
                    Kind::Punct
                }
            }
            b'?' => {
                i += 1;
                Kind::Placeholder
            }
            b'0'..=b'9' => {
                i = skip_number(b, i);
                Kind::Number
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) && !self.after_word => {
                i = skip_number(b, i);
                Kind::Number
            }
            _ if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                while i < b.len() && (b[i] == b'_' || b[i] == b'$' || b[i].is_ascii_alphanumeric() || b[i] >= 0x80) {
                    i += 1;
                }
                // String prefixes: E'..' (escapes), B'..', X'..', N'..', U&'..'.
                let one = i - start == 1;
                if b.get(i) == Some(&b'\'') && one && matches!(c | 0x20, b'e' | b'b' | b'x' | b'n') {
                    i = skip_string(b, i + 1, c | 0x20 == b'e');
                    Kind::String
                } else if b.get(i) == Some(&b'&') && b.get(i + 1) == Some(&b'\'') && one && c | 0x20 == b'u' {
                    i = skip_string(b, i + 2, false);
                    Kind::String
                } else {
                    Kind::Word
                }
            }
            _ => {
                // Operators and punctuation: `::` and runs of operator
                // characters stay one token; brackets are single.
                if c == b':' && b.get(i + 1) == Some(&b':') {
                    i += 2;
                } else if is_operator(c) {
                    while i < b.len() && is_operator(b[i]) && !(b[i] == b'-' && b.get(i + 1) == Some(&b'-')) && !(b[i] == b'/' && b.get(i + 1) == Some(&b'*')) {
                        i += 1;
                    }
                } else {
                    i += 1;
                    // Never split a UTF-8 sequence.
                    while i < b.len() && (b[i] & 0xc0) == 0x80 {
                        i += 1;
                    }
                }
                Kind::Punct
            }
        };
        // Every branch moves on; the guard keeps a scanner bug from looping.
        let i = i.max(start + 1).min(b.len());
        self.i = i;
        if !matches!(kind, Kind::Space | Kind::Comment) {
            self.after_word = matches!(kind, Kind::Word | Kind::QuotedIdent);
        }
        Some(Token { kind, span: start..i })
    }
}

/// The span of a string literal's content in `sql`, given its token span:
/// without the prefix, the quotes or the dollar tags (to the end of the
/// token when it is cut short before its closing quote).
pub fn string_content(sql: &[u8], span: Range<usize>) -> Range<usize> {
    let s = &sql[span.clone()];
    if s.first() == Some(&b'$') {
        let tag = s[1..].iter().position(|&b| b == b'$').map_or(s.len(), |p| p + 2);
        let end = if s.len() >= 2 * tag && s.ends_with(&s[..tag]) { s.len() - tag } else { s.len() };
        return span.start + tag.min(end)..span.start + end;
    }
    let open = s.iter().position(|&b| b == b'\'').map_or(s.len(), |p| p + 1);
    let end = if s.len() > open && s.ends_with(b"'") { s.len() - 1 } else { s.len() };
    span.start + open.min(end)..span.start + end
}

pub(crate) fn is_operator(c: u8) -> bool {
    matches!(c, b'+' | b'-' | b'*' | b'/' | b'<' | b'>' | b'=' | b'~' | b'!' | b'@' | b'#' | b'%' | b'^' | b'&' | b'|' | b'`')
}

/// After the opening quote at `i`: the index past the closing quote.
/// `''` is a quote inside; with `escapes`, so is `\'`.
fn skip_string(b: &[u8], mut i: usize, escapes: bool) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// At `/*`: the index past the matching `*/` (comments nest).
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// At `$`: if a dollar quote `$tag$` opens here, the index past its close.
fn dollar_quote_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() && (b[j] == b'_' || b[j].is_ascii_alphanumeric() || b[j] >= 0x80) {
        j += 1;
    }
    if b.get(j) != Some(&b'$') {
        return None;
    }
    let tag = &b[i..=j];
    let body = j + 1;
    let end = b[body..].windows(tag.len()).position(|w| w == tag).map(|p| body + p + tag.len());
    Some(end.unwrap_or(b.len()))
}

/// At a digit (or `.digit`): the index past the number.
fn skip_number(b: &[u8], mut i: usize) -> usize {
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if b.get(i) == Some(&b'.') && b.get(i + 1) != Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kinds(s: &str) -> Vec<(Kind, &str)> {
        tokens(s.as_bytes()).map(|t| (t.kind, &s[t.span])).collect()
    }

    #[test]
    fn tokens_of_a_statement() {
        use Kind::*;
        assert_eq!(
            kinds("ALTER role \"X\" password E'a\\'b'; -- c\nselect $1::int, t.5"),
            vec![
                (Word, "ALTER"), (Space, " "), (Word, "role"), (Space, " "), (QuotedIdent, "\"X\""), (Space, " "),
                (Word, "password"), (Space, " "), (String, "E'a\\'b'"), (Punct, ";"), (Space, " "), (Comment, "-- c"),
                (Space, "\n"), (Word, "select"), (Space, " "), (Placeholder, "$1"), (Punct, "::"), (Word, "int"),
                (Punct, ","), (Space, " "), (Word, "t"), (Punct, "."), (Number, "5"),
            ]
        );
    }

    #[test]
    fn string_contents() {
        for (sql, content) in [("'abc'", "abc"), ("E'a''b'", "a''b"), ("$x$pw$x$", "pw"), ("$$$$", ""), ("'cut", "cut"), ("$t$cut", "cut"), ("U&'u'", "u")] {
            let t = tokens(sql.as_bytes()).next().unwrap();
            assert_eq!(t.kind, Kind::String, "{sql}");
            assert_eq!(&sql[string_content(sql.as_bytes(), t.span)], content, "{sql}");
        }
    }

    proptest! {
        #[test]
        fn spans_cover_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut at = 0;
            for t in tokens(&b) {
                prop_assert_eq!(t.span.start, at);
                prop_assert!(t.span.end > t.span.start);
                if t.kind == Kind::String {
                    let c = string_content(&b, t.span.clone());
                    prop_assert!(c.start >= t.span.start && c.end <= t.span.end && c.start <= c.end);
                }
                at = t.span.end;
            }
            prop_assert_eq!(at, b.len());
        }
    }
}
