//! `oltrace proxy` with real clients and servers: bytes forwarded exactly
//! and recorded; PostgreSQL (psql, pgbench) and Redis (redis-cli) decoded;
//! an unreachable upstream; a proxy killed mid-recording.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) and
//! Redis on 127.0.0.1:6379, with psql, pgbench and redis-cli: `.ci/run`
//! provides them. A missing service fails these tests; it never skips them.

mod common;

use common::{echo_server, port, Proxy};
use format::{Body, Direction, Reader, Record};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Sends `payload` in random chunks, half-closes, reads the echo to EOF.
fn echo_through(addr: &str, payload: &[u8], rng: &mut Rng) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let local = s.local_addr().unwrap().to_string();
    let mut reader = s.try_clone().unwrap();
    let expect = payload.len();
    let echo = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(expect);
        reader.read_to_end(&mut got).unwrap();
        got
    });
    let mut i = 0;
    while i < payload.len() {
        let n = (1 + rng.below(9000) as usize).min(payload.len() - i);
        s.write_all(&payload[i..i + n]).unwrap();
        i += n;
    }
    s.shutdown(Shutdown::Write).unwrap();
    (local, echo.join().unwrap())
}

/// The bytes a trace recorded for each (client address, direction).
fn recorded_streams(records: &[Record]) -> HashMap<(String, Direction), Vec<u8>> {
    let mut clients = HashMap::new();
    let mut streams: HashMap<(String, Direction), Vec<u8>> = HashMap::new();
    for r in records {
        match &r.body {
            Body::ConnOpen(o) => {
                clients.insert(o.conn, o.client.clone());
            }
            Body::Message(m) => {
                assert!(!m.data.is_truncated(), "tcp chunks fit under the caps");
                let key = (clients[&m.conn].clone(), m.dir);
                let stream = streams.entry(key).or_default();
                assert_eq!(stream.len() as u64, m.offset, "messages are contiguous");
                stream.extend_from_slice(&m.data.bytes.0);
            }
            _ => {}
        }
    }
    streams
}

#[test]
fn forwards_and_records_every_byte_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = echo_server();
    // Three forwarding threads: connections are handed between threads.
    let proxy = Proxy::start(&dir.path().join("t.mp"), &[format!("tcp:0={upstream}")], &["--threads", "3"]);
    let addr = proxy.addrs[0].clone();
    let mut sent: Vec<(String, Vec<u8>)> = Vec::new();
    let workers: Vec<_> = (0..8u64)
        .map(|w| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
                let mut done = Vec::new();
                for _ in 0..150 {
                    let len = match rng.below(10) {
                        0 => 0,
                        1..=6 => rng.below(2000),
                        _ => rng.below(200_000),
                    } as usize;
                    let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    let (local, echo) = echo_through(&addr, &payload, &mut rng);
                    assert_eq!(echo, payload, "echo through the proxy differs ({len} bytes)");
                    done.push((local, payload));
                }
                // A few clients reset mid-stream: the proxy must stay up.
                for _ in 0..5 {
                    let mut s = TcpStream::connect(&addr).unwrap();
                    s.write_all(&[7u8; 5000]).unwrap();
                    let sock = socket2_linger_zero(&s);
                    drop(sock);
                }
                done
            })
        })
        .collect();
    for w in workers {
        sent.extend(w.join().unwrap());
    }
    assert_eq!(sent.len(), 1200);
    // Still serving after the resets.
    let mut rng = Rng(42);
    let (_, echo) = echo_through(&addr, b"still here", &mut rng);
    assert_eq!(echo, b"still here");

    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains("connections"), "{summary}");
    let streams = recorded_streams(&records);
    for (local, payload) in &sent {
        let empty = Vec::new();
        let up = streams.get(&(local.clone(), Direction::ToServer)).unwrap_or(&empty);
        let down = streams.get(&(local.clone(), Direction::ToClient)).unwrap_or(&empty);
        assert!(up == payload, "recorded client bytes of {local} differ ({} vs {})", up.len(), payload.len());
        assert!(down == payload, "recorded server bytes of {local} differ");
    }
    let closes = records.iter().filter(|r| matches!(r.body, Body::ConnClose(_))).count();
    assert_eq!(closes, 1200 + 40 + 1, "every connection's close is recorded");
}

