//! Turns the time-ordered record stream into closed invocations, each with
//! its downstream calls in order, in memory bounded by the invocations in
//! flight.
//!
//! An invocation opens at its `invocation` record. Its calls join it
//! through the trace view's invocation join (the recorder's attribution).
//! It closes once its own HTTP exchange has ended and the stream has moved
//! [`CLOSE_WINDOW_NS`] past that end: every call that started before the
//! end has been seen by then, since the stream is ordered by start time
//! (see `format::merge`). An invocation whose exchange never comes (a torn
//! trace, a worker that died) closes [`MAX_OPEN_NS`] after it started, or
//! at the end of the input, marked unanswered.

use crate::call::{Call, CallProtocol};
use crate::session::SessionKey;
use crate::statement::Statements;
use format::view::{Filter, View};
use format::{Body, Decoded, Direction, Record};
// foldhash, not SipHash, for the per-record maps (see docs/analysis.md).
use foldhash::HashMap;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// How far past an invocation's end the stream must be before it closes.
pub const CLOSE_WINDOW_NS: u64 = 1_000_000_000;
pub use format::view::MAX_OPEN_NS;

/// An invocation and everything it called.
#[derive(Clone, Debug)]
pub struct Closed {
    pub src: u16,
    pub id: u64,
    pub lambda: Arc<str>,
    pub platform: Arc<str>,
    pub start: u64,
    pub end: u64,
    /// The HTTP status of its response; `None` when it was not answered.
    pub status: Option<u16>,
    pub answered: bool,
    /// Sorted by start.
    pub calls: Vec<Call>,
    /// Its session key, from its request (with `--session-key`).
    pub session: Option<String>,
}

