//! The report on replayed exchanges built from real captures: counts, exit
//! code, the listed differences, latency percentiles and lateness, and each
//! renderer read back (JSON parsed, JUnit XML parsed by quick-xml).

mod compare_support;

use compare_support::*;
use format::Protocol as P;
use quick_xml::events::Event;
use replayer::compare::compare_exchange;
use replayer::model::{Replayed, Side};
use replayer::noise::NoiseRules;
use replayer::report::{key_of, Report};

const MS: u64 = 1_000_000;

fn side(body: &str, latency_ms: u64) -> Side {
    let mut s = http_side("/orders/17?x=1", &http_response(200, &[("Content-Type", "application/json")], body));
    s.latency = Some(latency_ms * MS);
    s
}

/// Three exchanges: one matches, one differs, one failed; the differing
/// one's key has characters XML must escape.
fn exchanges() -> Vec<Replayed> {
    let odd_key = r#"GET /a<b>&"c'"#;
    let mut v = vec![
        replayed(P::Http, "GET /orders/17", side(r#"{"id": 1}"#, 1), Ok(side(r#"{"id": 1}"#, 2))),
        replayed(P::Http, odd_key, side(r#"{"id": 1}"#, 1), Ok(side(r#"{"id": 2}"#, 2))),
        replayed(P::Http, "GET /orders/17", side(r#"{"id": 1}"#, 1), Err("connection refused".into())),
    ];
    v[1].lambda = Some("other".into());
    v[0].scheduled = 10 * MS;
    v[0].sent = 15 * MS;
    v
}

fn report() -> Report {
    let mut r = Report::new();
    for ex in exchanges() {
        let d = compare_exchange(&ex, &NoiseRules::none());
        r.add(&ex, &d);
    }
    r.skip("read-only: writes", 3);
    r.skip("request truncated", 1);
    r
}

#[test]
fn counts_and_exit_code() {
    let r = report();
    assert_eq!((r.replayed, r.matched, r.differed, r.failed), (3, 1, 1, 1));
    assert_eq!(r.skipped.values().sum::<u64>(), 4);
    assert_eq!(r.exit_code(), 1);
    let mut clean = Report::new();
    let ex = &exchanges()[0];
    clean.add(ex, &compare_exchange(ex, &NoiseRules::none()));
    assert_eq!(clean.exit_code(), 0);
    assert_eq!(Report::new().exit_code(), 0);
}

#[test]
fn only_the_first_n_are_listed() {
    let mut r = Report::with_max_listed(2);
    let ex = &exchanges()[1];
    let d = compare_exchange(ex, &NoiseRules::none());
    for _ in 0..5 {
        r.add(ex, &d);
    }
    assert_eq!(r.differed, 5);
    assert_eq!(r.listed.len(), 2);
}

#[test]
fn text_report() {
    let t = report().text();
    assert!(t.starts_with("replayed 3, matched 1, differed 1, failed 1, skipped 4\n"), "{t}");
    assert!(t.contains("  skipped 3: read-only: writes\n"), "{t}");
    assert!(t.contains("first 2 of 2 differing or failed exchanges:"), "{t}");
    assert!(t.contains("- conn 0:1 GET /a<b>&\"c' lambda other (test)\n    body $.id\n      - recorded: 1\n      + replayed: 2\n"), "{t}");
    assert!(t.contains("    failed: connection refused\n"), "{t}");
    assert!(t.contains("latency by lambda (ms, recorded -> replayed):"), "{t}");
    // An aligned table: every row of one table has the same width.
    let table: Vec<&str> = t.lines().skip_while(|l| !l.starts_with("latency by key")).skip(1).take_while(|l| l.starts_with("  ")).collect();
    assert_eq!(table.len(), 3, "{t}");
    assert!(table.iter().all(|l| l.chars().count() == table[0].chars().count()), "{table:#?}");
    assert!(table[0].contains("p99.9"), "{t}");
    // HdrHistogram reports the top of a value's bucket (3 digits): 5.003.
    assert!(t.contains("schedule lateness (ms): p50 0.000  p99 5.00"), "{t}");
    assert!(t.contains("  fn      2  1.000 -> 2.000  "), "{t}");
}

fn near(got: u64, want: u64) -> bool {
    got.abs_diff(want) * 1000 <= want
}

#[test]
fn json_report_reads_back() {
    let r = report();
    let text = serde_json::to_string_pretty(&r.json()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["replayed"], 3);
    assert_eq!(v["matched"], 1);
    assert_eq!(v["differed"], 1);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["skipped"]["read-only: writes"], 3);
    assert_eq!(v["exit_code"], 1);
    let listed = v["differences"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["key"], r#"GET /a<b>&"c'"#);
    assert_eq!(listed[0]["lambda"], "other");
    assert_eq!(listed[0]["differences"][0], serde_json::json!({"field": "body $.id", "recorded": "1", "replayed": "2"}));
    assert_eq!(listed[1]["failure"], "connection refused");
    let by_key = v["latency"]["by_key"].as_array().unwrap();
    let orders = by_key.iter().find(|g| g["name"] == "GET /orders/17").unwrap();
    assert_eq!(orders["recorded"]["count"], 2);
    assert_eq!(orders["replayed"]["count"], 1, "the failed replay has no latency");
    for q in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
        assert!(near(orders["recorded"][q].as_u64().unwrap(), 1000), "{q}: {orders}");
        assert!(near(orders["replayed"][q].as_u64().unwrap(), 2000), "{q}: {orders}");
    }
    let lambdas: Vec<&str> = v["latency"]["by_lambda"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(lambdas, ["fn", "other"]);
    assert_eq!(v["latency"]["by_route"][0]["name"], "test");
    assert_eq!(v["lateness"]["count"], 3);
    assert!(near(v["lateness"]["max_us"].as_u64().unwrap(), 5000));
}

#[test]
fn junit_is_well_formed_xml() {
    let mut out = Vec::new();
    report().junit(&mut out).unwrap();
    let xml = String::from_utf8(out).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    let mut skipped = 0;
    let mut depth = 0i32;
    let mut in_failure = false;
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("not well-formed at {}: {e}\n{xml}", reader.buffer_position())) {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                let name = e.try_get_attribute("name").unwrap().unwrap();
                cases.push(name.unescape_value().unwrap().into_owned());
                if xml[..reader.buffer_position() as usize].ends_with("/>") {
                    continue;
                }
                depth += 1;
            }
            Event::Start(e) if e.name().as_ref() == b"failure" => {
                let m = e.try_get_attribute("message").unwrap().unwrap();
                failures.push(m.unescape_value().unwrap().into_owned());
                in_failure = true;
                depth += 1;
            }
            Event::Text(t) if in_failure => {
                let body = t.decode().unwrap().into_owned();
                failures.push(body);
            }
            Event::GeneralRef(_) if in_failure => {}
            Event::Empty(e) if e.name().as_ref() == b"skipped" => skipped += 1,
            Event::Start(_) => depth += 1,
            Event::End(e) => {
                if e.name().as_ref() == b"failure" {
                    in_failure = false;
                }
                depth -= 1;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced\n{xml}");
    assert_eq!(cases, [r#"GET /a<b>&"c'"#, "GET /orders/17", "read-only: writes", "request truncated"]);
    assert_eq!(skipped, 2);
    assert!(failures.contains(&"1 of 1 exchanges differed, 0 failed".to_owned()), "{failures:?}\n{xml}");
    assert!(failures.contains(&"0 of 2 exchanges differed, 1 failed".to_owned()), "{failures:?}\n{xml}");
    assert!(xml.contains("body $.id: recorded 1 / replayed 2"), "{xml}");
    assert!(xml.contains("failed: connection refused"), "{xml}");
}

#[test]
fn keys() {
    let http = fixture_sides("http/curl-keepalive.fx");
    assert_eq!(key_of(&http[2].summary), "GET /hello");
    let pg = fixture_sides("pg/psql.fx");
    assert_eq!(key_of(&pg[0].summary), "(session)");
    assert_eq!(key_of(&pg[1].summary), "select ? as one, now() is not null as t");
    let redis = fixture_sides("redis/cli-basic-1.fx");
    assert!(redis.iter().any(|s| key_of(&s.summary) == "LRANGE"));
}
