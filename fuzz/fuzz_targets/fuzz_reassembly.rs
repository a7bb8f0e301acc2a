//! Fuzzes the TCP reassembler with arbitrary segment sequences and checks
//! invariants, not only "no panic": every byte delivered on the first
//! connection's client stream is the byte sent at that offset; buffered
//! bytes stay within the bounds (plus one segment); at the end nothing is
//! buffered and no connection is open.
//!
//! Input: the first 64 bytes are the client's stream (cycled); then 7-byte
//! operations: direction and flags, offset (2), length (2), ack (2).
#![no_main]
use capture::{Flags, Limits, Reassembler, Segment, StreamEvent};
use format::Direction;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

const ISN: u32 = 0xffff_ff00; // wraps within the first 256 bytes

fuzz_target!(|data: &[u8]| {
    if data.len() < 64 {
        return;
    }
    let (seed, ops) = data.split_at(64);
    let byte = |i: usize| seed[i % 64].wrapping_add((i / 64) as u8);
    let client: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let server: SocketAddr = "10.0.0.2:6379".parse().unwrap();
    let limits = Limits { per_direction: 4096, total: 8192, ..Limits::default() };
    let mut r = Reassembler::new(limits, vec![6379]);
    let mut out = Vec::new();
    r.push(&Segment { src: client, dst: server, seq: ISN, ack: 0, flags: Flags { syn: true, ..Flags::default() }, payload: &[], missing: 0 }, 0, &mut out);
    let mut payload = Vec::new();
    for (t, op) in ops.chunks_exact(7).enumerate() {
        let to_server = op[0] & 1 == 0;
        let flags = Flags { syn: op[0] & 2 != 0 && op[0] & 64 != 0, ack: op[0] & 4 != 0, fin: op[0] & 8 != 0, rst: op[0] & 16 != 0 && op[0] & 128 != 0 };
        let from = usize::from(u16::from_le_bytes([op[1], op[2]]) % 8192);
        let len = usize::from(u16::from_le_bytes([op[3], op[4]]) % 1500);
        let ack = u32::from(u16::from_le_bytes([op[5], op[6]]));
        payload.clear();
        // A SYN takes a sequence number: its data starts one further on.
        let first = from + usize::from(flags.syn);
        payload.extend((first..first + len).map(byte));
        let (src, dst, seq, ack) = if to_server {
            (client, server, ISN.wrapping_add(1).wrapping_add(from as u32), 5000u32.wrapping_add(ack))
        } else {
            (server, client, 5001u32.wrapping_add(from as u32), ISN.wrapping_add(1).wrapping_add(ack))
        };
        r.push(&Segment { src, dst, seq, ack, flags, payload: &payload, missing: 0 }, t as u64 + 1, &mut out);
        assert!(r.buffered_bytes() <= limits.total + 1500, "buffered {} past the bound", r.buffered_bytes());
    }
    r.finish(u64::MAX, &mut out);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.open_connections(), 0);
    // Connection 1's client stream: bytes where they were sent.
    let mut at = 0usize;
    for e in &out {
        match e {
            StreamEvent::Data { conn: 1, dir: Direction::ToServer, data, .. } => {
                for (i, b) in data.iter().enumerate() {
                    assert_eq!(*b, byte(at + i), "byte {} of the client's stream", at + i);
                }
                at += data.len();
            }
            StreamEvent::Gap { conn: 1, dir: Direction::ToServer, bytes, .. } => at += *bytes as usize,
            _ => {}
        }
    }
});
