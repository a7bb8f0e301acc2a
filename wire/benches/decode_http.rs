//! HTTP decoder throughput on one core.
//!
//! - `keepalive`: 1000 small keep-alive exchanges (~100-byte GET, ~200-byte
//!   JSON response), one feed per message, as a proxy reading a real client
//!   sees them. The target: >= 500 MB/s.
//! - `pipelined`: the same exchanges, requests pipelined and read 64 KiB at
//!   a time.
//! - `chunked-upload`: 200 POSTs with a 4 KiB body in 512-byte chunks.
//! - `download-1MB`: a 1 MiB Content-Length body read 64 KiB at a time
//!   (streams past the 64 KiB response cap).
//! - `fixtures`: every captured fixture, as read.

mod common;

use std::hint::black_box;
use wire::{Direction, Event, Limits, Protocol, Session};

fn request(i: usize) -> Vec<u8> {
    format!(
        "GET /api/v1/items/{i:06}?fields=all HTTP/1.1\r\nHost: api.internal:8080\r\nUser-Agent: oltrace-bench/1\r\nAccept: */*\r\n\r\n"
    )
    .into_bytes()
}

fn response(i: usize) -> Vec<u8> {
    let body = format!("{{\"id\":{i:06},\"name\":\"widget\",\"ok\":true}}");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: bench/1\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn run(chunks: &[(Direction, Vec<u8>)]) -> usize {
    // The caller's event vector is reused across connections, as the proxy
    // does: growing a fresh one to thousands of events per run would mostly
    // measure page faults.
    thread_local!(static OUT: std::cell::RefCell<Vec<Event>> = std::cell::RefCell::new(Vec::with_capacity(4096)));
    OUT.with(|out| {
        let out = &mut *out.borrow_mut();
        let mut s = Session::new(Protocol::Http, Limits::default());
        let mut n = 0;
        for (i, (dir, data)) in chunks.iter().enumerate() {
            s.feed(*dir, data, i as u64, out);
            n += out.len();
            out.clear();
        }
        s.eof(Direction::ToServer, 0, out);
        s.eof(Direction::ToClient, 0, out);
        assert!(!s.is_opaque());
        n += out.len();
        out.clear();
        n
    })
}

fn total(chunks: &[(Direction, Vec<u8>)]) -> usize {
    chunks.iter().map(|(_, d)| d.len()).sum()
}

/// Runs the named bench unless `HTTP_BENCH` (a substring filter) excludes it.
/// With `HTTP_BENCH_ITERS=n`, runs it exactly n times instead (for `perf
/// stat`, whose cycle counts do not suffer from a busy machine).
fn bench(name: &str, bytes: usize, mut f: impl FnMut()) {
    if std::env::var("HTTP_BENCH").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    match std::env::var("HTTP_BENCH_ITERS").ok().and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            for _ in 0..n {
                f();
            }
            println!("{name}: {n} iterations of {bytes} bytes");
        }
        None => {
            common::throughput(name, bytes, f);
        }
    }
}

fn main() {
    let n = 1000;
    let keepalive: Vec<_> =
        (0..n).flat_map(|i| [(Direction::ToServer, request(i)), (Direction::ToClient, response(i))]).collect();
    let req_len = request(0).len();
    let resp_len = response(0).len();
    println!("keepalive: {n} exchanges, request {req_len} B, response {resp_len} B");
    assert_eq!(run(&keepalive), 3 * n);
    bench("http keepalive (1 feed/message)", total(&keepalive), || {
        black_box(run(black_box(&keepalive)));
    });

    // Ceiling: httparse alone on the same heads.
    bench("http ceiling: httparse heads only", total(&keepalive), || {
        let mut hs = [httparse::EMPTY_HEADER; 16];
        for (dir, data) in &keepalive {
            let n = if *dir == Direction::ToServer {
                httparse::Request::new(&mut hs).parse(data).unwrap().unwrap()
            } else {
                httparse::Response::new(&mut hs).parse(data).unwrap().unwrap()
            };
            black_box(n);
        }
    });

    let all_req: Vec<u8> = (0..n).flat_map(request).collect();
    let all_resp: Vec<u8> = (0..n).flat_map(response).collect();
    let mut pipelined = Vec::new();
    let (reqs, resps): (Vec<_>, Vec<_>) = (all_req.chunks(64 << 10).collect(), all_resp.chunks(64 << 10).collect());
    for i in 0..reqs.len().max(resps.len()) {
        // Request read i always holds the requests that response read i answers.
        if let Some(a) = reqs.get(i) {
            pipelined.push((Direction::ToServer, a.to_vec()));
        }
        if let Some(b) = resps.get(i) {
            pipelined.push((Direction::ToClient, b.to_vec()));
        }
    }
    assert_eq!(run(&pipelined), 3 * n);
    bench("http pipelined (64 KiB reads)", total(&pipelined), || {
        black_box(run(black_box(&pipelined)));
    });

    let mut upload = Vec::new();
    for i in 0..200 {
        let mut req = b"POST /upload HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for c in 0..8u8 {
            req.extend_from_slice(b"200\r\n");
            req.extend(std::iter::repeat_n(b'a' + c, 512));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        upload.push((Direction::ToServer, req));
        upload.push((Direction::ToClient, response(i)));
    }
    assert_eq!(run(&upload), 600);
    bench("http chunked-upload (4 KiB bodies)", total(&upload), || {
        black_box(run(black_box(&upload)));
    });

    let body = vec![b'x'; 1 << 20];
    let mut download = vec![(Direction::ToServer, request(0))];
    let mut resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    resp.extend_from_slice(&body);
    download.extend(resp.chunks(64 << 10).map(|c| (Direction::ToClient, c.to_vec())));
    assert_eq!(run(&download), 3);
    bench("http download-1MB (64 KiB reads)", total(&download), || {
        black_box(run(black_box(&download)));
    });

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/http");
    let mut fixtures = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    for p in names.into_iter().filter(|p| p.extension().is_some_and(|e| e == "fx")) {
        let bytes = std::fs::read(&p).unwrap();
        let mut conv = Vec::new();
        let mut i = 0;
        while i + 13 <= bytes.len() {
            let dir = if bytes[i] == b'C' { Direction::ToServer } else { Direction::ToClient };
            let len = u32::from_be_bytes(bytes[i + 9..i + 13].try_into().unwrap()) as usize;
            conv.push((dir, bytes[i + 13..i + 13 + len].to_vec()));
            i += 13 + len;
        }
        fixtures.push(conv);
    }
    let fixture_bytes: usize = fixtures.iter().map(|c| total(c)).sum();
    bench("http fixtures (as captured)", fixture_bytes, || {
        for c in &fixtures {
            let mut s = Session::new(Protocol::Http, Limits::default());
            let mut out = Vec::new();
            for (dir, data) in c {
                s.feed(*dir, data, 0, &mut out);
            }
            black_box(out.len());
        }
    });
}
