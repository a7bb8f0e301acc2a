//! Input format and invariants of the PostgreSQL fuzz target (`fuzz_pg.rs`),
//! shared with the regression test `wire/tests/pg_regressions.rs`.
//!
//! The input is a conversation: byte 0 picks a split point and the decoder
//! flavour, then records of `[dir|len (1 byte)] [len bytes]` (bit 7 =
//! server, low 7 bits = length).
//! Invariants checked, beyond "no panic":
//! - fed whole (coalesced per direction run) or with one record split at a
//!   fuzzer-chosen offset, the events are identical up to any fallback;
//! - per direction, message offsets are contiguous from 0 and raw lengths
//!   add up to exactly the bytes fed (decoded, coalesced, opaque or torn);
//! - no raw prefix exceeds its cap; first_ts <= last_ts.
//!
//! Depends on `wire` and std only, so both sides can include it.
use wire::{Direction, Event, Limits, Protocol, Session};

/// The records after byte 0, consecutive same-direction ones merged.
pub fn records(data: &[u8]) -> Vec<(Direction, Vec<u8>)> {
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

/// The limits byte 0 picks: small limits half the time, so caps and
/// max_frame are exercised.
pub fn limits(ctl: u8) -> Limits {
    if ctl & 1 == 0 {
        Limits::default()
    } else {
        Limits { max_frame: 300, request_cap: 40, response_cap: 20 }
    }
}

/// Feeds the conversation, one feed call per element, then end-of-stream.
pub fn run(limits: Limits, conv: &[(Direction, Vec<u8>)]) -> Vec<Event> {
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

/// Byte accounting per direction, caps and timestamp order of one decode.
pub fn check_accounting(limits: Limits, conv: &[(Direction, Vec<u8>)], ev: &[Event]) {
    for dir in [Direction::ToServer, Direction::ToClient] {
        let fed: u64 = conv.iter().filter(|c| c.0 == dir).map(|c| c.1.len() as u64).sum();
        let mut next = 0u64;
        for e in ev {
            if let Event::Message(m) = e {
                if m.dir == dir {
                    assert_eq!(m.offset, next, "gap or overlap");
                    assert!(m.raw.prefix.len() <= limits.cap(dir));
                    assert!(m.first_ts <= m.last_ts);
                    next += m.raw.len;
                }
            }
        }
        assert_eq!(next, fed, "{dir:?}: bytes lost or invented");
    }
}

/// Splits the direction run holding global byte `at` there, decodes, and
/// checks the accounting and that the events match `whole` (the decode of
/// `conv` as is) up to any fallback.
pub fn check_split(limits: Limits, conv: &[(Direction, Vec<u8>)], whole: &[Event], at0: usize) {
    let mut at = at0;
    let mut split = Vec::with_capacity(conv.len() + 1);
    for (d, v) in conv {
        if at > 0 && at < v.len() {
            split.push((*d, v[..at].to_vec()));
            split.push((*d, v[at..].to_vec()));
        } else {
            split.push((*d, v.clone()));
        }
        at = if at >= v.len() { at - v.len() } else { usize::MAX / 2 };
    }
    let parts = run(limits, &split);
    check_accounting(limits, conv, &parts);
    assert!(upto_fallback(&parts) == upto_fallback(whole), "split at {at0} changed the events");
}

/// The fuzz target: checks every invariant with the limits and the split
/// point byte 0 picks. Panics when one breaks.
pub fn check(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let conv = records(rest);
    let limits = limits(ctl);
    let whole = run(limits, &conv);
    check_accounting(limits, &conv, &whole);

    // Split one direction run at a chosen point.
    let total: usize = conv.iter().map(|c| c.1.len()).sum();
    if total < 2 {
        return;
    }
    check_split(limits, &conv, &whole, (ctl as usize >> 1) * total / 128);
}
