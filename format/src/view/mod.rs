//! The trace view: what every tool that reads a trace (`oltrace cat` and
//! `info`, `olreplay`, `olanalyze`) needs on top of the records themselves,
//! written once so the tools cannot disagree.
//!
//! - [`filter`]: [`Filter`], which records a command keeps (protocol,
//!   route, connection, lambda, time window, kind, direction), and
//!   [`parse_duration`], the one duration syntax of every flag (humantime).
//! - [`conns`]: [`ConnTable`], each connection's protocol and route from
//!   its `conn_open`, so records can be grouped and labelled by connection.
//! - [`join`]: [`InvocationJoin`], the invocation join: which invocation a
//!   call belongs to and how that was decided (attributed by the recorder,
//!   or the invocation's own exchange).
//!
//! [`View`] holds a connection table and an invocation join and feeds both
//! from each record, so a tool observes a record once and asks both.
//!
//! The call key (what a call is, with its variable parts removed) needs the
//! SQL fingerprint, which lives in `convert`; `format` does not depend on
//! `convert`, so the key is `convert::call_key` (see docs/analysis.md).

pub mod conns;
pub mod filter;
pub mod join;

pub use conns::{ConnInfo, ConnTable};
pub use filter::{parse_duration, parse_ns, Filter};
pub use join::{InvocationJoin, InvocationRef, Joined, MAX_OPEN_NS, STREAM_RETENTION_NS};

use crate::record::Record;

/// A connection table and an invocation join, fed together.
#[derive(Default)]
pub struct View {
    pub conns: ConnTable,
    pub invocations: InvocationJoin,
}

/// What the view knows about one record.
#[derive(Clone, Debug, Default)]
pub struct Seen<'a> {
    pub conn: Option<&'a ConnInfo>,
    /// The invocation the record belongs to (an invocation record, its own
    /// exchange, or a call attributed to it).
    pub invocation: Option<Joined>,
}

impl View {
    /// A view whose invocation join forgets invocations `retention_ns`
    /// after they started (memory bounded by invocations in that window).
    pub fn with_retention(retention_ns: u64) -> View {
        View { conns: ConnTable::default(), invocations: InvocationJoin::with_retention(retention_ns) }
    }

    /// Learns from `record` and says what is known about it.
    pub fn observe(&mut self, record: &Record) -> Seen<'_> {
        self.conns.observe(record);
        let invocation = self.invocations.observe(record);
        let conn = record.body.conn().and_then(|c| self.conns.get(record.src, c));
        Seen { conn, invocation }
    }
}

impl Seen<'_> {
    pub fn lambda(&self) -> Option<&str> {
        self.invocation.as_ref().map(|j| &*j.invocation.lambda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;
    use crate::{ExchangeSummary, HttpExchange};

    fn rec(ts: u64, body: Body) -> Record {
        Record { ts, src: 0, body }
    }

    fn exchange(conn: u64, attribution: Option<Attribution>) -> Body {
        Body::Exchange(Exchange {
            conn,
            request_last: 0,
            response_first: None,
            response_last: None,
            request_bytes: 0,
            response_bytes: 0,
            status: ExchangeStatus::Complete,
            summary: ExchangeSummary::Http(HttpExchange::default()),
            attribution,
        })
    }

    fn invocation(id: u64, lambda: &str) -> Body {
        Body::Invocation(Invocation { id, conn: 1, lambda: lambda.into(), platform: "openlambda".into(), request_id: None, trace_id: None })
    }

    #[test]
    fn joins_filters_and_forgets() {
        let mut view = View::with_retention(1_000);
        let open = |conn, protocol, route: &str| Body::ConnOpen(ConnOpen { conn, protocol, client: "c".into(), server: "s".into(), route: route.into(), tls: None });
        view.observe(&rec(0, open(1, Protocol::Http, "gw")));
        view.observe(&rec(0, open(2, Protocol::Postgres, "db")));
        let inv = rec(10, invocation(7, "blog"));
        assert_eq!(view.observe(&inv).lambda(), Some("blog"));
        // Its own exchange: same connection and start, no method.
        let own = view.observe(&rec(10, exchange(1, None))).invocation.unwrap();
        assert_eq!((own.invocation.id, own.method), (7, None));
        let call = rec(20, exchange(2, Some(Attribution { invocation: 7, method: AttributionMethod::Sqlcommenter })));
        let seen = view.observe(&call);
        assert_eq!(seen.invocation.as_ref().unwrap().method, Some(AttributionMethod::Sqlcommenter));
        let by = |f: Filter, view: &mut View| {
            let seen = view.observe(&call);
            f.keeps(&call, &seen)
        };
        assert!(by(Filter { lambdas: vec!["blog".into()], routes: vec!["db".into()], protocols: vec![Protocol::Postgres], ..Filter::default() }, &mut view));
        assert!(!by(Filter { lambdas: vec!["feed".into()], ..Filter::default() }, &mut view));
        assert!(!by(Filter { routes: vec!["gw".into()], ..Filter::default() }, &mut view));
        assert!(!by(Filter { from_ns: Some(21), ..Filter::default() }, &mut view));
        // An unattributed exchange on another connection joins nothing.
        assert!(view.observe(&rec(30, exchange(2, None))).invocation.is_none());
        // Past the retention, a new invocation makes the view forget #7.
        view.observe(&rec(2_000, invocation(8, "feed")));
        assert!(view.observe(&call).invocation.is_none());
        assert_eq!(view.invocations.len(), 1);
    }
}
