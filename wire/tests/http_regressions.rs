//! Inputs the fuzzer (`fuzz/fuzz_targets/fuzz_http.rs`) found, replayed with
//! the same checks (`fuzz/fuzz_targets/check_http.rs`, shared with the fuzz
//! target): every file in `fuzz/artifacts/fuzz_http/`, plus the minimal
//! cases written down by hand.

#[path = "../../fuzz/fuzz_targets/check_http.rs"]
mod check_http;

use check_http::{check, check_split, Chunk};
use wire::{Direction, Limits};

#[test]
fn fuzz_artifacts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/artifacts/fuzz_http");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        check(&std::fs::read(e.path()).unwrap());
    }
}

/// crash-b948ea0c: a CONNECT head longer than max_frame (40) whose client
/// bytes were split after 3 bytes: the prefix check saw nothing wrong, the
/// whole feed reported "too big" while the split one reported a syntax error
/// found later. Now the syntax check looks at the same prefix either way and
/// comes first. Checked at every split point.
#[test]
fn reason_does_not_depend_on_the_split() {
    let limits = Limits { max_frame: 40, request_cap: 1 << 20, response_cap: 1 << 20 };
    for head in [
        &b"CONNECT 127.0.0.1:18080 HTTP/1.1\r\nHost: 127.0.0.1:18081\r\nUser-Agent: curl\r\n\r\n"[..],
        b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaa\x01bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\r",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let chunks = vec![Chunk { dir: Direction::ToServer, ts: 1, data: head.to_vec() }];
        for at in 1..head.len() {
            check_split(limits, &chunks, at);
        }
    }
}
