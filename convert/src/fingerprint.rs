//! SQL query fingerprints: the same statement with different literals gives
//! the same text, so that the replay report (and the analyzer) can group
//! `select * from t where id = 1` and `SELECT * FROM t WHERE id=2` as one
//! query, `select * from t where id = ?`.
//!
//! One pass over the bytes, no SQL parser (statements in traces may be in
//! any dialect, cut, or wrong), so the rules are lexical:
//!
//! - literals become `?`: numbers (`42`, `1.5e3`, `0x1f`, and `-1` where
//!   the `-` is a sign: after an operator, `(`, `,` or at the start, so
//!   `x + -1` and `x + 1` are one class, as in `pg_stat_statements`, while
//!   `x - 1` keeps its operator), strings (`'it''s'`, `E'a\'b'`, `B'01'`,
//!   `X'ff'`, dollar-quoted `$tag$...$tag$`), and placeholders (`$1`, `?`);
//! - comments are dropped: `-- to the end of the line` and `/* ... */`
//!   (nested, as PostgreSQL allows; sqlcommenter tags are such comments);
//! - unquoted text is lower-cased, `"quoted identifiers"` kept as written;
//! - whitespace is collapsed: tokens are joined by one space, except none
//!   before `,` `)` `;` and none around `.` and `::`, and none after `(`;
//!   a `(` gets a space before it only if the statement had one (so
//!   `count(*)` stays `count(*)` and `in (1)` stays `in (?)`);
//! - lists of literals are folded: `in (?, ?, ?)` becomes `in (?)`, and a
//!   `values` list of identical rows `values (?, ?), (?, ?)` becomes
//!   `values (?, ?)`;
//! - a trailing `;` is dropped.
//!
//! Identifiers and keywords are kept, so different tables or columns give
//! different fingerprints. The tokens come from [`crate::sql_scan`], the
//! scanner redaction uses too.

/// The fingerprint of `sql` (see the module documentation).
pub fn fingerprint(sql: &str) -> String {
    use crate::sql_scan::{is_operator, tokens, Kind};
    let mut out = Out { s: String::with_capacity(sql.len()), last: Last::None, space: false };
    let mut toks = tokens(sql.as_bytes()).peekable();
    while let Some(t) = toks.next() {
        // Token spans end on character boundaries (the scanner never
        // splits a UTF-8 sequence), so slicing `sql` cannot fail.
        let text = &sql[t.span.clone()];
        match t.kind {
            Kind::Space | Kind::Comment => out.space = true,
            Kind::String | Kind::Number | Kind::Placeholder => out.literal(),
            Kind::QuotedIdent => out.word(text, false),
            Kind::Word => out.word(text, true),
            Kind::Punct => {
                // `=-1`: PostgreSQL's lexer ends an operator before a
                // trailing `+`/`-` (unless it holds one of ~!@#%^&|`),
                // which is then the number's sign.
                let run = text.as_bytes();
                let number_next = toks.peek().is_some_and(|n| n.kind == Kind::Number && n.span.start == t.span.end);
                if number_next && is_operator(run[0]) && matches!(run[run.len() - 1], b'-' | b'+') {
                    if run.len() == 1 && out.takes_sign() {
                        toks.next();
                        out.literal();
                        continue;
                    }
                    if run.len() > 1 && !run.iter().any(|c| b"~!@#%^&|`".contains(c)) {
                        out.punct(&text[..text.len() - 1]);
                        toks.next();
                        out.literal();
                        continue;
                    }
                }
                out.punct(text);
            }
        }
    }
    let mut s = out.s;
    while s.ends_with(';') {
        s.pop();
        while s.ends_with(' ') {
            s.pop();
        }
    }
    fold_lists(&s)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    None,
    Word,
    Literal,
    /// `(`, `.`, `::`: nothing follows with a space.
    Open,
    /// `,` and operators: a `-` after them is a sign.
    Operator,
    Other,
}

struct Out {
    s: String,
    last: Last,
    /// Whitespace (or a comment) was seen since the last token.
    space: bool,
}

impl Out {
    fn sep(&mut self) {
        if !matches!(self.last, Last::None | Last::Open) {
            self.s.push(' ');
        }
        self.space = false;
    }

