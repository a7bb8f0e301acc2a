//! The proxy's TLS, with rustls on the `ring` provider (no system OpenSSL):
//! the server side of `tls=terminate` and `rediss` routes (a certificate
//! from files, or one made at start with rcgen) and the client side of
//! `upstream-tls=require` (encrypted, not verified, as libpq's
//! `sslmode=require`: [`tls::unverified_client`]) and
//! `upstream-tls=verify-full` (the chain against `upstream-ca=FILE`, or the
//! system's roots, and the upstream's host name).
//!
//! Built once per route at start, so a bad certificate file stops the proxy
//! with a clear error before any client connects.

use super::route::{Route, UpstreamTls};
use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig};
use tls::{provider, read_certs};
use std::path::Path;
use std::sync::Arc;

/// A route's TLS, ready for its connections.
#[derive(Clone, Default)]
pub struct RouteTls {
    /// `tls=terminate`: what the proxy presents to clients.
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// `upstream-tls=require|verify-full`: how the proxy meets the server.
    pub upstream: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl RouteTls {
    pub fn for_route(route: &Route) -> anyhow::Result<RouteTls> {
        let what = |part: &str| format!("route {}: {part}", route.name);
        let acceptor = match route.tls {
            super::route::ClientTls::Terminate => Some(server_config(route).with_context(|| what("tls=terminate"))?.into()),
            _ => None,
        };
        let upstream = match route.upstream_tls {
            UpstreamTls::Disable => None,
            mode => {
                let config = client_config(mode, route.upstream_ca.as_deref()).with_context(|| what("upstream-tls"))?;
                let host = route.upstream.rsplit_once(':').map_or(route.upstream.as_str(), |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| anyhow::anyhow!("{}: '{host}' is not a host name or address: {e}", what("upstream-tls")))?;
                Some((tokio_rustls::TlsConnector::from(config), name))
            }
        };
        Ok(RouteTls { acceptor, upstream })
    }
}

/// Why the TLS handshake with the upstream failed, in words when it was
/// the certificate (what was wrong and how to fix it), else as rustls says.
pub fn tls_failed(upstream: &str, name: &ServerName<'_>, e: std::io::Error) -> String {
    let host = name.to_str();
    let explained = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).and_then(|tls| {
        tls::explain_certificate_error(tls, &host, "upstream-ca=FILE on the route", "use upstream-tls=require, which encrypts without checking the certificate")
    });
    match explained {
        Some(why) => format!("upstream {upstream}: TLS handshake failed: {why}"),
        None => format!(
            "upstream {upstream}: TLS handshake failed: {e} (upstream-tls=verify-full checks the certificate against upstream-ca= and the host name '{host}')"
        ),
    }
}

/// The certificate and key of `cert=`/`key=`, or, without them, a
/// self-signed certificate for localhost, the loopback addresses and the
/// listen address, made now (clients that insist on TLS with
/// `sslmode=require` do not verify it).
fn server_config(route: &Route) -> anyhow::Result<Arc<ServerConfig>> {
    let (chain, key) = match (&route.cert, &route.key) {
        (Some(cert), Some(key)) => (read_certs(cert)?, read_key(key)?),
        (None, None) => {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
            if !route.listen.ip().is_unspecified() {
                names.push(route.listen.ip().to_string());
            }
            let made = rcgen::generate_simple_self_signed(names).context("cannot make a self-signed certificate")?;
            let key = PrivateKeyDer::try_from(made.key_pair.serialize_der()).map_err(|e| anyhow::anyhow!("self-signed key: {e}"))?;
            (vec![made.cert.der().clone()], key)
        }
        _ => anyhow::bail!("give both cert=FILE and key=FILE, or neither (a self-signed certificate is made)"),
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not go together")?;
    Ok(Arc::new(config))
}

/// `upstream-tls=require`: encrypted, not checked; `verify-full`: the
/// chain against `ca` (else the system's roots) and the host name. Built by
/// [`tls::client_config`], which olreplay's TLS targets use too.
fn client_config(mode: UpstreamTls, ca: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let verify = if mode == UpstreamTls::Require { tls::Verify::Nothing } else { tls::Verify::Full };
    tls::client_config(verify, ca, "upstream-ca=FILE")
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| anyhow::anyhow!("cannot read a private key from {}: {e}", path.display()))
}
