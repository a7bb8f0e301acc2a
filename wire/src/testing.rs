//! Helpers for testing code built on the codecs: the split-invariance check
//! every decoder passes, usable by other crates (a pcap importer, the
//! replayer, fuzz targets) on their own conversations.
//!
//! A conversation is a list of [`Chunk`]s (what one read returned, in
//! order). [`assert_split_invariant`] decodes it coalesced (consecutive
//! same-direction chunks merged), split at every `stride`-th byte offset,
//! and byte by byte, and compares the results after [`normalize`]: events
//! up to a switch to opaque mode must be identical; after it, only the
//! opaque bytes per direction are compared, since the session chunks those
//! by feed call.

use crate::{Direction, Event, Limits, MessageKind, Protocol, Session};
use std::path::{Path, PathBuf};

/// Bytes one read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub dir: Direction,
    /// When they arrived (the caller's nanoseconds).
    pub ts: u64,
    pub data: Vec<u8>,
}

/// `wire/fixtures/<rel>`: conversations captured from real clients and
/// servers (how: `wire/fixtures/capture.py`).
pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// Reads a fixture (`fixtures/<rel>`) in the format `capture.py` writes:
/// per chunk a direction byte (`C` client, `S` server), a big-endian u64
/// timestamp and u32 length, then the bytes.
pub fn load_fixture(rel: &str) -> Vec<Chunk> {
    let path = fixture_path(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        assert!(i + 13 <= bytes.len(), "{}: torn chunk header at {i}", path.display());
        let dir = match bytes[i] {
            b'C' => Direction::ToServer,
            b'S' => Direction::ToClient,
            other => panic!("{}: bad direction byte {other:#x} at {i}", path.display()),
        };
        let ts = u64::from_be_bytes(bytes[i + 1..i + 9].try_into().unwrap());
        let len = u32::from_be_bytes(bytes[i + 9..i + 13].try_into().unwrap()) as usize;
        assert!(i + 13 + len <= bytes.len(), "{}: torn chunk at {i}", path.display());
        chunks.push(Chunk { dir, ts, data: bytes[i + 13..i + 13 + len].to_vec() });
        i += 13 + len;
    }
    chunks
}

