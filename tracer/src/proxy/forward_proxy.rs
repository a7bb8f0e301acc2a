//! `--forward-proxy LISTEN`: an HTTP forward proxy for the lambdas'
//! outbound calls (`oltrace wrap` points `HTTP_PROXY` and `HTTPS_PROXY` at
//! it).
//!
//! Each client connection starts with a request head, read whole:
//!
//! - absolute-form (`GET http://host:port/path HTTP/1.1`): the proxy
//!   connects to `host:port` and forwards the connection to it byte for
//!   byte, the request line included (servers must accept absolute-form,
//!   RFC 9112 §3.2.2). It is recorded as an `http` connection whose server
//!   is `host:port`, so each request is an exchange like any other. A
//!   connection stays with its first request's server: at a request for
//!   another server (framed by [`Injector::guard`]) the proxy stops
//!   forwarding and closes the connection once the server has answered
//!   what it was sent, so the client retries that request on a new
//!   connection, as HTTP clients do when a reused connection closes.
//! - `CONNECT host:port`: the proxy connects, answers `200 Connection
//!   Established`, and relays the tunnel, recorded as an opaque `tcp`
//!   connection whose server is the target (what is inside is usually TLS);
//!   with `--tls-intercept`, [`super::intercept`] decrypts it instead, but
//!   for `--tls-passthrough` hosts.
//! - anything else gets a `400` naming what is accepted; an unreachable
//!   target gets a `502`, and the trace a `conn_close` saying why.

use super::forward::{relay, send_first};
use super::inject::Injector;
use super::intercept::{Intercept, Tunnel};
use super::tap::{Note, Tap};
use super::workers::{adopt, Workers};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use wire::Protocol;

/// The largest request head the proxy reads before deciding where to go.
const MAX_HEAD: usize = 64 << 10;

/// Where a client's first request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Absolute-form HTTP: `host:port` (port 80 when absent).
    Http(String),
    /// A CONNECT tunnel to `host:port`.
    Tunnel(String),
}

