//! `oltrace proxy` at its limits: a client that reads 1 byte a second, and
//! a process out of file descriptors. Other connections keep being served,
//! memory stays bounded, and the proxy recovers once the pressure is gone.

mod common;

use common::{echo_server, Proxy};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
    kb << 10
}

/// `payload` through `addr` on a new connection and back, within `limit`.
fn echo_within(addr: &str, payload: &[u8], limit: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    echo_on(&mut s, payload, limit)
}

/// `payload` through the open connection `s` and back, within `limit`.
fn echo_on(s: &mut TcpStream, payload: &[u8], limit: Duration) -> Result<(), String> {
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(payload).map_err(|e| e.to_string())?;
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).map_err(|e| e.to_string())?;
    if back != payload {
        return Err("echo differs".into());
    }
    Ok(())
}

/// A client that sends a lot and reads 1 byte a second holds only its own
/// connection back: the proxy stops reading from the upstream when the
/// client does not take what it has (no unbounded buffering), and other
/// connections are answered at once meanwhile.
#[test]
fn a_slow_reader_stalls_nothing_else_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = echo_server();
    let proxy = Proxy::start(&dir.path().join("slow.mp"), &[format!("tcp:0={upstream}")], &[]);
    let addr = proxy.addrs[0].clone();
    let pid = proxy.child.id();
    echo_within(&addr, b"warm up", Duration::from_secs(2)).unwrap();
    let before = rss(pid);
    // The slow client writes until the echo backs up to it and its writes
    // block: what it got in is what the sockets and buffers hold.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let chunk = vec![b'x'; 64 << 10];
    let mut sent = 0usize;
    while sent < 1 << 30 {
        match slow.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 256 << 20, "the slow client's writes must back up, not fill the proxy's memory: {sent} bytes taken");
    // Now it reads one byte a second; others are served promptly.
    let mut one = [0u8; 1];
    for _ in 0..3 {
        slow.read_exact(&mut one).unwrap();
        let start = Instant::now();
        echo_within(&addr, b"not stalled", Duration::from_secs(2)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(1), "another connection waited {:?}", start.elapsed());
        std::thread::sleep(Duration::from_secs(1));
    }
    let grown = rss(pid).saturating_sub(before);
    eprintln!("slow reader: {sent} bytes taken before its writes blocked; proxy RSS grew {} KiB", grown >> 10);
    assert!(grown < 64 << 20, "the proxy's memory grew {} MiB for one slow reader", grown >> 20);
    drop(slow);
    let (code, summary) = proxy.stop_unread();
    assert_eq!(code, 0, "{summary}");
}

/// Out of file descriptors (RLIMIT_NOFILE lowered for the proxy): new
/// connections wait or are closed, with a line on stderr; the open ones
/// keep working; and once some close, new ones are served again.
#[test]
fn out_of_file_descriptors_new_connections_wait_and_the_proxy_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = echo_server();
    let trace = dir.path().join("fds.mp");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    cmd.arg("proxy").arg("-o").arg(&trace).args(["--route", &format!("tcp:0={upstream}"), "--threads", "2"]);
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 64, rlim_max: 64 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let proxy = Proxy::spawn(cmd, &trace, 1);
    let addr = proxy.addrs[0].clone();
    // Open connections until one is not served.
    let mut open = Vec::new();
    let refused = loop {
        assert!(open.len() < 64, "64 descriptors cannot serve 64 connections");
        let mut s = TcpStream::connect(&addr).unwrap();
        match echo_on(&mut s, b"hello", Duration::from_millis(700)) {
            Ok(()) => open.push(s),
            Err(_) => break s,
        }
    };
    assert!(open.len() >= 5, "some connections were served: {}", open.len());
    // The open ones keep working.
    for s in open.iter_mut() {
        echo_on(s, b"still here", Duration::from_secs(2)).unwrap();
    }
    // Descriptors free up: the proxy serves new connections again.
    drop(refused);
    open.truncate(open.len() - 5);
    let start = Instant::now();
    let recovered = loop {
        match echo_within(&addr, b"again", Duration::from_secs(2)) {
            Ok(()) => break true,
            Err(_) if start.elapsed() < Duration::from_secs(10) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => break false,
        }
    };
    assert!(recovered, "new connections are served once descriptors free up");
    for s in open.iter_mut() {
        echo_on(s, b"and still", Duration::from_secs(2)).unwrap();
    }
    drop(open);
    let (code, stderr) = proxy.stop_unread();
    assert!(stderr.contains("out of file descriptors"), "a line says why new connections waited: {stderr}");
    assert_eq!(code, 0, "{stderr}");
}

