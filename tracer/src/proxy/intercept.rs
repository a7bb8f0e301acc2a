//! `--tls-intercept`: the forward proxy decrypts CONNECT tunnels, as
//! mitmproxy does, so the HTTPS calls inside are recorded like plain HTTP.
//!
//! After answering `200 Connection Established`, the proxy looks at what
//! comes first. A TLS ClientHello from the client is accepted with a
//! certificate for the host it names (its SNI, else the CONNECT host),
//! made and signed on the fly by the proxy's CA ([`tls::ca`]); the proxy
//! then opens its own TLS to the real server, verified against the
//! system's CAs and `--upstream-ca` (or not at all, `--upstream-insecure`),
//! and relays the plaintext both ways exactly as it comes, recording it as
//! an `http` connection with `conn_open.tls = intercepted`. Anything else
//! (a client speaking plaintext, a server that speaks first) is relayed
//! as an opaque tunnel, as without interception. Hosts matched by
//! `--tls-passthrough` are never touched: opaque, `tls = passthrough`.
//!
//! Both sides offer only HTTP/1.1 in ALPN: HTTP/1.1 is what `wire`
//! decodes, and clients that would speak h2 fall back to it.
//!
//! An upstream whose TLS fails (an untrusted certificate, a wrong name)
//! cannot be reported by closing: the client's TLS is already up and would
//! see a bare disconnect. It gets a `502 Bad Gateway` inside its TLS
//! naming the upstream and the cause, and the trace's `conn_close` holds
//! the same.

use super::forward::{log_now_and_then, relay, send_first};
use super::forward_proxy::reply;
use super::tap::{Note, Tap};
use anyhow::Context;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tls::ca::Ca;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use wire::Protocol;

/// What `--tls-intercept` was given.
#[derive(Clone, Debug, Default)]
pub struct InterceptOptions {
    /// `--ca-dir`: where the CA is (else [`tls::ca::default_dir`]).
    pub ca_dir: Option<PathBuf>,
    /// `--tls-passthrough HOST`: hosts left opaque (`*.suffix` for every
    /// name under a domain).
    pub passthrough: Vec<String>,
    /// `--upstream-ca FILE`: CA certificates trusted for upstreams, besides
    /// the system's.
    pub upstream_ca: Vec<PathBuf>,
    /// `--upstream-insecure`: do not verify upstreams at all.
    pub upstream_insecure: bool,
}

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// The only application protocol offered on either side.
const HTTP1: &[u8] = b"http/1.1";
/// How long the proxy keeps reading a client it answered 502, so that
/// closing with its request unread does not reset the connection before
/// the answer is read.
const LINGER: Duration = Duration::from_secs(2);

/// The CA, the upstream TLS configuration and the passthrough hosts,
/// shared by every connection of the forward proxy.
pub struct Intercept {
    ca: Ca,
    connector: tokio_rustls::TlsConnector,
    passthrough: Vec<String>,
    /// What the upstreams are verified against, for error messages.
    verified_by: String,
}

impl Intercept {
    /// Reads the CA (making it first, and saying so, when the directory
    /// has none) and builds the upstream configuration. Errors name the
    /// file and the fix.
    pub fn start(opts: &InterceptOptions) -> anyhow::Result<Intercept> {
        let dir = match &opts.ca_dir {
            Some(dir) => dir.clone(),
            None => tls::ca::default_dir().map_err(|e| anyhow::anyhow!("--tls-intercept: {e}"))?,
        };
        if tls::ca::init_if_missing(&dir).map_err(|e| anyhow::anyhow!("--tls-intercept: {e}"))? {
            eprintln!(
                "oltrace: made a CA for --tls-intercept in {} (as `oltrace ca init` would): clients must trust {} (oltrace wrap points its command at it)",
                dir.display(),
                dir.join(tls::ca::CERT_FILE).display()
            );
        }
        let ca = Ca::load(&dir).map_err(|e| anyhow::anyhow!("--tls-intercept: {e}"))?;
        let mut config = if opts.upstream_insecure {
            (*tls::unverified_client()?).clone()
        } else {
            let files: Vec<&Path> = opts.upstream_ca.iter().map(PathBuf::as_path).collect();
            let roots = tls::root_store(&files, true, "--upstream-ca FILE, or --upstream-insecure").context("--tls-intercept verifies upstreams")?;
            ClientConfig::builder_with_provider(tls::provider()).with_safe_default_protocol_versions()?.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = vec![HTTP1.to_vec()];
        let verified_by = match (opts.upstream_insecure, opts.upstream_ca.is_empty()) {
            (true, _) => "--upstream-insecure: not verified".to_string(),
            (false, true) => "verified against the system's CAs; --upstream-ca FILE adds one".to_string(),
            (false, false) => "verified against the system's CAs and --upstream-ca".to_string(),
        };
        let passthrough = opts.passthrough.iter().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()).collect();
        Ok(Intercept { ca, connector: Arc::new(config).into(), passthrough, verified_by })
    }

