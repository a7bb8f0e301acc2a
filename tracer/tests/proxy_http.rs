//! HTTP through `oltrace proxy`: wrk's keep-alive load (every request that
//! crossed recorded, counted against what the upstream served) and a
//! chunked upload with curl. The upstream is `examples/http_upstream.rs`,
//! served in process.
//!
//! Needs wrk and curl (`.ci/run` installs them).

mod common;

use common::{assert_timings_in_order, count_kind, http_exchanges, http_upstream, run, Proxy};
use format::{Body, Decoded, Direction, ExchangeStatus};
use std::process::Command;
use std::sync::atomic::Ordering;

/// "N requests in 2.00s, ..." from wrk's output.
fn wrk_requests(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no request count in wrk's output: {out}"))
}

#[test]
fn wrk_load_is_recorded_request_by_request() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, served) = http_upstream();
    let proxy = Proxy::start(&dir.path().join("wrk.mp"), &[format!("http:0={upstream}")], &[]);
    let url = format!("http://{}/run/hello", proxy.addrs[0]);
    let out = run(Command::new("wrk").args(["-t2", "-c8", "-d2s", &url]));
    let completed = wrk_requests(&out);
    assert!(completed > 0, "{out}");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(count_kind(&records, "gap"), 0, "nothing lost: {summary}");
    let served = served.requests.load(Ordering::Relaxed);

    let ex = http_exchanges(&records);
    // Every request that crossed the proxy reached the upstream, and every
    // one is in the trace. wrk counts only the responses it read before
    // stopping; the requests in flight then were served, and recorded, too.
    assert_eq!(ex.len() as u64, served, "recorded exchanges vs requests the upstream served (wrk counted {completed})");
    let complete = ex.iter().filter(|(e, _)| e.status == ExchangeStatus::Complete).count() as u64;
    assert!(complete >= completed && complete <= served, "{complete} answered exchanges; wrk read {completed}, upstream served {served}");
    for (e, h) in &ex {
        assert_eq!((h.method.as_str(), h.target.as_str()), ("GET", "/run/hello"));
        if e.status == ExchangeStatus::Complete {
            assert_eq!((h.status, h.response_body_len), (Some(200), 13), "{h:?}");
        }
    }
    // wrk -c8 keeps 8 connections open (and may open one more to check the URL).
    let opens = count_kind(&records, "conn_open");
    assert!((8..=9).contains(&opens), "{opens} connections");
    assert_eq!(count_kind(&records, "conn_close"), opens);
    assert_timings_in_order(&records);
}

#[test]
fn chunked_upload_with_curl() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, served) = http_upstream();
    let proxy = Proxy::start(&dir.path().join("chunked.mp"), &[format!("http:0={upstream}")], &[]);
    // 300 KB of varied bytes, so curl sends it in several chunks.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, &body).unwrap();
    let url = format!("http://{}/upload", proxy.addrs[0]);
    let out = run(Command::new("curl").args(["-sS", "-H", "Transfer-Encoding: chunked", "--data-binary"]).arg(format!("@{}", file.display())).arg(&url));
    assert_eq!(out, "hello, world\n");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(served.body_bytes.load(Ordering::Relaxed), body.len() as u64, "the upstream got the whole body");

    let ex = http_exchanges(&records);
    assert_eq!(ex.len(), 1, "{ex:?}");
    let (e, h) = ex[0];
    assert_eq!((h.method.as_str(), h.target.as_str(), h.status), ("POST", "/upload", Some(200)));
    assert_eq!(h.request_body_len, body.len() as u64, "de-chunked length");
    assert!(e.request_bytes > body.len() as u64, "the chunk framing is in the bytes on the wire");
    let request = records
        .iter()
        .find_map(|r| match &r.body {
            Body::Message(m) if m.dir == Direction::ToServer => match &m.decoded {
                Some(Decoded::HttpRequest(h)) => Some(h),
                _ => None,
            },
            _ => None,
        })
        .expect("the request message");
    assert!(request.chunked, "{request:?}");
    assert_eq!(request.body_len, body.len() as u64);
}
