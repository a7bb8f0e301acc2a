//! One invocation on its time axis: where its wall time went, split by
//! protocol with overlap counted once, and how many calls were outstanding
//! at once.

use crate::assemble::Closed;

/// An invocation's wall time, partitioned: nanoseconds waiting on each
/// protocol (`CallProtocol::index`) and its own time. While calls of
/// several protocols are outstanding together, that stretch is shared
/// equally among them, so the four parts add up to the wall time
/// (`Closed::wall`, its end less its start; the tests check it against
/// that, not against the parts' own sum).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Breakdown {
    pub waiting: [f64; 3],
    pub own: f64,
    /// Most calls outstanding at once.
    pub max_outstanding: u32,
    /// Mean calls outstanding while at least one was.
    pub mean_outstanding: f64,
    /// Calls that overlap another call of the invocation.
    pub overlapping_calls: u32,
}

impl Breakdown {
    /// The four parts in [`PARTS`] order.
    pub fn parts(&self) -> [f64; 4] {
        [self.waiting[0], self.waiting[1], self.waiting[2], self.own]
    }

    pub fn waiting_total(&self) -> f64 {
        self.waiting.iter().sum()
    }
}

pub fn breakdown(inv: &Closed) -> Breakdown {
    let (start, end) = (inv.start, inv.end.max(inv.start));
    // (time, +1/-1, protocol), calls clipped to the invocation.
    let mut events: Vec<(u64, i32, usize)> = Vec::with_capacity(inv.calls.len() * 2);
    for c in &inv.calls {
        let (s, e) = (c.start.clamp(start, end), c.end.clamp(start, end));
        if e > s {
            events.push((s, 1, c.protocol.index()));
            events.push((e, -1, c.protocol.index()));
        }
    }
    // Ends before starts at the same instant: back-to-back calls do not
    // overlap.
    events.sort_by_key(|&(t, d, p)| (t, d, p));
    let mut b = Breakdown::default();
    let mut active = [0i32; 3];
    let mut outstanding = 0i32;
    let mut busy = 0u64;
    let mut weighted = 0f64;
    let mut t = start;
    for (at, delta, p) in events {
        let dt = (at - t) as f64;
        let k = active.iter().filter(|&&n| n > 0).count();
        if k == 0 {
            b.own += dt;
        } else {
            for (i, n) in active.iter().enumerate() {
                if *n > 0 {
                    b.waiting[i] += dt / k as f64;
                }
            }
            busy += at - t;
            weighted += dt * outstanding as f64;
        }
        t = at;
        active[p] += delta;
        outstanding += delta;
        b.max_outstanding = b.max_outstanding.max(outstanding as u32);
    }
    b.own += (end - t) as f64;
    b.mean_outstanding = if busy > 0 { weighted / busy as f64 } else { 0.0 };
    // A call overlaps another when one starts before another ends.
    let mut latest_end = 0u64;
    let mut overlapping = vec![false; inv.calls.len()];
    let mut last_index: Option<usize> = None;
    for (i, c) in inv.calls.iter().enumerate() {
        if let Some(j) = last_index.filter(|_| c.start < latest_end) {
            overlapping[i] = true;
            overlapping[j] = true;
        }
        if c.end >= latest_end {
            latest_end = c.end;
            last_index = Some(i);
        }
    }
    b.overlapping_calls = overlapping.iter().filter(|&&o| o).count() as u32;
    b
}

/// Calls per protocol.
pub fn calls_per_protocol(inv: &Closed) -> [u64; 3] {
    let mut n = [0u64; 3];
    for c in &inv.calls {
        n[c.protocol.index()] += 1;
    }
    n
}

pub const PARTS: [&str; 4] = ["postgres", "redis", "http", "own"];