/// Makes the next close of `s` a reset (RST) instead of a FIN.
fn socket2_linger_zero(s: &TcpStream) -> TcpStream {
    use std::os::unix::io::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    assert_eq!(rc, 0);
    s.try_clone().unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pg_exchanges(records: &[Record]) -> Vec<&format::PgExchange> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Exchange(e) => match &e.summary {
                format::ExchangeSummary::Pg(p) => Some(p),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn records_psql_and_pgbench_queries() {
    let dir = tempfile::tempdir().unwrap();
    // pgbench's tables, created directly (not through the proxy).
    run(Command::new("pgbench").args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-i", "-s", "1", "-q", "test"]));
    let proxy = Proxy::start(&dir.path().join("pg.mp"), &["postgres:0=127.0.0.1:5432".to_string()], &[]);
    let p = port(&proxy.addrs[0]).to_string();
    let out = run(Command::new("psql").args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-d", "test", "-XAtc", "select 40 + 2 as answer"]));
    assert_eq!(out.trim(), "42");
    let txns = 25;
    for mode in ["simple", "extended", "prepared"] {
        run(Command::new("pgbench").args(["-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-n", "-S", "-M", mode, "-t", &txns.to_string(), "-c", "1", "test"]));
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let ex = pg_exchanges(&records);
    assert!(ex.iter().any(|e| e.statements.iter().any(|s| s.contains("select 40 + 2")) && e.rows == 1), "psql's query and its row");
    // pgbench -S: one SELECT per transaction, in each of the three modes.
    let selects: usize = ex
        .iter()
        .map(|e| e.statements.iter().filter(|s| s.contains("SELECT abalance FROM pgbench_accounts")).count())
        .sum();
    assert_eq!(selects, 3 * txns, "every statement pgbench sent is in the trace");
    // Timings are in order.
    for r in &records {
        if let Body::Exchange(e) = &r.body {
            if let (Some(first), Some(last)) = (e.response_first, e.response_last) {
                assert!(r.ts <= e.request_last && e.request_last <= first && first <= last);
            }
        }
    }
}

#[test]
fn records_redis_cli_commands() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("r.mp"), &["redis:0=127.0.0.1:6379".to_string()], &[]);
    let p = port(&proxy.addrs[0]).to_string();
    run(Command::new("redis-cli").args(["-p", &p, "set", "oltrace:test:k", "hello"]));
    assert_eq!(run(Command::new("redis-cli").args(["-p", &p, "get", "oltrace:test:k"])).trim(), "hello");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let commands: Vec<(String, Option<String>)> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Exchange(e) => match &e.summary {
                format::ExchangeSummary::Redis(x) => {
                    Some((x.command.clone(), x.reply.as_ref().and_then(|r| r.text.as_ref()).map(|t| t.to_text().into_owned())))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(commands.contains(&("SET".into(), Some("OK".into()))), "{commands:?}");
    assert!(commands.contains(&("GET".into(), Some("hello".into()))), "{commands:?}");
}

#[test]
fn unreachable_upstream_closes_the_client_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let proxy = Proxy::start(&dir.path().join("d.mp"), &[format!("tcp:0={closed}")], &[]);
    for _ in 0..3 {
        let mut s = TcpStream::connect(&proxy.addrs[0]).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "the client sees its connection closed");
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "the proxy stayed up: {summary}");
    let errors: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::ConnClose(c) => c.error.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e.contains("unreachable")), "{errors:?}");
}

#[test]
fn killed_proxy_leaves_a_readable_trace() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = echo_server();
    let trace = dir.path().join("k.mp");
    let mut proxy = Proxy::start(&trace, &[format!("tcp:0={upstream}")], &[]);
    let mut rng = Rng(7);
    for _ in 0..20 {
        echo_through(&proxy.addrs[0], &[1u8; 3000], &mut rng);
    }
    // Decoding runs behind the traffic (at idle priority): wait until the
    // recorder has written and flushed all of it, then SIGKILL.
    let start = Instant::now();
    while count(&trace) != Some((20, [60_000, 60_000])) {
        assert!(start.elapsed() < Duration::from_secs(60), "the recorder did not catch up: {:?}", count(&trace));
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(proxy.child.id() as i32, libc::SIGKILL) };
    proxy.child.wait().unwrap();
    // Intact (no damaged block), with every connection and every request
    // and echo byte, both ways.
    assert_eq!(count(&trace), Some((20, [60_000, 60_000])));
}

