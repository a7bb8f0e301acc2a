//! `--forward-proxy --tls-intercept`: HTTPS calls through the forward proxy
//! are decrypted with certificates from oltrace's CA and recorded as HTTP.
//!
//! curl, Python `requests` and Node's `fetch` (through undici's
//! `EnvHttpProxyAgent`: Node 20's fetch ignores `HTTPS_PROXY`) run under
//! `oltrace wrap` with their default settings but for the variables wrap
//! sets, against HTTPS servers made here with a test CA; the trace holds
//! their decoded requests and responses. A `--tls-passthrough` host stays
//! opaque and its real certificate verifies; an upstream with an untrusted
//! certificate gets the client a 502 naming the cause. `oltrace ca init`
//! makes its files with the right modes and refuses to replace them.
//!
//! Needs curl, python3 with requests, node with conformance/node_modules
//! (`npm ci` in conformance/, as scripts/test.sh does).

mod common;

use common::{http_exchanges, read_trace, test_ca, Proxy};
use format::{Body, Direction, Protocol, Record, TlsMode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate for `names` that `ca` signed, or self-signed without
/// one: (certificate PEM, key PEM).
fn cert_for(names: &[&str], ca: Option<&(rcgen::Certificate, rcgen::KeyPair)>) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    leaf.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
    let cert = match ca {
        Some(ca) => leaf.signed_by(&key, &ca.0, &ca.1).unwrap(),
        None => leaf.self_signed(&key).unwrap(),
    };
    (cert.pem(), key.serialize_pem())
}

/// An HTTPS server on `bind` (thread per connection, keep-alive) that
/// answers each request with `METHOD TARGET body=BODY`, or, for
/// `/echo`, with the request body as it came. Returns its address.
fn https_server(bind: &str, (cert, key): &(String, String)) -> String {
    let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), stream);
                serve_http(tls);
            });
        }
    });
    addr
}

fn serve_http(mut s: impl Read + Write) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    let mut more = |s: &mut dyn Read, buf: &mut Vec<u8>| match s.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    };
    loop {
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if !more(&mut s, &mut buf) {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.trim().parse().unwrap()))
            .unwrap_or(0);
        while buf.len() < end + len {
            if !more(&mut s, &mut buf) {
                return;
            }
        }
        let body: Vec<u8> = buf[end..end + len].to_vec();
        buf.drain(..end + len);
        let line = head.lines().next().unwrap_or("").trim_end_matches(" HTTP/1.1").to_string();
        let answer = if line.ends_with(" /echo") { body } else { format!("{line} body={}", String::from_utf8_lossy(&body)).into_bytes() };
        let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", answer.len()).into_bytes();
        response.extend_from_slice(&answer);
        if s.write_all(&response).and_then(|_| s.flush()).is_err() {
            return;
        }
    }
}

