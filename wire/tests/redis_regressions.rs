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
