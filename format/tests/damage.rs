//! Damaged traces: cut at every byte offset, bytes flipped, versions from
//! the future, records from a newer minor version. The reader never
//! panics, recovers every intact block, and reports the damage.

use format::block::BLOCK_HEADER_LEN;
use format::synth::{Synth, SynthOptions};
use format::{Damage, DamageKind, FormatError, Header, Reader, Record, Writer, WriterOptions};

/// A sample trace in small blocks, with the file offset where each block
/// ends and the records each block holds.
fn sample() -> (Vec<u8>, Vec<Record>, Vec<(usize, usize)>) {
    let records: Vec<Record> = Synth::new(SynthOptions::default()).take(240).collect();
    let opts = WriterOptions { block_bytes: 2048, zstd_level: 3 };
    let mut w = Writer::new(Vec::new(), &Header::new("test", "t"), opts).unwrap();
    // (file length after the block, records written so far)
    let mut ends = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let before = w.stats().blocks;
        w.write(r).unwrap();
        if w.stats().blocks > before {
            ends.push((w.stats().bytes as usize, i)); // the block sealed held records 0..i
        }
    }
    w.flush().unwrap();
    ends.push((w.stats().bytes as usize, records.len()));
    let file = w.finish().unwrap();
    assert!(ends.len() > 10, "want many blocks, got {}", ends.len());
    (file, records, ends)
}

/// Every record a reader yields, and every damage report, in order.
fn read_all(reader: Reader<&[u8]>) -> (Vec<Record>, Vec<Damage>) {
    let mut good = Vec::new();
    let mut damage = Vec::new();
    for item in reader {
        match item {
            Ok(r) => good.push(r),
            Err(d) => damage.push(d),
        }
    }
    (good, damage)
}

fn prefix_len(file: &[u8]) -> usize {
    Header::read_prefix(&mut &file[..]).unwrap().2 as usize
}

#[test]
fn cut_at_every_byte_offset() {
    let (file, records, ends) = sample();
    let prefix = prefix_len(&file);
    for cut in 0..file.len() {
        let torn = &file[..cut];
        let reader = match Reader::new(torn) {
            Ok(r) => r,
            Err(FormatError::BadHeader(_)) => {
                assert!(cut < prefix, "a cut at {cut} after the prefix ({prefix}) must not hurt the header");
                continue;
            }
            Err(e) => panic!("cut at {cut}: unexpected error {e}"),
        };
        assert!(cut >= prefix);
        let (good, damage) = read_all(reader);
        // Every block that ends at or before the cut comes back whole.
        let intact = ends.iter().filter(|(end, _)| *end <= cut).map(|(_, n)| *n).max().unwrap_or(0);
        assert_eq!(good.len(), intact, "cut at {cut}");
        assert_eq!(&good[..], &records[..intact], "cut at {cut}");
        let at_boundary = cut == prefix || ends.iter().any(|(end, _)| *end == cut);
        if at_boundary {
            assert!(damage.is_empty(), "cut at a block boundary ({cut}) is a clean end, got {damage:?}");
        } else {
            assert_eq!(damage.len(), 1, "cut at {cut}: {damage:?}");
            assert_eq!(damage[0].kind, DamageKind::TornTail, "cut at {cut}");
            assert_eq!(damage[0].offset + damage[0].len, cut as u64);
        }
    }
}

#[test]
fn flipped_bytes_lose_only_their_block() {
    let (file, records, ends) = sample();
    let prefix = prefix_len(&file);
    // Flip each byte of the body in turn (stride keeps the test quick).
    let mut rng = 0x1234_5678_9abc_def0u64;
    for pos in (prefix..file.len()).step_by(7) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut bad = file.clone();
        bad[pos] ^= 1 | (rng as u8);
        let (good, damage) = read_all(Reader::new(&bad[..]).unwrap());
        // Which block holds `pos`: its records are lost, every other
        // block's are read back, in order.
        let k = ends.iter().position(|(end, _)| pos < *end).unwrap();
        let start_rec = if k == 0 { 0 } else { ends[k - 1].1 };
        let end_rec = ends[k].1;
        let mut expected = records[..start_rec].to_vec();
        expected.extend_from_slice(&records[end_rec..]);
        assert!(!damage.is_empty(), "flip at {pos} went unnoticed");
        assert_eq!(good.len(), expected.len(), "flip at {pos}: {damage:?}");
        assert_eq!(good, expected, "flip at {pos}");
        let block_start = if k == 0 { prefix } else { ends[k - 1].0 } as u64;
        assert_eq!(damage[0].offset, block_start, "flip at {pos}");
    }
}

#[test]
fn garbage_between_blocks_is_skipped() {
    let (file, records, ends) = sample();
    let split = ends[3].0;
    let mut bad = file[..split].to_vec();
    bad.extend_from_slice(b"OLBK this is not a block, just noise that starts like one");
    bad.extend(std::iter::repeat_n(0xAB, 5000));
    bad.extend_from_slice(&file[split..]);
    let (good, damage) = read_all(Reader::new(&bad[..]).unwrap());
    assert_eq!(good, records);
    assert_eq!(damage.len(), 1);
    assert_eq!(damage[0].kind, DamageKind::NotABlock);
    assert_eq!(damage[0].offset, split as u64);
    assert_eq!(damage[0].len, bad.len() as u64 - file.len() as u64);
}

