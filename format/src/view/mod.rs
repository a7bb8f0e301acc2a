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
pub use join::{InvocationJoin, InvocationRef, Joined, STREAM_RETENTION_NS};

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
