//! Redis decoder throughput on one core, through [`Session`] (as the proxy
//! runs it). MB/s count the bytes of both directions.
//!
//! - `pipelined-P16`: what `redis-benchmark -t get,set -P 16` sends: batches
//!   of 16 `SET key:000000000042 xxx` (`+OK` replies) and 16 `GET` (`$3`
//!   replies), one feed per batch and direction. The target:
//!   at least 500 MB/s. Measured twice: `runs` through `Session::feed_runs`
//!   (plain messages stay in `RedisRun`s: framed, arguments located,
//!   replies paired), `per event` through `Session::feed` (an event per
//!   message and per exchange).
//! - `unpipelined`: the same commands, one feed per message.
//! - `mixed-replies`: LRANGE (10-element arrays), HGETALL under RESP3 (maps),
//!   INCR, errors, pipelined by 16.
//! - `big-values`: 100 GETs of 100 kB values read 64 kB at a time (cut at
//!   the 64 kB response cap).
//! - `fixtures`: every captured fixture, as read.

mod common;

use std::hint::black_box;
use wire::redis::{encode_command, encode_value, RespValue};
use wire::{Direction, Limits, Protocol, Session};

type Chunks = Vec<(Direction, Vec<u8>)>;

fn run(chunks: &Chunks) -> usize {
    run_with(chunks, Session::feed)
}

/// Through [`Session::feed_runs`]: plain commands and replies stay in
/// runs (framed, argument spans found, each reply paired with its
/// command) instead of becoming an event each.
fn run_runs(chunks: &Chunks) -> usize {
    run_with(chunks, Session::feed_runs)
}

type Feed = fn(&mut Session, Direction, &[u8], u64, &mut Vec<wire::Event>);

fn run_with(chunks: &Chunks, feed: Feed) -> usize {
    let mut s = Session::new(Protocol::Redis, Limits::default());
    let mut out = Vec::with_capacity(256);
    let mut n = 0;
    for (i, (dir, data)) in chunks.iter().enumerate() {
        feed(&mut s, *dir, data, i as u64, &mut out);
        n += out.len();
        out.clear();
    }
    s.eof(Direction::ToServer, 0, &mut out);
    s.eof(Direction::ToClient, 0, &mut out);
    assert!(!s.is_opaque());
    n + out.len()
}

fn total(chunks: &Chunks) -> usize {
    chunks.iter().map(|(_, d)| d.len()).sum()
}

/// `redis-benchmark -P 16`-style traffic: `batches` batches of 16 commands.
fn pipelined(batches: usize, per_feed: bool) -> Chunks {
    let mut chunks = Vec::new();
    for b in 0..batches {
        let (mut req, mut resp) = (Vec::new(), Vec::new());
        for i in 0..16 {
            let key = format!("key:{:012}", (b * 16 + i) % 100_000);
            let (c, r) = if b % 2 == 0 {
                (
                    encode_command(&[b"SET", key.as_bytes(), b"xxx"]),
                    b"+OK\r\n".to_vec(),
                )
            } else {
                (
                    encode_command(&[b"GET", key.as_bytes()]),
                    b"$3\r\nxxx\r\n".to_vec(),
                )
            };
            if per_feed {
                chunks.push((Direction::ToServer, c));
                chunks.push((Direction::ToClient, r));
            } else {
                req.extend_from_slice(&c);
                resp.extend_from_slice(&r);
            }
        }
        if !per_feed {
            chunks.push((Direction::ToServer, req));
            chunks.push((Direction::ToClient, resp));
        }
    }
    chunks
}

