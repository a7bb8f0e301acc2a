//! Forwarding: per client connection, connect to the upstream and pump
//! bytes both ways exactly as they come. Each chunk is written onward
//! first; only then is a copy offered to the recorder, without waiting.

use super::tap::{Note, Tap};
use super::route::Route;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use wire::Direction;

/// Read buffer per direction. 16 KiB keeps 1,000 open connections near
/// 32 MiB of buffers while still moving large bodies in few reads.
const READ_BUFFER: usize = 16 << 10;

/// Accepts on `listener` until `stop` fires, spawning one task per
/// connection into `tasks`.
pub async fn accept_loop(
    route: Arc<Route>,
    listener: TcpListener,
    tap: Tap,
    next_conn: Arc<AtomicU64>,
    tasks: &mut JoinSet<()>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                    tasks.spawn(proxy_conn(conn, route.clone(), client, peer, tap.clone()));
                }
                // Out of descriptors and the like: keep serving the others.
                Err(e) => {
                    eprintln!("oltrace proxy: {}: accept failed: {e}", route.name);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections as we go so the set stays small.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

async fn proxy_conn(conn: u64, route: Arc<Route>, client: TcpStream, peer: SocketAddr, tap: Tap) {
    tap.send_control(Note::Open {
        conn,
        protocol: route.protocol,
        client: peer.to_string(),
        server: route.upstream.clone(),
        route: route.name.clone(),
        ts: tap.now(),
    });
    let upstream = match TcpStream::connect(&route.upstream).await {
        Ok(s) => s,
        Err(e) => {
            // The client sees its connection closed; the trace says why.
            let error = Some(format!("upstream {} unreachable: {e}", route.upstream));
            tap.send_control(Note::Close { conn, ts: tap.now(), bytes_to_server: 0, bytes_to_client: 0, error });
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let ((to_server, e1), (to_client, e2)) = tokio::join!(
        pump(conn, Direction::ToServer, client_read, upstream_write, &tap),
        pump(conn, Direction::ToClient, upstream_read, client_write, &tap),
    );
    let error = e1.or(e2);
    tap.send_control(Note::Close { conn, ts: tap.now(), bytes_to_server: to_server, bytes_to_client: to_client, error });
}

/// Copies `from` to `to` until end of stream, then passes the half-close
/// on. Returns the bytes forwarded and the error that ended it, if any.
async fn pump(conn: u64, dir: Direction, mut from: OwnedReadHalf, mut to: OwnedWriteHalf, tap: &Tap) -> (u64, Option<String>) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut total = 0u64;
    let mut lost = 0u64;
    let mut error = None;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                error = Some(format!("{} read: {e}", side(dir)));
                break;
            }
        };
        let ts = tap.now();
        if let Err(e) = to.write_all(&buf[..n]).await {
            error = Some(format!("{} write: {e}", side(dir.reverse())));
            break;
        }
        total += n as u64;
        if lost > 0 && tap.send(Note::Lost { conn, dir, bytes: lost, ts }) {
            lost = 0;
        }
        if lost > 0 || !tap.send(Note::Data { conn, dir, data: Bytes::copy_from_slice(&buf[..n]), ts }) {
            lost += n as u64;
            tap.dropped_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    let _ = to.shutdown().await;
    if lost > 0 {
        tap.send_control(Note::Lost { conn, dir, bytes: lost, ts: tap.now() });
    }
    tap.send_control(Note::Eof { conn, dir, ts: tap.now() });
    (total, error)
}

fn side(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "client",
        Direction::ToClient => "upstream",
    }
}
