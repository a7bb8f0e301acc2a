//! `record_notes`, the recorder without its threads (what `cargo bench
//! --bench record_cpu` measures), writes what the recording proxy would:
//! every command of a captured `redis-benchmark -P 16` conversation with
//! its reply and exchange, redacted, in a trace that reads back whole.

use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;
use tracer::proxy::recorder::{record_notes, RecorderOptions};
use tracer::proxy::tap::Note;
use wire::testing::load_fixture;
use wire::{Limits, Protocol};

#[test]
fn record_notes_writes_every_exchange_of_a_pipelined_conversation() {
    let chunks = load_fixture("redis/bench-p16-2.fx");
    let mut notes = vec![Note::Open {
        conn: 7,
        protocol: Protocol::Redis,
        client: "127.0.0.1:1".into(),
        server: "127.0.0.1:6379".into(),
        route: "redis:1".into(),
        tls: None,
        ts: 1,
    }];
    notes.extend(chunks.iter().map(|c| Note::Data { conn: 7, dir: c.dir, data: Bytes::from(c.data.clone()), ts: c.ts }));
    notes.push(Note::Close { conn: 7, ts: u64::MAX / 2, bytes_to_server: 0, bytes_to_client: 0, error: None });

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.mp");
    let mut writer = format::Writer::create(&path, &format::Header::new("test", "test"), format::WriterOptions::default()).unwrap();
    let opts = RecorderOptions {
        queue: 16,
        redact: convert::redact::Rules::default(),
        limits: Limits::default(),
        flush_interval: Duration::from_millis(100),
        defer: 0,
        invocation_routes: HashMap::new(),
        stop_decoding: Default::default(),
        progress: false,
    };
    let summary = record_notes(&mut writer, opts, notes);
    writer.finish().unwrap();
    assert_eq!(summary.error, None);
    assert_eq!(summary.exchanges.get("redis"), Some(&208));

    let records: Vec<format::Record> = format::Reader::open(&path).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(records.len() as u64, summary.records);
    let count = |kind: &str| records.iter().filter(|r| r.body.kind() == kind).count();
    assert_eq!((count("conn_open"), count("message"), count("exchange"), count("conn_close")), (1, 416, 208, 1));
    let sets = records
        .iter()
        .filter(|r| matches!(&r.body, format::Body::Exchange(x) if matches!(&x.summary, format::ExchangeSummary::Redis(s) if s.command == "SET")))
        .count();
    assert_eq!(sets, 208, "every exchange of this capture is a SET");
}
