//! A Redis reply nested a million arrays deep (issue 18): past the decoder's
//! nesting limit (`wire::redis::MAX_DEPTH`, 128). A small fake Redis server
//! answers `GET` with it. Recorded through the proxy, the reply reaches the
//! client whole and the proxy's summary names the limit; a normal recording
//! replayed against the fake server fails at once, naming the limit,
//! rather than waiting out the response timeout.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const DEPTH: usize = 1_000_000;

/// `*1\r\n` a million times, then `:1\r\n`.
fn deep_reply() -> Vec<u8> {
    let mut r = b"*1\r\n".repeat(DEPTH);
    r.extend_from_slice(b":1\r\n");
    r
}

/// A fake Redis: commands are framed by `wire` itself; `GET` gets the deep
/// reply, anything else `+OK`.
fn fake_redis() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

fn serve(mut stream: TcpStream) {
    let mut session = wire::Session::new(wire::Protocol::Redis, wire::Limits::default());
    let mut events = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        session.feed(wire::Direction::ToServer, &buf[..n], 0, &mut events);
        for e in events.drain(..) {
            let wire::Event::Message(m) = e else { continue };
            let is_get = m.raw.prefix.windows(5).any(|w| w.eq_ignore_ascii_case(b"\r\nGET"));
            let reply = if is_get { deep_reply() } else { b"+OK\r\n".to_vec() };
            if stream.write_all(&reply).is_err() {
                return;
            }
        }
    }
}

#[test]
fn recording_a_reply_past_the_nesting_limit_forwards_it_and_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("deep.mp");
    let proxy = Proxy::start(&trace, &[format!("redis:0={}", fake_redis())]);
    let started = Instant::now();
    let mut client = TcpStream::connect(&proxy.addrs[0]).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    client.write_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap();
    let want = deep_reply();
    let mut got = vec![0u8; want.len()];
    client.read_exact(&mut got).expect("the whole reply, forwarded");
    assert!(got == want, "forwarded byte for byte");
    drop(client);
    let summary = proxy.stop();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(summary.contains("aggregates nested deeper than 128"), "{summary}");
    let cat = run(Command::new(oltrace_bin()).arg("cat").arg(&trace).args(["--kind", "fallback"]));
    let cat = String::from_utf8_lossy(&cat.stdout);
    assert!(cat.contains("aggregates nested deeper than 128"), "{cat}");
}

#[test]
fn replaying_against_a_server_that_answers_past_the_nesting_limit_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("normal.mp");
    let key = unique("parser_deep");
    let proxy = Proxy::start(&trace, &["redis:0=127.0.0.1:6379".into()]);
    redis_cli(&proxy.port(0), &["set", &key, "v"]);
    redis_cli(&proxy.port(0), &["get", &key]);
    proxy.stop();
    let target = format!("redis=redis://{}", fake_redis());
    let started = Instant::now();
    let (code, out, err) = olreplay(&[trace.to_str().unwrap(), "--target", &target]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}: {out}{err}");
    assert!(code == 1 || code == 2, "exit {code}: {out}{err}");
    assert!(out.contains("failed 1"), "the GET failed, the SET matched: {out}{err}");
    assert!(format!("{out}{err}").contains("aggregates nested deeper than 128"), "{out}{err}");
}
