//! `oltrace logs`: two workers (the test worker under `oltrace wrap`,
//! twice, as sources `w1` and `w2`) merged into one trace. Each invocation's
//! handler writes one line holding its request id, so the test knows which
//! lines are whose: `--invocation` must show exactly that invocation's line
//! (even for the two that overlap), its request and calls, and nothing of
//! any other invocation or worker.
//!
//! `--request-id-regex` is checked on the same recording, for `logs` and
//! for the Parquet export's `logs` table; colour and `NO_COLOR` on a real
//! pseudo-terminal.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379.

mod common;

use common::worker;
use format::{Body, Reader};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

fn oltrace(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oltrace")).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Invocation id by request id, in `trace`.
fn invocation_ids(trace: &Path) -> HashMap<String, u64> {
    Reader::open(trace)
        .unwrap()
        .filter_map(|r| match r.unwrap().body {
            Body::Invocation(i) => Some((i.request_id.unwrap(), i.id)),
            _ => None,
        })
        .collect()
}

#[test]
fn one_timeline_and_one_invocation_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, merged) = (dir.path().join("w1.mp"), dir.path().join("w2.mp"), dir.path().join("fleet.mp"));
    // Both workers at once, as a fleet runs.
    let (a2, b2) = (a.clone(), b.clone());
    let t = std::thread::spawn(move || worker::record(&b2, "w2", "w2-"));
    worker::record(&a2, "w1", "w1-");
    t.join().unwrap();
    let o = oltrace(&["merge", a.to_str().unwrap(), b.to_str().unwrap(), "-o", merged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = merged.to_str().unwrap();

    // Everything: both workers' lines, in time order, each handler's line
    // tagged with its own invocation (by request id, overlapping or not).
    let o = oltrace(&["logs", m, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o.stdout);
    let times: Vec<u64> = lines.iter().map(|l| l["unix_ns"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");
    let ids = [invocation_ids(&a), invocation_ids(&b)];
    for (source, ids, prefix) in [("w1", &ids[0], "w1-"), ("w2", &ids[1], "w2-")] {
        for (lambda, rid) in worker::requests(prefix) {
            let tagged: Vec<&Value> = lines.iter().filter(|l| l["text"].as_str().unwrap().contains(&format!("request={rid} "))).collect();
            assert_eq!(tagged.len(), 1, "{rid}: {lines:?}");
            let l = tagged[0];
            assert_eq!(l["source"], source);
            assert_eq!(l["invocation"], ids[&rid], "{l}");
            assert_eq!(l["lambda"], lambda.as_str());
            assert_eq!(l["attribution"], "request_id");
        }
    }

    // One invocation of the overlapping pair, on w1: its one line, its
    // request and its calls; nothing else.
    let rid = "w1-pair-propagate-1";
    let id = ids[0][rid];
    let o = oltrace(&["logs", m, "--invocation", &format!("w1:{id}"), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown = json_lines(&o.stdout);
    let logs: Vec<&str> = shown.iter().filter(|l| l.get("kind").is_none()).map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(logs.len(), 1, "{shown:?}");
    assert!(logs[0].starts_with(&format!("invocation pair-propagate request={rid} ")), "{logs:?}");
    assert!(shown.iter().all(|l| l["source"] == "w1" && l["invocation"] == id), "{shown:?}");
    let events: Vec<&str> = shown.iter().filter(|l| l["kind"] == "trace").map(|l| l["text"].as_str().unwrap()).collect();
    assert!(events.iter().any(|e| e.starts_with("request POST /run/pair-propagate -> 200")), "{events:?}");
    // Every call the trace attributes to it, no other.
    let mut view = format::view::View::default();
    let mut calls = 0;
    for r in Reader::open(&merged).unwrap() {
        let r = r.unwrap();
        let seen = view.observe(&r);
        if matches!(r.body, Body::Exchange(_)) && seen.invocation.as_ref().is_some_and(|j| j.method.is_some() && j.invocation.src == 0 && j.invocation.id == id) {
            calls += 1;
        }
    }
    // Its two queries carry its traceparent (sqlcommenter); its Redis INCR,
    // while the other invocation of the pair ran, is tied to neither.
    assert!(calls >= 2, "{calls}");
    assert_eq!(events.iter().filter(|e| e.starts_with("call ")).count(), calls, "{events:?}");
    assert_eq!(events.iter().filter(|e| e.contains("[sqlcommenter]")).count(), calls, "{events:?}");
    // Times survive the merge: the request took time.
    assert!(!events[0].contains(" in 0.000 ms"), "{events:?}");
    // In time order, request first.
    assert!(events[0].starts_with("request "), "{events:?}");
    // The same by request id.
    let o = oltrace(&["logs", m, "--invocation", rid, "--json"]);
    assert_eq!(json_lines(&o.stdout), shown);

    // Filters: a lambda, a source, a pattern; text output without colour.
    let o = oltrace(&["logs", m, "--lambda", "call", "--source", "w2"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(" w2 stdout call#") && text.contains("request=w2-seq-call "), "{text}");
    assert!(!text.contains('\x1b'), "NO_COLOR: {text:?}");
    let o = oltrace(&["logs", m, "--grep", "request=w[12]-seq-silent "]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
    // A bad regex is a usage error.
    let o = oltrace(&["logs", m, "--grep", "("]);
    assert_eq!(o.status.code(), Some(2));
    let o = oltrace(&["logs", m, "--request-id-regex", "("]);
    assert_eq!(o.status.code(), Some(2));

    request_id_regex(&merged, &lines, &ids);
}

/// `--request-id-regex` decides where a line's request id is, for `logs`
/// and for the `logs` table of `export --format parquet` alike. `lines`:
/// the default's `logs --json`; `ids`: invocation ids by request id, per
/// worker.
fn request_id_regex(merged: &Path, default: &[Value], ids: &[HashMap<String, u64>; 2]) {
    let m = merged.to_str().unwrap();
    let handler_line = |l: &&Value| l["text"].as_str().unwrap().starts_with("invocation ");
    // Where the worker really writes it: the same as the default.
    let o = oltrace(&["logs", m, "--json", "--request-id-regex", r"request=(\S+)"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json_lines(&o.stdout), default);
    // Somewhere else (the lambda's name is no request id): no line is tied
    // by request id any more, only by its window: then to its own
    // invocation, never another (a line of an overlapping pair, read while
    // both ran, is no one's). So the regex is what decides.
    let bogus = r"invocation (\S+)";
    let o = oltrace(&["logs", m, "--json", "--request-id-regex", bogus]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o.stdout);
    assert!(lines.iter().all(|l| l["attribution"] != "request_id"), "{lines:?}");
    let mut by_window = 0;
    for (i, prefix) in ["w1-", "w2-"].iter().enumerate() {
        for (_, rid) in worker::requests(prefix) {
            let l = lines.iter().filter(handler_line).find(|l| l["text"].as_str().unwrap().contains(&format!("request={rid} "))).unwrap();
            if l["attribution"] == "window" {
                assert_eq!(l["invocation"], ids[i][&rid], "{l}");
                if !rid.contains("-pair-") {
                    by_window += 1;
                }
            } else {
                assert_eq!(l["invocation"], Value::Null, "{l}");
            }
        }
    }
    // (A line is stamped when wrap reads it, so one read after its
    // invocation ended is no one's: most, not all, of the eight.)
    assert!(by_window >= 4, "lines of invocations that ran alone are tied by their window: {lines:?}");

    // The Parquet export's logs table, with the same option, says the same.
    let dir = merged.parent().unwrap().join("pq");
    let o = oltrace(&["export", "--format", "parquet", m, "-o", dir.to_str().unwrap(), "--request-id-regex", bogus]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = "import duckdb, json, sys\n\
        rows = duckdb.sql(f\"SELECT text, invocation, attribution FROM '{sys.argv[1]}/logs.parquet' WHERE text LIKE 'invocation %'\").fetchall()\n\
        print(json.dumps(rows))";
    let o = Command::new("python3").arg("-c").arg(script).arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<(String, Option<u64>, Option<String>)> = serde_json::from_slice(&o.stdout).unwrap();
    let shown: Vec<&Value> = lines.iter().filter(handler_line).collect();
    assert_eq!(rows.len(), shown.len(), "{rows:?}");
    for l in shown {
        let row = rows.iter().find(|r| r.0 == l["text"].as_str().unwrap()).unwrap();
        assert_eq!((row.1, row.2.as_deref()), (l["invocation"].as_u64(), l["attribution"].as_str()), "{l}");
    }
}

/// Runs `oltrace ARGS` with stdout on a pseudo-terminal (a real one: the
/// colour decision asks isatty) and `NO_COLOR` as given; returns what it
/// printed.
fn on_terminal(args: &[&str], no_color: Option<&str>) -> String {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    let made = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(made, 0, "openpty: {}", std::io::Error::last_os_error());
    // Not inherited by the other tests' children (tests run in threads):
    // the master reads its end only once every copy of the slave is closed.
    for fd in [master, slave] {
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
    }
    let mut master = unsafe { std::fs::File::from_raw_fd(master) };
    let slave = unsafe { std::fs::File::from_raw_fd(slave) };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    cmd.args(args).stdout(slave);
    match no_color {
        Some(v) => cmd.env("NO_COLOR", v),
        None => cmd.env_remove("NO_COLOR"),
    };
    let mut child = cmd.spawn().unwrap();
    // Our copy of the terminal's slave end goes with the Command, so the
    // master reads end (EIO) once the child has exited.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut master, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    assert!(child.wait().unwrap().success());
    String::from_utf8(reader.join().unwrap()).unwrap()
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.mp");
    let o = oltrace(&["generate", "-o", trace.to_str().unwrap(), "--records", "300"]);
    assert!(o.status.success());
    let t = trace.to_str().unwrap();
    let esc = |s: &str| s.contains("\x1b[");
    // On a terminal: colour, which NO_COLOR turns off (empty NO_COLOR is
    // unset, per no-color.org).
    let plain = on_terminal(&["logs", t], Some("1"));
    assert!(plain.lines().count() > 10 && !esc(&plain), "{plain:?}");
    let coloured = on_terminal(&["logs", t], None);
    assert!(esc(&coloured), "{coloured:?}");
    assert!(esc(&on_terminal(&["logs", t], Some(""))));
    // The same text, but for the escapes.
    let strip = |s: &str| regex::Regex::new("\x1b\\[[0-9;]*m").unwrap().replace_all(s, "").into_owned();
    assert_eq!(strip(&coloured), plain);
    // --color overrides: never on a terminal, always into a pipe and over
    // NO_COLOR (asked for by name).
    assert!(!esc(&on_terminal(&["logs", t, "--color", "never"], None)));
    assert!(esc(&on_terminal(&["logs", t, "--color", "always"], Some("1"))));
    let piped = oltrace(&["logs", t, "--color", "always"]);
    assert!(esc(&String::from_utf8_lossy(&piped.stdout)));
    let piped = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["logs", t]).env_remove("NO_COLOR").output().unwrap();
    assert!(!esc(&String::from_utf8_lossy(&piped.stdout)), "auto: no colour into a pipe");
    // JSON is never coloured.
    assert!(!esc(&on_terminal(&["logs", t, "--json", "--color", "always"], None)));
    let o = oltrace(&["logs", t, "--color", "sometimes"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn follow_prints_lines_as_they_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("live.mp");
    // A trace being written: generate at a fixed rate, flushing often.
    let mut gen = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["generate", "-o", trace.to_str().unwrap(), "--records", "600", "--rate", "400", "--flush-interval", "50ms"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let follow = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["logs", trace.to_str().unwrap(), "--follow", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(gen.wait().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(900));
    unsafe { libc::kill(follow.id() as i32, libc::SIGTERM) };
    let out = follow.wait_with_output().unwrap();
    let followed = json_lines(&out.stdout).len();
    let o = oltrace(&["logs", trace.to_str().unwrap(), "--json"]);
    let all = json_lines(&o.stdout).len();
    assert!(all > 10, "the generated trace has log lines: {all}");
    assert_eq!(followed, all, "--follow printed every line, including those written after it started");
}
