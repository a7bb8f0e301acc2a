//! Client configurations, by how much of the server's certificate they
//! check ([`Verify`], libpq's `sslmode` names): the one place that builds a
//! rustls `ClientConfig`, for the proxy's `upstream-tls=` and olreplay's
//! TLS targets alike.

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

use crate::provider;

/// How much of the server's certificate a client checks. The handshake's
/// signatures are checked in every mode (the server must hold the key of
/// the certificate it shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verify {
    /// Encrypted, the certificate not checked: libpq's `sslmode=require`,
    /// curl's `-k`.
    Nothing,
    /// The chain up to a trusted CA, not the host name: libpq's `verify-ca`.
    Chain,
    /// The chain and the host name: libpq's `verify-full`, what browsers
    /// and curl do.
    Full,
}

impl Verify {
    /// libpq's name for the mode (`require`, `verify-ca`, `verify-full`).
    pub fn name(self) -> &'static str {
        match self {
            Verify::Nothing => "require",
            Verify::Chain => "verify-ca",
            Verify::Full => "verify-full",
        }
    }
}

/// A client configuration checking what `verify` says, against the CA
/// certificates in the PEM file `ca` or, without one, the system's roots.
/// Errors name the file and what is wrong with it; `ca_hint` says how a CA
/// file is given where this is used (`upstream-ca=FILE`), for when the
/// system has no roots.
pub fn client_config(verify: Verify, ca: Option<&Path>, ca_hint: &str) -> anyhow::Result<Arc<ClientConfig>> {
    if verify == Verify::Nothing {
        return Ok(unverified_client()?);
    }
    let roots = Arc::new(match ca {
        Some(file) => root_store(&[file], false, ca_hint)?,
        None => root_store(&[], true, ca_hint)?,
    });
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let config = match verify {
        Verify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        _ => builder.dangerous().with_custom_certificate_verifier(Arc::new(Partial { chain: Some(roots), provider: provider() })).with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// TLS without checking the server's certificate (libpq's `require`).
pub fn unverified_client() -> Result<Arc<ClientConfig>, rustls::Error> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Partial { chain: None, provider: provider() }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The CA certificates in the PEM `files`, and with `system` the
/// system's (as OpenSSL finds them: `SSL_CERT_FILE`, `/etc/ssl/certs`...);
/// an error when that makes none, with `ca_hint`, how a CA file is given
/// where this is used.
pub fn root_store(files: &[&Path], system: bool, ca_hint: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    if system {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    for file in files {
        for cert in read_certs(file)? {
            roots.add(cert).with_context(|| format!("{}: not a CA certificate", file.display()))?;
        }
    }
    anyhow::ensure!(!roots.is_empty(), "no system CA certificates found (Debian: install ca-certificates); give {ca_hint}");
    Ok(roots)
}

/// Every PEM certificate in `path` (at least one).
pub fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("cannot read certificates from {}: {e}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{}: no PEM certificate in it", path.display());
    Ok(certs)
}

/// Why a handshake's certificate check failed, in words, and what to do
/// about it; `None` for errors that are not about the certificate.
/// `ca_hint` says how to give a CA file where this is used (`upstream-ca=FILE`,
/// `sslrootcert=FILE or --cacert FILE`), `skip_hint` how to skip the check.
pub fn explain_certificate_error(e: &rustls::Error, host: &str, ca_hint: &str, skip_hint: &str) -> Option<String> {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = e else { return None };
    Some(match c {
        C::NotValidForName | C::NotValidForNameContext { .. } => format!(
            "the server's certificate is not valid for the name '{host}': connect by a name the certificate carries, or {skip_hint}"
        ),
        C::UnknownIssuer => format!("the server's certificate is not signed by a trusted CA: give its CA with {ca_hint}, or {skip_hint}"),
        C::Expired | C::ExpiredContext { .. } => format!("the server's certificate has expired: renew it, or {skip_hint}"),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            format!("the server's certificate is not valid yet (check the clocks): or {skip_hint}")
        }
        other => format!("the server's certificate was refused ({other:?}): give its CA with {ca_hint}, or {skip_hint}"),
    })
}

/// The certificate checks rustls' own verifier does not offer: none at all
/// (`require`), or the chain without the name (`verify-ca`; rustls always
/// checks the name). The handshake's signatures are checked either way.
#[derive(Debug)]
struct Partial {
    /// `Some`: the chain must lead to one of these; `None`: anything goes.
    chain: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Partial {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.chain {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            let algs = self.provider.signature_verification_algorithms.all;
            rustls::client::verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, algs)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
