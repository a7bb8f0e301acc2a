//! Inputs the fuzzer (fuzz/fuzz_targets/fuzz_redis.rs) found, replayed with
//! the same invariants (`fuzz/fuzz_targets/check_redis.rs`, shared with the
//! fuzz target): they must decode without hanging or panicking, account for
//! every byte, respect the caps, and decode alike whole and split.

#[path = "../../fuzz/fuzz_targets/check_redis.rs"]
mod check_redis;

use check_redis::{check, check_events};
use wire::Event;

#[test]
fn fuzz_artifacts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/artifacts/fuzz_redis");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        check(&std::fs::read(e.path()).unwrap());
    }
}

/// The committed corpus (seeds from the fixtures and what the fuzzer kept)
/// through the same invariants, including that the fast path's runs
/// expand to exactly the per-message events.
#[test]
fn fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/fuzz_redis");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("the Redis fuzz corpus is committed").filter_map(|e| e.ok()) {
        check(&std::fs::read(e.path()).unwrap());
        n += 1;
    }
    assert!(n > 100, "only {n} corpus inputs");
}

#[test]
fn inline_command_with_a_nul_byte() {
    // split_inline looped forever (pushing empty arguments until out of
    // memory) on a NUL byte in an inline command line.
    check(include_bytes!(
        "../../fuzz/artifacts/fuzz_redis/inline-nul-loop"
    ));
    let ev = check_events(b"\x00\x00\x00\x00\x0bGET a\x00b c\r\n");
    let Event::Message(m) = &ev[0] else { panic!() };
    let wire::MessageKind::Redis(wire::redis::RedisMessage::Command(c)) = &m.kind else {
        panic!()
    };
    assert_eq!(c.args.iter().collect::<Vec<_>>(), vec![&b"GET"[..], b"a"]);
}

#[test]
fn reply_line_split_before_its_end_then_a_second_reply() {
    // Found by redis_props: the first read ends inside a simple-string line,
    // so the scanner remembered where to resume its search for CRLF. The
    // fast path then framed that reply itself (the scanner did not count as
    // part-way through) and the scanner searched the next reply's line from
    // the stale offset, missing its end: the runs left `,inf` as a torn
    // message where the per-message path decoded it.
    use wire::testing::{assert_split_invariant, Chunk};
    use wire::{Direction, Limits, Protocol};
    let chunks = [
        Chunk { dir: Direction::ToServer, ts: 1, data: b"*1\r\n$3\r\n\0\0\0\r\n".to_vec() },
        Chunk { dir: Direction::ToClient, ts: 2, data: b"+\0\0\0\x0e\0\0\r\n,inf\r\n".to_vec() },
    ];
    let ev = assert_split_invariant(Protocol::Redis, Limits::default(), &chunks, 1);
    assert_eq!(ev.len(), 4, "command, reply, exchange, unsolicited reply: {ev:?}");
}
