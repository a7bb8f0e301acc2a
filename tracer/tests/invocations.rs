//! Invocations and attribution, end to end: the OpenLambda-style test
//! worker (`examples/test_worker.rs`) runs under the real `oltrace wrap`
//! with an http route in front of it, PostgreSQL and Redis routes behind
//! it, and the forward proxy for its outbound calls. Requests are sent to
//! `/run/<name>` one after another and two at a time, and the trace must
//! pair each invocation with its queries, by the right method, leave the
//! calls of overlapping invocations without propagation unattributed, and
//! hold the worker's log lines.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (trust, database `test`) and Redis on
//! 127.0.0.1:6379.

mod common;

use common::worker::{free_port, wait_ready, worker_args, wrap_command, GATEWAY_TRACE};
use format::{AttributionMethod, Body, ExchangeSummary, Invocation, Reader, Record};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

/// Sends one request on a fresh connection and returns the response body.
fn invoke(addr: SocketAddr, path: &str, request_id: &str, traceparent: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let tp = traceparent.map(|t| format!("traceparent: {t}\r\n")).unwrap_or_default();
    let req = format!("POST {path} HTTP/1.1\r\nHost: worker\r\nx-request-id: {request_id}\r\n{tp}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{path} {request_id}: {resp}");
    resp.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// Stops `oltrace wrap` (which passes SIGTERM on to the worker) if the
/// test fails before the worker was shut down.
struct Wrapped(std::process::Child);

impl Drop for Wrapped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
}

#[test]
fn invocations_are_paired_with_their_queries() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("inv.mp");
    let port = free_port();
    let child = wrap_command(&trace, port)
        .args(worker_args(port))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Wrapped(child);
    let stderr = child.0.stderr.take().unwrap();
    let mut stderr = Some(std::thread::spawn(move || {
        let mut s = String::new();
        BufReader::new(stderr).read_to_string(&mut s).unwrap();
        s
    }));
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let gateway = wait_ready(&mut stdout, || stderr.take().unwrap().join().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });

    // One after another: each alone in flight.
    let propagated = invoke(gateway, "/run/propagate", "seq-propagate", None);
    assert!(propagated.contains("rows=1 sum=42 incr="), "{propagated}");
    invoke(gateway, "/run/silent", "seq-silent", None);
    let called = invoke(gateway, "/run/call", "seq-call", None);
    assert!(called.contains("outbound=ok"), "the outbound call went through the forward proxy: {called}");
    let gw_tp = format!("00-{GATEWAY_TRACE}-00f067aa0ba902b7-01");
    invoke(gateway, "/run/propagate", "seq-gateway", Some(&gw_tp));
    // Two at a time: the worker holds each pair until both are in.
    for names in [["pair-silent", "pair-silent"], ["pair-propagate", "pair-propagate"]] {
        let handles: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (path, rid) = (format!("/run/{name}"), format!("{name}-{i}"));
                std::thread::spawn(move || invoke(gateway, &path, &rid, None))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
    // Not an invocation: the auto profile names no lambda here.
    let mut s = TcpStream::connect(gateway).unwrap();
    s.write_all(b"GET /shutdown HTTP/1.1\r\nHost: worker\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    drop(s);
    let status = child.0.wait().unwrap();
    let stderr = stderr.take().unwrap().join().unwrap();
    let stdout = out.join().unwrap();
    assert!(status.success(), "wrap exits with the worker's code; stderr: {stderr}");
    assert!(stderr.contains("8 invocations"), "the summary counts them: {stderr}");

    let records: Vec<Record> = Reader::open(&trace).unwrap().map(|r| r.unwrap()).collect();
    let invocations: HashMap<u64, Invocation> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Invocation(i) => Some((i.id, i.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(invocations.len(), 8, "one invocation per /run request: {invocations:?}");
    let by_request: HashMap<String, &Invocation> = invocations.values().map(|i| (i.request_id.clone().unwrap(), i)).collect();
    for (rid, lambda) in [
        ("seq-propagate", "propagate"),
        ("seq-silent", "silent"),
        ("seq-call", "call"),
        ("seq-gateway", "propagate"),
        ("pair-silent-0", "pair-silent"),
        ("pair-silent-1", "pair-silent"),
        ("pair-propagate-0", "pair-propagate"),
        ("pair-propagate-1", "pair-propagate"),
    ] {
        let inv = by_request.get(rid).unwrap_or_else(|| panic!("no invocation for {rid}: {invocations:?}"));
        assert_eq!((inv.lambda.as_str(), inv.platform.as_str()), (lambda, "openlambda"), "{rid}");
        // Every one got a trace id: injected, or the gateway's own.
        assert!(inv.trace_id.as_ref().is_some_and(|t| t.len() == 32), "{rid}: {inv:?}");
    }
    assert_eq!(by_request["seq-gateway"].trace_id.as_deref(), Some(GATEWAY_TRACE), "the gateway's traceparent is used as is");
    // The gateway's header was not doubled: the request message holds one.
    let gw = by_request["seq-gateway"];
    let gw_request = records
        .iter()
        .find_map(|r| match &r.body {
            Body::Message(m) if m.conn == gw.conn && m.dir == format::Direction::ToServer => Some(m.data.bytes.as_bytes().to_vec()),
            _ => None,
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&gw_request).to_ascii_lowercase().matches("traceparent:").count(), 1);

    // Each query names its request id in its SQL; each Redis INCR in its key.
    let expected = |rid: &str, kind: &str| -> Option<AttributionMethod> {
        match (rid, kind) {
            (r, _) if r.starts_with("pair-silent") => None,
            (r, "redis") if r.starts_with("pair-") => None,
            (r, "pg") if r.starts_with("pair-propagate") => Some(AttributionMethod::Sqlcommenter),
            ("seq-silent", _) | (_, "redis") => Some(AttributionMethod::ConnectionWindow),
            _ => Some(AttributionMethod::Sqlcommenter),
        }
    };
    let mut checked: HashMap<(String, &str), usize> = HashMap::new();
    let mut outbound = 0;
    let routes: HashMap<u64, String> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::ConnOpen(c) => Some((c.conn, c.route.clone())),
            _ => None,
        })
        .collect();
    for r in &records {
        let Body::Exchange(x) = &r.body else { continue };
        let (rid, kind) = match &x.summary {
            ExchangeSummary::Pg(p) => match p.statements.iter().find_map(|s| by_request.keys().find(|rid| s.contains(&format!("'{rid}'")) || s.contains(&format!("request {rid}*/")))) {
                Some(rid) => (rid.clone(), "pg"),
                None => continue,
            },
            ExchangeSummary::Redis(x) if x.command == "INCR" => {
                let key = x.args.first().map(|a| a.to_text().into_owned()).unwrap_or_default();
                (key.trim_start_matches("oltrace:test_worker:").to_string(), "redis")
            }
            ExchangeSummary::Http(h) if routes[&x.conn].starts_with("forward-proxy") => {
                outbound += 1;
                assert_eq!(h.host.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
                assert_eq!(h.status, Some(200));
                let a = x.attribution.as_ref().expect("the outbound call is attributed");
                assert_eq!((a.invocation, a.method), (by_request["seq-call"].id, AttributionMethod::Traceparent));
                continue;
            }
            _ => continue,
        };
        let want = expected(&rid, kind);
        let got = x.attribution.as_ref().map(|a| (a.method, invocations[&a.invocation].request_id.clone().unwrap()));
        assert_eq!(got, want.map(|m| (m, rid.clone())), "{kind} exchange of {rid}: {x:?}");
        *checked.entry((rid, kind)).or_default() += 1;
    }
    assert_eq!(outbound, 1, "one outbound call through the forward proxy");
    for rid in by_request.keys() {
        assert_eq!(checked.get(&(rid.clone(), "pg")), Some(&2), "{rid}: a simple and an extended query: {checked:?}");
        assert_eq!(checked.get(&(rid.clone(), "redis")), Some(&1), "{rid}: one INCR: {checked:?}");
    }

    // The worker's log lines are in the trace (and passed through).
    let logs: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Log(l) if l.origin == "test_worker" => Some(l.text.as_str()),
            _ => None,
        })
        .collect();
    for rid in by_request.keys() {
        assert!(logs.iter().any(|l| l.contains(&format!("request={rid} "))), "log line of {rid}: {logs:?}");
        assert!(stdout.contains(&format!("request={rid} ")), "{stdout}");
    }
}

