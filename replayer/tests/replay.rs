//! `olreplay` end to end: real workloads recorded through the real `oltrace
//! proxy` with real clients, replayed against the same servers (clean: exit
//! 0), then against a changed backend (exit 1, the changed exchange named);
//! `--target`, `--read-only`, timing modes, a torn trace and an unreachable
//! target.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres, database
//! `test`) and Redis on 127.0.0.1:6379, with psql, pgbench, redis-cli,
//! redis-benchmark and curl: `.ci/run` provides them. A missing service
//! fails these tests; it never skips them.

mod support;

use std::process::Command;
use support::*;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn postgres_prepared_pgbench_and_transactions_replay_clean_then_a_changed_row_is_named() {
    let dir = tempdir();
    let trace = dir.path().join("pg.mp");
    let table = unique("olr_pg");
    psql_direct(&format!(
        "create table {table} (id int primary key, v text); insert into {table} select i, 'value ' || i from generate_series(1, 20) i"
    ));
    let script = dir.path().join("bench.sql");
    std::fs::write(&script, format!("\\set id random(1, 20)\nSELECT v FROM {table} WHERE id = :id;\n")).unwrap();

    let proxy = Proxy::start(&trace, &["postgres:0=127.0.0.1:5432".into()]);
    let port = proxy.port(0);
    // Extended protocol with prepared statements, two clients.
    run(Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-n", "-M", "prepared", "-c", "2", "-t", "50", "-f"])
        .arg(&script)
        .arg("test"));
    // A pipeline: three statements before one Sync, 20 times.
    let pipeline = dir.path().join("pipeline.sql");
    std::fs::write(&pipeline, format!("\\set id random(1, 20)\n\\startpipeline\nSELECT v FROM {table} WHERE id = :id;\nSELECT :id + 1;\nSELECT count(*) FROM {table};\n\\endpipeline\n")).unwrap();
    run(Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-n", "-M", "extended", "-c", "1", "-t", "20", "-f"])
        .arg(&pipeline)
        .arg("test"));
    // A transaction, and a row every test run reads.
    psql_via(&port, &format!("BEGIN; SELECT count(*) FROM {table}; SELECT v FROM {table} WHERE id = 7; COMMIT"));
    proxy.stop();

    let t = trace.to_str().unwrap();
    let (code, v, err) = olreplay_json(&[t]);
    assert_eq!(code, 0, "{v}\n{err}");
    // 100 prepared SELECTs, 20 pipelines, and BEGIN/count/select/COMMIT
    // as one exchange.
    assert!(v["replayed"].as_u64().unwrap() >= 121, "{v}");
    assert_eq!(v["matched"], v["replayed"], "{v}");

    // Faster, and as fast as possible: the same answers.
    let (code, v, _) = olreplay_json(&[t, "--speed", "5"]);
    assert_eq!((code, &v["matched"], v["differed"].as_u64()), (0, &v["replayed"], Some(0)), "{v}");
    let (code, v, _) = olreplay_json(&[t, "--max", "--concurrency", "1"]);
    assert_eq!((code, v["differed"].as_u64(), v["failed"].as_u64()), (0, Some(0), Some(0)), "{v}");

    // Change the backend: delete a row. The exchanges reading it differ.
    psql_direct(&format!("delete from {table} where id = 7"));
    let (code, out, err) = olreplay(&[t]);
    psql_direct(&format!("drop table {table}"));
    assert_eq!(code, 1, "{out}\n{err}");
    // Named by the query fingerprint (convert::fingerprint: lower case,
    // literals and parameters as `?`) and the field that changed.
    assert!(out.contains(&format!("- conn 0:2 select v from {table} where id = ?")) || out.contains(&format!("select v from {table} where id = ? (")), "{out}");
    assert!(out.contains("tag[0]") && out.contains("+ replayed: SELECT 0"), "{out}");
    assert!(!out.contains("differed 0"), "{out}");
}

