//! One downstream call, as the analyzer sees it: an [`Exchange`] on a
//! PostgreSQL, Redis or outbound HTTP connection, with its class key, its
//! exact identity, what it touched and whether it failed.

use crate::statement::Statements;
use crate::stats::SampledSet;
use convert::call_key::{call_key, key_template, path_of, redis_key};
use convert::classify::{is_write, strip_comments};
use format::{AttributionMethod, Exchange, ExchangeSummary, Protocol};
use serde::Serialize;
use std::sync::Arc;

/// The protocols of downstream calls, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallProtocol {
    Postgres,
    Redis,
    Http,
}

impl CallProtocol {
    pub const ALL: [CallProtocol; 3] = [CallProtocol::Postgres, CallProtocol::Redis, CallProtocol::Http];

    pub fn of(p: Protocol) -> Option<CallProtocol> {
        match p {
            Protocol::Postgres => Some(CallProtocol::Postgres),
            Protocol::Redis => Some(CallProtocol::Redis),
            Protocol::Http => Some(CallProtocol::Http),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CallProtocol::Postgres => "postgres",
            CallProtocol::Redis => "redis",
            CallProtocol::Http => "http",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A PostgreSQL transaction state change a call made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Txn {
    /// The call left a transaction open (ReadyForQuery `T` or `E`).
    Open,
    /// The call left no transaction open (`I`).
    Idle,
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub start: u64,
    /// Response's last byte (request's last byte when none came).
    pub end: u64,
    pub protocol: CallProtocol,
    pub conn: u64,
    /// The class ([`convert::call_key::call_key`]), shared by the calls of
    /// a class.
    pub key: Arc<str>,
    /// The call exactly: SQL without comments plus its parameters, the
    /// Redis command and arguments, the HTTP method and URL. Two calls with
    /// the same identity ask the same question. Only reads that touch an
    /// object have one (empty otherwise): its one user, the repeated-call
    /// pattern, looks at no other call, and building it for every call
    /// cost a tenth of the analysis.
    pub identity: String,
    pub rows: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// What failed: `SQLSTATE 23505`, `redis ERR`, `http 503`.
    pub error: Option<String>,
    pub method: Option<AttributionMethod>,
    pub write: bool,
    /// Tables (SQL), the key prefix (Redis) or the host (HTTP).
    pub objects: Vec<String>,
    /// Exact items touched, for locality, as [`SampledSet::hash`]es (the
    /// locality sets hold nothing else): Redis keys, `table[params]` rows
    /// named by parameters, HTTP `host/path`s.
    pub items: Vec<u64>,
    pub txn: Txn,
}

impl Call {
    pub fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// A call from exchange `e` (started at `ts`) on a connection speaking
    /// `protocol`; `params` are the PostgreSQL Bind parameters it sent;
    /// `statements` caches SQL statements' classes.
    pub fn new(ts: u64, e: &Exchange, protocol: CallProtocol, params: &[Option<String>], host: &str, statements: &mut Statements) -> Call {
        let end = e.response_last.unwrap_or(e.request_last).max(ts);
        let pg = matches!(e.summary, ExchangeSummary::Pg(_));
        let mut call = Call {
            start: ts,
            end,
            protocol,
            conn: e.conn,
            // PostgreSQL's key comes from the statement cache, below.
            key: if pg { statements.session.clone() } else { call_key(&e.summary).into() },
            identity: String::new(),
            rows: 0,
            bytes_out: e.request_bytes,
            bytes_in: e.response_bytes,
            error: None,
            method: e.attribution.as_ref().map(|a| a.method),
            write: !pg && is_write(&e.summary),
            objects: Vec::new(),
            items: Vec::new(),
            txn: Txn::Unknown,
        };
        match &e.summary {
            ExchangeSummary::Pg(p) => {
                let classes: Vec<_> = p.statements.iter().map(|s| statements.get(s)).collect();
                call.key = match classes.as_slice() {
                    [] => statements.session.clone(),
                    [one] => one.key.clone(),
                    all => all.iter().map(|c| &*c.key).collect::<Vec<_>>().join("; ").into(),
                };
                call.write = classes.iter().any(|c| c.write);
                for t in classes.iter().flat_map(|c| c.tables.iter()) {
                    if !call.objects.contains(t) {
                        call.objects.push(t.clone());
                    }
                }
                let params: Vec<&str> = params.iter().map(|p| p.as_deref().unwrap_or("NULL")).collect();
                if !call.write && !call.objects.is_empty() {
                    let text: Vec<std::borrow::Cow<str>> = p.statements.iter().map(|s| trim_cow(strip_comments(s))).collect();
                    call.identity = format!("{} [{}]", text.join("; "), params.join(", "));
                }
                call.rows = p.rows;
                call.error = p.error.as_ref().map(|e| format!("SQLSTATE {}", e.code));
                call.txn = match p.txn.as_deref() {
                    Some("T" | "E") => Txn::Open,
                    Some("I") => Txn::Idle,
                    _ => Txn::Unknown,
                };
                call.items = call
                    .objects
                    .iter()
                    .map(|t| {
                        let row = params.iter().enumerate().flat_map(|(i, p)| [if i == 0 { "" } else { "," }, *p]);
                        SampledSet::hash_joined([t.as_str(), "["].into_iter().chain(row).chain(["]"]))
                    })
                    .collect();
            }
            ExchangeSummary::Redis(r) => {
                let args: Vec<String> = r.args.iter().map(|a| String::from_utf8_lossy(&a.0).into_owned()).collect();
                call.identity = format!("{} {}", r.command.to_ascii_uppercase(), args.join(" "));
                if let Some(reply) = r.reply.as_ref().filter(|r| r.is_error()) {
                    let text = reply.text.as_ref().map(|t| String::from_utf8_lossy(&t.0).into_owned()).unwrap_or_default();
                    call.error = Some(format!("redis {}", text.split_whitespace().next().unwrap_or("error")));
                }
                if let Some(key) = redis_key(&r.command, &r.args) {
                    let key = String::from_utf8_lossy(key).into_owned();
                    call.objects.push(key_prefix(&key));
                    call.items.push(SampledSet::hash(&key));
                }
            }
            ExchangeSummary::Http(h) => {
                let host = h.host.clone().unwrap_or_else(|| host.to_owned());
                call.identity = format!("{} {}{}", h.method, host, h.target);
                if h.status.is_some_and(|s| s >= 500) {
                    call.error = Some(format!("http {}", h.status.unwrap_or(0)));
                }
                call.objects.push(host.clone());
                call.items.push(SampledSet::hash_joined([host.as_str(), path_of(&h.target)]));
            }
        }
        call
    }
}

/// The key prefix of a Redis key: its template up to the last separator
/// before a variable part (`demo:user:7:name` is `demo:user`).
pub fn key_prefix(key: &str) -> String {
    let t = key_template(key);
    match t.find('?') {
        Some(i) => t[..i].trim_end_matches([':', '/', '.', '|', '#']).to_owned(),
        None => t,
    }
}

/// Table names a statement names: the word after FROM, JOIN, INTO, UPDATE
/// and TABLE (lexical, as the fingerprint is; a subquery or function in
/// FROM is skipped).
pub fn tables(sql: &str) -> Vec<String> {
    let mut words = sql.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')').filter(|w| !w.is_empty());
    let mut out = Vec::new();
    let Some(mut prev) = words.next() else { return out };
    for word in words {
        let after_keyword = ["FROM", "JOIN", "INTO", "UPDATE", "TABLE"].iter().any(|kw| prev.eq_ignore_ascii_case(kw));
        prev = word;
        if !after_keyword {
            continue;
        }
        let name = word.trim_matches('"');
        let ok = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && !["select", "lateral", "only", "unnest"].iter().any(|kw| name.eq_ignore_ascii_case(kw));
        if ok {
            let name = name.to_ascii_lowercase();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// `s` without leading and trailing whitespace, borrowed when it was.
fn trim_cow(s: std::borrow::Cow<'_, str>) -> std::borrow::Cow<'_, str> {
    match s {
        std::borrow::Cow::Borrowed(b) => std::borrow::Cow::Borrowed(b.trim()),
        std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o.trim().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_prefixes() {
        assert_eq!(tables("SELECT a FROM demo_posts p LEFT JOIN demo_comments c ON x"), ["demo_posts", "demo_comments"]);
        assert_eq!(tables("UPDATE t SET a = 1"), ["t"]);
        assert_eq!(tables("SELECT x FROM demo_comments, pg_sleep($1)"), ["demo_comments"]);
        assert_eq!(key_prefix("demo:user:7:name"), "demo:user");
        assert_eq!(key_prefix("demo:geo"), "demo:geo");
    }

    #[test]
    fn items_hash_as_their_text() {
        assert_eq!(SampledSet::hash_joined(["t", "[", "1", ",", "x", "]"]), SampledSet::hash("t[1,x]"));
        assert_eq!(SampledSet::hash_joined(["api", "/v1"]), SampledSet::hash("api/v1"));
        assert_eq!(SampledSet::hash_joined([]), SampledSet::hash(""));
    }
}
