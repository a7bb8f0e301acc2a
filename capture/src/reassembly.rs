//! [`Reassembler`]: TCP segments in, per-connection byte streams out,
//! sans-IO (time is an argument, nothing reads a clock or a socket).
//!
//! Each connection is keyed by its 4-tuple and has two halves, one per
//! direction. A half maps sequence numbers to 64-bit stream offsets (so
//! wrap-around at 2^32 needs no special case) and delivers bytes in order:
//!
//! - **In order**: delivered at once as [`StreamEvent::Data`].
//! - **Out of order**: buffered until the hole before it fills. Buffered
//!   bytes are bounded per direction ([`Limits::per_direction`]) and in
//!   total ([`Limits::total`]); past a bound the first hole is given up.
//! - **Retransmitted**: bytes before the delivered point are dropped.
//! - **Overlapping**: the first copy wins. Where a later copy of buffered
//!   bytes differs, the differing segment is counted in
//!   [`Counters::conflicts`] (bytes already delivered are not kept, so
//!   they cannot be compared: their copies count as retransmissions).
//! - **Missing** (the capture dropped a segment, or the snap length cut
//!   it): a [`StreamEvent::Gap`] with the exact byte count, emitted when
//!   the peer acknowledges bytes past the hole (the receiver got them, so
//!   no copy will come), when a bound is hit, and when the connection
//!   ends. Bytes after the hole then flow on.
//! - **SYN** opens a connection (its sender is the client); **FIN** ends a
//!   direction once every byte before it is delivered; **RST** or both
//!   FINs close the connection. A SYN with a new initial sequence number on
//!   a 4-tuple in use closes the old connection and opens a new one.
//! - **No SYN seen** (the capture started after the connection opened):
//!   the connection opens at its first segment with payload,
//!   [`StreamEvent::Open`] with `mid_stream: true`, and the server is the
//!   side on a well-known port (see [`Reassembler::new`]).
//! - **Idle** (no segment for [`Limits::idle_ns`]): the connection is taken
//!   as closed, since its FIN or RST may never be seen (the capture missed
//!   it, or the hosts went away), and its state would otherwise stay for
//!   the rest of a long live capture. A later segment on the same 4-tuple
//!   opens a new connection, mid-stream.

use format::Direction;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

/// One TCP segment as a capture holds it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    /// Meaningful when `flags.ack`.
    pub ack: u32,
    pub flags: Flags,
    /// The payload bytes the capture holds.
    pub payload: &'a [u8],
    /// Payload bytes the packet carried but the capture did not keep (its
    /// snap length cut them): they follow `payload`.
    pub missing: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// Why bytes are missing from a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapCause {
    /// The peer acknowledged bytes the capture never held.
    Acknowledged,
    /// Out-of-order bytes waited past a buffering bound.
    Buffering,
    /// The connection ended (or the capture did) with a hole.
    Ended,
    /// The capture's snap length cut the packet.
    Snaplen,
}

impl GapCause {
    pub fn describe(self) -> &'static str {
        match self {
            GapCause::Acknowledged => "the capture missed segments the peer acknowledged",
            GapCause::Buffering => "out-of-order bytes waited past the reassembly buffer's bound",
            GapCause::Ended => "the connection or the capture ended before a missing segment came",
            GapCause::Snaplen => "the capture's snap length cut the packet (capture with -s 0)",
        }
    }
}

/// What the reassembler emits, in stream order per connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    Open { conn: u64, client: SocketAddr, server: SocketAddr, mid_stream: bool, ts: u64 },
    /// `ts`: when the bytes could be delivered (in order); `captured`:
    /// when their segment was captured, earlier than `ts` for bytes that
    /// waited behind a hole. Bytes captured before a gap was found in
    /// either direction were sent before it, whenever they come out.
    Data { conn: u64, dir: Direction, data: Vec<u8>, ts: u64, captured: u64 },
    Gap { conn: u64, dir: Direction, bytes: u64, cause: GapCause, ts: u64 },
    /// No more bytes in `dir` (its FIN was reached).
    Eof { conn: u64, dir: Direction, ts: u64 },
    /// `bytes`: per direction (index by [`Direction::index`]), delivered
    /// plus missing.
    Close { conn: u64, cause: CloseCause, bytes: [u64; 2], ts: u64 },
}

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// Both FINs were reached.
    Fin,
    /// An RST.
    Reset,
    /// A SYN with a new initial sequence number reused the 4-tuple.
    Reused,
    /// No segment for [`Limits::idle_ns`].
    Idle,
    /// The capture ended ([`Reassembler::finish`]).
    CaptureEnded,
}

