//! [`Sides`]: decoder events turned into replayed sides, in exchange order.

use crate::model::Side;

/// Turns decoder events into replayed sides, in exchange order.
#[derive(Default)]
pub struct Sides {
    conn: u64,
    responses: Vec<format::Message>,
    pub done: Vec<Side>,
    /// Why the decoder gave up on the target's replies, if it did: from
    /// there on it cannot tell where a reply ends, so waiting for one is
    /// pointless (e.g. a Redis reply nested past `wire::redis::MAX_DEPTH`).
    pub undecodable: Option<String>,
}

impl Sides {
    pub fn new(conn: u64) -> Sides {
        Sides { conn, ..Sides::default() }
    }

    pub fn absorb(&mut self, events: &mut Vec<wire::Event>) {
        let mut records = Vec::new();
        for ev in events.drain(..) {
            convert::event_to_records(self.conn, ev, false, &mut records);
        }
        for rec in records {
            match rec.body {
                format::Body::Message(m)
                    if m.dir == format::Direction::ToClient && !m.decoded.as_ref().is_some_and(format::Decoded::is_unsolicited) =>
                {
                    self.responses.push(m);
                }
                format::Body::Fallback(f) if f.dir == format::Direction::ToClient => {
                    self.undecodable.get_or_insert(f.reason);
                }
                format::Body::Exchange(e) => self.done.push(Side {
                    latency: e.latency(rec.ts),
                    status: e.status,
                    summary: e.summary,
                    responses: std::mem::take(&mut self.responses),
                }),
                _ => {}
            }
        }
    }
}