#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Call, CallProtocol, Txn};

    const MS: u64 = 1_000_000;

    fn call(protocol: CallProtocol, from_ms: u64, to_ms: u64) -> Call {
        Call {
            start: from_ms * MS,
            end: to_ms * MS,
            protocol,
            conn: 0,
            key: "k".into(),
            identity: String::new(),
            rows: 0,
            bytes_out: 0,
            bytes_in: 0,
            error: None,
            method: None,
            write: false,
            objects: Vec::new(),
            items: Vec::new(),
            txn: Txn::Unknown,
        }
    }

    /// An invocation from `start_ms` to `end_ms` with `calls`, sorted by
    /// start as the assembler hands them on.
    fn invocation(start_ms: u64, end_ms: u64, mut calls: Vec<Call>) -> Closed {
        calls.sort_by_key(|c| (c.start, c.end));
        Closed {
            src: 0,
            id: 1,
            lambda: "l".into(),
            platform: "p".into(),
            start: start_ms * MS,
            end: end_ms * MS,
            status: Some(200),
            answered: true,
            calls,
            session: None,
        }
    }

    /// The parts in ms, after checking they add up to end less start
    /// (within 1%, the bound; here they are exact but for float
    /// rounding).
    fn parts_ms(inv: &Closed) -> [f64; 4] {
        let parts = breakdown(inv).parts();
        let sum: f64 = parts.iter().sum();
        let wall = (inv.end - inv.start) as f64;
        assert!((sum - wall).abs() <= 0.01 * wall.max(1.0), "parts {parts:?} add up to {sum}, wall {wall}");
        parts.map(|ns| ns / MS as f64)
    }

    use CallProtocol::{Http, Postgres, Redis};

    #[test]
    fn sequential_calls_split_exactly() {
        // 100 ms: pg 10..30, redis 30..35 (back to back), http 50..90.
        let inv = invocation(1000, 1100, vec![call(Postgres, 1010, 1030), call(Redis, 1030, 1035), call(Http, 1050, 1090)]);
        assert_eq!(parts_ms(&inv), [20.0, 5.0, 40.0, 35.0]);
    }

    #[test]
    fn overlap_of_one_protocol_counts_once() {
        // Three pg calls overlapping over 10..40: 30 ms of pg, not 60.
        let inv = invocation(0, 50, vec![call(Postgres, 10, 30), call(Postgres, 15, 25), call(Postgres, 20, 40)]);
        assert_eq!(parts_ms(&inv), [30.0, 0.0, 0.0, 20.0]);
        let b = breakdown(&inv);
        assert_eq!((b.max_outstanding, b.overlapping_calls), (3, 3));
    }

    #[test]
    fn overlap_of_protocols_is_shared() {
        // pg 0..40, http 20..60, redis 30..40: 0..20 pg; 20..30 pg+http
        // (5 each); 30..40 all three (10/3 each); 40..60 http; 60..90 own.
        let inv = invocation(0, 90, vec![call(Postgres, 0, 40), call(Http, 20, 60), call(Redis, 30, 40)]);
        let [pg, redis, http, own] = parts_ms(&inv);
        let third = 10.0 / 3.0;
        assert!((pg - (25.0 + third)).abs() < 1e-9, "{pg}");
        assert!((redis - third).abs() < 1e-9, "{redis}");
        assert!((http - (25.0 + third)).abs() < 1e-9, "{http}");
        assert_eq!(own, 30.0);
    }

    #[test]
    fn calls_outside_the_invocation_are_clipped() {
        // A call that began before the invocation (a pooled connection's
        // late answer) and one that outlived it: only the inside counts.
        let inv = invocation(100, 200, vec![call(Redis, 90, 110), call(Postgres, 150, 260), call(Http, 300, 310)]);
        assert_eq!(parts_ms(&inv), [50.0, 10.0, 0.0, 40.0]);
    }

    #[test]
    fn no_calls_and_zero_wall() {
        assert_eq!(parts_ms(&invocation(5, 25, vec![])), [0.0, 0.0, 0.0, 20.0]);
        assert_eq!(parts_ms(&invocation(5, 5, vec![call(Postgres, 5, 5)])), [0.0; 4]);
    }
}
