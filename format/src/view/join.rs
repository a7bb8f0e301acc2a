//! The invocation join: which invocation each record belongs to.
//!
//! A downstream call (an [`Exchange`] on a PostgreSQL, Redis or outbound
//! HTTP connection) names its invocation in [`Exchange::attribution`], set
//! by the recorder (see `tracer/src/proxy/attribution.rs`: traceparent,
//! sqlcommenter or the connection window). An invocation's own HTTP
//! exchange carries no attribution: it is the exchange on the invocation's
//! connection that starts at the invocation's `ts`.

use crate::record::{AttributionMethod, Body, Exchange, Invocation, Record};
// foldhash, not SipHash: up to two lookups per record, keyed by numbers
// from the trace file the user chose (no hash flooding to defend against).
use foldhash::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// How long a streaming tool keeps an invocation for its calls to find:
/// ten times the recorder's attribution retention (60 s), so no call the
/// recorder could attribute is missed.
pub const STREAM_RETENTION_NS: u64 = 600_000_000_000;

/// An invocation whose own exchange never ends (a torn trace, a worker
/// that died) is taken as over this long after it started, by every tool
/// that waits for invocations to end (olanalyze, exports, `oltrace logs`).
pub const MAX_OPEN_NS: u64 = 300_000_000_000;

/// What the join keeps of an invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationRef {
    pub src: u16,
    pub id: u64,
    pub lambda: Arc<str>,
    pub platform: Arc<str>,
    /// Its request's first byte.
    pub ts: u64,
    pub conn: u64,
    /// The request id and W3C trace id the invocation record holds (for
    /// tools that tag log lines or export spans).
    pub request_id: Option<Arc<str>>,
    pub trace_id: Option<Arc<str>>,
}

/// A record joined to its invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub invocation: InvocationRef,
    /// How the record was tied to it: `None` for the invocation's own
    /// records (the invocation and its HTTP exchange), the recorder's
    /// method for a downstream call.
    pub method: Option<AttributionMethod>,
}

/// Invocations by id and by their exchange's `(conn, ts)`.
///
/// By default it keeps every invocation until told to [`InvocationJoin::forget`] it (a
/// tool that looks records up after reading them all, or one that knows
/// when it is done with one); [`InvocationJoin::with_retention`] forgets an
/// invocation once records `retention_ns` past its start arrive, for tools
/// that stream.
#[derive(Default)]
pub struct InvocationJoin {
    by_id: HashMap<(u16, u64), InvocationRef>,
    by_exchange: HashMap<(u16, u64, u64), u64>,
    retention_ns: Option<u64>,
    /// (start, src, id) in arrival order, for forgetting.
    order: VecDeque<(u64, u16, u64)>,
}

impl InvocationJoin {
    pub fn with_retention(retention_ns: u64) -> InvocationJoin {
        InvocationJoin { retention_ns: Some(retention_ns), ..InvocationJoin::default() }
    }

    /// Learns from `record` and joins it, when it belongs to an invocation.
    pub fn observe(&mut self, record: &Record) -> Option<Joined> {
        match &record.body {
            Body::Invocation(i) => {
                self.forget_before(record.ts);
                let r = self.insert(record.src, record.ts, i);
                Some(Joined { invocation: r, method: None })
            }
            Body::Exchange(e) => self.of_exchange(record.src, record.ts, e),
            _ => None,
        }
    }

    /// Adds an invocation that started at `ts`.
    pub fn insert(&mut self, src: u16, ts: u64, i: &Invocation) -> InvocationRef {
        let r = InvocationRef {
            src,
            id: i.id,
            lambda: i.lambda.as_str().into(),
            platform: i.platform.as_str().into(),
            ts,
            conn: i.conn,
            request_id: i.request_id.as_deref().map(Arc::from),
            trace_id: i.trace_id.as_deref().map(Arc::from),
        };
        self.by_id.insert((src, i.id), r.clone());
        self.by_exchange.insert((src, i.conn, ts), i.id);
        if self.retention_ns.is_some() {
            self.order.push_back((ts, src, i.id));
        }
        r
    }

    /// The invocation of the exchange `e` of source `src` starting at `ts`.
    pub fn of_exchange(&self, src: u16, ts: u64, e: &Exchange) -> Option<Joined> {
        if let Some(a) = &e.attribution {
            if let Some(invocation) = self.by_id.get(&(src, a.invocation)) {
                return Some(Joined { invocation: invocation.clone(), method: Some(a.method) });
            }
        }
        let id = self.by_exchange.get(&(src, e.conn, ts))?;
        Some(Joined { invocation: self.by_id.get(&(src, *id))?.clone(), method: None })
    }


    /// Forgets an invocation (a streaming tool that has finished with it).
    pub fn forget(&mut self, src: u16, id: u64) {
        if let Some(r) = self.by_id.remove(&(src, id)) {
            self.by_exchange.remove(&(src, r.conn, r.ts));
        }
    }

    /// Invocations currently kept.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn forget_before(&mut self, now: u64) {
        let Some(retention) = self.retention_ns else { return };
        while let Some(&(ts, src, id)) = self.order.front() {
            if ts.saturating_add(retention) >= now {
                break;
            }
            self.order.pop_front();
            self.forget(src, id);
        }
    }
}