/// Busy traffic (8 MiB each way within moments) is held in the spool, not
/// decoded while it flows, and decoded once it pauses while the proxy
/// keeps running; with `--defer 1` (a budget of 1 MiB) decoding also runs
/// during the traffic, to stay under the budget. Either way every byte
/// reaches the trace without the proxy stopping.
#[test]
fn busy_traffic_is_recorded_once_it_pauses() {
    let payload: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
    for extra in [&[][..], &["--defer", "1"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let upstream = echo_server();
        let trace = dir.path().join("busy.mp");
        let proxy = Proxy::start(&trace, &[format!("tcp:0={upstream}")], extra);
        let (_, echoed) = echo_through(&proxy.addrs[0], &payload, &mut Rng(11));
        assert!(echoed == payload, "{extra:?}: the echo came back whole");
        let want = Some((1, [payload.len() as u64; 2]));
        let start = Instant::now();
        while count(&trace) != want {
            assert!(start.elapsed() < Duration::from_secs(60), "{extra:?}: the recorder did not catch up: {:?}", count(&trace));
            std::thread::sleep(Duration::from_millis(50));
        }
        // Stopped here, or the proxy outlives the test run.
        let (code, stderr) = proxy.stop_unread();
        assert_eq!(code, 0, "{extra:?}: {stderr}");
    }
}

/// Connections opened and message bytes each way in the trace as it is now
/// (`None` while it cannot be read whole).
fn count(trace: &std::path::Path) -> Option<(u32, [u64; 2])> {
    let mut opens = 0;
    let mut bytes = [0u64; 2];
    for item in Reader::open(trace).ok()? {
        match item.ok()? {
            Record { body: Body::ConnOpen(_), .. } => opens += 1,
            Record { body: Body::Message(m), .. } => bytes[m.dir.code() as usize] += m.data.len,
            _ => {}
        }
    }
    Some((opens, bytes))
}

/// A small HTTP/1.1 upstream: keep-alive, `Expect: 100-continue`,
/// Content-Length request bodies; `GET /big` answers 1 MiB, anything else
/// echoes the method, path and body length.
fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push(line);
                    }
                    let (method, path) = {
                        let mut parts = head[0].split_whitespace();
                        (parts.next().unwrap().to_string(), parts.next().unwrap().to_string())
                    };
                    let header = |name: &str| {
                        head.iter().find_map(|h| {
                            let (k, v) = h.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                    };
                    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
                        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                    }
                    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let mut body = vec![0u8; len];
                    reader.read_exact(&mut body).unwrap();
                    let reply: Vec<u8> = if path == "/big" {
                        (0..1 << 20).map(|i| b'a' + (i % 26) as u8).collect()
                    } else {
                        format!("{method} {path} {len}\n").into_bytes()
                    };
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", reply.len());
                    out.write_all(head.as_bytes()).unwrap();
                    out.write_all(&reply).unwrap();
                }
            });
        }
    });
    addr
}

