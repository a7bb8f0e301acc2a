//! Types shared by every codec.

use bytes::Bytes;
use xxhash_rust::xxh3::Xxh3;

/// Which way bytes travel, and the protocols a [`crate::Session`]
/// decodes: the trace format's own types, so that a record and the event
/// it came from never need a mapping.
pub use format::{Direction, Protocol};

/// Size limits every decoder enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest single frame a decoder will buffer (a PostgreSQL message,
    /// an HTTP head, a Redis bulk string header line, ...). Anything larger
    /// makes the decoder fall back to opaque mode rather than buffer without
    /// bound.
    pub max_frame: usize,
    /// How many bytes of a client-to-server message are kept in
    /// [`Message::raw`] (and of a request body). The replayer re-sends these:
    /// the default, [`DEFAULT_REQUEST_CAP`], keeps every message a client
    /// library sends in practice whole (`oltrace proxy --max-request`).
    pub request_cap: usize,
    /// How many bytes of a server-to-client message (and of a response body)
    /// are kept.
    pub response_cap: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame: 64 << 20, request_cap: DEFAULT_REQUEST_CAP, response_cap: 64 << 10 }
    }
}

/// The default [`Limits::request_cap`]: 64 MiB per message.
pub const DEFAULT_REQUEST_CAP: usize = 64 << 20;

impl Limits {
    /// These limits keeping client messages up to `cap` bytes whole: the
    /// frame limit grows with it, so that a message under the cap is never
    /// given up as too large to decode.
    pub fn with_request_cap(self, cap: usize) -> Limits {
        Limits { request_cap: cap, max_frame: self.max_frame.max(cap), ..self }
    }
}

impl Limits {
    /// The cap for messages travelling in `dir`.
    pub fn cap(&self, dir: Direction) -> usize {
        match dir {
            Direction::ToServer => self.request_cap,
            Direction::ToClient => self.response_cap,
        }
    }
}

/// Bytes kept up to a cap: the prefix, the full length, and, when the prefix
/// is shorter than the whole, a hash of the whole so that two truncated
/// bodies can still be compared.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CappedBytes {
    pub prefix: Bytes,
    /// Full length in bytes.
    pub len: u64,
    /// xxh3-64 of the full content; set only when truncated.
    pub hash: Option<u64>,
}

impl CappedBytes {
    /// Keeps all of `data` when it fits under `cap`, else a prefix and a hash.
    pub fn new(data: &[u8], cap: usize) -> CappedBytes {
        if data.len() <= cap {
            return CappedBytes { prefix: Bytes::copy_from_slice(data), len: data.len() as u64, hash: None };
        }
        CappedBytes {
            prefix: Bytes::copy_from_slice(&data[..cap]),
            len: data.len() as u64,
            hash: Some(xxhash_rust::xxh3::xxh3_64(data)),
        }
    }

    /// Like [`CappedBytes::new`] without copying: the prefix shares `data`'s
    /// buffer. (A truncated prefix then keeps the whole buffer alive; use
    /// `new` where the rest should be freed.)
    pub fn from_bytes(data: Bytes, cap: usize) -> CappedBytes {
        if data.len() <= cap {
            return CappedBytes::whole(data);
        }
        CappedBytes { hash: Some(xxhash_rust::xxh3::xxh3_64(&data)), len: data.len() as u64, prefix: data.slice(..cap) }
    }

    /// Whole bytes, never truncated.
    pub fn whole(data: Bytes) -> CappedBytes {
        CappedBytes { len: data.len() as u64, prefix: data, hash: None }
    }

    pub fn is_truncated(&self) -> bool {
        (self.prefix.len() as u64) < self.len
    }
}

/// Builds a [`CappedBytes`] from pieces that arrive one at a time (a body
/// streamed across many reads), in memory bounded by the cap.
///
/// The hash is only computed for content that outgrows the cap: the hasher
/// (about 550 bytes of state) is created at the first byte past the cap and
/// fed the kept prefix first, so the digest is that of the whole content,
/// and messages that fit cost no hashing at all.
#[derive(Clone)]
pub struct CappedBuilder {
    cap: usize,
    prefix: Vec<u8>,
    len: u64,
    hasher: Option<Box<Xxh3>>,
}

impl std::fmt::Debug for CappedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CappedBuilder").field("cap", &self.cap).field("len", &self.len).finish()
    }
}

impl CappedBuilder {
    pub fn new(cap: usize) -> CappedBuilder {
        CappedBuilder { cap, prefix: Vec::new(), len: 0, hasher: None }
    }

