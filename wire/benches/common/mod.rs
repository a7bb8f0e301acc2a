//! A small bench harness: runs a closure over a fixed input until enough time
//! has passed, and prints MB/s as the median of several rounds. Plain
//! `harness = false` benches keep `cargo bench` free of heavy dependencies.
//!
//! Rates are per second of this thread's CPU time (from
//! `/proc/thread-self/schedstat`, in nanoseconds), with wall-clock rates
//! beside them: on the shared 2-core machine other builds take the CPU away
//! for long stretches, which wall time counts and CPU time does not. (Cache
//! and memory-bandwidth contention still show in both.) Where schedstat is
//! missing, wall time is used for both.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// This thread's CPU time so far, if the kernel reports it.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `f` (which processes `bytes` bytes per call) for `rounds` rounds of
/// about `round` of CPU time each after a warm-up, prints and returns the
/// median MB/s (per CPU second).
pub fn throughput(name: &str, bytes: usize, mut f: impl FnMut()) -> f64 {
    let round = Duration::from_millis(400);
    let rounds = 7;
    let cpu_or_wall = |wall: Instant| thread_cpu().unwrap_or_else(|| wall.elapsed());
    let origin = Instant::now();
    let warm = cpu_or_wall(origin);
    while cpu_or_wall(origin) - warm < round {
        f();
    }
    let mut rates = Vec::with_capacity(rounds);
    let mut wall_rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let cpu0 = cpu_or_wall(origin);
        let mut iters = 0u64;
        while cpu_or_wall(origin) - cpu0 < round {
            f();
            iters += 1;
        }
        let cpu = (cpu_or_wall(origin) - cpu0).as_secs_f64();
        let wall = start.elapsed().as_secs_f64();
        rates.push(bytes as f64 * iters as f64 / cpu / 1e6);
        wall_rates.push(bytes as f64 * iters as f64 / wall / 1e6);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    wall_rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = rates[rounds / 2];
    println!(
        "{name:<40} {median:>10.1} MB/s  (CPU time, median of {rounds}, min {:.1}, max {:.1}; wall-clock median {:.1})",
        rates[0],
        rates[rounds - 1],
        wall_rates[rounds / 2]
    );
    median
}
