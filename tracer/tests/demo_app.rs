//! The demo application (`traces/demo/`), recorded for real: its record
//! script runs the Python worker under `oltrace wrap` for 40 invocations,
//! and the trace must hold every invocation, each with exactly the calls
//! its lambda declares in `expected.json`, attributed by proof where the
//! protocol can carry a trace id (sqlcommenter on PostgreSQL, traceparent on
//! outbound HTTP) and by the connection window for Redis, which cannot; and
//! the shapes the lambdas plant for `olanalyze` (N+1, a repeated key, slow
//! serial queries, fan-out, a transaction across a payment call) must be
//! there in the raw records.
//!
//! Needs python3 with psycopg 3 and redis-py, PostgreSQL on 127.0.0.1:5432
//! (trust, database `test`) and Redis on 127.0.0.1:6379 (`.ci/run`).

use format::{AttributionMethod, Body, Exchange, ExchangeSummary, Invocation, Reader, Record};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

const INVOCATIONS: usize = 40;

/// One downstream call, as the checks below need it.
struct Call<'a> {
    start: u64,
    end: u64,
    proto: &'static str,
    x: &'a Exchange,
}

impl Call<'_> {
    /// A PostgreSQL call's statement without its sqlcommenter comment, a
    /// Redis call's command and key, an HTTP call's method and target.
    fn text(&self) -> String {
        match &self.x.summary {
            ExchangeSummary::Pg(p) => p.statements.join(";").split(" /*").next().unwrap().to_string(),
            ExchangeSummary::Redis(r) => format!("{} {}", r.command, r.args.first().map(|a| a.to_text().into_owned()).unwrap_or_default()),
            ExchangeSummary::Http(h) => format!("{} {}", h.method, h.target),
        }
    }
}

#[test]
fn the_demo_app_records_every_call_attributed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new("python3")
        .arg(repo.join("traces/demo/record.py"))
        .args(["--invocations", &INVOCATIONS.to_string(), "--only", "plain", "--out-dir"])
        .arg(dir.path())
        .args(["--oltrace", env!("CARGO_BIN_EXE_oltrace")])
        .output()
        .expect("python3 runs (.ci/run installs it, with psycopg and redis)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "record.py failed: {stderr}");
    assert!(stderr.contains(&format!("{INVOCATIONS} invocations")), "wrap's summary: {stderr}");

    let expected: Value = serde_json::from_slice(&std::fs::read(dir.path().join("expected.json")).unwrap()).unwrap();
    let records: Vec<Record> = Reader::open(&dir.path().join("demo.mp")).unwrap().map(|r| r.unwrap()).collect();
    let routes: HashMap<u64, &str> =
        records.iter().filter_map(|r| if let Body::ConnOpen(c) = &r.body { Some((c.conn, c.route.as_str())) } else { None }).collect();
    let invocations: BTreeMap<u64, (u64, &Invocation)> =
        records.iter().filter_map(|r| if let Body::Invocation(i) = &r.body { Some((i.id, (r.ts, i))) } else { None }).collect();

    // Every invocation the driver sent, once, named after its request id.
    assert_eq!(invocations.len(), INVOCATIONS);
    let mut per_lambda: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, (_, inv)) in invocations.values().enumerate() {
        assert_eq!(inv.request_id.as_deref(), Some(format!("demo-{i:04}-{}", inv.lambda).as_str()), "{inv:?}");
        assert_eq!(inv.platform, "openlambda");
        assert!(inv.trace_id.as_ref().is_some_and(|t| t.len() == 32), "an injected trace id: {inv:?}");
        *per_lambda.entry(&inv.lambda).or_default() += 1;
    }
    let want: BTreeMap<&str, u64> =
        expected["invocations_per_lambda"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_u64().unwrap())).collect();
    assert_eq!(per_lambda, want, "invocations per lambda, as expected.json says");
    assert_eq!(want.len(), 8, "every lambda was invoked");

    // Downstream calls, grouped by the invocation they are attributed to.
    let worker_conns: Vec<u64> = invocations.values().map(|(_, i)| i.conn).collect();
    let first_invocation = invocations.values().map(|(ts, _)| *ts).min().unwrap();
    let mut calls: HashMap<u64, Vec<Call>> = HashMap::new();
    let mut answered = 0;
    for r in &records {
        let Body::Exchange(x) = &r.body else { continue };
        if worker_conns.contains(&x.conn) {
            // The gateway's side: each invocation answered 200.
            match &x.summary {
                ExchangeSummary::Http(h) if h.target.starts_with("/run/") => {
                    assert_eq!(h.status, Some(200), "{x:?}");
                    answered += 1;
                }
                _ => {}
            }
            continue;
        }
        let proto = match &x.summary {
            ExchangeSummary::Pg(_) => "postgres",
            ExchangeSummary::Redis(_) => "redis",
            ExchangeSummary::Http(_) => "http",
        };
        let call = Call { start: r.ts, end: x.response_last.unwrap_or(x.request_last), proto, x };
        match &x.attribution {
            Some(a) => calls.entry(a.invocation).or_default().push(call),
            // Unattributed: only the connections' setup (psycopg's startup,
            // redis-py's HELLO, CLIENT and PING) before the first invocation,
            // and psycopg's Terminate as the worker exits.
            None => assert!(
                r.ts < first_invocation || matches!(&x.summary, ExchangeSummary::Pg(p) if p.statements.is_empty()),
                "an unattributed call during the run: {x:?}"
            ),
        }
    }
    assert_eq!(answered, INVOCATIONS);

    for (id, (_, inv)) in &invocations {
        let trace_id = inv.trace_id.as_deref().unwrap();
        let mine = calls.get(id).map(Vec::as_slice).unwrap_or_default();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for c in mine {
            *counts.entry(c.proto).or_default() += 1;
            let method = c.x.attribution.as_ref().unwrap().method;
            match &c.x.summary {
                // One statement per exchange, carrying the trace id.
                ExchangeSummary::Pg(p) => {
                    assert_eq!(method, AttributionMethod::Sqlcommenter, "{:?}", c.x);
                    assert_eq!(p.statements.len(), 1, "{:?}", c.x);
                    assert!(p.statements[0].contains(&format!("traceparent='00-{trace_id}-")), "{:?}", c.x);
                    assert!(p.error.is_none(), "{:?}", c.x);
                }
                ExchangeSummary::Redis(r) => {
                    assert_eq!(method, AttributionMethod::ConnectionWindow, "Redis carries no trace id: {:?}", c.x);
                    assert!(r.args.first().is_some_and(|k| k.to_text().starts_with("demo:")), "{:?}", c.x);
                }
                // Outbound, through the forward proxy, to the payment/notify service.
                ExchangeSummary::Http(h) => {
                    assert_eq!(method, AttributionMethod::Traceparent, "{:?}", c.x);
                    assert!(routes[&c.x.conn].starts_with("forward-proxy"), "{:?}", c.x);
                    assert_eq!(h.status, Some(200), "{:?}", c.x);
                    assert!(h.target.contains("/pay") || h.target.contains("/notify/"), "{:?}", c.x);
                }
            }
        }
        let declared = &expected["calls_per_invocation"][&inv.lambda];
        for proto in ["postgres", "redis", "http"] {
            let want = declared[proto].as_u64().unwrap();
            assert_eq!(counts.get(proto).copied().unwrap_or(0), want, "{proto} calls of {inv:?}");
        }
        check_planted_shape(&inv.lambda, mine);
    }
}

