//! `tls`: the TLS pieces `oltrace proxy` and `olreplay` share, with rustls
//! on the `ring` provider (no system OpenSSL, nothing to build with cmake).
//!
//! - [`provider`]: the crypto provider every configuration uses.
//! - [`client`]: client configurations by how much of the server's
//!   certificate they check ([`Verify`]: nothing, as libpq's
//!   `sslmode=require`; the chain, `verify-ca`; the chain and the name,
//!   `verify-full`), against a CA file or the system's roots; and
//!   certificate errors explained with their fix.
//! - [`pg_request_tls`]: PostgreSQL's SSLRequest and the server's one-byte
//!   answer, before the handshake.
//! - [`ca`]: the interception CA (`oltrace ca init`, `--tls-intercept`):
//!   its files, and the per-host certificates it signs, cached.

pub mod ca;

pub mod client;

pub use client::{client_config, explain_certificate_error, read_certs, root_store, unverified_client, Verify};

use rustls::crypto::CryptoProvider;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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
