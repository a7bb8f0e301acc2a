//! Fuzzes the import path short of writing a trace: a capture file (pcap or
//! pcapng, or anything) read frame by frame, each frame sliced by its link
//! type, TCP reassembled, and each connection's streams decoded by `wire`
//! as the recorder does. Nothing may panic; a frame read must fit its
//! record; the reassembler must end empty.
//!
//! When the first byte is odd, a pcap header is put before the rest (its
//! link type from the second byte), so the fuzzer reaches the frames.
#![no_main]
use capture::{frame, CaptureFile, Limits, Reassembler, StreamEvent};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use wire::{Protocol, Session};

const LINKS: [u32; 6] = [1, 0, 101, 108, 113, 276];

fuzz_target!(|data: &[u8]| {
    let mut input = Vec::new();
    if data.len() >= 2 && data[0] & 1 == 1 {
        input.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0]);
        input.extend_from_slice(&LINKS[usize::from(data[1]) % LINKS.len()].to_le_bytes());
        input.extend_from_slice(&data[2..]);
    } else {
        input.extend_from_slice(data);
    }
    let Ok(mut file) = CaptureFile::open(std::io::Cursor::new(input)) else { return };
    let mut r = Reassembler::new(Limits { per_direction: 1 << 16, total: 1 << 18, ..Limits::default() }, vec![5432, 6379, 80]);
    let mut events = Vec::new();
    let mut sessions: HashMap<u64, Session> = HashMap::new();
    let mut decoded = Vec::new();
    let mut ts = 0;
    while let Some(Ok(f)) = file.next_frame() {
        ts = f.ts_unix_ns;
        if let Ok(seg) = frame::tcp_segment(f.link, f.data, f.orig_len) {
            assert!(seg.payload.len() <= f.data.len());
            r.push(&seg, ts, &mut events);
        }
        for e in events.drain(..) {
            match e {
                StreamEvent::Open { conn, server, .. } => {
                    let protocol = match server.port() {
                        5432 => Protocol::Postgres,
                        6379 => Protocol::Redis,
                        80 => Protocol::Http,
                        _ => Protocol::Tcp,
                    };
                    sessions.insert(conn, Session::mid_stream(protocol, wire::Limits::default(), [0, 0]));
                }
                StreamEvent::Data { conn, dir, data, ts, .. } => {
                    if let Some(s) = sessions.get_mut(&conn) {
                        s.feed(dir, &data, ts, &mut decoded);
                    }
                }
                StreamEvent::Close { conn, .. } => {
                    sessions.remove(&conn);
                }
                _ => {}
            }
            decoded.clear();
        }
    }
    r.finish(ts, &mut events);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.open_connections(), 0);
});
