//! Which records a command keeps.

use format::{Body, Direction, Protocol, Record};
use std::collections::HashMap;

/// Keeps records matching every criterion given; an empty filter keeps all.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub conns: Vec<u64>,
    pub protocols: Vec<Protocol>,
    pub direction: Option<Direction>,
    pub kinds: Vec<String>,
    /// Nanoseconds since the trace's anchor, inclusive.
    pub from_ns: Option<u64>,
    /// Nanoseconds since the trace's anchor, exclusive.
    pub to_ns: Option<u64>,
}

/// Tracks which protocol each connection speaks, from `conn_open` records,
/// so records can be filtered and labelled by protocol. Memory grows with
/// the number of connections, not records.
#[derive(Default)]
pub struct ConnProtocols {
    map: HashMap<(u16, u64), Protocol>,
}

impl ConnProtocols {
    /// Learns from `record`, and returns the protocol of its connection.
    pub fn observe(&mut self, record: &Record) -> Option<Protocol> {
        if let Body::ConnOpen(open) = &record.body {
            self.map.insert((record.src, open.conn), open.protocol);
        }
        let conn = record.body.conn()?;
        self.map.get(&(record.src, conn)).copied()
    }
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
            && self.protocols.is_empty()
            && self.direction.is_none()
            && self.kinds.is_empty()
            && self.from_ns.is_none()
            && self.to_ns.is_none()
    }

    /// True when `record` (whose connection speaks `protocol`) passes.
    pub fn keeps(&self, record: &Record, protocol: Option<Protocol>) -> bool {
        if self.from_ns.is_some_and(|from| record.ts < from) || self.to_ns.is_some_and(|to| record.ts >= to) {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == record.body.kind()) {
            return false;
        }
        if !self.conns.is_empty() && !record.body.conn().is_some_and(|c| self.conns.contains(&c)) {
            return false;
        }
        if !self.protocols.is_empty() && !protocol.is_some_and(|p| self.protocols.contains(&p)) {
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

/// Parses a time like `1.5`, `1.5s`, `250ms`, `40us` or `100ns` into
/// nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e9)
    } else {
        (t, 1e9)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a time: use seconds (1.5), or a unit: 1.5s, 250ms, 40us, 100ns"))?;
    if !(value >= 0.0 && value.is_finite()) {
        return Err(format!("'{text}': a time must be zero or more"));
    }
    Ok((value * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("40us"), Ok(40_000));
        assert_eq!(parse_duration("7ns"), Ok(7));
        assert_eq!(parse_duration("2s"), Ok(2_000_000_000));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
