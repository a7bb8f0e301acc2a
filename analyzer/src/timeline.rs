//! One invocation on its time axis: where its wall time went, split by
//! protocol with overlap counted once, and how many calls were outstanding
//! at once.

use crate::assemble::Closed;

/// An invocation's wall time, partitioned: nanoseconds waiting on each
/// protocol (`CallProtocol::index`) and its own time. While calls of
/// several protocols are outstanding together, that stretch is shared
/// equally among them, so the four parts add up to the wall time.
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
    pub fn wall(&self) -> f64 {
        self.waiting.iter().sum::<f64>() + self.own
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

