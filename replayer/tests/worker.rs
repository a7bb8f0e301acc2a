//! The OpenLambda-style test worker (`tracer/examples/test_worker.rs`)
//! recorded under the real `oltrace wrap`, then driven again with
//! `olreplay --drive http` against a fresh worker using the same PostgreSQL
//! and Redis: only the invocations are replayed, the worker issues its own
//! downstream calls. Its answers carry a Redis `INCR` count, so state left
//! by the recording is seen (exit 1, the invocation named), and once that
//! state is reset the replay matches (exit 0).
//!
//! Needs PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379 and the
//! worker built: `cargo build -p oltrace-tracer --examples` (`cargo test
//! --workspace` builds it).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use support::*;

fn test_worker() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let worker = exe.parent().unwrap().parent().unwrap().join("examples").join("test_worker");
    assert!(worker.exists(), "{} not found: build it with `cargo build -p oltrace-tracer --examples`", worker.display());
    worker
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child stopped with SIGTERM (and waited for) when dropped.
struct Running(Child);

impl Running {
    fn stop(&mut self) -> std::process::ExitStatus {
        if let Ok(None) = self.0.try_wait() {
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        }
        self.0.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for the worker's `test_worker ready routes=...` line; returns the
/// routes part.
fn ready(child: &mut Child) -> String {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the worker exited before it was ready");
        if let Some(routes) = line.trim().strip_prefix("test_worker ready routes=") {
            let routes = routes.to_string();
            // Keep draining its log so it never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return routes;
        }
    }
}

fn invoke(addr: SocketAddr, name: &str, request_id: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!("POST /run/{name} HTTP/1.1\r\nHost: worker\r\nx-request-id: {request_id}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{name} {request_id}: {resp}");
    resp
}

#[test]
fn the_test_worker_recorded_under_wrap_is_driven_again_and_its_state_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("worker.mp");
    let port = free_port();
    let mut wrap = Running(
        Command::new(oltrace_bin())
            .args(["wrap", "-o"])
            .arg(&trace)
            .args(["--route", &format!("http:0=127.0.0.1:{port}")])
            .args(["--route", "postgres:0=127.0.0.1:5432", "--route", "redis:0=127.0.0.1:6379", "--"])
            .arg(test_worker())
            .args(["--port", &port.to_string()])
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let routes = ready(&mut wrap.0);
    let http = routes.split(' ').find(|r| r.starts_with("http:")).expect("an http route");
    let gateway: SocketAddr = http.rsplit_once('=').unwrap().1.parse().unwrap();
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("olr_worker{i}"))).collect();
    for (i, id) in ids.iter().enumerate() {
        let body = invoke(gateway, if i == 1 { "resize" } else { "hello" }, id);
        assert!(body.contains("incr=1"), "{body}");
    }
    // SIGTERM (not /shutdown, which would be recorded and replayed): wrap
    // passes it on to the worker and finishes the trace.
    wrap.stop();

    // A fresh worker on another port, straight to the same databases.
    let port2 = free_port();
    let mut worker = Running(
        Command::new(test_worker())
            .args(["--port", &port2.to_string()])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", "5432")
            .env("REDIS_URL", "redis://127.0.0.1:6379")
            .env_remove("HTTP_PROXY")
            .env_remove("OLTRACE_ROUTES")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    ready(&mut worker.0);
    let t = trace.to_str().unwrap();
    let target = format!("http=http://127.0.0.1:{port2}");

    // The INCR keys the recording left make every answer say incr=2.
    let (code, out, err) = olreplay(&[t, "--drive", "http", "--target", &target]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("replayed 3,") && out.contains("differed 3"), "only the invocations are replayed: {out}");
    assert!(out.contains("POST /run/resize") && out.contains("POST /run/hello"), "{out}");
    assert!(out.contains("incr=1") && out.contains("incr=2"), "the body difference is shown: {out}");

    // Reset that state: the replay matches the recording exactly.
    for id in &ids {
        redis_cli("6379", &["del", &format!("oltrace:test_worker:{id}")]);
    }
    let (code, v, err) = olreplay_json(&[t, "--drive", "http", "--target", &target]);
    for id in &ids {
        redis_cli("6379", &["del", &format!("oltrace:test_worker:{id}")]);
    }
    assert_eq!((code, v["matched"].as_u64(), v["replayed"].as_u64()), (0, Some(3), Some(3)), "{v}\n{err}");
    let lambdas: Vec<&str> = v["latency"]["by_key"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(lambdas, ["POST /run/hello", "POST /run/resize"], "{v}");
    worker.stop();
}
