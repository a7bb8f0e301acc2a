//! `olreplay` to targets that ask for TLS: `https://` and `rediss://`,
//! checked against a test CA given with `--cacert` or `sslrootcert=`, and
//! Redis recorded through a `rediss` route that met its upstream in TLS,
//! replayed there in TLS again without `--target`. A name the certificate
//! lacks, or a CA not given, stops the run at once with the target, the
//! cause and the fix (exit 2); `--insecure` encrypts without checking.
//!
//! Real curl, redis-cli and redis-server (with `--tls-port`), the real
//! `oltrace proxy` (see tests/support), a small HTTPS upstream on rustls.

mod support;
#[path = "../../tracer/tests/common/tls_redis.rs"]
mod tls_redis;

use std::process::Command;
use support::*;

#[test]
fn https_target_checked_against_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("http.mp");
    let recorded = Upstream::start();
    let proxy = Proxy::start(&trace, &[format!("http:0={}", recorded.addr)]);
    let base = format!("http://{}", proxy.addrs[0]);
    run(Command::new("curl").args(["-s", &format!("{base}/item/1"), &format!("{base}/item/2"), "-o", "/dev/null", "-o", "/dev/null"]));
    run(Command::new("curl").args(["-sf", "-o", "/dev/null", "-d", "hello body", &format!("{base}/echo")]));
    proxy.stop();
    let t = trace.to_str().unwrap();

    let ca = TestCa::localhost();
    let ca_file = ca.ca_file(dir.path());
    let ca_arg = ca_file.to_str().unwrap();
    let https = Upstream::start_tls(ca.server_config());
    let port = https.addr.rsplit(':').next().unwrap().to_string();

    // The certificate's name, the CA given: a clean replay, Host rewritten.
    let target = format!("http=https://localhost:{port}");
    let (code, v, err) = olreplay_json(&[t, "--target", &target, "--cacert", ca_arg]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!((v["replayed"].as_u64(), v["matched"].as_u64()), (Some(3), Some(3)), "{v}");
    assert_eq!(*https.hosts.lock().unwrap(), vec![format!("localhost:{port}"); 3]);
    // The CA in the URL (libpq's name) does the same.
    let in_url = format!("http=https://localhost:{port}/?sslrootcert={ca_arg}");
    let (code, v, err) = olreplay_json(&[t, "--target", &in_url]);
    assert_eq!(code, 0, "{v}\n{err}");

    // A name the certificate does not carry.
    let wrong = format!("http=https://127.0.0.1:{port}");
    let (code, out, err) = olreplay(&[t, "--target", &wrong, "--cacert", ca_arg]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!("target 127.0.0.1:{port} from --target"))
            && err.contains("TLS handshake failed (verify-full against ")
            && err.contains("not valid for the name '127.0.0.1'")
            && err.contains("connect by a name the certificate carries"),
        "the target, the cause and the fix: {err}"
    );
    // The CA not given: the system's CAs do not know it.
    let (code, out, err) = olreplay(&[t, "--target", &target]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("not signed by a trusted CA") && err.contains("--cacert FILE") && err.contains("--insecure"), "{err}");
    // --insecure: encrypted, not checked.
    let (code, v, err) = olreplay_json(&[t, "--target", &wrong, "--insecure"]);
    assert_eq!(code, 0, "{v}\n{err}");
    // Contradictions are refused before anything is sent.
    let (code, _, err) = olreplay(&[t, "--target", &target, "--insecure", "--cacert", ca_arg]);
    assert_eq!(code, 2);
    assert!(err.contains("--insecure and --cacert contradict"), "{err}");
}

#[test]
fn rediss_target_and_a_recorded_tls_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::localhost();
    let ca_arg = ca.ca_file(dir.path()).to_str().unwrap().to_owned();
    let server = tls_redis::start(dir.path(), &ca.ca_pem, &ca.cert_pem, &ca.key_pem);
    let key = unique("olreplay_rediss");

    // Recorded in plaintext against the shared Redis, replayed to the TLS
    // one through rediss://.
    let plain = dir.path().join("plain.mp");
    let proxy = Proxy::start(&plain, &["redis:0=127.0.0.1:6379".into()]);
    let p = proxy.port(0);
    redis_cli(&p, &["set", &key, "over TLS"]);
    redis_cli(&p, &["get", &key]);
    redis_cli(&p, &["del", &key]);
    proxy.stop();
    let target = format!("redis=rediss://localhost:{}", server.port);
    let (code, v, err) = olreplay_json(&[plain.to_str().unwrap(), "--target", &target, "--cacert", &ca_arg]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!((v["replayed"].as_u64(), v["matched"].as_u64()), (Some(3), Some(3)), "{v}");

    // Recorded through a rediss route that met the TLS server in TLS
    // (upstream-tls=verify-full): back there, in TLS again, without
    // --target.
    let tls_trace = dir.path().join("rediss.mp");
    let route = format!("rediss:0=localhost:{},upstream-tls=verify-full,upstream-ca={ca_arg}", server.port);
    let proxy = Proxy::start(&tls_trace, &[route]);
    let p = proxy.port(0);
    for args in [&["set", key.as_str(), "recorded in TLS"][..], &["get", &key], &["del", &key]] {
        run(Command::new("redis-cli").args(["--tls", "--insecure", "-h", "127.0.0.1", "-p", &p]).args(args));
    }
    proxy.stop();
    let t = tls_trace.to_str().unwrap();
    let (code, v, err) = olreplay_json(&[t, "--cacert", &ca_arg]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!((v["replayed"].as_u64(), v["matched"].as_u64()), (Some(3), Some(3)), "{v}");
    let (code, out, err) = olreplay(&[t]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!("recorded upstream localhost:{}", server.port)) && err.contains("not signed by a trusted CA"),
        "{err}"
    );
    let (code, v, err) = olreplay_json(&[t, "-k"]);
    assert_eq!(code, 0, "{v}\n{err}");
}
