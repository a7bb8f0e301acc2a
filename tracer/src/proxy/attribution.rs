//! Attribution: which invocation caused a downstream call (a query, a
//! Redis command, an outbound HTTP request), and how we know.
//!
//! [`Attributor`] is a pure state machine fed by the recorder: invocations
//! begin (their request is decoded) and end (their exchange completes), and
//! each completed downstream exchange asks [`Attributor::attribute`] with
//! the evidence found in it. In order of preference:
//!
//! 1. a trace id in a W3C `traceparent` request header (outbound HTTP):
//!    [`AttributionMethod::Traceparent`];
//! 2. a trace id in a sqlcommenter comment (`/*traceparent='00-...'*/`) in
//!    the SQL: [`AttributionMethod::Sqlcommenter`];
//! 3. with no trace id at all: the one invocation in flight over the whole
//!    exchange, from its request's first byte to its response's last, when
//!    no other invocation (nor a request still arriving on an invocation
//!    connection) overlaps it: [`AttributionMethod::ConnectionWindow`].
//!
//! A trace id that names no known invocation, or more than one, and a
//! window shared by several invocations, leave the call unattributed: we
//! never guess. Decisions use the recorded timestamps, not the order notes
//! reached the recorder, so a note that arrives a little late changes
//! nothing. Finished invocations are kept for [`RETENTION_NS`] so that
//! calls completing after their invocation still find it.

use format::{Attribution, AttributionMethod};
use std::collections::{BTreeMap, HashMap};

/// How long a finished invocation can still be named by a later call.
pub const RETENTION_NS: u64 = 60_000_000_000;
/// At most this many finished invocations are kept (memory bound).
pub const MAX_FINISHED: usize = 100_000;

#[derive(Clone, Debug)]
struct Span {
    start: u64,
    end: Option<u64>,
    trace_id: Option<String>,
}

/// Evidence a downstream exchange carries about its cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub trace_id: String,
    pub method: AttributionMethod,
}

#[derive(Default)]
pub struct Attributor {
    next_id: u64,
    spans: HashMap<u64, Span>,
    /// Invocations in flight: id -> start.
    in_flight: BTreeMap<u64, u64>,
    /// Finished invocations by (end, id), for windows and pruning.
    finished: BTreeMap<(u64, u64), ()>,
    by_trace: HashMap<String, Vec<u64>>,
    /// Invocation connections with a request partly received but not yet
    /// decoded: conn -> time of its first byte. An invocation may be
    /// starting there, so no window is exclusive meanwhile.
    arriving: HashMap<u64, u64>,
}

impl Attributor {
    pub fn new() -> Attributor {
        Attributor::default()
    }

    /// An invocation's request was decoded; `start` is its first byte.
    /// Returns its id, unique within the trace.
    pub fn begin(&mut self, start: u64, trace_id: Option<String>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(t) = &trace_id {
            self.by_trace.entry(t.clone()).or_default().push(id);
        }
        self.spans.insert(id, Span { start, end: None, trace_id });
        self.in_flight.insert(id, start);
        id
    }

    /// The invocation's exchange completed at `end` (its response's last
    /// byte, or when the connection ended without one).
    pub fn end(&mut self, id: u64, end: u64) {
        if let Some(span) = self.spans.get_mut(&id) {
            if span.end.is_none() {
                span.end = Some(end.max(span.start));
                self.in_flight.remove(&id);
                self.finished.insert((end.max(span.start), id), ());
            }
        }
        self.prune(end);
    }

    /// Marks (`Some(first byte time)`) or clears (`None`) a request still
    /// arriving on invocation connection `conn`.
    pub fn arriving(&mut self, conn: u64, since: Option<u64>) {
        match since {
            Some(ts) => {
                self.arriving.entry(conn).or_insert(ts);
            }
            None => {
                self.arriving.remove(&conn);
            }
        }
    }

    /// How many invocations are in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Attributes a downstream exchange that ran from `first` (request's
    /// first byte) to `last` (response's last byte), given its evidence.
    pub fn attribute(&self, evidence: Option<&Evidence>, first: u64, last: u64) -> Option<Attribution> {
        let last = last.max(first);
        if let Some(ev) = evidence {
            let ids = self.by_trace.get(&ev.trace_id)?;
            let id = if ids.len() == 1 {
                ids[0]
            } else {
                // Several invocations share the trace id (a gateway's
                // retries, say): only one that overlaps the call will do.
                let mut overlapping = ids.iter().filter(|id| self.overlaps(**id, first, last));
                match (overlapping.next(), overlapping.next()) {
                    (Some(id), None) => *id,
                    _ => return None,
                }
            };
            return Some(Attribution { invocation: id, method: ev.method });
        }
        if self.arriving.values().any(|since| *since <= last) {
            return None;
        }
        let mut candidates = self
            .in_flight
            .iter()
            .filter(|(_, start)| **start <= last)
            .map(|(id, _)| *id)
            .chain(self.finished.range((first, 0)..).map(|((_, id), _)| *id).filter(|id| self.spans[id].start <= last));
        let only = match (candidates.next(), candidates.next()) {
            (Some(id), None) => id,
            _ => return None,
        };
        let span = &self.spans[&only];
        let covers = span.start <= first && !matches!(span.end, Some(end) if end < last);
        covers.then_some(Attribution { invocation: only, method: AttributionMethod::ConnectionWindow })
    }