/// Bounds on what the reassembler holds: buffered out-of-order bytes, and
/// how long a connection with no segment is kept.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub per_direction: usize,
    pub total: usize,
    /// A connection with no segment for this long (in the capture's time)
    /// is closed ([`CloseCause::Idle`]). The default is Zeek's
    /// `tcp_inactivity_timeout`, 5 minutes.
    pub idle_ns: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { per_direction: 4 << 20, total: 256 << 20, idle_ns: 300_000_000_000 }
    }
}

/// Totals over a reassembler's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub segments: u64,
    pub retransmitted_bytes: u64,
    /// Segments whose bytes differed from a copy already buffered.
    pub conflicts: u64,
    pub gaps: u64,
    pub missing_bytes: u64,
    pub connections: u64,
    pub mid_stream: u64,
    /// Connections closed for being idle ([`CloseCause::Idle`]).
    pub idle_closed: u64,
}

pub struct Reassembler {
    conns: HashMap<(SocketAddr, SocketAddr), Conn, TupleHash>,
    next_id: u64,
    limits: Limits,
    server_ports: Vec<u16>,
    buffered: usize,
    /// When idle connections are looked for next (capture time).
    next_sweep: u64,
    pub counters: Counters,
}

struct Conn {
    id: u64,
    client: SocketAddr,
    /// When its last segment was seen.
    last_ts: u64,
    halves: [Half; 2],
    /// The client's initial sequence number, when its SYN was seen.
    isn: Option<u32>,
}

/// Buffered bytes and the capture time of the segment they came in.
struct Piece {
    data: Vec<u8>,
    captured: u64,
}

#[derive(Default)]
struct Half {
    /// The sequence number at stream offset `base_off`, once known.
    base: Option<(u32, u64)>,
    /// Next stream offset to deliver.
    next: u64,
    /// Out-of-order bytes by stream offset, and when their segment was
    /// captured; non-overlapping.
    pending: BTreeMap<u64, Piece>,
    pending_bytes: usize,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    ended: bool,
    missing: u64,
    /// Stream offsets where a snap length cut a segment short: a hole
    /// starting there is reported as [`GapCause::Snaplen`].
    cut: BTreeSet<u64>,
}

impl Half {
    /// The stream offset of `seq`, relative to the delivered point (within
    /// 2 GiB either way, as TCP's window guarantees).
    fn offset_of(&self, seq: u32) -> Option<i64> {
        let (bseq, boff) = self.base?;
        let delta = seq.wrapping_sub(bseq) as i32 as i64;
        Some(boff as i64 + delta)
    }

    /// Re-anchors the sequence mapping at the delivered point, so that
    /// offsets stay within the window of `offset_of`.
    fn rebase(&mut self) {
        if let Some((bseq, boff)) = self.base {
            let seq = bseq.wrapping_add((self.next - boff) as u32);
            self.base = Some((seq, self.next));
        }
    }
}

