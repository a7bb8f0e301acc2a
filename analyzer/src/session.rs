//! Sessions, the last locality question: when invocations carry a session
//! key (a user id in the path, a query or JSON field, a header), how many
//! workers (sources) each session's invocations ran on. A balancer with
//! session affinity would keep each session on one.
//!
//! The key is taken from the invocation's own request (its first message
//! to the worker), with `wire`'s HTTP head parser. Credentials that the
//! recording redacted (`Cookie`, `Authorization`, secret fields) are stars
//! of the value's length by then, so they make no usable key: use a field
//! or header that names the user without being a secret.

use crate::report::SessionSpread;
use std::collections::HashMap;
use std::str::FromStr;

/// Sessions tracked exactly; past this many, new ones are not added (and
/// the report says `sampled`).
pub const MAX_SESSIONS: usize = 1 << 20;

/// Where an invocation's session key is (`--session-key`).
#[derive(Clone, Debug)]
pub enum SessionKey {
    /// `header:NAME`: that request header's value.
    Header(String),
    /// `query:NAME`: that query parameter's value.
    Query(String),
    /// `json:FIELD`: that top-level field of a JSON request body.
    Json(String),
    /// `path:REGEX`: the regex's first group (or whole match) in the target.
    Path(regex::Regex),
}

impl FromStr for SessionKey {
    type Err = String;

    fn from_str(spec: &str) -> Result<SessionKey, String> {
        let usage = "use header:NAME, query:NAME, json:FIELD or path:REGEX (e.g. 'path:/users/(\\d+)')";
        let Some((kind, arg)) = spec.split_once(':').filter(|(_, a)| !a.is_empty()) else {
            return Err(format!("'{spec}' is not a session key: {usage}"));
        };
        match kind {
            "header" => Ok(SessionKey::Header(arg.to_ascii_lowercase())),
            "query" => Ok(SessionKey::Query(arg.to_owned())),
            "json" => Ok(SessionKey::Json(arg.to_owned())),
            "path" => regex::Regex::new(arg).map(SessionKey::Path).map_err(|e| format!("'{arg}' is not a regular expression: {e}")),
            _ => Err(format!("'{kind}' is not a kind of session key: {usage}")),
        }
    }
}

impl SessionKey {
    /// The spec as given (for the report).
    pub fn spec(&self) -> String {
        match self {
            SessionKey::Header(n) => format!("header:{n}"),
            SessionKey::Query(n) => format!("query:{n}"),
            SessionKey::Json(n) => format!("json:{n}"),
            SessionKey::Path(r) => format!("path:{}", r.as_str()),
        }
    }

    /// The session key in a recorded request (head and body), if any.
    pub fn extract(&self, request: &[u8]) -> Option<String> {
        let head = wire::http::parse_request_head(request).ok()?;
        let target = String::from_utf8_lossy(head.target()?);
        let value = match self {
            SessionKey::Header(name) => {
                let (_, v) = head.headers().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))?;
                String::from_utf8_lossy(v).trim().to_owned()
            }
            SessionKey::Query(name) => {
                let query = target.split_once('?')?.1.split('#').next().unwrap_or("");
                query.split('&').filter_map(|p| p.split_once('=')).find(|(n, _)| n == name)?.1.to_owned()
            }
            SessionKey::Json(field) => {
                let body = &request[head.head_len().min(request.len())..];
                let body = if head.chunked() { wire::http::dechunk(body) } else { body.to_vec() };
                match serde_json::from_slice::<serde_json::Value>(&body).ok()?.get(field)? {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => return None,
                    other => other.to_string(),
                }
            }
            SessionKey::Path(re) => {
                let caps = re.captures(&target)?;
                caps.get(1).or_else(|| caps.get(0))?.as_str().to_owned()
            }
        };
        Some(value).filter(|v| !v.is_empty())
    }
}

/// The workers each session ran on.
#[derive(Default)]
pub struct SessionAcc {
    /// Session key to the sources it ran on, one bit each (sources past
    /// 63 share the last bit).
    workers: HashMap<String, u64>,
    with_key: u64,
    without_key: u64,
    sampled: bool,
}

impl SessionAcc {
    /// An invocation on `src` with `key` (`None`: none found).
    pub fn add(&mut self, key: Option<&str>, src: u16) {
        let Some(key) = key else {
            self.without_key += 1;
            return;
        };
        self.with_key += 1;
        let bit = 1u64 << src.min(63);
        if let Some(mask) = self.workers.get_mut(key) {
            *mask |= bit;
        } else if self.workers.len() < MAX_SESSIONS {
            self.workers.insert(key.to_owned(), bit);
        } else {
            self.sampled = true;
        }
    }

    pub fn report(&self, key: &SessionKey) -> SessionSpread {
        let counts: Vec<u64> = self.workers.values().map(|m| u64::from(m.count_ones())).collect();
        let sessions = counts.len() as u64;
        SessionSpread {
            key: key.spec(),
            invocations_with_key: self.with_key,
            invocations_without_key: self.without_key,
            sessions,
            workers_mean: counts.iter().sum::<u64>() as f64 / sessions.max(1) as f64,
            workers_max: counts.iter().copied().max().unwrap_or(0),
            on_one_worker: counts.iter().filter(|&&c| c == 1).count() as f64 / sessions.max(1) as f64,
            sampled: self.sampled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"POST /run/chat/users/42?room=7&user=ann HTTP/1.1\r\nHost: w\r\nX-User: bob\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{\"user\": 9, \"room\": \"r\"}";

    #[test]
    fn keys_from_header_query_json_and_path() {
        let key = |s: &str| s.parse::<SessionKey>().unwrap().extract(REQ);
        assert_eq!(key("header:x-user").as_deref(), Some("bob"));
        assert_eq!(key("query:user").as_deref(), Some("ann"));
        assert_eq!(key("json:user").as_deref(), Some("9"));
        assert_eq!(key("json:room").as_deref(), Some("r"));
        assert_eq!(key(r"path:/users/(\d+)").as_deref(), Some("42"));
        assert_eq!(key("query:nope"), None);
        assert_eq!(key("json:nope"), None);
        assert!("cookie:x".parse::<SessionKey>().unwrap_err().contains("header:NAME"));
        assert!("path:(".parse::<SessionKey>().unwrap_err().contains("regular expression"));
    }

    #[test]
    fn spread_counts_workers_per_session() {
        let mut acc = SessionAcc::default();
        for (k, src) in [("a", 0), ("a", 1), ("a", 1), ("b", 0), ("c", 2)] {
            acc.add(Some(k), src);
        }
        acc.add(None, 0);
        let r = acc.report(&"query:user".parse().unwrap());
        assert_eq!((r.sessions, r.workers_max, r.invocations_with_key, r.invocations_without_key), (3, 2, 5, 1));
        assert!((r.workers_mean - 4.0 / 3.0).abs() < 1e-9 && (r.on_one_worker - 2.0 / 3.0).abs() < 1e-9);
    }
}
