//! The opening of a PostgreSQL connection at the proxy: where a client's
//! request for encryption is answered (`tls=decline`, `tls=terminate`) or
//! passed on (`tls=passthrough`), before the upstream is connected; the
//! proxy's own request to the server (`upstream-tls=`). (The ErrorResponse
//! a client gets when the proxy cannot reach the server is in `refusal`.)
//!
//! A PostgreSQL client that may encrypt (libpq's default `sslmode=prefer`,
//! asyncpg, psycopg) first sends an 8-byte SSLRequest, and perhaps a
//! GSSENCRequest before it, and waits for one byte: `S`/`G` to start TLS or
//! GSS encryption, `N` to go on in plaintext on the same connection. A
//! server with `ssl = on` says `S`, and a recording of what follows is
//! opaque. Declining, the proxy answers `N` itself: the client sends its
//! StartupMessage in plaintext, and the server never sees the request.
//!
//! Terminating, the proxy answers `S` and accepts TLS itself (see
//! [`super::tls`]); a GSSENCRequest is still answered `N`.
//!
//! The opening is read 8 bytes at a time, never more, so that nothing the
//! client sends after its request is consumed here: the rest of its bytes
//! are forwarded and recorded by the relay as they come.

use super::route::ClientTls;
use format::TlsMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::pg::tags::startup::{GSSENC_REQUEST, SSL_REQUEST};

/// The first byte of a TLS record (a handshake): a client that starts TLS
/// at once (PostgreSQL 17's `sslnegotiation=direct`) sends it instead of
/// an SSLRequest.
const TLS_HANDSHAKE: u8 = 0x16;

/// What the client's opening showed.
#[derive(Debug, PartialEq, Eq)]
pub struct Opening {
    /// [`TlsMode::Terminated`]: the client was answered `S`, and its TLS
    /// handshake comes next.
    pub tls: TlsMode,
    /// The bytes read that the server must get, in order: the first 8 of a
    /// StartupMessage, CancelRequest, passed-on request or TLS handshake
    /// (fewer if the client closed first; none when terminating).
    pub head: Vec<u8>,
}

/// Reads the client's opening, answering its requests for encryption as
/// `policy` says. Errors name the failed side.
pub async fn read_opening(client: &mut TcpStream, policy: ClientTls) -> Result<Opening, String> {
    let mut declined = false;
    loop {
        let head = read_head(client).await.map_err(|e| format!("client read: {e}"))?;
        let asks_encryption = is_encryption_request(&head);
        if asks_encryption && policy != ClientTls::Passthrough {
            let terminate = policy == ClientTls::Terminate && head[4..] == SSL_REQUEST.to_be_bytes();
            client.write_all(if terminate { b"S" } else { b"N" }).await.map_err(|e| format!("client write: {e}"))?;
            if terminate {
                return Ok(Opening { tls: TlsMode::Terminated, head: Vec::new() });
            }
            declined = true;
            continue;
        }
        let tls = if declined {
            TlsMode::Declined
        } else if asks_encryption || head.first() == Some(&TLS_HANDSHAKE) {
            TlsMode::Passthrough
        } else {
            TlsMode::None
        };
        return Ok(Opening { tls, head });
    }
}

/// Asks the server for TLS on `stream` (SSLRequest) and makes the
/// handshake; errors say what the server did and what to change.
pub async fn upstream_tls(
    mut stream: TcpStream,
    upstream: &str,
    connector: &tokio_rustls::TlsConnector,
    name: &rustls::pki_types::ServerName<'static>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    tls::pg_request_tls(&mut stream).await.map_err(|e| format!("upstream {upstream} {e}; or use upstream-tls=disable"))?;
    connector.connect(name.clone(), stream).await.map_err(|e| super::tls::tls_failed(upstream, name, e))
}

/// An SSLRequest or GSSENCRequest: length 8, then the request code.
fn is_encryption_request(head: &[u8]) -> bool {
    let Ok(head) = <[u8; 8]>::try_from(head) else { return false };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    len == 8 && (code == SSL_REQUEST || code == GSSENC_REQUEST)
}

/// Up to 8 bytes: all 8, or what came before the client closed.
async fn read_head(client: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match client.read(&mut head[got..]).await? {
            0 => break,
            n => got += n,
        }
    }
    Ok(head[..got].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const SSL: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    const GSSENC: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
    /// The start of a StartupMessage (protocol 3.0, 41 bytes long).
    const STARTUP: [u8; 8] = [0, 0, 0, 41, 0, 3, 0, 0];

    /// The client writes `sent` in the given pieces (reading any answers),
    /// then closes; returns the opening the proxy side read, what the
    /// client was answered, and what was left for the relay to read.
    async fn open_with(policy: ClientTls, pieces: &[&[u8]]) -> (Opening, Vec<u8>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pieces: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            for p in pieces {
                s.write_all(&p).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            s.shutdown().await.unwrap();
            let mut answers = Vec::new();
            s.read_to_end(&mut answers).await.unwrap();
            answers
        });
        let (mut server, _) = listener.accept().await.unwrap();
        let opening = read_opening(&mut server, policy).await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        server.shutdown().await.unwrap();
        (opening, client.await.unwrap(), rest)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn declines_gss_then_ssl_and_keeps_the_rest_for_the_relay() {
        let (o, answers, rest) = rt().block_on(open_with(ClientTls::Decline, &[&GSSENC, &SSL[..3], &SSL[3..], &STARTUP, b"user\0x\0\0"]));
        assert_eq!(o, Opening { tls: TlsMode::Declined, head: STARTUP.to_vec() });
        assert_eq!(answers, b"NN", "one N per request");
        assert_eq!(rest, b"user\0x\0\0", "nothing after the head was read");
    }

    #[test]
    fn terminating_answers_ssl_s_and_gss_n() {
        let (o, answers, rest) = rt().block_on(open_with(ClientTls::Terminate, &[&GSSENC, &SSL, b"\x16\x03\x01"]));
        assert_eq!(o, Opening { tls: TlsMode::Terminated, head: Vec::new() });
        assert_eq!(answers, b"NS");
        assert_eq!(rest, b"\x16\x03\x01", "the handshake is left for TLS");
    }

    #[test]
    fn plain_and_passed_on_openings() {
        let (o, answers, _) = rt().block_on(open_with(ClientTls::Decline, &[&STARTUP]));
        assert_eq!((o.tls, answers.len()), (TlsMode::None, 0));
        let (o, answers, _) = rt().block_on(open_with(ClientTls::Passthrough, &[&SSL, b"more"]));
        assert_eq!(o, Opening { tls: TlsMode::Passthrough, head: SSL.to_vec() });
        assert!(answers.is_empty(), "passthrough leaves the answer to the server");
        // Direct TLS cannot be declined: it goes on, as opaque.
        let hello = [TLS_HANDSHAKE, 3, 1, 0, 200, 1, 0, 0];
        let (o, _, _) = rt().block_on(open_with(ClientTls::Decline, &[&hello]));
        assert_eq!(o, Opening { tls: TlsMode::Passthrough, head: hello.to_vec() });
        // A client that closes early: what it sent goes on.
        let (o, _, _) = rt().block_on(open_with(ClientTls::Decline, &[&[0, 0, 0]]));
        assert_eq!(o, Opening { tls: TlsMode::None, head: vec![0, 0, 0] });
    }
}