impl Reassembler {
    /// `server_ports`: ports that mark the server of a connection whose SYN
    /// was not seen (else the lower port is taken as the server's).
    pub fn new(limits: Limits, server_ports: Vec<u16>) -> Reassembler {
        Reassembler { conns: HashMap::default(), next_id: 1, limits, server_ports, buffered: 0, next_sweep: 0, counters: Counters::default() }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Out-of-order bytes buffered now, over every connection.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Takes one segment seen at `ts`; what it completes goes to `out`.
    pub fn push(&mut self, seg: &Segment, ts: u64, out: &mut Vec<StreamEvent>) {
        self.counters.segments += 1;
        self.expire_idle(ts, out);
        let key = if self.conns.contains_key(&(seg.src, seg.dst)) {
            (seg.src, seg.dst)
        } else if self.conns.contains_key(&(seg.dst, seg.src)) {
            (seg.dst, seg.src)
        } else {
            if !self.open(seg, ts, out) {
                return;
            }
            (seg.src, seg.dst)
        };
        // A new SYN from the client with another ISN: the 4-tuple is reused.
        if seg.flags.syn && !seg.flags.ack && self.conns[&key].isn != Some(seg.seq) {
            self.close(key, CloseCause::Reused, ts, out);
            if !self.open(seg, ts, out) {
                return;
            }
        }
        let key = if self.conns.contains_key(&(seg.src, seg.dst)) { (seg.src, seg.dst) } else { (seg.dst, seg.src) };
        let Some(conn) = self.conns.get_mut(&key) else { return };
        conn.last_ts = conn.last_ts.max(ts);
        let dir = if seg.src == conn.client { Direction::ToServer } else { Direction::ToClient };
        let id = conn.id;
        // The peer's ACK first: it received everything before it, so what
        // the peer sent that waits behind a hole was sent before this
        // segment, and comes out before this segment's bytes.
        if seg.flags.ack {
            let peer = &mut conn.halves[dir.reverse().index()];
            if let Some(acked) = peer.offset_of(seg.ack).filter(|a| *a > 0) {
                // A FIN takes a sequence number too, carrying no byte.
                let acked = peer.fin.map_or(acked as u64, |f| f.min(acked as u64));
                self.buffered -= peer.pending_bytes;
                give_up_until(id, dir.reverse(), peer, acked, GapCause::Acknowledged, ts, &mut self.counters, out);
                self.buffered += peer.pending_bytes;
            }
        }
        let half = &mut conn.halves[dir.index()];
        if seg.flags.syn {
            // The SYN takes one sequence number: data starts after it.
            if half.base.is_none() {
                half.base = Some((seg.seq.wrapping_add(1), 0));
            }
        } else if half.base.is_none() {
            half.base = Some((seg.seq, 0));
        }
        let start = half.offset_of(if seg.flags.syn { seg.seq.wrapping_add(1) } else { seg.seq }).unwrap_or(0);
        let mut held = seg.payload;
        // Bytes from before the first one seen of a connection picked up
        // mid-stream: too late, as a retransmission.
        let start = if start < 0 {
            let skip = (start.unsigned_abs() as usize).min(held.len());
            self.counters.retransmitted_bytes += skip as u64;
            held = &held[skip..];
            0
        } else {
            start as u64
        };
        let end = start + held.len() as u64 + u64::from(seg.missing);
        self.buffered -= half.pending_bytes;
        insert(half, start, held, ts, &mut self.counters);
        if seg.missing > 0 {
            // Cut by the snap length: a hole whose gap says so.
            half.cut.insert(start + held.len() as u64);
        }
        if seg.flags.fin {
            half.fin.get_or_insert(end);
        }
        deliver(id, dir, half, ts, out);
        self.buffered += half.pending_bytes;
        // Bounds: give up the first hole of this direction.
        let conn = self.conns.get_mut(&key).expect("present");
        let half = &mut conn.halves[dir.index()];
        if half.pending_bytes > self.limits.per_direction || self.buffered > self.limits.total {
            self.buffered -= half.pending_bytes;
            let first = half.pending.keys().next().copied().unwrap_or(half.next);
            give_up_until(id, dir, half, first, GapCause::Buffering, ts, &mut self.counters, out);
            self.buffered += half.pending_bytes;
        }
        let conn = &self.conns[&key];
        if seg.flags.rst {
            self.close(key, CloseCause::Reset, ts, out);
        } else if conn.halves.iter().all(|h| h.ended) {
            self.close(key, CloseCause::Fin, ts, out);
        }
    }

    /// Closes the connections that saw no segment for [`Limits::idle_ns`]
    /// before `now`, oldest first. [`Reassembler::push`] calls it; a live
    /// capture calls it too when no packet comes. It looks at every
    /// connection at most once per tenth of the idle time (and at least a
    /// second apart), so the cost per segment stays flat.
    pub fn expire_idle(&mut self, now: u64, out: &mut Vec<StreamEvent>) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + (self.limits.idle_ns / 10).max(1_000_000_000);
        let mut idle: Vec<_> = self.conns.iter().filter(|(_, c)| now.saturating_sub(c.last_ts) >= self.limits.idle_ns).map(|(k, c)| (c.id, *k)).collect();
        idle.sort();
        for (_, key) in idle {
            self.counters.idle_closed += 1;
            self.close(key, CloseCause::Idle, now, out);
        }
    }

