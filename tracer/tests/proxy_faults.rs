//! Faults around `oltrace proxy`: an upstream that dies mid-exchange
//! (closes, or is killed with the request unread), a recorder queue far too
//! small for a burst (`--block` loses nothing), and a trace file that stops
//! accepting writes (a full disk: recording stops, traffic goes on, exit 2).

mod common;

use common::{count_kind, echo_server, http_exchanges, Proxy};
use format::{Body, Direction, ExchangeStatus};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

/// How the fault upstream treats the first connection it accepts; later
/// connections get a proper HTTP answer.
#[derive(Clone, Copy)]
enum Death {
    /// Reads the request, then closes (FIN): a crash after reading.
    CloseAfterRead,
    /// Closes with the request unread and SO_LINGER 0 (RST), as the kernel
    /// does for a process killed with data in its socket.
    Killed,
}

fn dying_upstream(death: Death) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut first = true;
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            if first {
                first = false;
                match death {
                    Death::CloseAfterRead => {
                        let _ = s.read(&mut buf);
                    }
                    Death::Killed => {
                        // Wait for the request to arrive, but leave it unread.
                        let mut peek = [0u8; 1];
                        let _ = s.peek(&mut peek);
                        set_linger_zero(&s);
                    }
                }
                drop(s);
                continue;
            }
            std::thread::spawn(move || {
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

fn set_linger_zero(s: &TcpStream) {
    use std::os::unix::io::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let rc = unsafe {
        libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &linger as *const _ as *const libc::c_void, std::mem::size_of::<libc::linger>() as u32)
    };
    assert_eq!(rc, 0);
}

/// Sends one GET and reads until the proxy closes the connection.
fn get(addr: &str) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(b"GET /work HTTP/1.1\r\nHost: upstream\r\n\r\n")?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)?;
    Ok(got)
}

fn upstream_dies(death: Death) {
    let dir = tempfile::tempdir().unwrap();
    let upstream = dying_upstream(death);
    let proxy = Proxy::start(&dir.path().join("dies.mp"), &[format!("http:0={upstream}")], &[]);
    // The client sees its connection closed (or reset) with no response.
    match get(&proxy.addrs[0]) {
        Ok(got) => assert!(got.is_empty(), "no response from a dead upstream: {:?}", String::from_utf8_lossy(&got)),
        Err(e) => assert!(matches!(e.kind(), std::io::ErrorKind::ConnectionReset), "{e}"),
    }
    // The proxy is still up: the next connection is served.
    let got = get(&proxy.addrs[0]).expect("a second connection works");
    assert!(got.starts_with(b"HTTP/1.1 200 OK") && got.ends_with(b"ok"), "{:?}", String::from_utf8_lossy(&got));
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");

    let ex = http_exchanges(&records);
    assert_eq!(ex.len(), 2, "{ex:?}");
    let (dead, _) = ex.iter().find(|(e, _)| e.status != ExchangeStatus::Complete).expect("the failed exchange is in the trace");
    assert_eq!(dead.status, ExchangeStatus::Unanswered, "{dead:?}");
    assert_eq!(dead.response_first, None);
    assert!(ex.iter().any(|(e, h)| e.status == ExchangeStatus::Complete && h.status == Some(200)));
    let closes: Vec<&format::ConnClose> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::ConnClose(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(closes.len(), 2);
    let dead_close = closes.iter().find(|c| c.conn == dead.conn).unwrap();
    assert_eq!(dead_close.bytes_to_client, 0);
    if let Death::Killed = death {
        let error = dead_close.error.as_deref().unwrap_or_default();
        assert!(error.contains("upstream") && error.to_lowercase().contains("reset"), "the reset is named: {dead_close:?}");
    }
}

#[test]
fn upstream_closing_after_the_request_is_an_unanswered_exchange() {
    upstream_dies(Death::CloseAfterRead);
}

#[test]
fn upstream_killed_mid_exchange_is_recorded_with_the_reset() {
    upstream_dies(Death::Killed);
}

/// `payload` through `addr` and back; returns what came back.
fn echo(addr: &str, payload: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut reader = s.try_clone().unwrap();
    let back = std::thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        got
    });
    for chunk in payload.chunks(1000) {
        s.write_all(chunk).unwrap();
    }
    s.shutdown(Shutdown::Write).unwrap();
    back.join().unwrap()
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn block_loses_nothing_with_a_tiny_queue() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = echo_server();
    // 16 notes of queue against 8 connections pushing 2 MB each, both ways.
    let proxy = Proxy::start(&dir.path().join("block.mp"), &[format!("tcp:0={upstream}")], &["--block", "--queue", "16"]);
    let addr = proxy.addrs[0].clone();
    let clients: Vec<_> = (0..8u64)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let payload = noise(2_000_000, i + 1);
                assert!(echo(&addr, &payload) == payload, "echo differs");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(count_kind(&records, "gap"), 0, "no gaps with --block: {summary}");
    assert!(!summary.contains("fell behind"), "{summary}");
    let mut bytes = [0u64; 2];
    for r in &records {
        if let Body::Message(m) = &r.body {
            bytes[(m.dir == Direction::ToClient) as usize] += m.data.len;
        }
    }
    assert_eq!(bytes, [16_000_000, 16_000_000], "every byte recorded, both ways");
}

