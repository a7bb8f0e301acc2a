//! Plain TCP: every fed chunk becomes one opaque message.

use crate::types::*;

/// Decoder for connections we do not understand (or no longer try to).
#[derive(Debug)]
pub struct OpaqueDecoder {
    limits: Limits,
    offsets: [u64; 2],
}

impl OpaqueDecoder {
    pub fn new(limits: Limits) -> OpaqueDecoder {
        OpaqueDecoder { limits, offsets: [0, 0] }
    }

    /// Starts at the given per-direction stream offsets (used when a session
    /// switches an already-running connection to opaque mode).
    pub fn starting_at(limits: Limits, offsets: [u64; 2]) -> OpaqueDecoder {
        OpaqueDecoder { limits, offsets }
    }

    pub(crate) fn chunk(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) {
        if data.is_empty() {
            return;
        }
        let offset = self.offsets[dir.index()];
        self.offsets[dir.index()] += data.len() as u64;
        out.push(Event::Message(Message {
            dir,
            first_ts: ts,
            last_ts: ts,
            offset,
            raw: CappedBytes::new(data, self.limits.cap(dir)),
            kind: MessageKind::Opaque,
        }));
    }
}

impl Decoder for OpaqueDecoder {
    fn feed(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback> {
        self.chunk(dir, data, ts, out);
        Ok(())
    }

    fn eof(&mut self, _dir: Direction, _ts: u64, _out: &mut Vec<Event>) {}
}
