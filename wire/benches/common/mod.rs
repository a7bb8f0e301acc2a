//! A small bench harness: runs a closure over a fixed input until enough time
//! has passed, and prints MB/s as the median of several rounds. Plain
//! `harness = false` benches keep `cargo bench` free of heavy dependencies.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Runs `f` (which processes `bytes` bytes per call) for `rounds` rounds of
/// about `round` each after a warm-up, prints and returns the median MB/s.
pub fn throughput(name: &str, bytes: usize, mut f: impl FnMut()) -> f64 {
    let round = Duration::from_millis(400);
    let rounds = 7;
    let warm = Instant::now();
    while warm.elapsed() < round {
        f();
    }
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let mut iters = 0u64;
        while start.elapsed() < round {
            f();
            iters += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        rates.push(bytes as f64 * iters as f64 / secs / 1e6);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = rates[rounds / 2];
    println!("{name:<40} {median:>10.1} MB/s  (median of {rounds}, min {:.1}, max {:.1})", rates[0], rates[rounds - 1]);
    median
}