    /// The CA certificate clients must trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.ca.cert_path()
    }

    /// Whether tunnels to `target` (`host:port`) stay opaque: its host is a
    /// `--tls-passthrough` name, or under a `*.domain` one.
    pub fn passes_through(&self, target: &str) -> bool {
        let host = host_of(target).to_ascii_lowercase();
        self.passthrough.iter().any(|p| match p.strip_prefix("*.") {
            Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => *p == host,
        })
    }

    /// Serves a CONNECT tunnel the client was told is established. `open`
    /// records the connection once it is known what it is.
    pub(super) async fn serve(&self, tunnel: Tunnel, open: impl FnOnce(Protocol, Option<format::TlsMode>), tap: &Tap) {
        let Tunnel { conn, client, early, mut upstream, server } = tunnel;
        let server = server.as_str();
        let closed = |error: String| tap.send_control(Note::Close { conn, ts: tap.now(), bytes_to_server: 0, bytes_to_client: 0, error: Some(error) });
        if !starts_with_tls(&client, &early, &upstream).await {
            // Not TLS from the client: an opaque tunnel, as without
            // interception.
            open(Protocol::Tcp, None);
            if let Err(e) = send_first(conn, &mut upstream, &early, tap).await {
                return closed(e);
            }
            return relay(conn, client, upstream, None, false, early.len() as u64, tap).await;
        }
        open(Protocol::Http, Some(format::TlsMode::Intercepted));
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        // What the client sent with its CONNECT is the start of its
        // ClientHello: read it first.
        let (read, write) = client.into_split();
        let client = tokio::io::join(std::io::Cursor::new(early).chain(read), write);
        let start = match tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), client).await {
            Ok(start) => start,
            Err(e) => return closed(format!("client TLS: {e}")),
        };
        // The name the client will check the certificate against.
        let name = start.client_hello().server_name().unwrap_or(host_of(server)).to_string();
        let config = match self.ca.host_cert(&name).map_err(|e| anyhow::anyhow!(e)).and_then(server_config) {
            Ok(config) => config,
            Err(e) => return closed(format!("client TLS: {e:#}")),
        };
        let client = match start.into_stream(config).await {
            Ok(client) => client,
            Err(e) => {
                let why = format!(
                    "client TLS handshake for {name} failed: {e} (a client that does not trust {} refuses the proxy's certificates: point it at that file, or leave the host alone with --tls-passthrough {})",
                    self.ca.cert_path().display(),
                    host_of(server)
                );
                log_now_and_then(&format!("oltrace: forward proxy: {why}"));
                return closed(why);
            }
        };
        let upstream = match ServerName::try_from(name.clone()) {
            Ok(server_name) => self.connector.connect(server_name, upstream).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("'{name}' is not a host name: {e}")),
        };
        let upstream = match upstream {
            Ok(upstream) => upstream,
            Err(e) => {
                let why = format!("upstream {server}: TLS handshake failed: {e} (upstreams are {})", self.verified_by);
                answer_and_linger(client, &why).await;
                return closed(why);
            }
        };
        relay(conn, Box::new(tokio_rustls::TlsStream::from(client)), Box::new(tokio_rustls::TlsStream::from(upstream)), None, false, 0, tap).await;
    }
}

/// A CONNECT tunnel, answered `200 Connection Established`.
pub(super) struct Tunnel {
    pub conn: u64,
    pub client: TcpStream,
    /// What the client sent after its CONNECT head.
    pub early: Vec<u8>,
    /// The server's connection.
    pub upstream: TcpStream,
    /// The CONNECT target, `host:port`.
    pub server: String,
}

/// Whether the client starts with TLS: the first byte it sent (with its
/// CONNECT, or peeked now) is a handshake record. A server that speaks
/// first (SMTP, MySQL) would wait forever for a client that waits for it,
/// so its first byte settles it the other way.
async fn starts_with_tls(client: &TcpStream, early: &[u8], upstream: &TcpStream) -> bool {
    if let Some(first) = early.first() {
        return *first == TLS_HANDSHAKE;
    }
    let (mut a, mut b) = ([0u8; 1], [0u8; 1]);
    tokio::select! {
        peeked = client.peek(&mut a) => matches!(peeked, Ok(1)) && a[0] == TLS_HANDSHAKE,
        _ = upstream.peek(&mut b) => false,
    }
}

/// The client's side: the host's certificate, HTTP/1.1 only.
fn server_config(cert: Arc<rustls::sign::CertifiedKey>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(cert)));
    config.alpn_protocols = vec![HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// Answers `502 Bad Gateway` saying `why`, then reads (and drops) what the
/// client sends until it closes or [`LINGER`] passes: closing with its
/// request unread would reset the connection, and the client might never
/// read the answer.
async fn answer_and_linger(mut client: impl AsyncRead + AsyncWrite + Unpin, why: &str) {
    if reply(&mut client, "502 Bad Gateway", &format!("oltrace forward proxy: {why}")).await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The host of `host:port` (brackets of an IPv6 address removed).
fn host_of(target: &str) -> &str {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_of("api.example:443"), "api.example");
        assert_eq!(host_of("[::1]:8443"), "::1");
        let dir = tempfile::tempdir().unwrap();
        let opts = InterceptOptions {
            ca_dir: Some(dir.path().join("ca")),
            passthrough: vec!["Pinned.example".into(), "*.bank.example".into(), "[::1]".into()],
            upstream_insecure: true,
            ..Default::default()
        };
        let i = Intercept::start(&opts).unwrap();
        assert!(dir.path().join("ca/ca.key").exists(), "made when missing");
        assert!(i.passes_through("pinned.example:443"));
        assert!(!i.passes_through("notpinned.example:443"));
        assert!(i.passes_through("www.bank.example:443") && i.passes_through("a.b.bank.example:443"));
        assert!(!i.passes_through("bank.example:443") && !i.passes_through("evilbank.example:443"));
        assert!(i.passes_through("[::1]:443"));
    }
}
