//! olanalyze on traces written here with `format::Writer`: patterns planted
//! with exact timings must be found in exactly the lambdas that have them
//! (precision and recall), time shares must add up to wall time, class
//! counts must equal the statements sent; bad input gets exit 1 or 2.

mod common;

use common::*;
use format::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MS: u64 = 1_000_000;
const GATEWAY: u64 = 1;
const PG: u64 = 2;
const REDIS: u64 = 3;
const OUT: u64 = 4;

/// Writes invocations and their calls, in the recorder's order.
struct Trace {
    records: Vec<Record>,
    next_id: u64,
    /// (protocol, statements or commands) sent.
    sent: BTreeMap<&'static str, u64>,
}

enum Call {
    Sql { at: u64, ms: u64, sql: &'static str, params: Vec<&'static str>, txn: &'static str },
    Redis { at: u64, ms: u64, args: Vec<String> },
    Http { at: u64, ms: u64, path: String },
}

impl Trace {
    fn new() -> Trace {
        let mut t = Trace { records: Vec::new(), next_id: 0, sent: BTreeMap::new() };
        for (conn, protocol, server) in
            [(GATEWAY, Protocol::Http, "worker:8080"), (PG, Protocol::Postgres, "db:5432"), (REDIS, Protocol::Redis, "cache:6379"), (OUT, Protocol::Http, "pay:80")]
        {
            t.push(0, Body::ConnOpen(ConnOpen { conn, protocol, client: "10.0.0.1:5000".into(), server: server.into(), route: format!("{protocol}"), tls: None }));
        }
        t
    }

    fn push(&mut self, ts: u64, body: Body) {
        self.records.push(Record { ts, src: 0, body });
    }

    fn exchange(ts: u64, end: u64, conn: u64, summary: ExchangeSummary, invocation: Option<u64>, method: AttributionMethod) -> Body {
        Body::Exchange(Exchange {
            conn,
            request_last: ts + MS / 20,
            response_first: Some(end - MS / 20),
            response_last: Some(end),
            request_bytes: 60,
            response_bytes: 120,
            status: ExchangeStatus::Complete,
            summary,
            attribution: invocation.map(|invocation| Attribution { invocation, method }),
        })
    }

    /// One invocation of `lambda` at `start` lasting `wall` ms, with `calls`
    /// (times in ms from its start).
    fn invocation(&mut self, lambda: &str, start: u64, wall: u64, calls: Vec<Call>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let t0 = start * MS;
        self.push(t0, Body::Invocation(Invocation { id, conn: GATEWAY, lambda: lambda.into(), platform: "openlambda".into(), request_id: None, trace_id: None }));
        for c in calls {
            match c {
                Call::Sql { at, ms, sql, params, txn } => {
                    let ts = t0 + at * MS;
                    *self.sent.entry("postgres").or_default() += 1;
                    if !params.is_empty() {
                        let bind = PgMessage { kind: "Bind".into(), params: params.iter().map(|p| Some(p.to_string())).collect(), ..Default::default() };
                        self.push(ts, Body::Message(Message { conn: PG, dir: Direction::ToServer, last_ts: ts, offset: 0, data: Payload::whole(b"B".to_vec()), decoded: Some(Decoded::Pg(bind)), redacted: false }));
                    }
                    let summary = ExchangeSummary::Pg(PgExchange { statements: vec![sql.into()], extended: !params.is_empty(), tags: vec![], rows: 1, error: None, txn: Some(txn.into()) });
                    self.push(ts, Self::exchange(ts, ts + ms * MS, PG, summary, Some(id), AttributionMethod::Sqlcommenter));
                }
                Call::Redis { at, ms, args } => {
                    let ts = t0 + at * MS;
                    *self.sent.entry("redis").or_default() += 1;
                    let summary = ExchangeSummary::Redis(RedisExchange { command: args[0].clone(), args: args[1..].iter().map(|a| BStr(a.as_bytes().to_vec())).collect(), reply: None });
                    self.push(ts, Self::exchange(ts, ts + ms * MS, REDIS, summary, Some(id), AttributionMethod::ConnectionWindow));
                }
                Call::Http { at, ms, path } => {
                    let ts = t0 + at * MS;
                    *self.sent.entry("http").or_default() += 1;
                    let summary = ExchangeSummary::Http(HttpExchange { method: "POST".into(), target: path, host: Some("pay".into()), status: Some(200), ..Default::default() });
                    self.push(ts, Self::exchange(ts, ts + ms * MS, OUT, summary, Some(id), AttributionMethod::Traceparent));
                }
            }
        }
        let summary = ExchangeSummary::Http(HttpExchange { method: "POST".into(), target: format!("/run/{lambda}"), status: Some(200), ..Default::default() });
        self.push(t0, Self::exchange(t0, t0 + wall * MS, GATEWAY, summary, None, AttributionMethod::Traceparent));
        id
    }

