//! Inputs the fuzzer (`fuzz/fuzz_targets/fuzz_http.rs`) found, replayed with
//! the same checks: every file in `fuzz/artifacts/fuzz_http/`, plus the
//! minimal cases written down by hand.

mod common;
mod http_support;

use common::{decode, split_at, Chunk};
use http_support::*;
use wire::{Direction, Limits, Protocol};

/// The fuzz target's input layout: limits selector, split fraction, then
/// `[dir] [len] [bytes]` segments.
fn parse(data: &[u8]) -> Option<(Limits, usize, Vec<Chunk>)> {
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

/// Whole vs. split at `at`: same events up to the switch, same opaque
/// length after it; every byte accounted for.
fn check(limits: Limits, chunks: &[Chunk], at: usize) {
    let whole = decode(Protocol::Http, limits, chunks);
    let parts = decode(Protocol::Http, limits, &split_at(chunks, at));
    assert_accounts_for_every_byte(&whole, totals(chunks));
    assert_accounts_for_every_byte(&parts, totals(chunks));
    let (w, p) = (normalize(whole), normalize(parts));
    assert_eq!(p.before, w.before, "split at {at}");
}

#[test]
fn fuzz_artifacts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/artifacts/fuzz_http");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        let data = std::fs::read(e.path()).unwrap();
        let Some((limits, split, chunks)) = parse(&data) else { continue };
        let total: usize = chunks.iter().map(|c| c.data.len()).sum();
        if total > 0 {
            check(limits, &chunks, split * total / 65536);
        }
    }
}

/// crash-b948ea0c: a CONNECT head longer than max_frame (40) whose client
/// bytes were split after 3 bytes: the prefix check saw nothing wrong, the
/// whole feed reported "too big" while the split one reported a syntax error
/// found later. Now the syntax check looks at the same prefix either way and
/// comes first.
#[test]
fn reason_does_not_depend_on_the_split() {
    let limits = Limits { max_frame: 40, request_cap: 1 << 20, response_cap: 1 << 20 };
    for head in [
        &b"CONNECT 127.0.0.1:18080 HTTP/1.1\r\nHost: 127.0.0.1:18081\r\nUser-Agent: curl\r\n\r\n"[..],
        b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaa\x01bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\r",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let chunks = vec![Chunk { dir: Direction::ToServer, ts: 1, data: head.to_vec() }];
        for at in 1..head.len() {
            check(limits, &chunks, at);
        }
    }
}
