//! A recording survives a crash: a proxy under busy traffic (pipelined
//! `redis-benchmark`, `pgbench`) is killed with SIGKILL at a random moment;
//! after `oltrace recover`, every command the server had processed 100 ms
//! before the kill is in the trace, and none twice.
//!
//! The server's own count is exact and private to each round, whatever
//! else runs on the shared servers: a Redis counter only this round
//! increments (`INCR` on its own key: its value is the number of commands
//! Redis processed), a PostgreSQL table only this round inserts into (its
//! row count). A sampler reads it straight from the server (not through
//! the proxy) every few milliseconds, so the count at 100 ms before the
//! kill is known from below.

mod common;

use common::{read_trace, run, Proxy};
use format::{Body, Direction};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Kills are this many: a few per test, so the suite stays fast (a longer
/// soak: benches/crash_soak.sh).
const ROUNDS: usize = 3;
/// The promise: at most this much traffic before a kill is lost.
const LOSS_WINDOW: Duration = Duration::from_millis(100);

/// Samples of the server's count: when each was read, and the count.
type Samples = Arc<Mutex<Vec<(Instant, u64)>>>;

/// Reads `count()` every 5 ms until `stop`.
fn sample(stop: Arc<AtomicBool>, mut count: impl FnMut() -> u64 + Send + 'static) -> (Samples, std::thread::JoinHandle<()>) {
    let samples: Samples = Arc::default();
    let out = samples.clone();
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let n = count();
            out.lock().unwrap().push((Instant::now(), n));
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    (samples, handle)
}

/// The largest count read at least [`LOSS_WINDOW`] before `kill`.
fn count_before(samples: &Samples, kill: Instant) -> u64 {
    samples.lock().unwrap().iter().filter(|(t, _)| *t + LOSS_WINDOW <= kill).map(|s| s.1).max().unwrap_or(0)
}

/// Runs a proxy with one `route` under `load` (started with the proxy's
/// port), kills it with SIGKILL a random 0.4-1.5 s after the server first
/// counted the load, recovers the trace, and returns (commands in the
/// trace that `is_ours`, the server's count 100 ms before the kill, the
/// server's count at the end).
fn kill_and_recover(dir: &Path, round: usize, route: &str, load: impl Fn(&str) -> std::process::Child, is_ours: impl Fn(&[u8]) -> bool, count: impl FnMut() -> u64 + Send + 'static) -> (u64, u64, u64, String) {
    let trace = dir.join(format!("crash{round}.mp"));
    let mut proxy = Proxy::start(&trace, &[route.to_string()], &[]);
    let mut client = load(&proxy.port(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (samples, sampler) = sample(stop.clone(), count);
    // The kill comes a random 0.4-1.5 s after the server first counted the
    // load, not after the client started: on a busy machine a client can
    // take longer than that to connect, and a round with nothing before
    // the kill tests nothing.
    let started = Instant::now();
    while samples.lock().unwrap().last().is_none_or(|s| s.1 == 0) {
        assert!(started.elapsed() < Duration::from_secs(60), "the load through the proxy reached the server in 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(fastrand::u64(400..1500)));
    let child = &mut proxy.child;
    child.kill().unwrap(); // SIGKILL
    let kill = Instant::now();
    child.wait().unwrap();
    let _ = client.kill();
    let _ = client.wait();
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let before = count_before(&samples, kill);
    let after = samples.lock().unwrap().last().map_or(0, |s| s.1);
    let spool = dir.join(format!("crash{round}.mp.spool"));
    assert!(spool.exists(), "a killed proxy leaves its spool");
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("recover").arg(&trace).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "recover: {stderr}");
    assert!(!spool.exists(), "recover removes the spool");
    let records = read_trace(&trace);
    let marked = records.iter().any(|r| matches!(&r.body, Body::Log(l) if l.origin == "oltrace recover"));
    assert!(marked, "the trace says it was recovered");
    let ours = records
        .iter()
        .filter(|r| matches!(&r.body, Body::Message(m) if m.dir == Direction::ToServer && m.decoded.is_some() && is_ours(m.data.bytes.as_bytes())))
        .count() as u64;
    (ours, before, after, stderr)
}

/// Checks one round's counts. `in_flight`: how many commands the clients
/// can have sent at once; the proxy records a command as it reads it, so
/// those read but not yet forwarded when it was killed are in the trace
/// though the server never ran them. More than that is recording twice.
fn check(what: &str, round: usize, in_flight: u64, (ours, before, after, stderr): (u64, u64, u64, String)) {
    eprintln!("{what} round {round}: {ours} in the trace; the server had {before} 100 ms before the kill, {after} at the end; {stderr}");
    assert!(before > 0, "{what}: the load ran before the kill");
    assert!(ours >= before, "{what} round {round}: {ours} commands in the trace, but the server had processed {before} 100 ms before the kill");
    assert!(
        ours <= after + in_flight,
        "{what} round {round}: {ours} commands in the trace, more than the {after} the server processed and the {in_flight} the clients could have in flight: recorded twice"
    );
}

#[test]
fn sigkill_under_pipelined_redis_loses_at_most_100ms() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        let key = format!("durable:crash:{}:{round}", std::process::id());
        let load = |port: &str| {
            Command::new("redis-benchmark")
                .args(["-p", port, "-P", "16", "-c", "8", "-n", "100000000", "INCR", &key])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-benchmark (.ci/run installs it)")
        };
        let mut redis = std::net::TcpStream::connect("127.0.0.1:6379").unwrap();
        let mut replies = BufReader::new(redis.try_clone().unwrap());
        let get = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
        let count = move || {
            redis.write_all(get.as_bytes()).unwrap();
            let mut line = String::new();
            replies.read_line(&mut line).unwrap();
            if line.starts_with("$-1") {
                return 0;
            }
            line.clear();
            replies.read_line(&mut line).unwrap();
            line.trim().parse().unwrap()
        };
        let needle = key.clone().into_bytes();
        let counts = kill_and_recover(dir.path(), round, "redis:0=127.0.0.1:6379", load, |data| contains(data, &needle), count);
        check("redis-benchmark -P 16", round, 8 * 16, counts); // -c 8 -P 16
        let _ = Command::new("redis-cli").args(["DEL", &key]).output();
    }
}

#[test]
fn sigkill_under_pgbench_loses_at_most_100ms() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        let table = format!("durable_crash_{}_{round}", std::process::id());
        let psql = |sql: &str| run(Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-XAtqc", sql]));
        psql(&format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (n int)"));
        let script = dir.path().join(format!("{table}.sql"));
        std::fs::write(&script, format!("INSERT INTO {table} VALUES (1);\n")).unwrap();
        let load = |port: &str| {
            Command::new("pgbench")
                .args(["-h", "127.0.0.1", "-p", port, "-U", "postgres", "-n", "-c", "4", "-T", "30", "-f"])
                .arg(&script)
                .arg("test")
                // Default settings: pgbench asks for TLS and the proxy
                // declines it (tls=decline), so every INSERT is recorded.
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pgbench (.ci/run installs it)")
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect("host=127.0.0.1 port=5432 user=postgres dbname=test", tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client
        });
        let select = format!("SELECT count(*) FROM {table}");
        let count = move || runtime.block_on(async { client.query_one(&select, &[]).await.unwrap().get::<_, i64>(0) as u64 });
        let needle = format!("INSERT INTO {table} ").into_bytes();
        let counts = kill_and_recover(dir.path(), round, "postgres:0=127.0.0.1:5432", load, |data| contains(data, &needle), count);
        check("pgbench", round, 4, counts); // -c 4, one statement each
        psql(&format!("DROP TABLE {table}"));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A graceful stop with a backlog decodes it (in time proportional to
/// it); a second SIGINT stops decoding at once and leaves the rest in the
/// spool, which `oltrace recover` then decodes: every command is in the
/// trace, once.
#[test]
fn a_second_sigint_leaves_the_backlog_for_recover() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("twice.mp");
    let key = format!("durable:twice:{}", std::process::id());
    let proxy = Proxy::start(&trace, &["redis:0=127.0.0.1:6379".to_string()], &[]);
    let mut bench = Command::new("redis-benchmark")
        .args(["-p", &proxy.port(0), "-P", "16", "-c", "8", "-n", "100000000", "INCR", &key])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-benchmark (.ci/run installs it)");
    // Busy traffic: decoding waits for a pause (--defer), the spool fills;
    // 64 MiB of it take the recorder a second or more to decode.
    let spool = dir.path().join("twice.mp.spool");
    let filling = Instant::now();
    while std::fs::metadata(&spool).map_or(0, |m| m.len()) < 64 << 20 {
        assert!(filling.elapsed() < Duration::from_secs(60), "the spool did not reach 64 MiB");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = bench.kill();
    let _ = bench.wait();
    let pid = proxy.child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    // Ctrl-C again, as a user would until it stops (signals that arrive
    // together count once).
    let again = std::thread::spawn(move || {
        while unsafe { libc::kill(pid, 0) } == 0 && start.elapsed() < Duration::from_secs(3) {
            unsafe { libc::kill(pid, libc::SIGINT) };
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let (code, stderr) = proxy.stop_unread_after_signal();
    again.join().unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(3), "a second SIGINT stops at once: {:?}", start.elapsed());
    assert!(stderr.contains("second SIGINT") && stderr.contains("oltrace recover"), "{stderr}");
    assert!(spool.exists(), "the rest is left in the spool: {stderr}");
    let info = Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("info").arg(&trace).output().unwrap();
    assert!(String::from_utf8_lossy(&info.stderr).contains("oltrace recover"), "info says to recover");
    // A new recording over it is refused, with the same advice.
    let again = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["proxy", "--route", "redis:0=127.0.0.1:6379", "-o"]).arg(&trace).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("oltrace recover"));
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("recover").arg(&trace).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let served: u64 = String::from_utf8_lossy(&Command::new("redis-cli").args(["GET", &key]).output().unwrap().stdout).trim().parse().unwrap();
    let needle = key.clone().into_bytes();
    let ours = read_trace(&trace)
        .iter()
        .filter(|r| matches!(&r.body, Body::Message(m) if m.dir == Direction::ToServer && contains(m.data.bytes.as_bytes(), &needle)))
        .count() as u64;
    assert_eq!(ours, served, "every command Redis served is in the trace, once");
    let _ = Command::new("redis-cli").args(["DEL", &key]).output();
}
