//! Trace write/read throughput and size, on one core.
//!
//! `cargo bench -p oltrace-format --bench trace_io` (add `-- --records N`).
//! For each mix: records/s and MB/s (uncompressed record bytes) writing to
//! memory and reading back, bytes per record on disk, and for the
//! small-HTTP mix bytes per exchange (three records: request, response,
//! exchange), the figure compared with a pcap of the same traffic.

use format::synth::{Mix, Synth, SynthOptions};
use format::{Header, Reader, Record, Writer, WriterOptions};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn run(mix: Mix, n: usize, level: i32, rounds: usize) {
    let records: Vec<Record> = Synth::new(SynthOptions { mix, ..Default::default() }).take(n).collect();
    let header = Header::new("bench", "bench");
    let opts = WriterOptions { zstd_level: level, ..Default::default() };
    let (mut w_rates, mut r_rates) = (vec![], vec![]);
    let mut file = Vec::new();
    let mut raw = 0;
    for round in 0..=rounds {
        let start = Instant::now();
        let mut w = Writer::new(Vec::with_capacity(n * 64), &header, opts).unwrap();
        for r in &records {
            w.write(r).unwrap();
        }
        raw = w.stats().raw_bytes;
        file = w.finish().unwrap();
        let wt = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut count = 0;
        for item in Reader::new(&file[..]).unwrap() {
            item.unwrap();
            count += 1;
        }
        let rt = start.elapsed().as_secs_f64();
        assert_eq!(count, n);
        if round > 0 {
            // round 0 warms up
            w_rates.push(n as f64 / wt);
            r_rates.push(n as f64 / rt);
        }
    }
    let (w, r) = (median(w_rates), median(r_rates));
    let raw_per = raw as f64 / n as f64;
    let per = file.len() as f64 / n as f64;
    println!(
        "{:<11} zstd {level:>2}: write {:>5.2} M rec/s ({:>5.0} MB/s)  read {:>5.2} M rec/s ({:>5.0} MB/s)  {:>6.1} B/record on disk ({raw_per:.0} raw){}",
        format!("{mix:?}"),
        w / 1e6,
        w * raw_per / 1e6,
        r / 1e6,
        r * raw_per / 1e6,
        per,
        if mix == Mix::SmallHttp { format!("  {:.1} B/exchange", per * 3.0) } else { String::new() }
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args.iter().position(|a| a == "--records").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(300_000);
    let levels: Vec<i32> = match args.iter().position(|a| a == "--level").and_then(|i| args.get(i + 1)) {
        Some(l) => vec![l.parse().expect("--level takes a number")],
        None => vec![1, 3, 9],
    };
    println!("trace_io: {n} records per run, median of 5 runs after a warm-up, one thread");
    for level in levels {
        run(Mix::Serverless, n, level, 5);
        run(Mix::SmallHttp, n, level, 5);
    }
}