    fn write(&mut self, path: &Path) {
        // Exchanges are written when they end, as the recorder does.
        self.records.sort_by_key(|r| match &r.body {
            Body::Exchange(e) => e.response_last.unwrap_or(r.ts),
            _ => r.ts,
        });
        let mut w = Writer::create(path, &Header::new("test", "planted"), WriterOptions::default()).unwrap();
        for r in &self.records {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
    }
}

fn sql(at: u64, ms: u64, sql: &'static str) -> Call {
    Call::Sql { at, ms, sql, params: vec![], txn: "I" }
}

fn redis(at: u64, ms: u64, args: &[&str]) -> Call {
    Call::Redis { at, ms, args: args.iter().map(|a| a.to_string()).collect() }
}

/// The planted application: each lambda with its pattern, or none.
fn planted(t: &mut Trace) -> BTreeMap<&'static str, Vec<&'static str>> {
    planted_with(t, false)
}

/// With `fixed`, the blog fetches every post's comments in one query.
fn planted_with(t: &mut Trace, fixed: bool) -> BTreeMap<&'static str, Vec<&'static str>> {
    const POSTS: [&str; 10] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"];
    for round in 0..3u64 {
        let base = round * 2000;
        // N+1: a list, then one query per post (extended protocol, one
        // parameter each), 10 x 7 ms.
        let mut calls = vec![sql(1, 2, "SELECT id, title FROM posts ORDER BY id LIMIT 10")];
        if fixed {
            calls.push(Call::Sql { at: 4, ms: 9, sql: "SELECT author, body FROM comments WHERE post_id = ANY($1)", params: vec!["{1,2,3,4,5,6,7,8,9,10}"], txn: "I" });
        }
        for (i, p) in POSTS.iter().enumerate().filter(|_| !fixed) {
            calls.push(Call::Sql { at: 4 + 8 * i as u64, ms: 7, sql: "SELECT author, body FROM comments WHERE post_id = $1", params: vec![p], txn: "I" });
        }
        t.invocation("blog", base, 100, calls);
        // Repeated: the session read and the user query, twice each.
        let user = Call::Sql { at: 3, ms: 2, sql: "SELECT id, name FROM users WHERE id = $1", params: vec!["7"], txn: "I" };
        let user2 = Call::Sql { at: 9, ms: 2, sql: "SELECT id, name FROM users WHERE id = $1", params: vec!["7"], txn: "I" };
        t.invocation("feed", base + 200, 20, vec![redis(1, 1, &["GET", "session:s1"]), user, redis(6, 1, &["GET", "session:s1"]), user2, sql(12, 3, "SELECT title FROM posts WHERE author_id = 7")]);
        // Serial: five different slow reads one after another.
        let slow = ["SELECT max(p) FROM prices", "SELECT min(p) FROM prices", "SELECT s FROM alerts", "SELECT avg(p) FROM prices", "SELECT max(d) FROM prices"];
        let mut calls: Vec<Call> = slow.iter().enumerate().map(|(i, q)| sql(1 + 41 * i as u64, 40, q)).collect();
        calls.push(sql(210, 2, "INSERT INTO runs VALUES (1)"));
        t.invocation("stock_alert", base + 300, 215, calls);
        // Fan-out: four calls at once.
        let mut calls = vec![sql(1, 2, "UPDATE users SET seen = now() WHERE id = 3")];
        calls.extend((0..4).map(|i| Call::Http { at: 5, ms: 20 + i, path: format!("/notify/{}", 10 + i) }));
        t.invocation("nearby", base + 600, 30, calls);
        // Chatty: 30 tiny Redis round trips, three kinds in turn.
        let mut calls = Vec::new();
        for i in 0..10u64 {
            calls.push(redis(1 + 3 * i, 1, &["HGETALL", &format!("msg:{i}")]));
            calls.push(redis(2 + 3 * i, 1, &["GET", &format!("user:{i}:name")]));
            calls.push(redis(3 + 3 * i, 1, &["EXISTS", &format!("online:{i}")]));
        }
        t.invocation("chat", base + 700, 35, calls);
        // A transaction held open across a 60 ms payment call.
        let calls = vec![
            Call::Sql { at: 1, ms: 1, sql: "BEGIN", params: vec![], txn: "T" },
            Call::Sql { at: 3, ms: 2, sql: "SELECT id FROM seats WHERE NOT sold LIMIT 1 FOR UPDATE", params: vec![], txn: "T" },
            Call::Http { at: 6, ms: 60, path: "/pay".into() },
            Call::Sql { at: 67, ms: 1, sql: "UPDATE seats SET sold = true WHERE id = 4", params: vec![], txn: "T" },
            Call::Sql { at: 69, ms: 1, sql: "COMMIT", params: vec![], txn: "I" },
        ];
        t.invocation("tickets", base + 800, 72, calls);
        // Clean lambdas.
        t.invocation("post", base + 900, 10, vec![sql(1, 3, "SELECT title FROM posts WHERE id = 5"), redis(5, 1, &["INCR", "views:5"])]);
        t.invocation("autocomplete", base + 950, 4, vec![redis(1, 2, &["ZRANGEBYLEX", "words", "[ab", "[ab\u{ff}"])]);
    }
    [
        ("blog", vec!["n_plus_one"]),
        ("feed", vec!["repeated_call"]),
        ("stock_alert", vec!["serial_calls"]),
        ("nearby", vec!["fan_out"]),
        ("chat", vec!["chatty"]),
        ("tickets", vec!["txn_across_wait"]),
        ("post", vec![]),
        ("autocomplete", vec![]),
    ]
    .into_iter()
    .collect()
}

/// Lambda -> patterns found in it.
fn found(v: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in v["lambdas"].as_array().unwrap() {
        m.entry(l["lambda"].as_str().unwrap().to_owned()).or_default();
    }
    for f in v["patterns"].as_array().unwrap() {
        m.entry(f["lambda"].as_str().unwrap().to_owned()).or_default().insert(f["pattern"].as_str().unwrap().to_owned());
    }
    m
}

#[test]
fn planted_patterns_are_found_exactly_where_planted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planted.mp");
    let mut t = Trace::new();
    let expected = planted(&mut t);
    t.write(&path);
    let v = json(&[path.to_str().unwrap()]);
    let expected: BTreeMap<String, BTreeSet<String>> =
        expected.iter().map(|(k, v)| (k.to_string(), v.iter().map(|p| p.to_string()).collect())).collect();
    assert_eq!(found(&v), expected, "{}", serde_json::to_string_pretty(&v["patterns"]).unwrap());
    // Evidence: every finding names all three invocations and a worst one.
    for f in v["patterns"].as_array().unwrap() {
        assert_eq!((f["invocations"].as_u64(), f["of"].as_u64()), (Some(3), Some(3)), "{f}");
        assert!(f["worst_ms"].as_f64().unwrap() > 0.0 && !f["example"].as_str().unwrap().is_empty(), "{f}");
    }
    let by = |p: &str| v["patterns"].as_array().unwrap().iter().find(|f| f["pattern"] == p).unwrap().clone();
    // N+1 saves all but one of the ten 7 ms queries; serial calls all but
    // one of five 40 ms reads; the transaction waited on the 60 ms call.
    assert!((by("n_plus_one")["worst_ms"].as_f64().unwrap() - 63.0).abs() < 0.01);
    assert!((by("serial_calls")["worst_ms"].as_f64().unwrap() - 160.0).abs() < 0.01);
    assert!((by("txn_across_wait")["worst_ms"].as_f64().unwrap() - 60.0).abs() < 0.01);
    assert!(by("repeated_call")["example"].as_str().unwrap().contains("[7]"));

