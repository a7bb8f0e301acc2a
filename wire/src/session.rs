//! [`Session`]: one connection's decoder, with the switch to opaque mode.

use crate::opaque::OpaqueDecoder;
use crate::types::*;

/// Decodes one connection, both directions.
///
/// ```
/// use wire::{Direction, Event, Limits, Protocol, Session};
/// let mut s = Session::new(Protocol::Tcp, Limits::default());
/// let mut out = Vec::new();
/// s.feed(Direction::ToServer, b"hello", 1_000, &mut out);
/// assert!(matches!(out[0], Event::Message(_)));
/// ```
pub struct Session {
    protocol: Protocol,
    decoder: Box<dyn Decoder>,
    opaque: Option<OpaqueDecoder>,
    offsets: [u64; 2],
    limits: Limits,
}

impl Session {
    pub fn new(protocol: Protocol, limits: Limits) -> Session {
        let decoder: Box<dyn Decoder> = match protocol {
            Protocol::Http => Box::new(crate::http::HttpDecoder::new(limits)),
            Protocol::Postgres => Box::new(crate::pg::PgDecoder::new(limits)),
            Protocol::Redis => Box::new(crate::redis::RedisDecoder::new(limits)),
            // No MySQL decoder yet: its bytes are kept as opaque chunks.
            Protocol::Tcp | Protocol::Mysql => Box::new(OpaqueDecoder::new(limits)),
        };
        Session { protocol, decoder, opaque: None, offsets: [0, 0], limits }
    }

    /// A session for a connection already under way (a packet capture that
    /// started after the connection opened): decoding starts at a message
    /// boundary in both directions, and stream offsets count from `offsets`
    /// (per direction, index by [`Direction::index`]; `[0, 0]` when
    /// unknown). PostgreSQL then expects tagged messages from the client
    /// (no untagged startup packet); HTTP and Redis need nothing special;
    /// exchanges pair from the first complete request on.
    ///
    /// ```
    /// use wire::{Direction, Event, Limits, MessageKind, Protocol, Session};
    /// let mut s = Session::mid_stream(Protocol::Postgres, Limits::default(), [1000, 2000]);
    /// let mut out = Vec::new();
    /// s.feed(Direction::ToServer, b"Q\0\0\0\x0dselect 1\0", 5, &mut out);
    /// let Event::Message(m) = &out[0] else { panic!() };
    /// assert!(matches!(m.kind, MessageKind::Pg(_)));
    /// ```
    pub fn mid_stream(protocol: Protocol, limits: Limits, offsets: [u64; 2]) -> Session {
        let mut s = Session::new(protocol, limits);
        if protocol == Protocol::Postgres {
            s.decoder = Box::new(crate::pg::PgDecoder::new_mid_stream(limits));
        }
        if protocol == Protocol::Redis {
            s.decoder = Box::new(crate::redis::RedisDecoder::starting_at(limits, offsets));
        } else if offsets != [0, 0] {
            let inner = std::mem::replace(&mut s.decoder, Box::new(OpaqueDecoder::new(limits)));
            s.decoder = Box::new(Shifted { inner, base: offsets });
        }
        s.offsets = offsets;
        s
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Bytes fed so far in each direction (index by [`Direction::index`]),
    /// counting from the offsets a mid-stream session started at: where
    /// the next bytes start in their streams.
    pub fn offsets(&self) -> [u64; 2] {
        self.offsets
    }

    /// True once the connection has switched to opaque mode.
    pub fn is_opaque(&self) -> bool {
        self.opaque.is_some()
    }

    /// Feeds bytes seen in `dir` at `ts`; events are appended to `out`, one
    /// per message and one per exchange.
    pub fn feed(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) {
        self.feed_with(dir, data, ts, out, false);
    }

    /// Like [`Session::feed`], but floods of small messages may come as
    /// compact runs ([`Event::RedisRun`]) instead of one event per message
    /// and per exchange, for callers that can use them as they are: a run
    /// costs a few allocations where the events cost several per message.
    /// Expanded ([`crate::redis::RedisRun::expand`]), the runs give exactly
    /// the events [`Session::feed`] gives.
    pub fn feed_runs(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) {
        self.feed_with(dir, data, ts, out, true);
    }

    fn feed_with(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>, runs: bool) {
        let start = self.offsets[dir.index()];
        self.offsets[dir.index()] += data.len() as u64;
        if let Some(opaque) = &mut self.opaque {
            opaque.chunk(dir, data, ts, out);
            return;
        }
        let fed = if runs {
            self.decoder.feed_runs(dir, data, ts, out)
        } else {
            self.decoder.feed(dir, data, ts, out)
        };
        if let Err(fallback) = fed {
            self.switch_to_opaque(fallback, start, ts, out);
        }
    }

    /// The stream in `dir` ended at `ts`.
    pub fn eof(&mut self, dir: Direction, ts: u64, out: &mut Vec<Event>) {
        if self.opaque.is_none() {
            self.decoder.eof(dir, ts, out);
        }
    }

    fn switch_to_opaque(&mut self, fallback: Fallback, _call_start: u64, ts: u64, out: &mut Vec<Event>) {
        // The pending bytes are the tail of each stream: they end at the
        // current offset.
        let mut starts = [0u64; 2];
        for d in [Direction::ToServer, Direction::ToClient] {
            starts[d.index()] = self.offsets[d.index()].saturating_sub(fallback.pending[d.index()].len() as u64);
        }
        out.push(Event::Opaque {
            reason: fallback.reason,
            dir: fallback.dir,
            offset: starts[fallback.dir.index()],
            ts,
        });
        let mut opaque = OpaqueDecoder::starting_at(self.limits, starts);
        // The direction that caused the fallback goes first.
        let order = [fallback.dir, fallback.dir.reverse()];
        for d in order {
            let pending = &fallback.pending[d.index()];
            opaque.chunk(d, pending, ts, out);
        }
        self.opaque = Some(opaque);
    }
}

/// A decoder whose stream offsets start at `base` instead of 0 (a session
/// joined mid-stream): shifts the offsets of the events the inner decoder
/// emits.
struct Shifted {
    inner: Box<dyn Decoder>,
    base: [u64; 2],
}

impl Shifted {
    fn shift(&self, events: &mut [Event]) {
        for e in events {
            match e {
                Event::Message(m) => m.offset += self.base[m.dir.index()],
                Event::Opaque { dir, offset, .. } => *offset += self.base[dir.index()],
                // Redis sessions set their offsets themselves (no runs come here).
                Event::Exchange(_) | Event::RedisRun(_) => {}
            }
        }
    }
}

impl Decoder for Shifted {
    fn feed(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback> {
        let from = out.len();
        let r = self.inner.feed(dir, data, ts, out);
        self.shift(&mut out[from..]);
        r
    }

    fn eof(&mut self, dir: Direction, ts: u64, out: &mut Vec<Event>) {
        let from = out.len();
        self.inner.eof(dir, ts, out);
        self.shift(&mut out[from..]);
    }
}
