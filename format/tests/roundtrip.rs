//! Any sequence of records written then read comes back equal, whatever the
//! block size and compression.

mod strategies;

use format::{Header, Reader, Record, Writer, WriterOptions};
use proptest::prelude::*;

fn write_all(records: &[Record], opts: WriterOptions) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &Header::new("test", "t"), opts).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    w.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn written_records_read_back_equal(
        records in proptest::collection::vec(strategies::record(), 0..60),
        block_bytes in prop_oneof![Just(1024usize), Just(4096), Just(256 << 10)],
        level in prop_oneof![Just(0), Just(1), Just(3)],
    ) {
        let file = write_all(&records, WriterOptions { block_bytes, zstd_level: level });
        let mut reader = Reader::new(&file[..]).unwrap();
        let back: Vec<Record> = reader.by_ref().map(|r| r.expect("no damage in a fresh file")).collect();
        prop_assert_eq!(&back, &records);
        prop_assert_eq!(reader.stats().damaged, 0);
        prop_assert_eq!(reader.stats().records, records.len() as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Lean reading: the same records, but messages the lean way have no
    /// bytes and no decoded form, and messages the other way, when their
    /// bytes are lean too, no bytes (and the others are untouched).
    #[test]
    fn lean_messages_read_without_bytes(
        records in proptest::collection::vec(strategies::record(), 0..60),
        to_client in any::<bool>(),
        other_bytes_lean in any::<bool>(),
    ) {
        use format::{Body, Direction};
        let dir = if to_client { Direction::ToClient } else { Direction::ToServer };
        let other = if to_client { Direction::ToServer } else { Direction::ToClient };
        let file = write_all(&records, WriterOptions { block_bytes: 4096, zstd_level: 1 });
        let mut reader = Reader::new(&file[..]).unwrap();
        reader.lean_messages(dir);
        if other_bytes_lean {
            reader.lean_message_bytes(other);
        }
        let back: Vec<Record> = reader.by_ref().map(|r| r.expect("no damage in a fresh file")).collect();
        let wanted: Vec<Record> = records
            .iter()
            .cloned()
            .map(|mut r| {
                if let Body::Message(m) = &mut r.body {
                    if m.dir == dir {
                        m.data = Default::default();
                        m.decoded = None;
                    } else if other_bytes_lean {
                        m.data = Default::default();
                    }
                }
                r
            })
            .collect();
        prop_assert_eq!(back, wanted);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A record's bytes with some bytes changed, or cut short, decode to a
    /// record or an error: never a panic or a runaway allocation.
    #[test]
    fn damaged_record_bytes_never_panic(
        record in strategies::record(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        format::codec::encode_record(&record, &mut bytes);
        prop_assert_eq!(format::codec::decode_record(&bytes), Ok(record));
        let cut = cut.index(bytes.len());
        prop_assert!(format::codec::decode_record(&bytes[..cut]).is_err());
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let _ = format::codec::decode_record(&bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = format::codec::decode_record(&bytes);
    }
}

#[test]
fn header_round_trips() {
    let mut h = Header::new("oltrace 9.9", "worker-7");
    h.meta.insert("routes".into(), "http:127.0.0.1:8080=10.0.0.1:80".into());
    let file = write_all(&[], WriterOptions::default());
    assert!(Reader::new(&file[..]).unwrap().next().is_none(), "an empty trace has no records and no damage");
    let mut buf = Vec::new();
    h.write_prefix(&mut buf).unwrap();
    let (back, version, len) = Header::read_prefix(&mut &buf[..]).unwrap();
    assert_eq!(back, h);
    assert_eq!(version, (format::FORMAT_MAJOR, format::FORMAT_MINOR));
    assert_eq!(len as usize, buf.len());
}

#[test]
fn blocks_outside_a_time_window_are_skipped_unread() {
    use format::synth::{Synth, SynthOptions};
    let records: Vec<Record> = Synth::new(SynthOptions::default()).take(5000).collect();
    let file = write_all(&records, WriterOptions { block_bytes: 8192, zstd_level: 1 });
    let mut all = Reader::new(&file[..]).unwrap();
    assert_eq!(all.by_ref().count(), 5000);
    let (from, to) = (records[2000].ts, records[3000].ts);
    let mut windowed = Reader::new(&file[..]).unwrap();
    windowed.skip_blocks_outside(Some(from), Some(to));
    let got: Vec<Record> = windowed.by_ref().map(|r| r.unwrap()).collect();
    let wanted: Vec<&Record> = records.iter().filter(|r| (from..to).contains(&r.ts)).collect();
    // Every record in the window is there; records outside it come only
    // from blocks that straddle the window's edges.
    let got_in: Vec<&Record> = got.iter().filter(|r| (from..to).contains(&r.ts)).collect();
    assert_eq!(got_in, wanted);
    assert!(windowed.stats().blocks < all.stats().blocks / 2, "{} of {} blocks read", windowed.stats().blocks, all.stats().blocks);
}

/// Records are encoded straight into the open block behind a one-byte
/// length that is widened for records of 128 bytes or more; a record that
/// would overfill the block opens the next one. The blocks must be those a
/// writer that encodes each record apart would make.
#[test]
fn record_lengths_and_block_boundaries_match_separate_encoding() {
    use format::synth::{Synth, SynthOptions};
    let records: Vec<Record> = Synth::new(SynthOptions::default()).take(3000).collect();
    let sizes: Vec<usize> = records
        .iter()
        .map(|r| {
            let mut b = Vec::new();
            format::codec::encode_record(r, &mut b);
            b.len()
        })
        .collect();
    assert!(sizes.iter().any(|&n| n < 128) && sizes.iter().any(|&n| n >= 128));
    let block_bytes = 1024;
    let mut blocks = 0;
    let mut open = 0usize;
    for &n in &sizes {
        if open > 0 && open + n + 10 > block_bytes {
            blocks += 1;
            open = 0;
        }
        open += n + if n < 128 { 1 } else if n < 1 << 14 { 2 } else { 3 };
    }
    blocks += usize::from(open > 0);
    let file = write_all(&records, WriterOptions { block_bytes, zstd_level: 0 });
    let mut reader = Reader::new(&file[..]).unwrap();
    let back: Vec<Record> = reader.by_ref().map(|r| r.unwrap()).collect();
    assert_eq!(back, records);
    assert_eq!(reader.stats().blocks, blocks as u64);
}
