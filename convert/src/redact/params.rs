//! Secret Bind parameters: which placeholders (`$1`, `$2`, ...) of a
//! prepared statement's SQL stand for secrets, read with the SQL scanner
//! ([`crate::sql_scan`]) as the literal rules are, and the statements of
//! each connection whose Binds carry some ([`BindSecrets`]).
//!
//! A placeholder is secret when, in the statement's tokens (spaces and
//! comments skipped), it is:
//!
//! - the operand of a secret field (a word or quoted identifier that is
//!   one of the [`Rules`]' field names, qualified or not) assigned or
//!   compared: `password = $1`, `SET token=$2`, `u.api_key <> $1`,
//!   `key IN ($1, $2)`, `secret LIKE $1`, `password = crypt($1, ...) ||
//!   $2` (every placeholder of the expression, up to a `,`, a `)` or a
//!   keyword such as `AND` or `WHERE` outside parentheses), or the other
//!   way round, `$1 = password`; or a secret field directly followed by
//!   one (`PASSWORD $1`);
//! - in the value of a secret column of a column list: `INSERT INTO t
//!   (name, password) VALUES ($1, $2), ($3, $4)`, `... (name, token)
//!   SELECT $1, $2`, `UPDATE t SET (name, token) = ($1, $2)` (a value that
//!   is an expression: every placeholder in it);
//! - among the arguments of the crypto functions the literal rules know
//!   (`crypt($1, ...)`, `pgp_sym_encrypt(data, $2)`, ...).
//!
//! Not found (documented in docs/recording.md): placeholders whose secret
//! column is not named beside them (`jsonb_build_object('password', $1)`,
//! `SET data = $1` whose JSON holds a password), a statement
//! prepared with SQL `PREPARE` or before the recording began, and SQL cut
//! by the recording cap where the placeholder falls after the cut.

use super::Rules;
use crate::sql_scan::{tokens, Kind, Token};
use std::collections::HashMap;
use std::sync::Arc;

/// Words that end an operand's expression.
const OPERAND_ENDS: &[&str] = &[
    "and", "or", "where", "from", "returning", "then", "else", "when", "end", "group", "order", "limit", "offset", "on", "using",
    "union", "except", "intersect", "having", "for", "is", "not", "between",
];