/// Reads the target of a complete request head, or says why it cannot.
pub fn target_of(head: &[u8]) -> Result<Target, String> {
    let req = match wire::http::parse_request_head(head) {
        Ok(req) => req,
        Err(wire::ParseError::Incomplete { .. }) => return Err("incomplete request head".into()),
        Err(e) => return Err(format!("not an HTTP request ({e})")),
    };
    let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
    let (method, target) = (text(req.method()), text(req.target()));
    let target = target.as_str();
    if method.eq_ignore_ascii_case("CONNECT") {
        let ok = target.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        return if ok { Ok(Target::Tunnel(target.to_string())) } else { Err(format!("CONNECT target '{target}' is not host:port")) };
    }
    let Some(rest) = target.strip_prefix("http://").or_else(|| target.get(..7).filter(|p| p.eq_ignore_ascii_case("http://")).map(|_| &target[7..])) else {
        return Err(format!(
            "request target '{target}' is not absolute-form: a forward proxy takes GET http://host/path (or CONNECT host:port for https)"
        ));
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority.rsplit_once('@').map(|(_, a)| a).unwrap_or(authority);
    if authority.is_empty() {
        return Err(format!("request target '{target}' has no host"));
    }
    let has_port = match authority.rsplit_once(':') {
        Some((_, p)) => !authority.ends_with(']') && p.parse::<u16>().is_ok(),
        None => false,
    };
    Ok(Target::Http(if has_port { authority.to_string() } else { format!("{authority}:80") }))
}

/// Accepts on `listener` until `stop` fires; connection ids come from the
/// same counter as the routes'.
#[allow(clippy::too_many_arguments)]
pub async fn accept_loop(
    name: Arc<String>,
    listener: TcpListener,
    tap: Tap,
    next_conn: Arc<AtomicU64>,
    workers: &Workers,
    tasks: &mut JoinSet<()>,
    stop: tokio::sync::watch::Receiver<bool>,
    connect_timeout: Duration,
    intercept: Option<Arc<Intercept>>,
) {
    let label = name.to_string();
    super::forward::accept_until_stopped(&label, listener, workers, tasks, stop, |client, peer| {
        serve(name.clone(), client, peer, tap.clone(), next_conn.clone(), connect_timeout, intercept.clone())
    })
    .await;
}

async fn serve(
    name: Arc<String>,
    client: std::net::TcpStream,
    peer: SocketAddr,
    tap: Tap,
    next_conn: Arc<AtomicU64>,
    connect_timeout: Duration,
    intercept: Option<Arc<Intercept>>,
) {
    let accepted = tap.now();
    let Ok(mut client) = adopt(client) else { return };
    // Read until the first head is complete.
    let mut buf = Vec::with_capacity(4096);
    let head_len = loop {
        if let Some(n) = head_len(&buf) {
            break n;
        }
        if buf.len() > MAX_HEAD {
            let _ = reply(&mut client, "431 Request Header Fields Too Large", "request head too large").await;
            return;
        }
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let target = match target_of(&buf[..head_len]) {
        Ok(t) => t,
        Err(why) => {
            let _ = reply(&mut client, "400 Bad Request", &format!("oltrace forward proxy: {why}")).await;
            return;
        }
    };
    let server = match &target {
        Target::Http(s) | Target::Tunnel(s) => s.clone(),
    };
    // A tunnel to intercept: what it is gets recorded once its first bytes
    // say (see `Intercept::serve`).
    let intercept = intercept.filter(|_| matches!(target, Target::Tunnel(_)));
    // A --tls-passthrough host: an opaque tunnel, and the trace says why.
    let passthrough = intercept.as_ref().is_some_and(|i| i.passes_through(&server)).then_some(format::TlsMode::Passthrough);
    let intercept = intercept.filter(|_| passthrough.is_none());
    let conn = next_conn.fetch_add(1, Ordering::Relaxed);
    let open = |protocol: Protocol, tls: Option<format::TlsMode>| {
        tap.send_control(Note::Open { conn, protocol, client: peer.to_string(), server: server.clone(), route: name.to_string(), tls, ts: accepted })
    };
    match (&target, intercept.is_some()) {
        (Target::Http(_), _) => open(Protocol::Http, None),
        (Target::Tunnel(_), false) => open(Protocol::Tcp, passthrough),
        (Target::Tunnel(_), true) => {}
    }
    let mut upstream = match super::forward::connect_tcp(&server, connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            if intercept.is_some() {
                open(Protocol::Tcp, None);
            }
            let _ = reply(&mut client, "502 Bad Gateway", &format!("oltrace forward proxy: {server} unreachable: {e}")).await;
            let error = Some(format!("upstream {server} unreachable: {e}"));
            tap.send_control(Note::Close { conn, ts: tap.now(), bytes_to_server: 0, bytes_to_client: 0, error });
            return;
        }
    };
    // What the client sent so far goes on: for plain HTTP, through the
    // guard that keeps the connection to this server; for a tunnel, what
    // followed the CONNECT head.
    let mut guard = None;
    let mut guarded = Vec::new();
    let first = match target {
        Target::Http(_) => {
            let g = guard.insert(Injector::guard(server.clone()));
            g.push(&buf, &mut guarded);
            &guarded[..]
        }
        Target::Tunnel(_) => {
            if let Err(e) = client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await {
                if intercept.is_some() {
                    open(Protocol::Tcp, None);
                }
                let error = Some(format!("client write: {e}"));
                tap.send_control(Note::Close { conn, ts: tap.now(), bytes_to_server: 0, bytes_to_client: 0, error });
                return;
            }
            if let Some(intercept) = &intercept {
                let tunnel = Tunnel { conn, client, early: buf[head_len..].to_vec(), upstream, server: server.clone() };
                return intercept.serve(tunnel, open, &tap).await;
            }
            &buf[head_len..]
        }
    };
    if let Err(e) = send_first(conn, &mut upstream, first, &tap).await {
        tap.send_control(Note::Close { conn, ts: tap.now(), bytes_to_server: 0, bytes_to_client: 0, error: Some(e) });
        return;
    }
    if guard.as_ref().is_some_and(Injector::stopped) {
        // Pipelined requests for two servers in the first read: the first
        // server's are sent; the rest waits for a new connection.
        let _ = upstream.shutdown().await;
    }
    relay(conn, client, upstream, guard, false, first.len() as u64, &tap).await;
}

/// The length of the first request head in `buf`, once complete.
fn head_len(buf: &[u8]) -> Option<usize> {
    match wire::http::parse_request_head(buf) {
        Ok(head) => Some(head.head_len()),
        Err(wire::ParseError::Incomplete { .. }) => None,
        // Malformed: take it all, and let `target_of` say why.
        Err(_) => Some(buf.len()),
    }
}

/// Answers `status` with `text` and closes the client's side.
pub(super) async fn reply(client: &mut (impl AsyncWrite + Unpin), status: &str, text: &str) -> std::io::Result<()> {
    let body = format!("{text}\n");
    let response = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(target_of(b"GET http://example.com/x HTTP/1.1\r\n\r\n"), Ok(Target::Http("example.com:80".into())));
        assert_eq!(target_of(b"GET http://127.0.0.1:8080?q HTTP/1.1\r\n\r\n"), Ok(Target::Http("127.0.0.1:8080".into())));
        assert_eq!(target_of(b"POST HTTP://u:p@[::1]:9000/a HTTP/1.1\r\n\r\n"), Ok(Target::Http("[::1]:9000".into())));
        assert_eq!(target_of(b"GET http://[::1]/ HTTP/1.1\r\n\r\n"), Ok(Target::Http("[::1]:80".into())));
        assert_eq!(target_of(b"CONNECT db.example:443 HTTP/1.1\r\nHost: db.example:443\r\n\r\n"), Ok(Target::Tunnel("db.example:443".into())));
        assert!(target_of(b"CONNECT db.example HTTP/1.1\r\n\r\n").unwrap_err().contains("host:port"));
        assert!(target_of(b"GET /x HTTP/1.1\r\n\r\n").unwrap_err().contains("absolute-form"));
        assert!(target_of(b"GET https://x/ HTTP/1.1\r\n\r\n").unwrap_err().contains("CONNECT"));
        assert!(target_of(b"\x16\x03\x01\r\n\r\n").unwrap_err().contains("not an HTTP request"));
    }
}
