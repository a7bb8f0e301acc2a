//! A Redis server that takes TLS only, on a free port, with a certificate
//! and key a test made (for `localhost`, signed by a test CA); stopped when
//! dropped. Real `redis-server` with `--tls-port` (Debian's is built with
//! TLS; scripts/test.sh installs it).
//!
//! Shared by the tracer's and olreplay's tests: `replayer/tests` includes
//! this file with `#[path]`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct TlsRedis {
    child: Child,
    pub port: String,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server with `cert_pem`/`key_pem`, `ca_pem` as the CA it
/// names, the files written in `dir`; returns once it listens.
pub fn start(dir: &Path, ca_pem: &str, cert_pem: &str, key_pem: &str) -> TlsRedis {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let (ca, crt, key) = (dir.join("ca.pem"), dir.join("redis.pem"), dir.join("redis.key"));
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&crt, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(&crt)
        .arg("--tls-key-file")
        .arg(&key)
        .arg("--tls-ca-cert-file")
        .arg(&ca)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (is it installed? scripts/test.sh installs it)");
    let server = TlsRedis { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(format!("127.0.0.1:{}", server.port)).is_ok() {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("redis-server did not listen on {}", server.port);
}