    fn overlaps(&self, id: u64, first: u64, last: u64) -> bool {
        self.spans.get(&id).is_some_and(|s| s.start <= last && !matches!(s.end, Some(e) if e < first))
    }

    /// Forgets invocations that ended more than [`RETENTION_NS`] before
    /// `now`, and the oldest beyond [`MAX_FINISHED`].
    fn prune(&mut self, now: u64) {
        while let Some((&(end, id), _)) = self.finished.first_key_value() {
            if end.saturating_add(RETENTION_NS) >= now && self.finished.len() <= MAX_FINISHED {
                break;
            }
            self.finished.pop_first();
            if let Some(span) = self.spans.remove(&id) {
                if let Some(t) = span.trace_id {
                    if let Some(ids) = self.by_trace.get_mut(&t) {
                        ids.retain(|x| *x != id);
                        if ids.is_empty() {
                            self.by_trace.remove(&t);
                        }
                    }
                }
            }
        }
    }
}

/// The trace id of a W3C `traceparent` value (`00-<32 hex>-<16 hex>-<2
/// hex>`), lower-cased; `None` when it is malformed or all zeros.
pub fn traceparent_trace_id(value: &str) -> Option<String> {
    let value = value.trim();
    let mut parts = value.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2) || version.eq_ignore_ascii_case("ff") || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four fields; later versions may add more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace.to_ascii_lowercase())
}

/// The trace id of a sqlcommenter `traceparent='...'` key in `sql`
/// (the value may be URL-encoded, as the sqlcommenter spec says).
pub fn sqlcommenter_trace_id(sql: &str) -> Option<String> {
    let mut rest = sql;
    while let Some(i) = rest.find("traceparent=") {
        let after = &rest[i + "traceparent=".len()..];
        let quote = after.chars().next()?;
        if quote == '\'' || quote == '"' {
            if let Some(end) = after[1..].find(quote) {
                let value = after[1..1 + end].replace("%2D", "-").replace("%2d", "-");
                if let Some(t) = traceparent_trace_id(&value) {
                    return Some(t);
                }
            }
        }
        rest = after;
    }
    None
}