fn conn_opens(records: &[Record]) -> Vec<format::ConnOpen> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::ConnOpen(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

/// Every byte recorded on `conn` in direction `dir`, in order.
fn recorded(records: &[Record], conn: u64, dir: Direction) -> Vec<u8> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Message(m) if m.conn == conn && m.dir == dir => Some(m.data.bytes.as_bytes().to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

const NODE_FETCH: &str = r#"
const { EnvHttpProxyAgent, setGlobalDispatcher } = require("undici");
setGlobalDispatcher(new EnvHttpProxyAgent());
(async () => {
  const base = process.argv[1];
  console.log(await (await fetch(base + "/node/get")).text());
  console.log(await (await fetch(base + "/node/post", { method: "POST", body: "node-body" })).text());
})().catch((e) => { console.error(e); process.exit(1); });
"#;

const PY_REQUESTS: &str = r#"
import requests, sys
base = sys.argv[1]
print(requests.get(base + "/py/get").text)
print(requests.post(base + "/py/post", data=b"py-body").text)
"#;

#[test]
fn wrapped_clients_https_calls_are_decrypted_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let test_ca = test_ca();
    let upstream_ca = dir.path().join("upstream-ca.pem");
    std::fs::write(&upstream_ca, test_ca.0.pem()).unwrap();
    let cert = cert_for(&["localhost", "127.0.0.1", "127.0.0.2"], Some(&test_ca));
    let server = https_server("127.0.0.1:0", &cert);
    let port = common::port(&server).to_string();
    // Passed through: the same kind of server on another loopback address.
    let pinned = https_server("127.0.0.2:0", &cert);
    // Its certificate signed by nobody the proxy trusts.
    let untrusted = https_server("127.0.0.1:0", &cert_for(&["127.0.0.1"], None));
    let ca_dir = dir.path().join("oltrace-ca");
    let trace = dir.path().join("https.mp");
    let node_modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/node_modules");
    assert!(node_modules.join("undici").exists(), "undici is installed (npm ci in conformance/, as scripts/test.sh does)");

    let script = format!(
        r#"set -e
        curl -sS --fail https://localhost:{port}/curl/get; echo
        curl -sS --fail -d curl-body https://localhost:{port}/curl/post; echo
        python3 -c '{PY_REQUESTS}' https://127.0.0.1:{port}
        node -e '{NODE_FETCH}' https://localhost:{port}
        curl -sS --fail --cacert {upstream_ca} https://{pinned}/pinned; echo
        curl -sS -w ' status=%{{http_code}}' https://{untrusted}/untrusted; echo
        echo "SSL_CERT_FILE=$SSL_CERT_FILE NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS"
        "#,
        upstream_ca = upstream_ca.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["wrap", "-o"])
        .arg(&trace)
        .args(["--forward-proxy", "0", "--tls-intercept", "--ca-dir"])
        .arg(&ca_dir)
        .arg("--upstream-ca")
        .arg(&upstream_ca)
        .args(["--tls-passthrough", "127.0.0.2", "--", "sh", "-c", &script])
        .env("NODE_PATH", &node_modules)
        // The variables wrap sets, and nothing that would bypass the proxy.
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("SSL_CERT_FILE")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .env_remove("NODE_EXTRA_CA_CERTS")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("made a CA for --tls-intercept in"), "a missing CA is made, and said: {stderr}");
    assert_eq!(std::fs::metadata(ca_dir.join("ca.key")).unwrap().permissions().mode() & 0o777, 0o600);
    // Every client got its real answer through the intercepted TLS.
    for line in [
        "GET /curl/get body=",
        "POST /curl/post body=curl-body",
        "GET /py/get body=",
        "POST /py/post body=py-body",
        "GET /node/get body=",
        "POST /node/post body=node-body",
        "GET /pinned body=",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} missing in\n{stdout}\nstderr: {stderr}");
    }
    // The untrusted upstream: a 502 inside the intercepted TLS, naming it and why.
    let answer = stdout.lines().find(|l| l.starts_with("oltrace forward proxy: upstream")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(answer.contains(&format!("upstream {untrusted}: TLS handshake failed")) && answer.contains("UnknownIssuer"), "{answer}");
    assert!(stdout.lines().any(|l| l == " status=502"), "{stdout}");
    let env_line = stdout.lines().find(|l| l.starts_with("SSL_CERT_FILE=")).unwrap();
    assert!(env_line.contains(&format!("NODE_EXTRA_CA_CERTS={}", ca_dir.join("ca.pem").display())), "{env_line}");

    let records = read_trace(&trace);
    let opens = conn_opens(&records);
    let intercepted: Vec<_> = opens.iter().filter(|o| o.tls == Some(TlsMode::Intercepted)).collect();
    assert!(intercepted.iter().all(|o| o.protocol == Protocol::Http && o.route.starts_with("forward-proxy:")), "{intercepted:?}");
    let mut seen: Vec<(String, String, Option<u16>)> = http_exchanges(&records)
        .into_iter()
        .filter(|(x, _)| intercepted.iter().any(|o| o.conn == x.conn))
        .map(|(_, h)| (h.method.clone(), h.target.clone(), h.status))
        .collect();
    seen.sort();
    let want = ["/curl/get", "/curl/post", "/node/get", "/node/post", "/py/get", "/py/post"];
    let mut expected: Vec<(String, String, Option<u16>)> =
        want.iter().map(|p| (if p.ends_with("post") { "POST" } else { "GET" }.to_string(), p.to_string(), Some(200))).collect();
    expected.sort();
    assert_eq!(seen, expected, "each client's calls decoded");
    // The servers were the CONNECT targets, and bodies both ways are in the trace.
    for (client, host) in [("curl", "localhost"), ("py", "127.0.0.1"), ("node", "localhost")] {
        let conn = intercepted
            .iter()
            .find(|o| recorded(&records, o.conn, Direction::ToServer).windows(client.len() + 6).any(|w| w == format!("/{client}/post").as_bytes()))
            .unwrap_or_else(|| panic!("{client}'s POST connection"));
        assert_eq!(conn.server, format!("{host}:{port}"));
        let sent = String::from_utf8_lossy(&recorded(&records, conn.conn, Direction::ToServer)).into_owned();
        let got = String::from_utf8_lossy(&recorded(&records, conn.conn, Direction::ToClient)).into_owned();
        assert!(sent.ends_with(&format!("{client}-body")), "{client}: {sent}");
        assert!(got.ends_with(&format!("POST /{client}/post body={client}-body")), "{client}: {got}");
    }
    // The passthrough host: opaque, with the reason; never decoded.
    let pass = opens.iter().find(|o| o.server == pinned).expect("the passthrough tunnel");
    assert_eq!((pass.protocol, pass.tls), (Protocol::Tcp, Some(TlsMode::Passthrough)));
    assert!(recorded(&records, pass.conn, Direction::ToServer).starts_with(&[0x16]), "the client's own TLS, untouched");
    // The untrusted upstream: its conn_close says why.
    let failed = opens.iter().find(|o| o.server == untrusted).expect("the untrusted upstream's connection");
    let close = records
        .iter()
        .find_map(|r| match &r.body {
            Body::ConnClose(c) if c.conn == failed.conn => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert!(close.error.as_deref().is_some_and(|e| e.contains("TLS handshake failed") && e.contains("UnknownIssuer")), "{close:?}");
    assert!(stderr.contains("TLS on the clients' side:") && stderr.contains("intercepted"), "the summary says so: {stderr}");
}

/// What the client sends inside the intercepted TLS reaches the server in
/// its TLS byte for byte, and is what the trace holds, in random chunks.
#[test]
fn intercepted_bytes_are_forwarded_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let test_ca = test_ca();
    let upstream_ca = dir.path().join("upstream-ca.pem");
    std::fs::write(&upstream_ca, test_ca.0.pem()).unwrap();
    let server = https_server("127.0.0.1:0", &cert_for(&["localhost"], Some(&test_ca)));
    let ca_dir = dir.path().join("ca");
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["ca", "init"]).arg(&ca_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let trace = dir.path().join("exact.mp");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    cmd.args(["proxy", "-o"]).arg(&trace).args(["--forward-proxy", "0", "--tls-intercept", "--ca-dir"]).arg(&ca_dir).arg("--upstream-ca").arg(&upstream_ca);
    let proxy = Proxy::spawn(cmd, &trace, 1);

    // A client that trusts oltrace's CA, through CONNECT.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca_dir.join("ca.pem")).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots).with_no_client_auth();
    let target = server.replace("127.0.0.1", "localhost");
    let mut tcp = TcpStream::connect(&proxy.addrs[0]).unwrap();
    write!(tcp, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let mut answer = [0u8; 39];
    tcp.read_exact(&mut answer).unwrap();
    assert_eq!(&answer[..], b"HTTP/1.1 200 Connection Established\r\n\r\n");
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut rng = fastrand::Rng::with_seed(20);
    let body: Vec<u8> = (0..300_000).map(|_| rng.u8(..)).collect();
    let mut request = format!("POST /echo HTTP/1.1\r\nHost: {target}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    request.extend_from_slice(&body);
    let mut sent = 0;
    while sent < request.len() {
        let n = rng.usize(1..=20_000).min(request.len() - sent);
        tls.write_all(&request[sent..sent + n]).unwrap();
        tls.flush().unwrap();
        sent += n;
    }
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    let mut response = vec![0u8; head.len() + body.len()];
    tls.read_exact(&mut response).unwrap();
    assert_eq!(&response[..head.len()], head.as_bytes());
    assert!(response[head.len()..] == body[..], "the server got the client's bytes exactly (it echoes them)");
    drop(tls);

    let (code, stderr, records) = proxy.stop();
    assert_eq!(code, 0, "{stderr}");
    let open = conn_opens(&records).into_iter().find(|o| o.tls == Some(TlsMode::Intercepted)).expect("intercepted");
    assert!(recorded(&records, open.conn, Direction::ToServer) == request, "the trace holds what was sent");
    // (Server messages keep their first 64 KiB in the trace.)
    let back = recorded(&records, open.conn, Direction::ToClient);
    assert!(back.len() >= 64 << 10 && response.starts_with(&back), "and what came back: {} bytes", back.len());
}

#[test]
fn ca_init_makes_private_files_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("config/oltrace/ca");
    let oltrace = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(args).env("OLTRACE_CA_DIR", &ca_dir).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // No CA yet: the fix is named.
    let (code, _, stderr) = oltrace(&["ca", "path"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("oltrace ca init"), "{stderr}");
    // OLTRACE_CA_DIR is the default directory.
    let (code, stdout, stderr) = oltrace(&["ca", "init"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&ca_dir.join("ca.pem").display().to_string()) && stdout.contains("NODE_EXTRA_CA_CERTS"), "{stdout}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ca_dir), 0o700);
    assert_eq!(mode(&ca_dir.join("ca.key")), 0o600);
    let pem = std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // Not replaced without --force.
    let (code, _, stderr) = oltrace(&["ca", "init"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("already exists") && stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap(), pem);
    let (code, stdout, _) = oltrace(&["ca", "path"]);
    assert_eq!((code, stdout.trim()), (Some(0), ca_dir.join("ca.pem").display().to_string().as_str()));
    let (code, stdout, _) = oltrace(&["ca", "show"]);
    assert_eq!((code, stdout), (Some(0), pem.clone()));
    let (code, _, stderr) = oltrace(&["ca", "init", "--force"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_ne!(std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap(), pem, "replaced");
    assert_eq!(mode(&ca_dir.join("ca.key")), 0o600);
    // A key others can read is refused by the proxy, with the fix.
    std::fs::set_permissions(ca_dir.join("ca.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["proxy", "-o"])
        .arg(dir.path().join("t.mp"))
        .args(["--forward-proxy", "0", "--tls-intercept"])
        .env("OLTRACE_CA_DIR", &ca_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!dir.path().join("t.mp").exists(), "no trace is left behind");
    // --tls-intercept without a forward proxy is a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).args(["proxy", "-o", "x.mp", "--tls-intercept"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--forward-proxy"));
}
