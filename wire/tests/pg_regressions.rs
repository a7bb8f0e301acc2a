//! Regression inputs for the PostgreSQL decoder, checked with the fuzz
//! target's invariants (see fuzz/fuzz_targets/fuzz_pg.rs): byte accounting
//! per direction, and split invariance up to any fallback. Inputs found by
//! the fuzzer go here as `(name, bytes)` in the fuzz input format.
use wire::{Direction, Event, Limits, Protocol, Session};

fn records(data: &[u8]) -> Vec<(Direction, Vec<u8>)> {
    let mut out: Vec<(Direction, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let h = data[i];
        i += 1;
        let dir = if h & 0x80 != 0 { Direction::ToClient } else { Direction::ToServer };
        let n = ((h & 0x7f) as usize).min(data.len() - i);
        let chunk = &data[i..i + n];
        i += n;
        match out.last_mut() {
            Some((d, v)) if *d == dir => v.extend_from_slice(chunk),
            _ => out.push((dir, chunk.to_vec())),
        }
    }
    out
}

fn run(limits: Limits, conv: &[(Direction, Vec<u8>)]) -> Vec<Event> {
    let mut s = Session::new(Protocol::Postgres, limits);
    let mut out = Vec::new();
    for (d, v) in conv {
        s.feed(*d, v, 0, &mut out);
    }
    s.eof(Direction::ToServer, 1, &mut out);
    s.eof(Direction::ToClient, 1, &mut out);
    out
}

fn upto_fallback(ev: &[Event]) -> &[Event] {
    match ev.iter().position(|e| matches!(e, Event::Opaque { .. })) {
        Some(n) => &ev[..=n],
        None => ev,
    }
}

fn accounted(conv: &[(Direction, Vec<u8>)], ev: &[Event]) {
    for dir in [Direction::ToServer, Direction::ToClient] {
        let fed: u64 = conv.iter().filter(|c| c.0 == dir).map(|c| c.1.len() as u64).sum();
        let mut next = 0;
        for e in ev {
            if let Event::Message(m) = e {
                if m.dir == dir {
                    assert_eq!(m.offset, next);
                    next += m.raw.len;
                }
            }
        }
        assert_eq!(next, fed, "{dir:?}");
    }
}

/// Every invariant at every split point, with both limit sets.
fn check(input: &[u8]) {
    let conv = records(input);
    for limits in [Limits::default(), Limits { max_frame: 300, request_cap: 40, response_cap: 20 }] {
        let whole = run(limits, &conv);
        accounted(&conv, &whole);
        let total: usize = conv.iter().map(|c| c.1.len()).sum();
        for at0 in 1..total {
            let mut at = at0;
            let mut split = Vec::new();
            for (d, v) in &conv {
                if at > 0 && at < v.len() {
                    split.push((*d, v[..at].to_vec()));
                    split.push((*d, v[at..].to_vec()));
                } else {
                    split.push((*d, v.clone()));
                }
                at = if at >= v.len() { at - v.len() } else { usize::MAX / 2 };
            }
            let parts = run(limits, &split);
            accounted(&conv, &parts);
            assert!(upto_fallback(&parts) == upto_fallback(&whole), "split at {at0}");
        }
    }
}

fn rec(server: bool, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in b.chunks(127) {
        out.push(if server { 0x80 } else { 0 } | c.len() as u8);
        out.extend_from_slice(c);
    }
    out
}

const STARTUP: &[u8] = b"\0\0\0\x0d\0\x03\0\0u\0x\0\0";

#[test]
fn run_cut_by_a_fallback_in_the_other_direction() {
    // A DataRow run with a row half received, then the client sends garbage:
    // the run (with its partial row) is emitted before the hand-over.
    let mut rows = Vec::new();
    for _ in 0..12 {
        rows.extend_from_slice(b"D\0\0\0\x0a\0\x01\0\0\0\x00");
    }
    rows.extend_from_slice(b"D\0\0\0\x40\0\x01");
    let input = [rec(false, STARTUP), rec(false, b"Q\0\0\0\x05\0"), rec(true, &rows), rec(false, b"\xff\0\0\0\x04")].concat();
    check(&input);
}

#[test]
fn eof_inside_a_skipped_row_and_inside_a_header() {
    let mut rows = Vec::new();
    for _ in 0..11 {
        rows.extend_from_slice(b"D\0\0\0\x0a\0\x01\0\0\0\x00");
    }
    rows.extend_from_slice(b"D\0\0\x01\0\0\x01\0\0");
    check(&[rec(false, STARTUP), rec(false, b"Q\0\0\0\x05\0"), rec(true, &rows)].concat());
    check(&[rec(false, STARTUP), rec(false, b"Q\0\0"), rec(true, b"T\0")].concat());
}

#[test]
fn copy_data_both_ways_with_tiny_caps() {
    let d = b"d\0\0\0\x08abcd".repeat(9);
    check(&[rec(false, STARTUP), rec(false, &d), rec(true, &d), rec(false, b"c\0\0\0\x04"), rec(true, b"c\0\0\0\x04Z\0\0\0\x05I")].concat());
}