/// The raw shape each lambda plants, as `traces/README.md` describes it.
fn check_planted_shape(lambda: &str, calls: &[Call]) {
    let texts: Vec<String> = calls.iter().map(Call::text).collect();
    let ms = |c: &Call| (c.end - c.start) as f64 / 1e6;
    match lambda {
        // A list query, then one comments query per post.
        "blog" => {
            assert!(texts[0].contains("FROM demo_posts"), "{texts:?}");
            assert!(texts[1..].iter().all(|t| *t == texts[1] && t.contains("FROM demo_comments")), "{texts:?}");
        }
        // The session key and the user query, each twice.
        "feed" => {
            assert_eq!((texts[0].as_str(), &texts[1]), (texts[2].as_str(), &texts[3]), "{texts:?}");
        }
        // Five slow queries one after another, each over 30 ms.
        "stock_alert" => {
            for pair in calls[..5].windows(2) {
                assert!(pair[0].end <= pair[1].start, "serial: {texts:?}");
            }
            assert!(calls[..5].iter().all(|c| ms(c) > 30.0), "{:?}", calls.iter().map(ms).collect::<Vec<_>>());
        }
        // The notify calls are all outstanding at once.
        "nearby" => {
            let http: Vec<&Call> = calls.iter().filter(|c| c.proto == "http").collect();
            let last_start = http.iter().map(|c| c.start).max().unwrap();
            let first_end = http.iter().map(|c| c.end).min().unwrap();
            assert!(last_start < first_end, "the {} notify calls overlap", http.len());
        }
        // The payment call inside BEGIN .. COMMIT.
        "tickets" => {
            let at = |s: &str| calls.iter().position(|c| c.text() == s).unwrap_or_else(|| panic!("{s} in {texts:?}"));
            let pay = calls.iter().position(|c| c.proto == "http").unwrap();
            assert!(at("BEGIN") < pay && pay < at("COMMIT"), "{texts:?}");
        }
        // No call repeated: every key and statement-with-parameters once.
        "chat" | "post" | "autocomplete" => {
            let mut seen = texts.clone();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), texts.len(), "{texts:?}");
        }
        _ => {}
    }
}