fn http_exchanges(records: &[Record]) -> Vec<&format::HttpExchange> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Exchange(e) => match &e.summary {
                format::ExchangeSummary::Http(h) => Some(h),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn records_curl_keep_alive_100_continue_and_a_large_download() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = http_server();
    let proxy = Proxy::start(&dir.path().join("h.mp"), &[format!("http:0={upstream}")], &[]);
    let base = format!("http://{}", proxy.addrs[0]);
    // Two requests on one keep-alive connection.
    let out = run(Command::new("curl").args(["-sS", &format!("{base}/run/hello"), &format!("{base}/run/other?x=1")]));
    assert_eq!(out, "GET /run/hello 0\nGET /run/other?x=1 0\n");
    // A 5000-byte upload: curl sends `Expect: 100-continue` first.
    let body = "x".repeat(5000);
    let out = run(Command::new("curl").args(["-sS", "-H", "Expect: 100-continue", "--data-binary", &body, &format!("{base}/run/upload")]));
    assert_eq!(out, "POST /run/upload 5000\n");
    // 1 MiB down: forwarded whole, recorded capped with its length and hash.
    let big = run(Command::new("curl").args(["-sS", &format!("{base}/big")]));
    assert_eq!(big.len(), 1 << 20);
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");

    let ex = http_exchanges(&records);
    let seen: Vec<(&str, &str, Option<u16>)> = ex.iter().map(|e| (e.method.as_str(), e.target.as_str(), e.status)).collect();
    assert_eq!(
        seen,
        [("GET", "/run/hello", Some(200)), ("GET", "/run/other?x=1", Some(200)), ("POST", "/run/upload", Some(200)), ("GET", "/big", Some(200))]
    );
    let upload = ex.iter().find(|e| e.target == "/run/upload").unwrap();
    assert_eq!(upload.request_body_len, 5000);
    let download = ex.iter().find(|e| e.target == "/big").unwrap();
    assert_eq!(download.response_body_len, 1 << 20);
    // The interim 100 Continue is its own message; the big response is capped.
    let responses: Vec<&format::Message> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Message(m) if m.dir == Direction::ToClient => Some(m),
            _ => None,
        })
        .collect();
    assert!(responses.iter().any(|m| matches!(&m.decoded, Some(format::Decoded::HttpResponse(h)) if h.status == 100)));
    let big_msg = responses.iter().find(|m| m.data.len > 1 << 20).expect("the 1 MiB response");
    assert!(big_msg.data.is_truncated() && big_msg.data.hash.is_some());
    assert!(big_msg.data.bytes.0.len() <= 64 << 10);
}

/// Scheduling policy (`SCHED_*`) of each thread of `pid`, by thread name.
fn thread_policies(pid: u32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
        let (head, tail) = stat.rsplit_once(')').unwrap();
        let name = head.split_once('(').unwrap().1.to_string();
        // Fields after the name start at field 3 (state); policy is field 41.
        let policy = tail.split_whitespace().nth(41 - 3).unwrap().parse().unwrap();
        out.push((name, policy));
    }
    out
}

/// `--threads 2` runs two forwarding threads; the spooler runs at normal
/// priority and the recorder at idle priority while traffic may flow; the
/// spool is `t.mp.spool` beside the trace, readable by its owner only,
/// and gone after a clean stop; and the trace is complete at exit.
#[test]
fn forwarding_threads_and_an_idle_priority_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = echo_server();
    let proxy = Proxy::start(&dir.path().join("t.mp"), &[format!("tcp:0={upstream}")], &["--threads", "2"]);
    let mut rng = Rng(3);
    for _ in 0..4 {
        let (_, echo) = echo_through(&proxy.addrs[0], &[7u8; 5000], &mut rng);
        assert_eq!(echo.len(), 5000);
    }
    // A thread takes its name when it first runs: on a busy machine one
    // may still show its parent's name for a moment.
    let named = ["oltrace-recorde", "oltrace-spooler", "oltrace-fwd-0", "oltrace-fwd-1"];
    let started = std::time::Instant::now();
    let mut threads = thread_policies(proxy.child.id());
    while !named.iter().all(|n| threads.iter().any(|(t, _)| t == n)) && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        threads = thread_policies(proxy.child.id());
    }
    let policy = |name: &str| threads.iter().find(|(n, _)| n == name).map(|t| t.1);
    assert_eq!(threads.iter().filter(|(n, _)| n.starts_with("oltrace-fwd-")).count(), 2, "{threads:?}");
    assert_eq!(policy("oltrace-recorde"), Some(libc::SCHED_IDLE as u32), "{threads:?}");
    assert_eq!(policy("oltrace-spooler"), Some(libc::SCHED_OTHER as u32), "{threads:?}");
    let spool = dir.path().join("t.mp.spool");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777, 0o600, "the spool holds unredacted bytes");
    let (code, _, records) = proxy.stop();
    assert_eq!(code, 0);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names, ["t.mp"], "the spool is removed once decoded");
    let bytes: u64 = records.iter().filter_map(|r| if let Body::Message(m) = &r.body { Some(m.data.len) } else { None }).sum();
    assert_eq!(bytes, 2 * 4 * 5000, "every byte both ways, decoded after the traffic");
}