/// A fresh `traceparent` value with random trace and span ids, sampled.
pub fn new_traceparent() -> String {
    let trace = loop {
        let t = fastrand::u128(..);
        if t != 0 {
            break t;
        }
    };
    let span = fastrand::u64(1..);
    format!("00-{trace:032x}-{span:016x}-01")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const T2: &str = "0af7651916cd43dd8448eb211c80319c";

    fn ev(trace: &str, method: AttributionMethod) -> Evidence {
        Evidence { trace_id: trace.to_string(), method }
    }

    #[test]
    fn parses_traceparent_and_sqlcommenter() {
        assert_eq!(traceparent_trace_id(&format!("00-{T1}-00f067aa0ba902b7-01")).as_deref(), Some(T1));
        assert_eq!(traceparent_trace_id(&format!("00-{}-00f067aa0ba902b7-01", T1.to_uppercase())).as_deref(), Some(T1));
        assert_eq!(traceparent_trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
        assert_eq!(traceparent_trace_id(&format!("00-{T1}-0000000000000000-01")), None);
        assert_eq!(traceparent_trace_id(&format!("00-{T1}-00f067aa0ba902b7")), None);
        assert_eq!(traceparent_trace_id(&format!("ff-{T1}-00f067aa0ba902b7-01")), None);
        assert_eq!(traceparent_trace_id("garbage"), None);
        let sql = format!("SELECT 1 /*action='run',traceparent='00-{T2}-00f067aa0ba902b7-01'*/");
        assert_eq!(sqlcommenter_trace_id(&sql).as_deref(), Some(T2));
        let encoded = format!("SELECT 1 /*traceparent='00%2D{T2}%2D00f067aa0ba902b7%2D01'*/");
        assert_eq!(sqlcommenter_trace_id(&encoded).as_deref(), Some(T2));
        assert_eq!(sqlcommenter_trace_id("SELECT 'traceparent=' /*traceparent='bad'*/"), None);
        assert_eq!(sqlcommenter_trace_id("SELECT 1"), None);
        let fresh = new_traceparent();
        assert!(traceparent_trace_id(&fresh).is_some(), "{fresh}");
        assert_ne!(fresh, new_traceparent());
    }

    #[test]
    fn trace_ids_name_their_invocation_even_when_others_overlap() {
        let mut a = Attributor::new();
        let i1 = a.begin(100, Some(T1.into()));
        let i2 = a.begin(110, Some(T2.into()));
        let got = a.attribute(Some(&ev(T2, AttributionMethod::Sqlcommenter)), 120, 130).unwrap();
        assert_eq!((got.invocation, got.method), (i2, AttributionMethod::Sqlcommenter));
        let got = a.attribute(Some(&ev(T1, AttributionMethod::Traceparent)), 120, 130).unwrap();
        assert_eq!((got.invocation, got.method), (i1, AttributionMethod::Traceparent));
        // Without evidence two overlapping invocations leave it unattributed.
        assert_eq!(a.attribute(None, 120, 130), None);
        // An unknown trace id is not a reason to guess.
        assert_eq!(a.attribute(Some(&ev("1234", AttributionMethod::Sqlcommenter)), 120, 130), None);
        // A call that completes after its invocation ended still finds it.
        a.end(i2, 140);
        let got = a.attribute(Some(&ev(T2, AttributionMethod::Sqlcommenter)), 135, 150).unwrap();
        assert_eq!(got.invocation, i2);
    }

    #[test]
    fn windows_need_exactly_one_invocation_over_the_whole_call() {
        let mut a = Attributor::new();
        let i1 = a.begin(100, None);
        let got = a.attribute(None, 110, 120).unwrap();
        assert_eq!((got.invocation, got.method), (i1, AttributionMethod::ConnectionWindow));
        // A call that began before the invocation is not inside it.
        assert_eq!(a.attribute(None, 90, 120), None);
        a.end(i1, 200);
        // Decided after the invocation ended, by timestamps.
        assert_eq!(a.attribute(None, 150, 190).map(|x| x.invocation), Some(i1));
        // A call outliving its only candidate is not inside it.
        assert_eq!(a.attribute(None, 150, 250), None);
        // Nothing in flight, nothing overlapping: unattributed.
        assert_eq!(a.attribute(None, 300, 310), None);
        // Sequential invocations: each call falls in exactly one.
        let i2 = a.begin(400, None);
        a.end(i2, 500);
        let i3 = a.begin(600, None);
        assert_eq!(a.attribute(None, 410, 490).map(|x| x.invocation), Some(i2));
        assert_eq!(a.attribute(None, 610, 620).map(|x| x.invocation), Some(i3));
        // Overlap with a finished one spoils the window.
        assert_eq!(a.attribute(None, 450, 620), None);
        // A request still arriving on an invocation connection may be a
        // second invocation: no exclusive window meanwhile.
        a.arriving(7, Some(630));
        assert_eq!(a.attribute(None, 640, 650), None);
        assert_eq!(a.attribute(None, 610, 620).map(|x| x.invocation), Some(i3), "the arrival came after this call");
        a.arriving(7, None);
        assert_eq!(a.attribute(None, 640, 650).map(|x| x.invocation), Some(i3));
    }

    #[test]
    fn shared_trace_ids_pick_the_overlapping_one_or_none() {
        let mut a = Attributor::new();
        let i1 = a.begin(100, Some(T1.into()));
        a.end(i1, 200);
        let i2 = a.begin(300, Some(T1.into()));
        let e = ev(T1, AttributionMethod::Traceparent);
        assert_eq!(a.attribute(Some(&e), 150, 160).map(|x| x.invocation), Some(i1));
        assert_eq!(a.attribute(Some(&e), 310, 320).map(|x| x.invocation), Some(i2));
        assert_eq!(a.attribute(Some(&e), 150, 320), None, "overlaps both: ambiguous");
    }

    #[test]
    fn finished_invocations_are_forgotten_after_the_retention() {
        let mut a = Attributor::new();
        let i1 = a.begin(0, Some(T1.into()));
        a.end(i1, 10);
        let i2 = a.begin(RETENTION_NS + 100, None);
        a.end(i2, RETENTION_NS + 200);
        assert_eq!(a.attribute(Some(&ev(T1, AttributionMethod::Traceparent)), 5, 8), None);
        assert!(a.spans.len() == 1 && a.by_trace.is_empty());
    }
}
