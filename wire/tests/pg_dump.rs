//! Prints a one-line summary of every event of every pg fixture
//! (`cargo test --test pg_dump -- --nocapture`); asserts nothing but that
//! decoding runs. Handy when adding fixtures.
mod common;
use wire::pg::*;
use wire::{Event, Limits, MessageKind, Protocol};

pub fn line(e: &Event) -> String {
    match e {
        Event::Message(m) => {
            let k = match &m.kind {
                MessageKind::Pg(PgMessage::DataRows { count, len, rows }) => format!("DataRows count={count} len={len} rows={:?}", rows.iter().take(2).collect::<Vec<_>>()),
                MessageKind::Pg(p) => {
                    let s = format!("{p:?}");
                    s.chars().take(160).collect()
                }
                k => format!("{k:?}"),
            };
            format!("{:?} @{} len={} {k}", m.dir, m.offset, m.raw.len)
        }
        Event::Exchange(x) => format!("EXCHANGE {:?} req={} resp={} {:?}", x.status, x.request_bytes, x.response_bytes, x.detail).chars().take(900).collect(),
        Event::Opaque { reason, dir, offset, .. } => format!("OPAQUE {dir:?} @{offset} {reason}"),
        Event::RedisRun(r) => format!("REDIS RUN {:?} @{} n={}", r.dir, r.offset, r.len()),
    }
}

#[test]
fn dump() {
    for name in common::fixtures_in("pg") {
        if std::env::var("PG_DUMP").map(|v| !name.contains(&v)).unwrap_or(true) {
            continue;
        }
        println!("=== {name}");
        let chunks = common::load(&name);
        for e in common::decode(Protocol::Postgres, Limits::default(), &chunks) {
            println!("{}", line(&e));
        }
    }
}