#[test]
fn bad_profiles_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["proxy", "-o"])
        .arg(dir.path().join("t.mp"))
        .args(["--route", "http:0=127.0.0.1:1", "--invocations", "mine=^/fn/.*"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no capture group"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["proxy", "-o"])
        .arg(dir.path().join("t.mp"))
        .args(["--route", "http:0=127.0.0.1:1", "--inject-traceparent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--invocations"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An HTTP upstream that answers every request `200 ok` and closes.
fn ok_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let mut body = [0u8; 2];
                let _ = s.read_exact(&mut body);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            });
        }
    });
    addr
}

/// With two http routes and `--front` naming one, only that route's
/// requests are invocations; `--front` naming no http route, or without
/// `--invocations`, is a clear error.
#[test]
fn front_chooses_which_http_routes_are_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = ok_server();
    let (worker, other) = (free_port(), free_port());
    let trace = dir.path().join("t.mp");
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["proxy", "-o"])
        .arg(&trace)
        .args(["--route", &format!("http:{worker}={upstream}"), "--route", &format!("http:{other}={upstream}")])
        .args(["--invocations", "openlambda", "--front", &worker.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(proxy.stderr.take().unwrap());
    let mut listening = 0;
    while listening < 2 {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the proxy exited early");
        listening += line.contains("listening") as usize;
    }
    assert_eq!(invoke(SocketAddr::from(([127, 0, 0, 1], worker)), "/run/front", "r1", None), "ok");
    assert_eq!(invoke(SocketAddr::from(([127, 0, 0, 1], other)), "/run/elsewhere", "r2", None), "ok");
    unsafe { libc::kill(proxy.id() as i32, libc::SIGINT) };
    assert!(proxy.wait().unwrap().success());
    let records: Vec<Record> = Reader::open(&trace).unwrap().map(|r| r.unwrap()).collect();
    let lambdas: Vec<&str> = records.iter().filter_map(|r| if let Body::Invocation(i) = &r.body { Some(i.lambda.as_str()) } else { None }).collect();
    assert_eq!(lambdas, ["front"], "only the --front route's request is an invocation");
    let exchanges = records.iter().filter(|r| matches!(r.body, Body::Exchange(_))).count();
    assert_eq!(exchanges, 2, "both requests are recorded as exchanges");

    for (args, expect) in [
        (vec!["--invocations", "openlambda", "--front", "1"], "no http route listens there"),
        (vec!["--front", &worker.to_string()], "--front needs --invocations"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
            .args(["proxy", "-o"])
            .arg(dir.path().join("e.mp"))
            .args(["--route", &format!("http:{worker}={upstream}")])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(expect), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!dir.path().join("e.mp").exists(), "no trace is created on a bad --front");
    }
}
