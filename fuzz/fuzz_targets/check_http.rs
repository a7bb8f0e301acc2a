//! Input format and invariants of the HTTP fuzz target (`fuzz_http.rs`),
//! shared with the regression test `wire/tests/http_regressions.rs`. The
//! decoder is driven through a `Session`, and invariants are checked, not
//! only the absence of panics.
//!
//! Input layout: byte 0 picks the limits, bytes 1..3 the split point (a
//! fraction of the total), then segments `[dir: u8 (bit 0)] [len: u8]
//! [len bytes]` form a two-direction conversation (consecutive segments in
//! one direction are merged, as one read).
//!
//! Checked:
//! - decoding whole vs. with one read split at the chosen point gives the
//!   same events up to a switch to opaque mode, and the same opaque bytes
//!   per direction after it;
//! - every fed byte is in exactly one message, in order: message offsets
//!   are contiguous per direction and end at the bytes fed;
//! - no stored prefix exceeds its cap, no body exceeds its message, and
//!   timestamps are ordered.
//!
//! Depends on `wire` and std only, so both sides can include it.
use wire::{Direction, Event, Limits, MessageKind, Protocol, Session};

/// One read: consecutive same-direction segments merged.
pub struct Chunk {
    pub dir: Direction,
    pub ts: u64,
    pub data: Vec<u8>,
}

/// Decodes the input layout: the limits, the split fraction (of 65536) and
/// the conversation. `None` when the input is too short for the header.
pub fn parse(data: &[u8]) -> Option<(Limits, usize, Vec<Chunk>)> {
    let (&sel, rest) = data.split_first()?;
    let limits = match sel % 4 {
        0 => Limits::default(),
        1 => Limits { max_frame: 256, request_cap: 64, response_cap: 32 },
        2 => Limits { max_frame: 64 << 10, request_cap: 0, response_cap: 16 },
        _ => Limits { max_frame: 40, request_cap: 1 << 20, response_cap: 1 << 20 },
    };
    let split = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]) as usize;
    let mut rest = rest.get(2..)?;
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut ts = 0;
    while rest.len() >= 2 {
        let dir = if rest[0] & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let len = (rest[1] as usize).min(rest.len() - 2);
        let seg = &rest[2..2 + len];
        rest = &rest[2 + len..];
        match chunks.last_mut() {
            Some(c) if c.dir == dir => c.data.extend_from_slice(seg),
            _ => {
                ts += 7;
                chunks.push(Chunk { dir, ts, data: seg.to_vec() });
            }
        }
    }
    Some((limits, split, chunks))
}

/// Feeds the conversation (with the read holding global byte `split_at`
/// split there into two feed calls), then end-of-stream both ways.
fn run(limits: Limits, chunks: &[Chunk], split_at: Option<usize>) -> Vec<Event> {
    let mut s = Session::new(Protocol::Http, limits);
    let mut out = Vec::new();
    let mut at = split_at.unwrap_or(usize::MAX);
    for c in chunks {
        if at > 0 && at < c.data.len() {
            s.feed(c.dir, &c.data[..at], c.ts, &mut out);
            s.feed(c.dir, &c.data[at..], c.ts, &mut out);
            at = usize::MAX;
        } else {
            s.feed(c.dir, &c.data, c.ts, &mut out);
            at = at.saturating_sub(c.data.len());
            if at == 0 {
                at = usize::MAX;
            }
        }
    }
    s.eof(Direction::ToServer, 1 << 40, &mut out);
    s.eof(Direction::ToClient, 1 << 40, &mut out);
    out
}

/// Opaque bytes of one direction after the switch: their total length, and
/// their concatenation unless a chunk was truncated by the cap (the session
/// caps each chunk, so prefixes depend on how reads were split).
#[derive(Debug, PartialEq, Default)]
struct OpaqueTail {
    len: u64,
    bytes: Option<Vec<u8>>,
}

/// Events up to the switch to opaque mode, then the opaque tail per direction.
fn normalize(mut events: Vec<Event>) -> (Vec<Event>, [OpaqueTail; 2]) {
    let at = events.iter().position(|e| matches!(e, Event::Opaque { .. })).map_or(events.len(), |p| p + 1);
    let rest = events.split_off(at);
    let mut tails = [OpaqueTail { len: 0, bytes: Some(Vec::new()) }, OpaqueTail { len: 0, bytes: Some(Vec::new()) }];
    for e in rest {
        if let Event::Message(m) = e {
            assert_eq!(m.kind, MessageKind::Opaque, "only opaque messages after the switch");
            let t = &mut tails[m.dir.index()];
            t.len += m.raw.len;
            match (&mut t.bytes, m.raw.is_truncated()) {
                (Some(b), false) => b.extend_from_slice(&m.raw.prefix),
                _ => t.bytes = None,
            }
        }
    }
    (events, tails)
}

/// Byte accounting, caps and timestamp order of one decode.
fn check_events(limits: Limits, chunks: &[Chunk], events: &[Event]) {
    let mut fed = [0u64; 2];
    for c in chunks {
        fed[c.dir.index()] += c.data.len() as u64;
    }
    let mut next = [0u64; 2];
    for e in events {
        match e {
            Event::Message(m) => {
                let i = m.dir.index();
                assert_eq!(m.offset, next[i], "messages must be contiguous");
                next[i] += m.raw.len;
                assert!(m.raw.prefix.len() as u64 <= m.raw.len);
                assert!(m.raw.prefix.len() <= limits.cap(m.dir));
                assert_eq!(m.raw.hash.is_some(), m.raw.is_truncated());
                assert!(m.first_ts <= m.last_ts);
                if let MessageKind::Http(h) = &m.kind {
                    assert!(h.body().len <= m.raw.len);
                    assert!(h.body().prefix.len() <= limits.cap(m.dir));
                }
            }
            Event::Exchange(x) => {
                assert!(x.request_bytes <= fed[0] && x.response_bytes <= fed[1]);
                assert!(x.timings.request_first <= x.timings.request_last);
                if let (Some(a), Some(b)) = (x.timings.response_first, x.timings.response_last) {
                    assert!(a <= b);
                }
            }
            Event::Opaque { offset, dir, .. } => assert!(*offset <= fed[dir.index()]),
            Event::RedisRun(_) => panic!("an HTTP session emitted a Redis run"),
        }
    }
    assert_eq!(next, fed, "every byte fed must be in exactly one message");
}

/// Every invariant for `chunks` decoded whole vs. split at global byte `at`.
pub fn check_split(limits: Limits, chunks: &[Chunk], at: usize) {
    let whole = run(limits, chunks, None);
    check_events(limits, chunks, &whole);
    let parts = run(limits, chunks, Some(at));
    check_events(limits, chunks, &parts);
    let (whole_events, whole_tails) = normalize(whole);
    let (part_events, part_tails) = normalize(parts);
    assert_eq!(part_events, whole_events, "split at {at} changed the events");
    for (p, w) in part_tails.iter().zip(&whole_tails) {
        assert_eq!(p.len, w.len, "split at {at} changed the opaque length");
        if let (Some(p), Some(w)) = (&p.bytes, &w.bytes) {
            assert_eq!(p, w, "split at {at} changed the opaque bytes");
        }
    }
}

/// The fuzz target: parses `data` and checks every invariant at the split
/// point it picks. Panics when one breaks.
pub fn check(data: &[u8]) {
    let Some((limits, split, chunks)) = parse(data) else { return };
    let total: usize = chunks.iter().map(|c| c.data.len()).sum();
    if total == 0 {
        return;
    }
    check_split(limits, &chunks, split * total / 65536);
}
