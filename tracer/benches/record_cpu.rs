//! The recorder's own CPU cost per exchange, on one core: what the recorder
//! thread does with the copies of the traffic (decode with `wire`, convert
//! to records, encode, compress and write the trace), without the proxy,
//! the queue or the spool, on captured and synthetic conversations
//! replayed over many connections.
//!
//! For each load it prints three lines: the whole recorder
//! (`tracer::proxy::recorder::record_notes`, writing a real trace file),
//! the same with redaction off (`Rules::off()`, as `--no-redact`), and
//! decoding alone (`wire::Session::feed_runs`, as the recorder feeds),
//! each as MB of traffic per CPU-second and as CPU microseconds per
//! exchange; then what redaction costs (the first two side by side).
//!
//! `RECORD_BENCH=name` runs only the loads whose name contains `name`;
//! `RECORD_BENCH_PART=recorder` (or `noredact`, or `decode`) only that
//! part, for profiling one of them. With `RECORD_BENCH_ITERS=n`, each half runs
//! exactly n times and prints nothing but a count (for `perf stat` or
//! `valgrind --tool=callgrind`, whose counts a busy machine does not skew).

#[path = "../../wire/benches/common/mod.rs"]
mod common;

use bytes::Bytes;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;
use tracer::proxy::recorder::{record_notes, RecorderOptions};
use tracer::proxy::tap::Note;
use wire::testing::{decode, load_fixture, Chunk};
use wire::{Direction, Event, Limits, Protocol, Session};

/// One load: a conversation, repeated on `conns` connections one after
/// the other, with the exchanges one conversation holds.
struct Load {
    name: &'static str,
    protocol: Protocol,
    conversation: Vec<Chunk>,
    conns: u64,
}

impl Load {
    fn bytes(&self) -> usize {
        self.conns as usize * self.conversation.iter().map(|c| c.data.len()).sum::<usize>()
    }

    /// Every note the recorder would get for this load, timestamps rising.
    fn notes(&self) -> Vec<Note> {
        let mut notes = Vec::new();
        let mut ts = 0;
        for conn in 0..self.conns {
            ts += 1000;
            notes.push(Note::Open {
                conn,
                protocol: self.protocol,
                client: "127.0.0.1:40000".into(),
                server: "127.0.0.1:1".into(),
                route: format!("{}:1", self.protocol.name()),
                tls: None,
                ts,
            });
            for c in &self.conversation {
                ts += 1000;
                notes.push(Note::Data { conn, dir: c.dir, data: Bytes::from(c.data.clone()), ts });
            }
            for dir in [Direction::ToServer, Direction::ToClient] {
                notes.push(Note::Eof { conn, dir, ts });
            }
            notes.push(Note::Close { conn, ts, bytes_to_server: 0, bytes_to_client: 0, error: None });
        }
        notes
    }

    /// Exchanges per conversation, as the decoder counts them.
    fn exchanges_per_conversation(&self) -> u64 {
        let events = decode(self.protocol, Limits::default(), &self.conversation);
        events.iter().filter(|e| matches!(e, Event::Exchange(_))).count() as u64
    }
}

fn options(redact: convert::redact::Rules) -> RecorderOptions {
    RecorderOptions {
        queue: 1 << 16,
        redact,
        limits: Limits::default(),
        flush_interval: Duration::from_millis(100),
        defer: 0,
        invocation_routes: HashMap::new(),
        stop_decoding: Default::default(),
        progress: false,
    }
}

/// Small keep-alive HTTP exchanges, one read per message (as
/// `wire/benches/decode_http.rs`); `query` follows the path.
fn http_keepalive(n: usize, query: &str) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for i in 0..n {
        let req = format!(
            "GET /api/v1/items/{i:06}?{query} HTTP/1.1\r\nHost: api.internal:8080\r\nUser-Agent: oltrace-bench/1\r\nAccept: */*\r\n\r\n"
        );
        let body = format!("{{\"id\":{i:06},\"name\":\"widget\",\"ok\":true}}");
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: bench/1\r\n\r\n{body}",
            body.len()
        );
        chunks.push(Chunk { dir: Direction::ToServer, ts: 0, data: req.into_bytes() });
        chunks.push(Chunk { dir: Direction::ToClient, ts: 0, data: resp.into_bytes() });
    }
    chunks
}

fn joined(names: &[&str]) -> Vec<Chunk> {
    names.iter().flat_map(|n| load_fixture(n)).collect()
}

