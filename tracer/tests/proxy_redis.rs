//! Redis through `oltrace proxy`: redis-benchmark with and without
//! pipelining (every command recorded with its reply), redis-cli pub/sub
//! (the pushes a subscriber gets are recorded), and MULTI/EXEC (QUEUED
//! replies, then EXEC's array).
//!
//! Needs Redis on 127.0.0.1:6379 with redis-cli and redis-benchmark
//! (`.ci/run` provides them). A missing service fails these tests.

mod common;

use common::{assert_timings_in_order, count_kind, redis_exchanges, run, Proxy};
use format::{Body, Decoded, ExchangeStatus};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A reply's RESP type, text and aggregate length.
type Reply = (String, Option<String>, Option<u64>);

fn reply_of(x: &format::RedisExchange) -> Reply {
    let r = x.reply.as_ref().expect("a reply");
    (r.kind.clone(), r.text.as_ref().map(|t| t.to_text().into_owned()), r.len)
}

#[test]
fn redis_benchmark_with_and_without_pipelining() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("bench.mp"), &["redis:0=127.0.0.1:6379".to_string()], &[]);
    let p = proxy.port(0);
    let n = 2000;
    run(Command::new("redis-benchmark").args(["-p", &p, "-t", "get,set", "-n", &n.to_string(), "-c", "4", "-q"]));
    run(Command::new("redis-benchmark").args(["-p", &p, "-t", "get,set", "-n", &n.to_string(), "-c", "8", "-P", "16", "-q"]));
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(count_kind(&records, "gap"), 0, "nothing lost: {summary}");
    let ex = redis_exchanges(&records);
    let sets: Vec<_> = ex.iter().filter(|(_, x)| x.command == "SET").collect();
    let gets: Vec<_> = ex.iter().filter(|(_, x)| x.command == "GET").collect();
    assert_eq!(sets.len(), 2 * n, "every SET sent, both runs");
    assert_eq!(gets.len(), 2 * n, "every GET sent, both runs");
    for (e, x) in &sets {
        assert_eq!(e.status, ExchangeStatus::Complete);
        assert_eq!(reply_of(x), ("simple".into(), Some("OK".into()), None), "{x:?}");
    }
    for (e, x) in &gets {
        assert_eq!(e.status, ExchangeStatus::Complete);
        // redis-benchmark's values are 3 bytes (-d 3).
        let (kind, text, _) = reply_of(x);
        assert_eq!((kind.as_str(), text.map(|t| t.len())), ("bulk", Some(3)), "{x:?}");
    }
    // Nothing else but the two CONFIG GETs each run starts with.
    assert_eq!(ex.len(), 4 * n + ex.iter().filter(|(_, x)| x.command == "CONFIG").count());
    assert_timings_in_order(&records);
}

#[test]
fn pub_sub_pushes_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("pubsub.mp"), &["redis:0=127.0.0.1:6379".to_string()], &[]);
    let p = proxy.port(0);
    let channel = format!("oltrace:test:chan:{}", std::process::id());
    let mut sub = Command::new("redis-cli").args(["-p", &p, "subscribe", &channel]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(sub.stdout.take().unwrap());
    // redis-cli prints the confirmation ("subscribe", channel, 1) once subscribed.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "subscriber exited: {seen:?}");
        seen.push(line.trim().to_string());
    }
    assert_eq!(seen, ["subscribe", channel.as_str(), "1"]);
    for payload in ["first", "second"] {
        let receivers = run(Command::new("redis-cli").args(["-p", &p, "publish", &channel, payload]));
        assert_eq!(receivers.trim(), "1", "the subscriber through the proxy received it");
    }
    // The subscriber prints each message as three lines.
    let mut got = Vec::new();
    while got.len() < 6 {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0);
        got.push(line.trim().to_string());
    }
    assert_eq!(got, ["message", channel.as_str(), "first", "message", channel.as_str(), "second"]);
    sub.kill().unwrap();
    sub.wait().unwrap();
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");

    let ex = redis_exchanges(&records);
    let subscribe: Vec<_> = ex.iter().filter(|(_, x)| x.command == "SUBSCRIBE").collect();
    assert_eq!(subscribe.len(), 1, "{ex:?}");
    assert_eq!(reply_of(subscribe[0].1).0, "array", "the confirmation answers SUBSCRIBE");
    let publishes: Vec<_> = ex.iter().filter(|(_, x)| x.command == "PUBLISH").collect();
    assert_eq!(publishes.len(), 2);
    assert!(publishes.iter().all(|(_, x)| x.reply.as_ref().and_then(|r| r.integer) == Some(1)));
    // The two messages the subscriber got are pushes on its connection.
    let sub_conn = subscribe[0].0.conn;
    let pushes: Vec<&format::RedisMessage> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Message(m) if m.conn == sub_conn => match &m.decoded {
                Some(Decoded::Redis(x)) if x.kind == "push" => Some(x),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert!(pushes.iter().all(|x| x.reply.as_ref().and_then(|r| r.len) == Some(3)), "message, channel, payload: {pushes:?}");
}

#[test]
fn multi_exec_queues_then_answers_with_an_array() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("multi.mp"), &["redis:0=127.0.0.1:6379".to_string()], &[]);
    let p = proxy.port(0);
    let key = format!("oltrace:test:multi:{}", std::process::id());
    let script = format!("MULTI\nSET {key} v\nINCR {key}:n\nGET {key}\nEXEC\n");
    // redis-cli reading commands from stdin sends them on one connection.
    let mut cli = Command::new("redis-cli").args(["-p", &p]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    cli.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = cli.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("QUEUED") && text.contains("OK"), "{text}");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");

    let ex = redis_exchanges(&records);
    // (redis-cli asks for COMMAND DOCS first.)
    let seen: Vec<(String, Reply)> =
        ex.iter().filter(|(_, x)| x.command != "COMMAND").map(|(_, x)| (x.command.clone(), reply_of(x))).collect();
    let simple = |t: &str| ("simple".to_string(), Some(t.to_string()), None);
    assert_eq!(
        seen,
        [
            ("MULTI".to_string(), simple("OK")),
            ("SET".to_string(), simple("QUEUED")),
            ("INCR".to_string(), simple("QUEUED")),
            ("GET".to_string(), simple("QUEUED")),
            ("EXEC".to_string(), ("array".to_string(), None, Some(3))),
        ]
    );
    assert!(ex.iter().all(|(e, _)| e.conn == ex[0].0.conn), "one connection");
    let _ = run(Command::new("redis-cli").args(["del", &key, &format!("{key}:n")]));
}