    /// The capture ended at `ts`: every open connection is closed, holes
    /// reported as gaps.
    pub fn finish(&mut self, ts: u64, out: &mut Vec<StreamEvent>) {
        let mut keys: Vec<_> = self.conns.iter().map(|(k, c)| (c.id, *k)).collect();
        keys.sort();
        for (_, key) in keys {
            self.close(key, CloseCause::CaptureEnded, ts, out);
        }
    }

    /// Opens a connection for `seg` if it starts one (a SYN) or carries
    /// payload (picked up mid-stream). False when it is ignored (a bare
    /// ACK, FIN or RST of a connection not known).
    fn open(&mut self, seg: &Segment, ts: u64, out: &mut Vec<StreamEvent>) -> bool {
        let (client, server, mid_stream) = if seg.flags.syn {
            if seg.flags.ack {
                (seg.dst, seg.src, false)
            } else {
                (seg.src, seg.dst, false)
            }
        } else if !seg.payload.is_empty() || seg.missing > 0 {
            let src_server = self.server_ports.contains(&seg.src.port());
            let dst_server = self.server_ports.contains(&seg.dst.port());
            if dst_server || (!src_server && seg.dst.port() <= seg.src.port()) {
                (seg.src, seg.dst, true)
            } else {
                (seg.dst, seg.src, true)
            }
        } else {
            return false;
        };
        let id = self.next_id;
        self.next_id += 1;
        self.counters.connections += 1;
        self.counters.mid_stream += u64::from(mid_stream);
        let isn = (seg.flags.syn && !seg.flags.ack).then_some(seg.seq);
        self.conns.insert((seg.src, seg.dst), Conn { id, client, last_ts: ts, halves: [Half::default(), Half::default()], isn });
        out.push(StreamEvent::Open { conn: id, client, server, mid_stream, ts });
        true
    }

    fn close(&mut self, key: (SocketAddr, SocketAddr), cause: CloseCause, ts: u64, out: &mut Vec<StreamEvent>) {
        let reset = cause == CloseCause::Reset;
        let Some(mut conn) = self.conns.remove(&key) else { return };
        let mut bytes = [0; 2];
        for dir in [Direction::ToServer, Direction::ToClient] {
            let half = &mut conn.halves[dir.index()];
            self.buffered -= half.pending_bytes;
            if !half.ended {
                // Whatever is buffered comes after a hole, which is lost.
                let last = half.pending.iter().next_back().map(|(o, p)| o + p.data.len() as u64).unwrap_or(half.next);
                let last = half.fin.map_or(last, |f| f.max(last));
                give_up_until(conn.id, dir, half, last, GapCause::Ended, ts, &mut self.counters, out);
                deliver(conn.id, dir, half, ts, out);
                if !half.ended && !reset {
                    half.ended = true;
                    out.push(StreamEvent::Eof { conn: conn.id, dir, ts });
                }
            }
            bytes[dir.index()] = half.next;
        }
        out.push(StreamEvent::Close { conn: conn.id, cause, bytes, ts });
    }
}

