//! `oltrace proxy` at its limits: a client that reads 1 byte a second, and
//! a process out of file descriptors. Other connections keep being served,
//! memory stays bounded, and the proxy recovers once the pressure is gone.

mod common;

use common::{echo_server, Proxy};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
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
