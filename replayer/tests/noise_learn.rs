//! Noise end to end: workloads whose answers vary by nature (Redis `TIME`,
//! PostgreSQL `now()`, `random()`, `pg_backend_pid()`), recorded through
//! the real `oltrace proxy` with real clients. A plain replay reports them
//! (exit 1); `--learn-noise` replays twice against the same servers and
//! writes rules for what varied; a replay with those rules is clean (exit
//! 0); a real change of the backend is still reported (exit 1), naming the
//! exchange and the field, in text, JSON and a JUnit file that is valid
//! XML.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 with
//! psql and redis-cli (`.ci/run`); a missing service fails these tests.

mod support;

use quick_xml::events::Event;
use support::*;

/// The test cases of a JUnit file, each with whether it failed; panics if
/// the file is not well-formed XML.
fn junit_cases(xml: &str) -> Vec<(String, bool)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases: Vec<(String, bool)> = Vec::new();
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("not well-formed at {}: {e}\n{xml}", reader.buffer_position())) {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                let name = e.try_get_attribute("name").unwrap().unwrap().unescape_value().unwrap().into_owned();
                cases.push((name, false));
            }
            Event::Start(e) if e.name().as_ref() == b"failure" => cases.last_mut().expect("failure inside a testcase").1 = true,
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

/// Learns rules from two replays of `trace`; returns how many the command said.
fn learn(trace: &str, rules: &std::path::Path) -> u64 {
    let (code, out, err) = olreplay(&[trace, "--learn-noise", rules.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let n: u64 = out
        .strip_prefix("learned ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of rules: {out}"));
    assert!(out.contains(&rules.display().to_string()), "{out}");
    n
}

#[test]
fn redis_time_is_learned_as_noise_and_a_changed_value_is_still_named() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("redis.mp");
    let key = unique("olr_noise");
    redis_cli("6379", &["set", &key, "first value"]);
    let proxy = Proxy::start(&trace, &["redis:0=127.0.0.1:6379".into()]);
    let port = proxy.port(0);
    redis_cli(&port, &["time"]);
    redis_cli(&port, &["get", &key]);
    redis_cli(&port, &["time"]);
    proxy.stop();
    let t = trace.to_str().unwrap();

    // TIME answers differently every time: a plain replay reports it.
    let (code, v, err) = olreplay_json(&[t]);
    assert_eq!(code, 1, "{v}\n{err}");
    assert_eq!(v["differed"].as_u64(), Some(2), "{v}");
    assert!(v["differences"].as_array().unwrap().iter().all(|d| d["key"] == "TIME"), "{v}");

    // Learned from two replays: rules for TIME only (GET answered the same).
    let rules = dir.path().join("rules.toml");
    let n = learn(t, &rules);
    assert!(n >= 1, "{n}");
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(text.contains("key = \"TIME\"") && !text.contains("key = \"GET\""), "{text}");

    let (code, v, err) = olreplay_json(&[t, "--noise", rules.to_str().unwrap()]);
    assert_eq!((code, v["matched"].as_u64()), (0, Some(3)), "{v}\n{err}");
    // --no-default-noise drops only the built-in rules, not the file's.
    let (code, _, _) = olreplay_json(&[t, "--noise", rules.to_str().unwrap(), "--no-default-noise"]);
    assert_eq!(code, 0, "learned rules apply without the built-in ones too");

    // A real change is not noise: named in text, JSON and JUnit.
    redis_cli("6379", &["set", &key, "second value"]);
    let junit = dir.path().join("junit.xml");
    let (code, out, err) = olreplay(&[t, "--noise", rules.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    let (jcode, v, _) = olreplay_json(&[t, "--noise", rules.to_str().unwrap()]);
    redis_cli("6379", &["del", &key]);
    assert_eq!((code, jcode), (1, 1), "{out}\n{err}");
    assert!(out.contains("differed 1") && out.contains(" GET (redis"), "{out}");
    assert!(out.contains("- recorded: \"first value\"") && out.contains("+ replayed: \"second value\""), "{out}");
    let d = &v["differences"][0];
    assert_eq!((&d["key"], v["differences"].as_array().unwrap().len()), (&serde_json::json!("GET"), 1), "{v}");
    assert!(d["differences"][0]["field"].as_str().unwrap().starts_with("reply"), "{v}");
    let cases = junit_cases(&std::fs::read_to_string(&junit).unwrap());
    assert!(cases.contains(&("GET".to_string(), true)), "{cases:?}");
    assert!(cases.contains(&("TIME".to_string(), false)), "{cases:?}");
}

#[test]
fn postgres_now_random_and_backend_pid_are_learned_and_a_changed_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("pg.mp");
    let table = unique("olr_noise_pg");
    psql_direct(&format!("create table {table} (id int primary key, v text); insert into {table} select i, 'row ' || i from generate_series(1, 5) i"));
    let proxy = Proxy::start(&trace, &["postgres:0=127.0.0.1:5432".into()]);
    let port = proxy.port(0);
    psql_via(&port, "select now(), random(), pg_backend_pid()");
    psql_via(&port, &format!("select id, v from {table} order by id"));
    proxy.stop();
    let t = trace.to_str().unwrap();

    let (code, v, err) = olreplay_json(&[t]);
    assert_eq!(code, 1, "{v}\n{err}");
    let keys: Vec<&str> = v["differences"].as_array().unwrap().iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert!(!keys.is_empty() && keys.iter().all(|k| k.contains("now()")), "only the varying query differs: {v}");

    let rules = dir.path().join("rules.toml");
    learn(t, &rules);
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(text.contains("now()") && !text.contains(&table), "{text}");
    let (code, v, err) = olreplay_json(&[t, "--noise", rules.to_str().unwrap()]);
    assert_eq!((code, v["differed"].as_u64()), (0, Some(0)), "{v}\n{err}");

    psql_direct(&format!("update {table} set v = 'changed' where id = 3"));
    let (code, out, _) = olreplay(&[t, "--noise", rules.to_str().unwrap()]);
    let (_, v, _) = olreplay_json(&[t, "--noise", rules.to_str().unwrap()]);
    psql_direct(&format!("drop table {table}"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("select id, v from {table} order by id")), "{out}");
    assert!(out.contains("row[2].v") && out.contains("+ replayed: changed"), "{out}");
    let d = &v["differences"][0];
    assert!(d["key"].as_str().unwrap().contains(&table), "{v}");
    assert_eq!(d["differences"][0]["field"], "row[2].v", "{v}");
}