    pub fn push(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.prefix.len());
        let kept = room.min(data.len());
        self.prefix.extend_from_slice(&data[..kept]);
        self.len += data.len() as u64;
        if kept < data.len() {
            let prefix = &self.prefix;
            let hasher = self.hasher.get_or_insert_with(|| {
                let mut h = Box::new(Xxh3::new());
                h.update(prefix);
                h
            });
            hasher.update(&data[kept..]);
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> CappedBytes {
        CappedBytes { hash: self.hasher.map(|h| h.digest()), prefix: Bytes::from(self.prefix), len: self.len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_bytes_hash_the_whole_content_however_it_arrives() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cap in [0, 1, 100, 4999, 5000, 6000] {
            let whole = CappedBytes::new(&data, cap);
            assert_eq!(whole, CappedBytes::from_bytes(Bytes::from(data.clone()), cap), "cap {cap}");
            for piece in [1, 7, 100, 4096] {
                let mut b = CappedBuilder::new(cap);
                for chunk in data.chunks(piece) {
                    b.push(chunk);
                }
                assert_eq!(b.finish(), whole, "cap {cap}, pieces of {piece}");
            }
            assert_eq!(whole.len, 5000);
            assert_eq!(whole.prefix.len(), cap.min(5000));
            assert_eq!(whole.hash, (cap < 5000).then(|| xxhash_rust::xxh3::xxh3_64(&data)));
        }
    }
}

/// One decoded message, in either direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub dir: Direction,
    /// Time the message's first byte was fed.
    pub first_ts: u64,
    /// Time its last byte was fed.
    pub last_ts: u64,
    /// Offset of its first byte in its direction's stream.
    pub offset: u64,
    /// The message's exact bytes as they crossed the wire, capped by
    /// [`Limits::cap`].
    pub raw: CappedBytes,
    pub kind: MessageKind,
}

/// What a message says, by protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageKind {
    Http(crate::http::HttpMessage),
    Pg(crate::pg::PgMessage),
    Redis(crate::redis::RedisMessage),
    /// Bytes of a connection in opaque mode (plain TCP, TLS, an upgraded
    /// connection, or after a decoder gave up).
    Opaque,
}

/// When the four edges of an exchange happened, in the caller's nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Timings {
    pub request_first: u64,
    pub request_last: u64,
    /// `None` when no response came (connection closed, or no reply expected).
    pub response_first: Option<u64>,
    pub response_last: Option<u64>,
}

/// How an exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeStatus {
    /// Request and response both complete.
    Complete,
    /// The connection ended before the response was complete.
    Unanswered,
    /// The protocol says no reply comes (Redis `CLIENT REPLY OFF`, a
    /// PostgreSQL Terminate, ...).
    NoReply,
}

/// A request paired with its response.
#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    pub timings: Timings,
    /// Bytes on the wire, request side and response side.
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub status: ExchangeStatus,
    pub detail: ExchangeDetail,
}

/// The protocol's summary of an exchange.
#[derive(Clone, Debug, PartialEq)]
pub enum ExchangeDetail {
    Http(crate::http::HttpExchange),
    Pg(crate::pg::PgExchange),
    Redis(crate::redis::RedisExchange),
}

/// What a [`crate::Session`] emits.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Message(Message),
    /// Boxed: an exchange is built when its request arrives and completed
    /// in place, so the decoders keep it behind a pointer while it waits
    /// for its reply, and emitting it moves 8 bytes instead of ~400.
    Exchange(Box<Exchange>),
    /// The connection switched to opaque mode: from here on only
    /// [`MessageKind::Opaque`] chunks follow.
    Opaque { reason: String, dir: Direction, offset: u64, ts: u64 },
    /// Several Redis messages of one read, and the exchanges they complete,
    /// in one event: only [`crate::Session::feed_runs`] emits these
    /// ([`crate::Session::feed`] expands them). See
    /// [`crate::redis::RedisRun`].
    RedisRun(std::sync::Arc<crate::redis::RedisRun>),
}

/// A decoder's way of saying "from here on, treat this connection as opaque".
/// Returned on input it cannot decode, on a frame over [`Limits::max_frame`],
/// and on deliberate hand-overs (TLS accepted, HTTP `Upgrade`/`CONNECT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// Why, for the trace: e.g. `"pg: unknown backend message tag 0x5a"`.
    pub reason: String,
    /// The direction whose bytes caused it.
    pub dir: Direction,
    /// Bytes the decoder had accepted but not emitted as messages, per
    /// direction (index by [`Direction::index`]), in stream order. The
    /// session re-emits them as opaque chunks, so no byte is lost.
    pub pending: [Bytes; 2],
}

/// A protocol decoder: one per connection, fed both directions.
///
/// Contract (checked by the tests and fuzz targets):
/// - feeding the same bytes whole or split at any offset yields the same
///   events (timestamps aside);
/// - a strict prefix of a message is "need more bytes", never an error;
/// - it never panics, and buffers at most [`Limits::max_frame`] bytes plus
///   the caps per direction.
pub trait Decoder: Send {
    /// Feed bytes that travelled in `dir` at time `ts`. Emits zero or more
    /// events into `out`. `Err` switches the connection to opaque mode; the
    /// bytes of this call that were not consumed before the error must be
    /// included in [`Fallback::pending`].
    fn feed(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback>;

    /// Like [`Decoder::feed`], but a decoder with a fast path for floods of
    /// small messages may emit them in compact runs
    /// ([`Event::RedisRun`]) which, expanded, are exactly the events `feed`
    /// emits. By default the same as `feed`.
    fn feed_runs(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback> {
        self.feed(dir, data, ts, out)
    }

    /// The stream in `dir` ended (FIN) at `ts`. Lets read-until-close HTTP
    /// bodies complete and incomplete exchanges be reported as
    /// [`ExchangeStatus::Unanswered`].
    fn eof(&mut self, dir: Direction, ts: u64, out: &mut Vec<Event>);
}
