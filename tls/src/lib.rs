//! `tls`: the TLS pieces `oltrace proxy` and `olreplay` share, with rustls
//! on the `ring` provider (no system OpenSSL, nothing to build with cmake).
//!
//! - [`provider`]: the crypto provider every configuration uses.
//! - [`unverified_client`]: a client configuration that encrypts without
//!   checking the server's certificate, as libpq's `sslmode=require` does
//!   (the handshake's signatures are still checked).
//! - [`pg_request_tls`]: PostgreSQL's SSLRequest and the server's one-byte
//!   answer, before the handshake.
//! - [`ca`]: the interception CA (`oltrace ca init`, `--tls-intercept`):
//!   its files, and the per-host certificates it signs, cached.

pub mod ca;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS without checking the server's certificate (libpq's `require`).
pub fn unverified_client() -> Result<Arc<ClientConfig>, rustls::Error> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unverified(provider())))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Asks a PostgreSQL server for TLS on `stream`: Ok once it answered `S`
/// (the handshake comes next); otherwise what it did, for an error message
/// that goes on with the address and the fix.
pub async fn pg_request_tls(stream: &mut TcpStream) -> Result<(), String> {
    let mut request = bytes::BytesMut::new();
    wire::pg::encode::ssl_request(&mut request);
    let mut answer = [0u8; 1];
    stream.write_all(&request).await.map_err(|e| format!("asking for TLS: {e}"))?;
    stream.read_exact(&mut answer).await.map_err(|e| format!("asking for TLS: {e}"))?;
    match answer[0] {
        b'S' => Ok(()),
        b'N' => Err("does not accept TLS (it answered N to SSLRequest: is ssl = on?)".into()),
        other => Err(format!("answered {other:#04x} to SSLRequest (not PostgreSQL?)")),
    }
}

/// Takes any certificate; checks the handshake's signatures.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
