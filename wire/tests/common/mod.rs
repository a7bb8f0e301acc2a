//! Helpers shared by the wire tests: load captured fixtures, feed them to a
//! [`Session`] whole or split, and compare the events.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use wire::{Direction, Event, Limits, Protocol, Session};

/// One chunk of a captured conversation, as one `read()` returned it.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub dir: Direction,
    pub ts: u64,
    pub data: Vec<u8>,
}

/// `wire/fixtures/<rel>`.
pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// Reads a fixture in the format written by `fixtures/capture.py`.
pub fn load(rel: &str) -> Vec<Chunk> {
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
        let data = bytes[i + 13..i + 13 + len].to_vec();
        chunks.push(Chunk { dir, ts, data });
        i += 13 + len;
    }
    chunks
}

/// Lists the fixture files below `wire/fixtures/<dir>` ending in `.fx`.
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

/// Feeds every chunk as it was captured, then end-of-stream both ways.
pub fn decode(protocol: Protocol, limits: Limits, chunks: &[Chunk]) -> Vec<Event> {
    let mut s = Session::new(protocol, limits);
    let mut out = Vec::new();
    let mut last = 0;
    for c in chunks {
        s.feed(c.dir, &c.data, c.ts, &mut out);
        last = c.ts;
    }
    s.eof(Direction::ToServer, last, &mut out);
    s.eof(Direction::ToClient, last, &mut out);
    out
}

/// Merges consecutive same-direction chunks into one, keeping the first
/// chunk's timestamp: the canonical form a split feed is compared against.
pub fn coalesce(chunks: &[Chunk]) -> Vec<Chunk> {
    let mut merged: Vec<Chunk> = Vec::new();
    for c in chunks {
        match merged.last_mut() {
            Some(m) if m.dir == c.dir => m.data.extend_from_slice(&c.data),
            _ => merged.push(Chunk { dir: c.dir, ts: c.ts, data: c.data.clone() }),
        }
    }
    merged
}

/// The coalesced conversation with the byte at global offset `at` starting a
/// new feed call (same timestamp as its chunk), so that results must not
/// depend on where reads happened to end.
pub fn split_at(coalesced: &[Chunk], mut at: usize) -> Vec<Chunk> {
    let mut out = Vec::with_capacity(coalesced.len() + 1);
    for c in coalesced {
        if at > 0 && at < c.data.len() {
            out.push(Chunk { dir: c.dir, ts: c.ts, data: c.data[..at].to_vec() });
            out.push(Chunk { dir: c.dir, ts: c.ts, data: c.data[at..].to_vec() });
        } else {
            out.push(c.clone());
        }
        at = at.saturating_sub(c.data.len());
        if at == 0 {
            at = usize::MAX / 2; // split done; never split again
        }
    }
    out
}

/// The coalesced conversation fed one byte per call.
pub fn bytewise(coalesced: &[Chunk]) -> Vec<Chunk> {
    coalesced
        .iter()
        .flat_map(|c| c.data.iter().map(move |b| Chunk { dir: c.dir, ts: c.ts, data: vec![*b] }))
        .collect()
}

/// Asserts that decoding `chunks` coalesced, split at every `stride`-th byte
/// offset, and byte by byte all yield the same events. Returns the events.
pub fn assert_split_invariant(protocol: Protocol, limits: Limits, chunks: &[Chunk], stride: usize) -> Vec<Event> {
    let whole = coalesce(chunks);
    let expected = decode(protocol, limits, &whole);
    let total: usize = whole.iter().map(|c| c.data.len()).sum();
    let mut at = 1;
    while at < total {
        let got = decode(protocol, limits, &split_at(&whole, at));
        assert_eq!(got, expected, "events differ when split at byte {at}");
        at += stride.max(1);
    }
    assert_eq!(decode(protocol, limits, &bytewise(&whole)), expected, "events differ when fed byte by byte");
    expected
}
