//! Which records a command keeps, and the one duration syntax of every
//! flag that takes a time.

use super::Seen;
use crate::record::{Direction, Protocol, Record};
use std::time::Duration;

/// Keeps records matching every criterion given; an empty filter keeps all.
/// Lists are alternatives: `protocols: [http, redis]` keeps both.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub conns: Vec<u64>,
    pub protocols: Vec<Protocol>,
    /// Route names (`conn_open.route`).
    pub routes: Vec<String>,
    /// Lambda names: keeps invocations, their own exchanges and the calls
    /// attributed to them. Other records (messages, connection events) are
    /// not tied to one invocation and are dropped by a lambda filter.
    pub lambdas: Vec<String>,
    pub direction: Option<Direction>,
    /// Record kinds ([`crate::Body::KINDS`]).
    pub kinds: Vec<String>,
    /// Nanoseconds since the trace's anchor, inclusive.
    pub from_ns: Option<u64>,
    /// Nanoseconds since the trace's anchor, exclusive.
    pub to_ns: Option<u64>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
            && self.protocols.is_empty()
            && self.routes.is_empty()
            && self.lambdas.is_empty()
            && self.direction.is_none()
            && self.kinds.is_empty()
            && self.from_ns.is_none()
            && self.to_ns.is_none()
    }

    /// True when the time `ts` is inside the window.
    pub fn in_window(&self, ts: u64) -> bool {
        self.from_ns.is_none_or(|from| ts >= from) && self.to_ns.is_none_or(|to| ts < to)
    }

    /// True when `lambda` passes the lambda criterion.
    pub fn keeps_lambda(&self, lambda: Option<&str>) -> bool {
        self.lambdas.is_empty() || lambda.is_some_and(|l| self.lambdas.iter().any(|x| x == l))
    }

    /// True when `record`, of which the view knows `seen`, passes.
    pub fn keeps(&self, record: &Record, seen: &Seen<'_>) -> bool {
        if !self.in_window(record.ts) {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == record.body.kind()) {
            return false;
        }
        if !self.conns.is_empty() && !record.body.conn().is_some_and(|c| self.conns.contains(&c)) {
            return false;
        }
        if !self.protocols.is_empty() && !seen.conn.is_some_and(|c| self.protocols.contains(&c.protocol)) {
            return false;
        }
        if !self.routes.is_empty() && !seen.conn.is_some_and(|c| self.routes.iter().any(|r| **r == *c.route)) {
            return false;
        }
        if !self.keeps_lambda(seen.lambda()) {
            return false;
        }
        if let Some(dir) = self.direction {
            if record.body.direction() != Some(dir) {
                return false;
            }
        }
        true
    }
}

/// Parses a time: a plain number is seconds (`1.5`), anything else is
/// humantime (`250ms`, `2m`, `1h 30s`, `40us`, `100ns`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return if secs >= 0.0 && secs.is_finite() {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(format!("'{text}': a time must be zero or more"))
        };
    }
    humantime::parse_duration(t).map_err(|e| format!("'{text}' is not a time ({e}): write seconds (1.5) or e.g. 250ms, 30s, 2m"))
}

/// [`parse_duration`] in nanoseconds.
pub fn parse_ns(text: &str) -> Result<u64, String> {
    let d = parse_duration(text)?;
    u64::try_from(d.as_nanos()).map_err(|_| format!("'{text}': too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_ns("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_ns("250ms"), Ok(250_000_000));
        assert_eq!(parse_ns("40us"), Ok(40_000));
        assert_eq!(parse_ns("7ns"), Ok(7));
        assert_eq!(parse_ns("2s"), Ok(2_000_000_000));
        assert_eq!(parse_ns("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration("1h 30s"), Ok(Duration::from_secs(3630)));
        assert!(parse_ns("-1").is_err());
        assert!(parse_ns("soon").unwrap_err().contains("2m"));
    }
}