#[test]
fn full_disk_stops_recording_but_not_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = echo_server();
    let trace = dir.path().join("full.mp");
    // A file size limit stands in for a full disk, portably and without
    // root: writes past 256 KiB fail (EFBIG) as they would with ENOSPC.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    cmd.arg("proxy").arg("-o").arg(&trace).args(["--route", &format!("tcp:0={upstream}")]);
    unsafe {
        cmd.pre_exec(|| {
            // Without this the kernel kills the process (SIGXFSZ) instead
            // of failing the write; the ignored disposition survives exec.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: 256 << 10, rlim_max: 256 << 10 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let proxy = Proxy::spawn(cmd, &trace, 1);
    let addr = proxy.addrs[0].clone();
    // A first exchange, flushed (within 100 ms) before the disk fills.
    let header_only = std::fs::metadata(&trace).unwrap().len();
    assert_eq!(echo(&addr, b"before the disk fills"), b"before the disk fills");
    while std::fs::metadata(&trace).unwrap().len() == header_only {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Incompressible traffic, far more than the limit.
    for i in 0..8 {
        let payload = noise(500_000, 100 + i);
        assert!(echo(&addr, &payload) == payload, "traffic flows whatever the disk does");
    }
    // Well after the failure, connections are still served.
    assert_eq!(echo(&addr, b"still forwarding"), b"still forwarding");
    let (code, stderr) = proxy.stop_unread();
    assert_eq!(code, 2, "recording stopped early: exit 2; {stderr}");
    assert!(stderr.contains("recording stopped") && stderr.contains("File too large"), "the message names the problem: {stderr}");
    assert!(stderr.contains("traffic keeps flowing"), "{stderr}");
    // What was written before the failure still reads back.
    let readable: Vec<format::Record> = format::Reader::open(&trace).unwrap().map_while(Result::ok).collect();
    let first = readable.iter().find_map(|r| match &r.body {
        Body::Message(m) => Some(m.data.bytes.0.clone()),
        _ => None,
    });
    assert_eq!(first.as_deref(), Some(&b"before the disk fills"[..]), "the trace holds what was written before");
    assert!(std::fs::metadata(&trace).unwrap().len() <= 256 << 10);
}

/// A listener whose accept queue is full and never drained: the kernel
/// drops further SYNs, so connecting to it hangs (as to a host that
/// drops packets). Returns its address and what keeps it full.
fn hanging_upstream() -> (String, Vec<TcpStream>) {
    // SAFETY: plain socket calls on a descriptor we own.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    let listener = unsafe {
        use std::os::fd::FromRawFd;
        let addr = libc::sockaddr_in { sin_family: libc::AF_INET as u16, sin_port: 0, sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() }, sin_zero: [0; 8] };
        assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_in>() as u32), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        TcpListener::from_raw_fd(fd)
    };
    let addr = listener.local_addr().unwrap();
    let mut fill = Vec::new();
    while let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        fill.push(s);
        assert!(fill.len() < 64, "the accept queue never fills");
    }
    std::mem::forget(listener);
    (addr.to_string(), fill)
}

/// How long until `addr`, sent a request, closes (or resets) the
/// connection without answering.
fn time_to_close(addr: &str) -> Duration {
    let start = std::time::Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("an answer from nowhere: {:?}", &buf[..n]),
        Err(e) => assert!(matches!(e.kind(), std::io::ErrorKind::ConnectionReset), "closed, not timed out: {e}"),
    }
    start.elapsed()
}

/// An upstream that refuses, and one that hangs on connect: each client
/// is closed promptly (the hanging one after --connect-timeout), the trace
/// says why, and the proxy keeps serving its other routes.
#[test]
fn refusing_and_hanging_upstreams_close_the_client_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (hanging, _fill) = hanging_upstream();
    let echo_addr = echo_server();
    let routes = [format!("http:0={refused}"), format!("http:0={hanging}"), format!("tcp:0={echo_addr}")];
    let proxy = Proxy::start(&dir.path().join("flap.mp"), &routes, &["--connect-timeout", "400ms"]);
    for _ in 0..3 {
        let t = time_to_close(&proxy.addrs[0]);
        assert!(t < Duration::from_secs(1), "a refusing upstream closes the client at once: {t:?}");
        let t = time_to_close(&proxy.addrs[1]);
        assert!(t >= Duration::from_millis(350) && t < Duration::from_secs(3), "a hanging upstream closes the client after --connect-timeout: {t:?}");
        assert_eq!(echo(&proxy.addrs[2], b"still up"), b"still up", "the proxy stays up");
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let errors: Vec<String> = records.iter().filter_map(|r| if let Body::ConnClose(c) = &r.body { c.error.clone() } else { None }).collect();
    assert_eq!(errors.iter().filter(|e| e.contains(&refused) && e.to_lowercase().contains("refused")).count(), 3, "{errors:?}");
    assert_eq!(errors.iter().filter(|e| e.contains(&hanging) && e.contains("--connect-timeout")).count(), 3, "{errors:?}");
}
