//! Call patterns: each a pure function over one closed invocation's calls
//! (sorted by start), returning a [`Hit`] when the pattern is there. The
//! thresholds are the constants below; docs/analysis.md says why each.

use crate::assemble::Closed;
use crate::call::{Call, CallProtocol, Txn};
use crate::timeline::Breakdown;
use std::collections::HashMap;

const MS: u64 = 1_000_000;

/// N+1: at least this many consecutive calls of one class (Sentry: 5)...
pub const N_PLUS_ONE_MIN_CALLS: usize = 5;
/// ... taking together at least this long (Sentry: 50 ms)...
pub const N_PLUS_ONE_MIN_NS: u64 = 50 * MS;
/// ... or at least this share of the invocation, in percent.
pub const N_PLUS_ONE_MIN_PCT: f64 = 20.0;
/// Repeated calls: the same read this many times in one invocation.
pub const REPEATED_MIN_CALLS: usize = 2;
/// Serial calls: each of the consecutive independent reads takes longer
/// than this (Sentry's consecutive-DB detector: 30 ms)...
pub const SERIAL_MIN_CALL_NS: u64 = 30 * MS;
/// ... and running them in parallel would save at least this (Sentry: 100 ms).
pub const SERIAL_MIN_SAVING_NS: u64 = 100 * MS;
/// Fan-out: at least this many calls outstanding at once.
pub const FAN_OUT_MIN_OUTSTANDING: u32 = 3;
/// Chatty: at least this many round trips in one invocation...
pub const CHATTY_MIN_ROUND_TRIPS: usize = 20;
/// ... of at most this many bytes each on average (request plus response)...
pub const CHATTY_MAX_BYTES_PER_TRIP: u64 = 1024;
/// ... spending at least this share of the wall time waiting, in percent.
pub const CHATTY_MIN_WAITING_PCT: f64 = 50.0;
/// Transaction across a wait: a wait on another service at least this long
/// while a transaction is open.
pub const TXN_WAIT_MIN_NS: u64 = MS;

/// The pattern ids, as in the JSON and in `traces/demo/expected.json`.
pub const IDS: [&str; 6] = ["n_plus_one", "repeated_call", "serial_calls", "fan_out", "chatty", "txn_across_wait"];

/// A pattern found in one invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub pattern: &'static str,
    /// What it costs: the time the fix would save (for fan-out: the time
    /// with that many calls outstanding).
    pub cost_ns: u64,
    /// The call that shows it (its class, or its exact text for repeats).
    pub example: String,
    /// A short account: `10 calls, 64 ms`.
    pub detail: String,
}

/// Every pattern found in `inv`.
pub fn find_all(inv: &Closed, b: &Breakdown) -> Vec<Hit> {
    [n_plus_one(inv), repeated_call(inv), serial_calls(inv), fan_out(inv, b), chatty(inv, b), txn_across_wait(inv)]
        .into_iter()
        .flatten()
        .collect()
}

/// Runs of at least [`N_PLUS_ONE_MIN_CALLS`] consecutive calls of one class
/// after a call of another class, taking [`N_PLUS_ONE_MIN_NS`] or
/// [`N_PLUS_ONE_MIN_PCT`] of the invocation. Saving: all but the longest
/// call, as if the run were one batched call.
pub fn n_plus_one(inv: &Closed) -> Option<Hit> {
    let calls = &inv.calls;
    let mut best: Option<Hit> = None;
    let mut i = 1;
    while i < calls.len() {
        let mut j = i;
        while j < calls.len() && calls[j].key == calls[i].key {
            j += 1;
        }
        let run = &calls[i..j];
        let total: u64 = run.iter().map(Call::duration).sum();
        let share = 100.0 * total as f64 / inv.wall().max(1) as f64;
        if run.len() >= N_PLUS_ONE_MIN_CALLS
            && calls[i - 1].key != calls[i].key
            && (total >= N_PLUS_ONE_MIN_NS || share >= N_PLUS_ONE_MIN_PCT)
        {
            let saving = total - run.iter().map(Call::duration).max().unwrap_or(0);
            if best.as_ref().is_none_or(|b| saving > b.cost_ns) {
                best = Some(Hit {
                    pattern: "n_plus_one",
                    cost_ns: saving,
                    example: run[0].key.to_string(),
                    detail: format!("{} calls after `{}`, {:.1} ms", run.len(), short(&calls[i - 1].key), ms(total)),
                });
            }
        }
        i = j.max(i + 1);
    }
    best
}

/// The same read (same statement and parameters, Redis command and key,
/// or URL) [`REPEATED_MIN_CALLS`] times or more. Saving: every repeat.
pub fn repeated_call(inv: &Closed) -> Option<Hit> {
    let mut seen: HashMap<&str, (usize, u64)> = HashMap::new();
    for c in inv.calls.iter().filter(|c| !c.write && !c.objects.is_empty()) {
        let e = seen.entry(&c.identity).or_default();
        e.0 += 1;
        if e.0 > 1 {
            e.1 += c.duration();
        }
    }
    let (identity, (count, saving)) =
        seen.into_iter().filter(|(_, (n, _))| *n >= REPEATED_MIN_CALLS).max_by_key(|(id, (n, s))| (*s, *n, *id))?;
    Some(Hit { pattern: "repeated_call", cost_ns: saving, example: identity.to_owned(), detail: format!("{count} times") })
}

