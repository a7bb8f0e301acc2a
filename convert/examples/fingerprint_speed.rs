//! Throughput of `convert::fingerprint::fingerprint` on the statements of
//! the PostgreSQL fixtures (psql catalog queries, pgbench TPC-B): MB/s and
//! statements/s, the median of 5 runs.
//!
//!     cargo run --release -p oltrace-convert --example fingerprint_speed

use std::time::Instant;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wire/fixtures/pg");
    let mut sql = Vec::new();
    for name in ["psql.fx", "pgbench_simple.fx", "pgbench_extended.fx", "tokio_postgres.fx"] {
        let b = std::fs::read(dir.join(name)).expect("fixture");
        let mut i = 0;
        while i + 13 <= b.len() {
            let len = u32::from_be_bytes(b[i + 9..i + 13].try_into().unwrap()) as usize;
            let data = &b[i + 13..i + 13 + len];
            // Client Query ('Q') and Parse ('P') messages: the SQL text.
            if b[i] == b'C' && matches!(data.first(), Some(b'Q' | b'P')) {
                let body = &data[5..];
                let body = if data[0] == b'P' { &body[body.iter().position(|&c| c == 0).unwrap_or(0) + 1..] } else { body };
                if let Some(end) = body.iter().position(|&c| c == 0) {
                    sql.push(String::from_utf8_lossy(&body[..end]).into_owned());
                }
            }
            i += 13 + len;
        }
    }
    let bytes: usize = sql.iter().map(String::len).sum();
    let rounds = 2000;
    let mut rates = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut out = 0usize;
        for _ in 0..rounds {
            for s in &sql {
                out += convert::fingerprint::fingerprint(s).len();
            }
        }
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(out);
        rates.push(((bytes * rounds) as f64 / secs / 1e6, (sql.len() * rounds) as f64 / secs));
    }
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mbs, per_s) = rates[2];
    println!("{} statements, {} bytes: {mbs:.0} MB/s, {per_s:.0} statements/s (median of 5)", sql.len(), bytes);
}
