//! `oltrace proxy` meeting a server over TLS it verifies
//! (`upstream-tls=verify-full`): a private PostgreSQL instance that
//! accepts TLS connections only, with a certificate for `localhost` signed
//! by a CA the test makes. Through the right name, default clients are
//! declined TLS on the loopback hop, re-encrypted to the server, and every
//! statement is recorded; through a name the certificate does not carry,
//! the client gets a PostgreSQL error saying why, at once. The recording
//! replays clean against the same server with `sslmode=require`,
//! `verify-full` or `verify-ca` in the target URL, or with no target (the
//! recorded upstream, in TLS again) and `--cacert`; a name the certificate
//! lacks, or a CA not given, is a clear error (exit 2); plaintext is
//! refused by that server.
//!
//! Needs the PostgreSQL server binaries, psql and the built `oltrace` (see
//! tests/support and support/pg_instance.rs).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::pg_instance::Instance;
use support::*;

/// A server that takes TLS connections only, its certificate for
/// `localhost` signed by a test CA; and the CA's PEM.
fn tls_only_instance() -> (Instance, String) {
    let ca = TestCa::localhost();
    let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n";
    let conf = "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n";
    let inst = Instance::start(hba, conf, &[("server.crt", &ca.cert_pem), ("server.key", &ca.key_pem)]);
    (inst, ca.ca_pem)
}

#[test]
fn verify_full_upstream_records_default_clients_and_a_wrong_name_is_a_clear_error() {
    let (inst, ca) = tls_only_instance();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let trace = dir.path().join("verified.mp");
    let route = |host: &str| format!("postgres:0={host}:{},upstream-tls=verify-full,upstream-ca={}", inst.port, ca_file.display());

    // The certificate's name: works, TLS to the server (plaintext is
    // rejected there), every statement recorded.
    let proxy = Proxy::start(&trace, &[route("localhost")]);
    let port = proxy.port(0);
    assert_eq!(inst.psql_at(&port, "postgres", None, "select ssl from pg_stat_ssl where pid = pg_backend_pid()"), "t\n");
    assert_eq!(psql_via_db(&port, "select 'verified ' || 6 * 7"), "verified 42\n");
    proxy.stop();
    let cat = run(Command::new(oltrace_bin()).args(["cat", "--kind", "exchange"]).arg(&trace));
    let cat = String::from_utf8_lossy(&cat.stdout);
    assert!(cat.contains("select 'verified ' || 6 * 7") && cat.contains("pg_stat_ssl"), "{cat}");
    let info = run(Command::new(oltrace_bin()).arg("info").arg(&trace));
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("tls:         declined 2") && info.contains("upstream-tls=verify-full"), "{info}");

    // olreplay speaks TLS to a target that asks for it, and only then is
    // let in.
    let t = trace.to_str().unwrap();
    let tls_target = format!("postgres=postgres://postgres@localhost:{}/postgres?sslmode=require", inst.port);
    let (code, v, err) = olreplay_json(&[t, "--target", &tls_target]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(v["replayed"].as_u64().unwrap() >= 2 && v["matched"] == v["replayed"], "{v}");
    // libpq's verify-full and verify-ca, against the test CA: the name
    // the certificate carries passes; another name fails verify-full at
    // once, naming the cause and the fix (exit 2), and passes verify-ca,
    // which checks the chain only.
    let verified = |host: &str, mode: &str| {
        format!("postgres=postgres://postgres@{host}:{}/postgres?sslmode={mode}&sslrootcert={}", inst.port, ca_file.display())
    };
    let (code, v, err) = olreplay_json(&[t, "--target", &verified("localhost", "verify-full")]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(v["matched"] == v["replayed"], "{v}");
    let (code, out, err) = olreplay(&[t, "--target", &verified("127.0.0.1", "verify-full")]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("127.0.0.1") && err.contains("not valid for the name '127.0.0.1'") && err.contains("--insecure"),
        "the target, the cause and the fix: {err}"
    );
    let (code, v, err) = olreplay_json(&[t, "--target", &verified("127.0.0.1", "verify-ca")]);
    assert_eq!(code, 0, "verify-ca checks the chain only: {v}\n{err}");
    // Without --target, back to the recorded upstream, which the route
    // met in TLS (upstream-tls=verify-full, in the trace's header): TLS
    // again, checked against --cacert; without it, against the system's
    // CAs, which do not know the test CA.
    let ca_arg = ca_file.to_str().unwrap();
    let (code, v, err) = olreplay_json(&[t, "--cacert", ca_arg]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(v["replayed"].as_u64().unwrap() >= 2 && v["matched"] == v["replayed"], "{v}");
    let (code, out, err) = olreplay(&[t]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("recorded upstream localhost:") && err.contains("not signed by a trusted CA") && err.contains("--cacert FILE"), "{err}");
    let plain_target = format!("postgres=postgres://postgres@localhost:{}/postgres", inst.port);
    let (code, out, err) = olreplay(&[t, "--target", &plain_target]);
    assert_ne!(code, 0, "plaintext is refused by this server: {out}\n{err}");
    assert!(format!("{out}{err}").contains("no encryption"), "the server's refusal is reported: {out}\n{err}");

    // An address the certificate does not name: the client is told, not
    // left waiting.
    let proxy = Proxy::start(&dir.path().join("wrong.mp"), &[route("127.0.0.1")]);
    let started = Instant::now();
    let child = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &proxy.port(0), "-U", "postgres", "-d", "postgres", "-XAtc", "select 1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("FATAL:  oltrace proxy: upstream 127.0.0.1:") && err.contains("TLS handshake failed") && err.contains("127.0.0.1"),
        "the server's refusal, as a PostgreSQL error: {err}"
    );
    proxy.stop();
}

/// psql through the proxy to the instance's `postgres` database.
fn psql_via_db(port: &str, sql: &str) -> String {
    let out = run(Command::new("psql").args(["-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "postgres", "-XtAq", "-c", sql]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