fn mixed(batches: usize) -> Chunks {
    let hello = encode_command(&[b"HELLO", b"3"]);
    let map = |n: usize| {
        RespValue::Map(
            (0..n)
                .map(|i| {
                    (
                        RespValue::Bulk(format!("field{i}").into()),
                        RespValue::Bulk(format!("value-{i:04}").into()),
                    )
                })
                .collect(),
        )
    };
    let mut chunks = vec![
        (Direction::ToServer, hello),
        (Direction::ToClient, encode_value(&map(7))),
    ];
    for b in 0..batches {
        let (mut req, mut resp) = (Vec::new(), Vec::new());
        for i in 0..16 {
            let key = format!("user:{}", b * 16 + i);
            let (c, r) = match i % 4 {
                0 => (
                    encode_command(&[b"LRANGE", key.as_bytes(), b"0", b"9"]),
                    encode_value(&RespValue::Array(
                        (0..10)
                            .map(|j| RespValue::Bulk(format!("item-{j}").into()))
                            .collect(),
                    )),
                ),
                1 => (
                    encode_command(&[b"HGETALL", key.as_bytes()]),
                    encode_value(&map(5)),
                ),
                2 => (
                    encode_command(&[b"INCR", key.as_bytes()]),
                    encode_value(&RespValue::Integer(i as i64 * 1000)),
                ),
                _ => (
                    encode_command(&[b"INCR", b"notanumber"]),
                    encode_value(&RespValue::Error(
                        "ERR value is not an integer or out of range".into(),
                    )),
                ),
            };
            req.extend_from_slice(&c);
            resp.extend_from_slice(&r);
        }
        chunks.push((Direction::ToServer, req));
        chunks.push((Direction::ToClient, resp));
    }
    chunks
}

fn big_values() -> Chunks {
    let value = vec![b'v'; 100_000];
    let reply = encode_value(&RespValue::Bulk(value.into()));
    let mut chunks = Vec::new();
    for i in 0..100 {
        chunks.push((
            Direction::ToServer,
            encode_command(&[b"GET", format!("big:{i}").as_bytes()]),
        ));
        for piece in reply.chunks(64 << 10) {
            chunks.push((Direction::ToClient, piece.to_vec()));
        }
    }
    chunks
}

fn fixtures() -> Chunks {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/redis");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.retain(|p| p.extension().is_some_and(|e| e == "fx"));
    names.sort();
    let mut chunks = Vec::new();
    // One connection's worth is enough for a session; fixtures are
    // concatenated per file by running them one after another below.
    for p in names {
        let b = std::fs::read(p).unwrap();
        let mut i = 0;
        while i + 13 <= b.len() {
            let dir = if b[i] == b'C' {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            let len = u32::from_be_bytes(b[i + 9..i + 13].try_into().unwrap()) as usize;
            chunks.push((dir, b[i + 13..i + 13 + len].to_vec()));
            i += 13 + len;
        }
        chunks.push((Direction::ToServer, Vec::new())); // marks a connection end
    }
    chunks
}

fn run_fixtures(chunks: &Chunks) -> usize {
    let mut n = 0;
    for conn in chunks.split(|(d, c)| *d == Direction::ToServer && c.is_empty()) {
        n += run(&conn.to_vec());
    }
    n
}

fn main() {
    let p16 = pipelined(625, false); // 10 000 commands
    if let Some(n) = std::env::var("REDIS_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // Fixed work, for `perf stat` (cycles are steadier than wall time on
        // a loaded machine).
        let runs = std::env::var_os("REDIS_BENCH_RUNS").is_some();
        for _ in 0..n {
            black_box(if runs { run_runs(black_box(&p16)) } else { run(black_box(&p16)) });
        }
        println!("{} MB processed", n * total(&p16) / 1_000_000);
        return;
    }
    let one = pipelined(625, true);
    let mixed = mixed(200);
    let big = big_values();
    let fx = fixtures();
    println!("redis decoder, one core, bytes of both directions:");
    common::throughput("redis pipelined-P16 (GET/SET), runs", total(&p16), || {
        black_box(run_runs(black_box(&p16)));
    });
    common::throughput("redis pipelined-P16 (GET/SET), per event", total(&p16), || {
        black_box(run(black_box(&p16)));
    });
    if std::env::var_os("REDIS_BENCH_P16_ONLY").is_some() {
        return;
    }
    common::throughput("redis unpipelined (GET/SET)", total(&one), || {
        black_box(run(black_box(&one)));
    });
    common::throughput("redis mixed-replies (RESP3, P16), runs", total(&mixed), || {
        black_box(run_runs(black_box(&mixed)));
    });
    common::throughput("redis mixed-replies (RESP3, P16)", total(&mixed), || {
        black_box(run(black_box(&mixed)));
    });
    common::throughput("redis big-values (100 kB GETs)", total(&big), || {
        black_box(run(black_box(&big)));
    });
    common::throughput("redis fixtures", total(&fx), || {
        black_box(run_fixtures(black_box(&fx)));
    });
}