    fn word(&mut self, w: &str, lower: bool) {
        self.sep();
        let at = self.s.len();
        self.s.push_str(w);
        if lower {
            self.s[at..].make_ascii_lowercase();
        }
        self.last = Last::Word;
    }

    /// Whether a `-` or `+` here is a sign rather than an operator: at the
    /// start, after `(`, `[`, `,` or an operator.
    fn takes_sign(&self) -> bool {
        match self.last {
            Last::None | Last::Operator => true,
            Last::Open => self.s.ends_with('(') || self.s.ends_with('['),
            _ => false,
        }
    }

    fn literal(&mut self) {
        self.sep();
        self.s.push('?');
        self.last = Last::Literal;
    }

    fn punct(&mut self, p: &str) {
        match p {
            "," => {
                self.s.push_str(p);
                self.last = Last::Operator;
            }
            ")" | ";" | "]" => {
                self.s.push_str(p);
                self.last = Last::Other;
            }
            "." | "::" => {
                self.s.push_str(p);
                self.last = Last::Open;
            }
            "(" | "[" => {
                if self.space && !matches!(self.last, Last::None | Last::Open) {
                    self.s.push(' ');
                }
                self.s.push_str(p);
                self.last = Last::Open;
            }
            _ => {
                self.sep();
                self.s.push_str(p);
                self.last = if p.bytes().all(crate::sql_scan::is_operator) { Last::Operator } else { Last::Other };
            }
        }
        self.space = false;
    }
}

/// `in (?, ?, ?)` to `in (?)`; `values (..), (..)` of identical rows to one.
fn fold_lists(s: &str) -> String {
    if !s.contains("?,") {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(after) = strip_keyword(rest, &out, "in") {
            let after_ws = after.trim_start_matches(' ');
            if let Some(group) = paren_group(after_ws) {
                if group.len() > 3 && group[1..group.len() - 1].split(", ").all(|x| x == "?") {
                    out.push_str(&rest[..rest.len() - after.len()]);
                    out.push_str(&after[..after.len() - after_ws.len()]);
                    out.push_str("(?)");
                    rest = &after_ws[group.len()..];
                    continue;
                }
            }
        }
        if let Some(after) = strip_keyword(rest, &out, "values") {
            let after_ws = after.trim_start_matches(' ');
            if let Some(group) = paren_group(after_ws) {
                out.push_str(&rest[..rest.len() - after_ws.len()]);
                out.push_str(group);
                let mut tail = &after_ws[group.len()..];
                while let Some(next) = tail.strip_prefix(", ").and_then(|t| t.strip_prefix(group)) {
                    tail = next;
                }
                rest = tail;
                continue;
            }
        }
        // On to the next place either keyword could start (`i`, `v`),
        // copying what is before it as it is.
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let skip = rest[first..].find(['i', 'v']).map_or(rest.len(), |i| i + first);
        out.push_str(&rest[..skip]);
        rest = &rest[skip..];
    }
    out
}

/// If `rest` starts with the word `kw` (and `out` ends at a word boundary):
/// what follows it.
fn strip_keyword<'a>(rest: &'a str, out: &str, kw: &str) -> Option<&'a str> {
    let after = rest.strip_prefix(kw)?;
    let boundary_before = out.chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '"' || c == '$'));
    let boundary_after = after.starts_with([' ', '(']);
    (boundary_before && boundary_after).then_some(after)
}