/// The 0-based indices of the parameters of `sql` that hold secrets (see
/// the module documentation), sorted. Cheap when `sql` has no `$` or
/// names no secret field nor crypto function: nothing is scanned then.
pub fn secret_params(rules: &Rules, sql: &[u8]) -> Vec<usize> {
    if !rules.enabled() || memchr::memchr(b'$', sql).is_none() || !(rules.mentions_field(sql) || super::sql::mentions_trigger(sql)) {
        return Vec::new();
    }
    let toks: Vec<Token> = tokens(sql).filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment)).collect();
    let text = |t: &Token| &sql[t.span.clone()];
    let punct = |i: usize, p: &str| toks.get(i).is_some_and(|t| t.kind == Kind::Punct && text(t) == p.as_bytes());
    let word = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.kind == Kind::Word && text(t).eq_ignore_ascii_case(w.as_bytes()));
    let is_field = |i: usize| {
        toks.get(i).is_some_and(|t| match t.kind {
            Kind::Word => rules.is_secret_field(text(t)),
            Kind::QuotedIdent => rules.is_secret_field(text(t).get(1..text(t).len().saturating_sub(1)).unwrap_or_default()),
            _ => false,
        })
    };
    let is_op = |i: usize| {
        toks.get(i).is_some_and(|t| {
            (t.kind == Kind::Punct && matches!(text(t), b"=" | b"<>" | b"!=")) || ["like", "ilike", "in"].iter().any(|w| word(i, w))
        })
    };
    // The placeholders of the expression starting at token `i`: up to a
    // `,`, `;` or unmatched `)` outside parentheses, or a keyword that ends
    // an operand (`AND`, `WHERE`, ...).
    let mut out = Vec::new();
    let operand = |i: usize, out: &mut Vec<usize>| {
        let mut depth = 0usize;
        let mut end = i;
        while let Some(t) = toks.get(end) {
            let b = text(t);
            if t.kind == Kind::Punct {
                match b {
                    b"(" => depth += 1,
                    b")" if depth == 0 => break,
                    b")" => depth -= 1,
                    b"," | b";" if depth == 0 => break,
                    _ => {}
                }
            } else if depth == 0 && t.kind == Kind::Word && OPERAND_ENDS.iter().any(|w| b.eq_ignore_ascii_case(w.as_bytes())) {
                break;
            }
            end += 1;
        }
        placeholders(sql, &toks[i.min(end)..end], out);
    };
    for i in 0..toks.len() {
        if is_field(i) {
            if is_op(i + 1) {
                operand(i + 2, &mut out);
            } else if toks.get(i + 1).is_some_and(|t| t.kind == Kind::Placeholder) {
                operand(i + 1, &mut out);
            }
        } else if toks[i].kind == Kind::Placeholder && is_op(i + 1) && is_field(i + 2) && !punct(i + 3, "(") {
            placeholders(sql, &toks[i..=i], &mut out);
        } else if punct(i, "(") {
            column_list(rules, sql, &toks, i, &mut out);
        } else if toks[i].kind == Kind::Word && punct(i + 1, "(") && super::sql::is_crypto_function(text(&toks[i])) {
            placeholders(sql, &toks[i + 1..closing(&toks, sql, i + 1)], &mut out);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The index of the `)` closing the `(` at `open` (or the last token, for
/// SQL cut short).
fn closing(toks: &[Token], sql: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t.kind != Kind::Punct {
            continue;
        }
        match &sql[t.span.clone()] {
            b"(" => depth += 1,
            b")" => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    toks.len().saturating_sub(1).max(open)
}

/// Adds the parameter indices of the `$N` placeholders among `toks`.
fn placeholders(sql: &[u8], toks: &[Token], out: &mut Vec<usize>) {
    for t in toks.iter().filter(|t| t.kind == Kind::Placeholder) {
        let digits = sql[t.span.clone()].strip_prefix(b"$").unwrap_or_default();
        let n = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<usize>().ok());
        if let Some(n) = n.filter(|&n| n >= 1) {
            out.push(n - 1);
        }
    }
}

/// A column list at `open` (`(a, b, "c")`, names only) followed by
/// `VALUES (...), (...)`, `= (...)` or `SELECT ...`: the placeholders of
/// the values in the positions of secret columns.
fn column_list(rules: &Rules, sql: &[u8], toks: &[Token], open: usize, out: &mut Vec<usize>) {
    let text = |t: &Token| &sql[t.span.clone()];
    let is = |i: usize, p: &[u8]| toks.get(i).is_some_and(|t| t.kind == Kind::Punct && text(t) == p);
    let word = |i: usize, w: &[u8]| toks.get(i).is_some_and(|t| t.kind == Kind::Word && text(t).eq_ignore_ascii_case(w));
    // The columns: names, dots (qualified), commas; a secret one is
    // secret by its last name.
    let mut secret = Vec::new();
    let mut last = false;
    let mut k = open + 1;
    loop {
        let Some(t) = toks.get(k) else { return };
        match t.kind {
            Kind::Word => last = rules.is_secret_field(text(t)),
            Kind::QuotedIdent => last = rules.is_secret_field(text(t).get(1..text(t).len().saturating_sub(1)).unwrap_or_default()),
            Kind::Punct if text(t) == b"." => {}
            Kind::Punct if text(t) == b"," => secret.push(std::mem::take(&mut last)),
            Kind::Punct if text(t) == b")" => {
                secret.push(last);
                break;
            }
            _ => return,
        }
        k += 1;
    }
    if !secret.contains(&true) {
        return;
    }
    let after = k + 1;
    // Items from `from` separated by top-level commas, to `end` (exclusive).
    let items = |from: usize, end: usize, out: &mut Vec<usize>| {
        let (mut item, mut start, mut depth) = (0usize, from, 0usize);
        for j in from..=end {
            let at_end = j == end;
            let t = toks.get(j);
            if !at_end {
                match t.map(text) {
                    Some(b"(") => depth += 1,
                    Some(b")") => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            if at_end || (depth == 0 && is(j, b",")) {
                if secret.get(item).copied().unwrap_or(false) {
                    placeholders(sql, &toks[start..j.min(toks.len())], out);
                }
                item += 1;
                start = j + 1;
            }
        }
    };
    if word(after, b"values") || is(after, b"=") {
        let mut o = after + 1;
        while is(o, b"(") {
            let c = closing(toks, sql, o);
            items(o + 1, c, out);
            if !(is(c + 1, b",") && is(c + 2, b"(")) || is(after, b"=") {
                break;
            }
            o = c + 2;
        }
    } else if word(after, b"select") {
        let stop = [&b"from"[..], b"where", b"on", b"returning", b"union", b"group", b"order", b"limit"];
        let mut end = after + 1;
        let mut depth = 0usize;
        while let Some(t) = toks.get(end) {
            match text(t) {
                b"(" => depth += 1,
                b")" if depth == 0 => break,
                b")" => depth -= 1,
                b";" if depth == 0 => break,
                w if depth == 0 && t.kind == Kind::Word && stop.iter().any(|s| w.eq_ignore_ascii_case(s)) => break,
                _ => {}
            }
            end += 1;
        }
        items(after + 1, end, out);
    }
}

/// The statements of each connection whose Bind parameters hold secrets,
/// by name, learnt from their Parse messages: the recorder and `oltrace
/// redact` alike feed it every frontend Parse and Close (statement) of a
/// connection and ask it of each Bind. Only statements with secret
/// parameters are kept (most have none), so it stays small; a Parse under
/// a name already kept replaces it, a Close or the connection's end drops
/// it.
#[derive(Debug, Default)]
pub struct BindSecrets {
    /// Connection key → its statements.
    conns: HashMap<(u64, u64), Statements>,
}

/// Statement name → secret parameter indices.
type Statements = HashMap<Box<[u8]>, Arc<[usize]>>;

impl BindSecrets {
    /// Statement `name` of connection `conn` was prepared as `sql`.
    pub fn parse(&mut self, rules: &Rules, conn: (u64, u64), name: &[u8], sql: &[u8]) {
        let secret = secret_params(rules, sql);
        if secret.is_empty() {
            if let Some(stmts) = self.conns.get_mut(&conn) {
                stmts.remove(name);
            }
        } else {
            self.conns.entry(conn).or_default().insert(name.into(), secret.into());
        }
    }

    /// Statement `name` of `conn` was closed.
    pub fn close(&mut self, conn: (u64, u64), name: &[u8]) {
        if let Some(stmts) = self.conns.get_mut(&conn) {
            stmts.remove(name);
        }
    }

    /// `conn` ended.
    pub fn conn_closed(&mut self, conn: (u64, u64)) {
        self.conns.remove(&conn);
    }

    /// The secret parameters of a Bind to statement `name` of `conn`.
    pub fn of(&self, conn: (u64, u64), name: &[u8]) -> Option<Arc<[usize]>> {
        self.conns.get(&conn)?.get(name).cloned()
    }
}

/// Blanks the parameters at `secret` of a Bind message: its values in the
/// bytes `raw` (in place, `*`, the length fields kept; a value cut by the
/// recording cap as far as it goes; binary values alike) and in the decoded
/// `params` (as many `*` as the text had). Returns true when something was
/// blanked.
pub fn bind_message(raw: &mut [u8], params: &mut [Option<String>], secret: &[usize]) -> bool {
    let spans = wire::pg::bind_param_spans(raw);
    let mut any = false;
    for &i in secret {
        if let Some(Some(span)) = spans.get(i) {
            raw[span.clone()].fill(super::STAR);
            any |= !span.is_empty();
        }
        if let Some(Some(p)) = params.get_mut(i) {
            if !p.is_empty() {
                *p = "*".repeat(p.len());
                any = true;
            }
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(sql: &str) -> Vec<usize> {
        secret_params(&Rules::default(), sql.as_bytes())
    }

    #[test]
    fn placeholders_of_secret_fields() {
        assert_eq!(secret("UPDATE users SET password = $1 WHERE id = $2"), [0]);
        assert_eq!(secret("update t set name=$1, token=$2::text where u.api_key <> $3"), [1, 2]);
        assert_eq!(secret("select * from t where $2 = \"Password\" and id = $1"), [1]);
        assert_eq!(secret("select 1 from t where key in ($1, $2) and a = $3"), [0, 1]);
        assert_eq!(secret("update t set password = crypt($1, gen_salt('bf')), n = $2"), [0]);
        assert_eq!(secret("update t set password = a || lower($1) || $2 where id = $3 and token = $4 limit $5"), [0, 1, 3]);
        assert_eq!(secret("select pgp_sym_decrypt(c, $1) from t where id = $2"), [0]);
        assert_eq!(secret("INSERT INTO t (user, password) VALUES ($1, $2), ($3, lower($4))"), [1, 3]);
        assert_eq!(secret("insert into t (id, t.token, n) select $1, $2, $3 from x where y = $4"), [1]);
        assert_eq!(secret("update t set (n, secret) = ($1, $2) where id = $3"), [1]);
    }

    #[test]
    fn other_placeholders_stay() {
        for sql in [
            "select * from users where name = $1",
            "select password from users where id = $1",
            "insert into t (a, b) values ($1, $2)",
            "select $1 -- password = $1",
            "select 'password = ' || $1",
            "create table t (key text primary key, v text)",
        ] {
            assert_eq!(secret(sql), Vec::<usize>::new(), "{sql}");
        }
        let kept = Rules::new(&[], &[], &["key".into()]).unwrap();
        assert!(secret_params(&kept, b"select v from kv where key = $1").is_empty());
    }

    #[test]
    fn bind_bytes_and_summary() {
        let mut buf = bytes::BytesMut::new();
        wire::pg::encode::bind(&mut buf, b"", b"s1", &[0, 1], &[Some(b"bob"), Some(b"\x00\x01pw"), None], &[]);
        let mut raw = buf.to_vec();
        let len = raw.len();
        let mut params = vec![Some("bob".to_string()), Some("\\x00017077".to_string()), None];
        assert!(bind_message(&mut raw, &mut params, &[1, 2]));
        assert_eq!(raw.len(), len);
        assert!(raw.windows(4).any(|w| w == b"****") && raw.windows(3).any(|w| w == b"bob"));
        assert_eq!(params, [Some("bob".into()), Some("*".repeat(10)), None]);
        // Cut by the cap inside the secret value: blanked as far as it goes.
        let mut cut = buf[..len - 8].to_vec();
        assert!(bind_message(&mut cut, &mut [], &[1]));
        assert!(cut.ends_with(b"**"));
        assert_eq!(wire::pg::bind_param_spans(b"Q\x00\x00\x00\x05"), vec![]);
    }

    #[test]
    fn statements_by_connection() {
        let rules = Rules::default();
        let mut s = BindSecrets::default();
        s.parse(&rules, (0, 1), b"", b"update u set password = $1");
        assert_eq!(s.of((0, 1), b"").as_deref(), Some(&[0][..]));
        assert!(s.of((0, 2), b"").is_none());
        s.parse(&rules, (0, 1), b"", b"select $1");
        assert!(s.of((0, 1), b"").is_none());
        s.parse(&rules, (0, 1), b"a", b"select 1 where token = $1");
        s.close((0, 1), b"a");
        assert!(s.of((0, 1), b"a").is_none());
    }
}
