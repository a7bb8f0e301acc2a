//! What every export format says about one exchange, derived once from the
//! record and the trace view: its role (an invocation's own request or a
//! downstream call), the statement, operation, class key (convert's call
//! key, the same one olanalyze groups calls by), status, error and rows.
//! Texts are what the trace holds: secrets were redacted when recorded.

use convert::call_key::{call_key, path_of};
use convert::classify::{is_write, strip_comments};
use format::view::{Joined, Seen};
use format::{Exchange, ExchangeSummary, Protocol};

/// Redis arguments kept in a statement, and bytes of each.
const REDIS_ARGS: usize = 16;
const REDIS_ARG_BYTES: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The invocation's own HTTP exchange (gateway to worker).
    Invocation,
    /// Anything else: a downstream call, attributed or not.
    Call,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Invocation => "invocation",
            Role::Call => "call",
        }
    }
}

pub struct Facts<'a> {
    pub role: Role,
    pub protocol: Protocol,
    pub route: &'a str,
    pub server: &'a str,
    pub start: u64,
    /// Response's last byte, else the request's last byte.
    pub end: u64,
    /// True when a response came.
    pub answered: bool,
    /// SQL (statements joined with `; `), the Redis command and arguments,
    /// or the HTTP method and target.
    pub statement: String,
    /// The SQL verb, the Redis command or the HTTP method, upper case.
    pub operation: String,
    /// The call class (`convert::call_key`): SQL fingerprints, Redis
    /// command and key template, HTTP method and path template.
    pub fingerprint: String,
    pub http_status: Option<u16>,
    /// `SQLSTATE 23505: message`, a Redis error reply, `http 503`.
    pub error: Option<String>,
    /// Rows returned (PostgreSQL only).
    pub rows: Option<u64>,
    pub write: bool,
    pub invocation: Option<&'a Joined>,
}

impl<'a> Facts<'a> {
    pub fn of(ts: u64, e: &Exchange, seen: &'a Seen<'a>) -> Facts<'a> {
        let role = if seen.invocation.as_ref().is_some_and(|j| j.method.is_none()) { Role::Invocation } else { Role::Call };
        let protocol = seen.conn.map(|c| c.protocol).unwrap_or(match e.summary {
            ExchangeSummary::Http(_) => Protocol::Http,
            ExchangeSummary::Pg(_) => Protocol::Postgres,
            ExchangeSummary::Redis(_) => Protocol::Redis,
        });
        let (statement, operation, http_status, error, rows) = match &e.summary {
            ExchangeSummary::Pg(p) => {
                let op = p.statements.first().map(|s| first_word(&strip_comments(s))).unwrap_or_default();
                let err = p.error.as_ref().map(|x| format!("SQLSTATE {}: {}", x.code, x.message));
                (p.statements.join("; "), op, None, err, Some(p.rows))
            }
            ExchangeSummary::Redis(r) => {
                let mut s = r.command.to_ascii_uppercase();
                for a in r.args.iter().take(REDIS_ARGS) {
                    s.push(' ');
                    let bytes = &a.0[..a.0.len().min(REDIS_ARG_BYTES)];
                    s.push_str(&String::from_utf8_lossy(bytes));
                }
                let err = r.reply.as_ref().filter(|x| x.is_error()).map(|x| {
                    x.text.as_ref().map(|t| String::from_utf8_lossy(&t.0).into_owned()).unwrap_or_else(|| "error".into())
                });
                (s, r.command.to_ascii_uppercase(), None, err, None)
            }
            ExchangeSummary::Http(h) => {
                let err = h.status.filter(|s| *s >= 500).map(|s| format!("http {s}"));
                (format!("{} {}", h.method, h.target), h.method.to_ascii_uppercase(), h.status, err, None)
            }
        };
        Facts {
            role,
            protocol,
            route: seen.conn.map_or("", |c| &c.route),
            server: seen.conn.map_or("", |c| &c.server),
            start: ts,
            end: e.response_last.unwrap_or(e.request_last).max(ts),
            answered: e.response_last.is_some(),
            statement,
            operation,
            fingerprint: call_key(&e.summary),
            http_status,
            error,
            rows,
            write: is_write(&e.summary),
            invocation: seen.invocation.as_ref(),
        }
    }

    /// The lambda this exchange belongs to, if any.
    pub fn lambda(&self) -> Option<&str> {
        self.invocation.map(|j| &*j.invocation.lambda)
    }

    /// How a call was tied to its invocation (`own` for an invocation's
    /// own exchange).
    pub fn attribution(&self) -> Option<&'static str> {
        self.invocation.map(|j| j.method.map_or("own", |m| m.name()))
    }
}

/// The HTTP path of an exchange (no query), or `None` for other protocols.
pub fn http_path(summary: &ExchangeSummary) -> Option<&str> {
    match summary {
        ExchangeSummary::Http(h) => Some(path_of(&h.target)),
        _ => None,
    }
}

/// `host:port` split; a missing or bad port is `None`.
pub fn host_port(addr: &str) -> (&str, Option<u16>) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p.parse().ok()),
        None => (addr, None),
    }
}

fn first_word(sql: &str) -> String {
    sql.split(|c: char| c.is_whitespace() || c == '(' || c == ';').find(|w| !w.is_empty()).unwrap_or("").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_addresses() {
        assert_eq!(first_word("  select 1"), "SELECT");
        assert_eq!(first_word("(SELECT 1)"), "SELECT");
        assert_eq!(host_port("127.0.0.1:5432"), ("127.0.0.1", Some(5432)));
        assert_eq!(host_port("[::1]:80"), ("::1", Some(80)));
        assert_eq!(host_port("db"), ("db", None));
    }
}
