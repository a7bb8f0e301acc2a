//! The call key: what a downstream call is, with its variable parts
//! removed, so that calls can be counted by class.
//!
//! - PostgreSQL: the statements' fingerprints ([`crate::fingerprint`]),
//!   joined with `; `.
//! - Redis: the command plus its key with variable parts replaced
//!   (`GET user:3336` is `GET user:?`).
//! - HTTP: the method plus the path template, numeric, UUID and hex
//!   segments becoming `{id}` (`GET /orders/17` is `GET /orders/{id}`).
//!
//! [`report_key`] is the coarser key olreplay's reports and noise rules
//! have always used (the Redis command alone, the HTTP path as sent): noise
//! files name it, so it does not change.

use crate::fingerprint::fingerprint;
use format::ExchangeSummary;

/// The key olanalyze groups calls by (its call classes).
pub fn call_key(summary: &ExchangeSummary) -> String {
    match summary {
        ExchangeSummary::Http(h) => format!("{} {}", h.method, path_template(path_of(&h.target))),
        ExchangeSummary::Pg(_) => report_key(summary),
        ExchangeSummary::Redis(r) => {
            let command = r.command.to_ascii_uppercase();
            match redis_key_arg(&command, r.args.len()) {
                RedisKeyArg::Key(i) => format!("{command} {}", key_template(&String::from_utf8_lossy(&r.args[i].0))),
                RedisKeyArg::Subcommand => {
                    format!("{command} {}", String::from_utf8_lossy(&r.args[0].0).to_ascii_uppercase())
                }
                RedisKeyArg::None => command,
            }
        }
    }
}

/// The key olreplay's reports and noise rules group calls by: SQL
/// fingerprints, the Redis command name, the HTTP method and path.
pub fn report_key(summary: &ExchangeSummary) -> String {
    match summary {
        ExchangeSummary::Http(h) => format!("{} {}", h.method, h.target.split(['?', '#']).next().unwrap_or("")),
        ExchangeSummary::Pg(p) if p.statements.is_empty() => "(session)".to_owned(),
        ExchangeSummary::Pg(p) => p.statements.iter().map(|s| fingerprint(s)).collect::<Vec<_>>().join("; "),
        ExchangeSummary::Redis(r) => r.command.to_ascii_uppercase(),
    }
}

/// The Redis key a command names (its first key), if any.
pub fn redis_key<'a>(command: &str, args: &'a [format::BStr]) -> Option<&'a [u8]> {
    match redis_key_arg(&command.to_ascii_uppercase(), args.len()) {
        RedisKeyArg::Key(i) => Some(&args[i].0),
        _ => None,
    }
}

/// The path of a request target, without query or fragment (and without
/// scheme and host in absolute form).
pub fn path_of(target: &str) -> &str {
    let t = target.split(['?', '#']).next().unwrap_or("");
    match t.find("://") {
        Some(i) => t[i + 3..].find('/').map_or("/", |j| &t[i + 3 + j..]),
        None => t,
    }
}

/// `/orders/17/items/3f2a9c1e...` becomes `/orders/{id}/items/{id}`.
pub fn path_template(path: &str) -> String {
    path.split('/').map(|seg| if is_id(seg) { "{id}" } else { seg }).collect::<Vec<_>>().join("/")
}

/// `user:3336` becomes `user:?`; `session:9f8e...:cart` becomes
/// `session:?:cart`. A part is variable when it holds a digit or is a
/// UUID or long hex; parts are split on `:`, `/`, `.`, `|` and `#`.
pub fn key_template(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut part = String::new();
    let flush = |part: &mut String, out: &mut String| {
        if part.bytes().any(|b| b.is_ascii_digit()) || is_id(part) {
            out.push('?');
        } else {
            out.push_str(part);
        }
        part.clear();
    };
    for c in key.chars() {
        if matches!(c, ':' | '/' | '.' | '|' | '#') {
            flush(&mut part, &mut out);
            out.push(c);
        } else {
            part.push(c);
        }
    }
    flush(&mut part, &mut out);
    out
}

