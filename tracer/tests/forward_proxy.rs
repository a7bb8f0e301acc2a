//! `--forward-proxy`: curl sends absolute-form requests and CONNECT tunnels
//! through `oltrace proxy` to a local HTTP server; the trace holds the
//! first as HTTP exchanges with their host, the second as an opaque
//! connection to its target. Bad requests and unreachable targets get
//! clear answers.
//!
//! Needs curl (`.ci/run` installs it).

use format::{Body, ExchangeSummary, Protocol, Reader, Record};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

/// A tiny keep-alive HTTP server answering every request (no bodies) with
/// its own request line.
fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head: Vec<u8> = buf.drain(..end + 4).collect();
                    let text = String::from_utf8_lossy(&head);
                    let body = format!("you sent: {}\n", text.lines().next().unwrap_or(""));
                    let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    if s.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(["-sS", "--max-time", "20"]).args(args).output().expect("curl is installed (.ci/run)");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn forward_proxy_records_requests_and_tunnels() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("fp.mp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["proxy", "-o"])
        .arg(&trace)
        .args(["--forward-proxy", "0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let proxy = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "proxy exited before listening");
        if let Some(addr) = line.trim().strip_prefix("oltrace: forward proxy listening on ") {
            break addr.to_string();
        }
    };
    let server = http_server();
    let proxy_url = format!("http://{proxy}");

    // Absolute-form through the proxy.
    let body = curl(&["-x", &proxy_url, &format!("http://{server}/hello?x=1")]);
    assert_eq!(body, format!("you sent: GET http://{server}/hello?x=1 HTTP/1.1\n"), "forwarded as sent");
    // A CONNECT tunnel (curl -p), with plain HTTP inside.
    let body = curl(&["-p", "-x", &proxy_url, &format!("http://{server}/tunneled")]);
    assert_eq!(body, "you sent: GET /tunneled HTTP/1.1\n");
    // A reused connection whose next request is for another server: the
    // proxy closes it rather than send the request to the wrong one ...
    let other = server.replace("127.0.0.1", "localhost");
    let mut s = TcpStream::connect(&proxy).unwrap();
    write!(s, "GET http://{server}/one HTTP/1.1\r\nHost: {server}\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).ends_with("/one HTTP/1.1\n") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "response to the first request");
        got.extend_from_slice(&chunk[..n]);
    }
    write!(s, "GET http://{other}/two HTTP/1.1\r\nHost: {other}\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed without an answer: {}", String::from_utf8_lossy(&rest));
    // ... and curl, reusing its proxy connection across hosts, retries on a
    // new one: both answers are right.
    let both = curl(&["-x", &proxy_url, &format!("http://{server}/a"), &format!("http://{other}/b")]);
    assert_eq!(both, format!("you sent: GET http://{server}/a HTTP/1.1\nyou sent: GET http://{other}/b HTTP/1.1\n"));
    // Origin-form is not for a forward proxy.
    let mut s = TcpStream::connect(&proxy).unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400") && resp.contains("absolute-form"), "{resp}");
    // An unreachable target.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut s = TcpStream::connect(&proxy).unwrap();
    write!(s, "GET http://{closed}/ HTTP/1.1\r\nHost: {closed}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 502") && resp.contains("unreachable"), "{resp}");

    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
    let records: Vec<Record> = Reader::open(&trace).unwrap().map(|r| r.unwrap()).collect();

    let opens: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::ConnOpen(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert!(opens.iter().all(|c| c.route.starts_with("forward-proxy:")), "{opens:?}");
    let http = opens.iter().find(|c| c.protocol == Protocol::Http && c.server == server).expect("the absolute-form connection");
    // No request ever went to the wrong server.
    for r in &records {
        if let Body::Exchange(x) = &r.body {
            if let (ExchangeSummary::Http(h), Some(open)) = (&x.summary, opens.iter().find(|c| c.conn == x.conn)) {
                assert!(h.target.contains(&format!("//{}/", open.server)), "{} sent to {}", h.target, open.server);
            }
        }
    }
    let tunnel = opens.iter().find(|c| c.protocol == Protocol::Tcp).expect("the tunnel");
    assert_eq!(tunnel.server, server, "the tunnel is recorded with its target");

    let exchange = records
        .iter()
        .find_map(|r| match &r.body {
            Body::Exchange(x) if x.conn == http.conn => Some(x.clone()),
            _ => None,
        })
        .expect("the request is an exchange");
    let ExchangeSummary::Http(h) = &exchange.summary else { panic!("{exchange:?}") };
    assert_eq!((h.method.as_str(), h.target.as_str()), ("GET", format!("http://{server}/hello?x=1").as_str()));
    assert_eq!(h.host.as_deref(), Some(server.as_str()));
    assert_eq!(h.status, Some(200));
    assert!(exchange.attribution.is_none(), "no invocations, no attribution");

    // The tunnel's bytes are opaque chunks: the request inside is there as sent.
    let inside: Vec<u8> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Message(m) if m.conn == tunnel.conn && m.dir == format::Direction::ToServer => Some(m.data.bytes.as_bytes().to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(String::from_utf8_lossy(&inside).starts_with("GET /tunneled HTTP/1.1\r\n"), "{}", String::from_utf8_lossy(&inside));
    assert!(!records.iter().any(|r| matches!(&r.body, Body::Exchange(x) if x.conn == tunnel.conn)), "tunnels are not decoded");

    let failed = records.iter().find_map(|r| match &r.body {
        Body::ConnClose(c) if c.error.as_deref().is_some_and(|e| e.contains(&closed.to_string())) => Some(c.clone()),
        _ => None,
    });
    assert!(failed.is_some(), "the unreachable target is in the trace");
}
