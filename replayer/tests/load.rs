//! Building the replay plan from a trace (no servers needed): the sample
//! serverless trace of `traces/`, checked against what the trace says when
//! read record by record.

use format::view::Filter;
use replayer::load::load;
use std::path::PathBuf;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../traces/sample-serverless.mp")
}

fn records() -> Vec<format::Record> {
    format::Reader::open(&sample()).unwrap().map(|r| r.unwrap()).collect()
}

fn http_exchanges(plan: &replayer::load::Plan) -> usize {
    plan.conns.iter().filter(|c| c.protocol == format::Protocol::Http).map(|c| c.compared()).sum()
}

#[test]
fn every_http_and_redis_exchange_is_planned_and_sessions_without_startup_are_skipped() {
    let recs = records();
    let count = |p: &str| {
        recs.iter()
            .filter(|r| match &r.body {
                format::Body::Exchange(e) => matches!(
                    (&e.summary, p),
                    (format::ExchangeSummary::Http(_), "http") | (format::ExchangeSummary::Redis(_), "redis") | (format::ExchangeSummary::Pg(_), "pg")
                ),
                _ => false,
            })
            .count()
    };
    let plan = load(&sample(), &Filter::default(), false).unwrap();
    assert_eq!(plan.routes.len(), 3, "{:?}", plan.routes);
    assert_eq!(http_exchanges(&plan), count("http"));
    let redis: usize = plan.conns.iter().filter(|c| c.protocol == format::Protocol::Redis).map(|c| c.compared()).sum();
    assert_eq!(redis, count("redis"));
    // The synthetic PostgreSQL connection has no startup: it cannot be opened
    // the way the client did, and says so.
    let why = "PostgreSQL connection without its startup (damaged or encrypted)";
    assert_eq!(plan.skipped.get(why).copied(), Some(count("pg") as u64), "{:?}", plan.skipped);
    assert!(plan.damage.is_empty());
    // Every exchange is started by exactly one send, in order.
    for c in &plan.conns {
        let starts: Vec<usize> = c.sends.iter().filter_map(|s| s.starts).collect();
        assert_eq!(starts, (0..c.exchanges.len()).collect::<Vec<_>>(), "conn {}", c.conn);
        // A send never waits for an exchange at or after its own.
        let mut started = 0;
        for s in &c.sends {
            if let Some(x) = s.starts {
                assert!(s.wait_for <= x);
                started = x + 1;
            }
            assert!(s.wait_for <= started);
        }
    }
}

#[test]
fn filters_by_route_lambda_time_and_read_only() {
    let recs = records();
    let notify: Vec<(u64, u64)> = recs
        .iter()
        .filter_map(|r| match &r.body {
            format::Body::Invocation(i) if i.lambda == "notify" => Some((i.conn, r.ts)),
            _ => None,
        })
        .collect();
    assert!(!notify.is_empty());
    let plan = load(&sample(), &Filter { lambdas: vec!["notify".into()], ..Filter::default() }, false).unwrap();
    assert_eq!(http_exchanges(&plan), notify.len());
    assert!(plan.conns.iter().flat_map(|c| &c.exchanges).filter(|e| e.key.starts_with("POST")).all(|e| e.lambda.as_deref() == Some("notify")));

    let plan = load(&sample(), &Filter { protocols: vec![format::Protocol::Http], ..Filter::default() }, false).unwrap();
    assert!(plan.conns.iter().all(|c| c.protocol == format::Protocol::Http) && !plan.conns.is_empty());

    let all = load(&sample(), &Filter::default(), false).unwrap();
    let half = (all.start_ts + all.end_ts) / 2;
    let early = load(&sample(), &Filter { to_ns: Some(half), ..Filter::default() }, false).unwrap();
    assert!(http_exchanges(&early) < http_exchanges(&all) && http_exchanges(&early) > 0);
    // HTTP exchanges are selected one by one; sessions are kept whole.
    let http = early.conns.iter().filter(|c| c.protocol == format::Protocol::Http).flat_map(|c| &c.exchanges);
    assert!(http.clone().all(|e| e.ts < half));
    assert!(http.count() > 0);

    let ro = load(&sample(), &Filter::default(), true).unwrap();
    let writes = recs
        .iter()
        .filter(|r| matches!(&r.body, format::Body::Exchange(e) if !matches!(e.summary, format::ExchangeSummary::Pg(_)) && replayer::classify::is_write(&e.summary)))
        .count();
    assert!(writes > 0);
    assert_eq!(ro.skipped.get("writes (--read-only)").copied(), Some(writes as u64), "{:?}", ro.skipped);
}

/// A skip names its true reason: in an intact trace whose records do not
/// tie up (an exchange's byte count wrong, as a pairing fault in the
/// recorder would leave it), the exchanges are skipped as an inconsistent
/// recording, never as "damaged trace".
#[test]
fn records_that_do_not_tie_up_in_an_intact_trace_are_not_called_damage() {
    let reader = format::Reader::open(&sample()).unwrap();
    let header = reader.header().clone();
    let mut recs: Vec<format::Record> = reader.map(|r| r.unwrap()).collect();
    // The first Redis exchange claims one more request byte, and its
    // response claims far more than was recorded.
    let e = recs
        .iter_mut()
        .find_map(|r| match &mut r.body {
            format::Body::Exchange(e) if matches!(e.summary, format::ExchangeSummary::Redis(_)) => Some(e),
            _ => None,
        })
        .unwrap();
    e.request_bytes += 1;
    e.response_bytes += 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inconsistent.mp");
    let mut w = format::Writer::create(&path, &header, Default::default()).unwrap();
    for r in &recs {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    let plan = load(&path, &Filter::default(), false).unwrap();
    assert!(plan.damage.is_empty());
    assert!(!plan.skipped.keys().any(|k| k.contains("damaged trace")), "{:?}", plan.skipped);
    assert!(plan.skipped.keys().any(|k| k.contains("inconsistent recording")), "{:?}", plan.skipped);
}

#[test]
fn routes_and_protocols_are_alternatives() {
    let all = load(&sample(), &Filter::default(), false).unwrap();
    let route = all.conns.iter().find(|c| c.protocol == format::Protocol::Redis).unwrap().route.clone();
    // `--route http --route <the Redis route>`: every HTTP connection, and that route's.
    let mut f = Filter::default();
    replayer::load::add_routes(&mut f, &["http".to_string(), route.clone()]);
    assert_eq!(f.protocols, [format::Protocol::Http]);
    let plan = load(&sample(), &f, false).unwrap();
    let protos: std::collections::BTreeSet<_> = plan.conns.iter().map(|c| c.protocol).collect();
    assert_eq!(protos, [format::Protocol::Http, format::Protocol::Redis].into_iter().collect());
    assert!(plan.conns.iter().all(|c| c.protocol == format::Protocol::Http || c.route == route));
    assert_eq!(plan.conns.len(), all.conns.iter().filter(|c| c.protocol == format::Protocol::Http || c.route == route).count());
    // An alias is not the protocol's name: `pg` names a route only.
    let mut f = Filter::default();
    replayer::load::add_routes(&mut f, &["pg".to_string()]);
    assert!(f.protocols.is_empty());
}
