//! PostgreSQL decoding throughput on one core: result sets of many small
//! rows (the issue's >= 1 GB/s target), pgbench-like OLTP traffic, and a
//! captured psql result of 5000 rows. Fed in 64 KiB reads, as a proxy would.
mod common;

use bytes::{BufMut, BytesMut};
use wire::pg::encode;
use wire::{Direction, Event, Limits, Protocol, Session};

fn tagged(buf: &mut BytesMut, tag: u8, body: &[u8]) {
    buf.put_u8(tag);
    buf.put_u32(body.len() as u32 + 4);
    buf.put_slice(body);
}

fn data_row(buf: &mut BytesMut, i: u32) {
    let mut b = BytesMut::new();
    let id = i.to_string();
    let vals: [&[u8]; 3] = [id.as_bytes(), b"42", b"some text"];
    b.put_u16(vals.len() as u16);
    for v in vals {
        b.put_i32(v.len() as i32);
        b.put_slice(v);
    }
    tagged(buf, b'D', &b);
}

fn row_description(buf: &mut BytesMut) {
    let mut b = BytesMut::new();
    b.put_u16(3);
    for (name, oid) in [("id", 23u32), ("n", 23), ("t", 25)] {
        b.put_slice(name.as_bytes());
        b.put_u8(0);
        b.put_u32(0);
        b.put_i16(0);
        b.put_u32(oid);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i16(0);
    }
    tagged(buf, b'T', &b);
}

/// Client and server streams: `queries` simple queries of `rows` rows each.
fn many_rows(queries: usize, rows: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut c = BytesMut::new();
    encode::startup(&mut c, &[("user", "bench"), ("database", "test")]);
    let mut s = BytesMut::new();
    tagged(&mut s, b'R', &0u32.to_be_bytes());
    tagged(&mut s, b'Z', b"I");
    let mut server = vec![s.to_vec()];
    for _ in 0..queries {
        encode::query(&mut c, b"select id, n, t from t");
        let mut s = BytesMut::new();
        row_description(&mut s);
        for i in 0..rows {
            data_row(&mut s, i);
        }
        tagged(&mut s, b'C', format!("SELECT {rows}\0").as_bytes());
        tagged(&mut s, b'Z', b"I");
        server.push(s.to_vec());
    }
    (c.to_vec(), server)
}

fn run(client: &[Vec<u8>], server: &[Vec<u8>]) -> usize {
    let mut s = Session::new(Protocol::Postgres, Limits::default());
    let mut out: Vec<Event> = Vec::new();
    let mut n = 0;
    for (i, (c, r)) in client.iter().zip(server).enumerate() {
        for chunk in c.chunks(65536) {
            s.feed(Direction::ToServer, chunk, i as u64, &mut out);
        }
        for chunk in r.chunks(65536) {
            s.feed(Direction::ToClient, chunk, i as u64, &mut out);
        }
        n += out.len();
        out.clear();
    }
    n
}

fn main() {
    println!("size_of Event = {} bytes", std::mem::size_of::<Event>());
    let only = std::env::var("PG_BENCH_ONLY").unwrap_or_default();
    // 1. Many small rows: 20 queries x 50,000 rows of ~34 bytes.
    let (c, server) = many_rows(20, 50_000);
    // Split the client stream per query so requests and answers alternate.
    let mut client = vec![c[..c.len() - 20 * 28].to_vec()];
    for q in c[c.len() - 20 * 28..].chunks(28) {
        client.push(q.to_vec());
    }
    let total: usize = client.iter().chain(&server).map(|v| v.len()).sum();
    assert_eq!(client.len(), server.len());
    if only.is_empty() || "rows".contains(&only) {
        common::throughput("pg many small rows (20 x 50k rows)", total, || {
            std::hint::black_box(run(&client, &server));
        });
    }

    // 2. OLTP: the captured pgbench -M extended and -M prepared conversations.
    let manifest = env!("CARGO_MANIFEST_DIR");
    for name in ["pgbench_extended", "pgbench_prepared", "big_result"] {
        if !only.is_empty() && !name.contains(&only) {
            continue;
        }
        let bytes = std::fs::read(format!("{manifest}/fixtures/pg/{name}.fx")).expect("fixture");
        let mut chunks: Vec<(Direction, Vec<u8>)> = Vec::new();
        let mut i = 0;
        while i + 13 <= bytes.len() {
            let dir = if bytes[i] == b'C' { Direction::ToServer } else { Direction::ToClient };
            let len = u32::from_be_bytes(bytes[i + 9..i + 13].try_into().unwrap()) as usize;
            chunks.push((dir, bytes[i + 13..i + 13 + len].to_vec()));
            i += 13 + len;
        }
        let total: usize = chunks.iter().map(|c| c.1.len()).sum();
        common::throughput(&format!("pg fixture {name}"), total, || {
            let mut s = Session::new(Protocol::Postgres, Limits::default());
            let mut out = Vec::new();
            let mut n = 0;
            for (d, c) in &chunks {
                s.feed(*d, c, 0, &mut out);
                // A recorder drains the events after every read.
                n += out.len();
                out.clear();
            }
            std::hint::black_box(n);
        });
    }
}