/// Buffers `data`, captured at `captured`, at stream offset `start`, first
/// copy winning.
fn insert(half: &mut Half, start: u64, data: &[u8], captured: u64, counters: &mut Counters) {
    let mut start = start;
    let mut data = data;
    // Already delivered: a retransmission.
    if start < half.next {
        let skip = ((half.next - start) as usize).min(data.len());
        counters.retransmitted_bytes += skip as u64;
        data = &data[skip..];
        start = half.next;
    }
    if data.is_empty() {
        return;
    }
    let end = start + data.len() as u64;
    let mut conflict = false;
    // Pieces of `data` not already buffered.
    let mut cursor = start;
    let mut pieces = Vec::new();
    let overlapping: Vec<(u64, u64)> = half
        .pending
        .range(..end)
        .filter(|(o, p)| **o + p.data.len() as u64 > start)
        .map(|(o, p)| (*o, *o + p.data.len() as u64))
        .collect();
    for (o, e) in overlapping {
        if o > cursor {
            pieces.push((cursor, o));
        }
        let from = o.max(start);
        let to = e.min(end);
        if from < to {
            let have = &half.pending[&o].data[(from - o) as usize..(to - o) as usize];
            let got = &data[(from - start) as usize..(to - start) as usize];
            if have != got {
                conflict = true;
            }
            counters.retransmitted_bytes += to - from;
        }
        cursor = cursor.max(e);
    }
    if cursor < end {
        pieces.push((cursor, end));
    }
    counters.conflicts += u64::from(conflict);
    for (from, to) in pieces {
        let piece = data[(from - start) as usize..(to - start) as usize].to_vec();
        half.pending_bytes += piece.len();
        half.pending.insert(from, Piece { data: piece, captured });
    }
}

/// Delivers the buffered bytes that are now in order; a FIN reached ends
/// the direction.
fn deliver(conn: u64, dir: Direction, half: &mut Half, ts: u64, out: &mut Vec<StreamEvent>) {
    while let Some(entry) = half.pending.first_entry() {
        let off = *entry.key();
        if off > half.next {
            break;
        }
        let Piece { data, captured } = entry.remove();
        half.pending_bytes -= data.len();
        let skip = (half.next - off) as usize;
        if skip < data.len() {
            half.next = off + data.len() as u64;
            let data = if skip == 0 { data } else { data[skip..].to_vec() };
            out.push(StreamEvent::Data { conn, dir, data, ts, captured });
        }
    }
    half.rebase();
    if let Some(fin) = half.fin {
        if half.next >= fin && !half.ended {
            half.ended = true;
            out.push(StreamEvent::Eof { conn, dir, ts });
        }
    }
}

/// The bytes before `until` will never come: the holes among them become
/// gaps, and what is buffered after them is delivered.
#[allow(clippy::too_many_arguments)]
fn give_up_until(conn: u64, dir: Direction, half: &mut Half, until: u64, cause: GapCause, ts: u64, counters: &mut Counters, out: &mut Vec<StreamEvent>) {
    while half.next < until {
        deliver(conn, dir, half, ts, out);
        if half.next >= until {
            break;
        }
        let hole_end = half.pending.keys().next().copied().unwrap_or(until).min(until);
        if hole_end <= half.next {
            break;
        }
        let len = hole_end - half.next;
        let cause = if half.cut.remove(&half.next) { GapCause::Snaplen } else { cause };
        half.cut = half.cut.split_off(&hole_end);
        counters.gaps += 1;
        counters.missing_bytes += len;
        half.missing += len;
        half.next = hole_end;
        out.push(StreamEvent::Gap { conn, dir, bytes: len, cause, ts });
    }
    deliver(conn, dir, half, ts, out);
}

/// Hashing for the connection table, looked up once or twice per packet:
/// SipHash's resistance to chosen keys costs 5% of an import (perf), and
/// the keys are addresses, so a multiplicative hash is enough (a capture
/// crafted to collide would slow its own import, nothing more).
#[derive(Clone, Copy, Default)]
struct TupleHash;

impl std::hash::BuildHasher for TupleHash {
    type Hasher = TupleHasher;
    fn build_hasher(&self) -> TupleHasher {
        TupleHasher(0)
    }
}

struct TupleHasher(u64);

impl std::hash::Hasher for TupleHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}