    // Time shares add up to the wall time, per lambda (each invocation's
    // parts over its end less start, so this fails if a part is lost).
    for l in v["lambdas"].as_array().unwrap() {
        let sum: f64 = l["time"].as_array().unwrap().iter().map(|s| s["mean_pct"].as_f64().unwrap()).sum();
        assert!((sum - 100.0).abs() < 1.0, "{}: shares add up to {sum}", l["lambda"]);
    }
    // The nearby lambda waits on HTTP for 23 of its 30 ms, PostgreSQL 2.
    let nearby = v["lambdas"].as_array().unwrap().iter().find(|l| l["lambda"] == "nearby").unwrap();
    let share = |part: &str| nearby["time"].as_array().unwrap().iter().find(|s| s["part"] == part).unwrap()["mean_pct"].as_f64().unwrap();
    assert!((share("http") - 100.0 * 23.0 / 30.0).abs() < 0.1 && (share("postgres") - 100.0 * 2.0 / 30.0).abs() < 0.1);

    // Class counts equal the statements and commands sent.
    let classes = &v["classes"];
    let mut per_protocol: BTreeMap<String, u64> = BTreeMap::new();
    for c in classes["rows"].as_array().unwrap().iter().chain(classes["rest"].as_object().map(|_| &classes["rest"])) {
        assert!(c["protocol"] != "mixed" || classes["rows"].as_array().unwrap().len() == 20);
        *per_protocol.entry(c["protocol"].as_str().unwrap().to_owned()).or_default() += c["count"].as_u64().unwrap();
    }
    let sent: u64 = t.sent.values().sum();
    assert_eq!(classes["calls"].as_u64(), Some(sent));
    let comments = classes["rows"].as_array().unwrap().iter().find(|c| c["key"] == "select author, body from comments where post_id = ?").unwrap();
    assert_eq!(comments["count"].as_u64(), Some(30));
    assert_eq!(v["overview"]["invocations"].as_u64(), Some(24));