/// The fixtures in `fixtures/<dir>` (names ending in `.fx`), as
/// `<dir>/<name>`, sorted.
pub fn fixtures_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_path(dir))
        .unwrap_or_else(|e| panic!("fixtures/{dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".fx"))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    names.sort();
    names
}

/// Feeds every chunk in order to a new session, then end-of-stream both
/// ways (client first).
pub fn decode(protocol: Protocol, limits: Limits, chunks: &[Chunk]) -> Vec<Event> {
    feed_all(protocol, limits, chunks, Session::feed)
}

/// [`decode`] through [`Session::feed_runs`], with every run expanded in
/// place: what a caller of `feed_runs` can rebuild, which must be exactly
/// what [`decode`] gives.
pub fn decode_runs_expanded(protocol: Protocol, limits: Limits, chunks: &[Chunk]) -> Vec<Event> {
    let raw = feed_all(protocol, limits, chunks, Session::feed_runs);
    let mut out = Vec::with_capacity(raw.len());
    for e in raw {
        match e {
            Event::RedisRun(run) => run.expand(&mut out),
            e => out.push(e),
        }
    }
    out
}

type Feed = fn(&mut Session, Direction, &[u8], u64, &mut Vec<Event>);

fn feed_all(protocol: Protocol, limits: Limits, chunks: &[Chunk], feed: Feed) -> Vec<Event> {
    let mut s = Session::new(protocol, limits);
    let mut out = Vec::new();
    let mut last = 0;
    for c in chunks {
        feed(&mut s, c.dir, &c.data, c.ts, &mut out);
        last = c.ts;
    }
    s.eof(Direction::ToServer, last, &mut out);
    s.eof(Direction::ToClient, last, &mut out);
    out
}

/// Merges consecutive same-direction chunks, keeping the first one's
/// timestamp.
pub fn coalesce(chunks: &[Chunk]) -> Vec<Chunk> {
    let mut merged: Vec<Chunk> = Vec::new();
    for c in chunks {
        match merged.last_mut() {
            Some(m) if m.dir == c.dir => m.data.extend_from_slice(&c.data),
            _ => merged.push(c.clone()),
        }
    }
    merged
}

/// `chunks` with the byte at global offset `at` starting a new chunk (same
/// timestamp).
pub fn split_at(chunks: &[Chunk], at: usize) -> Vec<Chunk> {
    let mut out = Vec::with_capacity(chunks.len() + 1);
    let mut at = Some(at);
    for c in chunks {
        match at {
            Some(a) if a > 0 && a < c.data.len() => {
                out.push(Chunk { data: c.data[..a].to_vec(), ..c.clone() });
                out.push(Chunk { data: c.data[a..].to_vec(), ..c.clone() });
                at = None;
            }
            Some(a) => {
                out.push(c.clone());
                at = a.checked_sub(c.data.len()).filter(|&r| r > 0);
            }
            None => out.push(c.clone()),
        }
    }
    out
}

/// The opaque bytes emitted per direction (index by [`Direction::index`]),
/// concatenated (kept prefixes).
pub fn opaque_bytes(events: &[Event]) -> [Vec<u8>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for e in events {
        if let Event::Message(m) = e {
            if m.kind == MessageKind::Opaque {
                out[m.dir.index()].extend_from_slice(&m.raw.prefix);
            }
        }
    }
    out
}

/// Events up to and including the switch to opaque mode, verbatim; after
/// it, the opaque bytes per direction.
#[derive(Debug, PartialEq)]
pub struct Normalized {
    pub before: Vec<Event>,
    pub after: [Vec<u8>; 2],
}

/// Splits `events` at the switch to opaque mode (see [`Normalized`]).
/// Timestamps are kept: [`split_at`] keeps them, so they must match.
pub fn normalize(events: Vec<Event>) -> Normalized {
    let at = events.iter().position(|e| matches!(e, Event::Opaque { .. })).map_or(events.len(), |p| p + 1);
    let mut before = events;
    let rest = before.split_off(at);
    Normalized { before, after: opaque_bytes(&rest) }
}

/// Panics unless decoding `chunks` coalesced, split at every `stride`-th
/// byte offset, and one byte per feed give the same [`normalize`]d events,
/// and (for protocols with a fast path) unless each of those gives exactly
/// the events of [`decode_runs_expanded`]. Returns the events of the
/// coalesced conversation.
pub fn assert_split_invariant(protocol: Protocol, limits: Limits, chunks: &[Chunk], stride: usize) -> Vec<Event> {
    let run = |chunks: &[Chunk], how: &str| {
        let events = decode(protocol, limits, chunks);
        if protocol == Protocol::Redis {
            assert!(
                events == decode_runs_expanded(protocol, limits, chunks),
                "the fast path (runs, expanded) and the per-message path differ ({how})"
            );
        }
        events
    };
    let whole = coalesce(chunks);
    let expected = run(&whole, "coalesced");
    run(chunks, "as given");
    let norm = normalize(expected.clone());
    let total: usize = whole.iter().map(|c| c.data.len()).sum();
    let mut at = 1;
    while at < total {
        let got = normalize(run(&split_at(&whole, at), &format!("split at byte {at}")));
        assert_eq!(got, norm, "events differ when split at byte {at}");
        at += stride.max(1);
    }
    assert_eq!(normalize(run(&bytewise(&whole), "byte by byte")), norm, "events differ when fed byte by byte");
    expected
}

/// `chunks` fed one byte per call.
pub fn bytewise(chunks: &[Chunk]) -> Vec<Chunk> {
    chunks.iter().flat_map(|c| c.data.iter().map(move |b| Chunk { dir: c.dir, ts: c.ts, data: vec![*b] })).collect()
}
