//! Helpers shared by the proxy tests: a running `oltrace proxy`, reading
//! its trace, running client programs, picking exchanges out of records,
//! and the small HTTP upstream (`examples/http_upstream.rs`, included here
//! so the tests serve it in process and count what it answered).
#![allow(dead_code)] // Each test file uses a different part.

use format::{Body, ExchangeStatus, Reader, Record};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

#[path = "../../examples/http_upstream.rs"]
pub mod http_upstream;

pub mod worker;

/// A running `oltrace proxy`, with the addresses its routes listen on.
pub struct Proxy {
    pub child: Child,
    pub addrs: Vec<String>,
    pub trace: PathBuf,
    stderr: BufReader<std::process::ChildStderr>,
    /// What it printed on stderr before listening.
    pub early: String,
    /// Recorded with `--no-redact`.
    no_redact: bool,
}

impl Proxy {
    /// `oltrace proxy -o TRACE EXTRA... --route R...`; waits until every
    /// route listens.
    pub fn start(trace: &Path, routes: &[String], extra: &[&str]) -> Proxy {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
        cmd.arg("proxy").arg("-o").arg(trace).args(extra);
        for r in routes {
            cmd.args(["--route", r]);
        }
        Proxy::spawn(cmd, trace, routes.len())
    }

    /// Runs `cmd` (an `oltrace proxy ...` built by the caller, writing
    /// `trace`) and waits until `routes` routes listen.
    pub fn spawn(mut cmd: Command, trace: &Path, routes: usize) -> Proxy {
        let no_redact = cmd.get_args().any(|a| a == "--no-redact");
        let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut addrs = Vec::new();
        let mut early = String::new();
        while addrs.len() < routes {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "proxy exited before listening: {early}");
            if let Some(rest) = line.split(" listening on ").nth(1) {
                addrs.push(rest.split(" -> ").next().unwrap().trim().to_string());
            }
            early.push_str(&line);
        }
        Proxy { child, addrs, trace: trace.to_path_buf(), stderr, early, no_redact }
    }

    /// The port route `i` listens on.
    pub fn port(&self, i: usize) -> String {
        port(&self.addrs[i]).to_string()
    }

    /// SIGINT, then the exit code, what it printed, and the trace.
    pub fn stop(self) -> (i32, String, Vec<Record>) {
        let trace = self.trace.clone();
        let (code, stderr) = self.stop_unread();
        (code, stderr, read_trace(&trace))
    }

    /// SIGINT, then the exit code and everything it printed on stderr.
    pub fn stop_unread(self) -> (i32, String) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.stop_unread_after_signal()
    }

    /// The exit code and everything it printed on stderr, once the
    /// caller's signals have ended it.
    pub fn stop_unread_after_signal(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        keep_for_scan(&self.trace, self.no_redact);
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        (status.code().unwrap_or(-1), std::mem::take(&mut self.early) + &rest)
    }
}

/// A test that fails before stopping its proxy must not leave it running
/// (and holding its ports) until the machine ends.
impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The canary secret the redaction tests send (tracer/tests/redaction.rs);
/// scripts/test.sh scans every trace the suite writes for it.
pub const CANARY: &str = "Canary7d1eOltraceSecret";

/// When `OLTRACE_TEST_TRACES` names a directory (scripts/test.sh sets
/// it), a copy of `trace` goes there, for the scan for [`CANARY`] after the
/// suite: named after the test binary, and `noredact-...` when recorded
/// with `--no-redact` (the script lists the tests allowed to).
pub fn keep_for_scan(trace: &Path, no_redact: bool) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = std::env::var_os("OLTRACE_TEST_TRACES") else { return };
    if !trace.exists() {
        return;
    }
    let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).unwrap_or_default();
    // `redaction-0123abcd`: the test file's name without cargo's hash.
    let test = exe.rsplit_once('-').map_or(exe.as_str(), |(name, _)| name);
    let name = format!(
        "{test}-{}-{}-{}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        if no_redact { "noredact-" } else { "" },
        trace.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    );
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::copy(trace, Path::new(&dir).join(name));
}

/// An upstream that echoes every byte back until the client half-closes.
pub fn echo_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = vec![0u8; 65536];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if std::io::Write::write_all(&mut s, &buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

pub fn read_trace(path: &Path) -> Vec<Record> {
    Reader::open(path).unwrap().map(|r| r.expect("no damage")).collect()
}

pub fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

/// Runs a client program that must succeed; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (is it installed? .ci/run installs it)"));
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every exchange record with its start time.
pub fn exchanges(records: &[Record]) -> Vec<(u64, &format::Exchange)> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Exchange(e) => Some((r.ts, e)),
            _ => None,
        })
        .collect()
}

pub fn pg_exchanges(records: &[Record]) -> Vec<&format::PgExchange> {
    exchanges(records)
        .into_iter()
        .filter_map(|(_, e)| match &e.summary {
            format::ExchangeSummary::Pg(p) => Some(p),
            _ => None,
        })
        .collect()
}

pub fn redis_exchanges(records: &[Record]) -> Vec<(&format::Exchange, &format::RedisExchange)> {
    exchanges(records)
        .into_iter()
        .filter_map(|(_, e)| match &e.summary {
            format::ExchangeSummary::Redis(r) => Some((e, r)),
            _ => None,
        })
        .collect()
}

pub fn http_exchanges(records: &[Record]) -> Vec<(&format::Exchange, &format::HttpExchange)> {
    exchanges(records)
        .into_iter()
        .filter_map(|(_, e)| match &e.summary {
            format::ExchangeSummary::Http(h) => Some((e, h)),
            _ => None,
        })
        .collect()
}

/// Every answered exchange's times are in order:
/// start <= request_last <= response_first <= response_last.
pub fn assert_timings_in_order(records: &[Record]) {
    for (ts, e) in exchanges(records) {
        if e.status == ExchangeStatus::Complete {
            let (first, last) = (e.response_first.expect("answered"), e.response_last.expect("answered"));
            assert!(ts <= e.request_last && e.request_last <= first && first <= last, "times out of order: {ts} {e:?}");
        }
    }
}

/// What became of TLS on each connection, in the order they opened.
pub fn tls_modes(records: &[Record]) -> Vec<Option<format::TlsMode>> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::ConnOpen(o) => Some(o.tls),
            _ => None,
        })
        .collect()
}

/// Records of one kind.
pub fn count_kind(records: &[Record], kind: &str) -> usize {
    records.iter().filter(|r| r.body.kind() == kind).count()
}

/// The HTTP upstream of `examples/http_upstream.rs`, served in process on
/// its own runtime. Returns its address and its counters.
pub fn http_upstream() -> (String, Arc<http_upstream::Served>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let served = Arc::new(http_upstream::Served::default());
    let counters = served.clone();
    std::thread::spawn(move || runtime.block_on(http_upstream::serve(listener, served)));
    (addr, counters)
}

/// A CA of the test's own (its name differs from the leaves', or OpenSSL
/// would take them for self-signed).
pub fn test_ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(rcgen::DnType::CommonName, "oltrace test CA");
    (ca.self_signed(&key).unwrap(), key)
}

/// A certificate for `localhost` that `ca` signed: (certificate PEM, key PEM).
pub fn localhost_cert(ca: &(rcgen::Certificate, rcgen::KeyPair)) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &ca.0, &ca.1).unwrap();
    (cert.pem(), key.serialize_pem())
}