#[test]
fn block_header_length_is_checked() {
    // A block header that claims more than the limit is not trusted.
    let (file, _, _) = sample();
    let prefix = prefix_len(&file);
    let mut bad = file.clone();
    bad[prefix + 16..prefix + 20].copy_from_slice(&u32::MAX.to_le_bytes());
    let items: Vec<_> = Reader::new(&bad[..]).unwrap().collect();
    assert!(matches!(items[0], Err(ref d) if d.kind == DamageKind::NotABlock && d.offset == prefix as u64));
    assert!(items.iter().filter(|i| i.is_ok()).count() > 200);
    let _ = BLOCK_HEADER_LEN;
}

#[test]
fn newer_major_version_is_refused() {
    let (mut file, _, _) = sample();
    file[8..10].copy_from_slice(&2u16.to_le_bytes());
    file[10..12].copy_from_slice(&0u16.to_le_bytes());
    match Reader::new(&file[..]) {
        Err(e @ FormatError::NewerMajor { found_major: 2, .. }) => {
            let text = e.to_string();
            assert!(text.contains("2.0") && text.contains("newer") && text.contains("upgrade"), "{text}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer major version was read"),
    }
}

#[test]
fn not_a_trace_is_refused() {
    let pcap = [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0];
    assert!(matches!(Reader::new(&pcap[..]), Err(FormatError::NotATrace)));
    assert!(matches!(Reader::new(&b""[..]), Err(FormatError::BadHeader(_))));
}

/// Records from a newer minor version: an unknown kind, an unknown enum
/// code, and an unknown variant of an inner enum are skipped and counted;
/// unknown fields (integer keys past the known ones, and a string key) in
/// known kinds are ignored; absent fields default.
#[test]
fn newer_minor_version_records_are_tolerated() {
    use format::codec::{put_map_len, put_str, put_uint};

    // Record: ts 0, src 1, body 2; a future version adds field 3 ("shard").
    fn record(out: &mut Vec<u8>, ts: u64, body: impl Fn(&mut Vec<u8>)) {
        put_map_len(out, 4);
        out.push(0);
        put_uint(out, ts);
        out.push(1);
        put_uint(out, 0);
        out.push(2);
        body(out);
        out.push(3); // unknown field
        put_uint(out, 77);
    }
    // A log line (Body variant 5: origin 0, stream 1, text 2, redacted 3)
    // with an unknown field 9 ("severity", a nested map even) and an
    // unknown string key.
    fn log(out: &mut Vec<u8>, stream: u64) {
        put_map_len(out, 1);
        out.push(5);
        put_map_len(out, 5);
        out.push(0);
        put_str(out, "w");
        out.push(1);
        put_uint(out, stream);
        out.push(2);
        put_str(out, "hi");
        out.push(9);
        put_map_len(out, 1);
        put_str(out, "level");
        put_str(out, "info");
        put_str(out, "x-note");
        put_uint(out, 1);
    }
    type Build = Box<dyn Fn(&mut Vec<u8>)>;
    let futures: Vec<Build> = vec![
        // An unknown kind (Body variant 8, "span").
        Box::new(|out| {
            record(out, 5, |out| {
                put_map_len(out, 1);
                out.push(8);
                put_map_len(out, 1);
                out.push(0);
                put_str(out, "x");
            })
        }),
        // A known kind with unknown fields.
        Box::new(|out| record(out, 6, |out| log(out, 0))),
        // A log stream code this build does not know.
        Box::new(|out| record(out, 7, |out| log(out, 9))),
        // A message whose decoded form is a variant this build does not
        // know (Decoded 4); message fields: conn 0, dir 1, data 4, decoded 5.
        Box::new(|out| {
            record(out, 8, |out| {
                put_map_len(out, 1);
                out.push(2);
                put_map_len(out, 3);
                out.push(1);
                put_uint(out, 1);
                out.push(4);
                put_map_len(out, 0);
                out.push(5);
                put_map_len(out, 1);
                out.push(4);
                put_map_len(out, 0);
            })
        }),
        // A connection close with only its id: every other field defaults.
        Box::new(|out| {
            record(out, 9, |out| {
                put_map_len(out, 1);
                out.push(1);
                put_map_len(out, 1);
                out.push(0);
                put_uint(out, 3);
            })
        }),
    ];
    let mut payload = Vec::new();
    for f in &futures {
        let mut one = Vec::new();
        f(&mut one);
        format::block::put_varint(&mut payload, one.len() as u64);
        payload.extend_from_slice(&one);
    }
    let mut file = Vec::new();
    Header::new("future", "f").write_prefix(&mut file).unwrap();
    let h = format::block::BlockHeader {
        codec: format::block::CODEC_STORED,
        count: futures.len() as u32,
        raw_len: payload.len() as u32,
        stored_len: payload.len() as u32,
        first_ts: 5,
        last_ts: 9,
        payload_crc: crc32fast::hash(&payload),
    };
    file.extend_from_slice(&h.encode());
    file.extend_from_slice(&payload);
    let mut reader = Reader::new(&file[..]).unwrap();
    let got: Vec<_> = reader.by_ref().collect();
    assert_eq!(got.len(), 2, "{got:?}");
    let rec = got[0].as_ref().unwrap();
    assert_eq!(rec.ts, 6);
    assert!(
        matches!(&rec.body, format::Body::Log(l) if l.text == "hi" && l.origin == "w" && l.stream == format::LogStream::Stdout),
        "{rec:?}"
    );
    let rec = got[1].as_ref().unwrap();
    assert_eq!(rec.ts, 9);
    assert_eq!(rec.body, format::Body::ConnClose(format::ConnClose { conn: 3, ..Default::default() }));
    assert_eq!(reader.stats().unknown_records, 3);
    assert_eq!(reader.stats().damaged, 0);
}
