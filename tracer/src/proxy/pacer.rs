//! When the recorder decodes: in the traffic's pauses, not while it is busy
//! (`--defer`).
//!
//! Idle CPU priority alone did not keep decoding out of the traffic's way.
//! On the 2-core VM this was built on, `redis-benchmark -P 16` straight to
//! Redis ran 30% slower while a busy loop ran at `SCHED_IDLE` beside it
//! (5 alternating pairs, medians 800,000 against 560,000 requests per
//! second): idle-priority CPU is not free there, whatever the guest's
//! scheduler says, because the guest's cores share the host's. Holding the
//! recorder until the traffic ended took oltrace from 0.86-0.92 of
//! haproxy's throughput on that load to 1.06-1.11 (docs/recording.md).
//!
//! So, while traffic is busy, the recorder waits and the spool takes the
//! backlog; it decodes once the traffic pauses, and before that only when
//! the backlog reaches its budget (`--defer`, 256 MiB by default) or has
//! waited [`MAX_HOLD`]. Traffic counts as busy while it spools at least
//! [`QUIET_BYTES`] per [`WINDOW`] (about 1.3 MB/s): lighter traffic is
//! decoded as it comes, since decoding it costs next to nothing (the
//! recorder handles 60-200 MB/s of traffic per core).
//!
//! The price: the trace lags behind busy traffic, by up to the budget or
//! [`MAX_HOLD`]. What it lags by is in the spool (`TRACE.spool`), written
//! within 10 ms of the traffic, so a proxy killed meanwhile leaves it for
//! `oltrace recover` (see [`super::spool`]); with `--no-spool` it is lost.

use std::time::{Duration, Instant};

/// Traffic is measured over windows of this length...
pub const WINDOW: Duration = Duration::from_millis(50);
/// ...and is busy while a window spools at least this much.
pub const QUIET_BYTES: u64 = 64 << 10;
/// Decoding waits at most this long for busy traffic to pause.
pub const MAX_HOLD: Duration = Duration::from_secs(30);
/// The default budget: how far decoding may fall behind busy traffic.
pub const DEFAULT_DEFER: u64 = 256 << 20;
/// The largest budget accepted: half the spool's bound
/// ([`super::spool::MAX_BACKLOG`]), so that decoding starts well before
/// the spool is full and traffic would go unrecorded.
pub const MAX_DEFER: u64 = super::spool::MAX_BACKLOG / 2;

/// Decides, from the spool's progress, whether the recorder should wait.
pub struct Pacer {
    /// Budget in bytes; 0 never holds.
    defer: u64,
    /// The current window: when it started and the bytes spooled by then.
    window_start: Instant,
    window_spooled: u64,
    /// Whether the last whole window was busy.
    was_busy: bool,
    /// Since when decoding has been behind (there was something to decode).
    behind_since: Option<Instant>,
}

impl Pacer {
    /// A pacer with a budget of `defer` bytes (0: decode as traffic comes).
    pub fn new(defer: u64, now: Instant) -> Pacer {
        Pacer { defer: defer.min(MAX_DEFER), window_start: now, window_spooled: 0, was_busy: false, behind_since: None }
    }

    /// Whether decoding should wait, given the bytes spooled so far and how
    /// many of them are not decoded yet. Call it every few milliseconds
    /// while holding, and now and then while decoding.
    pub fn hold(&mut self, now: Instant, spooled: u64, backlog: u64) -> bool {
        if self.defer == 0 {
            return false;
        }
        let elapsed = now.saturating_duration_since(self.window_start);
        let in_window = spooled.saturating_sub(self.window_spooled);
        if elapsed >= WINDOW {
            // The rate over the whole stretch since the window opened: a
            // recorder that looked again only after a long decode must not
            // take a second of traffic for a window's worth.
            self.was_busy = in_window as u128 * WINDOW.as_nanos() >= QUIET_BYTES as u128 * elapsed.as_nanos();
            self.window_start = now;
            self.window_spooled = spooled;
        }
        // A burst is busy at once, without waiting for its window to end.
        let busy = self.was_busy || spooled.saturating_sub(self.window_spooled) >= QUIET_BYTES;
        if backlog == 0 {
            self.behind_since = None;
            return true;
        }
        let since = *self.behind_since.get_or_insert(now);
        busy && backlog < self.defer && now.saturating_duration_since(since) < MAX_HOLD
    }

