//! Noise learning against the real Redis on 127.0.0.1:6379: `TIME` answers
//! differently every run, `ECHO` never does. Three runs of the same two
//! commands over real sockets, decoded by `wire::Session`: learning from two
//! of them names exactly `TIME`'s reply, and the learned rules make the
//! third match the first.

mod compare_support;

use std::io::{Read, Write};
use std::net::TcpStream;

use compare_support::*;
use format::ExchangeSummary;
use replayer::compare::compare_exchange;
use replayer::model::{Replayed, Side};
use replayer::noise::NoiseRules;
use replayer::report::key_of;
use wire::redis::parse_reply;
use wire::Direction;

const REQUEST: &[u8] = b"*1\r\n$4\r\nTIME\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n";

/// One run: the two commands in one write, read until both replies came.
fn run() -> Vec<Side> {
    let mut s = TcpStream::connect("127.0.0.1:6379").expect("Redis must listen on 127.0.0.1:6379 (see .ci/run)");
    s.write_all(REQUEST).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "Redis closed the connection");
        got.extend_from_slice(&buf[..n]);
        let all = bytes::Bytes::from(got.clone());
        if let Ok((_, used)) = parse_reply(&all) {
            if parse_reply(&all.slice(used..)).is_ok() {
                break;
            }
        }
    }
    let chunks = vec![(Direction::ToServer, 1, REQUEST.to_vec()), (Direction::ToClient, 1_000, got)];
    let v = sides(wire::Protocol::Redis, &chunks);
    assert_eq!(v.len(), 2);
    v
}

fn exchanges(recorded: &[Side], run: Vec<Side>) -> Vec<Replayed> {
    recorded
        .iter()
        .zip(run)
        .map(|(r, p)| {
            let mut ex = replayed(format::Protocol::Redis, &key_of(&r.summary), r.clone(), Ok(p));
            ex.conn = 1;
            ex
        })
        .collect()
}

#[test]
fn learned_rules_cover_exactly_what_changes_between_runs() {
    let recorded = run();
    assert!(matches!(&recorded[0].summary, ExchangeSummary::Redis(r) if r.command == "TIME"));
    // TIME has microseconds: make sure the runs fall on other microseconds.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let first = exchanges(&recorded, run());
    std::thread::sleep(std::time::Duration::from_millis(2));
    let second = exchanges(&recorded, run());
    let learned = NoiseRules::learn(&first, &second, &["content-type".to_owned()]);
    let rules: Vec<(String, String)> = learned.rules().map(|r| (r.key.clone().unwrap(), r.field.clone().unwrap())).collect();
    assert_eq!(rules, vec![("TIME".to_owned(), "reply[*]".to_owned())], "TIME's microseconds, nothing of ECHO");

    std::thread::sleep(std::time::Duration::from_millis(2));
    let third = exchanges(&recorded, run());
    let raw: Vec<_> = third.iter().map(|ex| compare_exchange(ex, &NoiseRules::none())).collect();
    assert!(raw[0].iter().any(|d| d.field == "reply[1]"), "TIME differs without rules: {raw:?}");
    assert_eq!(raw[1], vec![], "ECHO never differs");
    for ex in &third {
        assert_eq!(compare_exchange(ex, &learned), vec![], "{}", ex.key);
    }
}
