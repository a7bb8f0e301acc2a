//! Sessions per worker (`--session-key`) on the demo application's two
//! recordings read as two workers: the figures equal a count made here
//! independently, straight from the records (each invocation's request
//! body, its `user` field, and the source it ran on).

use format::{Body, Direction, Reader};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/demo/");

/// user -> sources, and the invocations without a user, counted by hand.
fn expected(traces: &[String]) -> (BTreeMap<String, BTreeSet<usize>>, u64) {
    let mut users: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let mut without = 0;
    for (src, path) in traces.iter().enumerate() {
        let mut waiting: HashMap<u64, ()> = HashMap::new();
        for record in Reader::open(path.as_ref()).unwrap() {
            let record = record.unwrap();
            match &record.body {
                Body::Invocation(i) => {
                    waiting.insert(i.conn, ());
                }
                Body::Message(m) if m.dir == Direction::ToServer && waiting.remove(&m.conn).is_some() => {
                    let bytes = m.data.bytes.as_bytes();
                    let at = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let body: serde_json::Value = serde_json::from_slice(&bytes[at..]).unwrap_or(serde_json::Value::Null);
                    match body.get("user") {
                        Some(u) => {
                            users.entry(u.to_string()).or_default().insert(src);
                        }
                        None => without += 1,
                    }
                }
                _ => {}
            }
        }
    }
    (users, without)
}

#[test]
fn sessions_per_worker_match_a_count_from_the_records() {
    let traces = vec![format!("{DEMO}demo.mp"), format!("{DEMO}demo-fixed.mp")];
    let (users, without) = expected(&traces);
    let with: u64 = {
        // Invocations with a user: every invocation less those without.
        let all: u64 = traces
            .iter()
            .map(|p| Reader::open(p.as_ref()).unwrap().filter(|r| matches!(r.as_ref().map(|r| &r.body), Ok(Body::Invocation(_)))).count() as u64)
            .sum();
        all - without
    };
    assert!(users.len() > 10 && without > 0, "the demo has sessions and invocations without one");

    let config = analyzer::Config {
        traces: traces.iter().map(Into::into).collect(),
        session_key: Some("json:user".parse().unwrap()),
        ..analyzer::Config::default()
    };
    let a = analyzer::run(&config).unwrap();
    let s = a.locality.sessions.expect("sessions are reported with --session-key");
    let spread: Vec<usize> = users.values().map(BTreeSet::len).collect();
    assert_eq!(s.key, "json:user");
    assert_eq!(s.sessions, users.len() as u64);
    assert_eq!(s.invocations_with_key, with);
    assert_eq!(s.invocations_without_key, without);
    assert_eq!(s.workers_max, *spread.iter().max().unwrap() as u64);
    let mean = spread.iter().sum::<usize>() as f64 / spread.len() as f64;
    assert!((s.workers_mean - mean).abs() < 1e-9, "{} vs {mean}", s.workers_mean);
    let one = spread.iter().filter(|&&n| n == 1).count() as f64 / spread.len() as f64;
    assert!((s.on_one_worker - one).abs() < 1e-9);
    assert!(!s.sampled);

    // One worker: every session on it.
    let one_trace = analyzer::Config { traces: vec![traces[0].clone().into()], ..config };
    let s = analyzer::run(&one_trace).unwrap().locality.sessions.unwrap();
    assert_eq!((s.workers_max, s.on_one_worker), (1, 1.0));

    // Without --session-key, no sessions section.
    let plain = analyzer::run(&analyzer::Config { traces: vec![traces[0].clone().into()], ..analyzer::Config::default() }).unwrap();
    assert!(plain.locality.sessions.is_none());
}
