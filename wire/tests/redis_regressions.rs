//! Inputs the fuzzer (fuzz/fuzz_targets/fuzz_redis.rs) found, replayed with
//! the same invariants: they must decode without hanging or panicking, and
//! account for every byte.

use wire::{Direction, Event, Limits, Protocol, Session};

/// The fuzz target's input format: byte 0 picks the limits, bytes 1-2 the
/// split offset, then `[dir][len][bytes]` chunks.
fn replay(data: &[u8]) -> Vec<Event> {
    let limits = match data[0] % 4 {
        0 => Limits::default(),
        1 => Limits {
            max_frame: 64,
            request_cap: 16,
            response_cap: 8,
        },
        2 => Limits {
            max_frame: 1024,
            request_cap: 0,
            response_cap: 0,
        },
        _ => Limits {
            max_frame: 300,
            request_cap: 1 << 20,
            response_cap: 40,
        },
    };
    let mut s = Session::new(Protocol::Redis, limits);
    let mut out = Vec::new();
    let mut fed = [0u64; 2];
    let mut i = 3;
    while i + 2 <= data.len() {
        let dir = if data[i] & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let end = (i + 2 + data[i + 1] as usize).min(data.len());
        s.feed(dir, &data[i + 2..end], i as u64, &mut out);
        fed[dir.index()] += (end - i - 2) as u64;
        i = end;
    }
    s.eof(Direction::ToServer, 0, &mut out);
    s.eof(Direction::ToClient, 0, &mut out);
    let mut seen = [0u64; 2];
    for e in &out {
        if let Event::Message(m) = e {
            assert_eq!(m.offset, seen[m.dir.index()]);
            seen[m.dir.index()] += m.raw.len;
        }
    }
    assert_eq!(seen, fed);
    out
}

#[test]
fn inline_command_with_a_nul_byte() {
    // split_inline looped forever (pushing empty arguments until out of
    // memory) on a NUL byte in an inline command line.
    replay(include_bytes!(
        "../../fuzz/artifacts/fuzz_redis/inline-nul-loop"
    ));
    let ev = replay(b"\x00\x00\x00\x00\x0bGET a\x00b c\r\n");
    let Event::Message(m) = &ev[0] else { panic!() };
    let wire::MessageKind::Redis(wire::redis::RedisMessage::Command(c)) = &m.kind else {
        panic!()
    };
    assert_eq!(c.args.iter().collect::<Vec<_>>(), vec![&b"GET"[..], b"a"]);
}