    // --lambda keeps one lambda; the text report fits 80 columns.
    let only = json(&[path.to_str().unwrap(), "--lambda", "blog"]);
    assert_eq!(found(&only).keys().collect::<Vec<_>>(), ["blog"]);
    let (code, text, _) = olanalyze(&[path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_fits_80_columns(&text);
    assert!(text.contains("n_plus_one") && text.contains("CALL CLASSES"));
    assert!(!text.contains('\x1b'));
}

#[test]
fn waterfall_shows_every_call_of_one_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.mp");
    let mut t = Trace::new();
    planted(&mut t);
    t.write(&path);
    // Invocation 5 is the first tickets one.
    let v = json(&[path.to_str().unwrap(), "--invocation", "5"]);
    let w = &v["waterfall"];
    assert_eq!(w["lambda"], "tickets");
    assert_eq!(w["steps"].as_array().unwrap().len(), 5);
    assert_eq!(w["steps"][2]["attribution"], "traceparent");
    assert!((w["steps"][2]["at_ms"].as_f64().unwrap() - 6.0).abs() < 1e-9);
    // Where its time went: pg 1+2+1+1, http 60, own the other 7 of 72 ms.
    let t = &w["time_ms"];
    let got = ["postgres", "redis", "http", "own"].map(|p| t[p].as_f64().unwrap());
    for (got, want) in got.iter().zip([5.0, 0.0, 60.0, 7.0]) {
        assert!((got - want).abs() < 1e-6, "{t}");
    }
    let (code, text, _) = olanalyze(&[path.to_str().unwrap(), "--invocation", "5"]);
    assert_eq!(code, 0);
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(text.contains("waiting: postgres 5.0 ms, redis 0.0, http 60.0; own 7.0"), "{text}");
    assert_fits_80_columns(&text);
    // Every invocation's parts add up to its wall time, and each lambda's
    // slowest drawn in the report too.
    for id in 0..24 {
        assert_split_adds_up(&json(&[path.to_str().unwrap(), "--invocation", &id.to_string()])["waterfall"]);
    }
    let all = json(&[path.to_str().unwrap()]);
    assert_eq!(all["waterfalls"].as_array().unwrap().len(), 8);
    all["waterfalls"].as_array().unwrap().iter().for_each(assert_split_adds_up);
    let (code, _, err) = olanalyze(&[path.to_str().unwrap(), "--invocation", "999"]);
    assert_eq!(code, 2);
    assert!(err.contains("no invocation 999"), "{err}");
}

#[test]
fn bad_input_torn_trace_and_not_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.mp");
    let mut t = Trace::new();
    planted(&mut t);
    // Many blocks, so that a torn tail leaves most of the trace.
    for i in 0..200 {
        t.invocation("post", 10_000 + i * 20, 10, vec![sql(1, 3, "SELECT title FROM posts WHERE id = 5")]);
    }
    let mut w = Writer::create(&path, &Header::new("test", "torn"), WriterOptions::default()).unwrap();
    t.records.sort_by_key(|r| r.ts);
    for (i, r) in t.records.iter().enumerate() {
        w.write(r).unwrap();
        if i % 50 == 0 {
            w.flush().unwrap();
        }
    }
    w.finish().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 40).unwrap();
    let (code, out, err) = olanalyze(&[path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let damage = v["overview"]["damage"].as_array().unwrap();
    assert_eq!(damage.len(), 1);
    assert!(damage[0].as_str().unwrap().contains("torn tail"), "{damage:?}");
    assert!(v["overview"]["invocations"].as_u64().unwrap() > 200);
    assert!(err.contains("damaged"), "{err}");

    let not = dir.path().join("notes.txt");
    std::fs::write(&not, "hello, this is not a trace\n").unwrap();
    let (code, out, err) = olanalyze(&[not.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("not an oltrace trace file") && err.contains("notes.txt"), "{err}");
    let (code, _, err) = olanalyze(&[dir.path().join("missing.mp").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.mp"), "{err}");
}

#[test]
fn sample_trace() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/sample-serverless.mp");
    let v = json(&[sample]);
    assert_eq!(v["overview"]["invocations"].as_u64(), Some(214));
    // Every PostgreSQL and Redis exchange is a call in some class.
    let ex = &v["overview"]["exchanges"];
    assert_eq!(v["classes"]["calls"].as_u64().unwrap(), ex["postgres"].as_u64().unwrap() + ex["redis"].as_u64().unwrap());
    assert_eq!(v["overview"]["damage"].as_array().unwrap().len(), 0);
    assert_eq!(v["lambdas"].as_array().unwrap().len(), 5);
}

#[test]
fn diff_gates_on_new_patterns_and_calls_per_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let (fixed, plain) = (dir.path().join("fixed.mp"), dir.path().join("plain.mp"));
    let mut t = Trace::new();
    planted_with(&mut t, true);
    t.write(&fixed);
    let mut t = Trace::new();
    planted_with(&mut t, false);
    t.write(&plain);
    let (fixed, plain) = (fixed.to_str().unwrap(), plain.to_str().unwrap());
    // The N+1 comes back: exit 1, and the rule broken is named.
    let (code, out, err) = olanalyze(&["diff", fixed, plain, "--fail-on", "new-pattern:n+1"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("BROKEN: blog: new pattern n_plus_one"), "{out}");
    // Fixed: the pattern is gone, no rule broken.
    let (code, out, _) = olanalyze(&["diff", plain, fixed, "--fail-on", "new-pattern:n+1", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["gone_patterns"], serde_json::json!(["blog: n_plus_one"]));
    let blog = v["lambdas"].as_array().unwrap().iter().find(|l| l["lambda"] == "blog").unwrap();
    assert_eq!((blog["base_calls_per_invocation"].as_f64(), blog["new_calls_per_invocation"].as_f64()), (Some(11.0), Some(2.0)));
    // 2 -> 11 calls per invocation breaks +10%; the same trace twice does not.
    let (code, out, _) = olanalyze(&["diff", fixed, plain, "--fail-on", "calls-per-invocation:+10%"]);
    assert_eq!(code, 1);
    assert!(out.contains("blog: calls per invocation 2.00 -> 11.00"), "{out}");
    assert_eq!(olanalyze(&["diff", plain, plain, "--fail-on", "calls-per-invocation:+10%", "--fail-on", "new-pattern"]).0, 0);
    let (code, _, err) = olanalyze(&["diff", plain, plain, "--fail-on", "new-pattern:n+2"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown pattern"), "{err}");
}

#[test]
fn html_renders_in_chromium_with_the_json_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planted.mp");
    let mut t = Trace::new();
    planted(&mut t);
    t.write(&path);
    let page = dir.path().join("report.html");
    let v = json(&[path.to_str().unwrap(), "--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch.
    for needle in ["http://", "https://", "src=", "<link"] {
        assert!(!html.contains(needle), "the page refers to {needle}");
    }
    let dom = rendered(&page);
    let o = &v["overview"];
    let overview = &dom[dom.find("<table id=\"overview\"").unwrap()..dom.find("id=\"lambdas\"").unwrap()];
    for k in ["invocations", "records", "concurrency_max"] {
        assert!(overview.contains(&format!("data-k=\"{k}\" data-v=\"{}\"", o[k])), "{k}: {overview}");
    }
    // Per lambda (latency histograms included) and sessions.
    assert_page_matches_json(&dom, &v);
    let counts = table_values(&dom, "classes", "count");
    let mut rows = v["classes"]["rows"].as_array().unwrap().clone();
    rows.extend(v["classes"]["rest"].as_object().map(|_| v["classes"]["rest"].clone()));
    assert_eq!(counts.len(), rows.len());
    for c in &rows {
        assert_eq!(counts[&html_escape(c["key"].as_str().unwrap())], c["count"].to_string(), "{c}");
    }
    let found = table_values(&dom, "patterns", "invocations");
    assert_eq!(found.len(), v["patterns"].as_array().unwrap().len());
    assert!(found.contains_key("n_plus_one") && found.contains_key("txn_across_wait"));
    // And a screenshot, for people.
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("olanalyze-report.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&page, &[&format!("--screenshot={}", shot.display()), "--window-size=1200,2400"]);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
}
