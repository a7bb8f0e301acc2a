//! A real recording of the OpenLambda-style test worker
//! (`examples/test_worker.rs`) under `oltrace wrap`: PostgreSQL and Redis
//! routes behind it, the forward proxy for its outbound call, and
//! invocations sent one at a time and two at a time (overlapping), each
//! with an `x-request-id` the worker writes into its log line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The W3C trace id one invocation arrives with (the gateway's).
pub const GATEWAY_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// `target/<profile>/examples/test_worker`, built by `cargo test`.
pub fn test_worker() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let worker = profile_dir.join("examples").join("test_worker");
    assert!(worker.exists(), "{} missing: `cargo test` builds examples; run cargo build --examples", worker.display());
    worker
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn invoke(addr: SocketAddr, path: &str, request_id: &str, traceparent: Option<&str>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let tp = traceparent.map(|t| format!("traceparent: {t}\r\n")).unwrap_or_default();
    let req = format!("POST {path} HTTP/1.1\r\nHost: worker\r\nx-request-id: {request_id}\r\n{tp}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{path} {request_id}: {resp}");
}

/// `oltrace wrap -o TRACE` of the test worker on `port`: an http route in
/// front of it, PostgreSQL and Redis routes behind it, the forward proxy,
/// injected traceparents. Add options, then [`worker_args`] last.
pub fn wrap_command(trace: &Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    c.args(["wrap", "-o"])
        .arg(trace)
        .args(["--route", &format!("http:0=127.0.0.1:{port}")])
        .args(["--route", "postgres:0=127.0.0.1:5432", "--route", "redis:0=127.0.0.1:6379"])
        .args(["--forward-proxy", "0", "--inject-traceparent"])
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL");
    c
}

/// The worker's part of a [`wrap_command`] (after `--`).
pub fn worker_args(port: u16) -> Vec<String> {
    vec!["--".into(), test_worker().display().to_string(), "--port".into(), port.to_string()]
}

/// Reads the wrapped worker's stdout until it says it listens (it prints
/// OLTRACE_ROUTES then) and returns its http route's address; if it exits
/// first, panics with what `stderr` gives.
pub fn wait_ready(stdout: &mut impl BufRead, stderr: impl FnOnce() -> String) -> SocketAddr {
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("the worker exited before it was ready; stderr: {}", stderr());
        }
        if let Some(routes) = line.trim().strip_prefix("test_worker ready routes=") {
            let http = routes.split(' ').find(|r| r.starts_with("http:")).expect("an http route");
            return http.rsplit_once('=').unwrap().1.parse().unwrap();
        }
    }
}

/// The request ids [`record`] sends, each with its lambda, in order (the
/// last four in two overlapping pairs).
pub fn requests(prefix: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [("propagate", "seq-propagate"), ("silent", "seq-silent"), ("call", "seq-call"), ("propagate", "seq-gateway")]
        .iter()
        .map(|(l, r)| (l.to_string(), format!("{prefix}{r}")))
        .collect();
    for name in ["pair-silent", "pair-propagate"] {
        for i in 0..2 {
            v.push((name.to_string(), format!("{prefix}{name}-{i}")));
        }
    }
    v
}

/// Records the worker into `trace` as source `source`, sending
/// [`requests`]`(prefix)`. Takes a second or two.
pub fn record(trace: &Path, source: &str, prefix: &str) {
    let port = free_port();
    let mut child = wrap_command(trace, port)
        .args(["--source", source])
        .args(worker_args(port))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let gateway = wait_ready(&mut stdout, || {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        err
    });
    let drain = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
    });
    let reqs = requests(prefix);
    let gw_tp = format!("00-{GATEWAY_TRACE}-00f067aa0ba902b7-01");
    for (i, (lambda, rid)) in reqs[..4].iter().enumerate() {
        invoke(gateway, &format!("/run/{lambda}"), rid, (i == 3).then_some(gw_tp.as_str()));
    }
    for pair in reqs[4..].chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .cloned()
            .map(|(lambda, rid)| std::thread::spawn(move || invoke(gateway, &format!("/run/{lambda}"), &rid, None)))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
    let mut s = TcpStream::connect(gateway).unwrap();
    s.write_all(b"GET /shutdown HTTP/1.1\r\nHost: worker\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = child.wait().unwrap();
    drain.join().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "wrap exits with the worker's code: {err}");
}