#[test]
fn redis_benchmark_pipelines_replay_clean_and_a_changed_reply_is_named() {
    let dir = tempdir();
    let trace = dir.path().join("redis.mp");
    let key = unique("olr_key");
    redis_cli("6379", &["set", &key, "recorded value"]);
    let proxy = Proxy::start(&trace, &["redis:0=127.0.0.1:6379".into()]);
    let port = proxy.port(0);
    // Pipelined (16 deep) GETs on 4 connections: all reads, so replaying
    // them against a server other tests also use gives the same replies.
    run(Command::new("redis-benchmark").args(["-h", "127.0.0.1", "-p", &port, "-t", "get", "-n", "2000", "-c", "4", "-P", "16", "-q"]));
    redis_cli(&port, &["get", &key]);
    redis_cli(&port, &["strlen", &key]);
    proxy.stop();
    let t = trace.to_str().unwrap();

    let (code, v, err) = olreplay_json(&[t, "--speed", "4"]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(v["replayed"].as_u64().unwrap() >= 2002, "{v}");
    assert_eq!(v["matched"], v["replayed"], "{v}");

    // --target with the database in the URL, as fast as possible.
    let (code, v, _) = olreplay_json(&[t, "--max", "--target", "redis=redis://127.0.0.1:6379/0"]);
    assert_eq!((code, &v["matched"]), (0, &v["replayed"]), "{v}");

    redis_cli("6379", &["set", &key, "a changed, longer value"]);
    let (code, out, err) = olreplay(&[t, "--max"]);
    redis_cli("6379", &["del", &key]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("differed 2"), "GET and STRLEN differ: {out}");
    assert!(out.contains(" GET (") && out.contains(" STRLEN ("), "{out}");
    assert!(out.contains("+ replayed: \"a changed, longer value\""), "{out}");
}

#[test]
fn http_keepalive_requests_go_to_the_target_with_its_host_and_a_changed_body_is_named() {
    let dir = tempdir();
    let trace = dir.path().join("http.mp");
    let recorded = Upstream::start();
    let proxy = Proxy::start(&trace, &[format!("http:0={}", recorded.addr)]);
    let base = format!("http://{}", proxy.addrs[0]);
    let proxy_addr = proxy.addrs[0].clone();
    // One keep-alive connection with three requests, and a POST.
    run(Command::new("curl").args(["-s", &format!("{base}/item/1"), &format!("{base}/item/2"), &format!("{base}/nope"), "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null"]));
    run(Command::new("curl").args(["-s", "-o", "/dev/null", &format!("{base}/nope")]));
    run(Command::new("curl").args(["-sf", "-d", "hello body", &format!("{base}/echo")]));
    // An upload refused before its body was sent (Expect: 100-continue):
    // the recorded request is a head alone, answered, then closed.
    let big = "x".repeat(5000);
    run(Command::new("curl").args(["-s", "-o", "/dev/null", "-H", "Expect: 100-continue", "-d", &big, &format!("{base}/early")]));
    proxy.stop();
    let t = trace.to_str().unwrap();

    // Back to the recorded upstream.
    let (code, v, err) = olreplay_json(&[t]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["replayed"].as_u64(), Some(6), "{v}");
    assert_eq!(v["matched"].as_u64(), Some(6), "{v}");

    // To another upstream (same code), Host rewritten; --read-only skips the POST.
    let other = Upstream::start();
    let target = format!("http=http://{}", other.addr);
    let (code, v, _) = olreplay_json(&[t, "--target", &target, "--read-only"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["replayed"].as_u64(), Some(4), "{v}");
    assert_eq!(v["skipped"]["writes (--read-only)"].as_u64(), Some(2), "{v}");
    assert_eq!(*other.hosts.lock().unwrap(), vec![other.addr.clone(); 4], "Host rewritten to the target");
    assert!(recorded.hosts.lock().unwrap().iter().all(|h| *h == proxy_addr), "recorded Host kept without --target");

    // The new build answers differently.
    *other.version.lock().unwrap() = "version two".into();
    let junit = dir.path().join("junit.xml");
    let (code, out, _) = olreplay(&[t, "--target", &target, "--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    // One test case per key: both GETs fail, the 404s and the POST pass.
    assert!(xml.contains("failures=\"2\"") && xml.contains("name=\"GET /item/1\"") && xml.contains("1 of 1 exchanges differed"), "{xml}");
    assert!(out.contains("differed 2"), "{out}");
    assert!(out.contains("GET /item/1") && out.contains("GET /item/2"), "{out}");
}

#[test]
fn an_unreachable_target_is_a_clear_error_with_exit_2() {
    let dir = tempdir();
    let trace = dir.path().join("r.mp");
    let proxy = Proxy::start(&trace, &["redis:0=127.0.0.1:6379".into()]);
    redis_cli(&proxy.port(0), &["ping"]);
    proxy.stop();
    // A port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (code, out, err) = olreplay(&[trace.to_str().unwrap(), "--target", &format!("redis=redis://{free}")]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(&format!("cannot connect to {free}")), "{err}");
    assert!(err.contains("--target"), "{err}");
    // A bad target URL and a route the trace does not have.
    let (code, _, err) = olreplay(&[trace.to_str().unwrap(), "--target", "redis=http://x:1"]);
    assert_eq!(code, 2);
    assert!(err.contains("http URL but is given for redis"), "{err}");
    let (code, _, err) = olreplay(&[trace.to_str().unwrap(), "--target", "nosuch=redis://x:1"]);
    assert_eq!(code, 2);
    assert!(err.contains("no such protocol or route"), "{err}");
    let (code, _, err) = olreplay(&[dir.path().join("missing.mp").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.mp"), "{err}");
}

#[test]
fn a_torn_trace_replays_what_is_intact_and_says_what_it_skipped() {
    let dir = tempdir();
    let trace = dir.path().join("torn.mp");
    let key = unique("olr_torn");
    redis_cli("6379", &["set", &key, "x"]);
    let proxy = Proxy::start(&trace, &["redis:0=127.0.0.1:6379".into()]);
    let port = proxy.port(0);
    redis_cli(&port, &["get", &key]);
    // Blocks are flushed at least every 100 ms: wait, so that the next
    // connections land in later blocks.
    std::thread::sleep(std::time::Duration::from_millis(400));
    run(Command::new("redis-benchmark").args(["-h", "127.0.0.1", "-p", &port, "-t", "get", "-n", "3000", "-c", "2", "-q"]));
    proxy.stop();
    let bytes = std::fs::read(&trace).unwrap();
    let torn = dir.path().join("torn-cut.mp");
    std::fs::write(&torn, &bytes[..bytes.len() - bytes.len() / 4]).unwrap();

    let (code, out, err) = olreplay(&[torn.to_str().unwrap()]);
    redis_cli("6379", &["del", &key]);
    assert_eq!(code, 1, "damage is exit 1: {out}{err}");
    assert!(out.contains("damaged trace: ") && out.contains("torn tail"), "{out}");
    let replayed: u64 = out.split("replayed ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(replayed >= 1, "{out}");
    assert!(out.contains("differed 0, failed 0"), "what is intact matches: {out}");
}

#[test]
fn speed_divides_the_schedule_and_lateness_is_reported() {
    let dir = tempdir();
    let trace = dir.path().join("slow.mp");
    let proxy = Proxy::start(&trace, &["redis:0=127.0.0.1:6379".into()]);
    let port = proxy.port(0);
    for _ in 0..4 {
        redis_cli(&port, &["ping"]);
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    proxy.stop();
    let t = trace.to_str().unwrap();
    let (code, v1, _) = olreplay_json(&[t]);
    let (code2, v2, _) = olreplay_json(&[t, "--speed", "2"]);
    assert_eq!((code, code2), (0, 0), "{v1}{v2}");
    let span = v1["recorded_span_s"].as_f64().unwrap();
    assert!(span >= 0.7, "{v1}");
    // A replay never runs ahead of its schedule: lower bounds only (the
    // machine is noisy; the upper side is measured in benches/replay.sh).
    assert!(v1["elapsed_s"].as_f64().unwrap() >= span, "{v1}");
    assert!(v2["elapsed_s"].as_f64().unwrap() >= span / 2.0, "{v2}");
    assert_eq!(v2["lateness"]["count"].as_u64(), Some(4), "{v2}");
    // --rate spaces exchanges evenly: 4 at 20/s take at least 150 ms.
    let (code, v3, _) = olreplay_json(&[t, "--rate", "20/s"]);
    assert_eq!(code, 0);
    assert!(v3["elapsed_s"].as_f64().unwrap() >= 0.15, "{v3}");
    // --loop runs it again; --duration stops looping.
    let (code, v4, _) = olreplay_json(&[t, "--max", "--loop", "3"]);
    assert_eq!((code, v4["replayed"].as_u64(), v4["loops"].as_u64()), (0, Some(12), Some(3)), "{v4}");
    // At 1x the trace lasts about a second: --duration 0.3s stops sending
    // part way, and says how many were not sent.
    let (code, v5, _) = olreplay_json(&[t, "--duration", "300ms"]);
    assert_eq!(code, 0, "{v5}");
    let (replayed, unsent) = (v5["replayed"].as_u64().unwrap(), v5["skipped"]["not sent before --duration ended"].as_u64());
    assert!(replayed < 4 && unsent == Some(4 - replayed), "{v5}");
}
