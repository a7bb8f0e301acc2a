//! Fuzzes the trace reader with damaged files and checks invariants, not
//! only "no panic":
//! - reading always ends, and never counts more bytes than the file has;
//! - every damage report lies inside the file, after the prefix, and the
//!   reports come in increasing, non-overlapping order;
//! - a file made of a valid prefix and valid blocks followed by the fuzz
//!   bytes yields every record of the valid blocks first, unchanged.
//!
//! Input: byte 0 picks the mode. Mode 0: the input is the whole file.
//! Mode 1: a valid prefix and a few valid blocks, then the input as a
//! (probably damaged) continuation, so the fuzzer spends its time in block
//! parsing instead of rediscovering the header checksum.
#![no_main]
use format::synth::{Synth, SynthOptions};
use format::{Header, Reader, Record, Writer, WriterOptions};
use libfuzzer_sys::fuzz_target;

fn valid_start() -> (Vec<u8>, Vec<Record>) {
    let records: Vec<Record> = Synth::new(SynthOptions::default()).take(40).collect();
    let mut header = Header::new("fuzz", "fuzz");
    header.anchor_unix_ns = 0;
    header.host = "fuzz".into();
    header.sources[0].host = "fuzz".into();
    header.sources[0].anchor_unix_ns = 0;
    let mut w = Writer::new(Vec::new(), &header, WriterOptions { block_bytes: 1024, zstd_level: 1 }).unwrap();
    for r in &records {
        w.write(r).unwrap();
    }
    (w.finish().unwrap(), records)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (file, expected) = if mode & 1 == 0 {
        (rest.to_vec(), Vec::new())
    } else {
        let (mut file, records) = valid_start();
        file.extend_from_slice(rest);
        (file, records)
    };
    let Ok(mut reader) = Reader::new(&file[..]) else { return };
    let prefix_end = reader.stats().bytes;
    let mut records = Vec::new();
    let mut last_damage_end = prefix_end;
    for item in reader.by_ref() {
        match item {
            Ok(r) => records.push(r),
            Err(d) => {
                assert!(d.offset >= last_damage_end, "damage {d} overlaps or precedes the previous one");
                assert!(d.offset + d.len <= file.len() as u64, "damage {d} past the end ({})", file.len());
                last_damage_end = d.offset + d.len;
            }
        }
    }
    assert!(reader.stats().bytes <= file.len() as u64);
    assert!(records.len() >= expected.len() || mode & 1 == 0);
    assert_eq!(&records[..expected.len()], &expected[..], "valid blocks before the damage must read back unchanged");
});
