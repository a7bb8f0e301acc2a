//! Each connection's protocol and route, learnt from its `conn_open`.

use crate::record::{Body, Protocol, Record};
// foldhash, not SipHash: one lookup per record, keyed by numbers from
// the trace file the user chose (no hash flooding to defend against).
use foldhash::HashMap;
use std::sync::Arc;

/// What a connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub protocol: Protocol,
    pub route: Arc<str>,
    /// The upstream server (`host:port`).
    pub server: Arc<str>,
}

/// Connections by `(src, conn)`. Memory grows with the number of
/// connections, not records.
#[derive(Default)]
pub struct ConnTable {
    map: HashMap<(u16, u64), ConnInfo>,
}

impl ConnTable {
    /// Learns from `record`, and returns its connection, if known.
    pub fn observe(&mut self, record: &Record) -> Option<&ConnInfo> {
        if let Body::ConnOpen(open) = &record.body {
            let info = ConnInfo { protocol: open.protocol, route: open.route.as_str().into(), server: open.server.as_str().into() };
            self.map.insert((record.src, open.conn), info);
        }
        self.get(record.src, record.body.conn()?)
    }

    pub fn get(&self, src: u16, conn: u64) -> Option<&ConnInfo> {
        self.map.get(&(src, conn))
    }

    /// The protocol of `record`'s connection, if known.
    pub fn protocol_of(&self, record: &Record) -> Option<Protocol> {
        Some(self.get(record.src, record.body.conn()?)?.protocol)
    }
}