/// The balanced `( ... )` group `s` starts with.
fn paren_group(s: &str) -> Option<&str> {
    if !s.starts_with('(') {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[..=i]);
                }
            }
            // Quoted identifiers may hold parentheses; stay out of them.
            '"' => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::fingerprint as fp;
    use proptest::prelude::*;

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(fp("SELECT * FROM t WHERE id = 42"), "select * from t where id = ?");
        assert_eq!(fp("select * from t where id=7"), "select * from t where id = ?");
        assert_eq!(fp("select 1.5e3, .5, 0x1F, 'it''s', E'a\\'b', $1, $22"), "select ?, ?, ?, ?, ?, ?, ?");
        assert_eq!(fp("select $$a 'quoted' $$, $fn$x$fn$"), "select ?, ?");
        assert_eq!(fp("select x'ff', b'01', n'x', U&'d\\0061t'"), "select ?, ?, ?, ?");
        assert_eq!(fp("select -1"), "select - ?");
        assert_eq!(fp("select t1.a from t1"), "select t1.a from t1");
        assert_eq!(fp("select a::int from t"), "select a::int from t");
        assert_eq!(fp("select $1::text"), "select ?::text");
    }

    #[test]
    fn comments_and_whitespace_go() {
        assert_eq!(
            fp("/* controller='users',traceparent='00-abc' */ SELECT  name\n\t FROM users -- trailing\n WHERE id = $1;"),
            "select name from users where id = ?"
        );
        assert_eq!(fp("select /* a /* nested */ comment */ 1"), "select ?");
        assert_eq!(fp("select count(*) from t"), "select count(*) from t");
        assert_eq!(fp("SELECT COUNT( * ) FROM t ;"), "select count(*) from t");
    }

    #[test]
    fn quoted_identifiers_keep_their_case() {
        assert_eq!(fp(r#"select "MyCol" from "My""Table""#), r#"select "MyCol" from "My""Table""#);
    }

    #[test]
    fn lists_fold() {
        assert_eq!(fp("select * from t where id in (1, 2, 3)"), "select * from t where id in (?)");
        assert_eq!(fp("select * from t where id IN (1)"), fp("select * from t where id in (4,5,6,7)"));
        assert_eq!(fp("insert into t (a, b) values (1, 'x'), (2, 'y'), (3, 'z')"), "insert into t (a, b) values (?, ?)");
        assert_eq!(fp("insert into t values(1,2)"), "insert into t values(?, ?)");
        // Not a literal list: kept.
        assert_eq!(fp("select * from t where (a, b) in ((1, 2))"), "select * from t where (a, b) in ((?, ?))");
        assert_eq!(fp("select coalesce(1, 2)"), "select coalesce(?, ?)");
        assert_eq!(fp("select é, ü from tívó where x in (1, 2) or y IN(3,4)"), "select é, ü from tívó where x in (?) or y in(?)");
    }

    #[test]
    fn pgbench_statements() {
        assert_eq!(
            fp("UPDATE pgbench_accounts SET abalance = abalance + 2153 WHERE aid = 28814;"),
            "update pgbench_accounts set abalance = abalance + ? where aid = ?"
        );
        assert_eq!(
            fp("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 9, -4, CURRENT_TIMESTAMP);"),
            "insert into pgbench_history (tid, bid, aid, delta, mtime) values (?, ?, ?, ?, current_timestamp)"
        );
        // pgbench's negative deltas are the same class as its positive ones.
        assert_eq!(
            fp("UPDATE pgbench_tellers SET tbalance = tbalance + -4 WHERE tid = 8;"),
            fp("UPDATE pgbench_tellers SET tbalance = tbalance + 4 WHERE tid = 8;")
        );
    }

    #[test]
    fn signs_and_minus() {
        assert_eq!(fp("select -1"), "select - ?");
        assert_eq!(fp("select a - 1, -2, (-3.5), x=-4, y<=-.5"), "select a - ?, ?, (?), x = ?, y <= ?");
        assert_eq!(fp("select f(-1) - 2"), "select f(?) - ?");
        assert_eq!(fp("select a @- 1"), "select a @- ?");
    }

    #[test]
    fn cut_statements_do_not_panic() {
        for s in ["select 'unterminated", "select /* open", "select $a$ open", "select \"open", "select 1e", "x$", "é'", "$"] {
            let _ = fp(s);
        }
    }

    proptest! {
        #[test]
        fn any_text_fingerprints_without_panic(s in ".{0,200}") {
            let f = fp(&s);
            // Idempotent: a fingerprint is its own fingerprint.
            prop_assert_eq!(fp(&f), f.clone());
        }

        #[test]
        fn the_literal_does_not_matter(n in any::<i64>(), t in "[a-zA-Z0-9 ']{0,20}", ws in "[ \t\n]{1,3}") {
            let a = format!("select *{ws}from t where id = {} and name = '{}'", n.unsigned_abs(), t.replace('\'', "''"));
            prop_assert_eq!(fp(&a), "select * from t where id = ? and name = ?");
        }
    }
}