/// A numeric, UUID or hex (8+ digits, with a digit) path segment.
fn is_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    if seg.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let hex = seg.bytes().filter(|b| *b != b'-').all(|b| b.is_ascii_hexdigit());
    let uuid = seg.len() == 36 && seg.bytes().filter(|b| *b == b'-').count() == 4;
    hex && (uuid || (seg.len() >= 8 && !seg.contains('-') && seg.bytes().any(|b| b.is_ascii_digit())))
}

enum RedisKeyArg {
    Key(usize),
    Subcommand,
    None,
}

/// Where a command's key is: most commands name it first; these name none,
/// or a subcommand first.
fn redis_key_arg(command: &str, nargs: usize) -> RedisKeyArg {
    const KEYLESS: &[&str] = &[
        "PING", "ECHO", "AUTH", "HELLO", "SELECT", "MULTI", "EXEC", "DISCARD", "UNWATCH", "QUIT", "RESET", "INFO", "TIME",
        "DBSIZE", "FLUSHDB", "FLUSHALL", "SCAN", "RANDOMKEY", "SAVE", "BGSAVE", "LASTSAVE", "WAIT", "SUBSCRIBE",
        "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "PUBLISH", "KEYS", "SWAPDB", "READONLY", "READWRITE",
    ];
    const SUBCOMMANDS: &[&str] =
        &["CLIENT", "CONFIG", "COMMAND", "CLUSTER", "ACL", "MEMORY", "MODULE", "OBJECT", "SCRIPT", "FUNCTION", "LATENCY", "SLOWLOG", "XINFO", "XGROUP", "PUBSUB", "DEBUG"];
    if nargs == 0 || KEYLESS.contains(&command) {
        RedisKeyArg::None
    } else if SUBCOMMANDS.contains(&command) {
        RedisKeyArg::Subcommand
    } else if matches!(command, "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO") {
        if nargs >= 3 {
            RedisKeyArg::Key(2)
        } else {
            RedisKeyArg::None
        }
    } else {
        RedisKeyArg::Key(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use format::{HttpExchange, PgExchange, RedisExchange};

    fn redis(command: &str, args: &[&str]) -> ExchangeSummary {
        ExchangeSummary::Redis(RedisExchange {
            command: command.into(),
            args: args.iter().map(|a| format::BStr(a.as_bytes().to_vec())).collect(),
            reply: None,
        })
    }

    fn http(method: &str, target: &str) -> ExchangeSummary {
        ExchangeSummary::Http(HttpExchange { method: method.into(), target: target.into(), ..Default::default() })
    }

    #[test]
    fn keys() {
        assert_eq!(call_key(&redis("GET", &["user:3336"])), "GET user:?");
        assert_eq!(call_key(&redis("set", &["session:9f8e7d6c5b4a:cart", "x"])), "SET session:?:cart");
        assert_eq!(call_key(&redis("PING", &[])), "PING");
        assert_eq!(call_key(&redis("CLIENT", &["setname", "x"])), "CLIENT SETNAME");
        assert_eq!(call_key(&redis("EVALSHA", &["abc", "1", "rate:42"])), "EVALSHA rate:?");
        assert_eq!(call_key(&http("GET", "/orders/17/items/550e8400-e29b-41d4-a716-446655440000?x=1")), "GET /orders/{id}/items/{id}");
        assert_eq!(call_key(&http("GET", "http://api:80/blobs/deadbeef42/meta")), "GET /blobs/{id}/meta");
        assert_eq!(call_key(&http("GET", "/users/alice")), "GET /users/alice");
        let pg = ExchangeSummary::Pg(PgExchange { statements: vec!["SELECT * FROM t WHERE id = 7".into()], ..Default::default() });
        assert_eq!(call_key(&pg), "select * from t where id = ?");
        assert_eq!(report_key(&redis("GET", &["user:3336"])), "GET");
        assert_eq!(report_key(&http("GET", "/orders/17?x")), "GET /orders/17");
    }
}