    /// Decoding has caught up with everything spooled.
    pub fn caught_up(&mut self) {
        self.behind_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Drives a pacer through a traffic pattern: every 10 ms, `rate(t)`
    /// bytes are spooled, and if it does not hold, the recorder decodes all
    /// of the backlog. Returns, per step, whether it held.
    fn drive(defer: u64, steps: usize, rate: impl Fn(usize) -> u64) -> Vec<bool> {
        let t0 = Instant::now();
        let mut p = Pacer::new(defer, t0);
        let (mut spooled, mut decoded) = (0u64, 0u64);
        (0..steps)
            .map(|i| {
                spooled += rate(i);
                let held = p.hold(t0 + MS * 10 * (i as u32 + 1), spooled, spooled - decoded);
                if !held {
                    decoded = spooled;
                    p.caught_up();
                }
                held
            })
            .collect()
    }

    #[test]
    fn busy_traffic_is_held_until_it_pauses() {
        // 1 MiB per 10 ms for a second, then nothing.
        let held = drive(DEFAULT_DEFER, 150, |i| if i < 100 { 1 << 20 } else { 0 });
        assert!(held[..100].iter().all(|&h| h), "held while busy: {held:?}");
        let first_decode = held.iter().position(|&h| !h).unwrap();
        // Decoded once a whole window has passed without traffic (at
        // most two windows after the last bytes).
        assert!((104..=109).contains(&first_decode), "decoded {first_decode} steps in");
    }

    #[test]
    fn light_traffic_is_decoded_as_it_comes() {
        // 4 KiB per 10 ms: 0.4 MB/s, under the busy rate.
        let held = drive(DEFAULT_DEFER, 100, |_| 4 << 10);
        assert!(held.iter().all(|&h| !h), "{held:?}");
    }

    #[test]
    fn a_burst_is_busy_before_its_window_ends() {
        let t0 = Instant::now();
        let mut p = Pacer::new(DEFAULT_DEFER, t0);
        assert!(p.hold(t0 + MS, QUIET_BYTES, QUIET_BYTES));
        // Under the busy amount within a window: decode.
        let mut p = Pacer::new(DEFAULT_DEFER, t0);
        assert!(!p.hold(t0 + MS, QUIET_BYTES - 1, QUIET_BYTES - 1));
    }

    #[test]
    fn decoding_starts_at_the_budget_and_stops_just_under_it() {
        let t0 = Instant::now();
        let mut p = Pacer::new(8 << 20, t0);
        let busy = |i: u32| t0 + MS * i;
        assert!(p.hold(busy(1), 1 << 20, 1 << 20));
        assert!(p.hold(busy(2), 7 << 20, 7 << 20));
        assert!(!p.hold(busy(3), 8 << 20, 8 << 20), "at the budget");
        assert!(p.hold(busy(4), 9 << 20, (8 << 20) - 1), "back under it, still busy");
    }

    #[test]
    fn held_traffic_is_decoded_after_max_hold() {
        // Busy and under the budget for ever: 64 KiB per 10 ms.
        let steps = (MAX_HOLD.as_millis() / 10) as usize + 10;
        let held = drive(u64::MAX, steps, |_| QUIET_BYTES);
        let first_decode = held.iter().position(|&h| !h).unwrap();
        assert_eq!(first_decode, (MAX_HOLD.as_millis() / 10) as usize, "after MAX_HOLD, not before");
    }

    #[test]
    fn a_zero_budget_never_holds() {
        let held = drive(0, 50, |_| 1 << 20);
        assert!(held.iter().all(|&h| !h));
    }

    #[test]
    fn the_rate_is_taken_over_the_whole_stretch_since_the_last_look() {
        let t0 = Instant::now();
        let mut p = Pacer::new(DEFAULT_DEFER, t0);
        // 100 KiB over a second: far under the busy rate, though more than
        // a window's busy amount.
        assert!(!p.hold(t0 + Duration::from_secs(1), 100 << 10, 100 << 10));
    }
}
