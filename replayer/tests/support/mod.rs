//! What the replay tests share: the real `oltrace proxy` to record through,
//! real clients (psql, pgbench, redis-cli, curl), a small HTTP upstream
//! whose answers a test can change, and `olreplay` itself.
//!
//! `oltrace` is the workspace's own binary: `cargo test --workspace` builds
//! it; with `cargo test -p oltrace-replayer` build it first
//! (`cargo build -p oltrace-tracer`), or point `OLTRACE_BIN` at one.
#![allow(dead_code)]

pub mod pg_instance;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// The `oltrace` binary next to this test's profile directory.
pub fn oltrace_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OLTRACE_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/replay-<hash> -> target/<profile>/oltrace
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("oltrace");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p oltrace-tracer` (cargo test --workspace does), or set OLTRACE_BIN",
        bin.display()
    );
    bin
}

/// A running `oltrace proxy`, with the addresses its routes listen on.
pub struct Proxy {
    child: Child,
    pub addrs: Vec<String>,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Proxy {
    /// Routes as `PROTO:0=UPSTREAM` (a free port each).
    pub fn start(trace: &Path, routes: &[String]) -> Proxy {
        Proxy::start_with(trace, routes, &[])
    }

    /// [`Proxy::start`] with more `oltrace proxy` flags.
    pub fn start_with(trace: &Path, routes: &[String], extra: &[&str]) -> Proxy {
        let mut cmd = Command::new(oltrace_bin());
        cmd.arg("proxy").arg("-o").arg(trace).args(extra);
        for r in routes {
            cmd.args(["--route", r]);
        }
        let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut addrs = Vec::new();
        while addrs.len() < routes.len() {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "proxy exited before listening");
            if let Some(rest) = line.split(" listening on ").nth(1) {
                addrs.push(rest.split(" -> ").next().unwrap().trim().to_string());
            }
        }
        Proxy { child, addrs, stderr }
    }

    pub fn port(&self, i: usize) -> String {
        self.addrs[i].rsplit(':').next().unwrap().to_string()
    }

    /// SIGINT, wait, and check it exited cleanly; returns what it said on
    /// stderr after listening (its summary).
    pub fn stop(mut self) -> String {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        assert_eq!(status.code(), Some(0), "proxy: {rest}");
        rest
    }
}

impl Drop for Proxy {
    /// A test that fails midway must not leave its proxy running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// psql on the shared server, directly (not recorded).
pub fn psql_direct(sql: &str) -> String {
    let out = run(Command::new("psql").args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "test", "-XtAq", "-v", "ON_ERROR_STOP=1", "-c", sql]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// psql through a proxy port.
pub fn psql_via(port: &str, sql: &str) -> String {
    let out = run(Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "test", "-XtAq", "-v", "ON_ERROR_STOP=1", "-c", sql]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn redis_cli(port: &str, args: &[&str]) -> String {
    let out = run(Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", port]).args(args));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `olreplay` with `args`: exit code, stdout, stderr.
pub fn olreplay(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_olreplay")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `olreplay --report json`, parsed.
pub fn olreplay_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = args.to_vec();
    all.extend(["--report", "json"]);
    let (code, out, err) = olreplay(&all);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    (code, v, err)
}

/// A unique name for tables and keys, so tests sharing servers do not meet.
pub fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), t % 1_000_000_000)
}

/// A small HTTP/1.1 upstream: keep-alive, `Content-Length` bodies. `GET
/// /item/N` answers `item N: <version>`; `POST /echo` echoes the body;
/// `POST /early` answers 413 before reading the body and closes; anything
/// else is a 404. The version is the test's to change.
pub struct Upstream {
    pub addr: String,
    pub version: Arc<Mutex<String>>,
    /// The `Host` header of every request served.
    pub hosts: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        Upstream::start_with(None)
    }

    /// The same upstream in HTTPS, with `tls`'s certificate.
    pub fn start_tls(tls: Arc<rustls::ServerConfig>) -> Upstream {
        Upstream::start_with(Some(tls))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let version = Arc::new(Mutex::new("v1".to_string()));
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let (v, h) = (version.clone(), hosts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (v, h, tls) = (v.clone(), h.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, v, h),
                    Some(config) => {
                        // A client that refuses the certificate ends here.
                        let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                        serve(rustls::StreamOwned::new(conn, stream), v, h)
                    }
                });
            }
        });
        Upstream { addr, version, hosts }
    }
}

/// A test CA and a certificate for `localhost` it signed, in PEM.
pub struct TestCa {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn localhost() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        ca.distinguished_name.push(rcgen::DnType::CommonName, "olreplay test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
        TestCa { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// The CA's certificate written to `dir/ca.pem`.
    pub fn ca_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }

    /// A server presenting the `localhost` certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        let cert = rustls::pki_types::CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        Arc::new(config)
    }
}

fn serve<S: Read + Write>(stream: S, version: Arc<Mutex<String>>, hosts: Arc<Mutex<Vec<String>>>) {
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut len = 0usize;
        let mut close = false;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("host:") {
                hosts.lock().unwrap().push(h[5..].trim().to_string());
            }
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        if path == "/early" {
            // Refuses the upload before reading it, and closes.
            let _ = r.get_mut().write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo much");
            return;
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (status, text) = if method == "GET" && path.starts_with("/item/") {
            ("200 OK", format!("item {}: {}", &path[6..], version.lock().unwrap()).into_bytes())
        } else if method == "POST" && path == "/echo" {
            ("200 OK", body)
        } else {
            ("404 Not Found", b"no such thing".to_vec())
        };
        let head = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", text.len());
        let w = r.get_mut();
        if w.write_all(head.as_bytes()).and_then(|_| w.write_all(&text)).and_then(|_| w.flush()).is_err() || close {
            return;
        }
    }
}