/// Runs of consecutive reads, one after another (none starts before the
/// one before it ended), each longer than [`SERIAL_MIN_CALL_NS`], not all
/// of one class, that would save [`SERIAL_MIN_SAVING_NS`] run in parallel
/// (all but the longest). The calls' inputs are not checked against the
/// earlier calls' results: a run is "independent" by shape, as in Sentry.
pub fn serial_calls(inv: &Closed) -> Option<Hit> {
    let calls = &inv.calls;
    let ok = |c: &Call| !c.write && c.duration() > SERIAL_MIN_CALL_NS;
    let mut best: Option<Hit> = None;
    let mut i = 0;
    while i < calls.len() {
        if !ok(&calls[i]) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < calls.len() && ok(&calls[j]) && calls[j].start >= calls[j - 1].end {
            j += 1;
        }
        let run = &calls[i..j];
        let total: u64 = run.iter().map(Call::duration).sum();
        let saving = total - run.iter().map(Call::duration).max().unwrap_or(0);
        let mixed = run.iter().any(|c| c.key != run[0].key);
        if run.len() >= 2 && mixed && saving >= SERIAL_MIN_SAVING_NS && best.as_ref().is_none_or(|b| saving > b.cost_ns) {
            best = Some(Hit {
                pattern: "serial_calls",
                cost_ns: saving,
                example: run[0].key.to_string(),
                detail: format!("{} calls in series, {:.1} ms", run.len(), ms(total)),
            });
        }
        i = j;
    }
    best
}

/// [`FAN_OUT_MIN_OUTSTANDING`] or more calls outstanding at once.
pub fn fan_out(inv: &Closed, b: &Breakdown) -> Option<Hit> {
    if b.max_outstanding < FAN_OUT_MIN_OUTSTANDING {
        return None;
    }
    let busy = outstanding_at_least(inv, FAN_OUT_MIN_OUTSTANDING);
    let example = inv.calls.windows(2).find(|w| w[1].start < w[0].end).map(|w| &w[1]);
    Some(Hit {
        pattern: "fan_out",
        cost_ns: busy,
        example: example.map_or_else(String::new, |c| c.key.to_string()),
        detail: format!("{} calls outstanding at most, {:.1} on average", b.max_outstanding, b.mean_outstanding),
    })
}

/// [`CHATTY_MIN_ROUND_TRIPS`] or more small round trips (at most
/// [`CHATTY_MAX_BYTES_PER_TRIP`] each on average) with the invocation
/// waiting [`CHATTY_MIN_WAITING_PCT`] of its time. Saving: the waiting,
/// less one round trip, as if pipelined.
pub fn chatty(inv: &Closed, b: &Breakdown) -> Option<Hit> {
    let n = inv.calls.len();
    if n < CHATTY_MIN_ROUND_TRIPS {
        return None;
    }
    let bytes: u64 = inv.calls.iter().map(|c| c.bytes_in + c.bytes_out).sum();
    let waiting_pct = 100.0 * b.waiting_total() / inv.wall().max(1) as f64;
    if bytes / n as u64 > CHATTY_MAX_BYTES_PER_TRIP || waiting_pct < CHATTY_MIN_WAITING_PCT {
        return None;
    }
    let longest = inv.calls.iter().map(Call::duration).max().unwrap_or(0) as f64;
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    for c in &inv.calls {
        *by_key.entry(&*c.key).or_default() += 1;
    }
    let example = by_key.into_iter().max_by_key(|(k, n)| (*n, *k)).map(|(k, _)| k.to_owned()).unwrap_or_default();
    Some(Hit {
        pattern: "chatty",
        cost_ns: (b.waiting_total() - longest).max(0.0) as u64,
        example,
        detail: format!("{n} round trips of {} bytes on average, {waiting_pct:.0}% waiting", bytes / n as u64),
    })
}

/// A PostgreSQL transaction left open (ReadyForQuery `T`) while the
/// invocation waits on another service (a call of another protocol or on
/// another connection) for [`TXN_WAIT_MIN_NS`] or more. Cost: that wait,
/// during which the transaction's locks are held.
pub fn txn_across_wait(inv: &Closed) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    let mut open: HashMap<u64, (u64, &Call)> = HashMap::new();
    let pg = inv.calls.iter().filter(|c| c.protocol == CallProtocol::Postgres);
    let mut spans: Vec<(u64, u64, u64, &Call)> = Vec::new();
    for c in pg {
        match c.txn {
            Txn::Open => {
                open.entry(c.conn).or_insert((c.end, c));
            }
            Txn::Idle => {
                if let Some((from, first)) = open.remove(&c.conn) {
                    spans.push((c.conn, from, c.start, first));
                }
            }
            Txn::Unknown => {}
        }
    }
    spans.extend(open.into_iter().map(|(conn, (from, first))| (conn, from, inv.end, first)));
    for (conn, from, to, first) in spans {
        let waits = inv.calls.iter().filter(|c| c.protocol != CallProtocol::Postgres || c.conn != conn);
        let waited: u64 = waits.map(|c| c.end.min(to).saturating_sub(c.start.max(from))).sum();
        if waited >= TXN_WAIT_MIN_NS && best.as_ref().is_none_or(|b| waited > b.cost_ns) {
            best = Some(Hit {
                pattern: "txn_across_wait",
                cost_ns: waited,
                example: first.key.to_string(),
                detail: format!("transaction open {:.1} ms, {:.1} ms of it waiting on other services", ms(to - from), ms(waited)),
            });
        }
    }
    best
}

/// Time with at least `n` calls outstanding.
fn outstanding_at_least(inv: &Closed, n: u32) -> u64 {
    let mut events: Vec<(u64, i32)> = inv.calls.iter().flat_map(|c| [(c.start, 1), (c.end, -1)]).collect();
    events.sort();
    let (mut level, mut since, mut total) = (0i32, 0u64, 0u64);
    for (t, d) in events {
        if level >= n as i32 {
            total += t - since;
        }
        level += d;
        since = t;
    }
    total
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(37).collect::<String>())
    } else {
        s.to_owned()
    }
}