/// Raises this process's soft descriptor limit to its hard limit (which
/// children inherit); returns it.
fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) }, 0);
    limit.rlim_max
}

/// An HTTP upstream in a process of its own (so its descriptors do not
/// count against the test's): answers every request with a fixed 200.
fn python_upstream() -> (std::process::Child, String) {
    let script = r#"
import asyncio, sys
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n"
async def serve(r, w):
    try:
        while True:
            await r.readuntil(b"\r\n\r\n")
            w.write(RESPONSE)
            await w.drain()
    except Exception:
        w.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"#;
    let mut child = Command::new("python3").args(["-c", script]).stdout(std::process::Stdio::piped()).spawn().expect("python3 (.ci/run installs it)");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    (child, format!("127.0.0.1:{}", line.trim()))
}

/// 10,000 connections open at once through one proxy, each sending one
/// request and getting its answer while all the others are open; the
/// proxy's peak resident memory is reported and bounded. The proxy holds
/// two descriptors per connection: under a hard limit below 20,100
/// (raising it needs root with CAP_SYS_RESOURCE) the test opens as many as
/// fit, and says so.
#[test]
fn ten_thousand_concurrent_connections() {
    let hard = raise_nofile();
    let conns = 10_000usize.min((hard.saturating_sub(100) / 2) as usize);
    assert!(conns >= 5_000, "RLIMIT_NOFILE hard limit {hard} is too low for this test: raise it (ulimit -Hn 20100)");
    let dir = tempfile::tempdir().unwrap();
    let (mut upstream, upstream_addr) = python_upstream();
    let proxy = Proxy::start(&dir.path().join("10k.mp"), &[format!("http:0={upstream_addr}")], &[]);
    let addr = proxy.addrs[0].clone();
    let pid = proxy.child.id();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (ok, peak) = runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Connect a few hundred at a time (the listen queue is finite), and
        // keep every connection open until all have their answers.
        let connecting = Arc::new(tokio::sync::Semaphore::new(256));
        let all_answered = Arc::new(tokio::sync::Barrier::new(conns + 1));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..conns {
            let (addr, connecting, all_answered) = (addr.clone(), connecting.clone(), all_answered.clone());
            tasks.spawn(async move {
                let permit = connecting.acquire_owned().await.unwrap();
                let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect through the proxy");
                s.write_all(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 256];
                while !got.ends_with(b"hello, world\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    assert!(n > 0, "closed before the answer: {:?}", String::from_utf8_lossy(&got));
                    got.extend_from_slice(&buf[..n]);
                }
                drop(permit);
                all_answered.wait().await;
                got.starts_with(b"HTTP/1.1 200 OK")
            });
        }
        all_answered.wait().await;
        let peak = peak_rss(pid);
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            ok += r.unwrap() as usize;
        }
        (ok, peak)
    });
    eprintln!("{conns} concurrent connections (descriptor hard limit {hard}): {ok} answered while all were open; proxy peak RSS {} MiB", peak >> 20);
    let _ = upstream.kill();
    assert_eq!(ok, conns);
    assert!(peak < 1 << 30, "peak RSS {} MiB for {conns} connections", peak >> 20);
    let (code, summary) = proxy.stop_unread();
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains(&format!("{conns} connections")), "{summary}");
}

/// Peak resident memory of `pid` (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
    kb << 10
}
