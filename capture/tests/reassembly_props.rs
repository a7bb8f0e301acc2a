//! Property tests of the reassembler over generated segment sequences:
//! reordered, duplicated, overlapping and dropped segments give back the
//! original stream, except at the dropped ranges, which come out as gaps
//! of exactly their length.

use capture::{CloseCause, Flags, GapCause, Limits, Reassembler, Segment, StreamEvent};
use format::Direction;
use proptest::prelude::*;
use std::net::SocketAddr;

fn client() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}
fn server() -> SocketAddr {
    "10.0.0.2:5432".parse().unwrap()
}

fn seg(seq: u32, payload: &[u8], flags: Flags) -> Segment<'_> {
    Segment { src: client(), dst: server(), seq, ack: 0, flags, payload, missing: 0 }
}

/// Per offset of the client's stream: the byte delivered, or None for a
/// gap. Also the gap causes, and the events' closing checks.
fn replay(isn: u32, stream: &[u8], order: &[(usize, usize)], limits: Limits, fin: bool) -> (Vec<Option<u8>>, Vec<GapCause>, Reassembler) {
    let mut r = Reassembler::new(limits, vec![5432]);
    let mut out = Vec::new();
    r.push(&seg(isn, &[], Flags { syn: true, ..Flags::default() }), 0, &mut out);
    for (i, &(from, to)) in order.iter().enumerate() {
        let s = seg(isn.wrapping_add(1).wrapping_add(from as u32), &stream[from..to], Flags { ack: false, ..Flags::default() });
        r.push(&s, i as u64 + 1, &mut out);
    }
    if fin {
        let end = isn.wrapping_add(1).wrapping_add(stream.len() as u32);
        r.push(&seg(end, &[], Flags { fin: true, ..Flags::default() }), 1_000_000, &mut out);
    }
    r.finish(2_000_000, &mut out);
    let mut got = Vec::new();
    let mut causes = Vec::new();
    let mut closed = 0;
    for e in out {
        match e {
            StreamEvent::Data { dir: Direction::ToServer, data, .. } => got.extend(data.into_iter().map(Some)),
            StreamEvent::Gap { dir: Direction::ToServer, bytes, cause, .. } => {
                causes.push(cause);
                got.extend(std::iter::repeat_n(None, bytes as usize));
            }
            StreamEvent::Close { bytes, .. } => {
                closed += 1;
                assert_eq!(bytes[0], got.len() as u64, "close counts what came, delivered or missing");
            }
            _ => {}
        }
    }
    assert_eq!(closed, 1);
    (got, causes, r)
}

/// The initial sequence number, the stream, the segments sent (byte
/// ranges, in the order sent) and, per byte, whether any segment held it.
type Scenario = (u32, Vec<u8>, Vec<(usize, usize)>, Vec<bool>);

