//! After a gap that ends inside an HTTP message, the import picks up at
//! the next request line (and status line), skipping the bytes before it
//! with a gap record that says so, instead of giving the connection up as
//! opaque. The capture is written with `capture::pcap_export` (a hole in
//! the sequence numbers, as a capture that missed a segment has).

use capture::pcap_export::PcapExport;
use format::{Body, ExchangeSummary, Reader};
use format::Direction::{ToClient, ToServer};
use std::process::Command;

#[test]
fn http_picks_up_at_the_next_request_line_after_a_gap_inside_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("hole.pcap");
    let mut out = PcapExport::new(std::fs::File::create(&pcap).unwrap()).unwrap();
    let (client, server) = ("10.1.0.1:41000".parse().unwrap(), "10.1.0.2:8080".parse().unwrap());
    let ms = 1_700_000_000_000_000_000u64;
    let step = 1_000_000;
    out.open(1, client, server, ms).unwrap();
    let req1 = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij";
    let resp = |n: u8| format!("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{}", n as char).into_bytes();
    // The capture holds 10 bytes of the first request, misses 50, then has
    // the rest of its body.
    out.data(1, ToServer, &req1[..10], 50, ms + step).unwrap();
    out.data(1, ToServer, &req1[60..], 0, ms + 2 * step).unwrap();
    out.data(1, ToClient, &resp(b'1'), 0, ms + 3 * step).unwrap();
    for (i, path) in ["/b", "/c"].iter().enumerate() {
        out.data(1, ToServer, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(), 0, ms + (4 + 2 * i as u64) * step).unwrap();
        out.data(1, ToClient, &resp(b'2' + i as u8), 0, ms + (5 + 2 * i as u64) * step).unwrap();
    }
    out.finish(ms + 10 * step).unwrap();

    let trace = dir.path().join("hole.mp");
    let o = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["import"]).arg(&pcap).arg("-o").arg(&trace).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "bytes were missing: {stderr}");
    let records: Vec<_> = Reader::open(&trace).unwrap().map(|r| r.unwrap()).collect();
    let targets: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Exchange(x) => match &x.summary {
                ExchangeSummary::Http(h) if h.status.is_some() => Some(format!("{} {}", h.method, h.target)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(targets, ["GET /b", "GET /c"], "the requests after the gap are decoded and answered");
    assert!(!records.iter().any(|r| matches!(r.body, Body::Fallback(_))), "no fallback to opaque: {stderr}");
    let gaps: Vec<(u64, String)> = records.iter().filter_map(|r| if let Body::Gap(g) = &r.body { Some((g.bytes, g.reason.clone())) } else { None }).collect();
    assert_eq!(gaps[0].0, 50, "the missing bytes, exactly: {gaps:?}");
    let rest = (req1.len() - 60) as u64;
    assert!(gaps.iter().any(|(n, why)| *n == rest && why.contains("request line")), "the rest of the first body, skipped: {gaps:?}");
}
