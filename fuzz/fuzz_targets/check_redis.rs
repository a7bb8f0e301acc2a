//! Input format and invariants of the Redis fuzz target (`fuzz_redis.rs`),
//! shared with the regression test `wire/tests/redis_regressions.rs`. The
//! decoder is driven through `Session`, and invariants are checked, not only
//! "no panic":
//! - every byte fed is in exactly one message (decoded or opaque), and each
//!   direction's message offsets are contiguous;
//! - kept prefixes respect the caps;
//! - the fast path (`Session::feed_runs`, its runs expanded) gives exactly
//!   the events of `Session::feed`;
//! - feeding the conversation coalesced or split at a fuzzer-chosen offset
//!   gives the same events (up to a fallback, whose opaque chunking depends
//!   on the reads by design).
//!
//! Input: byte 0 picks the limits, bytes 1..3 the split offset, then chunks
//! of `[header][len][len bytes]`: header bit 0 = direction.
//!
//! Depends on `wire` and std only, so both sides can include it.
use wire::{Direction, Event, Limits, Protocol, Session};

struct Chunk {
    dir: Direction,
    ts: u64,
    data: Vec<u8>,
}

fn parse(data: &[u8]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut ts = 0;
    while i + 2 <= data.len() {
        let dir = if data[i] & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = data[i + 1] as usize;
        let end = (i + 2 + len).min(data.len());
        ts += 1;
        out.push(Chunk {
            dir,
            ts,
            data: data[i + 2..end].to_vec(),
        });
        i = end;
    }
    out
}

fn coalesce(chunks: &[Chunk]) -> Vec<Chunk> {
    let mut merged: Vec<Chunk> = Vec::new();
    for c in chunks {
        match merged.last_mut() {
            Some(m) if m.dir == c.dir => m.data.extend_from_slice(&c.data),
            _ => merged.push(Chunk {
                dir: c.dir,
                ts: c.ts,
                data: c.data.clone(),
            }),
        }
    }
    merged
}

fn split_at(chunks: &[Chunk], mut at: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    for c in chunks {
        if at > 0 && at < c.data.len() {
            out.push(Chunk {
                dir: c.dir,
                ts: c.ts,
                data: c.data[..at].to_vec(),
            });
            out.push(Chunk {
                dir: c.dir,
                ts: c.ts,
                data: c.data[at..].to_vec(),
            });
            at = usize::MAX / 2;
        } else {
            out.push(Chunk {
                dir: c.dir,
                ts: c.ts,
                data: c.data.clone(),
            });
            at = at.saturating_sub(c.data.len());
            if at == 0 {
                at = usize::MAX / 2;
            }
        }
    }
    out
}

/// Decodes `chunks` (one feed call each, then end-of-stream) and checks the
/// byte accounting, the caps and timestamp order.
fn run(limits: Limits, chunks: &[Chunk]) -> Vec<Event> {
    let mut s = Session::new(Protocol::Redis, limits);
    let mut out = Vec::new();
    let mut fed = [0u64; 2];
    for c in chunks {
        s.feed(c.dir, &c.data, c.ts, &mut out);
        fed[c.dir.index()] += c.data.len() as u64;
    }
    s.eof(Direction::ToServer, 1000, &mut out);
    s.eof(Direction::ToClient, 1000, &mut out);
    // The fast path (`feed_runs`), its runs expanded, gives exactly the
    // same events.
    let mut s = Session::new(Protocol::Redis, limits);
    let mut runs = Vec::new();
    for c in chunks {
        s.feed_runs(c.dir, &c.data, c.ts, &mut runs);
    }
    s.eof(Direction::ToServer, 1000, &mut runs);
    s.eof(Direction::ToClient, 1000, &mut runs);
    let mut expanded = Vec::new();
    for e in runs {
        match e {
            Event::RedisRun(r) => r.expand(&mut expanded),
            e => expanded.push(e),
        }
    }
    assert!(expanded == out, "feed_runs, expanded, differs from feed");
    // Accounting.
    let mut next = [0u64; 2];
    for e in &out {
        if let Event::Message(m) = e {
            let d = m.dir.index();
            assert_eq!(m.offset, next[d], "offsets are contiguous");
            next[d] += m.raw.len;
            assert!(m.raw.prefix.len() as u64 <= m.raw.len);
            assert!(m.raw.prefix.len() <= limits.cap(m.dir), "kept prefix within the cap");
            assert!(m.first_ts <= m.last_ts);
        }
        if let Event::Exchange(x) = e {
            assert!(x.request_bytes > 0);
            assert!(x.timings.request_first <= x.timings.request_last);
        }
    }
    assert_eq!(next, fed, "every byte is in a message");
    out
}

/// The events up to the switch to opaque mode (excluded), and whether
/// there was one.
fn before_fallback(events: &[Event]) -> (&[Event], bool) {
    match events
        .iter()
        .position(|e| matches!(e, Event::Opaque { .. }))
    {
        Some(i) => (&events[..i], true),
        None => (events, false),
    }
}

/// Checks every invariant of the fuzz target and returns the events of the
/// chunks fed as read (empty for an input shorter than its 3-byte header).
/// Panics when an invariant breaks.
pub fn check_events(data: &[u8]) -> Vec<Event> {
    if data.len() < 3 {
        return Vec::new();
    }
    let limits = match data[0] % 4 {
        0 => Limits::default(),
        1 => Limits {
            max_frame: 64,
            request_cap: 16,
            response_cap: 8,
        },
        2 => Limits {
            max_frame: 1024,
            request_cap: 0,
            response_cap: 0,
        },
        _ => Limits {
            max_frame: 300,
            request_cap: 1 << 20,
            response_cap: 40,
        },
    };
    let at = u16::from_le_bytes([data[1], data[2]]) as usize;
    let chunks = parse(&data[3..]);
    let as_read = run(limits, &chunks);
    let whole = coalesce(&chunks);
    let a = run(limits, &whole);
    let b = run(limits, &split_at(&whole, at));
    let (pa, fa) = before_fallback(&a);
    let (pb, fb) = before_fallback(&b);
    assert_eq!(fa, fb, "a fallback happens whole and split alike");
    if fa {
        // Messages completed before the fallback are the same; the split
        // feed can only have fewer (none, in fact: same data, same order).
        assert_eq!(pa, pb);
    } else {
        assert_eq!(a, b);
    }
    as_read
}

/// The fuzz target: [`check_events`] without the events.
pub fn check(data: &[u8]) {
    check_events(data);
}