impl Closed {
    pub fn wall(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// What the assembler hands on.
pub enum Out {
    Invocation(Closed),
    /// A downstream call tied to no invocation (or to one that had closed).
    Loose { call: Call, late: bool },
}

/// A Bind message's time and parameters.
type Bind = (u64, Vec<Option<String>>);

#[derive(Default)]
pub struct Assembler {
    view: View,
    filter: Filter,
    open: HashMap<(u16, u64), Closed>,
    ends: BTreeSet<(u64, u16, u64)>,
    starts: BTreeSet<(u64, u16, u64)>,
    /// Bind parameters sent on PostgreSQL connections, not yet matched to
    /// their exchange: (src, conn) -> (ts, params).
    binds: HashMap<(u16, u64), VecDeque<Bind>>,
    /// Invocations the filter left out: (start, src, id).
    skipped: VecDeque<(u64, u16, u64)>,
    /// Most invocations open at once (the memory bound's size).
    pub max_open: usize,
    /// Where session keys are (`--session-key`).
    session_key: Option<SessionKey>,
    /// Invocations whose request has not come yet: (src, conn) -> id.
    requests: HashMap<(u16, u64), u64>,
    /// SQL statements' classes, by text.
    statements: Statements,
}

impl Assembler {
    pub fn new(filter: Filter, session_key: Option<SessionKey>) -> Assembler {
        Assembler { view: View::default(), filter, session_key, ..Assembler::default() }
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    /// Takes the next record (in time order).
    pub fn push(&mut self, record: &Record, out: &mut Vec<Out>) {
        self.close_until(record.ts, out);
        let seen = self.view.observe(record);
        let joined = seen.invocation.clone();
        let conn = seen.conn.cloned();
        match &record.body {
            Body::Invocation(i) => {
                let keep = self.filter.in_window(record.ts) && self.filter.keeps_lambda(Some(&i.lambda));
                if keep {
                    let key = (record.src, i.id);
                    let j = joined.expect("an invocation joins itself");
                    self.open.insert(
                        key,
                        Closed {
                            src: record.src,
                            id: i.id,
                            lambda: j.invocation.lambda,
                            platform: j.invocation.platform,
                            start: record.ts,
                            end: record.ts,
                            status: None,
                            answered: false,
                            calls: Vec::new(),
                            session: None,
                        },
                    );
                    if self.session_key.is_some() {
                        self.requests.insert((record.src, i.conn), i.id);
                    }
                    self.starts.insert((record.ts, record.src, i.id));
                    self.max_open = self.max_open.max(self.open.len());
                } else {
                    // Kept in the join a while, so its calls are known as
                    // its (and dropped), then forgotten.
                    self.skipped.push_back((record.ts, record.src, i.id));
                }
            }
            Body::Message(m) if m.dir == Direction::ToServer => {
                if let Some(id) = self.requests.remove(&(record.src, m.conn)) {
                    // The invocation's own request: where its session key is.
                    if let (Some(key), Some(inv)) = (&self.session_key, self.open.get_mut(&(record.src, id))) {
                        inv.session = key.extract(m.data.bytes.as_bytes());
                    }
                }
                if let Some(Decoded::Pg(p)) = &m.decoded {
                    if p.typed_kind() == Some(format::PgKind::Bind) {
                        self.binds.entry((record.src, m.conn)).or_default().push_back((record.ts, p.params.clone()));
                    }
                }
            }
            Body::ConnClose(c) => {
                self.binds.remove(&(record.src, c.conn));
                self.requests.remove(&(record.src, c.conn));
            }
            Body::Exchange(e) => {
                let own = joined.as_ref().is_some_and(|j| j.method.is_none());
                if own {
                    let key = (record.src, joined.as_ref().map_or(0, |j| j.invocation.id));
                    if let Some(inv) = self.open.get_mut(&key) {
                        inv.end = e.response_last.unwrap_or(e.request_last).max(record.ts);
                        inv.answered = e.response_last.is_some();
                        if let format::ExchangeSummary::Http(h) = &e.summary {
                            inv.status = h.status;
                        }
                        self.ends.insert((inv.end, key.0, key.1));
                    }
                    return;
                }
                let Some(protocol) = conn.as_ref().and_then(|c| CallProtocol::of(c.protocol)) else { return };
                let params = self.take_binds(record.src, e);
                let call = Call::new(record.ts, e, protocol, &params, conn.as_ref().map_or("", |c| &c.server), &mut self.statements);
                match joined {
                    // Named an invocation that has closed (and was forgotten),
                    // or one the trace does not hold.
                    None if e.attribution.is_some() && self.filter.lambdas.is_empty() => {
                        out.push(Out::Loose { call, late: true })
                    }
                    None if e.attribution.is_some() => {}
                    Some(j) => {
                        let key = (record.src, j.invocation.id);
                        if let Some(inv) = self.open.get_mut(&key) {
                            inv.calls.push(call);
                        } else if self.filter.in_window(j.invocation.ts) && self.filter.keeps_lambda(Some(&j.invocation.lambda)) {
                            out.push(Out::Loose { call, late: true });
                        }
                    }
                    None if self.filter.lambdas.is_empty() && self.filter.in_window(record.ts) => {
                        out.push(Out::Loose { call, late: false })
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// No invocation handed on from now on started before this, given the
    /// stream is at `now`: the oldest open one's start, or `now` less the
    /// close window for those not yet begun.
    pub fn horizon(&self, now: u64) -> u64 {
        let oldest = self.starts.first().map_or(u64::MAX, |s| s.0);
        oldest.min(now.saturating_sub(CLOSE_WINDOW_NS))
    }

    /// Closes every invocation still open (the input ended).
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        let keys: Vec<(u16, u64)> = self.open.keys().copied().collect();
        let mut all: Vec<Closed> = keys.iter().filter_map(|k| self.close(*k)).collect();
        all.sort_by_key(|c| (c.start, c.src, c.id));
        out.extend(all.into_iter().map(Out::Invocation));
    }

    fn take_binds(&mut self, src: u16, e: &format::Exchange) -> Vec<Option<String>> {
        let Some(q) = self.binds.get_mut(&(src, e.conn)) else { return Vec::new() };
        let mut params = Vec::new();
        while q.front().is_some_and(|(ts, _)| *ts <= e.request_last) {
            if let Some((_, p)) = q.pop_front() {
                params.extend(p);
            }
        }
        params
    }

    fn close_until(&mut self, now: u64, out: &mut Vec<Out>) {
        while let Some(&(start, src, id)) = self.skipped.front() {
            if start.saturating_add(MAX_OPEN_NS) >= now {
                break;
            }
            self.skipped.pop_front();
            self.view.invocations.forget(src, id);
        }
        while let Some(&(end, src, id)) = self.ends.first() {
            if end.saturating_add(CLOSE_WINDOW_NS) >= now {
                break;
            }
            if let Some(c) = self.close((src, id)) {
                out.push(Out::Invocation(c));
            }
        }
        while let Some(&(start, src, id)) = self.starts.first() {
            if start.saturating_add(MAX_OPEN_NS) >= now {
                break;
            }
            if let Some(c) = self.close((src, id)) {
                out.push(Out::Invocation(c));
            }
        }
    }

    fn close(&mut self, key: (u16, u64)) -> Option<Closed> {
        self.view.invocations.forget(key.0, key.1);
        let mut c = self.open.remove(&key)?;
        self.starts.remove(&(c.start, key.0, key.1));
        self.ends.remove(&(c.end, key.0, key.1));
        c.calls.sort_by_key(|call| (call.start, call.end));
        if !c.answered {
            // No response: the invocation lasted at least until its last call.
            c.end = c.calls.iter().map(|k| k.end).max().unwrap_or(c.start).max(c.end);
        }
        Some(c)
    }
}