/// [`common::throughput`], or with `RECORD_BENCH_ITERS=n` exactly n runs.
fn measure(name: &str, bytes: usize, mut f: impl FnMut()) -> f64 {
    match std::env::var("RECORD_BENCH_ITERS").ok().and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            for _ in 0..n {
                f();
            }
            println!("{name}: {n} runs of {bytes} bytes");
            f64::NAN
        }
        None => common::throughput(name, bytes, f),
    }
}

fn main() {
    let only = std::env::var("RECORD_BENCH").ok();
    let part = std::env::var("RECORD_BENCH_PART").unwrap_or_default();
    let runs = |name: &str| part.is_empty() || part == name;
    let (run_recorder, run_plain, run_decode) = (runs("recorder"), runs("noredact"), runs("decode"));
    let loads = [
        Load {
            name: "redis GET/SET -P 16 (redis-benchmark)",
            protocol: Protocol::Redis,
            conversation: joined(&["redis/bench-p16-2.fx", "redis/bench-p16-3.fx"]),
            conns: 100,
        },
        Load {
            name: "redis GET/SET unpipelined (redis-benchmark)",
            protocol: Protocol::Redis,
            conversation: joined(&["redis/bench-nopipe-2.fx", "redis/bench-nopipe-3.fx"]),
            conns: 500,
        },
        Load {
            name: "pgbench -S -M prepared",
            protocol: Protocol::Postgres,
            conversation: load_fixture("pg/pgbench_select_prepared.fx"),
            conns: 200,
        },
        Load { name: "pgbench TPC-B -M simple", protocol: Protocol::Postgres, conversation: load_fixture("pg/pgbench_simple.fx"), conns: 200 },
        Load { name: "http keep-alive, small", protocol: Protocol::Http, conversation: http_keepalive(200, "fields=all"), conns: 50 },
        // Every request has a secret to blank: what blanking itself costs.
        Load {
            name: "http keep-alive, small, token in the query",
            protocol: Protocol::Http,
            conversation: http_keepalive(200, "fields=all&access_token=eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo"),
            conns: 50,
        },
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.mp");
    for load in loads.iter().filter(|l| only.as_ref().is_none_or(|o| l.name.contains(o.as_str()))) {
        let exchanges = load.exchanges_per_conversation() * load.conns;
        let notes = load.notes();
        let bytes = load.bytes();
        println!("{}: {} connections, {exchanges} exchanges, {:.1} MB", load.name, load.conns, bytes as f64 / 1e6);
        let per_exchange = |mbs: f64| bytes as f64 / (mbs * 1e6) / exchanges as f64 * 1e6;

        let mut records = 0;
        let mut record = |rules: &convert::redact::Rules| {
            let header = format::Header::new("record_cpu bench", "bench");
            let mut writer = format::Writer::create(&path, &header, format::WriterOptions::default()).expect("trace");
            let summary = record_notes(&mut writer, options(rules.clone()), notes.iter().cloned());
            assert!(summary.error.is_none(), "{:?}", summary.error);
            assert_eq!(summary.exchanges.values().sum::<u64>(), exchanges);
            records = summary.records;
            black_box(writer.finish().expect("finish"));
        };
        let on = convert::redact::Rules::default();
        let whole = if !run_recorder { f64::NAN } else { measure("  recorder (decode, convert, write)", bytes, || record(&on)) };
        let off = convert::redact::Rules::off();
        let plain = if !run_plain { f64::NAN } else { measure("  recorder, redaction off (--no-redact)", bytes, || record(&off)) };
        let decode = if !run_decode { f64::NAN } else { measure("  decode only (Session::feed_runs)", bytes, || {
            let mut out = Vec::with_capacity(64);
            for conn in 0..load.conns {
                let mut s = Session::new(load.protocol, Limits::default());
                for c in &load.conversation {
                    s.feed_runs(c.dir, &c.data, conn, &mut out);
                    out.clear();
                }
                s.eof(Direction::ToServer, 0, &mut out);
                s.eof(Direction::ToClient, 0, &mut out);
                black_box(out.len());
                out.clear();
            }
        }) };
        println!(
            "  per exchange: recorder {:.2} us ({:.2} us without redaction: redaction {:+.1}% of the recorder's CPU), decoding {:.2} us; {:.2} records per exchange, trace {} bytes per exchange",
            per_exchange(whole),
            per_exchange(plain),
            (per_exchange(whole) / per_exchange(plain) - 1.0) * 100.0,
            per_exchange(decode),
            records as f64 / exchanges as f64,
            std::fs::metadata(&path).map(|m| m.len() / exchanges).unwrap_or(0),
        );
    }
}