/// A stream, cut into segments, some dropped, some duplicated, some
/// overlapping copies added, all shuffled.
fn scenario() -> impl Strategy<Value = Scenario> {
    (any::<u32>(), prop::collection::vec(any::<u8>(), 1..3000), prop::collection::vec(1usize..400, 1..40)).prop_flat_map(|(isn, stream, cuts)| {
        let len = stream.len();
        let mut segments = Vec::new();
        let mut at = 0;
        for c in cuts {
            if at >= len {
                break;
            }
            let end = (at + c).min(len);
            segments.push((at, end));
            at = end;
        }
        if at < len {
            segments.push((at, len));
        }
        let n = segments.len();
        (
            Just(isn),
            Just(stream),
            Just(segments),
            prop::collection::vec(any::<bool>(), n..=n),
            prop::collection::vec((0usize..len, 1usize..500), 0..8),
            any::<u64>(),
        )
            .prop_map(|(isn, stream, segments, dropped, overlaps, seed)| {
                let len = stream.len();
                let mut order: Vec<(usize, usize)> = Vec::new();
                for (i, s) in segments.iter().enumerate() {
                    // Dropped one in three of those the coin picks.
                    if dropped[i] && i % 3 == 0 {
                        continue;
                    }
                    order.push(*s);
                    if i % 5 == 1 {
                        order.push(*s); // duplicated
                    }
                }
                for (from, l) in overlaps {
                    order.push((from, (from + l).min(len)));
                }
                // Shuffle deterministically from the seed.
                let mut state = seed | 1;
                for i in (1..order.len()).rev() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    order.swap(i, (state % (i as u64 + 1)) as usize);
                }
                let mask: Vec<bool> = (0..len).map(|b| order.iter().any(|&(f, t)| f <= b && b < t)).collect();
                (isn, stream, order, mask)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Unbounded buffers: every byte some segment held comes out, in
    /// place; every byte none held is in a gap; the ends agree.
    #[test]
    fn streams_equal_the_original_but_for_dropped_ranges((isn, stream, order, covered) in scenario(), fin in any::<bool>()) {
        let (got, _, r) = replay(isn, &stream, &order, Limits { per_direction: usize::MAX, total: usize::MAX, ..Limits::default() }, fin);
        let last_covered = covered.iter().rposition(|c| *c).map_or(0, |p| p + 1);
        let expected_len = if fin { stream.len() } else { last_covered };
        prop_assert_eq!(got.len(), expected_len);
        for (i, b) in got.iter().enumerate() {
            match b {
                Some(b) => { prop_assert!(covered[i]); prop_assert_eq!(*b, stream[i]); }
                None => prop_assert!(!covered[i], "byte {} was held by a segment but reported missing", i),
            }
        }
        prop_assert_eq!(r.counters.conflicts, 0);
        prop_assert_eq!(r.buffered_bytes(), 0);
        prop_assert_eq!(r.open_connections(), 0);
        let missing = got.iter().filter(|b| b.is_none()).count() as u64;
        prop_assert_eq!(r.counters.missing_bytes, missing);
    }

    /// Bounded buffers: bytes may be given up early, but what comes out is
    /// in place, all of the stream is accounted for, and the buffer never
    /// holds more than the bound past one segment.
    #[test]
    fn bounded_buffers_only_lose_what_they_report((isn, stream, order, _covered) in scenario()) {
        let (got, causes, r) = replay(isn, &stream, &order, Limits { per_direction: 300, total: 300, ..Limits::default() }, true);
        prop_assert_eq!(got.len(), stream.len());
        for (i, b) in got.iter().enumerate() {
            if let Some(b) = b {
                prop_assert_eq!(*b, stream[i]);
            }
        }
        prop_assert!(causes.iter().all(|c| matches!(c, GapCause::Buffering | GapCause::Ended)));
        prop_assert_eq!(r.buffered_bytes(), 0);
    }
}

#[test]
fn overlapping_copies_that_differ_first_wins_and_is_counted() {
    let mut r = Reassembler::new(Limits::default(), vec![]);
    let mut out = Vec::new();
    r.push(&seg(99, &[], Flags { syn: true, ..Flags::default() }), 0, &mut out);
    // Bytes 5..10 first (out of order), then 0..10 with other bytes at 5..10.
    r.push(&seg(105, b"FIRST", Flags::default()), 1, &mut out);
    r.push(&seg(100, b"helloOTHER", Flags::default()), 2, &mut out);
    let data: Vec<u8> = out.iter().filter_map(|e| if let StreamEvent::Data { data, .. } = e { Some(data.clone()) } else { None }).flatten().collect();
    assert_eq!(data, b"helloFIRST");
    assert_eq!(r.counters.conflicts, 1);
}

#[test]
fn acknowledged_hole_is_a_gap_at_once_and_reuse_of_a_tuple_opens_a_new_connection() {
    let mut r = Reassembler::new(Limits::default(), vec![6379]);
    let mut out = Vec::new();
    let c: SocketAddr = "[::1]:50000".parse().unwrap();
    let s: SocketAddr = "[::1]:6379".parse().unwrap();
    let to_server = |seq, payload, flags| Segment { src: c, dst: s, seq, ack: 0, flags, payload, missing: 0 };
    r.push(&to_server(1000, b"", Flags { syn: true, ..Flags::default() }), 0, &mut out);
    r.push(&Segment { src: s, dst: c, seq: 5000, ack: 1001, flags: Flags { syn: true, ack: true, ..Flags::default() }, payload: b"", missing: 0 }, 1, &mut out);
    r.push(&to_server(1001, b"PING\r\n", Flags { ack: true, ..Flags::default() }), 2, &mut out);
    // 6 bytes lost, then 6 more arrive; the server acknowledges all 18.
    r.push(&to_server(1013, b"PING\r\n", Flags { ack: true, ..Flags::default() }), 3, &mut out);
    r.push(&Segment { src: s, dst: c, seq: 5001, ack: 1019, flags: Flags { ack: true, ..Flags::default() }, payload: b"+PONG\r\n", missing: 0 }, 4, &mut out);
    let gaps: Vec<_> = out.iter().filter_map(|e| if let StreamEvent::Gap { bytes, cause, ts, .. } = e { Some((*bytes, *cause, *ts)) } else { None }).collect();
    assert_eq!(gaps, vec![(6, GapCause::Acknowledged, 4)]);
    // The same 4-tuple, a new SYN with another ISN: a second connection.
    r.push(&to_server(777, b"", Flags { syn: true, ..Flags::default() }), 5, &mut out);
    let opens: Vec<u64> = out.iter().filter_map(|e| if let StreamEvent::Open { conn, .. } = e { Some(*conn) } else { None }).collect();
    assert_eq!(opens, vec![1, 2]);
    assert!(out.iter().any(|e| matches!(e, StreamEvent::Close { conn: 1, cause: CloseCause::Reused, .. })));
}

#[test]
fn mid_stream_pickup_takes_the_well_known_port_as_the_server() {
    let mut r = Reassembler::new(Limits::default(), vec![6379]);
    let mut out = Vec::new();
    // The server's reply is the first packet seen; its port is lower-numbered
    // than nothing in particular: the well-known port decides.
    let s: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let c: SocketAddr = "127.0.0.1:1024".parse().unwrap();
    r.push(&Segment { src: s, dst: c, seq: 7, ack: 9, flags: Flags { ack: true, ..Flags::default() }, payload: b"+OK\r\n", missing: 0 }, 1, &mut out);
    assert!(matches!(&out[0], StreamEvent::Open { client, server, mid_stream: true, .. } if *client == c && *server == s));
    assert!(matches!(&out[1], StreamEvent::Data { dir: Direction::ToClient, .. }));
    // A bare ACK of an unknown connection opens nothing.
    let other: SocketAddr = "127.0.0.1:2000".parse().unwrap();
    r.push(&Segment { src: other, dst: s, seq: 1, ack: 1, flags: Flags { ack: true, ..Flags::default() }, payload: b"", missing: 0 }, 2, &mut out);
    assert_eq!(r.open_connections(), 1);
}

#[test]
fn a_connection_idle_past_the_timeout_is_closed_and_a_later_segment_opens_a_new_one() {
    const SEC: u64 = 1_000_000_000;
    let limits = Limits { idle_ns: 60 * SEC, ..Limits::default() };
    let mut r = Reassembler::new(limits, vec![6379]);
    let mut out = Vec::new();
    let c: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let s: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let other: SocketAddr = "127.0.0.1:50001".parse().unwrap();
    let to_server = |src, seq, payload: &'static [u8]| Segment { src, dst: s, seq, ack: 0, flags: Flags::default(), payload, missing: 0 };
    // Two connections picked up mid-stream; no FIN or RST will ever come.
    r.push(&to_server(c, 1000, b"PING\r\n"), 0, &mut out);
    r.push(&to_server(other, 5000, b"PING\r\n"), 0, &mut out);
    // `other` stays busy; `c` goes quiet.
    for t in 1..=70 {
        r.push(&to_server(other, 5000 + 6 * t as u32, b"PING\r\n"), t * SEC, &mut out);
    }
    let closes: Vec<_> = out.iter().filter_map(|e| if let StreamEvent::Close { conn, cause, .. } = e { Some((*conn, *cause)) } else { None }).collect();
    assert_eq!(closes, vec![(1, CloseCause::Idle)], "only the quiet connection is closed");
    assert_eq!((r.open_connections(), r.counters.idle_closed), (1, 1));
    // Its 4-tuple speaks again: a new connection, mid-stream.
    r.push(&to_server(c, 1006, b"PING\r\n"), 71 * SEC, &mut out);
    let last_open = out.iter().rev().find_map(|e| if let StreamEvent::Open { conn, mid_stream, .. } = e { Some((*conn, *mid_stream)) } else { None });
    assert_eq!(last_open, Some((3, true)));
    // A quiet stretch with no segments at all: `expire_idle` (what a live
    // capture calls when no packet comes) closes both.
    r.expire_idle(200 * SEC, &mut out);
    assert_eq!(r.open_connections(), 0);
    assert_eq!(r.counters.idle_closed, 3);
}

#[test]
fn bytes_behind_a_hole_come_out_before_the_acknowledging_segment_and_keep_their_capture_time() {
    let mut r = Reassembler::new(Limits::default(), vec![5432]);
    let mut out = Vec::new();
    let c: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let s: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let ack = Flags { ack: true, ..Flags::default() };
    let to_server = |seq, payload| Segment { src: c, dst: s, seq, ack: 9000, flags: ack, payload, missing: 0 };
    r.push(&to_server(100, b"Q1"), 1, &mut out);
    // "Q2" (102..104) never reaches the capture; "Q3" waits behind it.
    r.push(&to_server(104, b"Q3"), 3, &mut out);
    // The server's reply acknowledges all six bytes.
    r.push(&Segment { src: s, dst: c, seq: 9000, ack: 106, flags: ack, payload: b"R3", missing: 0 }, 4, &mut out);
    let seen: Vec<String> = out
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Data { dir, data, ts, captured, .. } => Some(format!("{dir:?} {} at {ts} captured {captured}", String::from_utf8_lossy(data))),
            StreamEvent::Gap { dir, bytes, ts, .. } => Some(format!("{dir:?} gap {bytes} at {ts}")),
            _ => None,
        })
        .collect();
    assert_eq!(seen, ["ToServer Q1 at 1 captured 1", "ToServer gap 2 at 4", "ToServer Q3 at 4 captured 3", "ToClient R3 at 4 captured 4"]);
}
